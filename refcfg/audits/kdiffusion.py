"""Audit of k-diffusion's samplers (PyPI package ``k_diffusion.sampling``, loaded without its
training dependencies) on the exact EDM denoiser behind the usual CFG wrapper
(``refcfg.interop.kdiffusion``), on EDM's grid (``get_sigmas_karras``, sigma 80 to 0.002, then 0).

Controls: the CFG wrapper (one batched call with null and class labels) equals the exact CFG
denoiser to rounding; ``sample_euler`` equals EDM's Euler loop written here; a deterministic
sampler started at sigma_max = 80 is compared with the exact ODE endpoint from the same start
(refcfg's t for sigma 80, ending at t = 1 where the grid's last sigma, 0, ends). Findings: fitted
orders of Euler, Heun, DPM2, DPM++ 2M and LMS against their nominal orders; the laws reached by
the ancestral samplers (the exact SDE law or the ODE push-forward, by the two-sample test); and
that the noise of the ancestral samplers comes from torch's global generator (a
``BrownianTreeNoiseSampler`` with a seed is the reproducible alternative).
"""

from __future__ import annotations

import warnings

from ._report import AuditResult, LibraryMissing, fit_order, max_err, same_noise_endpoint

NAME = "k-diffusion"
REQUIRES = ("torch", "k_diffusion", "torchsde", "torchdiffeq")
PROBLEM = "two-class-2d"
Y, W = 0, 3.0
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
BACKEND = "numpy"

_SIZES = {
    True: dict(n=64, steps=(16, 32, 64), n_law=400, law_steps=64, perms=200, ref_tol=1e-8),
    False: dict(
        n=1000, steps=(16, 32, 64, 128, 256), n_law=2000, law_steps=128, perms=500, ref_tol=1e-10
    ),
}

DETERMINISTIC = {"euler": 1, "heun": 2, "dpm_2": 2, "dpmpp_2m": 2, "lms": 4}
ANCESTRAL = ("euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral")


def _sampling():
    try:
        import torch  # noqa: F401

        from ..interop.kdiffusion import load_sampling

        return load_sampling()
    except ImportError as exc:
        raise LibraryMissing(
            f"the k-diffusion audit needs torch, k-diffusion, torchsde and "
            f"torchdiffeq (pip install --no-deps k-diffusion torchsde "
            f"torchdiffeq): {exc}"
        ) from None


