"""Measurements of the CUDA kernels under numba's CUDA simulator, printed as one JSON object.

Run by ``tests/sampling/test_cuda_sim.py`` in a subprocess with NUMBA_ENABLE_CUDASIM=1 set before
numba is imported (the simulator cannot be switched on inside a process that imported numba). It
only measures; the tolerances live in the test. Sizes are small (~250 us per simulated thread).

Oracles: the NumPy core (``GMMPath`` / field methods, evaluated one time value at a time), the
NumPy reference integrators (``refcfg.sampling.reference``) and, when importable, the Numba CPU
kernels (``refcfg.sampling.cpu``). Errors are "rowwise relative": max over particles of
||gpu_i - ref_i||_2 / ||ref_i||_2.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def rowwise(a, b):
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    num = np.linalg.norm(a - b, axis=-1)
    den = np.maximum(np.linalg.norm(b, axis=-1), 1e-300)
    return float(np.max(num / den))


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def main() -> int:
    from numba import config
    out: dict = {"simulator": bool(config.ENABLE_CUDASIM)}
    if not out["simulator"]:
        print(json.dumps({"error": "NUMBA_ENABLE_CUDASIM=1 was not set before numba's import"}))
        return 2

    from refcfg.guidance import GuidedField
    from refcfg.mixture import GMM, LabeledGMM
    from refcfg.paths import GMMPath
    from refcfg.sampling import cuda as C
    from refcfg.sampling import reference as R
    from refcfg.sampling.api import sigma_values
    try:
        from refcfg.sampling import cpu as CPU
    except ImportError:  # pragma: no cover - the CPU backend is part of the package
        CPU = None
    out["available"] = C.available()
    out["cpu_compared"] = CPU is not None
    t_start = time.perf_counter()

    rng = np.random.default_rng(20261128)
    d = 3

    def spd(K, lo=0.3):
        A = rng.standard_normal((K, d, d))
        return A @ A.transpose(0, 2, 1) / d + lo * np.eye(d)

    # two classes: class 0 full covariances (K=2), class 1 diagonal (K=3); p(y) = (0.4, 0.6)
    mix_full = LabeledGMM([GMM([0.3, 0.7], 2.0 * rng.standard_normal((2, d)), spd(2)),
                           GMM([0.2, 0.5, 0.3], 2.0 * rng.standard_normal((3, d)),
                               rng.uniform(0.2, 1.2, (3, d)))], [0.4, 0.6])
    # diagonal / isotropic only (the kernels skip the eigenbasis)
    mix_diag = LabeledGMM([GMM([0.5, 0.5], 2.0 * rng.standard_normal((2, d)), [0.5, 0.8]),
                           GMM([1.0], 2.0 * rng.standard_normal((1, d)), rng.uniform(0.2, 1.0, (1, d)))])
    # a weaker model of the same classes (autoguidance-style GuidedField across two mixtures)
    weak = LabeledGMM([GMM([0.5, 0.5], mix_full.classes[0].means * 0.8, spd(2, 1.0)),
                       GMM([1.0], mix_full.classes[1].means[:1], [2.0])], [0.5, 0.5])

    N = 18
    x = 2.0 * rng.standard_normal((N, d))
    labels = np.array([0, 1, -1] * (N // 3))
    w_arr = rng.uniform(-0.5, 4.0, N)
    t_arr = np.concatenate([[0.0, 1.0], rng.uniform(0.0, 1.0, N - 2)])

    # ------------------------------------------------------------------ fields
    fields = {}
    pl = GMMPath(mix_full, "linear")
    fields["uncond/linear"] = pl.field(None)
    fields["cond/linear"] = pl.field(1)
    fields["cfg/linear"] = pl.cfg(0, 3.0)
    fields["classifier/linear"] = pl.classifier_guided(1, 2.5)
    for sname in ("cosine", "sqrt", "vp"):   # sqrt: dbeta = -inf at t = 1; vp: alpha_0 > 0
        fields[f"cfg/{sname}"] = GMMPath(mix_full, sname).cfg(1, -0.5)
    fields["classifier/sqrt"] = GMMPath(mix_full, "sqrt").classifier_guided(0, 4.0)
    fields["cond_labels_array/linear"] = pl.field(labels)
    fields["cfg_w_array/linear"] = pl.cfg(labels, w_arr)
    fields["diag_cfg/cosine"] = GMMPath(mix_diag, "cosine").cfg(1, 2.0)
    fields["guided_two_paths/linear"] = GuidedField(pl.field(1), GMMPath(weak, "linear").field(1), 2.0)

    f_np, f_cpu, f32 = {}, {}, {}
    for name, f in fields.items():
        for what in ("velocity", "score"):
            errs_np, errs_cpu, errs32 = [], [], []
            for t in (0.0, 0.37, 1.0):
                g = C.evaluate(f, x, t, what=what)
                ref = getattr(f, what)(x, t)
                errs_np.append(rowwise(g, ref))
                if CPU is not None:
                    errs_cpu.append(rowwise(g, getattr(CPU, what)(f, x, t)))
                if t == 0.37:
                    errs32.append(rowwise(C.evaluate(f, x, t, what=what, dtype="float32"), ref))
            # one time per particle (t = 0 and 1 included); NumPy oracle: row i of the field at the
            # scalar time t_i (so per-particle labels / weights stay aligned with x)
            g = C.evaluate(f, x, t_arr, what=what)
            ref = np.stack([getattr(f, what)(x, float(t_arr[i]))[i] for i in range(N)])
            errs_np.append(rowwise(g, ref))
            if CPU is not None:
                errs_cpu.append(rowwise(g, getattr(CPU, what)(f, x, t_arr)))
            f_np[f"{name}/{what}"] = max(errs_np)
            if errs_cpu:
                f_cpu[f"{name}/{what}"] = max(errs_cpu)
            f32[f"{name}/{what}"] = max(errs32)
    out["field_vs_numpy"] = f_np
    out["field_vs_cpu"] = f_cpu
    out["field_float32_vs_numpy"] = f32
    # many distinct times are split into several launches (tables of at most _TABLE_LIMIT entries)
    f = fields["cfg_w_array/linear"]
    whole = C.evaluate(f, x, t_arr)
    saved = C._TABLE_LIMIT
    try:
        C._TABLE_LIMIT = 4 * 5 * d             # 4 distinct times (K = 5) per launch -> 5 launches
        out["chunked_launches"] = len(C._EvalPlan(f, x, t_arr).chunks)
        out["chunked_vs_single_launch"] = rel(C.evaluate(f, x, t_arr), whole)
    finally:
        C._TABLE_LIMIT = saved
    g = C.evaluate(fields["cfg/linear"], x, 0.5, what="cfg")
    out["what_cfg_equals_velocity"] = rowwise(g, fields["cfg/linear"].velocity(x, 0.5))
    out["t_fields"] = time.perf_counter() - t_start

    # ------------------------------------------------------------------ ODE samplers
    t1 = time.perf_counter()
    n = 32
    x0 = rng.standard_normal((n, d))
    ts = np.linspace(0.0, 1.0, 9)
    ode_np, ode_cpu = {}, {}
    lab_n = np.array([0, 1] * (n // 2))
    ode_fields = {"cfg_w2/linear": GMMPath(mix_full, "linear").cfg(lab_n, 2.0),
                  "classifier_w_array/cosine": GMMPath(mix_full, "cosine").classifier_guided(
                      lab_n, rng.uniform(0.0, 3.0, n)),
                  "guided_two_paths/linear": GuidedField(pl.field(0), GMMPath(weak, "linear").field(0),
                                                         1.5),
                  "diag_uncond/sqrt": GMMPath(mix_diag, "sqrt").field(None)}
    for name, f in ode_fields.items():
        for sampler in ("euler", "heun"):
            g, gtraj, gtimes = C.sample(f, x0, ts, sampler, trajectory_every=3)
            r, rtraj, rtimes = R.integrate(f, x0, ts, sampler, trajectory_every=3)
            e = rel(g, r)
            e = max(e, rel(gtraj, rtraj)) if gtraj.shape == rtraj.shape else float("inf")
            e = e if np.array_equal(gtimes, rtimes) else float("inf")
            ode_np[f"{name}/{sampler}"] = e
            if CPU is not None:
                ode_cpu[f"{name}/{sampler}"] = rel(g, CPU.integrate(f, x0, ts, sampler))
    out["ode_vs_reference"] = ode_np
    out["ode_vs_cpu"] = ode_cpu
    f = ode_fields["cfg_w2/linear"]
    g32 = C.sample(f, x0, ts, "heun", dtype="float32")
    out["ode_float32_vs_reference"] = rel(g32, R.integrate(f, x0, ts, "heun"))
    out["ode_float32_dtype"] = str(g32.dtype)
    out["t_ode"] = time.perf_counter() - t1

    # ------------------------------------------------------------------ SDE on the same noise
    t2 = time.perf_counter()
    sde_np, sde_cpu = {}, {}
    grids = {"ddpm": np.linspace(0.05, 1.0, 9), "const0.8": np.linspace(0.0, 1.0, 9)}
    for name, f in (("cfg_w2/linear", ode_fields["cfg_w2/linear"]),
                    ("classifier_w_array/cosine", ode_fields["classifier_w_array/cosine"])):
        for sname, tg in grids.items():
            sig = sigma_values("ddpm" if sname == "ddpm" else 0.8, tg, f.schedule)
            noise = rng.standard_normal((len(tg) - 1, n, d))
            g = C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, noise=noise)
            sde_np[f"{name}/{sname}"] = rel(g, R.integrate(f, x0, tg, "euler_maruyama", sig, noise))
            if CPU is not None:
                sde_cpu[f"{name}/{sname}"] = rel(
                    g, CPU.integrate(f, x0, tg, "euler_maruyama", sigma=sig, noise=noise))
    out["sde_vs_reference"] = sde_np
    out["sde_vs_cpu"] = sde_cpu

    # per-particle xoroshiro128p streams: the kernel's draws are exactly draw_normals(seed)
    f = ode_fields["cfg_w2/linear"]
    tg = grids["ddpm"]
    sig = sigma_values("ddpm", tg, f.schedule)
    steps = len(tg) - 1
    g_rng = C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, seed=123)
    z = C.draw_normals(n, steps, d, seed=123)
    g_arr = C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, noise=z)
    out["rng_vs_drawn_noise"] = rel(g_rng, g_arr)
    out["rng_vs_reference_on_drawn_noise"] = rel(g_rng, R.integrate(f, x0, tg, "euler_maruyama", sig, z))
    out["rng_same_seed_identical"] = bool(np.array_equal(
        g_rng, C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, seed=123)))
    out["rng_other_seed_differs"] = bool(np.min(np.abs(
        g_rng - C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, seed=124))) > 0)
    from scipy import stats
    flat = z.reshape(-1)
    out["rng_normals_n"] = int(flat.size)
    out["rng_normals_ks_pvalue"] = float(stats.kstest(flat, "norm").pvalue)
    # streams of different particles (and steps) are distinct: no draw is repeated anywhere
    out["rng_distinct_draws"] = int(np.unique(flat).size)
    out["t_sde"] = time.perf_counter() - t2

    # ------------------------------------------------------------------ through refcfg.sample
    import refcfg
    f = ode_fields["cfg_w2/linear"]
    api = {}
    for sampler, kw in (("heun", {}), ("euler_maruyama", {"sigma": 0.5, "t_start": 0.02,
                                                         "noise": rng.standard_normal((8, n, d))})):
        g = refcfg.sample(f, n, sampler, steps=8, seed=7, backend="cuda", return_trajectory=True,
                          trajectory_every=3, **kw)
        r = refcfg.sample(f, n, sampler, steps=8, seed=7, backend="numpy", return_trajectory=True,
                          trajectory_every=3, **kw)
        ok = len(g) == 3 and g[1].shape == r[1].shape and np.array_equal(g[2], r[2])
        api[sampler] = max(rel(g[0], r[0]), rel(g[1], r[1])) if ok else float("inf")
    g32 = refcfg.sample(f, n, "euler", steps=8, seed=7, backend="cuda", dtype="float32")
    api["float32_euler"] = rel(g32, refcfg.sample(f, n, "euler", steps=8, seed=7, backend="numpy"))
    out["api_cuda_vs_numpy"] = api
    out["t_total"] = time.perf_counter() - t_start
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    sys.exit(main())
