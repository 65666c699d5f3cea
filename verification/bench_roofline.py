"""Roofline table of the CPU kernels: measured cost against the arithmetic floor (run by hand).

    .venv/bin/python verification/bench_roofline.py [--repeat R] [--budget SECONDS] [--only NAMES]
    .venv/bin/python verification/bench_roofline.py --old-rev REV [--rounds R] [--only NAMES]

For each shape (K components, dimension d, covariance type) and one exact CFG velocity evaluation
u~ = w u(x|y) + (1 - w) u(x|null) at t = 0.5 (linear schedule, y = 0, w = 3), all in ONE process
(so that machine load affects every column alike), ns per particle-component (one particle x one
mixture component):

- kernel: ``refcfg.sampling.cpu.velocity`` (the fused Numba kernels);
- blas=1: the kernel again with BLAS limited to one thread (threadpoolctl): the full-covariance
  kernels call BLAS inside their parallel region;
- flops: per particle-component, counted from the formula (``flops_per_pc``); floor = flops over
  the peak float64 rate measured here by a large NumPy dgemm (BLAS, all threads); ratio = kernel /
  floor;
- numpy: the reference ``GMMPath.cfg_velocity`` (the vectorised core);
- numpy-mm and torch: the same field in the matrix-product form a user would write (``MatmulCFG``,
  one code run with xp = numpy or torch: logits as one matrix product, two softmaxes, a second
  product; Cholesky-whitened coordinates for full covariances; float64, the library's default
  threads, chunked to ~64 MB temporaries), with the per-time matrices built inside the timed call
  as the kernel does; mm/k and t/k = numpy-mm / kernel and torch / kernel;
- err: agreement of the kernel, numpy-mm and torch with ``GMMPath.cfg_velocity``
  (max |diff| / max |u|).

Then K = 1024 / K = 64 (the kernel, and with BLAS at one thread) for d = 16 full and d = 64
isotropic. Then ``refcfg.sample`` Euler (backend "cpu", 10 steps) for the same two families at
K = 64 and 1024, with at least SAMPLE_MIN_N particles: ns per particle-component per step, and
the same two ratios.

N is chosen per cell so that one timed call takes about ``budget`` seconds (default 0.2). Every
cell is then timed once per pass, R passes (default 5), each call after a pause of SETTLE seconds
(so that BLAS threads spinning after the previous cell are asleep), and the best is kept; the peak
is measured once per pass and the largest is used. Passes spread each cell's samples over the whole
run, so that a burst of load on a shared machine does not spoil one row.

``--old-rev REV`` compares the kernels of git revision REV with this tree's: the kernel and blas=1
columns of every row, in child processes that alternate old and new (``--rounds`` of each, the
first child choosing every cell's N and every later child timing the same N), the package of REV
extracted with ``git archive`` (its kernels compile once in the first old child, before anything
is timed); the table gives the best ns of each side over all its rounds and new / old. ``--only`` takes comma-separated shape
names or substrings (case-insensitive; e.g. ``--only "d=16 full,tree"``) and times only the
matching rows of both tables. torch is imported after the other columns are timed, and its column
is skipped if it is not installed. The whole script takes ~2-3 minutes on 2 cores. Results vary
with the machine's load (printed after every pass): read the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sampling import best, mixture

T, Y, W = 0.5, 0, 3.0
# seconds of pause before every timed call: after threaded BLAS work (the dgemm peak, the numpy-mm
# and torch columns) OpenBLAS's worker threads spin for ~0.1 s before they sleep, and a call timed
# in that window shares the cores with them (measured: the kernel 1.6-1.9x slower at d = 16 full)
SETTLE = 0.2
SAMPLE_MIN_N = 2048  # fewest particles of a timed refcfg.sample call


def sized(run, n0, budget, n_max, repeat, step=64, prepare=None):
    """(seconds per call at the chosen N, N): grow N from n0 (x4) until a call takes a quarter of
    ``budget`` (so that the per-call overhead does not dominate the estimate), then scale N so that
    a call takes about ``budget`` s (a multiple of ``step``, at most n_max); best of ``repeat``.
    ``prepare(n)``, if given, runs untimed before each timed call (generating the inputs)."""
    prepare = prepare or (lambda n: None)
    prepare(n0)
    run(n0)
    n = n0
    while True:
        prepare(n)
        t0 = time.perf_counter()
        run(n)
        dt = max(time.perf_counter() - t0, 1e-6)
        if dt >= budget / 4 or n >= n_max:
            break
        n = min(n_max, 4 * n)
    n = int(min(n_max, max(n0, budget / dt * n)))
    n = max(step, n - n % step)
    prepare(n)
    return (best(lambda: run(n), repeat) if repeat else None), n


def peak_gflops(repeat):
    """Peak float64 rate of this machine right now: a 3000^3 dgemm (all BLAS threads)."""
    n = 3000
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a @ b
    return 2.0 * n**3 / best(lambda: a @ b, repeat) / 1e9


def flops_per_pc(mode, d):
    """Arithmetic of the exact CFG field per particle-component, counted from the formula in the
    cheapest form (a fused multiply-add counts 2 flops):

    - shared by all modes: the exponential of the softmax ~26 (a degree-13 polynomial), max, sum
      and the two groups' normalised weights ~6: 32;
    - isotropic: |x - a mu_k|^2 = |x|^2 - 2a x.mu_k + a^2|mu_k|^2, one d-FMA dot product (2d), and
      the weighted sum of the means sum_k q_k c_k (2d): 4d (the two matrix products);
    - full: the rotation into the eigenbasis y_k = Q_k^T x - a Q_k^T mu_k (2d^2), the logit
      sum_j y_kj^2 / s_kj (2d), the gain times y (d), the rotation back Q_k (gain o y_k) weighted by
      q_k (2d^2) and the mean term (d): 4d^2 + 4d.
    """
    if mode == "isotropic":
        return 4 * d + 32
    return 4 * d * d + 4 * d + 32


class _NumpyOps:
    """The few calls where NumPy (with SciPy's softmax) and PyTorch differ, NumPy side."""

    name = "numpy-mm"

    def __init__(self):
        from scipy.special import softmax

        self._softmax = softmax

    @staticmethod
    def const(a):
        return np.array(a, dtype=np.float64)

    @staticmethod
    def wrap(a):
        return a

    def softmax(self, a):
        return self._softmax(a, axis=1)

    @staticmethod
    def cholesky(S):
        return np.linalg.cholesky(S)

    @staticmethod
    def tril_inv(L):
        return np.linalg.solve(L, np.broadcast_to(np.eye(L.shape[-1]), L.shape))


class _TorchOps:
    """The same calls, PyTorch side (float64 tensors; x and the output share NumPy's memory)."""

    name = "torch"

    def __init__(self, torch):
        self.torch = torch

    def const(self, a):
        return self.torch.tensor(np.asarray(a), dtype=self.torch.float64)

    def wrap(self, a):
        return self.torch.from_numpy(a)

    def softmax(self, a):
        return self.torch.softmax(a, 1)

    def cholesky(self, S):
        return self.torch.linalg.cholesky(S)

    def tril_inv(self, L):
        eye = self.torch.eye(L.shape[-1], dtype=L.dtype)
        return self.torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)


