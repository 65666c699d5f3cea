"""Audit of flow_matching's ``ODESolver`` (``sample`` with euler / midpoint / rk4 / dopri5, and
``compute_likelihood``) on the exact velocity (``refcfg.interop.flow_matching.ExactVelocity``).

Controls (our glue is right): on a float64 time grid ``ODESolver.sample`` with "euler" and
"midpoint" equals refcfg's own Euler and midpoint samplers from the same initial points to
rounding, and "rk4" equals Kutta's 3/8 rule written out here (an independent loop on the exact
field). Findings: which rule "rk4" is; the rounding of the default float32 time grid; the fitted
order of every fixed-step method against the exact ODE endpoint from the same noise; how far
past t = 1 dopri5 evaluates and its error against its tolerance; which law the samples reach
(the CFG ODE push-forward, not p(x|y) nor the tilted law) by the two-sample test; and
``compute_likelihood`` against the exact log-density p_1(x|y) (where the exact model has a
torch backward).
"""

from __future__ import annotations

import numpy as np

from ._report import (
    AuditResult,
    LibraryMissing,
    fit_order,
    law_rows,
    max_err,
    same_noise_endpoint,
    torch_default_float64,
)

NAME = "flow-matching"
REQUIRES = ("torch", "flow_matching", "torchdiffeq")
PROBLEM = "two-class-2d"
Y, W = 0, 3.0

_SIZES = {
    True: dict(
        n=128,
        n_law=600,
        steps=(16, 32, 64),
        tols=(1e-4, 1e-6, 1e-8),
        ref_tol=1e-8,
        perms=200,
        n_lik=16,
        lik_steps=50,
        lik_tol=1e-7,
    ),
    False: dict(
        n=1000,
        n_law=2000,
        steps=(16, 32, 64, 128, 256),
        tols=(1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10),
        ref_tol=1e-10,
        perms=500,
        n_lik=100,
        lik_steps=400,
        lik_tol=1e-9,
    ),
}

NOMINAL = {"euler": 1, "midpoint": 2, "rk4": 4}
CLAMP = 0.5
"""The exact model's clamp (``refcfg.interop.clamp_times``): dopri5 evaluates past both ends."""


def _imports():
    try:
        import torch  # noqa: F401
        from flow_matching.solver import ODESolver
    except ImportError as exc:
        raise LibraryMissing(
            f"the flow-matching audit needs torch, torchdiffeq and flow_matching "
            f"(pip install --no-deps flow_matching torchdiffeq): {exc}"
        ) from None
    return ODESolver


def _three_eighths(field, x, steps):
    """Kutta's 3/8 rule (the variant of RK4 with c = (0, 1/3, 2/3, 1) and b = (1, 3, 3, 1)/8) on
    refcfg's exact velocity, from t = 0 to 1 in ``steps`` steps, float64 (independent of the
    library)."""
    h = 1.0 / steps
    for i in range(steps):
        t = i * h
        k1 = field.velocity(x, t)
        k2 = field.velocity(x + h * k1 / 3, t + h / 3)
        k3 = field.velocity(x + h * (k2 - k1 / 3), t + 2 * h / 3)
        k4 = field.velocity(x + h * (k1 - k2 + k3), t + h)
        x = x + h * (k1 + 3 * (k2 + k3) + k4) / 8
    return x


