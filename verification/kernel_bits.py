"""Bitwise identity of the CPU kernels' results between two revisions of the package.

Computes the same results with the working tree's package and with the package of git revision
``--old-rev`` (``git archive`` into a temporary directory), each in its own process with its own
numba cache directory, hashes every array (sha256 of its bytes) and compares them row by row.
Every covariance type (isotropic: mit-symmetric; diagonal: a two-class law with diagonal
covariances; full: two-class-2d, and highdim for d = 64) x the velocity at one time in the split
form (t = 0.3) and the direct form (t = 0.8) / at per-particle times / the score (one time and
per-particle times) / the divergence / the likelihood integral / Heun, RK4 with its trajectory,
Euler / Euler-Maruyama with the counter stream, with per-particle labels, with "ddpm" noise and
with a given noise array; and a 300-component, d = 16 law whose full covariances run in component
tiles (the M form at one time, the coordinates again at per-particle times, the divergence, Heun).
All with ``backend="cpu"``.

Prints one line per result (old hash, new hash, equal or not) and exits 1 on any difference (or a
missing row), 0 only when every row ran in both and matched.

Usage:  python verification/kernel_bits.py [--old-rev REV] [--keep DIR]
(``--keep DIR``: keep the old package and its numba cache in DIR and reuse them on the next run,
so that the old kernels are compiled once.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _revisions import old_package, short_rev

ROOT = Path(__file__).resolve().parents[1]

_CASES = r"""
import hashlib, json, sys
import numpy as np
import refcfg
from refcfg.sampling import cpu

out = {}


def h(name, a):
    out[name] = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


rng = np.random.default_rng(11)
mk = lambda k, s: refcfg.GMM(np.full(k, 1 / k), s + rng.standard_normal((k, 2)),
                             0.3 + rng.random((k, 2)))
laws = {
    "iso": refcfg.GMMPath(refcfg.problem("mit-symmetric")),
    "diag": refcfg.GMMPath(refcfg.LabeledGMM([mk(2, -2.0), mk(3, 2.0)])),
    "full": refcfg.GMMPath(refcfg.problem("two-class-2d")),
    "full-d64": refcfg.GMMPath(refcfg.problem("highdim")),
}
for name, p in laws.items():
    n = 100 if name == "full-d64" else 300
    x = 2.0 * rng.standard_normal((n, p.d))
    f = refcfg.CFGField(p, 0, 2.5)
    t = rng.choice([0.0, 0.3, 0.7, 1.0], n)
    y = np.arange(n) % 2
    h(f"{name}:vel t=0.3", cpu.velocity(f, x, 0.3))
    h(f"{name}:vel t=0.8", cpu.velocity(f, x, 0.8))
    h(f"{name}:vel per-particle t", cpu.velocity(f, x, t))
    h(f"{name}:score t=0.4", cpu.score(f, x, 0.4))
    h(f"{name}:score per-particle t", cpu.score(f, x, t))
    h(f"{name}:div t=0.6", cpu.divergence(f, x, 0.6))
    xl, ll = cpu.integrate_logdet(f, x, np.linspace(1.0, 0.0, 5))
    h(f"{name}:loglik x", xl)
    h(f"{name}:loglik integral", ll)
    kw = dict(seed=1, y=0, w=2.5, backend="cpu")
    h(f"{name}:heun", refcfg.sample(p, n, "heun", steps=4, **kw))
    xr, tr, ts = refcfg.sample(p, n, "rk4", steps=3, return_trajectory=True, **kw)
    h(f"{name}:rk4 x", xr)
    h(f"{name}:rk4 trajectory", tr)
    h(f"{name}:euler", refcfg.sample(p, n, "euler", steps=3, **kw))
    h(f"{name}:em counter", refcfg.sample(p, n, "euler_maruyama", steps=4, sigma=0.5, **kw))
    if name != "full-d64":
        h(f"{name}:em per-particle labels",
          refcfg.sample(p, n, "euler_maruyama", steps=4, sigma=0.7, seed=2, y=y, w=2.5,
                        backend="cpu"))
        h(f"{name}:em ddpm", refcfg.sample(p, n, "euler_maruyama", steps=4, sigma="ddpm", **kw))
        h(f"{name}:em noise array",
          refcfg.sample(p, n, "euler_maruyama", steps=3, sigma=0.5,
                        noise=rng.standard_normal((3, n, p.d)), **kw))
        h(f"{name}:heun per-particle labels",
          refcfg.sample(p, n, "heun", steps=3, seed=3, y=y, w=2.5, backend="cpu"))
K, d = 300, 16
tiles = refcfg.GMMPath(refcfg.LabeledGMM([
    refcfg.GMM(np.full(K, 1 / K), rng.standard_normal((K, d)),
               np.tile(np.eye(d), (K, 1, 1)) * (0.5 + rng.random((K, 1, 1))))
]))
nt = cpu._MFORM_MIN_N + 10
xt = rng.standard_normal((nt, d))
ft = refcfg.CFGField(tiles, 0, 2.0)
h("tiles:vel t=0.3 (M form)", cpu.velocity(ft, xt, 0.3))
h("tiles:vel t=0.8 (M form)", cpu.velocity(ft, xt, 0.8))
h("tiles:vel per-particle t (coordinates again)", cpu.velocity(ft, xt, rng.choice([0.2, 0.6], nt)))
h("tiles:score t=0.4", cpu.score(ft, xt, 0.4))
h("tiles:div t=0.6", cpu.divergence(ft, xt[:200], 0.6))
h("tiles:heun", refcfg.sample(tiles, nt, "heun", steps=2, seed=4, y=0, w=2.0, backend="cpu"))
print(json.dumps(out))
"""


def _start(pkg: Path, cache: Path):
    env = dict(os.environ, PYTHONPATH=str(pkg), NUMBA_CACHE_DIR=str(cache))
    return subprocess.Popen(
        [sys.executable, "-c", _CASES],
        env=env,
        cwd=pkg,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc, which):
    out, err = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{which} package failed ({proc.returncode}): {err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-rev", default="HEAD", help="git revision to compare against (HEAD)")
    ap.add_argument("--keep", default=None, help="keep/reuse the old package and its cache here")
    args = ap.parse_args(argv)
    rev = short_rev(args.old_rev)
    tmp = Path(tempfile.mkdtemp(prefix="kernel-bits-"))
    procs = {}
    try:
        base = Path(args.keep) / rev if args.keep else tmp / "old"
        old_pkg = old_package(rev, base / "pkg")
        old_cache = base / "numba-cache"
        old_cache.mkdir(parents=True, exist_ok=True)
        new_cache = tmp / "numba-cache-new"
        new_cache.mkdir()
        # both at once: two processes, each compiling (or loading) its own kernels
        procs = {"old": _start(old_pkg, old_cache), "new": _start(ROOT, new_cache)}
        res = {k: _result(p, k) for k, p in procs.items()}
    finally:
        for (
            p
        ) in procs.values():  # one side failed or timed out: stop the other before its cache goes
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    old, new = res["old"], res["new"]
    names = list(old) + [k for k in new if k not in old]
    bad = 0
    print(f"old = {rev}, new = the working tree ({ROOT})")
    for name in names:
        o, n = old.get(name, "missing"), new.get(name, "missing")
        same = o == n and o != "missing"
        bad += not same
        print(f"{'same' if same else 'DIFFERENT':9s} {name:48s} {o[:16]} {n[:16]}")
    print(f"{len(names) - bad} of {len(names)} results bitwise identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
