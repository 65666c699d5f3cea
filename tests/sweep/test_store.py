"""Sweep directories that were tampered with or belong to another spec.

A cell file of the wrong JSON shape, or whose row was edited (w = 999), is recomputed and listed in
the run's report, never taken into the table as is; an --out that holds the sweep of an unrelated
spec is refused (unless ``replace``); a resume, an extension with more values, and an earlier
smaller spec (its cells all present) still run. A stub cell function (a number per cell) keeps
these tests free of sampling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from refcfg.cli import main
from refcfg.sweep import load_spec, read_table, run
from refcfg.sweep.store import CELLS

from _specs import small


def stub(cell):
    """The spec's metric columns, each the cell's index plus a column offset."""
    return {c: float(cell.index) + i / 10 for i, c in enumerate(cell.settings.columns())}


SPEC = small(
    axes__problem=["gauss-1d"],
    axes__rule=["cfg"],
    axes__sampler=["euler"],
    seeds=1,
    axes__w=[1.0, 3.0],
)


def _run(spec, out, **kw):
    return run(spec, out, workers=0, progress=False, evaluate=stub, **kw)


def _cell_file(out, index):
    return out / CELLS / f"{load_spec(SPEC).cells()[index].id}.json"


@pytest.mark.parametrize("content", ["[]", "1", '"text"', '{"key": "x"}', "null"])
def test_wrong_shaped_cell_file_is_recomputed(tmp_path, content):
    assert _run(SPEC, tmp_path).computed == 2
    victim = _cell_file(tmp_path, 1)
    victim.write_text(content)
    rep = _run(SPEC, tmp_path)
    assert (rep.reused, rep.computed) == (1, 1)
    assert list(rep.rejected) == [str(victim)] and "not a cell file" in rep.rejected[str(victim)]
    assert "did not hold a valid row of their cell" in rep.summary()
    assert read_table(tmp_path).column("w").to_pylist() == [1.0, 3.0]


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda row: row.update(w=999.0), "w = 999.0 but the cell key says 3.0"),
        (lambda row: row.update(n=7), "n = 7 but the cell key says 200"),
        (lambda row: row.update(ed_cond="0.5"), "non-numbers in ['ed_cond']"),
        (lambda row: row.pop("loglik"), "the columns"),
        (lambda row: row.update(cell_id="0" * 24), "cell_id"),
    ],
)
def test_edited_row_is_checked_against_its_cell_key(tmp_path, edit, reason):
    _run(SPEC, tmp_path)
    victim = _cell_file(tmp_path, 1)
    doc = json.loads(victim.read_text())
    edit(doc["row"])
    victim.write_text(json.dumps(doc))
    rep = _run(SPEC, tmp_path)
    assert rep.computed == 1 and reason in rep.rejected[str(victim)]
    table = read_table(tmp_path)
    assert (
        table.column("w").to_pylist() == [1.0, 3.0] and table.column("n").to_pylist() == [200] * 2
    )
    assert json.loads(victim.read_text())["row"]["w"] == 3.0  # rewritten by the rerun


def test_out_of_another_spec_is_refused_unless_replace(tmp_path):
    _run(SPEC, tmp_path)
    before = read_table(tmp_path)
    other = small(
        axes__problem=["two-class-2d"],
        axes__rule=["cfg"],
        axes__sampler=["heun"],
        seeds=1,
        name="other",
    )
    with pytest.raises(
        ValueError,
        match=r"holds the sweep of another spec \('small'\): 2 of its 2 "
        r"cells are not cells of this spec.*--replace",
    ):
        _run(other, tmp_path)
    assert read_table(tmp_path).equals(before)  # nothing replaced
    rep = _run(other, tmp_path, replace=True)
    assert (
        rep.computed == 2
        and read_table(tmp_path).column("problem").to_pylist() == ["two-class-2d"] * 2
    )


def test_resume_extension_and_earlier_spec_need_no_flag(tmp_path):
    _run(SPEC, tmp_path)
    extended = dict(SPEC, axes=dict(SPEC["axes"], w=[1.0, 3.0, 5.0]))
    rep = _run(extended, tmp_path)  # documented extension
    assert (rep.reused, rep.computed) == (2, 1)
    rep = _run(SPEC, tmp_path)  # the old spec: table rebuilt
    assert (rep.reused, rep.computed) == (2, 0)
    assert read_table(tmp_path).column("w").to_pylist() == [1.0, 3.0]


def test_cli_refuses_a_foreign_out_in_one_line(tmp_path, capsys):
    _run(SPEC, tmp_path / "out")
    spec = tmp_path / "other.toml"
    spec.write_text(
        'name = "other"\n[axes]\nproblem = ["gauss-1d"]\nw = [7.0]\nn = [50]\n'
        'steps = [2]\nsampler = ["euler"]\n'
    )
    assert (
        main(
            ["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "0", "--no-progress"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("refcfg: error: out ") and "another spec" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(seeds=2**63 - 1), r"a sweep of 147573952589676412912 cells needs an estimated"),
        (dict(axes__w=[float(i) for i in range(1000)], seeds=10**6), r"a sweep of \d+ cells"),
        (dict(axes__n=[10**12]), r"one cell \(problem 'two-class-2d', n = 1000000000000\)"),
    ],
)
def test_sweeps_that_cannot_fit_are_refused_before_any_cell(tmp_path, changes, message):
    spec = small(**changes)
    with pytest.raises(ValueError, match="spec: " + message + ".*lower"):
        _run(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()
