"""Audit of diffusers' ``DiTPipeline.__call__`` on the exact model (``refcfg.interop.dit``) with
the schedulers DDIM, DPM-Solver++ 2M, DDPM, Euler and Heun (DiT's training schedule: linear betas
1e-4 to 0.02 over 1000 steps, every scheduler's default).

Controls: the pipeline's latents equal a plain scheduler loop written here on
``ExactDiffusersModel`` with the exact CFG field inside the model (w = guidance_scale), started
from the same latents as the pipeline, to rounding; the latents the pipeline draws are
``randn_tensor`` of the generator. Findings: guidance_scale is w; scales <= 1 give the conditional
model (w = 1) whatever their value; the initial latents are not multiplied by the scheduler's
``init_noise_sigma``; whether ``generator`` makes a run reproducible; DDIMScheduler's default x0
clipping; the fitted order of every deterministic scheduler against the exact ODE endpoint from
the pipeline's own start (which ends at t = 1, where these schedulers end); and the law of the
samples by the two-sample test.
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
)

NAME = "diffusers-dit"
REQUIRES = ("torch", "diffusers")
PROBLEM = "two-class-2d"
SHAPE = (2, 1, 1)
Y, W = 0, 3.0

_SIZES = {
    True: dict(n=64, n_law=400, steps=(10, 20, 40), ref_tol=1e-8, ddpm_steps=100, perms=200),
    False: dict(
        n=1000, n_law=2000, steps=(10, 20, 40, 80, 160), ref_tol=1e-10, ddpm_steps=1000, perms=500
    ),
}

DETERMINISTIC = {"ddim": 1, "dpmpp-2m": 2, "euler": 1, "heun": 2}
"""Deterministic schedulers audited and their nominal orders."""


def _imports():
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise LibraryMissing(f"the diffusers-dit audit needs torch and diffusers: {exc}") from None


def scheduler(name, **kw):
    """A fresh diffusers scheduler by audit name, built as users swap schedulers,
    ``Cls.from_config(pipe.scheduler.config)``, from a DDIMScheduler with DiT's training schedule
    and ``clip_sample=False`` (unless ``clip_sample`` is given)."""
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        HeunDiscreteScheduler,
    )

    base = DDIMScheduler(
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        num_train_timesteps=1000,
        clip_sample=kw.pop("clip_sample", False),
    ).config
    cls = {
        "ddim": DDIMScheduler,
        "ddpm": DDPMScheduler,
        "dpmpp-2m": DPMSolverMultistepScheduler,
        "euler": EulerDiscreteScheduler,
        "heun": HeunDiscreteScheduler,
    }.get(name)
    if cls is None:
        raise ValueError(f"unknown scheduler {name!r}")
    if name == "dpmpp-2m":
        kw = {"algorithm_type": "dpmsolver++", "solver_order": 2, **kw}
    return cls.from_config(base, **kw)


def _pipe_latents(pipe, n, y, s, steps, seed=None, generator=None):
    """Run the real pipeline; returns its final latents (n, d) as float64 numpy."""
    import torch

    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    pipe(
        class_labels=[y] * n,
        guidance_scale=s,
        generator=g,
        num_inference_steps=steps,
        output_type="pt",
    )
    return pipe.vae.latents.reshape(n, -1).numpy().copy()


def _start_latents(n, seed):
    """The latents DiTPipeline draws: randn_tensor((n, C, H, W), generator seeded with seed)."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    return randn_tensor(
        (n, *SHAPE), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def start_state(path, sched, latents, steps, scale_init=False):
    """refcfg's (x, t) of a loop's start: the first model input (after ``scale_model_input``)
    mapped by the same signal-to-noise match as the model (``refcfg.interop.diffusers``)."""
    from ..interop.dit import dit_alphas_cumprod
    from ..interop.reference import library_time

    n = latents.shape[0]
    sched.set_timesteps(steps)
    k = sched.timesteps[0]
    x = latents.reshape(n, -1) * (sched.init_noise_sigma if scale_init else 1.0)
    xin = sched.scale_model_input(x, k)
    t0, c = library_time(path.schedule, timestep=float(k), alphas_cumprod=dit_alphas_cumprod())
    return xin.numpy() * c, t0


