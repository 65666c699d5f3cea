"""The student version of a lab: solution cells become stubs that keep signature and docstring;
every lab has exercises, each followed by a grader call; ``write_labs`` writes and refuses."""

from __future__ import annotations

import ast
import re

import pytest

pytest.importorskip("jupytext")

from refcfg.labs import student
from refcfg.labs.exercises import EXERCISES
from refcfg.labs.student import (
    EXERCISE_TAG,
    SOLUTION_TAG,
    lab_number,
    lab_sources,
    stub_source,
    student_notebook,
    write_labs,
)

LABS = lab_sources()


def test_stub_keeps_signature_and_docstring_and_raises():
    src = (
        '@staticmethod\ndef f(x, t,\n      y):\n    """Doc\n    string."""\n    return x + t\n\n\n'
        "def g(a):\n    return a  # no docstring\n"
    )
    out = stub_source(src)
    assert '"""Doc\n    string."""' in out and "return x + t" not in out and "return a" not in out
    assert "@staticmethod\ndef f(x, t,\n      y):" in out
    ns = {"staticmethod": lambda f: f}
    exec(out, ns)
    for name, args in (("f", (1, 2, 3)), ("g", (1,))):
        with pytest.raises(NotImplementedError, match=name):
            ns[name](*args)


def test_stub_refuses_cells_that_are_not_only_functions():
    with pytest.raises(ValueError, match="only function definitions.*Assign"):
        stub_source("x = 1\ndef f():\n    return 2\n", "lab, cell 3")
    with pytest.raises(ValueError, match="not valid Python"):
        stub_source("def f(:\n")
    with pytest.raises(ValueError, match="defines no function"):
        stub_source("# nothing\n")


def test_there_are_four_labs_in_order():
    assert [lab_number(p) for p in LABS] == [1, 2, 3, 4]


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_student_version_replaces_every_solution(path):
    full = student_notebook(path, solutions=True)
    student = student_notebook(path)
    assert len(full.cells) == len(student.cells)
    n = 0
    for a, b in zip(full.cells, student.cells):
        if SOLUTION_TAG in a.metadata.get("tags", []):
            n += 1
            assert EXERCISE_TAG in b.metadata["tags"] and SOLUTION_TAG not in b.metadata["tags"]
            defs = [node.name for node in ast.parse(a.source).body]
            stubbed = [node.name for node in ast.parse(b.source).body]
            assert defs == stubbed and "NotImplementedError" in b.source
        else:
            assert a.source == b.source
    assert n >= 2


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_each_exercise_is_followed_by_its_grader(path):
    """After a solution cell, the next code cell grades the function it defines."""
    nb = student_notebook(path, solutions=True)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        if SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        name = ast.parse(cell.source).body[-1].name
        call = re.search(r"labs\.grade\((?:per_label\()?(\w+)\)?, \"(\w+)\"", code[i + 1].source)
        assert call, code[i + 1].source
        assert call.group(1) == name and call.group(2) in EXERCISES


# the equation tags of the lecture notes' main text: 2a-2c, 3-6, 7a, 7b, 8-71 (eqs. 2 and 7 exist
# only with their letters)
NOTES_TAGS = {"2a", "2b", "2c", "7a", "7b"} | {str(k) for k in range(3, 72) if k not in (7,)}
CITATION = re.compile(r"\beqs?\. (\d+[a-z]?(?:(?:-|, | and )\d+[a-z]?)*)")


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_lab_sources_cite_equations_the_notes_have(path):
    """Every equation number cited in the labs ("eq. N", and every number of "eqs. A-B, C") is a tag
    of the notes' main text (NOTES_TAGS, with the letter where the notes have one: "eq. 7" is
    refused, 7a or 7b is the SDE), and the citations found wrong in earlier docs do not appear (the
    flow's number for the marginal field; the ranges from 59 to 61 or 62 and from 63 to 67). That
    a number cites the right equation is read by a person, not checked here."""
    text = path.read_text(encoding="utf-8")
    cited = [
        (m.group(0), n)
        for m in CITATION.finditer(text)
        for n in re.split(r"-|, | and ", m.group(1))
    ]
    assert cited
    bad = [(where, n) for where, n in cited if n not in NOTES_TAGS]
    assert not bad, bad
    assert not re.search(r"\beqs?\. 21\b|\beqs?\. 59-6[12]\b|\beqs?\. 63-67\b", text)


