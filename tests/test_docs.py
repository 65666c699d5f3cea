"""The docs are code: every function and test named in docs/derivation.md's table exists, every
```python block of README.md and docs/*.md runs, and every local link resolves."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DERIVATION = DOCS / "derivation.md"
MD_FILES = [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))
OWN_MD = [ROOT / "README.md", DOCS / "derivation.md", DOCS / "gallery.md", DOCS / "index.md"]


def _cells(line: str) -> list[str]:
    # split a Markdown table row on unescaped pipes
    parts = re.split(r"(?<!\\)\|", line.strip())
    return [p.strip().replace("\\|", "|") for p in parts[1:-1]]


def table_rows():
    """(equation, function, test) for each row of the table under '## Equations, code and tests'."""
    text = DERIVATION.read_text(encoding="utf-8")
    section = text.split("## Equations, code and tests", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if len(cells) != 3 or cells[0].startswith("equation") or set(cells[0]) <= set("-: "):
            continue
        rows.append(tuple(cells))
    return rows


def resolve(dotted: str):
    """Import the longest module prefix of ``dotted`` and get the remaining attributes."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)   # AttributeError: the table names something that is not there
        return obj
    raise ImportError(f"no importable prefix in {dotted!r}")


def test_derivation_table_is_substantial():
    rows = table_rows()
    assert len(rows) >= 20, rows
    eqs = " ".join(r[0] for r in rows)
    for number in ("20", "21", "24", "40", "41/42", "44", "59-61", "62", "65", "63-67"):
        assert f"eq. {number}" in eqs or f"eqs. {number}" in eqs, number


@pytest.mark.parametrize("row", table_rows(), ids=lambda r: r[1])
def test_every_function_in_the_table_exists(row):
    _, func, _ = row
    assert func.startswith("refcfg."), func
    obj = resolve(func)
    assert callable(obj), f"{func} is not callable"


@pytest.mark.parametrize("row", table_rows(), ids=lambda r: r[2])
def test_every_test_in_the_table_exists(row):
    _, _, test = row
    file, _, name = test.partition("::")
    path = ROOT / file
    assert path.is_file(), f"{file} does not exist"
    assert re.search(rf"^\s*def {re.escape(name)}\(", path.read_text(encoding="utf-8"), re.M), \
        f"{file} has no test function {name}"


def python_blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^```python[ \t]*\n(.*?)^```", text, flags=re.S | re.M)


def test_docs_have_python_examples():
    assert python_blocks(ROOT / "README.md"), "README.md has no ```python example"
    assert len(python_blocks(DERIVATION)) >= 5


@pytest.mark.parametrize("path", MD_FILES, ids=lambda p: p.name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    """All ```python blocks of one file run in order in one namespace (later blocks may use names
    of earlier ones), in a temporary working directory. Non-runnable snippets (they need a GPU,
    torch, jax, the user's own model, or minutes of CPU) use another fence language (```text,
    ```bash) or the info string ```python no-run (highlighted as Python, not executed)."""
    blocks = python_blocks(path)
    if not blocks:
        pytest.skip(f"{path.name} has no python blocks")
    # relative paths in examples mean the repository root (verification/vectors/...): link its
    # top-level entries into a scratch directory, so reads work and new files land in the scratch
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv", ".ci-venv") and not (tmp_path / entry.name).exists():
            (tmp_path / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{path.stem}"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{path.name}[python block {i + 1}]", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - report which block failed
            raise AssertionError(f"{path.name}: python block {i + 1} failed: {exc!r}\n{code}") \
                from exc


def _local_links(path: Path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)   # links inside code are not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        yield target.split("#", 1)[0]


@pytest.mark.parametrize("path", OWN_MD, ids=lambda p: p.name)
def test_local_links_resolve(path):
    assert path.is_file(), path
    missing = [t for t in _local_links(path) if not (path.parent / t).exists()]
    assert not missing, f"{path.name} links to missing files: {missing}"


def test_readme_images_are_small():
    images = [t for t in _local_links(ROOT / "README.md") if t.endswith(".png")]
    assert len(images) >= 2, "the README shows at least two figures"
    for t in images:
        size = os.path.getsize(ROOT / t)
        assert 5_000 < size < 300_000, (t, size)


def test_quick_start_commands_are_the_ci_commands():
    """The README's two set-up commands are what CI runs; keep them verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ("python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/refcfg demo"
            in readme)
    assert ("python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
            ".venv/bin/python -m pytest -q" in readme)
