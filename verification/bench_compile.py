"""Cold-start cost of the CPU sampling kernels: numba's compile of every kernel specialisation the
public API reaches, the README example's time to first sample and the demo, each cold (an empty
numba cache directory) and warm (the same directory again), in fresh processes.

Every row runs in its own child process with ``NUMBA_CACHE_DIR`` set to a new empty directory
(cold), then again with the same directory (warm: numba loads the kernels from its cache). Times:
``wall`` (the child's own clock around the timed step) and ``cpu`` (user + system seconds of the
whole child, from the OS), with the load average (``os.getloadavg``, 1 min) when the row started.
On a shared machine wall times move with the load; CPU seconds much less.

With ``--old-rev REV`` the package of git revision REV (``git archive``) runs the same rows in the
same run, alternating old and new row by row, and the table gains the ratios old / new.

Rows (``--only``, comma-separated):
  spec:<mode>:<call>  one specialisation: mode iso | diag | full (mit-symmetric, a diagonal
                      two-class law, two-class-2d), call ode (heun; every ODE tableau is the same
                      specialisation) | sde (euler_maruyama) | vel (velocity at one t) |
                      velt (velocity at per-particle t) | score | div (divergence) |
                      loglik (the likelihood integrator)
  readme              ``refcfg.sample(path.cfg(0, 3.0), 1000, sampler="heun", steps=100)`` on
                      two-class-2d, linear schedule (import, first call, second call); below
                      ``backend="auto"``'s NumPy threshold (``refcfg.sampling.api.AUTO_NUMPY_WORK``)
                      it runs on NumPy and compiles nothing
  readme-cpu          the same call with ``backend="cpu"`` (the kernels' cold compile)
  demo-fast, demo     ``python -m refcfg demo [--fast] --no-progress --out TMP`` (whole command)

Warm speed (``--warm``): the kernels' time per particle-component with the kernels already
compiled, old and new alternating process by process (``--rounds`` rounds, the best of
``--repeat`` calls in each, the best over rounds kept), at the roofline table's shapes
(verification/bench_roofline.py: ``mixture`` of bench_sampling, t = 0.5, y = 0, w = 3):
``velocity`` (one evaluation) and ``euler`` (``refcfg.sample``, 10 steps).

The CUDA backend is not measured here: under numba's CUDA simulator nothing is compiled (the
kernels run as Python), and compiling for a GPU needs one (verification/gpu_check.py).

Pass timers (``--passes``, spec rows only): numba's own per-pass timers of every function the
row compiled (``overloads[sig].metadata["pipeline_times"]``; nested: a caller's type inference
includes its callees' compiles) and LLVM's (function passes, module passes, code generation), one
cold process per package.

Bitwise identity of the kernels' results old vs new: verification/kernel_bits.py.

Usage:  python verification/bench_compile.py [--old-rev REV] [--only ROWS] [--json OUT] [--passes]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _revisions import old_package

ROOT = Path(__file__).resolve().parents[1]

MODES = ("iso", "diag", "full")
CALLS = ("ode", "sde", "vel", "velt", "score", "div", "loglik")

_SPEC = r"""
import json, os, sys, time
import numpy as np
import refcfg
from refcfg.sampling import cpu
mode, call = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
if mode == "iso":
    path = refcfg.GMMPath(refcfg.problem("mit-symmetric"))
elif mode == "full":
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
else:
    mk = lambda k, s: refcfg.GMM(np.full(k, 1 / k), s + rng.standard_normal((k, 2)),
                                 0.3 + rng.random((k, 2)))
    path = refcfg.GMMPath(refcfg.LabeledGMM([mk(2, -2.0), mk(3, 2.0)]))
f = refcfg.CFGField(path, 0, 2.5)
x = rng.standard_normal((200, path.d))
t0 = time.perf_counter()
if call == "ode":
    refcfg.sample(path, 200, "heun", steps=4, seed=1, y=0, w=2.5, backend="cpu")
elif call == "sde":
    refcfg.sample(path, 200, "euler_maruyama", steps=4, sigma=0.5, seed=1, y=0, w=2.5,
                  backend="cpu")
elif call == "vel":
    cpu.velocity(f, x, 0.3)
elif call == "velt":
    cpu.velocity(f, x, rng.choice([0.2, 0.7], 200))
elif call == "score":
    cpu.score(f, x, 0.4)