def test_the_citation_check_reads_every_number_of_a_list():
    found = [
        n
        for m in CITATION.finditer("eqs. 58-62, 63 and eq. 7 and eqs. 2b, 99")
        for n in re.split(r"-|, | and ", m.group(1))
    ]
    assert found == ["58", "62", "63", "7", "2b", "99"]
    assert [n for n in found if n not in NOTES_TAGS] == ["7", "99"]


def test_write_labs_writes_and_refuses_to_overwrite(tmp_path):
    written = write_labs(tmp_path, formats=("ipynb", "md"), solutions=True, labs=[1])
    names = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert names == [
        "01-gaussian-paths.ipynb",
        "01-gaussian-paths.md",
        "solutions/01-gaussian-paths.ipynb",
        "solutions/01-gaussian-paths.md",
    ]
    student_md = (tmp_path / "01-gaussian-paths.md").read_text()
    assert 'tags=["exercise"]' in student_md and "NotImplementedError" in student_md
    assert "return v.alpha[:, None] * z" not in student_md
    assert (
        "return v.alpha[:, None] * z"
        in (tmp_path / "solutions" / "01-gaussian-paths.md").read_text()
    )
    with pytest.raises(ValueError, match="exists"):
        write_labs(tmp_path, labs=[1])
    assert write_labs(tmp_path, labs=[1], force=True)


def test_write_labs_checks_before_writing(tmp_path):
    for kwargs, match in (
        ({"formats": ("pdf",)}, "formats"),
        ({"labs": [9]}, "no lab numbered 9"),
        ({"source": tmp_path / "none"}, "no lab folder"),
        ({"labs": 1.5}, "labs: must be a lab number"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            write_labs(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_links_of_the_lab_pages_resolve():
    folder = LABS[0].parent
    for page in [folder / "index.md"] + LABS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target:
                assert (page.parent / target).exists(), (page.name, target)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"labs": 1.0}, TypeError, "labs: must be a lab number or a list"),
        ({"labs": ["1"]}, TypeError, "labs: must be lab numbers \\(ints\\), got '1'"),
        ({"labs": [1.0]}, TypeError, "labs: must be lab numbers \\(ints\\), got 1.0"),
        ({"labs": [True]}, TypeError, "labs: must be lab numbers"),
        ({"labs": []}, ValueError, "labs: no lab number given"),
        ({"formats": "pdf"}, ValueError, "formats: must be among ipynb, md, got 'pdf'"),
        ({"formats": 3}, TypeError, "formats: must be a format name"),
    ],
)
def test_write_labs_names_the_bad_argument(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        write_labs(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_write_labs_takes_one_lab_or_one_format_alone(tmp_path):
    written = write_labs(tmp_path, labs=2, formats="md")
    assert [p.name for p in written] == ["02-marginal-field-and-score.md"]


def test_lab_number():
    assert [lab_number(p) for p in LABS] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="NN-name.md"):
        lab_number("index.md")


def test_sources_are_found_installed_when_there_is_no_checkout(tmp_path, monkeypatch):
    """Installed, the sources are package data in refcfg/labs/sources (no docs/labs next to it)."""
    installed = tmp_path / "site-packages" / "refcfg" / "labs" / "sources"
    installed.mkdir(parents=True)
    (installed / "01-a.md").write_text("x")
    monkeypatch.setattr(student, "_CHECKOUT", tmp_path / "no-checkout" / "docs" / "labs")
    monkeypatch.setattr(student, "_INSTALLED", installed)
    assert student._default_sources() == installed
    monkeypatch.setattr(student, "_CHECKOUT", LABS[0].parent)
    assert student._default_sources() == LABS[0].parent


def test_the_installed_copy_is_the_one_source():
    """refcfg/labs/sources (shipped as package data) is a link to docs/labs, not a second copy."""
    assert student._INSTALLED.is_symlink()
    assert student._INSTALLED.resolve() == LABS[0].parent.resolve()
    assert [p.name for p in lab_sources(student._INSTALLED)] == [p.name for p in LABS]
