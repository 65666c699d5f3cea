"""Roofline table of the CPU kernels: measured cost against the arithmetic floor (run by hand).

    .venv/bin/python verification/bench_roofline.py [--repeat R] [--budget SECONDS]

For each shape (K components, dimension d, covariance type) and one exact CFG velocity evaluation
u~ = w u(x|y) + (1 - w) u(x|null) at t = 0.5 (linear schedule, y = 0, w = 3), all in ONE process
(so that machine load affects every column alike):

- kernel: ``refcfg.sampling.cpu.velocity`` (the fused Numba kernels), ns per particle-component
  (one particle-component = one particle x one mixture component);
- floor: flops per particle-component counted from the formula (``flops_per_pc`` below) over the
  peak float64 rate measured here by a large ``numpy`` dgemm (BLAS, all threads); ratio = kernel /
  floor;
- NumPy reference: ``GMMPath.cfg_velocity`` (the vectorised core);
- PyTorch CPU: the same field written the way a user would in torch (``torch_cfg`` below: the
  covariances whitened by Cholesky factors, two matrix products and a softmax, float64, torch's
  default threads), with the per-time matrices built inside the timed call as the kernel does;
- the kernel again with BLAS limited to one thread (threadpoolctl): the full-covariance kernels call
  BLAS inside their parallel region;
- agreement of the kernel and of the torch version with the NumPy reference (max |diff| / max |u|).

Then ``refcfg.sample`` Euler (backend "cpu") at d = 16, full covariances, K = 64 and 1024: ns per
particle-component per step. N is chosen per cell so that one timed call takes about ``budget``
seconds (default 0.25). Every cell is then timed once per pass, R passes (default 5), and the best
is kept; the peak is measured once per pass and the largest is used. Passes spread each cell's
samples over the whole run, so that a burst of load on a shared machine does not spoil one row.
The whole script takes ~2-3 minutes on 2 cores. Results vary with the machine's load (printed
after every pass): read the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sampling import best, mixture  # noqa: E402  (the same mixtures and timer)

T, Y, W = 0.5, 0, 3.0


def sized(run, n0, budget, n_max, repeat, step=64):
    """(seconds per call at the chosen N, N): grow N from n0 (x4) until a call takes a quarter of
    ``budget`` (so that the per-call overhead does not dominate the estimate), then scale N so that
    a call takes about ``budget`` s (a multiple of ``step``, at most n_max); best of ``repeat``."""
    run(n0)
    n = n0
    while True:
        t0 = time.perf_counter()
        run(n)
        dt = max(time.perf_counter() - t0, 1e-6)
        if dt >= budget / 4 or n >= n_max:
            break
        n = min(n_max, 4 * n)
    n = int(min(n_max, max(n0, budget / dt * n)))
    n = max(step, n - n % step)
    return (best(lambda: run(n), repeat) if repeat else None), n


def peak_gflops(repeat):
    """Peak float64 rate of this machine right now: a 3000^3 dgemm (all BLAS threads)."""
    n = 3000
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a @ b
    return 2.0 * n ** 3 / best(lambda: a @ b, repeat) / 1e9


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


class TorchCFG:
    """The CFG velocity as a user would write it in PyTorch (float64): per call, Cholesky factors of
    the K noisy covariances S_k = a^2 Sigma_k + b^2 I, whitened coordinates z_k = L_k^{-1}(x - a mu_k)
    as one matrix product of x with the stacked L_k^{-1}, log-densities and the two softmaxes
    (conditional over class y's components, unconditional over all), then
    u~ = sum_k (w q_k(x|y) + (1 - w) q_k(x)) (da mu_k + G_k L_k^{-T} z_k), G_k = a da Sigma_k + b db I,
    as a second matrix product. Isotropic mixtures use the scalar form (|x|^2 - 2a x.mu + a^2|mu|^2).
    Chunked over particles so the (n, K d) intermediates stay within ~64 MB."""

    def __init__(self, path, y, w):
        import torch

        self.torch = torch
        m = path.mixture.marginal
        self.sched = path.schedule
        self.iso = m.cov_type == "isotropic"
        self.mu = torch.tensor(m.means)
        self.logw = torch.tensor(m.log_weights)
        self.K, self.d = m.means.shape
        mask = path.mixture.component_class == y
        self.cmask = torch.tensor(np.where(mask, 0.0, -np.inf))
        self.w = float(w)
        if self.iso:
            self.s2 = torch.tensor(m.eigvals[:, 0].copy())
        else:
            self.covs = torch.tensor(m.covs)

    def __call__(self, x, t):
        torch = self.torch
        v = self.sched.values(np.array([t]))
        a, b, da, db = (float(v.alpha[0]), float(v.beta[0]), float(v.dalpha[0]), float(v.dbeta[0]))
        x = torch.from_numpy(x)
        N, d, K = x.shape[0], self.d, self.K
        chunk = max(1, int(8e6 // (K * (d + 2))))
        out = torch.empty((N, d), dtype=torch.float64)
        mu = self.mu
        if self.iso:
            S = a * a * self.s2 + b * b
            g = (a * da * self.s2 + b * db) / S                      # v_k = da mu_k + g_k (x - a mu_k)
            base = self.logw - 0.5 * d * torch.log(S) - 0.5 * a * a * (mu * mu).sum(1) / S
            C = da * mu - a * g[:, None] * mu                       # (K, d)
            for i in range(0, N, chunk):
                xc = x[i:i + chunk]
                ell = base + (a * (xc @ mu.T) - 0.5 * (xc * xc).sum(1, keepdim=True)) / S
                q = self.w * torch.softmax(ell + self.cmask, 1) + (1 - self.w) * torch.softmax(ell, 1)
                out[i:i + chunk] = q @ C + (q @ g)[:, None] * xc
            return out.numpy()
        eye = torch.eye(d, dtype=torch.float64)
        S = a * a * self.covs + b * b * eye
        L = torch.linalg.cholesky(S)
        Linv = torch.linalg.solve_triangular(L, eye.expand(K, d, d), upper=False)
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=1, dim2=2)).sum(1)
        B = (a * da * self.covs + b * db * eye) @ Linv.transpose(1, 2)      # (K, d, d)
        A = Linv.reshape(K * d, d)                                          # z = A x - c
        c = a * (Linv @ mu[:, :, None])[:, :, 0]                            # (K, d)
        Bst = B.transpose(1, 2).reshape(K * d, d)                          # Bst[k d + j, i] = B_k[i, j]
        base = self.logw - 0.5 * logdet
        for i in range(0, N, chunk):
            xc = x[i:i + chunk]
            z = (xc @ A.T).view(-1, K, d) - c
            ell = base - 0.5 * (z * z).sum(2)
            q = self.w * torch.softmax(ell + self.cmask, 1) + (1 - self.w) * torch.softmax(ell, 1)
            out[i:i + chunk] = da * (q @ mu) + (q[:, :, None] * z).reshape(-1, K * d) @ Bst
        return out.numpy()


def shapes():
    import refcfg

    yield "K=8, d=2 iso", mixture(8, 2, False)
    yield "K=64, d=16 iso", mixture(64, 16, False)
    yield "K=64, d=16 full", mixture(64, 16, True)
    yield "K=512, d=16 full", mixture(512, 16, True)
    yield "K=4096, d=16 full", mixture(4096, 16, True)
    yield "K=2048, d=64 iso", mixture(2048, 64, False)
    yield "tree", refcfg.GMMPath(refcfg.problem("tree"))
    yield "highdim", refcfg.GMMPath(refcfg.problem("highdim"))


class Case:
    """One timed column of one row: ``run(n)`` with n chosen once (``size``), then timed once per
    pass; the best over the passes is kept (passes spread each cell's samples over the run, so a
    burst of load on the shared machine does not spoil one row)."""

    def __init__(self, run, n0, n_max, per_call, limit_blas=False):
        self.run, self.n0, self.n_max, self.per_call = run, n0, n_max, per_call
        self.limit_blas, self.n, self.best = limit_blas, None, float("inf")

    def _call(self):
        if self.limit_blas:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                self.run(self.n)
        else:
            self.run(self.n)

    def size(self, budget):
        _, self.n = sized(self.run, self.n0, budget, self.n_max, 0)

    def time(self):
        t0 = time.perf_counter()
        self._call()
        self.best = min(self.best, time.perf_counter() - t0)

    @property
    def ns(self):
        return self.best / (self.n * self.per_call) * 1e9


def inputs(d, seed=1):
    rng = np.random.default_rng(seed)
    xs = {}

    def x_of(n):
        if n not in xs:
            xs.clear()
            xs[n] = 2.0 * rng.standard_normal((n, d))
        return xs[n]

    return x_of


def timed_passes(cases, repeat, budget, peaks):
    for c in cases:
        c.size(budget)
    for r in range(repeat):
        peaks.append(peak_gflops(1))
        for c in cases:
            c.time()
        print(f"  pass {r + 1}/{repeat} done (load average {os.getloadavg()[0]:.2f})", flush=True)


def eval_rows():
    """Rows of the table with the kernel, kernel-with-BLAS-1 and NumPy cases (torch not imported)."""
    import refcfg
    from refcfg.sampling import cpu

    rows = []
    for name, path in shapes():
        m = path.mixture.marginal
        K, d = m.means.shape
        mode = "isotropic" if m.cov_type == "isotropic" else "full"
        f = refcfg.CFGField(path, Y, W)
        x_of = inputs(d)
        xe = x_of(256).copy()
        ref = path.cfg_velocity(xe, T, Y, W)
        err_k = np.abs(cpu.velocity(f, xe, T) - ref).max() / np.abs(ref).max()
        n_cap = max(64, int(4e8 // (K * d * 8)))           # (n, K, d) float64 within ~400 MB
        kern = lambda n, f=f, x_of=x_of: cpu.velocity(f, x_of(n), T)   # noqa: E731
        rows.append(dict(
            shape=name, path=path, K=K, d=d, mode=mode, flops=flops_per_pc(mode, d),
            err_kernel=err_k, err_torch=None, xe=xe, ref=ref,
            kernel=Case(kern, 256, 4_000_000, K),
            kernel1=Case(kern, 256, 4_000_000, K, limit_blas=True),
            numpy=Case(lambda n, p=path, x_of=x_of: p.cfg_velocity(x_of(n), T, Y, W), 64, n_cap, K),
            torch=None))
    return rows


def sample_rows(steps=10):
    import refcfg

    rows = []
    for K in (64, 1024):
        path = mixture(K, 16, True)

        def run(n, path=path):
            refcfg.sample(path, n, "euler", steps=steps, seed=0, y=Y, w=W, backend="cpu")

        rows.append(dict(K=K, kernel=Case(run, 256, 2_000_000, K * steps),
                         kernel1=Case(run, 256, 2_000_000, K * steps, limit_blas=True)))
    return rows


def torch_cases(rows):
    """The torch column (imported only now: importing torch loads its OpenMP runtime, under which
    OpenBLAS calls inside Numba's parallel regions warn; the kernels were timed before)."""
    for r in rows:
        tc = TorchCFG(r["path"], Y, W)
        r["err_torch"] = np.abs(tc(r["xe"].copy(), T) - r["ref"]).max() / np.abs(r["ref"]).max()
        x_of = inputs(r["d"])
        r["torch"] = Case(lambda n, tc=tc, x_of=x_of: tc(x_of(n), T), 256, 4_000_000, r["K"])
    return [r["torch"] for r in rows]


def table(rows, peak):
    print(f"{'shape':>18} {'kernel':>8} {'blas=1':>8} {'flops':>6} {'floor':>7} {'ratio':>7} "
          f"{'numpy':>8} {'torch':>8} {'t/k':>7} {'err k':>8} {'err t':>8}   N kernel/numpy/torch")
    for r in rows:
        k, floor = r["kernel"].ns, r["flops"] / peak
        if r["torch"] is not None:
            tor, nt = f"{r['torch'].ns:8.2f} {r['torch'].ns / k:6.1f}x", r["torch"].n
        else:
            tor, nt = "       -       -", "-"
        et = r["err_torch"] if r["err_torch"] is not None else float("nan")
        print(f"{r['shape']:>18} {k:8.2f} {r['kernel1'].ns:8.2f} {r['flops']:6d} {floor:7.2f} "
              f"{k / floor:6.1f}x {r['numpy'].ns:8.1f} {tor} {r['err_kernel']:8.1e} {et:8.1e}"
              f"   {r['kernel'].n}/{r['numpy'].n}/{nt}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="passes (default 5)")
    ap.add_argument("--budget", type=float, default=0.25, help="seconds per timed call")
    a = ap.parse_args(argv)
    import importlib.util

    import numba

    torch_ok = importlib.util.find_spec("torch") is not None
    tinfo = "torch installed" if torch_ok else "torch not installed"
    t_start = time.perf_counter()
    print(f"numba {numba.__version__} ({numba.get_num_threads()} threads), numpy {np.__version__}, "
          f"{tinfo}, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    peaks = []
    rows, srows = eval_rows(), sample_rows()
    cases = [r[c] for r in rows for c in ("kernel", "kernel1", "numpy")]
    cases += [r[c] for r in srows for c in ("kernel", "kernel1")]
    print("kernel and NumPy columns:")
    timed_passes(cases, a.repeat, a.budget, peaks)
    if torch_ok:
        import torch

        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads):")
        timed_passes(torch_cases(rows), a.repeat, a.budget, peaks)
    peak = max(peaks)
    print(f"\npeak float64 (3000^3 dgemm, all BLAS threads; one per pass): max {peak:.1f}, "
          f"min {min(peaks):.1f} GFLOP/s")
    print(f"\nCFG velocity, one evaluation at t = {T}: ns per particle-component, best of "
          f"{a.repeat} passes; floor = flops / peak; ratio = kernel / floor; blas=1: the kernel with "
          "BLAS limited to one thread (threadpoolctl); t/k = torch / kernel; err = max|diff| / "
          "max|u| against GMMPath.cfg_velocity")
    table(rows, peak)
    print("\nrefcfg.sample (backend cpu), Euler, d = 16 full: ns per particle-component per step")
    for r in srows:
        print(f"  K = {r['K']:5d}: {r['kernel'].ns:7.2f} (BLAS limited to 1 thread: "
              f"{r['kernel1'].ns:.2f}; N = {r['kernel'].n}, 10 steps)")
    print(f"  K = 1024 / K = 64: {srows[1]['kernel'].ns / srows[0]['kernel'].ns:.2f}")
    print(f"\nload average at the end {os.getloadavg()}; total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
