"""``refcfg labs``: writes the student notebooks; checks every argument before writing anything,
with one line on stderr and exit status 2."""

from __future__ import annotations

import json
import sys

import pytest

from refcfg.cli import main

pytest.importorskip("jupytext")

pytestmark = pytest.mark.slow  # the command line, with jupytext


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.startswith("refcfg: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


def test_labs_writes_student_notebooks(tmp_path, capsys):
    assert main(["labs", "--out", str(tmp_path / "class")]) == 0
    out = capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "class").iterdir())
    assert files == [
        "01-gaussian-paths.ipynb",
        "02-marginal-field-and-score.ipynb",
        "03-guidance.ipynb",
        "04-what-guidance-does.ipynb",
    ]
    assert "wrote 4 file(s) for 4 lab(s)" in out
    nb = json.loads((tmp_path / "class" / "03-guidance.ipynb").read_text())
    exercises = [c for c in nb["cells"] if "exercise" in c["metadata"].get("tags", [])]
    assert len(exercises) == 4
    assert all("raise NotImplementedError" in "".join(c["source"]) for c in exercises)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_labs_solutions_and_formats(tmp_path, capsys):
    assert (
        main(["labs", "--out", str(tmp_path), "--lab", "2", "--format", "md,ipynb", "--solutions"])
        == 0
    )
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*"))
    assert names == [
        "02-marginal-field-and-score.ipynb",
        "02-marginal-field-and-score.md",
        "solutions/02-marginal-field-and-score.ipynb",
        "solutions/02-marginal-field-and-score.md",
    ]


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--format", "pdf"], ("--format", "'pdf'")),
        (["--lab", "9"], ("--lab", "no lab numbered 9", "have 1, 2, 3, 4")),
        (["--format", ","], ("--format", "must be among")),
        (["--source", "/nonexistent/labs"], ("--source", "no lab folder")),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path, capsys, args, needles):
    out = tmp_path / "class"
    assert main(["labs", "--out", str(out)] + args) == 2
    _one_line_error(capsys, *needles)
    assert not out.exists()


def test_existing_notebooks_need_force(tmp_path, capsys):
    assert main(["labs", "--out", str(tmp_path), "--lab", "1"]) == 0
    capsys.readouterr()
    assert main(["labs", "--out", str(tmp_path), "--lab", "1"]) == 2
    _one_line_error(capsys, "--out", "exists", "--force")
    assert main(["labs", "--out", str(tmp_path), "--lab", "1", "--force"]) == 0


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    assert main(["labs", "--out", str(f)]) == 2
    _one_line_error(capsys, "--out", "not a directory")


def test_a_repeated_lab_is_written_and_counted_once(tmp_path, capsys):
    assert main(["labs", "--out", str(tmp_path), "--lab", "1", "--lab", "1"]) == 0
    assert "wrote 1 file(s) for 1 lab(s)" in capsys.readouterr().out


def test_without_jupytext_the_command_says_so_on_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "jupytext", None)  # import jupytext -> ImportError
    assert main(["labs", "--out", str(tmp_path / "class")]) == 2
    _one_line_error(capsys, "jupytext", "pip install 'refcfg[labs]'", "nothing written")
    assert not (tmp_path / "class").exists()