elif call == "div":
    cpu.divergence(f, x, 0.6)
elif call == "loglik":
    cpu.integrate_logdet(f, x, np.linspace(1.0, 0.0, 5))
wall = time.perf_counter() - t0
if len(sys.argv) > 3:  # --passes: numba's per-pass timers of every compiled function
    import numba
    from refcfg.sampling import _cpu_kernels, _cpu_math
    rows, seen = [], set()
    for mod in (_cpu_kernels, _cpu_math):
        for name, obj in vars(mod).items():
            if not isinstance(obj, numba.core.registry.CPUDispatcher) or id(obj) in seen:
                continue
            seen.add(id(obj))
            for cres in obj.overloads.values():
                passes = {}
                for pipeline in (cres.metadata or {}).get("pipeline_times", {}).values():
                    for key, t in pipeline.items():
                        k = key.split("_", 1)[1]
                        passes[k] = passes.get(k, 0.0) + t.init + t.run + t.finalize
                llvm = {r.name.split(" (")[0].split(" on ")[0]: 0.0
                        for r in (cres.metadata or {}).get("llvm_pass_timings", [])}
                for r in (cres.metadata or {}).get("llvm_pass_timings", []):
                    llvm[r.name.split(" (")[0].split(" on ")[0]] += r.timings.get_total_time()
                rows.append({"function": name, "total": sum(passes.values()),
                             "passes": passes, "llvm": llvm})
    print(json.dumps({"wall": wall, "functions": rows}))
else:
    print(json.dumps({"wall": wall}))
"""

_README = r"""
import json, sys, time
t0 = time.perf_counter()
import refcfg
path = refcfg.GMMPath(refcfg.problem("two-class-2d"), refcfg.schedule("linear"))
t1 = time.perf_counter()
be = sys.argv[1] if len(sys.argv) > 1 else "auto"
refcfg.sample(path.cfg(0, 3.0), 1000, sampler="heun", steps=100, backend=be)
t2 = time.perf_counter()
refcfg.sample(path.cfg(0, 3.0), 1000, sampler="heun", steps=100, backend=be)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "wall": t2 - t1, "second": t3 - t2}))
"""


# (name, K, d, full, N): the roofline rows (bench_roofline.py) at a fixed N per row
WARM_SHAPES = (
    ("K=8 d=2 iso", 8, 2, False, 200_000),
    ("K=64 d=16 iso", 64, 16, False, 20_000),
    ("K=64 d=16 full", 64, 16, True, 20_000),
    ("K=1024 d=16 full", 1024, 16, True, 2048),
    ("K=64 d=64 iso", 64, 64, False, 10_000),
    ("K=1024 d=64 iso", 1024, 64, False, 2048),
)

_WARM = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from bench_sampling import best, mixture
import refcfg
from refcfg.sampling import cpu
K, d, N, repeat = (int(a) for a in sys.argv[2:6])
full = sys.argv[6] == "1"
path = mixture(K, d, full)
f = refcfg.CFGField(path, 0, 3.0)
x = np.random.default_rng(1).standard_normal((N, d))
vel = lambda: cpu.velocity(f, x, 0.5)
eul = lambda: refcfg.sample(path, N, "euler", steps=10, seed=0, y=0, w=3.0, backend="cpu")
vel(); eul()   # load (or compile) outside the timing
out = {}
for name, fn, evals in (("velocity", vel, 1), ("euler", eul, 10)):
    ts = []
    for _ in range(repeat):
        time.sleep(0.2)
        ts.append(best(fn, 1))
    out[name] = min(ts) / (N * K * evals) * 1e9
print(json.dumps(out))
"""


def warm_speed(pkgs, rounds, repeat, tmp, caches=None, shapes=None):
    """{(shape, column, pkg): best ns per particle-component}, alternating the packages. caches:
    numba cache directories per package (default: new ones, filled by the first round)."""
    caches = caches or {k: Path(tempfile.mkdtemp(prefix=f"numba-warm-{k}-", dir=tmp)) for k in pkgs}
    shapes = [s for s in WARM_SHAPES if shapes is None or s[0] in shapes]
    res = {}
    for rnd in range(rounds):
        for name, K, d, full, N in shapes:
            order = list(pkgs) if rnd % 2 == 0 else list(reversed(pkgs))
            for which in order:
                out, _, _, _ = _child(
                    _WARM,
                    pkgs[which],
                    caches[which],
                    (
                        str(ROOT / "verification"),
                        str(K),
                        str(d),
                        str(N),
                        str(repeat),
                        "1" if full else "0",
                    ),
                )
                for col, v in out.items():
                    key = (name, col, which)
                    res[key] = min(res.get(key, np.inf), v)
                print(
                    f"round {rnd} {name:18s} {which:3s} load {os.getloadavg()[0]:5.2f} "
                    + " ".join(f"{c} {v:.2f}" for c, v in out.items()),
                    flush=True,
                )
    return res


