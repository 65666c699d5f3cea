"""Audit of denoising_diffusion_pytorch's classifier-free ``GaussianDiffusion`` (its
``classifier_free_guidance`` module, loaded by itself) on the exact model
(``refcfg.interop.ddpm_pytorch.ExactUnet``), objectives pred_noise / pred_x0 / pred_v, DDIM and
DDPM paths.

Controls: ``ddim_sample`` equals a DDIM loop written here (the library's update with its schedule
buffers (float32 values, the module cast to float64), exact conditional and unconditional predictions in the objective's space,
combined by ``refcfg.guidance.nonlinear.apg_combine`` with eta = 0 and no norm clip, then guidance
rescale), from the same noise, to rounding; with the defaults of
``sample`` (cond_scale 6, rescaled_phi 0.7, ddim_sampling_eta 1, x0 clipping) the same loop with the
library's noise draws. Findings: the rule is not plain CFG (the update's component parallel to the
conditional prediction is removed), so the samples depend on the objective; cond_scale is w;
cond_scale = 1 fails for batches other than 2; cond_scale = 0 is not the unconditional model;
x0 clipping at [-1, 1] (always on in the DDPM path) and its bias; ``sample`` returns (x + 1) / 2;
reproducibility by the global torch seed.
"""

from __future__ import annotations

import numpy as np

from ._report import AuditResult, LibraryMissing, max_err, torch_default_float64

NAME = "ddpm-pytorch"
REQUIRES = ("torch", "einops", "denoising_diffusion_pytorch")
PROBLEM = "two-class-2d"
SHAPE = (2, 1, 1)
Y, W = 0, 3.0
BACKEND = "numpy"  # the closed forms: fastest for the small batches of this audit

_SIZES = {
    True: dict(n=64, steps=25, ddpm_T=100, order_steps=(10, 20, 40), order_n=32, ref_tol=1e-5),
    False: dict(
        n=1000, steps=100, ddpm_T=1000, order_steps=(25, 50, 100, 200), order_n=256, ref_tol=1e-8
    ),
}
OBJECTIVES = ("pred_noise", "pred_x0", "pred_v")
_OUT = {"pred_noise": "epsilon", "pred_x0": "sample", "pred_v": "v_prediction"}


def _lib():
    try:
        import torch  # noqa: F401

        from ..interop.ddpm_pytorch import load_library

        lib = load_library()
    except ImportError as exc:
        raise LibraryMissing(
            f"the ddpm-pytorch audit needs torch, einops and "
            f"denoising-diffusion-pytorch (pip install --no-deps "
            f"denoising-diffusion-pytorch einops): {exc}"
        ) from None
    lib.tqdm = lambda it, **kw: it  # the library's progress bar off (its loops are unchanged)
    return lib


def _median_err(a, b) -> float:
    """Median over rows of max |a - b| (rows (n, d))."""
    return float(np.median(np.max(np.abs(np.asarray(a) - np.asarray(b)), axis=1)))


def _f(v) -> float:
    """A library buffer entry (float32) as a float."""
    return float(v)


def ddim_loop(diffusion, path, x, y, w, rule="library", phi=0.0, clip=False, eta=0.0, noise=None):
    """The library's DDIM update written here on exact predictions (module docstring).

    rule: "library" (apg_combine with eta 0 and no norm clip: the parallel part of c - u removed,
    then guidance rescale with ``phi``) or "cfg" (plain CFG u + w (c - u)); x: (n, d) start;
    noise(shape): the draws of the stochastic part (eta > 0). Returns (n, d) in the model's
    coordinates."""
    import torch

    from ..guidance.nonlinear import apg_combine
    from ..interop._core import predict_signal_noise, signal_noise_from_alphas_cumprod

    T, S = diffusion.num_timesteps, diffusion.sampling_timesteps
    out_kind = _OUT[diffusion.objective]
    times = list(reversed(torch.linspace(-1, T - 1, steps=S + 1).int().tolist()))
    cond, uncond = path.field(y), path.field(None)
    x = np.array(x, dtype=np.float64)
    acp = diffusion.alphas_cumprod.detach().cpu().double().numpy()
    for time, nxt in zip(times[:-1], times[1:]):
        # the exact model's (signal, noise): as the stand-in computes them from alphas_cumprod
        a, s = signal_noise_from_alphas_cumprod(acp, time)
        c = predict_signal_noise(cond, x, a, s, out_kind, backend=BACKEND)
        u = predict_signal_noise(uncond, x, a, s, out_kind, backend=BACKEND)
        if rule == "cfg":
            g = u + w * (c - u)
        else:
            g = apg_combine(c, u, w, eta=0.0)[0] if w != 1.0 else c
            if phi != 0.0:
                sc = c.std(axis=1, ddof=1, keepdims=True)
                sg = g.std(axis=1, ddof=1, keepdims=True)
                g = phi * g * (sc / sg) + (1.0 - phi) * g
        r = _f(diffusion.sqrt_recip_alphas_cumprod[time])
        rm1 = _f(diffusion.sqrt_recipm1_alphas_cumprod[time])
        if out_kind == "epsilon":
            x0 = r * x - rm1 * g
            x0c = np.clip(x0, -1, 1) if clip else x0
            eps = g
        else:
            x0 = (
                g
                if out_kind == "sample"
                else (
                    _f(diffusion.sqrt_alphas_cumprod[time]) * x
                    - _f(diffusion.sqrt_one_minus_alphas_cumprod[time]) * g
                )
            )
            x0c = np.clip(x0, -1, 1) if clip else x0
            eps = (r * x - x0c) / rm1
        if nxt < 0:
            x = x0c
            continue
        alpha = diffusion.alphas_cumprod[time]
        alpha_next = diffusion.alphas_cumprod[nxt]
        sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
        cc = (1 - alpha_next - sigma**2).sqrt()
        x = x0c * _f(alpha_next.sqrt()) + _f(cc) * eps
        if eta != 0.0:
            x = x + _f(sigma) * noise(x.shape)
    return x


