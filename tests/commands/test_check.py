"""``refcfg check``: PASS and exit status 0 only after every case ran and compared.

A user function (or its module) that calls sys.exit, ends the process, hangs, or returns complex or
string values must not read as a pass: exit status 1 (the function failed) or 2 (nothing could be
checked), with one line that says why. The exact field the "good" function returns is computed by
the oracle of tests/_oracles.py (explicit Gaussian conditioning), not by refcfg's field code."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from refcfg.cli import main
from refcfg.validate import FieldError, check_field

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = """
import os, sys, time
import numpy as np
from _oracles import labeled_eps

import refcfg

_MIX = refcfg.problem("two-class-2d")
CLASSES = [(g.weights, g.means, g.covs) for g in _MIX.classes]

def eps(x, t, y):
    return labeled_eps(CLASSES, _MIX.class_probs, x, t, y)

def exits(x, t, y):
    sys.exit(0)

def hard_exit(x, t, y):
    os._exit(0)

def complex_eps(x, t, y):
    return eps(x, t, y) + 1e-3j

def zero_imag_eps(x, t, y):
    return eps(x, t, y) + 0j

def string_eps(x, t, y):
    return eps(x, t, y).astype(str)

def hangs(x, t, y):
    while True:
        time.sleep(0.5)
"""


@pytest.fixture()
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "hostile.py").write_text(USER_MODULE)
    (tmp_path / "exit_at_import.py").write_text(
        "import sys\nsys.exit(0)\ndef f(x, t, y):\n    return x\n"
    )
    shutil.copy(ROOT / "tests" / "_oracles.py", tmp_path / "_oracles.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for mod in ("hostile", "exit_at_import"):
        sys.modules.pop(mod, None)


def _one_line(err):
    assert err.startswith("refcfg: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_the_exact_field_passes_and_says_so(user_dir, capsys):
    assert main(["check", "hostile:eps", "--kind", "eps", "--n", "8", "--rtol", "1e-8"]) == 0
    assert "PASS" in capsys.readouterr().out


@pytest.mark.parametrize(
    "target, code, message",
    [
        pytest.param(
            "hostile:exits",
            1,
            "raised SystemExit at t = 0: it called sys.exit(0)",
            marks=pytest.mark.slow,
        ),
        ("hostile:hard_exit", 1, "ended the process (exit status 0) while it was being checked"),
        # each case runs a checking worker process (~1 s): one in the fast tier
        pytest.param(
            "hostile:complex_eps",
            1,
            "complex values with a non-zero imaginary part",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "hostile:string_eps", 1, "which is not a real numeric array", marks=pytest.mark.slow
        ),
        pytest.param(
            "exit_at_import:f",
            2,
            "importing 'exit_at_import' called sys.exit(0)",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_no_verdict_without_a_check(user_dir, capsys, target, code, message):
    assert main(["check", target, "--kind", "eps", "--n", "8"]) == code
    captured = capsys.readouterr()
    assert "PASS" not in captured.out
    assert message in _one_line(captured.err)


@pytest.mark.slow
def test_a_zero_imaginary_part_is_the_real_field(user_dir, capsys):
    assert (
        main(["check", "hostile:zero_imag_eps", "--kind", "eps", "--n", "8", "--rtol", "1e-8"]) == 0
    )


@pytest.mark.slow
def test_a_hanging_function_is_stopped_by_the_timeout(user_dir, capsys):
    assert main(["check", "hostile:hangs", "--kind", "eps", "--n", "8", "--timeout", "3"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "did not finish within --timeout 3 s" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--timeout", "-1"], "--timeout must be a number of seconds >= 0"),
        (["--n", "100000000000"], "lower --n"),
    ],
)
def test_options_refused_before_any_import(user_dir, capsys, args, message):
    # the module would exit at import: a refusal proves no worker was started
    assert main(["check", "exit_at_import:f", *args]) == 2
    assert message in _one_line(capsys.readouterr().err)


def test_check_field_refuses_sys_exit_and_complex_output():
    def exits(x, t, y):
        raise SystemExit(3)

    with pytest.raises(FieldError, match=r"raised SystemExit .* sys.exit\(3\)"):
        check_field(exits, "gauss-1d", n=4)
    with pytest.raises(FieldError, match="imaginary part"):
        check_field(lambda x, t, y: np.zeros_like(x) + 1j, "gauss-1d", n=4)
    with pytest.raises(FieldError, match="not a real numeric array"):
        check_field(lambda x, t, y: np.zeros(x.shape, dtype=bool), "gauss-1d", n=4)