class MatmulCFG:
    """The CFG velocity in the matrix-product form a user would write with an array library, ONE
    code for NumPy and PyTorch (``xp``: the ``numpy`` or ``torch`` module; float64; torch's or
    BLAS's default threads). Per call, from the schedule at t:

    - isotropic: |x - a mu_k|^2 = |x|^2 - 2a x.mu_k + a^2|mu_k|^2, the logits as one (n, d) @ (d, K)
      product, the two softmaxes (conditional over class y's components, unconditional over all),
      then u~ = q @ C + (q @ g) x with q = w q(x|y) + (1 - w) q(x), C_k = da mu_k - a g_k mu_k,
      g_k = (a da s_k + b db) / (a^2 s_k + b^2);
    - full: Cholesky factors L_k of S_k = a^2 Sigma_k + b^2 I, whitened coordinates
      z_k = L_k^{-1}(x - a mu_k) as one product of x with the stacked L_k^{-1}, log-densities and
      the two softmaxes, then u~ = sum_k q_k (da mu_k + G_k L_k^{-T} z_k), G_k = a da Sigma_k + b db I,
      as a second product.

    Chunked over particles so that each (n, K d) temporary stays within ~64 MB."""

    def __init__(self, path, y, w, xp):
        if xp is np:
            self.ops = _NumpyOps()
        elif getattr(xp, "__name__", None) == "torch":
            self.ops = _TorchOps(xp)
        else:
            raise TypeError(f"xp: got {xp!r}, required the numpy or the torch module")
        self.xp = xp
        c = self.ops.const
        m = path.mixture.marginal
        self.sched = path.schedule
        self.iso = m.cov_type == "isotropic"
        self.mu, self.logw = c(m.means), c(m.log_weights)
        self.K, self.d = m.means.shape
        self.cmask = c(np.where(path.mixture.component_class == y, 0.0, -np.inf))
        self.w = float(w)
        if self.iso:
            self.s2 = c(m.eigvals[:, 0])
        else:
            self.covs, self.eye = c(m.covs), c(np.eye(self.d))

    def __call__(self, x, t):
        xp, ops = self.xp, self.ops
        v = self.sched.values(np.array([t]))
        a, b, da, db = (float(v.alpha[0]), float(v.beta[0]), float(v.dalpha[0]), float(v.dbeta[0]))
        N, d, K = x.shape[0], self.d, self.K
        chunk = max(1, int(8e6 // (K * (d + 2))))
        out_np = np.empty((N, d))
        x, out, mu = ops.wrap(x), ops.wrap(out_np), self.mu

        def q_of(ell):
            return self.w * ops.softmax(ell + self.cmask) + (1 - self.w) * ops.softmax(ell)

        if self.iso:
            S = a * a * self.s2 + b * b
            g = (a * da * self.s2 + b * db) / S  # v_k = da mu_k + g_k (x - a mu_k)
            base = self.logw - 0.5 * d * xp.log(S) - 0.5 * a * a * (mu * mu).sum(1) / S
            C = da * mu - a * g[:, None] * mu  # (K, d)
            for i in range(0, N, chunk):
                xc = x[i : i + chunk]
                q = q_of(base + (a * (xc @ mu.T) - 0.5 * (xc * xc).sum(1)[:, None]) / S)
                out[i : i + chunk] = q @ C + (q @ g)[:, None] * xc
            return out_np
        eye = self.eye
        L = ops.cholesky(a * a * self.covs + b * b * eye)
        Linv = ops.tril_inv(L)
        logdet = 2.0 * xp.log(L.reshape(K, d * d)[:, :: d + 1]).sum(1)
        B = (a * da * self.covs + b * db * eye) @ Linv.swapaxes(1, 2)  # (K, d, d)
        A = Linv.reshape(K * d, d)  # z = A x - c
        c = a * (Linv @ mu[:, :, None])[:, :, 0]  # (K, d)
        Bst = B.swapaxes(1, 2).reshape(K * d, d)  # Bst[k d + j, i] = B_k[i, j]
        base = self.logw - 0.5 * logdet
        for i in range(0, N, chunk):
            xc = x[i : i + chunk]
            z = (xc @ A.T).reshape(-1, K, d)
            z -= c
            q = q_of(base - 0.5 * (z * z).sum(2))
            z *= q[:, :, None]
            out[i : i + chunk] = da * (q @ mu) + z.reshape(-1, K * d) @ Bst
        return out_np


# The two families of the K-scaling targets, K = SCALE_K[1] against K = SCALE_K[0] (evaluation and
# sample rows alike): (family name, d, full covariances).
FAMILIES = (("d=16 full", 16, True), ("d=64 iso", 64, False))
SCALE_K = (64, 1024)


def shape_name(K, family):
    """The row name (no comma: ``--only`` splits on commas)."""
    return f"K={K} {family}"


def shapes():
    """(name, builder of the GMMPath) of the evaluation rows, in table order."""
    import refcfg

    synthetic = [
        (8, 2, False),
        (64, 16, False),
        (64, 16, True),
        (512, 16, True),
        (1024, 16, True),
        (4096, 16, True),
        (64, 64, False),
        (1024, 64, False),
        (2048, 64, False),
    ]
    out = [
        (
            shape_name(K, f"d={d} {'full' if full else 'iso'}"),
            lambda K=K, d=d, full=full: mixture(K, d, full),
        )
        for K, d, full in synthetic
    ]
    out += [
        (name, lambda name=name: refcfg.GMMPath(refcfg.problem(name)))
        for name in ("tree", "highdim")
    ]
    return out


def sample_shapes():
    """(name, K, d, full) of the ``sample`` rows: both families at both K of SCALE_K."""
    return [(shape_name(K, fam), K, d, full) for fam, d, full in FAMILIES for K in SCALE_K]


def select(names, only):
    """The names containing (case-insensitive) one of the comma-separated entries of ``only``
    (None: all). Raises ValueError for an empty entry or one that matches no name."""
    if only is None:
        return list(names)
    entries = [e.strip().lower() for e in only.split(",")]
    if any(not e for e in entries):
        raise ValueError(
            f"--only: got {only!r}, required a comma-separated list of non-empty "
            "shape names or substrings"
        )
    missing = [e for e in entries if not any(e in n.lower() for n in names)]
    if missing:
        raise ValueError(
            f"--only: got {only!r}; {', '.join(map(repr, missing))} matches no shape; "
            f"required (substrings of) {', '.join(dict.fromkeys(names))}"
        )
    return [n for n in names if any(e in n.lower() for e in entries)]


class Case:
    """One timed column of one row: ``run(n)`` with n chosen once (``size``), then timed once per
    pass; the best over the passes is kept (passes spread each cell's samples over the run, so a
    burst of load on the shared machine does not spoil one row)."""

    def __init__(self, run, n0, n_max, per_call, limit_blas=False, prepare=None):
        self.run, self.n0, self.n_max, self.per_call = run, n0, n_max, per_call
        self.limit_blas, self.prepare, self.n, self.best = limit_blas, prepare, None, float("inf")

    def _call(self, n):
        if self.limit_blas:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                self.run(n)
        else:
            self.run(n)

    def size(self, budget, n=None):
        if n is not None:  # N given (an A/B comparison): prepare and warm up at that N
            self.n = n
            (self.prepare or (lambda n: None))(n)
            self._call(n)
            return
        _, self.n = sized(self._call, self.n0, budget, self.n_max, 0, prepare=self.prepare)

    def time(self):
        time.sleep(SETTLE)
        t0 = time.perf_counter()
        self._call(self.n)
        self.best = min(self.best, time.perf_counter() - t0)

    @property
    def ns(self):
        return self.best / (self.n * self.per_call) * 1e9


_X = {}


def inputs(d):
    """x_of(n): the first n rows of one array of points 2 N(0, I_d) per d, shared by every row and
    column of that d; regenerated (same seed, so the same prefix) only when a larger n is asked,
    which ``Case.size`` does before its timed calls: a timed call never generates its input."""

    def x_of(n):
        x = _X.get(d)
        if x is None or len(x) < n:
            x = _X[d] = 2.0 * np.random.default_rng(1).standard_normal((n, d))
        return x[:n]

    return x_of


def timed_passes(cases, repeat, budget, peaks, fixed_n=None):
    """Size every case (or give it its N from ``fixed_n``, keyed by ``Case.key``), then time each
    once per pass, ``repeat`` passes."""
    t0 = time.perf_counter()
    for c in cases:
        c.size(budget, None if fixed_n is None else fixed_n[c.key])
    print(f"  {len(cases)} cells sized in {time.perf_counter() - t0:.0f} s", flush=True)
    for r in range(repeat):
        t0 = time.perf_counter()
        peaks.append(peak_gflops(1))
        for c in cases:
            c.time()
        print(
            f"  pass {r + 1}/{repeat}: {time.perf_counter() - t0:.0f} s (load average "
            f"{os.getloadavg()[0]:.2f})",
            flush=True,
        )


def rel_err(u, ref):
    return np.abs(u - ref).max() / np.abs(ref).max()


def mm_case(r, xp):
    """The matrix-product column of row r in the array module xp, with its agreement checked."""
    mm = MatmulCFG(r["path"], Y, W, xp)
    r["err"][mm.ops.name] = rel_err(mm(r["xe"].copy(), T), r["ref"])
    x_of = inputs(r["d"])
    return Case(lambda n, mm=mm, x_of=x_of: mm(x_of(n), T), 256, 4_000_000, r["K"], prepare=x_of)


def eval_rows(names, kernels_only=False):
    """Rows of the table with the kernel, kernel-with-BLAS-1, NumPy and numpy-mm cases (torch not
    imported; with ``kernels_only`` the kernel cases alone)."""
    import refcfg
    from refcfg.sampling import cpu

    rows = []
    for name, build in shapes():
        if name not in names:
            continue
        path = build()
        m = path.mixture.marginal
        K, d = m.means.shape
        mode = "isotropic" if m.cov_type == "isotropic" else "full"
        f = refcfg.CFGField(path, Y, W)
        x_of = inputs(d)
        xe = x_of(256).copy()
        ref = path.cfg_velocity(xe, T, Y, W)
        n_cap = max(64, int(4e8 // (K * d * 8)))  # (n, K, d) float64 within ~400 MB
        kern = lambda n, f=f, x_of=x_of: cpu.velocity(f, x_of(n), T)  # noqa: E731
        r = dict(
            shape=name,
            path=path,
            K=K,
            d=d,
            mode=mode,
            flops=flops_per_pc(mode, d),
            err={"kernel": rel_err(cpu.velocity(f, xe, T), ref)},
            xe=xe,
            ref=ref,
            kernel=Case(kern, 256, 4_000_000, K, prepare=x_of),
            kernel1=Case(kern, 256, 4_000_000, K, limit_blas=True, prepare=x_of),
            numpy=Case(
                lambda n, p=path, x_of=x_of: p.cfg_velocity(x_of(n), T, Y, W),
                64,
                n_cap,
                K,
                prepare=x_of,
            ),
            torch=None,
        )
        if not kernels_only:
            r["numpy-mm"] = mm_case(r, np)
        rows.append(r)
    return rows


def sample_rows(names, steps=10):
    import refcfg

    rows = []
    for name, K, d, full in sample_shapes():
        if name not in names:
            continue
        path = mixture(K, d, full)

        def run(n, path=path):
            refcfg.sample(path, n, "euler", steps=steps, seed=0, y=Y, w=W, backend="cpu")

        # at least SAMPLE_MIN_N particles, as in real sampling (the kernels' per-call set-up, such
        # as the M-form tables of full covariances, is then amortised as it is there)
        rows.append(
            dict(
                shape=name,
                steps=steps,
                kernel=Case(run, SAMPLE_MIN_N, 2_000_000, K * steps),
                kernel1=Case(run, SAMPLE_MIN_N, 2_000_000, K * steps, limit_blas=True),
            )
        )
    return rows


def torch_cases(rows):
    """The torch column (imported only now: importing torch loads its OpenMP runtime, under which
    OpenBLAS calls inside Numba's parallel regions warn; the kernels were timed before)."""
    import torch

    for r in rows:
        r["torch"] = mm_case(r, torch)
    return [r["torch"] for r in rows]


def table(rows, peak):
    nan = float("nan")
    print(
        f"{'shape':>18} {'kernel':>8} {'blas=1':>8} {'flops':>6} {'floor':>7} {'ratio':>7} "
        f"{'numpy':>8} {'numpy-mm':>8} {'mm/k':>6} {'torch':>8} {'t/k':>6} {'err k':>8} "
        f"{'err mm':>8} {'err t':>8}   N kernel/numpy/numpy-mm/torch"
    )
    for r in rows:
        k, floor, mm = r["kernel"].ns, r["flops"] / peak, r["numpy-mm"]
        if r["torch"] is not None:
            tor, nt = f"{r['torch'].ns:8.2f} {r['torch'].ns / k:5.1f}x", r["torch"].n
        else:
            tor, nt = "       -      -", "-"
        err = r["err"]
        print(
            f"{r['shape']:>18} {k:8.2f} {r['kernel1'].ns:8.2f} {r['flops']:6d} {floor:7.2f} "
            f"{k / floor:6.1f}x {r['numpy'].ns:8.1f} {mm.ns:8.2f} {mm.ns / k:5.1f}x {tor} "
            f"{err['kernel']:8.1e} {err['numpy-mm']:8.1e} {err.get('torch', nan):8.1e}"
            f"   {r['kernel'].n}/{r['numpy'].n}/{mm.n}/{nt}"
        )


def scaling(rows, columns):
    """K = SCALE_K[1] / K = SCALE_K[0] of the given columns' ns, per family present in rows."""
    by = {r["shape"]: r for r in rows}
    for fam, _, _ in FAMILIES:
        lo, hi = (by.get(shape_name(K, fam)) for K in SCALE_K)
        if lo is not None and hi is not None:
            vals = ", ".join(f"{c} {hi[c].ns / lo[c].ns:.2f}" for c in columns)
            print(f"  K = {SCALE_K[1]} / K = {SCALE_K[0]}, {fam}: {vals}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="passes (default 5)")
    ap.add_argument(
        "--budget", type=float, default=0.2, help="seconds per timed call (default 0.2)"
    )
    ap.add_argument(
        "--only",
        default=None,
        help="comma-separated shape names or substrings (case-insensitive) to time, "
        "e.g. 'd=16 full,tree'; default all",
    )
    ap.add_argument(
        "--old-rev",
        default=None,
        help="compare the kernel columns with those of this git revision (old / new children, "
        "alternating)",
    )
    ap.add_argument("--rounds", type=int, default=2, help="--old-rev: rounds (default 2)")
    # an --old-rev child: the kernel columns only, N read from / written to JSON
    ap.add_argument("--kernels-json", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--fixed-n", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error(f"--repeat: got {a.repeat}, required an integer >= 1")
    if not a.budget > 0:
        ap.error(f"--budget: got {a.budget}, required a number of seconds > 0")
    if a.rounds < 1:
        ap.error(f"--rounds: got {a.rounds}, required an integer >= 1")
    eval_names = [n for n, _ in shapes()]
    sample_names = [s[0] for s in sample_shapes()]
    try:
        names = set(select(eval_names + sample_names, a.only))
    except ValueError as e:
        ap.error(str(e))
    if a.old_rev is not None:
        return compare_revisions(a)
    if a.kernels_json is not None:
        return kernels_child(names, a)
    import importlib.util

    import numba

    torch_ok = importlib.util.find_spec("torch") is not None
    tinfo = "torch installed" if torch_ok else "torch not installed"
    t_start = time.perf_counter()
    print(
        f"numba {numba.__version__} ({numba.get_num_threads()} threads), numpy {np.__version__}, "
        f"{tinfo}, {os.cpu_count()} CPUs, load average {os.getloadavg()}",
        flush=True,
    )
    peaks = []
    rows, srows = eval_rows(names), sample_rows(names)
    cases = [r[c] for r in rows for c in ("kernel", "kernel1", "numpy", "numpy-mm")]
    cases += [r[c] for r in srows for c in ("kernel", "kernel1")]
    print("kernel and NumPy columns:")
    timed_passes(cases, a.repeat, a.budget, peaks)
    if torch_ok and rows:
        import torch

        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads):")
        timed_passes(torch_cases(rows), a.repeat, a.budget, peaks)
    peak = max(peaks)
    print(
        f"\npeak float64 (3000^3 dgemm, all BLAS threads; one per pass): max {peak:.1f}, "
        f"min {min(peaks):.1f} GFLOP/s"
    )
    if rows:
        print(
            f"\nCFG velocity, one evaluation at t = {T}: ns per particle-component, best of "
            f"{a.repeat} passes; floor = flops / peak; ratio = kernel / floor; blas=1: the kernel "
            "with BLAS limited to one thread (threadpoolctl); numpy = GMMPath.cfg_velocity; "
            "numpy-mm / torch = MatmulCFG in numpy / torch; mm/k, t/k = numpy-mm, torch / kernel; "
            "err = max|diff| / max|u| against GMMPath.cfg_velocity"
        )
        table(rows, peak)
        scaling(rows, ("kernel", "kernel1"))
    if srows:
        print(
            f"\nrefcfg.sample (backend cpu), Euler, {srows[0]['steps']} steps: ns per "
            "particle-component per step"
        )
        for r in srows:
            print(
                f"  {r['shape']:>18}: {r['kernel'].ns:7.2f} (BLAS limited to 1 thread: "
                f"{r['kernel1'].ns:.2f}; N = {r['kernel'].n})"
            )
        scaling(srows, ("kernel", "kernel1"))
    print(
        f"\nload average at the end {os.getloadavg()}; total {time.perf_counter() - t_start:.0f} s"
    )


def _kernel_cases(names):
    """The kernel and blas=1 cases of the selected rows, each with its ``key``."""
    cases = []
    for r in eval_rows(names, kernels_only=True):
        for c in ("kernel", "kernel1"):
            r[c].key = f"velocity {r['shape']}|{c}"
            cases.append(r[c])
    for r in sample_rows(names):
        for c in ("kernel", "kernel1"):
            r[c].key = f"euler {r['shape']}|{c}"
            cases.append(r[c])
    return cases


def kernels_child(names, a):
    """One side of an --old-rev comparison: time the kernel cases, write {key: [ns, N]}."""
    import json

    import refcfg

    fixed = None
    if a.fixed_n is not None:
        with open(a.fixed_n) as fh:
            fixed = {k: v[1] for k, v in json.load(fh).items()}
    cases = _kernel_cases(names)
    print(f"  refcfg from {os.path.dirname(refcfg.__file__)}", flush=True)
    timed_passes(cases, a.repeat, a.budget, [], fixed)
    with open(a.kernels_json, "w") as fh:
        json.dump({c.key: [c.ns, c.n] for c in cases}, fh)
    return 0


def compare_revisions(a):
    """Old (git revision ``a.old_rev``) against new (this tree), kernel columns, children
    alternating old, new for ``a.rounds`` rounds; prints the best ns of each side and new / old.
    The old package and its compiled kernels live in a temporary directory, removed at the end."""
    import shutil
    import subprocess
    import tempfile

    work = tempfile.mkdtemp(prefix="roofline-ab-")
    try:
        return _compare_in(work, a)
    except subprocess.CalledProcessError as exc:
        err = exc.stderr or b""
        err = (err.decode(errors="replace") if isinstance(err, bytes) else err).strip()
        print(
            f"bench_roofline: error: {' '.join(map(str, exc.cmd))} failed: {err}", file=sys.stderr
        )
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compare_in(work, a):
    """``compare_revisions`` with its working directory ``work``."""
    import json
    import subprocess

    from _revisions import ROOT, old_package, short_rev

    root = str(ROOT)
    rev = short_rev(a.old_rev)
    old_pkg = str(old_package(a.old_rev, os.path.join(work, "old")))
    child_args = ["--repeat", str(a.repeat), "--budget", str(a.budget)]
    if a.only is not None:
        child_args += ["--only", a.only]
    sides = {"old": old_pkg, "new": root}
    results = {"old": [], "new": []}
    sizes = os.path.join(work, "sizes.json")
    print(
        f"old = {a.old_rev} ({rev}), new = this tree; {a.rounds} rounds; load average "
        f"{os.getloadavg()}",
        flush=True,
    )
    for rnd in range(a.rounds):
        for side in ("old", "new"):
            out = os.path.join(work, f"{side}-{rnd}.json")
            extra = ["--fixed-n", sizes] if os.path.exists(sizes) else []
            env = dict(os.environ, PYTHONPATH=sides[side])
            print(f"round {rnd + 1}, {side}:", flush=True)
            subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--kernels-json", out]
                + extra
                + child_args,
                env=env,
                check=True,
            )
            if not extra:
                os.replace(out, sizes)
                out = sizes
            with open(out) as fh:
                results[side].append(json.load(fh))
    best = {side: {k: min(r[k][0] for r in rs) for k in rs[0]} for side, rs in results.items()}
    print(
        f"\nkernel columns, ns per particle-component (per step for euler), best of {a.rounds} "
        f"rounds x {a.repeat} passes; old = {rev}, new = this tree; same N on both sides"
    )
    print(f"  {'row':>34} {'column':>8} {'N':>8} {'old':>9} {'new':>9} {'new/old':>8}")
    worst = 0.0
    for key in best["old"]:
        row, col = key.split("|")
        ratio = best["new"][key] / best["old"][key]
        worst = max(worst, ratio)
        n = results["old"][0][key][1]
        print(
            f"  {row:>34} {col:>8} {n:>8} {best['old'][key]:9.2f} {best['new'][key]:9.2f} "
            f"{ratio:8.2f}"
        )
    print(f"\nlargest new / old: {worst:.2f}; load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
