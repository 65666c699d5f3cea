"""Exact refcfg fields inside other frameworks' pipelines.

- ``refcfg.interop.torch``: ``ExactModule``, an ``nn.Module`` giving the exact velocity, eps, x0,
  score or v prediction of a field for CPU and CUDA tensors.
- ``refcfg.interop.jax``: the same for JAX arrays through ``jax.pure_callback``.
- ``refcfg.interop.diffusers``: a drop-in denoiser for diffusers scheduler loops (timesteps mapped
  through the scheduler's ``alphas_cumprod`` or sigmas).
- ``refcfg.interop.discrete``: ``AlphasCumprodModel``, the same from a raw ``alphas_cumprod`` for
  code that keeps its own schedule buffers (no scheduler object).
- ``refcfg.interop.kdiffusion``: the exact EDM denoiser D(x; sigma) for k-diffusion's samplers.

Each submodule imports its framework when it is imported; this package imports none. The
framework-free core is re-exported here: ``predict`` (refcfg's t), ``predict_signal_noise`` (a
library's x' = signal x0 + noise eps), ``edm_denoise``, ``signal_noise_from_alphas_cumprod``,
``time_from_signal_noise``, ``clamp_times``, ``as_shape``.

Image-shaped inputs: every adapter accepts (N, d) or (N, *shape) with prod(shape) = d and returns
the input's shape; ``shape=`` (e.g. a latent's (C, H, W)) declares one, checked against d.

Adaptive solvers: every adapter takes ``clamp=None`` (strict: a time outside [0, 1] raises) or a
small tolerance, e.g. ``clamp=1e-3``: times in [-tol, 0) and (1, 1 + tol] are evaluated at 0 and 1.
The core (``refcfg.GMMPath``, ``refcfg.sample``) stays strict.
"""

from ._core import (BACKENDS, OUTPUTS, PREDICTIONS, as_shape, clamp_times, edm_denoise, predict,
                    predict_signal_noise, signal_noise_from_alphas_cumprod, time_from_signal_noise)

__all__ = ["PREDICTIONS", "OUTPUTS", "BACKENDS", "predict", "predict_signal_noise", "edm_denoise",
           "signal_noise_from_alphas_cumprod", "clamp_times", "time_from_signal_noise", "as_shape"]
