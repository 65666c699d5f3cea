"""The specs shipped in verification/sweeps/ parse, and a reduced copy of each runs.

The full-size specs (n = 1e5, 3 seeds) are cluster jobs; here every spec is validated as shipped
(which builds every rule on every problem) and a copy reduced to n = 64, 2 steps, one seed and the
first weight runs every remaining cell in this process."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from refcfg.sweep import load_spec, read_table, run

pytestmark = pytest.mark.slow

SWEEPS = Path(__file__).resolve().parents[2] / "verification" / "sweeps"
SPECS = sorted(SWEEPS.glob("*.toml"))


def reduced(doc: dict) -> dict:
    """The spec at toy size: n = 64, 2 steps, one seed, the first weight, reference size 64."""
    doc = copy.deepcopy(doc)
    doc["seeds"] = 1
    axes = doc["axes"]
    axes.update(n=[64], steps=[2], w=axes["w"][:1])
    doc.setdefault("metrics", {})["n_ref"] = 64
    return doc


def test_specs_are_shipped():
    names = {p.stem for p in SPECS}
    assert {
        "guidance-variants-2d",
        "guidance-variants-tree",
        "cfg-vs-tilted-1d",
        "cfg-vs-tilted-2d",
        "guidance-interval",
    } <= names


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_shipped_spec_parses_and_a_reduced_copy_runs(path, tmp_path):
    spec = load_spec(path)
    assert max(spec.axes["n"]) >= 100_000 and len(spec.seeds) == 3
    doc = reduced(tomllib.loads(path.read_text()))
    small = load_spec(doc, base=SWEEPS)
    rep = run(small, tmp_path, workers=0, progress=False)
    assert rep.failed == 0, [r["error"] for r in read_table(tmp_path).to_pylist() if r["error"]]
    assert rep.computed == small.n_cells
