"""An adversarial pass over the refcfg command line: hostile inputs, each run in a fresh process.

    python verification/adversarial.py [--fast] [--json] [--memory-limit 2G] [--keep DIR]

Writes a battery of hostile inputs to a temporary directory (problem files, model files, NPZ sample
files, sweep specs and sweep directories, user modules for ``refcfg check``) and runs the command
line on each, with ``REFCFG_MEMORY_LIMIT`` capping the memory budget, under a per-probe time limit.
Every outcome is classified:

- ``error``: the expected refusal: exit status 2 (or 1 for a ``check`` of a function that misbehaves
  or a ``check-samples`` that rejects), exactly one line ``refcfg: error: ...`` on stderr naming
  what was expected (the file, the field, the option), no output directory left behind when the
  probe says so;
- ``answer``: the expected result: exit status 0 (or the verdict expected) and the expected text;
- ``FAIL``: anything else: a traceback, a MemoryError, a signal, a hang (time limit), a NaN in an
  answer, an exit status 0 where a refusal was due (a false pass), a refusal that does not name
  what it should, or an output directory created by a refused job.

Prints one line per probe and the counts; exit status 1 when any probe FAILs. ``--fast`` runs a
subset (about a third) that the test suite runs (tests/test_adversarial.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Probe:
    """One hostile input: the command line, the exit status expected, the text that the one-line
    error (or the answer) must contain, and the path that must not exist afterwards."""

    name: str
    argv: list
    code: int = 2  # expected exit status
    expect: str = ""  # substring of stderr (errors) or stdout (answers)
    no_output: str | None = None  # path that a refused job must not create
    fast: bool = False  # part of the --fast subset
    timeout: float = 120.0
    env: dict = field(default_factory=dict)
    also: str = ""  # a second substring the error must contain
    stream: str = ""  # "out" or "err": where the expected text is (default by code)
    setup: tuple | None = None  # sweep probes: (spec, out, damage) run before the probe


# ----------------------------------------------------------------------------------------------
# hostile inputs
# ----------------------------------------------------------------------------------------------

GOOD_PROBLEM = """[problem]
name = "toy"
[[classes]]
weights = [0.5, 0.5]
means = [[-1.0, 0.0], [1.0, 0.5]]
covs = [[[1.0, 0.2], [0.2, 0.5]], [[0.5, 0.0], [0.0, 0.8]]]
[[classes]]
weights = [1.0]
means = [[0.0, 2.0]]
covs = [0.3]
"""

USER_MODULE = """
import ctypes, os, sys, time
import numpy as np
import refcfg

_P = refcfg.GMMPath(refcfg.problem("two-class-2d"))

def exact(x, t, y):
    out = np.empty_like(x)
    for lab in np.unique(y):
        i = y == lab
        out[i] = _P.velocity(x[i], float(t[0]), None if lab < 0 else int(lab))
    return out

def exits(x, t, y): sys.exit(0)
def exits_one(x, t, y): sys.exit(1)
def hard_exit(x, t, y): os._exit(0)
def crash(x, t, y): ctypes.string_at(0)
def complex_out(x, t, y): return exact(x, t, y) + 1e-9j
def string_out(x, t, y): return exact(x, t, y).astype(str)
def bool_out(x, t, y): return np.ones(x.shape, dtype=bool)
def object_out(x, t, y): return np.array([[object()] * x.shape[1]] * x.shape[0])
def nan_out(x, t, y): return np.full_like(x, np.nan)
def none_out(x, t, y): return None
def hangs(x, t, y):
    while True:
        time.sleep(0.2)
def prints_pass(x, t, y):
    print("refcfg check: PASS")
    return exact(x, t, y) * 2