def _order(res, path, z, seed):
    """Fitted order of ddim_sample (pred_noise, eta 0, no clipping, rescaled_phi 0) against the
    exact ODE endpoint of the rule it applies: refcfg's APG field in the eps space with eta 0 and
    no norm clip (the parallel-removed rule), from the library's own start (timestep T - 1)."""
    import torch

    from ..guidance.nonlinear import APG
    from ..interop.ddpm_pytorch import gaussian_diffusion
    from ..interop.reference import library_time
    from ._report import fit_order, same_noise_endpoint

    n = z["order_n"]
    classes = torch.full((n,), Y, dtype=torch.long)
    field = APG(
        path.field(Y),
        path.field(None),
        W,
        eta=0.0,
        norm_threshold=float("inf"),
        space="eps",
        schedule=path.schedule,
    )
    errs, rows = [], []
    for k in z["order_steps"]:
        diff = gaussian_diffusion(
            path,
            shape=SHAPE,
            objective="pred_noise",
            sampling_timesteps=k,
            ddim_sampling_eta=0.0,
            backend=BACKEND,
        ).double()
        torch.manual_seed(seed)
        x = (
            diff.ddim_sample(
                classes, (n, *SHAPE), cond_scale=W, rescaled_phi=0.0, clip_denoised=False
            )
            .reshape(n, -1)
            .numpy()
            * 2
            - 1
        )
        torch.manual_seed(seed)
        x_init = torch.randn((n, *SHAPE)).reshape(n, -1).numpy()
        acp = diff.alphas_cumprod.detach().double().numpy()
        t0, c = library_time(path.schedule, timestep=diff.num_timesteps - 1, alphas_cumprod=acp)
        # the rule is not lowerable: its reference runs on NumPy, to a tolerance far below the
        # errors measured against it
        ref = same_noise_endpoint(field, x_init * c, t0, 1.0, tol=z["ref_tol"])
        errs.append(max_err(x, ref))
        rows.append({"steps": k, "t_start": t0, "max_error": errs[-1]})
    order = fit_order(z["order_steps"], errs)
    res.add_series("ddim_sample (pred_noise)", z["order_steps"], errs)
    res.tables[
        f"ddim_sample against the exact ODE endpoint of its rule (APG in eps, eta 0, no norm "
        f"clip; w = {W:g}, n = {n})"
    ] = rows
    res.check(
        "finding",
        "fitted order of ddim_sample (nominal 1) against the exact endpoint of "
        "the parallel-removed rule's ODE from the same start",
        order,
        abs(order - 1) <= 0.3,
        "1 +- 0.3",
    )


def run(fast: bool = True, seed: int = 0) -> AuditResult:
    """Run the audit (module docstring); ``fast`` uses the small sizes of CI."""
    _lib()
    with torch_default_float64():
        return _run(fast, seed)