def plain_loop(
    path, sched, latents, y, w, steps, as_pipeline=False, *, init_scaled=None, step_on_scaled=None
):
    """A diffusers loop on the exact CFG model (w inside the model, eq. 65): scale_model_input,
    model, step. Standard (as_pipeline False): the start latents are multiplied by
    ``init_noise_sigma`` and ``step`` gets the unscaled sample, as the schedulers expect.
    as_pipeline: as DiTPipeline does it, unscaled start and ``step`` given the output of
    ``scale_model_input``. init_scaled / step_on_scaled set either choice alone. Returns the
    final latents (n, d)."""
    init_scaled = (not as_pipeline) if init_scaled is None else init_scaled
    step_on_scaled = as_pipeline if step_on_scaled is None else step_on_scaled
    from ..interop.discrete import AlphasCumprodModel
    from ..interop.dit import dit_alphas_cumprod

    n = latents.shape[0]
    model = AlphasCumprodModel(
        path, dit_alphas_cumprod(), "epsilon", y=y, w=None if w == 1.0 else w
    )
    sched.set_timesteps(steps)
    x = latents.reshape(n, -1).clone()
    if init_scaled:
        x = x * sched.init_noise_sigma
    for k in sched.timesteps:
        xin = sched.scale_model_input(x, k)
        eps = model(xin, k)
        x = sched.step(eps, k, xin if step_on_scaled else x).prev_sample
    return x.numpy()


def _scale_findings(res, path, pipe, lat, n, steps, seed, rows):
    """What guidance_scale means (DDIM, deterministic): w = s; s <= 1 is the conditional model."""
    xp = _pipe_latents(pipe, n, Y, W, steps, seed=seed)
    xw1 = plain_loop(path, scheduler("ddim"), lat, Y, W + 1, steps)
    e1 = max_err(xp, xw1)
    res.check(
        "finding",
        f"guidance_scale {W:g} is not w = {W + 1:g} (max difference to the w = {W + 1:g} loop)",
        e1,
        e1 > 1e-2,
        "> 1e-2",
    )
    xc = plain_loop(path, scheduler("ddim"), lat, Y, 1.0, steps)
    for s in (0.0, 0.5, 1.0):
        ec = max_err(_pipe_latents(pipe, n, Y, s, steps, seed=seed), xc)
        rows.append({"guidance_scale": s, "max |pipeline - conditional loop|": ec})
        res.check(
            "finding",
            f"guidance_scale {s:g} gives the conditional model (w = 1)",
            ec,
            ec <= 1e-10,
            "<= 1e-10",
        )
    xu = plain_loop(path, scheduler("ddim"), lat, None, 1.0, steps)
    eu = max_err(_pipe_latents(pipe, n, Y, 0.0, steps, seed=seed), xu)
    res.check(
        "finding",
        "guidance_scale 0 is not the unconditional model (max difference to the "
        "unconditional loop)",
        eu,
        eu > 1e-2,
        "> 1e-2",
    )


