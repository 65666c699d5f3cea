"""Exact refcfg fields inside other frameworks' pipelines.

- ``refcfg.interop.torch``: ``ExactModule``, an ``nn.Module`` giving the exact velocity, eps, x0,
  score or v prediction of a field for CPU and CUDA tensors.
- ``refcfg.interop.jax``: the same for JAX arrays through ``jax.pure_callback``.
- ``refcfg.interop.diffusers``: a drop-in denoiser for diffusers scheduler loops (timesteps mapped
  through the scheduler's ``alphas_cumprod`` or sigmas).
- ``refcfg.interop.discrete``: ``AlphasCumprodModel``, the same from a raw ``alphas_cumprod`` for
  code that keeps its own schedule buffers (no scheduler object).
- ``refcfg.interop.kdiffusion``: the exact EDM denoiser D(x; sigma) for k-diffusion's samplers,
  ``CFGDenoiser`` (the usual CFG wrapper) and ``load_sampling`` (k-diffusion's sampling module
  without its training dependencies).
- ``refcfg.interop.dit``, ``refcfg.interop.ddpm_pytorch``, ``refcfg.interop.flow_matching``:
  stand-ins that put the exact model inside diffusers' ``DiTPipeline`` (``dit_pipeline``),
  denoising-diffusion-pytorch's ``GaussianDiffusion`` (``gaussian_diffusion``) and flow_matching's
  ``ODESolver`` (``ExactVelocity``); the audits (``refcfg audit``) run on them.

Each submodule imports its framework when it is imported; this package imports none. The
framework-free core is re-exported here: ``predict`` (refcfg's t), ``predict_signal_noise`` (a
library's x' = signal x0 + noise eps), ``edm_denoise``, ``signal_noise_from_alphas_cumprod``,
``time_from_signal_noise``, ``clamp_times``, ``as_shape``.

Image-shaped inputs: every adapter accepts (N, d) or (N, *shape) with prod(shape) = d and returns
the input's shape; ``shape=`` (e.g. a latent's (C, H, W)) declares one, checked against d.

Adaptive solvers: every adapter takes ``clamp=None`` (strict: a time outside [0, 1] raises) or a
tolerance tol in (0, 0.5]: times in [-tol, 0) and (1, 1 + tol] are evaluated at 0 and 1. How far
a solver steps past the end is measured in ``verification/solver_overshoot.py``: scipy's
``solve_ivp`` asked for an interval ending at 1 + 5e-4 needs ``clamp=1e-3``; torchdiffeq's and
flow_matching's dopri5 step up to 0.10 past 1 and need ``clamp=0.25``.
The core (``refcfg.GMMPath``, ``refcfg.sample``) stays strict.
"""

from ._core import (
    BACKENDS,
    OUTPUTS,
    PREDICTIONS,
    as_shape,
    clamp_times,
    edm_denoise,
    predict,
    predict_signal_noise,
    signal_noise_from_alphas_cumprod,
    time_from_signal_noise,
)

__all__ = [
    "PREDICTIONS",
    "OUTPUTS",
    "BACKENDS",
    "predict",
    "predict_signal_noise",
    "edm_denoise",
    "signal_noise_from_alphas_cumprod",
    "clamp_times",
    "time_from_signal_noise",
    "as_shape",
]