def _run(fast, seed):
    import torch

    from .. import problems
    from ..interop.ddpm_pytorch import gaussian_diffusion

    z = _SIZES[bool(fast)]
    res = AuditResult(NAME, bool(fast), int(seed))
    path = problems.resolve(PROBLEM).path
    n, S = z["n"], z["steps"]
    classes = torch.full((n,), Y, dtype=torch.long)

    def make(objective, **kw):
        # .double(): the schedule buffers (float32 values) in float64, so that the library's
        # arithmetic and the loop written here round alike
        return gaussian_diffusion(
            path, shape=SHAPE, objective=objective, sampling_timesteps=S, backend=BACKEND, **kw
        ).double()

    def start(k):
        torch.manual_seed(k)
        return torch.randn((n, *SHAPE))

    rows = []
    lib_out = {}
    for objective in OBJECTIVES:
        diff = make(objective, ddim_sampling_eta=0.0)
        torch.manual_seed(seed)
        img = diff.ddim_sample(
            classes, (n, *SHAPE), cond_scale=W, rescaled_phi=0.0, clip_denoised=False
        )
        xl = img.reshape(n, -1).numpy() * 2 - 1
        lib_out[objective] = xl
        x_init = start(seed).reshape(n, -1).numpy()
        own = ddim_loop(diff, path, x_init, Y, W, rule="library")
        cfg = ddim_loop(diff, path, x_init, Y, W, rule="cfg")
        e, ec, em = max_err(xl, own), max_err(xl, cfg), _median_err(xl, own)
        res.check(
            "control",
            f"{objective}: ddim_sample (eta 0, no clipping, cond_scale {W:g}, "
            f"rescaled_phi 0), mapped back by 2 img - 1, = the loop written here with the "
            f"parallel-removed rule (median over rows; max {e:.2g})",
            em,
            em <= 1e-12,
            "<= 1e-12",
        )
        res.check(
            "finding",
            f"{objective}: the library's rule is not plain CFG (max difference "
            f"to the plain-CFG loop)",
            ec,
            ec > 1e-2,
            "> 1e-2",
        )
        rows.append(
            {
                "objective": objective,
                "vs loop with its rule (max)": e,
                "(median)": em,
                "vs plain-CFG loop": ec,
                "plain-CFG loop vs pred_noise's plain-CFG loop": max_err(
                    cfg,
                    ddim_loop(
                        make("pred_noise", ddim_sampling_eta=0.0), path, x_init, Y, W, rule="cfg"
                    ),
                ),
            }
        )
    res.tables[
        f"DDIM, eta 0, cond_scale {W:g}, rescaled_phi 0, no clipping (n = {n}, {S} steps)"
    ] = rows
    dv = max_err(lib_out["pred_noise"], lib_out["pred_v"])
    res.check(
        "finding",
        "same noise and cond_scale, objectives pred_noise and pred_v give "
        "different samples (max difference)",
        dv,
        dv > 1e-2,
        "> 1e-2",
    )
    dc = max(r["plain-CFG loop vs pred_noise's plain-CFG loop"] for r in rows)
    res.check(
        "finding",
        "plain CFG loops in the three objectives' spaces differ only by the "
        "library's separately rounded float32 schedule buffers (max difference)",
        dc,
        1e-10 < dc < 1e-4,
        "in (1e-10, 1e-4)",
    )

    # the defaults of sample(): cond_scale 6, rescaled_phi 0.7, ddim_sampling_eta 1, clipping
    diff = make("pred_noise")
    torch.manual_seed(seed)
    img = diff.sample(classes)
    xl = img.reshape(n, -1).numpy() * 2 - 1
    torch.manual_seed(seed)
    x_init = torch.randn((n, *SHAPE)).reshape(n, -1).numpy()
    own = ddim_loop(
        diff,
        path,
        x_init,
        Y,
        6.0,
        rule="library",
        phi=0.7,
        clip=True,
        eta=1.0,
        noise=lambda shape: torch.randn((shape[0], *SHAPE)).reshape(shape).numpy(),
    )
    e, em = max_err(xl, own), _median_err(xl, own)
    res.check(
        "control",
        f"sample(classes) with its defaults (cond_scale 6, rescaled_phi 0.7, "
        f"ddim_sampling_eta 1, x0 clipped) = the loop written here with the same draws "
        f"(median over rows; max {e:.2g})",
        em,
        em <= 1e-12,
        "<= 1e-12",
    )
    res.notes.append(
        f"Defaults control: max difference over rows {e:.3g}, median {em:.3g}. The "
        f"few rows far above the median are rows where the guided prediction's "
        f"coordinates are nearly equal, so its std over the d = 2 coordinates (the "
        f"rescale's denominator) is near 0 and the rescale amplifies rounding."
    )
    inside = float(np.mean(np.abs(xl) <= 1 + 1e-12))
    img_range = (float(img.min()), float(img.max()))
    res.check(
        "finding",
        "sample() returns (x + 1) / 2: its output range (min) with x0 clipped",
        img_range[0],
        img_range[0] >= 0.0 and img_range[1] <= 1.0 and inside == 1.0,
        "in [0, 1]",
    )
    torch.manual_seed(seed)
    again = diff.sample(classes).reshape(n, -1).numpy() * 2 - 1
    torch.manual_seed(seed + 1)
    other = diff.sample(classes).reshape(n, -1).numpy() * 2 - 1
    er, eo = max_err(xl, again), max_err(xl, other)
    res.check(
        "finding",
        "sample() takes no generator; the same global torch seed reproduces a run",
        er,
        er == 0.0,
        "== 0",
    )
    res.check(
        "finding", "another global torch seed changes it (max difference)", eo, eo > 1e-3, "> 1e-3"
    )

    # cond_scale 1 and 0
    diff = make("pred_noise", ddim_sampling_eta=0.0)
    try:
        diff.sample(torch.full((3,), Y, dtype=torch.long), cond_scale=1.0)
        raised = 0.0
    except ValueError:
        raised = 1.0
    res.check(
        "finding",
        "cond_scale = 1 with a batch of 3 raises ValueError (1 = raised)",
        raised,
        raised == 1.0,
        "== 1",
    )
    torch.manual_seed(seed)
    x2 = diff.sample(torch.full((2,), Y, dtype=torch.long), cond_scale=1.0).reshape(2, -1)
    torch.manual_seed(seed)
    x2_init = torch.randn((2, *SHAPE)).reshape(2, -1).numpy()
    cond2 = ddim_loop(diff, path, x2_init, Y, 1.0, rule="cfg", clip=True)
    e2 = max_err(x2.numpy() * 2 - 1, cond2)
    res.check(
        "finding",
        "cond_scale = 1 with a batch of 2 runs but does not give the conditional "
        "model (max difference to the conditional loop)",
        e2,
        e2 > 1e-2,
        "> 1e-2",
    )
    torch.manual_seed(seed)
    x0s = (
        diff.ddim_sample(
            classes, (n, *SHAPE), cond_scale=0.0, rescaled_phi=0.0, clip_denoised=False
        )
        .reshape(n, -1)
        .numpy()
        * 2
        - 1
    )
    unc = ddim_loop(diff, path, start(seed).reshape(n, -1).numpy(), None, 1.0, rule="cfg")
    eu = max_err(x0s, unc)
    res.check(
        "finding",
        "cond_scale = 0 is not the unconditional model (max difference to the unconditional loop)",
        eu,
        eu > 1e-2,
        "> 1e-2",
    )

    # x0 clipping: bias in DDIM, always on in the DDPM path
    torch.manual_seed(seed)
    xc = (
        diff.ddim_sample(classes, (n, *SHAPE), cond_scale=W, rescaled_phi=0.0, clip_denoised=True)
        .reshape(n, -1)
        .numpy()
        * 2
        - 1
    )
    xn = lib_out["pred_noise"]
    res.tables[f"x0 clipping, DDIM eta 0, cond_scale {W:g} (n = {n})"] = [
        {
            "clip_denoised": True,
            "mean": xc.mean(axis=0).tolist(),
            "sd": xc.std(axis=0).tolist(),
            "fraction outside [-1, 1]": float(np.mean(np.abs(xc) > 1 + 1e-12)),
        },
        {
            "clip_denoised": False,
            "mean": xn.mean(axis=0).tolist(),
            "sd": xn.std(axis=0).tolist(),
            "fraction outside [-1, 1]": float(np.mean(np.abs(xn) > 1)),
        },
    ]
    shift = float(np.max(np.abs(xc.mean(axis=0) - xn.mean(axis=0))))
    res.check(
        "finding",
        "x0 clipping at [-1, 1] moves the sample mean (max over coordinates)",
        shift,
        shift > 0.05,
        "> 0.05",
    )
    ddpm = gaussian_diffusion(
        path, shape=SHAPE, objective="pred_noise", timesteps=z["ddpm_T"], backend=BACKEND
    ).double()
    torch.manual_seed(seed)
    xd = ddpm.sample(classes, cond_scale=W, rescaled_phi=0.0).reshape(n, -1).numpy() * 2 - 1
    frac = float(np.mean(np.abs(xd) > 1 + 1e-12))
    res.check(
        "finding",
        f"DDPM path (p_sample_loop, {z['ddpm_T']} timesteps) clips x0 with no "
        "option: fraction of coordinates outside [-1, 1]",
        frac,
        frac == 0.0,
        "== 0",
    )
    _order(res, path, z, seed)
    res.notes.append(
        f"Problem {PROBLEM} (its data exceed [-1, 1]: the library assumes data "
        f"normalised to [-1, 1]); latent shape {SHAPE}; torch default dtype float64 "
        f"during the audit so that the library's draws are float64."
    )
    return res
