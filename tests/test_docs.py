"""The docs are code: every function and test named in docs/derivation.md's table exists, every
```python block of README.md and docs/*.md runs, and every local link resolves."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DERIVATION = DOCS / "derivation.md"
MD_FILES = [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))
OWN_MD = [ROOT / "README.md"] + [
    DOCS / name
    for name in (
        "derivation.md",
        "gallery.md",
        "index.md",
        "problems.md",
        "verification.md",
        "validating.md",
        "learning.md",
        "numerics.md",
        "guidance-variants.md",
        "performance.md",
        "vectors-schema.md",
    )
]
EXAMPLES = DOCS / "examples"


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
            obj = getattr(obj, attr)  # AttributeError: the table names something that is not there
        return obj
    raise ImportError(f"no importable prefix in {dotted!r}")


# The equation number of each row of the table, read off the notes (2025/26 version) by hand: the
# topic of the row (the first cell after "eq. N, ") -> the number ("-" where the row is refcfg's own
# check with no equation of its own). Where the notes number it: Gaussian conditional path eq. 15;
# marginal density eq. 13; marginal velocity eq. 18 (Theorem 9); Gaussian conditional velocity eq. 20
# (eq. 21 is the flow psi_t(x|z)); divergence eq. 22; continuity equation eq. 23 (Theorem 11; eq. 24
# is the flow matching loss); marginal score eq. 38; Gaussian conditional score eq. 40; conversion
# eqs. 41/42 (Proposition 1); denoiser eq. 43 (Remark 16); SDE extension eq. 44 (Theorem 17);
# u(x|y) = a_t score(x|y) + b_t x eq. 59; Bayes' rule eq. 60; classifier gradient eq. 61;
# classifier guidance eq. 62; label dropout eqs. 63-64 (repeated as 66-67); CFG eq. 65 (Summary 27).
NOTES_EQUATIONS = {
    "conditional Gaussian path N(alpha_t z, beta_t^2 I)": "15",
    "conditional velocity u_t(x|z)": "20",
    "conditional score": "40",
    "need beta_t > 0 (t < 1)": "20/40",
    "marginal velocity (marginalization trick)": "18",
    "marginal density and its score": "13/38",
    "denoiser E[z|x_t = x] by Gaussian conditioning": "43",
    "continuity equation": "23",
    "divergence = trace of the Jacobian": "22",
    "a_t and b_t": "41/42",
    "undefined at alpha_t = 0": "41/42",
    "velocity = a_t score + b_t x": "41/42",
    "all conversions": "41/42",
    "cancellation near t = 0": "41/42",
    "SDE with the same marginals": "44",
    "SDE endpoint law between Gaussians": "44",
    "noisy classifier by Bayes' rule": "60",
    "p_t(y|x) = p(y) at t = 0": "60",
    "grad log p_t(y|x) = score(x|y) - score(x)": "61",
    "classifier guidance": "62",
    "classifier guidance (field object)": "62",
    "CFG, w = 1 and w = 0": "65",
    "CFG = classifier guidance (property test)": "65",
    "any two fields (Remark 26, autoguidance)": "65",
    "label dropout with probability eta": "63-64",
    "CFM regression target u_t(x|z)": "63-64",
    "training reduces the field error": "63-64",
    "one network, two calls": "65",
    "CFG endpoint vs tilted law (Gaussians)": "-",
    "CFG ODE endpoint variance (Gaussians)": "-",
}

ROW_EQUATION = re.compile(r"^(?:eqs?\. (?P<num>\d+(?:[/-]\d+)?)|(?P<none>-)), (?P<topic>.+)$")


def table_equations():
    """(number, topic) of each table row; AssertionError for a first cell in another form."""
    out = []
    for eq, _, _ in table_rows():
        match = ROW_EQUATION.match(eq)
        assert match, f"table cell {eq!r} is not 'eq. N, topic', 'eqs. N-M, topic' or '-, topic'"
        out.append((match["num"] or "-", match["topic"]))
    return out


def test_derivation_table_numbers_are_the_notes():
    """Every row of the table cites the equation the notes give that topic, and every topic checked
    in the notes (NOTES_EQUATIONS) has its row: a wrong or missing number fails here."""
    rows = table_equations()
    assert len(rows) >= 20, rows
    wrong = [
        (topic, num, NOTES_EQUATIONS.get(topic))
        for num, topic in rows
        if NOTES_EQUATIONS.get(topic) != num
    ]
    assert not wrong, f"(topic, table's number, notes' number): {wrong}"
    missing = set(NOTES_EQUATIONS) - {topic for _, topic in rows}
    assert not missing, f"topics without a row in the table: {sorted(missing)}"


# citations found wrong in earlier versions of the docs, with the notes' numbers
WRONG_CITATIONS = {
    r"\beqs?\. 21\b": "eq. 21 is the flow psi_t(x|z); the marginal velocity is eq. 18",
    r"\beqs?\. 24\b": "eq. 24 is the flow matching loss; the continuity equation is eq. 23",
    r"\beqs?\. 59-6[12]\b": "eq. 59 is u = a_t score + b_t x, Bayes' rule eq. 60, its gradient eq. 61",
    r"\beqs?\. 63-67\b": "label dropout is eqs. 63-64 (66-67 repeat them); the guided CFM loss eq. 58",
    r"\bv3\b": "the docs cite the 2025/26 version of the notes",
}
OWN_DOCS = [ROOT / "README.md"] + [
    p for p in sorted(DOCS.glob("*.md")) if p.name not in ("architecture.md", "gpu.md", "sweeps.md")
]


@pytest.mark.parametrize("path", OWN_DOCS, ids=lambda p: p.name)
def test_no_known_wrong_citation(path):
    text = path.read_text(encoding="utf-8")
    found = [
        (m.group(0), why)
        for pattern, why in WRONG_CITATIONS.items()
        for m in re.finditer(pattern, text)
    ]
    assert not found, f"{path.name}: {found}"


def test_wrong_citation_patterns_match_what_they_name():
    """The patterns above are live: each matches its wrong citation and not the right one."""
    for pattern, bad, good in (
        (r"\beqs?\. 21\b", "eq. 21)", "eq. 18)"),
        (r"\beqs?\. 24\b", "(eq. 24,", "(eq. 23,"),
        (r"\beqs?\. 59-6[12]\b", "eq. 59-61", "eq. 60"),
        (r"\beqs?\. 63-67\b", "eqs. 63-67", "eqs. 63-64"),
    ):
        assert pattern in WRONG_CITATIONS
        assert re.search(pattern, bad) and not re.search(pattern, good), pattern


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
    assert re.search(rf"^\s*def {re.escape(name)}\(", path.read_text(encoding="utf-8"), re.M), (
        f"{file} has no test function {name}"
    )


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
        except Exception as exc:
            raise AssertionError(
                f"{path.name}: python block {i + 1} failed: {exc!r}\n{code}"
            ) from exc


def _local_links(path: Path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # links inside code are not links
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
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/refcfg demo" in readme
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
        ".venv/bin/python -m pytest -q" in readme
    )


# ---------------------------------------------------------------------------- problem files


def _full_covs(covs, K, d):
    c = np.asarray(covs, dtype=float)
    if c.shape == (K,):
        return c[:, None, None] * np.eye(d)
    if c.shape == (K, d):
        return np.stack([np.diag(row) for row in c])
    return c


def test_example_problem_files_load_as_written():
    """Each docs/examples/*.toml loads (load_problem and problem(path)) into the mixture it writes,
    read independently with tomllib: class probabilities, weights, means and full covariances."""
    import tomllib

    import refcfg

    files = sorted(EXAMPLES.glob("*.toml"))
    assert files, "docs/examples has no .toml problem file"
    for f in files:
        doc = tomllib.loads(f.read_text(encoding="utf-8"))
        mix = refcfg.load_problem(f)
        assert refcfg.problem(str(f)).n_classes == mix.n_classes == len(doc["classes"])
        probs = doc.get("problem", {}).get("class_probs")
        want = np.full(mix.n_classes, 1 / mix.n_classes) if probs is None else np.asarray(probs)
        np.testing.assert_allclose(mix.class_probs, want, rtol=1e-12)
        for g, c in zip(mix.classes, doc["classes"]):
            means = np.asarray(c["means"], dtype=float)
            np.testing.assert_allclose(g.weights, c["weights"], rtol=1e-12)
            np.testing.assert_array_equal(g.means, means)
            np.testing.assert_allclose(
                g.covs, _full_covs(c["covs"], *means.shape), rtol=1e-12, atol=1e-15
            )


def test_problems_page_shows_the_example_file_verbatim():
    """docs/problems.md quotes docs/examples/three-class-2d.toml in full (one source: the file)."""
    text = (DOCS / "problems.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```toml[ \t]*\n(.*?)^```", text, flags=re.S | re.M)
    example = (EXAMPLES / "three-class-2d.toml").read_text(encoding="utf-8")
    assert example in blocks, "docs/problems.md does not quote docs/examples/three-class-2d.toml"


# ---------------------------------------------------------------------------- README


def test_readme_documents_every_demo_option():
    """Every option of `refcfg demo` (its argparse parser) is named in the README."""
    import argparse

    from refcfg.commands import demo

    parser = argparse.ArgumentParser()
    demo.add_parser(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [
        o
        for a in sub.choices["demo"]._actions
        for o in a.option_strings
        if o.startswith("--") and o != "--help"
    ]
    assert len(options) >= 5, options
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [o for o in options if f"`{o}" not in readme]
    assert not missing, f"README.md does not document refcfg demo {missing}"


def test_readme_names_the_tools_that_turn_skipped_tests_on():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for tool in ("Chromium", "torch", "numba-cuda[cu12]", "docs/problems.md"):
        assert tool in readme, tool


# ---------------------------------------------------------------------------- guidance-variants


def _variants_table(problem: str) -> dict:
    """{(variant, w): (ED p(x|y), ED tilted)} of one problem's table in guidance-variants.md."""
    text = (DOCS / "guidance-variants.md").read_text(encoding="utf-8")
    section = text.split(f"### {problem} (", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = _cells(line) if line.startswith("| ") else []
        if len(cells) == 9 and re.fullmatch(r"\d+", cells[1]):
            out[(cells[0], int(cells[1]))] = (float(cells[6]), float(cells[7]))
    return out


def test_variants_reading_quotes_its_tables():
    """The numbers the Reading section derives from the tables (rescale against CFG on the tree,
    the SIR noise floors at w = 2) are those of the tables."""
    text = (DOCS / "guidance-variants.md").read_text(encoding="utf-8")
    reading = " ".join(text.split("## Reading", 1)[1].split())
    tree = _variants_table("tree")
    gains = {
        w: [f"{100 * (1 - tree[('rescale', w)][j] / tree[('cfg', w)][j]):.1f} %" for j in (0, 1)]
        for w in (2, 4)
    }
    quoted = (
        f"{gains[2][0]} (to p(x|y)) and {gains[2][1]} (to the tilted law) below CFG's at w = 2, "
        f"{gains[4][0][:-2]} % and {gains[4][1]} at w = 4"
    )
    assert quoted in reading, quoted
    floors = [
        _variants_table(p)[("tilted (SIR)", 2)][1]
        for p in ("two-class-2d", "mit-symmetric", "tree")
    ]
    quoted = "against the SIR rows' {:.4f}, {:.4f} and {:.4f}".format(*floors)
    assert quoted in reading, quoted


# citations that must not appear in code: documents outside the repository, tracker numbers, the
# two equation numbers that were cited wrong
CODE_CITATIONS = {
    r"DESIGN\.md": "a document outside the repository",
    r"\bissue \d+\b": "a tracker number (say what the code does instead)",
    r"\beqs?\. 21\b": "eq. 21 is the flow psi_t(x|z); the marginal velocity is eq. 18",
    r"\beqs?\. 24\b": "eq. 24 is the flow matching loss; the continuity equation is eq. 23",
}
CODE_FILES = sorted(
    p
    for top in ("refcfg", "tests", "verification")
    for p in (ROOT / top).rglob("*.py")
    if p.name != "test_docs.py"
)


def test_code_cites_nothing_outside_the_repository():
    found = [
        f"{p.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)} ({why})"
        for p in CODE_FILES
        for text in [p.read_text(encoding="utf-8")]
        for pattern, why in CODE_CITATIONS.items()
        for m in re.finditer(pattern, text)
    ]
    assert not found, "\n".join(found)


def test_architecture_map_names_existing_modules():
    """Every `refcfg/...` path that docs/architecture.md names exists (the map stays true)."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(refcfg/[A-Za-z0-9_/.]+)`", text))
    assert len(named) >= 20, named
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert not missing, missing
    # every module of the package is on the map, by its own path or its folder's
    modules = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "refcfg").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
        and "commands" not in p.parts
        and "experiments" not in p.parts
        and "sweep" not in p.parts
        and "interop" not in p.parts
    }
    unmapped = sorted(m for m in modules if m not in text and str(Path(m).parent) + "/" not in text)
    assert not unmapped, unmapped
