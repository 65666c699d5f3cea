"""Every code block of docs/interop.md runs: the plain ```python blocks and the ```python no-run
blocks (which need torch, diffusers and jax; tests/test_docs.py runs only the plain ones), in
order, in one namespace."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "interop.md"


def test_every_block_runs(tmp_path, monkeypatch):
    for name in ("torch", "diffusers", "jax"):
        pytest.importorskip(name, reason=f"{name} not installed: the no-run blocks need it")
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python(?: no-run)?[ \t]*\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) >= 9
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"interop.md[block {i + 1}]", "exec"), ns)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"docs/interop.md block {i + 1} failed: {exc!r}\n{code}") from exc


def test_the_figure_and_table_the_page_shows_exist():
    text = DOC.read_text(encoding="utf-8")
    for rel in re.findall(r"\]\((interop/[^)]+)\)", text):
        assert (DOC.parent / rel).is_file(), rel
    assert (DOC.parent / "interop" / "sampler_error.md").is_file()
