"""``refcfg check module:function`` on a user module outside the package: exit
status 0 pass / 1 fail / 2 usage error (one line, no traceback), text and --json output.

The user module is written to tmp_path; its fields are computed from explicit Gaussian conditioning
(tests/_oracles.py copied next to it), not from refcfg's field code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refcfg.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = """
import numpy as np
from _oracles import labeled_eps

import refcfg

# the problem's parameters (weights, means, covariances) are read from refcfg; the fields are
# computed from them by the oracle's explicit Gaussian conditioning
_MIX = refcfg.problem("two-class-2d")
CLASSES = [(g.weights, g.means, g.covs) for g in _MIX.classes]

def _eps(x, t, y):
    return labeled_eps(CLASSES, _MIX.class_probs, x, t, y)

def eps(x, t, y):
    return _eps(x, t, y)

def cfg_eps(x, t, y, w=3.0):
    return w * _eps(x, t, y) + (1 - w) * _eps(x, t, np.full_like(y, -1))

def cfg_eps_hs(x, t, y, w=3.0):   # Ho-Salimans (1 + w) c - w u with the notes' w: a mistake
    return (1 + w) * _eps(x, t, y) - w * _eps(x, t, np.full_like(y, -1))

def broken(x, t, y):
    raise RuntimeError("boom")

def wrong_shape(x, t, y):
    return x[:, :1]

def no_return(x, t, y):
    x + 1

def _inner_helper(x):
    return x @ np.ones((3, 2))    # shapes (64, 2) @ (3, 2): ValueError

def deep_error(x, t, y):
    return _inner_helper(x)