def _child(code_or_cmd, pkg: Path, cache: Path, args=()):
    """Run a child; returns (its json line or {}, wall of the whole child, its CPU seconds)."""
    env = dict(os.environ, PYTHONPATH=str(pkg), NUMBA_CACHE_DIR=str(cache))
    if isinstance(code_or_cmd, str):
        cmd = [sys.executable, "-c", code_or_cmd, *args]
    else:
        cmd = list(code_or_cmd)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=pkg, timeout=3000)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({r.returncode}): {r.stderr[-2000:]}")
    out = {}
    for line in reversed(r.stdout.strip().splitlines()):
        if line.startswith("{"):
            out = json.loads(line)
            break
    return out, wall, cpu, r.stderr


def _row(name, pkg: Path, tmp: Path):
    """Cold then warm of one row with package ``pkg``; a dict of figures."""
    cache = Path(tempfile.mkdtemp(prefix="numba-", dir=tmp))
    res = {"row": name, "load": os.getloadavg()[0]}
    for phase in ("cold", "warm"):
        if name in ("readme", "readme-cpu"):
            args = ("cpu",) if name == "readme-cpu" else ()
            out, whole, cpu, _ = _child(_README, pkg, cache, args)
            res[f"{phase}_import"] = out["import"]
            res[f"{phase}_second"] = out["second"]
        elif name.startswith("spec:"):
            _, mode, call = name.split(":")
            out, whole, cpu, _ = _child(_SPEC, pkg, cache, (mode, call))
        elif name in ("demo", "demo-fast"):
            outdir = Path(tempfile.mkdtemp(prefix="demo-", dir=tmp))
            cmd = [sys.executable, "-m", "refcfg", "demo", "--no-progress", "--out", str(outdir)]
            if name == "demo-fast":
                cmd.append("--fast")
            out, whole, cpu, err = _child(cmd, pkg, cache)
            out = {"wall": whole}
            res[f"{phase}_announced"] = "compiling the sampling kernels" in err
        else:
            raise ValueError(f"unknown row {name!r}")
        res[f"{phase}_wall"] = out["wall"]
        res[f"{phase}_process_wall"] = whole
        res[f"{phase}_cpu"] = cpu
    shutil.rmtree(cache, ignore_errors=True)
    return res