def run(fast: bool = True, seed: int = 0) -> AuditResult:
    """Run the audit (module docstring); ``fast`` uses the small sizes of CI."""
    _imports()
    import torch

    from .. import problems
    from ..interop.dit import dit_pipeline
    from ..sample_checks import check_samples

    z = _SIZES[bool(fast)]
    res = AuditResult(NAME, bool(fast), int(seed))
    path = problems.resolve(PROBLEM).path
    n = z["n"]
    lat = _start_latents(n, seed)

    # control: the latents the pipeline draws are randn_tensor of its generator
    pipe = dit_pipeline(path, scheduler("ddim"), shape=SHAPE, record=True)
    _pipe_latents(pipe, n, Y, W, 10, seed=seed)
    e = max_err(pipe.transformer.calls[0][1][:n], lat)
    res.check(
        "control",
        "first transformer input = randn_tensor(generator) (DDIM, scale 1)",
        e,
        e == 0.0,
        "== 0",
    )

    # controls and findings per deterministic scheduler
    order_rows, cfg_rows = [], []
    steps0 = z["steps"][1]
    for name, nominal in DETERMINISTIC.items():
        pipe = dit_pipeline(path, scheduler(name), shape=SHAPE)
        xp = _pipe_latents(pipe, n, Y, W, steps0, seed=seed)
        xl = plain_loop(path, scheduler(name), lat, Y, W, steps0, as_pipeline=True)
        e = max_err(xp, xl)
        res.check(
            "control",
            f"{name}: pipeline (guidance_scale {W:g}) = the loop written here "
            f"with the exact CFG field w = {W:g}, same start, steps as the pipeline takes "
            f"them",
            e,
            e <= 1e-10,
            "<= 1e-10",
        )
        if name == "ddim":
            _scale_findings(res, path, pipe, lat, n, steps0, seed, cfg_rows)
        errs_pipe, errs_loop = [], []
        for steps in z["steps"]:
            xp = _pipe_latents(pipe, n, Y, W, steps, seed=seed)
            x_start, t0 = start_state(path, scheduler(name), lat, steps)
            ref = same_noise_endpoint(path.cfg(Y, W), x_start, t0, 1.0, tol=z["ref_tol"])
            errs_pipe.append(max_err(xp, ref))
            # the scheduler in a standard loop (start at init_noise_sigma, step on the unscaled
            # sample), against the exact endpoint from that loop's start
            xs = plain_loop(path, scheduler(name), lat, Y, W, steps)
            x_start, t0s = start_state(path, scheduler(name), lat, steps, scale_init=True)
            refs = same_noise_endpoint(path.cfg(Y, W), x_start, t0s, 1.0, tol=z["ref_tol"])
            errs_loop.append(max_err(xs, refs))
            order_rows.append(
                {
                    "scheduler": name,
                    "steps": steps,
                    "t_start": t0s,
                    "standard loop max_error": errs_loop[-1],
                    "pipeline max_error": errs_pipe[-1],
                }
            )
        order = fit_order(z["steps"], errs_loop)
        res.add_series(f"{name} (standard loop)", z["steps"], errs_loop)
        res.add_series(f"{name} (DiTPipeline)", z["steps"], errs_pipe)
        res.check(
            "finding",
            f"fitted order of {name} (nominal {nominal}) in a standard loop, "
            f"against the exact endpoint from the same start, w = {W:g}",
            order,
            abs(order - nominal) <= 0.3,
            f"{nominal} +- 0.3",
        )
        order_p = fit_order(z["steps"], errs_pipe)
        if name in ("euler", "heun"):
            res.check(
                "finding",
                f"{name} inside DiTPipeline does not converge: fitted order of "
                f"its error against the exact endpoint from its own start",
                order_p,
                order_p < 0.3 and errs_pipe[-1] > 0.1,
                f"< 0.3, error at {z['steps'][-1]} steps > 0.1",
            )
        else:
            res.check(
                "finding",
                f"{name} inside DiTPipeline: fitted order (nominal {nominal})",
                order_p,
                abs(order_p - nominal) <= 0.3,
                f"{nominal} +- 0.3",
            )
    res.tables[
        f"deterministic schedulers: error against the exact ODE endpoint from the same "
        f"start (w = {W:g}, n = {n})"
    ] = order_rows
    res.tables["guidance_scale <= 1"] = cfg_rows

    # the two departures from a standard loop, separately: the start is not multiplied by
    # init_noise_sigma, and step() is given the output of scale_model_input
    rows = []
    nl = z["n_law"]
    lat_law = _start_latents(nl, seed + 1)
    pvals = {}
    for name in ("ddim", "euler"):
        sch = scheduler(name)
        sch.set_timesteps(50)
        pipe = dit_pipeline(path, scheduler(name), shape=SHAPE)
        xp = _pipe_latents(pipe, nl, Y, 1.0, 50, seed=seed + 1)
        variants = {"pipeline": xp}
        for init in (False, True):
            for on_scaled in (False, True):
                variants[(init, on_scaled)] = plain_loop(
                    path,
                    scheduler(name),
                    lat_law,
                    Y,
                    1.0,
                    50,
                    init_scaled=init,
                    step_on_scaled=on_scaled,
                )
        e = max_err(xp, variants[(False, True)])
        res.check(
            "control",
            f"{name}: pipeline = loop with unscaled start and step() on the "
            f"scaled input (w = 1, 50 steps)",
            e,
            e <= 1e-10,
            "<= 1e-10",
        )
        for key, x in variants.items():
            if key == "pipeline":
                continue
            rep = check_samples(
                x, path, y=Y, w=1.0, target="data", permutations=z["perms"], seed=seed
            )
            pvals[(name, *key)] = rep.p_value
            rows.append(
                {
                    "scheduler": name,
                    "init_noise_sigma": float(sch.init_noise_sigma),
                    "start x init_noise_sigma": key[0],
                    "step() on scale_model_input output": key[1],
                    "sd of samples": float(np.mean(x.std(axis=0))),
                    "p-value vs p(x|y)": rep.p_value,
                }
            )
    res.tables[
        f"start scale and step input, w = 1, 50 steps, n = {nl} (DiTPipeline: start not "
        f"scaled, step on the scaled input)"
    ] = rows
    res.check(
        "control",
        "euler, standard loop (scaled start, step on the unscaled sample) reaches p(x|y) (p-value)",
        pvals[("euler", True, False)],
        pvals[("euler", True, False)] > 0.01,
        "> 0.01",
    )
    bad = max(
        pvals[("euler", False, False)], pvals[("euler", True, True)], pvals[("euler", False, True)]
    )
    res.check(
        "finding",
        "euler: unscaled start, or step() on the scaled input, each alone is "
        "rejected as p(x|y) (largest p-value)",
        bad,
        bad <= 0.01,
        "<= 0.01",
    )
    okd = min(v for k, v in pvals.items() if k[0] == "ddim")
    res.check(
        "control",
        "ddim (init_noise_sigma 1, scale_model_input the identity): all four "
        "loops reach p(x|y) (smallest p-value)",
        okd,
        okd > 0.01,
        "> 0.01",
    )

    # generator and reproducibility; DDPM's law
    pipe = dit_pipeline(path, scheduler("ddpm"), shape=SHAPE)
    k = z["ddpm_steps"]
    torch.manual_seed(1)
    a = _pipe_latents(pipe, n, Y, W, k, seed=seed)
    torch.manual_seed(2)
    b = _pipe_latents(pipe, n, Y, W, k, seed=seed)
    torch.manual_seed(1)
    c = _pipe_latents(pipe, n, Y, W, k, seed=seed)
    eg, eglob = max_err(a, b), max_err(a, c)
    res.check(
        "finding",
        "ddpm: same generator, different global torch seed -> different samples (max difference)",
        eg,
        eg > 1e-3,
        "> 1e-3",
    )
    res.check(
        "finding",
        "ddpm: same generator and same global torch seed -> identical samples",
        eglob,
        eglob == 0.0,
        "== 0",
    )
    pipe = dit_pipeline(path, scheduler("ddim"), shape=SHAPE)
    torch.manual_seed(1)
    a = _pipe_latents(pipe, n, Y, W, 20, seed=seed)
    torch.manual_seed(2)
    b = _pipe_latents(pipe, n, Y, W, 20, seed=seed)
    ed = max_err(a, b)
    res.check(
        "finding", "ddim: the generator alone makes a run reproducible", ed, ed == 0.0, "== 0"
    )

    pipe = dit_pipeline(path, scheduler("ddpm"), shape=SHAPE)
    torch.manual_seed(seed)
    xd = _pipe_latents(pipe, nl, Y, W, k, seed=seed + 2)
    targets = ("sde", "ode", "data", "tilted")
    rows = law_rows(xd, path, Y, W, targets, permutations=z["perms"], seed=seed, steps=400)
    res.tables[f"law of the DDPM pipeline's samples ({k} steps, w = {W:g}, n = {nl})"] = rows
    p = {r["target"]: r["p_value"] for r in rows}
    res.check(
        "finding",
        "ddpm samples follow the exact CFG SDE law (p-value)",
        p["sde"],
        p["sde"] > 0.01,
        "> 0.01",
    )
    res.check(
        "finding",
        "ddpm samples do not follow p(x|y) (p-value)",
        p["data"],
        p["data"] <= 0.01,
        "<= 0.01",
    )

    # HeunDiscreteScheduler's own defaults are not DiT's schedule
    from diffusers import HeunDiscreteScheduler

    own = HeunDiscreteScheduler()
    own.set_timesteps(10)
    ours = scheduler("heun")
    ours.set_timesteps(10)
    smax_own, smax_dit = float(own.sigmas.max()), float(ours.sigmas.max())
    res.check(
        "finding",
        "HeunDiscreteScheduler() defaults (betas 0.00085 to 0.012): its largest "
        "sigma, against DiT's schedule",
        smax_own,
        abs(smax_own - smax_dit) > 1.0,
        f"!= DiT's {smax_dit:.4g}",
    )

    # DDIMScheduler's default clip_sample=True
    pipe = dit_pipeline(path, scheduler("ddim", clip_sample=True), shape=SHAPE)
    xc = _pipe_latents(pipe, n, Y, 1.0, 20, seed=seed)
    pipe = dit_pipeline(path, scheduler("ddim"), shape=SHAPE)
    xn = _pipe_latents(pipe, n, Y, 1.0, 20, seed=seed)
    out_c, out_n = float(np.mean(np.abs(xc) > 1.0 + 1e-12)), float(np.mean(np.abs(xn) > 1.0))
    res.tables["DDIMScheduler clip_sample (w = 1, 20 steps)"] = [
        {
            "clip_sample": True,
            "fraction of coordinates outside [-1, 1]": out_c,
            "mean": float(xc.mean()),
            "sd": float(xc.std()),
        },
        {
            "clip_sample": False,
            "fraction of coordinates outside [-1, 1]": out_n,
            "mean": float(xn.mean()),
            "sd": float(xn.std()),
        },
    ]
    res.check(
        "finding",
        "DDIMScheduler() default clip_sample=True: fraction of sample coordinates outside [-1, 1]",
        out_c,
        out_c == 0.0 and out_n > 0.1,
        "== 0 (and > 0.1 without clipping)",
    )
    return res