NOT_CALLABLE = 3
"""


@pytest.fixture()
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "my_guidance.py").write_text(USER_MODULE)
    shutil.copy(ROOT / "tests" / "_oracles.py", tmp_path / "_oracles.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for mod in ("my_guidance",):
        sys.modules.pop(mod, None)


def _run(args, cwd):
    """python -m refcfg ... in a fresh process, with the user directory as the working directory."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "refcfg", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_subprocess_json_exit_codes(user_dir):
    """python -m refcfg in a fresh process: one passing and one failing target -> exit 1 and JSON
    with both reports; a missing module -> exit 2 with one line on stderr and no traceback."""
    res = _run(
        [
            "check",
            "my_guidance:cfg_eps",
            "my_guidance:cfg_eps_hs",
            "--problem",
            "two-class-2d",
            "--kind",
            "eps",
            "--w",
            "3",
            "--rtol",
            "1e-8",
            "--json",
        ],
        user_dir,
    )
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    assert doc["passed"] is False and [r["passed"] for r in doc["reports"]] == [True, False]
    good, bad = doc["reports"]
    assert good["name"] == "my_guidance:cfg_eps" and good["diagnoses"] == []
    assert bad["kind"] == "eps" and bad["w"] == 3.0 and bad["problem"] == "two-class-2d"
    assert [d["code"] for d in bad["diagnoses"]] == ["w_convention"]
    assert len(bad["per_t"]) == 11 and bad["worst"]["t"] in bad["times"]

    usage = _run(["check", "no_such_module:f"], user_dir)
    assert usage.returncode == 2 and usage.stdout == ""
    assert usage.stderr.strip().count("\n") == 0 and "Traceback" not in usage.stderr
    assert usage.stderr.startswith("refcfg: error: cannot import module 'no_such_module'")


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "my_guidance:nope"], "has no attribute 'nope'"),
        (["check", "my_guidance:NOT_CALLABLE"], "is not callable"),
        (["check", "my_guidance"], "must look like package.module:function"),
        (["check", "my_guidance:eps", "--kind", "speed"], "invalid choice"),
        (["check", "my_guidance:eps", "--problem", "nope"], "--problem: unknown problem 'nope'"),
        (["check", "my_guidance:eps", "--schedule", "nope"], "unknown schedule"),
        (["check", "my_guidance:eps", "--schedule", "polynomial:n"], "key=value"),
        (["check", "my_guidance:eps", "--times", "0.5,2"], "times must lie in [0, 1]"),
        (["check", "my_guidance:eps", "--times", "a,b"], "comma-separated"),
        (["check", "my_guidance:eps", "--y", "7"], "y must be in 0..1"),
        (["check", "my_guidance:eps", "--y", "cats"], "--y must be"),
        (["check", "my_guidance:eps", "--w", "2", "--y", "null"], "y must name a class"),
        (["check", "my_guidance:eps", "--n", "0"], "n must be a positive int"),
        (["check", "missing_file.py:eps"], "no such file"),
    ],
)
def test_usage_errors_exit_2_with_one_line(user_dir, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("refcfg: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_in_process_exit_codes_and_outputs(user_dir, capsys):
    assert main(["check", "my_guidance:eps", "--kind", "eps", "--rtol", "1e-8"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "labels cycling over classes 0..1 and NULL" in out
    assert main(["check", "my_guidance:cfg_eps", "--kind", "eps", "--w", "3"]) == 0
    assert "eps (CFG, w = 3) of my_guidance:cfg_eps: PASS" in capsys.readouterr().out
    # several targets: fails if one fails; both reports printed
    assert (
        main(
            [
                "check",
                "my_guidance:eps",
                "my_guidance:cfg_eps",
                "--kind",
                "eps",
                "--w",
                "3",
                "--json",
            ]
        )
        == 1
    )
    doc = json.loads(capsys.readouterr().out)
    assert [r["passed"] for r in doc["reports"]] == [False, True]
    assert [d["code"] for d in doc["reports"][0]["diagnoses"]] == ["no_guidance"]
    # a file path target and explicit times / schedule parameters
    assert (
        main(
            [
                "check",
                str(user_dir / "my_guidance.py") + ":eps",
                "--kind",
                "eps",
                "--times",
                "0.25,0.5",
                "--n",
                "8",
                "--rtol",
                "1e-8",
            ]
        )
        == 0
    )
    assert "0.25" in capsys.readouterr().out
    assert (
        main(
            [
                "check",
                "my_guidance:eps",
                "--kind",
                "eps",
                "--schedule",
                "polynomial:n=3",
                "--n",
                "8",
            ]
        )
        == 1
    )
    assert "schedule polynomial(n=3)" in capsys.readouterr().out


def test_user_function_failures_exit_1(user_dir, capsys):
    assert main(["check", "my_guidance:broken"]) == 1
    err = capsys.readouterr().err
    assert "my_guidance:broken raised RuntimeError at t = 0: boom" in err and err.count("\n") == 1
    assert main(["check", "my_guidance:wrong_shape"]) == 1
    assert "returned shape (64, 1)" in capsys.readouterr().err


def test_a_function_returning_none_is_named_so(user_dir, capsys):
    assert main(["check", "my_guidance:no_return"]) == 1
    err = capsys.readouterr().err
    assert "my_guidance:no_return returned None at t = 0" in err and err.count("\n") == 1
    assert "shape ()" not in err


def test_traceback_flag_shows_the_users_frames(user_dir, capsys):
    # without the flag: one line that says how to see more
    assert main(["check", "my_guidance:deep_error"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--traceback" in err and "Traceback" not in err
    # with it: the one line, then the traceback of the user's code (its own frames, not refcfg's)
    assert main(["check", "my_guidance:deep_error", "--traceback"]) == 1
    err = capsys.readouterr().err
    first, rest = err.split("\n", 1)
    assert first.startswith("refcfg: error: my_guidance:deep_error raised ValueError at t = 0")
    assert "Traceback" in rest and "_inner_helper" in rest and "deep_error" in rest
    assert "refcfg/validate.py" not in rest and rest.rstrip().splitlines()[-1].startswith(
        "ValueError"
    )


def test_traceback_flag_shows_where_an_import_failed(user_dir, capsys):
    (user_dir / "bad_import.py").write_text(
        "def helper():\n    raise KeyError('setting')\n\nhelper()\n"
    )
    try:
        assert main(["check", "bad_import:f"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "importing 'bad_import' raised KeyError" in err
        sys.modules.pop("bad_import", None)
        assert main(["check", "bad_import:f", "--traceback"]) == 2
        err = capsys.readouterr().err
        first, rest = err.split("\n", 1)
        assert first.startswith("refcfg: error: importing 'bad_import' raised KeyError")
        assert "Traceback" in rest and "helper" in rest and "bad_import.py" in rest
    finally:
        sys.modules.pop("bad_import", None)
