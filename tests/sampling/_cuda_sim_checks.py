"""Measurements of the CUDA kernels under numba's CUDA simulator, printed as one JSON object.

Run by ``tests/sampling/test_cuda_sim.py`` in a subprocess with NUMBA_ENABLE_CUDASIM=1 set before
numba is imported (the simulator cannot be switched on inside a process that imported numba). It
only measures; the tolerances live in the test. Sizes are small (~250 us per simulated thread).

Oracles, independent of the kernels and of the lowering: the NumPy core (field methods, evaluated
one time value at a time), the NumPy reference integrators (``refcfg.sampling.reference``, which
call the field's own methods) and the Numba CPU kernels (``refcfg.sampling.cpu``). Errors are
"rowwise relative" for fields (max over particles of ||gpu_i - ref_i||_2 / ||ref_i||_2) and
max|gpu - ref| / max|ref| for samples. A comparison that raises is recorded as an error string
(the test fails on it and shows the message).
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


def attempt(fn):
    """fn() or, when it raises, a string naming the error (so one failure does not hide others)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - recorded and asserted on by the test
        return f"{type(exc).__name__}: {exc}"


def refusal(fn):
    """The exception fn() raises as {"type", "is_type_error", "message"}, or None if it returns."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return {
            "type": type(exc).__name__,
            "is_type_error": isinstance(exc, TypeError),
            "message": str(exc),
        }
    return None


def main() -> int:
    from numba import config

    out: dict = {"simulator": bool(config.ENABLE_CUDASIM)}
    if not out["simulator"]:
        print(json.dumps({"error": "NUMBA_ENABLE_CUDASIM=1 was not set before numba's import"}))
        return 2

    import refcfg
    from refcfg.guidance import ExactField, Field, GuidedField, Scaled
    from refcfg.mixture import GMM, LabeledGMM
    from refcfg.paths import GMMPath
    from refcfg.sampling import cpu as CPU
    from refcfg.sampling import cuda as C
    from refcfg.sampling import reference as R
    from refcfg.sampling.api import sigma_values
    from refcfg.sampling.lowering import lower
    from refcfg.sampling.steppers import TABLEAUS

    out["available"] = C.available()
    t_start = time.perf_counter()

    rng = np.random.default_rng(20261128)
    d = 3

    def spd(K, lo=0.3):
        A = rng.standard_normal((K, d, d))
        return A @ A.transpose(0, 2, 1) / d + lo * np.eye(d)

    # two classes: class 0 full covariances (K=2), class 1 diagonal (K=3); p(y) = (0.4, 0.6)
    mix_full = LabeledGMM(
        [
            GMM([0.3, 0.7], 2.0 * rng.standard_normal((2, d)), spd(2)),
            GMM([0.2, 0.5, 0.3], 2.0 * rng.standard_normal((3, d)), rng.uniform(0.2, 1.2, (3, d))),
        ],
        [0.4, 0.6],
    )
    # diagonal / isotropic only (no eigenbasis)
    mix_diag = LabeledGMM(
        [
            GMM([0.5, 0.5], 2.0 * rng.standard_normal((2, d)), [0.5, 0.8]),
            GMM([1.0], 2.0 * rng.standard_normal((1, d)), rng.uniform(0.2, 1.0, (1, d))),
        ]
    )
    # isotropic only (one variance per component)
    mix_iso = LabeledGMM(
        [
            GMM([0.6, 0.4], 2.0 * rng.standard_normal((2, d)), [0.4, 1.1]),
            GMM([1.0], 2.0 * rng.standard_normal((1, d)), [0.7]),
        ]
    )
    # a weaker model of the same classes (autoguidance-style guidance across two mixtures)
    weak = LabeledGMM(
        [
            GMM([0.5, 0.5], mix_full.classes[0].means * 0.8, spd(2, 1.0)),
            GMM([1.0], mix_full.classes[1].means[:1], [2.0]),
        ],
        [0.5, 0.5],
    )
    pl = GMMPath(mix_full, "linear")
    pw = GMMPath(weak, "linear")

    class IntervalCFG(Field):
        """CFG with weight w for t in [lo, hi] and no guidance (w = 1) outside: a field with time
        factors, declared by ``_terms``; its velocity/score are computed here in NumPy."""

        def __init__(self, path, y, w, lo, hi):
            self.path, self.y, self.w, self.lo, self.hi = path, y, w, lo, hi
            self.d, self.schedule = path.d, path.schedule

        def _g(self, t):
            t = np.asarray(t, dtype=np.float64)
            return ((t >= self.lo) & (t <= self.hi)).astype(np.float64)

        def _terms(self):
            w = self.w
            return [
                Scaled(ExactField(self.path, self.y), 1.0, lambda t: 1.0 + (w - 1.0) * self._g(t)),
                Scaled(ExactField(self.path, None), 1.0, lambda t: (1.0 - w) * self._g(t)),
            ]

        def _eval(self, what, x, t):
            wt = self.w if self._g(t) > 0 else 1.0
            return wt * getattr(ExactField(self.path, self.y), what)(x, t) + (1.0 - wt) * getattr(
                ExactField(self.path, None), what
            )(x, t)

        def velocity(self, x, t):
            return self._eval("velocity", x, t)

        def score(self, x, t):
            return self._eval("score", x, t)

    N = 18
    x = 2.0 * rng.standard_normal((N, d))
    labels = np.array([0, 1, -1] * (N // 3))
    w_arr = rng.uniform(-0.5, 4.0, N)
    t_arr = np.concatenate([[0.0, 1.0], rng.uniform(0.0, 1.0, N - 2)])

    # ------------------------------------------------------------------ fields
    fields = {}
    fields["uncond/linear"] = pl.field(None)
    fields["cond/linear"] = pl.field(1)
    fields["cfg/linear"] = pl.cfg(0, 3.0)
    fields["classifier/linear"] = pl.classifier_guided(1, 2.5)
    for sname in ("cosine", "sqrt", "vp"):  # sqrt: dbeta = -inf at t = 1; vp: alpha_0 > 0
        fields[f"cfg/{sname}"] = GMMPath(mix_full, sname).cfg(1, -0.5)
    fields["classifier/sqrt"] = GMMPath(mix_full, "sqrt").classifier_guided(0, 4.0)
    fields["cond_labels_array/linear"] = pl.field(labels)
    fields["cfg_w_array/linear"] = pl.cfg(labels, w_arr)
    fields["diag_cfg/cosine"] = GMMPath(mix_diag, "cosine").cfg(1, 2.0)
    fields["iso_cfg/linear"] = GMMPath(mix_iso, "linear").cfg(0, 2.5)
    fields["guided_two_paths/linear"] = GuidedField(pl.field(1), pw.field(1), 2.0)
    # three groups (a CFG inside a guided field): the old two-term CUDA lowering refused this
    fields["three_groups/linear"] = GuidedField(pl.cfg(labels, w_arr), pw.field(labels), 1.7)
    fields["interval_cfg/linear"] = IntervalCFG(pl, 0, 3.0, 0.3, 0.7)
    out["groups"] = {name: int(lower(f, N).G) for name, f in fields.items()}

    f_np, f_cpu, f32 = {}, {}, {}
    for name, f in fields.items():
        for what in ("velocity", "score"):
            errs_np, errs_cpu, errs32 = [], [], []
            for t in (0.0, 0.37, 0.5, 1.0):
                g = C.evaluate(f, x, t, what=what)
                ref = getattr(f, what)(x, t)
                errs_np.append(rowwise(g, ref))
                errs_cpu.append(attempt(lambda: rowwise(g, getattr(CPU, what)(f, x, t))))
                if t == 0.37:
                    g32 = C.evaluate(f, x, t, what=what, dtype="float32")
                    errs32.append(rowwise(g32, g) if g32.dtype == np.float32 else float("inf"))
            # one time per particle (t = 0 and 1 included); NumPy oracle: row i of the field at the
            # scalar time t_i (so per-particle labels / weights stay aligned with x)
            g = C.evaluate(f, x, t_arr, what=what)
            ref = np.stack([getattr(f, what)(x, float(t_arr[i]))[i] for i in range(N)])
            errs_np.append(rowwise(g, ref))
            errs_cpu.append(attempt(lambda: rowwise(g, getattr(CPU, what)(f, x, t_arr))))
            f_np[f"{name}/{what}"] = max(errs_np)
            bad = [e for e in errs_cpu if isinstance(e, str)]
            f_cpu[f"{name}/{what}"] = bad[0] if bad else max(errs_cpu)
            f32[f"{name}/{what}"] = max(errs32)
    out["field_vs_numpy"] = f_np
    out["field_vs_cpu"] = f_cpu
    # |x| ~ 1e6 near t = 0: the split form of the logits keeps the class information
    xb = 1e6 * rng.standard_normal((N, d))
    big = {}
    for name in ("cfg/linear", "diag_cfg/cosine", "iso_cfg/linear"):
        f = fields[name]
        big[name] = max(
            rowwise(C.evaluate(f, xb, t), f.velocity(xb, t)) for t in (0.0, 1e-9, 1e-6, 1e-3)
        )
    out["large_x_vs_numpy"] = big
    out["field_float32_vs_float64"] = f32
    # many distinct times are split into several launches (tables of at most _TABLE_LIMIT entries)
    f = fields["three_groups/linear"]
    whole = C.evaluate(f, x, t_arr)
    K = lower(f, N).K
    saved = C._TABLE_LIMIT
    try:
        C._TABLE_LIMIT = 4 * K * d  # 4 distinct times per launch -> 5 launches
        out["chunked_launches"] = len(C._EvalPlan(f, x, t_arr).chunks)
        out["chunked_vs_single_launch"] = rel(C.evaluate(f, x, t_arr), whole)
    finally:
        C._TABLE_LIMIT = saved
    out["t_fields"] = time.perf_counter() - t_start

    # ------------------------------------------------------------------ subclass safety
    class ZeroVelocity(ExactField):
        """Overrides the mathematics without declaring how it lowers: must never run as the
        exact formula on a fast backend."""

        def velocity(self, x, t):
            return np.zeros_like(np.asarray(x, dtype=np.float64))

    class Doubled(ExactField):
        """Overrides velocity and declares its lowering: 2 u(x | y)."""

        def _terms(self):
            return [Scaled(ExactField(self.path, self.y), 2.0)]

        def velocity(self, x, t):
            return 2.0 * ExactField(self.path, self.y).velocity(x, t)

    zf = ZeroVelocity(pl, 0)
    ts4 = np.linspace(0.0, 1.0, 5)
    sub = {
        "evaluate": refusal(lambda: C.evaluate(zf, x, 0.5)),
        "sample": refusal(lambda: C.sample(zf, x, ts4, "heun")),
        "refcfg.sample": refusal(
            lambda: refcfg.sample(zf, N, "heun", steps=4, seed=1, backend="cuda")
        ),
        "guided_containing_it": refusal(
            lambda: C.evaluate(GuidedField(zf, pl.field(None), 2.0), x, 0.5)
        ),
    }
    out["subclass_refusals"] = sub
    # "auto" follows the override (NumPy backend): the samples move only by the zero field
    out["subclass_auto_follows_override"] = attempt(
        lambda: bool(
            np.array_equal(refcfg.sample(zf, N, "euler", steps=4, x_init=x, backend="auto"), x)
        )
    )
    df = Doubled(pl, 1)
    out["declared_subclass_vs_numpy"] = attempt(
        lambda: rowwise(C.evaluate(df, x, 0.37), df.velocity(x, 0.37))
    )
    out["t_subclass"] = time.perf_counter() - t_start

    # ------------------------------------------------------------------ ODE samplers
    t1 = time.perf_counter()
    n = 16
    x0 = rng.standard_normal((n, d))
    ts = np.linspace(0.0, 1.0, 7)
    lab_n = np.array([0, 1] * (n // 2))
    ode_fields = {
        "cfg_w2/linear": pl.cfg(lab_n, 2.0),
        "classifier_w_array/cosine": GMMPath(mix_full, "cosine").classifier_guided(
            lab_n, rng.uniform(0.0, 3.0, n)
        ),
        "three_groups/linear": GuidedField(pl.cfg(lab_n, 2.5), pw.field(lab_n), 1.5),
        "interval_cfg/linear": IntervalCFG(pl, 1, 2.0, 0.3, 0.7),
        "diag_uncond/sqrt": GMMPath(mix_diag, "sqrt").field(None),
    }
    ode_np, ode_cpu = {}, {}
    for name, f in ode_fields.items():
        for sampler in TABLEAUS:
            g, gtraj, gtimes = C.sample(f, x0, ts, sampler, trajectory_every=4)
            r, rtraj, rtimes = R.integrate(f, x0, ts, sampler, trajectory_every=4)
            ok = gtraj.shape == rtraj.shape and np.array_equal(gtimes, rtimes)
            ode_np[f"{name}/{sampler}"] = max(rel(g, r), rel(gtraj, rtraj)) if ok else float("inf")
            ode_cpu[f"{name}/{sampler}"] = attempt(
                lambda: rel(g, CPU.integrate(f, x0, ts, sampler))
            )
    out["ode_samplers"] = sorted(TABLEAUS)
    out["ode_vs_reference"] = ode_np
    out["ode_vs_cpu"] = ode_cpu
    f = ode_fields["three_groups/linear"]
    for sampler in ("heun", "rk4"):
        g64 = C.sample(f, x0, ts, sampler)
        g32 = C.sample(f, x0, ts, sampler, dtype="float32")
        out[f"ode_float32_vs_float64/{sampler}"] = rel(g32, g64)
        out["ode_float32_dtype"] = str(g32.dtype)
    # convergence orders on a guided pair of Gaussians (w = 2), whose flow map is known exactly
    # (affine fields; ``_gauss.flow_map`` solves the linear ODE with scipy at rtol 1e-10)
    from _gauss import fit_order, flow_map

    m_a, v_a = np.array([1.0, -2.0]), np.array([[0.5, 0.2], [0.2, 0.3]])
    m_b, v_b = np.array([-1.5, 0.5]), np.array([[2.0, -0.4], [-0.4, 1.0]])
    Phi, phi = flow_map([(m_a, v_a), (m_b, v_b)], 2.0)
    gpair = GuidedField(
        GMMPath(GMM([1.0], m_a[None], v_a[None])).field(None),
        GMMPath(GMM([1.0], m_b[None], v_b[None])).field(None),
        2.0,
    )
    x2 = rng.standard_normal((n, 2))
    exact = x2 @ Phi.T + phi
    orders = {}
    for sampler, steps_list in (("midpoint", [8, 16, 32, 64]), ("rk4", [4, 8, 16, 32])):
        errs = [
            float(np.abs(C.sample(gpair, x2, np.linspace(0.0, 1.0, s + 1), sampler) - exact).max())
            for s in steps_list
        ]
        orders[sampler] = {
            "steps": steps_list,
            "errors": errs,
            "order": fit_order(steps_list, errs),
        }
    out["ode_orders"] = orders
    out["t_ode"] = time.perf_counter() - t1

    # ------------------------------------------------------------------ SDE on the same noise
    t2 = time.perf_counter()
    sde_np, sde_cpu = {}, {}
    grids = {"ddpm": np.linspace(0.05, 1.0, 7), "const0.8": np.linspace(0.0, 1.0, 7)}
    for name in ("cfg_w2/linear", "three_groups/linear", "interval_cfg/linear"):
        f = ode_fields[name]
        for sname, tg in grids.items():
            sig = sigma_values("ddpm" if sname == "ddpm" else 0.8, tg, f.schedule)
            noise = rng.standard_normal((len(tg) - 1, n, d))
            g = C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, noise=noise)
            sde_np[f"{name}/{sname}"] = rel(g, R.integrate(f, x0, tg, "euler_maruyama", sig, noise))
            sde_cpu[f"{name}/{sname}"] = attempt(
                lambda: rel(g, CPU.integrate(f, x0, tg, "euler_maruyama", sigma=sig, noise=noise))
            )
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
    out["rng_vs_reference_on_drawn_noise"] = rel(
        g_rng, R.integrate(f, x0, tg, "euler_maruyama", sig, z)
    )
    out["rng_same_seed_identical"] = bool(
        np.array_equal(g_rng, C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, seed=123))
    )
    out["rng_other_seed_differs"] = bool(
        np.min(np.abs(g_rng - C.sample(f, x0, tg, "euler_maruyama", sigma_values=sig, seed=124)))
        > 0
    )
    from scipy import stats

    flat = z.reshape(-1)
    out["rng_normals_n"] = int(flat.size)
    out["rng_normals_ks_pvalue"] = float(stats.kstest(flat, "norm").pvalue)
    # streams of different particles (and steps) are distinct: no draw is repeated anywhere
    out["rng_distinct_draws"] = int(np.unique(flat).size)
    out["t_sde"] = time.perf_counter() - t2

    # ------------------------------------------------------------------ through refcfg.sample
    f = ode_fields["cfg_w2/linear"]
    api = {}
    for sampler, kw in (
        ("heun", {}),
        ("rk4", {}),
        (
            "euler_maruyama",
            {"sigma": 0.5, "t_start": 0.02, "noise": rng.standard_normal((6, n, d))},
        ),
    ):
        g = refcfg.sample(
            f,
            n,
            sampler,
            steps=6,
            seed=7,
            backend="cuda",
            return_trajectory=True,
            trajectory_every=4,
            **kw,
        )
        r = refcfg.sample(
            f,
            n,
            sampler,
            steps=6,
            seed=7,
            backend="numpy",
            return_trajectory=True,
            trajectory_every=4,
            **kw,
        )
        ok = len(g) == 3 and g[1].shape == r[1].shape and np.array_equal(g[2], r[2])
        api[sampler] = max(rel(g[0], r[0]), rel(g[1], r[1])) if ok else float("inf")
    g32 = refcfg.sample(f, n, "midpoint", steps=6, seed=7, backend="cuda", dtype="float32")
    api["float32_midpoint"] = rel(
        g32, refcfg.sample(f, n, "midpoint", steps=6, seed=7, backend="numpy")
    )
    out["api_cuda_vs_numpy"] = api
    out["t_total"] = time.perf_counter() - t_start
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    sys.exit(main())