def run(fast: bool = True, seed: int = 0) -> AuditResult:
    """Run the audit (module docstring); ``fast`` uses the small sizes of CI."""
    ODESolver = _imports()
    import torch

    from .. import problems
    from ..interop.flow_matching import ExactVelocity
    from ..sampling import sample

    z = _SIZES[bool(fast)]
    res = AuditResult(NAME, bool(fast), int(seed))
    path = problems.resolve(PROBLEM).path
    field = path.cfg(Y, W)
    gen = torch.Generator().manual_seed(seed)
    x_init = torch.randn(z["n"], 2, dtype=torch.float64, generator=gen)
    grid64 = torch.tensor([0.0, 1.0], dtype=torch.float64)
    model = ExactVelocity(path, y=Y, w=W)
    solver = ODESolver(model)

    # controls: the library's fixed-step methods against refcfg's / an independent 3/8 rule
    n_ctl = 10
    for method in ("euler", "midpoint"):
        lib = solver.sample(x_init, step_size=1.0 / n_ctl, method=method, time_grid=grid64)
        own = sample(field, z["n"], sampler=method, steps=n_ctl, x_init=x_init.numpy())
        e = max_err(lib, own)
        res.check(
            "control",
            f"ODESolver {method} (float64 grid, {n_ctl} steps) = refcfg "
            f"{method} from the same x_init",
            e,
            e <= 1e-12,
            "<= 1e-12",
        )
    lib = solver.sample(x_init, step_size=1.0 / 16, method="rk4", time_grid=grid64)
    e38 = max_err(lib, _three_eighths(field, x_init.numpy(), 16))
    res.check(
        "control",
        "ODESolver rk4 (16 steps) = Kutta's 3/8 rule written here",
        e38,
        e38 <= 1e-12,
        "<= 1e-12",
    )
    eclassic = max_err(lib, sample(field, z["n"], sampler="rk4", steps=16, x_init=x_init.numpy()))
    res.check(
        "finding",
        "ODESolver rk4 differs from classical RK4 (16 steps): it is the 3/8 rule",
        eclassic,
        eclassic >= 1e3 * max(e38, 1e-15),
        ">= 1000 x the 3/8-rule difference",
    )

    # the default time grid is float32: step times are rounded to float32
    lib32 = solver.sample(x_init, step_size=0.1, method="euler")
    lib64 = solver.sample(x_init, step_size=0.1, method="euler", time_grid=grid64)
    e32 = max_err(lib32, lib64)
    res.check(
        "finding",
        "default time_grid (float32) vs float64 grid, euler, step 0.1",
        e32,
        1e-10 < e32 < 1e-5,
        "in (1e-10, 1e-5): float32 rounding of the step times",
    )

    # fitted orders against the exact endpoint from the same noise
    ref = same_noise_endpoint(field, x_init.numpy(), 0.0, 1.0, tol=z["ref_tol"])
    rows = []
    for method, nominal in NOMINAL.items():
        errs = []
        for n in z["steps"]:
            x1 = solver.sample(x_init, step_size=1.0 / n, method=method, time_grid=grid64)
            errs.append(max_err(x1, ref))
            rows.append(
                {
                    "method": method,
                    "steps": n,
                    "evaluations": n * {1: 1, 2: 2, 4: 4}[nominal],
                    "max_error": errs[-1],
                }
            )
        order = fit_order(z["steps"], errs)
        res.add_series(f"ODESolver {method}", z["steps"], errs)
        res.check(
            "finding",
            f"fitted order of {method} (nominal {nominal}), w = {W:g}",
            order,
            abs(order - nominal) <= 0.5,
            f"{nominal} +- 0.5",
        )
    res.tables["fixed-step methods: error against the exact endpoint from the same noise"] = rows

    # dopri5: overshoot past t = 1 and error against tolerance
    rows = []
    for tol in z["tols"]:
        times = []

        class _Recording(ExactVelocity):
            def forward(self, x, t, **kw):
                times.append(float(t))
                return super().forward(x, t, **kw)

        rec = _Recording(path, y=Y, w=W, clamp=CLAMP)
        x1 = ODESolver(rec).sample(
            x_init, step_size=None, method="dopri5", atol=tol, rtol=tol, time_grid=grid64
        )
        rows.append(
            {
                "atol=rtol": tol,
                "evaluations": len(times),
                "max t evaluated - 1": max(times) - 1.0,
                "max_error": max_err(x1, ref),
            }
        )
    res.tables["dopri5: evaluations past t = 1 and error"] = rows
    over = max(r["max t evaluated - 1"] for r in rows)
    res.check(
        "finding",
        "dopri5 evaluates the model past t = 1 (largest overshoot over the tolerances)",
        over,
        over > 0,
        "> 0",
    )
    worst = max(r["max_error"] / r["atol=rtol"] for r in rows)
    res.check(
        "finding",
        "dopri5 max error / tolerance (over the tolerances)",
        worst,
        worst < 1e3,
        "< 1000",
    )

    # which law the samples reach (two-sample test)
    gl = torch.Generator().manual_seed(seed + 1)
    xl = torch.randn(z["n_law"], 2, dtype=torch.float64, generator=gl)
    samples = solver.sample(xl, step_size=1.0 / 64, method="rk4", time_grid=grid64).numpy()
    targets = ("ode", "data", "tilted")
    rows = law_rows(samples, path, Y, W, targets, permutations=z["perms"], seed=seed, steps=200)
    res.tables[f"law of ODESolver rk4 (64 steps) samples, w = {W:g}, n = {z['n_law']}"] = rows
    p = {r["target"]: r["p_value"] for r in rows}
    res.check(
        "finding",
        "samples follow the CFG ODE push-forward (p-value)",
        p["ode"],
        p["ode"] > 0.01,
        "> 0.01",
    )
    res.check(
        "finding", "samples do not follow p(x|y) (p-value)", p["data"], p["data"] <= 0.01, "<= 0.01"
    )
    res.check(
        "finding",
        "samples do not follow the tilted law p(x|y)^w p(x)^(1-w) (p-value)",
        p["tilted"],
        p["tilted"] <= 0.01,
        "<= 0.01",
    )

    _likelihood(res, path, ODESolver, z, seed)
    return res