def edm_euler(model, x, sigmas):
    """EDM's Euler (Karras et al. 2022, Algorithm 1 without the corrector) written here:
    d = (x - D(x; sigma_i)) / sigma_i, x += d (sigma_{i+1} - sigma_i)."""
    for i in range(len(sigmas) - 1):
        d = (x - model(x, sigmas[i] * x.new_ones(x.shape[0]))) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def run(fast: bool = True, seed: int = 0) -> AuditResult:
    """Run the audit (module docstring); ``fast`` uses the small sizes of CI."""
    K = _sampling()
    import torch

    from .. import problems
    from ..interop.kdiffusion import CFGDenoiser, EDMDenoiser
    from ..interop.reference import library_time
    from ..sample_checks import reference_samples, two_sample_test

    z = _SIZES[bool(fast)]
    res = AuditResult(NAME, bool(fast), int(seed))
    path = problems.resolve(PROBLEM).path
    n = z["n"]
    inner = EDMDenoiser(path, backend=BACKEND)
    model = CFGDenoiser(inner, y=Y, cond_scale=W)
    exact = EDMDenoiser(path, y=Y, w=W, backend=BACKEND)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 2, dtype=torch.float64, generator=g)

    xs = noise * 3.0
    e = max(
        max_err(
            model(xs, torch.full((n,), s, dtype=torch.float64)),
            exact(xs, torch.full((n,), s, dtype=torch.float64)),
        )
        for s in (0.05, 1.0, 20.0)
    )
    res.check(
        "control",
        f"CFG wrapper (batched null / class call, cond_scale {W:g}) = the exact "
        f"CFG denoiser (sigma 0.05, 1, 20)",
        e,
        e <= 1e-12,
        "<= 1e-12",
    )

    def sigmas(k):
        return K.get_sigmas_karras(k, SIGMA_MIN, SIGMA_MAX, device="cpu").to(torch.float64)

    x_init = noise * SIGMA_MAX
    a = K.sample_euler(model, x_init, sigmas(16), disable=True)
    b = edm_euler(model, x_init, sigmas(16))
    e = max_err(a, b)
    res.check(
        "control", "sample_euler (16 steps) = EDM's Euler written here", e, e <= 1e-12, "<= 1e-12"
    )

    t0, c = library_time(path.schedule, sigma=SIGMA_MAX)
    ref = same_noise_endpoint(path.cfg(Y, W), x_init.numpy() * c, t0, 1.0, tol=z["ref_tol"])
    rows = []
    for name, nominal in DETERMINISTIC.items():
        fn = getattr(K, f"sample_{name}")
        errs = []
        for k in z["steps"]:
            x = fn(model, x_init, sigmas(k), disable=True)
            errs.append(max_err(x, ref))
            rows.append({"sampler": name, "steps": k, "max_error": errs[-1]})
        order = fit_order(z["steps"], errs)
        res.add_series(f"sample_{name}", z["steps"], errs)
        ok = abs(order - nominal) <= 0.5 if name != "lms" else 1.5 <= order <= nominal + 0.5
        res.check(
            "finding",
            f"fitted order of sample_{name} (nominal {nominal}) on the Karras "
            f"grid, against the exact endpoint from the same start, w = {W:g}",
            order,
            ok,
            f"{nominal} +- 0.5" if name != "lms" else f"in [1.5, {nominal + 0.5}]",
        )
    res.tables[
        f"deterministic samplers: error against the exact ODE endpoint from the same start "
        f"(sigma_max {SIGMA_MAX:g}, t_start {t0:.6f}, w = {W:g}, n = {n})"
    ] = rows

    # ancestral samplers: which law (two-sample tests against the exact SDE and ODE laws)
    nl = z["n_law"]
    gl = torch.Generator().manual_seed(seed + 1)
    xl = torch.randn(nl, 2, dtype=torch.float64, generator=gl) * SIGMA_MAX
    refs = {
        "sde": reference_samples(path, nl, Y, W, "sde", seed=seed + 2, steps=400),
        "ode": reference_samples(path, nl, Y, W, "ode", seed=seed + 3, steps=200),
        "data": reference_samples(path, nl, Y, 1.0, "data", seed=seed + 4),
    }
    rows = []
    for name in ANCESTRAL:
        torch.manual_seed(seed)
        x = getattr(K, f"sample_{name}")(model, xl, sigmas(z["law_steps"]), disable=True).numpy()
        row = {"sampler": name}
        for target, r in refs.items():
            row[f"p vs {target}"] = two_sample_test(x, r, permutations=z["perms"], seed=seed)[1]
        rows.append(row)
    res.tables[
        f"ancestral samplers (eta 1, {z['law_steps']} steps, w = {W:g}, n = {nl}): "
        f"two-sample p-values"
    ] = rows
    worst_sde = min(r["p vs sde"] for r in rows)
    res.check(
        "finding",
        "ancestral samplers reach the exact CFG SDE law (smallest p-value)",
        worst_sde,
        worst_sde > 0.01,
        "> 0.01",
    )
    worst_data = max(r["p vs data"] for r in rows)
    res.check(
        "finding",
        "ancestral samplers do not reach p(x|y) at w = 3 (largest p-value)",
        worst_data,
        worst_data <= 0.01,
        "<= 0.01",
    )

    # reproducibility: noise from torch's global generator
    sg = sigmas(16)
    torch.manual_seed(1)
    a = K.sample_euler_ancestral(model, x_init, sg, disable=True)
    torch.manual_seed(2)
    b = K.sample_euler_ancestral(model, x_init, sg, disable=True)
    torch.manual_seed(1)
    c2 = K.sample_euler_ancestral(model, x_init, sg, disable=True)
    eb, ec = max_err(a, b), max_err(a, c2)
    res.check(
        "finding",
        "sample_euler_ancestral draws from torch's global generator: another "
        "global seed, another result (max difference)",
        eb,
        eb > 1e-3,
        "> 1e-3",
    )
    res.check("finding", "the same global seed reproduces it", ec, ec == 0.0, "== 0")
    with warnings.catch_warnings():  # torchsde warns that sigma_min rounds below itself
        warnings.simplefilter("ignore", UserWarning)
        ns = [K.BrownianTreeNoiseSampler(x_init, SIGMA_MIN, SIGMA_MAX, seed=7) for _ in range(2)]
        torch.manual_seed(1)
        a = K.sample_euler_ancestral(model, x_init, sg, disable=True, noise_sampler=ns[0])
        torch.manual_seed(2)
        b = K.sample_euler_ancestral(model, x_init, sg, disable=True, noise_sampler=ns[1])
    eb = max_err(a, b)
    res.check(
        "finding",
        "with BrownianTreeNoiseSampler(seed=7) the result does not depend on the global seed",
        eb,
        eb == 0.0,
        "== 0",
    )
    return res
