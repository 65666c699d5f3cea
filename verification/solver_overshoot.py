"""How far past the ends of [0, 1] adaptive solvers evaluate the model, and the error of the
clamp recipe there: flow_matching's ODESolver (dopri5; sample from 0 to 1 and compute_likelihood
from 1 to 0), torchdiffeq's dopri5 (plain, and with options={"step_t": [1.0]}, which makes it land
on t = 1 and evaluate nothing past it: the control), and scipy's solve_ivp (RK45, DOP853), for
rtol = atol in 1e-4 ... 1e-10, on the exact CFG field of two-class-2d (w = 3, class 0) through
``refcfg.interop.torch.ExactModule(..., clamp=0.25)`` (strict, clamp=None, for the control and
scipy). The endpoint error is the RMS over 64 particles against
``refcfg.interop.reference.ode_endpoint`` (RK4 with step doubling to 1e-12); the likelihood error
is the largest |log p - log p_1(x)| over 64 data points (unconditional field, exact density).
Writes solver_overshoot.md and .json to --out (default docs/interop).

    python verification/solver_overshoot.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TOLS = (1e-4, 1e-6, 1e-8, 1e-10)
CLAMP = 0.25


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/interop")
    p.add_argument("--n", type=int, default=64)
    args = p.parse_args(argv)

    import torch
    import torchdiffeq
    from flow_matching.solver import ODESolver
    from scipy.integrate import solve_ivp

    import refcfg
    from refcfg.interop.reference import ode_endpoint
    from refcfg.interop.torch import ExactModule

    path = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
    field = path.cfg(0, 3.0)
    n = args.n
    x0 = np.random.default_rng(0).normal(size=(n, 2))
    exact = ode_endpoint(field, x0, 0.0, 1.0, tol=1e-12)
    x1 = path.mixture.sample(n, seed=1)[0]
    log_p1 = path.log_prob(x1, 1.0)

    class Recorder(torch.nn.Module):
        """Records the times the solver asks for, then evaluates the adapter."""

        def __init__(self, module):
            super().__init__()
            self.module, self.times = module, []

        def forward(self, x, t, **extras):
            self.times.append(float(t))
            return self.module(x, t)

    def rms(z):
        return float(np.sqrt(np.mean(np.sum((z - exact.x) ** 2, axis=1))))

    def row(solver, tol, times, err, what="endpoint RMS error"):
        return {
            "solver": solver,
            "tol": tol,
            "t_min": float(min(times)),
            "t_max": float(max(times)),
            "evaluations": len(times),
            "error": err,
            "error_kind": what,
        }

    rows = []
    grid = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for tol in TOLS:
        rec = Recorder(ExactModule(field, clamp=CLAMP))
        out = ODESolver(velocity_model=rec).sample(
            torch.from_numpy(x0), None, method="dopri5", atol=tol, rtol=tol, time_grid=grid
        )
        rows.append(
            row("flow_matching ODESolver.sample dopri5, clamp", tol, rec.times, rms(out.numpy()))
        )
        rec = Recorder(ExactModule(field, clamp=CLAMP))
        out = torchdiffeq.odeint(
            lambda t, x: rec(x, t), torch.from_numpy(x0), grid, method="dopri5", atol=tol, rtol=tol
        )[-1]
        rows.append(row("torchdiffeq dopri5, clamp", tol, rec.times, rms(out.numpy())))
        rec = Recorder(ExactModule(field))
        out = torchdiffeq.odeint(
            lambda t, x: rec(x, t),
            torch.from_numpy(x0),
            grid,
            method="dopri5",
            atol=tol,
            rtol=tol,
            options={"step_t": torch.tensor([1.0], dtype=torch.float64)},
        )[-1]
        rows.append(
            row(
                "torchdiffeq dopri5, step_t=[1] (control, strict)", tol, rec.times, rms(out.numpy())
            )
        )
        strict = ExactModule(field)
        for method in ("RK45", "DOP853"):
            times = []

            def rhs(t, z):
                times.append(float(t))
                return strict(torch.from_numpy(z.reshape(n, 2)), t).numpy().ravel()

            sol = solve_ivp(rhs, (0.0, 1.0), x0.ravel(), method=method, rtol=tol, atol=tol)
            rows.append(
                row(
                    f"scipy solve_ivp {method} (strict)",
                    tol,
                    times,
                    rms(sol.y[:, -1].reshape(n, 2)),
                )
            )
        rec = Recorder(ExactModule(path.field(None), clamp=CLAMP))
        _, logp = ODESolver(velocity_model=rec).compute_likelihood(
            torch.from_numpy(x1),
            lambda z: -0.5 * (z**2).sum(1) - np.log(2 * np.pi),
            step_size=None,
            method="dopri5",
            atol=tol,
            rtol=tol,
            time_grid=torch.tensor([1.0, 0.0], dtype=torch.float64),
            exact_divergence=True,
        )
        rows.append(
            row(
                "flow_matching compute_likelihood dopri5, clamp",
                tol,
                rec.times,
                float(np.max(np.abs(logp.detach().numpy() - log_p1))),
                "max |log p - log p_1|",
            )
        )
        print(rows[-6:], flush=True)

    lines = [
        "| solver | rtol = atol | t evaluated | past the end | evaluations | error |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        past = max(0.0, r["t_max"] - 1.0, -r["t_min"])
        lines.append(
            f"| {r['solver']} | {r['tol']:.0e} | [{r['t_min']:.4f}, {r['t_max']:.4f}] | "
            f"{past:.3g} | {r['evaluations']} | {r['error']:.2e} ({r['error_kind']}) |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = " ".join(
        ["python verification/solver_overshoot.py", *(sys.argv[1:] if argv is None else argv)]
    )
    (out / "solver_overshoot.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "solver_overshoot.json").write_text(
        json.dumps(
            {"rows": rows, "n": n, "clamp": CLAMP, "reference_error": exact.error, "command": cmd},
            indent=1,
        ),
        encoding="utf-8",
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