def _main_passes(args) -> int:
    """numba's per-pass timers of one cold compile per spec row and package (nested: a caller's
    type inference includes its callees' compiles; LLVM's own timers with NUMBA_LLVM_PASS_TIMINGS)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    pkgs = {"new": ROOT}
    if args.old_rev:
        pkgs = {"old": old_package(args.old_rev, tmp / f"old-{args.old_rev}"), "new": ROOT}
    os.environ["NUMBA_LLVM_PASS_TIMINGS"] = "1"
    try:
        for name in (args.only or "spec:full:ode").split(","):
            _, mode, call = name.split(":")
            for which, pkg in pkgs.items():
                cache = Path(tempfile.mkdtemp(prefix="numba-", dir=tmp))
                out, whole, cpu, _ = _child(_SPEC, pkg, cache, (mode, call, "passes"))
                print(
                    f"\n{name} {which}: first call {out['wall']:.2f} s, CPU {cpu:.1f} s, "
                    f"load {os.getloadavg()[0]:.2f}"
                )
                for r in sorted(out["functions"], key=lambda r: -r["total"])[:8]:
                    top = sorted(r["passes"].items(), key=lambda kv: -kv[1])[:4]
                    print(
                        f"  {r['total']:6.2f} {r['function']:22s} "
                        + " ".join(f"{k}={v:.2f}" for k, v in top)
                        + " | LLVM "
                        + " ".join(f"{k}={v:.2f}" for k, v in r["llvm"].items() if v >= 0.05)
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _main_warm(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    pkgs = {"new": ROOT}
    if args.old_dir:
        pkgs = {"old": Path(args.old_dir), "new": ROOT}
    elif args.old_rev:
        pkgs = {"old": old_package(args.old_rev, tmp / f"old-{args.old_rev}"), "new": ROOT}
    caches = (
        {k: Path(v) for k, v in (c.split("=") for c in args.caches.split(","))}
        if args.caches
        else None
    )
    shapes = args.shapes.split(";") if args.shapes else None
    try:
        res = warm_speed(pkgs, args.rounds, args.repeat, tmp, caches, shapes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cols = ("velocity", "euler")
    print(
        "\n| shape | "
        + " | ".join(f"{c} {p}" for c in cols for p in pkgs)
        + (" | " + " | ".join(f"{c} new/old" for c in cols) if "old" in pkgs else "")
        + " |"
    )
    print("|---|" + "---:|" * (len(cols) * len(pkgs) + (len(cols) if "old" in pkgs else 0)))
    for name, *_ in WARM_SHAPES:
        if (name, cols[0], "new") not in res:
            continue
        cells = [f"{res[(name, c, p)]:.2f}" for c in cols for p in pkgs]
        if "old" in pkgs:
            cells += [f"{res[(name, c, 'new')] / res[(name, c, 'old')]:.2f}" for c in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated rows (default: all)")
    ap.add_argument("--old-rev", default=None, help="git revision to compare against")
    ap.add_argument("--json", default=None, help="write the rows to this file")
    ap.add_argument("--warm", action="store_true", help="warm speed only (old vs new)")
    ap.add_argument("--rounds", type=int, default=3, help="warm: rounds of old/new (default 3)")
    ap.add_argument("--repeat", type=int, default=3, help="warm: calls per child (default 3)")
    ap.add_argument(
        "--old-dir",
        default=None,
        help="an existing copy of the old package's parent directory (instead of --old-rev)",
    )
    ap.add_argument("--caches", default=None, help="warm: old=DIR,new=DIR numba caches to reuse")
    ap.add_argument("--shapes", default=None, help="warm: ';'-separated shape names")
    ap.add_argument(
        "--passes", action="store_true", help="numba's per-pass timers of the spec rows (--only)"
    )
    args = ap.parse_args(argv)
    if args.warm:
        return _main_warm(args)
    if args.passes:
        return _main_passes(args)
    rows = (
        [f"spec:{m}:{c}" for m in MODES for c in CALLS]
        + ["readme", "readme-cpu", "demo-fast", "demo"]
        if args.only is None
        else [r for r in args.only.split(",") if r]
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    pkgs = {"new": ROOT}
    if args.old_rev:
        pkgs = {"old": old_package(args.old_rev, tmp / f"old-{args.old_rev}"), "new": ROOT}
    results = []
    try:
        for i, name in enumerate(rows):
            # alternate which package goes first, row by row
            order = list(pkgs) if i % 2 == 0 else list(reversed(pkgs))
            for which in order:
                r = _row(name, pkgs[which], tmp)
                r["pkg"] = which
                results.append(r)
                print(
                    f"{name:18s} {which:3s} load {r['load']:5.2f}  cold wall "
                    f"{r['cold_wall']:7.2f} cpu {r['cold_cpu']:7.2f}   warm wall "
                    f"{r['warm_wall']:6.2f} cpu "
                    f"{r['warm_cpu']:6.2f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    print(
        "\n| row | pkg | load | cold wall s | cold CPU s | warm wall s | warm CPU s | "
        "cold/warm wall |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['row']} | {r['pkg']} | {r['load']:.1f} | {r['cold_wall']:.2f} | "
            f"{r['cold_cpu']:.1f} | {r['warm_wall']:.2f} | {r['warm_cpu']:.1f} | "
            f"{r['cold_wall'] / r['warm_wall']:.2f} |"
        )
    if "old" in pkgs:
        print("\n| row | cold CPU old / new | cold wall old / new | warm wall old / new |")
        print("|---|---:|---:|---:|")
        for name in rows:
            o = next(r for r in results if r["row"] == name and r["pkg"] == "old")
            n = next(r for r in results if r["row"] == name and r["pkg"] == "new")
            print(
                f"| {name} | {o['cold_cpu'] / n['cold_cpu']:.2f} | "
                f"{o['cold_wall'] / n['cold_wall']:.2f} | "
                f"{o['warm_wall'] / n['warm_wall']:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