def _likelihood(res, path, ODESolver, z, seed):
    """compute_likelihood against the exact log-density: w = 1 (log p(x|y), closed form) and
    w = 3 (the CFG push-forward: refcfg.log_likelihood on the exact field, RK4); the Hutchinson
    estimator's spread and its random draws; image-shaped inputs with exact_divergence."""
    import torch

    from ..interop.flow_matching import ExactVelocity
    from ..sampling import log_likelihood

    x1 = torch.from_numpy(path.mixture.sample(z["n_lik"], seed=seed, y=Y)[0])

    def log_p0(x):
        return -0.5 * (x**2).sum(dim=1) - x.shape[1] * 0.5 * np.log(2 * np.pi)

    grid = torch.tensor([1.0, 0.0], dtype=torch.float64)
    rows = []
    for w in (1.0, W):
        model = ExactVelocity(path, y=Y, w=None if w == 1.0 else w, clamp=CLAMP)
        if w == 1.0:
            exact = path.log_prob(x1.numpy(), 1.0, Y)
        else:
            exact = log_likelihood(path.cfg(Y, w), x1.numpy(), steps=1000, sampler="rk4")
        for method, kw in (
            ("dopri5", dict(step_size=None, atol=z["lik_tol"], rtol=z["lik_tol"])),
            ("midpoint", dict(step_size=1.0 / z["lik_steps"])),
        ):
            _, ll = ODESolver(model).compute_likelihood(
                x1, log_p0, method=method, time_grid=grid, exact_divergence=True, **kw
            )
            rows.append(
                {
                    "w": w,
                    "method": method,
                    "divergence": "exact",
                    "max |log p error|": float(np.max(np.abs(ll.numpy() - exact))),
                }
            )
        if w == 1.0:
            try:
                ODESolver(model).compute_likelihood(
                    x1, log_p0, step_size=0.5, method="euler", time_grid=grid
                )
                hutch_float64 = 0.0
            except RuntimeError:
                hutch_float64 = 1.0
        with torch_default_float64():  # its probe is built in torch's default dtype
            torch.manual_seed(seed)
            _, h1 = ODESolver(model).compute_likelihood(
                x1, log_p0, step_size=1.0 / z["lik_steps"], method="midpoint", time_grid=grid
            )
            torch.manual_seed(seed + 1)
            _, h2 = ODESolver(model).compute_likelihood(
                x1, log_p0, step_size=1.0 / z["lik_steps"], method="midpoint", time_grid=grid
            )
        rows.append(
            {
                "w": w,
                "method": "midpoint",
                "divergence": "Hutchinson",
                "max |log p error|": float(np.max(np.abs(h1.numpy() - exact))),
                "rms error": float(np.sqrt(np.mean((h1.numpy() - exact) ** 2))),
                "max |two global seeds|": float(np.max(np.abs(h1.numpy() - h2.numpy()))),
            }
        )
    res.tables[
        f"compute_likelihood against the exact log-density (n = {z['n_lik']}, midpoint "
        f"{z['lik_steps']} steps; w = 3: refcfg.log_likelihood, RK4 1000 steps)"
    ] = rows
    e1 = rows[0]["max |log p error|"]
    res.check(
        "control",
        f"compute_likelihood (dopri5 {z['lik_tol']:g}, exact divergence, w = 1) "
        "= the exact "
        "log p(x|y) (the exact model's torch backward)",
        e1,
        e1 <= 1e-5,
        "<= 1e-5",
    )
    e3 = rows[3]["max |log p error|"]
    res.check(
        "finding",
        f"compute_likelihood (dopri5 {z['lik_tol']:g}, exact divergence, "
        f"w = {W:g}) = the "
        f"exact log-density of the CFG push-forward",
        e3,
        e3 <= 1e-3,
        "<= 1e-3",
    )
    res.check(
        "finding",
        "Hutchinson estimator (exact_divergence=False) on float64 samples raises "
        "RuntimeError while torch's default dtype is float32 (1 = raised)",
        hutch_float64,
        hutch_float64 == 1.0,
        "== 1",
    )
    hs = rows[2]["max |two global seeds|"]
    res.check(
        "finding",
        "Hutchinson estimator: its probe comes from torch's global generator (max "
        "difference between two global seeds)",
        hs,
        hs > 1e-6,
        "> 1e-6",
    )

    # exact_divergence indexes u[:, i] over the flattened size: image-shaped samples
    hd = _problems().resolve("highdim").path
    xi = torch.from_numpy(hd.mixture.sample(4, seed=seed, y=0)[0]).reshape(4, 4, 4, 4)
    try:
        ODESolver(ExactVelocity(hd, y=0, shape=(4, 4, 4), clamp=CLAMP)).compute_likelihood(
            xi,
            lambda x: -0.5 * (x**2).flatten(1).sum(dim=1),
            step_size=0.5,
            method="euler",
            time_grid=grid,
            exact_divergence=True,
        )
        failed = 0.0
    except IndexError:
        failed = 1.0
    res.check(
        "finding",
        "compute_likelihood(exact_divergence=True) on (N, 4, 4, 4) samples raises "
        "IndexError (1 = raised)",
        failed,
        failed == 1.0,
        "== 1",
    )


def _problems():
    from .. import problems

    return problems
