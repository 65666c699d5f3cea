"""Sampler error versus cost: how far a sampler's samples land from the exact ODE solution started
from the same noise, over a range of step counts, with the fitted order of convergence.

A *sampler* here is a callable ``sampler(noise, steps) -> samples`` ((n, d) arrays) together with
its start: the refcfg time ``t_start`` and scale ``c`` such that its initial state corresponds to
refcfg's x(t_start) = c * noise. The reference is refcfg's RK4 on the exact field from that point to
t = 1 with ``ref_steps`` steps (its own error is reported: the difference to RK4 with half as many
steps); a sampler whose last step jumps from a fixed noise level to the data by the x0 prediction
(diffusers' Euler, Heun, DPM-Solver++ end at training timestep 0, then x0) gets the same last step
in its reference, so the error measures the integration itself. The error of a run is the
root-mean-square over particles of |x_sampler - x_exact|; the
fitted order p is minus the least-squares slope of log(error) against log(steps).

Built-in pipelines (``pipeline(name, path, y, w)``, diffusers needed): "ddim" (DDIMScheduler,
trailing spacing, order 1), "euler" (EulerDiscreteScheduler, 1), "heun" (HeunDiscreteScheduler, 2),
"dpmpp-2m" (DPMSolverMultistepScheduler, dpmsolver++ of order 2), each started at training
timestep 999 with the exact model of ``refcfg.interop.diffusers`` (guidance w exact inside it).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

__all__ = ["Sampler", "pipeline", "PIPELINES", "KNOWN_ORDERS", "SamplerErrorResult",
           "sampler_error", "fit_order"]

PIPELINES = ("ddim", "euler", "heun", "dpmpp-2m")
KNOWN_ORDERS = {"ddim": 1, "euler": 1, "heun": 2, "dpmpp-2m": 2}
_NFE_PER_STEP = {"ddim": 1, "euler": 1, "heun": 2, "dpmpp-2m": 1}


@dataclasses.dataclass
class Sampler:
    """A sampler to measure: ``run(noise, steps) -> samples``; it starts at refcfg time
    ``t_start`` from x = ``scale`` * noise; ``nfe(steps)`` its number of field evaluations.
    ``t_end`` < 1 with ``final_x0``: its last step jumps from the fixed time t_end to the data by
    the x0 prediction (Euler to sigma = 0), for every step count; the reference does the same, so
    that the error measures the integration from t_start to t_end."""

    name: str
    run: Callable
    t_start: float = 0.0
    scale: float = 1.0
    nfe: Callable = lambda steps: steps
    t_end: float = 1.0
    final_x0: bool = False


def pipeline(name: str, path, y=None, w=None) -> Sampler:
    """A diffusers scheduler loop on the exact model (module docstring); needs torch, diffusers."""
    if name not in PIPELINES:
        raise ValueError(f"pipeline must be one of {PIPELINES}, got {name!r}")
    import diffusers
    import torch

    from ..interop import time_from_signal_noise
    from ..interop.diffusers import ExactDiffusersModel, signal_noise

    def make():
        if name == "ddim":
            return diffusers.DDIMScheduler(clip_sample=False, timestep_spacing="trailing")
        if name == "euler":
            return diffusers.EulerDiscreteScheduler()
        if name == "heun":
            return diffusers.HeunDiscreteScheduler()
        return diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)

    sched0 = make()
    a, s = signal_noise(sched0, 999)
    t0, c = time_from_signal_noise(path.schedule, a, s)
    # the model's first input, per unit of noise: init_noise_sigma then scale_model_input. It is 1
    # for DDIM and DPM-Solver, but Euler and Heun with "linspace" spacing start at sigma_max * noise
    # (not sqrt(sigma_max^2 + 1) * noise), i.e. at (1 - 2e-5) * noise in the model's variable; the
    # reference starts where the sampler does
    probe = make()
    probe.set_timesteps(10)
    unit = probe.scale_model_input(torch.ones(1, dtype=torch.float64) * probe.init_noise_sigma,
                                   probe.timesteps[0])
    c = c * float(unit[0])
    field_kwargs = dict(y=y, w=w)

    def run(noise, steps):
        sched = make()
        model = ExactDiffusersModel(path, sched, **field_kwargs)
        sched.set_timesteps(int(steps))
        if float(sched.timesteps[0]) != 999.0:
            raise RuntimeError(f"{name}: the first timestep is {float(sched.timesteps[0])}, "
                               f"not 999")
        x = torch.from_numpy(np.array(noise, dtype=np.float64)) * sched.init_noise_sigma
        for k in sched.timesteps:
            out = model(sched.scale_model_input(x, k), k).sample
            x = sched.step(out, k, x).prev_sample
        return x.numpy()

    per = _NFE_PER_STEP[name]
    if name == "ddim":  # trailing spacing: the last step's size shrinks with the step count
        t_end, final = 1.0, False
    else:  # the last noise level is training timestep 0 for every step count, then x0
        t_end = float(time_from_signal_noise(path.schedule, *signal_noise(sched0, 0))[0][0])
        final = True
    return Sampler(name, run, float(t0[0]), float(c[0]),
                   (lambda steps: per * steps - (1 if per == 2 else 0)), t_end, final)


def fit_order(steps, errors) -> float:
    """Minus the least-squares slope of log(error) against log(steps)."""
    ls, le = np.log(np.asarray(steps, dtype=float)), np.log(np.asarray(errors, dtype=float))
    return float(-np.polyfit(ls, le, 1)[0])


@dataclasses.dataclass
class SamplerErrorResult:
    """Rows (sampler, w, steps, nfe, error) and the fitted order per (sampler, w)."""

    rows: list
    orders: dict
    ref_error: dict
    n: int
    seed: int

    def table(self) -> str:
        """A Markdown table: error per sampler and w over the steps, and the fitted order."""
        steps = sorted({r["steps"] for r in self.rows})
        head = "| sampler | w | " + " | ".join(f"{s} steps" for s in steps) + " | fitted order |"
        lines = [head, "|" + "---|" * (len(steps) + 3)]
        for (name, w), order in self.orders.items():
            errs = {r["steps"]: r["error"] for r in self.rows if r["sampler"] == name
                    and r["w"] == w}
            cells = " | ".join(f"{errs[s]:.2e}" if s in errs else "" for s in steps)
            lines.append(f"| {name} | {w:g} | {cells} | {order:.2f} |")
        return "\n".join(lines)


def sampler_error(samplers, path, y=None, ws=(1.0,), steps=(8, 16, 32, 64), *, n=256, seed=0,
                  ref_steps=2000, field_for=None) -> SamplerErrorResult:
    """Errors of each sampler against the exact ODE solution from the same noise.

    samplers: names of ``PIPELINES`` or ``Sampler`` objects; a name is built for each w by
    :func:`pipeline` (``field_for`` is not needed then); a ``Sampler`` object is used for every w
    as given (build one per w yourself). path: a GMMPath; y: the class (None: unconditional, only
    w = 1); ws: CFG weights; steps: step counts (>= 2 of them to fit an order)."""
    from ..interop import predict
    from ..sampling import sample

    steps = [int(s) for s in steps]
    if len(steps) < 2 or min(steps) < 1:
        raise ValueError(f"steps must hold at least two counts >= 1, got {steps}")
    if y is None and any(w != 1.0 for w in ws):
        raise ValueError("w != 1 needs a class y")
    if isinstance(n, bool) or int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    noise = np.random.default_rng(seed).standard_normal((int(n), path.mixture.d))
    rows, orders, ref_error = [], {}, {}
    for w in ws:
        field = path.field(y) if w == 1.0 else path.cfg(y, w)
        refs = {}
        for spec in samplers:
            smp = pipeline(spec, path, y, None if w == 1.0 else w) if isinstance(spec, str) \
                else spec
            key = (smp.t_start, smp.scale, smp.t_end, smp.final_x0)
            if key not in refs:
                x_init = smp.scale * noise

                def exact(k):
                    z = sample(field, int(n), sampler="rk4", steps=k, t_start=smp.t_start,
                               t_end=smp.t_end, x_init=x_init)
                    return predict(field, z, smp.t_end, "x0") if smp.final_x0 else z
                ref, half = exact(ref_steps), exact(ref_steps // 2)
                refs[key] = ref
                ref_error[(smp.name, float(w))] = float(np.sqrt(np.mean(np.sum(
                    (ref - half) ** 2, axis=1))))
            ref = refs[key]
            errs = []
            for s in steps:
                out = np.asarray(smp.run(noise, s), dtype=np.float64)
                err = float(np.sqrt(np.mean(np.sum((out - ref) ** 2, axis=1))))
                errs.append(err)
                rows.append({"sampler": smp.name, "w": float(w), "steps": s,
                             "nfe": int(smp.nfe(s)), "error": err})
            orders[(smp.name, float(w))] = fit_order(steps, errs)
    return SamplerErrorResult(rows, orders, ref_error, int(n), int(seed))