def raises_keyboard(x, t, y): raise KeyboardInterrupt
def wrong_shape(x, t, y): return exact(x, t, y)[:, :1]
def huge_alloc(x, t, y): return np.ones((10**12, 2))
"""


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _forged_npy(shape, descr="<f8", payload=64) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + b"\0" * payload


def _zip(path: Path, members: dict, compress=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(name + ".npy", data)
    return path


def _bomb(path: Path, extra: dict, name: str, mib: int, ndim: int = 1) -> Path:
    """An .npz whose member ``name`` declares ``mib`` MiB of zeros (about 1/1000 compressed)."""
    shape = ((mib << 20) // 8,) if ndim == 1 else ((mib << 20) // 16, 2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, data in extra.items():
            zf.writestr(k + ".npy", data)
        with zf.open(name + ".npy", "w", force_zip64=True) as fh:
            fh.write(_forged_npy(shape, payload=0))
            chunk = b"\0" * (1 << 20)
            for _ in range(mib):
                fh.write(chunk)
    return path


class Pickled:
    """An object whose unpickling would leave a marker file: no loader may execute it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def build(tmp: Path) -> list[Probe]:
    """Write every hostile input under ``tmp`` and return the probes."""
    sys.path.insert(0, str(ROOT))
    from refcfg.learn.mlp import MLP, MLPConfig

    probes: list[Probe] = []
    (tmp / "out").mkdir(exist_ok=True)
    out = lambda name: str(tmp / "out" / name)  # noqa: E731  (must not exist after a refusal)

    # -- problem files ------------------------------------------------------------------------
    def problem_file(name, text=None, data=None):
        p = tmp / f"{name}.toml"
        if data is not None:
            p.write_bytes(data)
        else:
            p.write_text(text)
        return str(p)

    bad_problems = {
        "deep-array": (
            GOOD_PROBLEM.replace("covs = [0.3]", "covs = " + "[" * 5000 + "0.3" + "]" * 5000),
            "too deeply",
            True,
        ),
        "deep-tables": ("a." * 3000 + "b = 1\n", "levels deep", False),
        "nested-40": (
            GOOD_PROBLEM.replace("covs = [0.3]", "covs = " + "[" * 40 + "0.3" + "]" * 40),
            "levels deep",
            False,
        ),
        "weight-string": (
            GOOD_PROBLEM.replace("weights = [1.0]", 'weights = ["1.0"]'),
            "classes[1].weights[0] must be a number, got a string",
            True,
        ),
        "weight-bool": (
            GOOD_PROBLEM.replace("weights = [1.0]", "weights = [true]"),
            "classes[1].weights[0] must be a number, got a boolean",
            True,
        ),
        "class-probs-bool": (
            GOOD_PROBLEM.replace('name = "toy"', 'name = "toy"\nclass_probs = [true, false]'),
            "problem.class_probs[0] must be a number",
            False,
        ),
        "mean-nan": (GOOD_PROBLEM.replace("[0.0, 2.0]", "[nan, 2.0]"), "must be a finite", False),
        "mean-inf": (GOOD_PROBLEM.replace("[0.0, 2.0]", "[inf, 2.0]"), "must be a finite", False),
        "mean-int-400-digits": (
            GOOD_PROBLEM.replace("[0.0, 2.0]", "[1" + "0" * 400 + ", 2.0]"),
            "finite float64 number",
            False,
        ),
        "variance-1e300": (
            GOOD_PROBLEM.replace("covs = [0.3]", "covs = [1e300]"),
            "classes[1].covs has a variance",
            True,
        ),
        "mean-1e60": (
            GOOD_PROBLEM.replace("[0.0, 2.0]", "[1e60, 2.0]"),
            "classes[1].means has an entry",
            False,
        ),
        "variance-negative": (
            GOOD_PROBLEM.replace("covs = [0.3]", "covs = [-0.3]"),
            "classes[1]",
            False,
        ),
        "covariance-asymmetric": (
            GOOD_PROBLEM.replace("[[1.0, 0.2], [0.2, 0.5]]", "[[1.0, 0.2], [0.9, 0.5]]"),
            "classes[0]",
            False,
        ),
        "means-ragged": (
            GOOD_PROBLEM.replace("[[-1.0, 0.0], [1.0, 0.5]]", "[[-1.0, 0.0], [1.0]]"),
            "classes[0].means",
            False,
        ),
        "unknown-field": (
            GOOD_PROBLEM.replace("covs = [0.3]", "covs = [0.3]\ncovariance = 1"),
            "covariance",
            False,
        ),
        "syntax": ("[problem\nname = 1", "not valid TOML", False),
        "empty": ("", "classes", False),
        "no-classes": ('[problem]\nname = "x"\n', "classes", False),
        "classes-table": ("[classes]\nweights = [1.0]\n", "classes", False),
    }
    for name, (text, expect, fast) in bad_problems.items():
        f = problem_file(name, text)
        probes.append(
            Probe(
                f"problem/{name}",
                ["figures", "--problem", f, "--out", out(name), "--fast", "--formats", "png"],
                expect=f"{name}.toml",
                also=expect,
                no_output=out(name),
                fast=fast,
            )
        )
    latin = problem_file("latin1", data=GOOD_PROBLEM.replace("toy", "caf\u00e9").encode("latin-1"))
    probes.append(
        Probe(
            "problem/latin-1",
            ["figures", "--problem", latin, "--out", out("latin"), "--fast"],
            expect="is not UTF-8 text",
            no_output=out("latin"),
            fast=True,
        )
    )
    binary = problem_file("binary", data=bytes(range(256)) * 64)
    probes.append(
        Probe(
            "problem/binary",
            ["figures", "--problem", binary, "--out", out("bin")],
            expect="binary.toml",
            no_output=out("bin"),
        )
    )
    big = problem_file("big", GOOD_PROBLEM + ("# padding\n" * 400_000))
    probes.append(
        Probe(
            "problem/too-large-for-budget",
            ["figures", "--problem", big, "--out", out("big")],
            expect="lower the size",
            no_output=out("big"),
            env={"REFCFG_MEMORY_LIMIT": "64M"},
        )
    )
    (tmp / "dir.toml").mkdir()
    probes.append(
        Probe(
            "problem/directory",
            ["figures", "--problem", str(tmp / "dir.toml"), "--out", out("dir")],
            expect="is a directory",
        )
    )
    probes.append(
        Probe(
            "problem/missing",
            ["figures", "--problem", str(tmp / "nope.toml"), "--out", out("nope")],
            expect="does not exist",
        )
    )

    # -- model files --------------------------------------------------------------------------
    m = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=8, depth=1, seed=0))
    good = dict(np.load(m.save(tmp / "model-good.npz")))
    cfg = json.loads(str(good["config"]))

    def model(name, **changes):
        p = tmp / f"model-{name}.npz"
        np.savez(p, **dict(good, **changes))
        return str(p)

    theta_nan = good["theta"].copy()
    theta_nan[3] = np.nan
    marker = tmp / "PICKLE-EXECUTED"
    models = {
        "nan-theta": (model("nan", theta=theta_nan), "field 'theta' has 1 NaN", True),
        "inf-theta": (model("inf", theta=good["theta"] * np.inf), "NaN or infinite", False),
        "complex-theta": (model("complex", theta=good["theta"] + 1j), "dtype complex128", True),
        "string-theta": (model("string", theta=good["theta"].astype(str)), "dtype <U", False),
        "short-theta": (model("short", theta=good["theta"][:5]), "has shape (5,)", False),
        "width-1e6-depth-100": (
            model("huge", config=np.array(json.dumps(dict(cfg, width=10**6, depth=100)))),
            "lower width or depth",
            True,
        ),
        "config-unknown-key": (
            model("key", config=np.array(json.dumps(dict(cfg, colour=1)))),
            "field 'config'",
            False,
        ),
        "config-not-json": (
            model("notjson", config=np.array("{width: 3")),
            "field 'config' is not valid JSON",
            False,
        ),
        "config-deep-json": (
            model("deepjson", config=np.array("[" * 100000 + "]" * 100000)),
            "field 'config'",
            False,
        ),
        "config-float-width": (
            model("floatw", config=np.array(json.dumps(dict(cfg, width=8.5)))),
            "width must be an int",
            False,
        ),
        "meta-list": (model("metalist", meta=np.array("[1, 2]")), "field 'meta'", False),
        "version-99": (model("v99", format_version=np.array(99)), "format_version", False),
        "missing-theta": (
            str(
                _zip(
                    tmp / "model-missing.npz", {k: _npy(v) for k, v in good.items() if k != "theta"}
                )
            ),
            "missing ['theta']",
            False,
        ),
        "header-1e11": (
            str(
                _zip(
                    tmp / "model-hdr.npz",
                    {
                        **{k: _npy(v) for k, v in good.items() if k != "theta"},
                        "theta": _forged_npy((10**11,)),
                    },
                )
            ),
            "has shape (100000000000,)",
            True,
        ),
        "pickled-theta": (
            str(
                _zip(
                    tmp / "model-pickle.npz",
                    {
                        **{k: _npy(v) for k, v in good.items() if k != "theta"},
                        "theta": _npy(np.array([Pickled(marker)], dtype=object)),
                    },
                )
            ),
            "dtype object",
            True,
        ),
        "zip-bomb-1GiB": (
            str(
                _bomb(
                    tmp / "model-bomb.npz",
                    {k: _npy(v) for k, v in good.items() if k != "theta"},
                    "theta",
                    1024,
                )
            ),
            "model-bomb.npz",
            True,
        ),
        "not-a-zip": (str(tmp / "model-junk.npz"), "is not a refcfg model file", False),
        "single-npy": (str(tmp / "model-single.npy"), "single .npy array", False),
        "python-file": (str(tmp / "model-code.py"), "is not a refcfg model file", False),
    }
    (tmp / "model-junk.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    np.save(tmp / "model-single.npy", np.zeros(3))
    (tmp / "model-code.py").write_text(f"open({str(marker)!r}, 'w')\n")
    for name, (path, expect, fast) in models.items():
        probes.append(
            Probe(
                f"model/{name}",
                ["figures", "--model", path, "--out", out(name), "--fast", "--formats", "png"],
                expect=expect,
                no_output=out(name),
                fast=fast,
            )
        )
    probes.append(
        Probe(
            "model/good (answer)",
            [
                "figures",
                "--model",
                str(tmp / "model-good.npz"),
                "--out",
                out("good-model"),
                "--fast",
                "--formats",
                "png",
                "--no-progress",
            ],
            code=0,
            expect="learned_errors",
            timeout=300,
        )
    )

    # -- NPZ sample files (check-samples) -------------------------------------------------------
    def samples(name, members, compress=zipfile.ZIP_STORED):
        return str(_zip(tmp / f"samples-{name}.npz", members, compress))

    x_good = np.random.default_rng(0).standard_normal((200, 2))
    npz = {
        "header-1e11": (
            samples("hdr", {"samples": _forged_npy((10**11 // 2, 2))}),
            "needs an estimated",
            True,
        ),
        "complex": (samples("complex", {"samples": _npy(x_good + 1j)}), "dtype complex128", True),
        "strings": (samples("str", {"samples": _npy(x_good.astype(str))}), "(string)", False),
        "object-pickle": (
            samples("pickle", {"samples": _npy(np.array([[Pickled(marker)] * 2], dtype=object))}),
            "dtype object",
            True,
        ),
        "nan": (
            samples("nan", {"samples": _npy(np.where(x_good > 2, np.nan, x_good))}),
            "NaN or infinite",
            False,
        ),
        "one-dimensional": (
            samples("1d", {"samples": _npy(x_good[:, 0])}),
            "2 dimension(s)",
            False,
        ),
        "truncated": (
            samples("short", {"samples": _forged_npy((1000, 2))}),
            "truncated or forged",
            False,
        ),
        "zip-bomb-1GiB": (
            str(_bomb(tmp / "samples-bomb.npz", {}, "samples", 1024, ndim=2)),
            "lower the size of the array",
            False,
        ),
        "missing-key": (
            samples("nokey", {"a": _npy(x_good), "b": _npy(x_good)}),
            "pass --key",
            False,
        ),
    }
    for name, (path, expect, fast) in npz.items():
        probes.append(
            Probe(
                f"npz/{name}",
                ["check-samples", path],
                expect=expect,
                fast=fast,
                env={"REFCFG_MEMORY_LIMIT": "512M"} if "bomb" in name else {},
            )
        )
    np.savez(tmp / "samples-good.npz", samples=refcfg_samples(x_good.shape[0]))
    probes.append(
        Probe(
            "npz/exact samples (answer)",
            ["check-samples", str(tmp / "samples-good.npz")],
            code=0,
            expect="PASS",
            timeout=300,
        )
    )

    # -- check targets ------------------------------------------------------------------------
    (tmp / "hostile_user.py").write_text(USER_MODULE)
    (tmp / "exit_at_import.py").write_text("import sys\nsys.exit(0)\n")
    (tmp / "exit_at_import_1.py").write_text("import os\nos._exit(0)\n")
    (tmp / "hang_at_import.py").write_text("import time\nwhile True:\n    time.sleep(0.2)\n")
    checks = {
        "exact (answer)": ("hostile_user:exact", 0, "PASS", True),
        "sys.exit(0) in the function": ("hostile_user:exits", 1, "sys.exit(0)", True),
        "sys.exit(1) in the function": ("hostile_user:exits_one", 1, "sys.exit(1)", False),
        "os._exit(0) in the function": ("hostile_user:hard_exit", 1, "ended the process", True),
        "segfault in the function": ("hostile_user:crash", 1, "killed by signal", False),
        "complex output": ("hostile_user:complex_out", 1, "imaginary part", True),
        "string output": ("hostile_user:string_out", 1, "not a real numeric array", False),
        "bool output": ("hostile_user:bool_out", 1, "not a real numeric array", False),
        "object output": ("hostile_user:object_out", 1, "not a real numeric array", False),
        "NaN output (verdict FAIL)": ("hostile_user:nan_out", 1, "FAIL", False),
        "None output": ("hostile_user:none_out", 1, "returned None", False),
        "prints PASS, returns 2u": ("hostile_user:prints_pass", 1, "FAIL", False),
        "raises KeyboardInterrupt": ("hostile_user:raises_keyboard", 2, "KeyboardInterrupt", False),
        "wrong shape": ("hostile_user:wrong_shape", 1, "returned shape", False),
        "allocates 16 TB": ("hostile_user:huge_alloc", 1, "MemoryError", False),
        "sys.exit(0) at import": ("exit_at_import:f", 2, "called sys.exit(0)", True),
        "os._exit(0) at import": ("exit_at_import_1:f", 2, "while importing its module", False),
    }
    for name, (target, code, expect, fast) in checks.items():
        stream = "out" if code == 0 or expect == "FAIL" else "err"
        probes.append(
            Probe(
                f"check/{name}",
                ["check", target, "--n", "8", "--times", "0.5,1"],
                code=code,
                expect=expect,
                fast=fast,
            )
        )
        probes[-1].stream = stream
    probes.append(
        Probe(
            "check/hang in the function",
            ["check", "hostile_user:hangs", "--n", "8", "--timeout", "20"],
            expect="did not finish within --timeout 20 s",
            fast=True,
        )
    )
    probes.append(
        Probe(
            "check/hang at import",
            ["check", "hang_at_import:f", "--timeout", "20"],
            expect="while importing its module",
        )
    )

    # -- sizes ----------------------------------------------------------------------------------
    sizes = {
        "demo --n 1e8": (
            ["demo", "--n", "100000000", "--out", out("demo")],
            "lower --n",
            out("demo"),
            True,
        ),
        "compare-guidance --n 1e8": (
            ["compare-guidance", "--n", "100000000", "--out", out("cg")],
            "lower --n",
            out("cg"),
            True,
        ),
        "compare-guidance --n-ref 1e10": (
            ["compare-guidance", "--n-ref", "10000000000", "--out", out("cg2")],
            "lower --n",
            out("cg2"),
            False,
        ),
        "train --batch 1e8": (
            ["train", "--batch", "100000000", "--out", out("m.npz")],
            "lower --batch",
            out("m.npz"),
            True,
        ),
        "train --width 1e6 --depth 100": (
            ["train", "--width", "1000000", "--depth", "100", "--out", out("m2.npz")],
            "lower --batch, --width",
            out("m2.npz"),
            False,
        ),
        "train --n-samples 1e9": (
            ["train", "--n-samples", "1000000000", "--out", out("m3.npz")],
            "lower --n-field or --n-samples",
            out("m3.npz"),
            False,
        ),
        "check --n 1e8": (
            ["check", "hostile_user:exact", "--n", "100000000"],
            "lower --n",
            None,
            True,
        ),
        "vectors --n 1e8": (
            ["vectors", "--n", "100000000", "--out", out("vec")],
            "lower --n",
            out("vec"),
            True,
        ),
        "check-samples --n-ref 1e12": (
            ["check-samples", str(tmp / "samples-good.npz"), "--n-ref", "1000000000000"],
            "n_ref",
            None,
            False,
        ),
    }
    for name, (argv, expect, no_out, fast) in sizes.items():
        probes.append(Probe(f"size/{name}", argv, expect=expect, no_output=no_out, fast=fast))

    # -- sweeps ---------------------------------------------------------------------------------
    def spec(name, text=None, data=None):
        p = tmp / f"spec-{name}.toml"
        if data is not None:
            p.write_bytes(data)
        else:
            p.write_text(text)
        return str(p)

    small = (
        'name = "{name}"\nseeds = {seeds}\n[axes]\nproblem = ["gauss-1d"]\nw = {w}\n'
        'n = [{n}]\nsteps = [2]\nsampler = ["euler"]\n'
    )
    specs = {
        "seeds = 2**63 - 1": (
            small.format(name="s", seeds=2**63 - 1, w="[1.0]", n=20),
            "cells needs an estimated",
            True,
        ),
        "1e9 cells": (
            small.format(name="s", seeds=10**6, w=[float(i) for i in range(1000)], n=20),
            "a sweep of 1000000000 cells",
            True,
        ),
        "n = 1e12": (small.format(name="s", seeds=1, w="[1.0]", n=10**12), "one cell", False),
        "w as string": (small.format(name="s", seeds=1, w='["1.0"]', n=20), "axes.w[0]", False),
        "deep nesting": (
            small.format(name="s", seeds=1, w="[" * 3000 + "1.0" + "]" * 3000, n=20),
            "too deeply",
            False,
        ),
        "unknown key": (
            small.format(name="s", seeds=1, w="[1.0]", n=20) + "colour = 1\n",
            "colour",
            False,
        ),
    }
    for name, (text, expect, fast) in specs.items():
        probes.append(
            Probe(
                f"sweep/{name}",
                [
                    "sweep",
                    spec(name.replace(" ", "_").replace("*", ""), text),
                    "--out",
                    out("sw-" + name.replace(" ", "_")),
                    "--workers",
                    "0",
                    "--no-progress",
                ],
                expect=expect,
                no_output=out("sw-" + name.replace(" ", "_")),
                fast=fast,
            )
        )
    bad_utf8 = spec(
        "latin1", data=small.format(name="caf\u00e9", seeds=1, w="[1.0]", n=20).encode("latin-1")
    )
    probes.append(
        Probe(
            "sweep/latin-1 spec",
            ["sweep", bad_utf8, "--out", out("sw-latin"), "--workers", "0"],
            expect="is not UTF-8 text",
            no_output=out("sw-latin"),
        )
    )
    # a finished sweep whose directory is then tampered with (set up by prepare_sweeps)
    a = spec("a", small.format(name="a", seeds=1, w="[1.0, 2.0]", n=20))
    b = spec("b", small.format(name="b", seeds=1, w="[7.0]", n=30))
    sw = str(tmp / "sweep-dir")
    probes.append(
        Probe(
            "sweep/cell file [] (answer: recomputed)",
            ["sweep", a, "--out", sw, "--workers", "0", "--no-progress"],
            code=0,
            expect="were recomputed",
            fast=True,
            timeout=300,
        )
    )
    probes[-1].setup = (a, sw, "[]")
    probes.append(
        Probe(
            "sweep/edited row w = 999 (answer: recomputed)",
            ["sweep", a, "--out", sw, "--workers", "0", "--no-progress"],
            code=0,
            expect="w = 999.0 but the cell key says",
            timeout=300,
        )
    )
    probes[-1].setup = (a, sw, "w999")
    probes.append(
        Probe(
            "sweep/--out of another spec",
            ["sweep", b, "--out", sw, "--workers", "0", "--no-progress"],
            expect="holds the sweep of another spec",
            fast=True,
            timeout=300,
        )
    )
    probes[-1].setup = (a, sw, None)
    return probes


def refcfg_samples(n):
    """n exact draws of the marginal of two-class-2d (the answer probe of check-samples)."""
    import refcfg

    return refcfg.problem("two-class-2d").sample(n, seed=1)[0]


# ----------------------------------------------------------------------------------------------
# running and classifying
# ----------------------------------------------------------------------------------------------


def _env(probe: Probe, memory_limit: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), REFCFG_MEMORY_LIMIT=memory_limit)
    env.update(probe.env)
    return env


def _setup(probe: Probe, cwd: Path, memory_limit: str) -> None:
    """Sweep probes: run the spec once, then damage the directory as the probe says."""
    spec_path, out, damage = probe.setup
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "refcfg",
            "sweep",
            spec_path,
            "--out",
            out,
            "--workers",
            "0",
            "--no-progress",
        ],
        cwd=cwd,
        env=_env(probe, memory_limit),
        capture_output=True,
        timeout=300,
        check=True,
    )
    cells = sorted(Path(out, "cells").glob("*.json"))
    if damage == "[]":
        cells[0].write_text("[]")
    elif damage == "w999":
        doc = json.loads(cells[0].read_text())
        doc["row"]["w"] = 999.0
        cells[0].write_text(json.dumps(doc))


def run_probe(probe: Probe, cwd: Path, memory_limit: str) -> tuple[str, str, float]:
    """(outcome, detail, seconds): outcome "error", "answer" or "FAIL"."""
    if probe.setup:
        _setup(probe, cwd, memory_limit)
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            [sys.executable, "-m", "refcfg", *probe.argv],
            cwd=cwd,
            env=_env(probe, memory_limit),
            capture_output=True,
            text=True,
            timeout=probe.timeout,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return "FAIL", f"hang: no exit within {probe.timeout:g} s", time.perf_counter() - t0
    dt = time.perf_counter() - t0
    out, err, rc = res.stdout, res.stderr, res.returncode
    both = out + err
    if rc < 0:
        return "FAIL", f"killed by signal {-rc}", dt
    if "Traceback (most recent call last)" in err:
        return "FAIL", "traceback: " + err.strip().splitlines()[-1][:160], dt
    if "MemoryError" in both and "MemoryError" not in probe.expect:
        return "FAIL", "MemoryError", dt
    if rc != probe.code:
        kind = "false pass" if rc == 0 else f"exit status {rc}, expected {probe.code}"
        line = (err.strip().splitlines() or [""])[-1][:160]
        return "FAIL", f"{kind}: {line}", dt
    if probe.no_output and Path(probe.no_output).exists():
        return "FAIL", f"refused but created {probe.no_output}", dt
    if (cwd / "PICKLE-EXECUTED").exists():
        return "FAIL", "a pickle payload was executed", dt
    also = probe.also
    stream = probe.stream or ("out" if probe.code == 0 else "err")
    if stream == "err":
        lines = [ln for ln in err.strip().splitlines() if ln.startswith("refcfg: error:")]
        if len(lines) != 1:
            return (
                "FAIL",
                f"expected one 'refcfg: error:' line, got {len(lines)}: {err[:160]!r}",
                dt,
            )
        for want in (probe.expect, also):
            if want and want not in lines[0]:
                return "FAIL", f"error does not name {want!r}: {lines[0][:200]}", dt
        return "error", lines[0][len("refcfg: error: ") :][:150], dt
    if probe.expect not in both:
        return "FAIL", f"answer lacks {probe.expect!r}: {both[-200:]!r}", dt
    if probe.code == 0 and ("nan" in out.lower().split() or " nan " in out.lower()):
        return "FAIL", "NaN in the answer", dt
    return "answer", f"exit {rc}; found {probe.expect!r}", dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="the subset the test suite runs")
    ap.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    ap.add_argument("--memory-limit", default="2G", help="REFCFG_MEMORY_LIMIT (default 2G)")
    ap.add_argument("--keep", default=None, help="write the inputs here and keep them")
    ap.add_argument("--only", default=None, help="run the probes whose name contains this")
    args = ap.parse_args(argv)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="refcfg-adversarial-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        probes = build(tmp)
        if args.fast:
            probes = [p for p in probes if p.fast]
        if args.only:
            probes = [p for p in probes if args.only in p.name]
        results = []
        for p in probes:
            outcome, detail, dt = run_probe(p, tmp, args.memory_limit)
            results.append(
                {"probe": p.name, "outcome": outcome, "detail": detail, "seconds": round(dt, 2)}
            )
            if not args.json:
                print(f"{outcome:6s} {dt:6.1f} s  {p.name}: {detail}", flush=True)
        counts = {k: sum(r["outcome"] == k for r in results) for k in ("error", "answer", "FAIL")}
        if args.json:
            print(json.dumps({"counts": counts, "results": results}, indent=1))
        else:
            print(
                f"\n{len(results)} probes: {counts['error']} refused with a one-line error, "
                f"{counts['answer']} correct answers, {counts['FAIL']} FAIL"
            )
        return 1 if counts["FAIL"] else 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
