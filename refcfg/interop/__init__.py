"""Exact refcfg fields inside other frameworks' pipelines.

- ``refcfg.interop.torch``: ``ExactModule``, an ``nn.Module`` giving the exact velocity, eps, x0,
  score or v prediction of a field for CPU and CUDA tensors (no gradients).
- ``refcfg.interop.jax``: the same for JAX arrays through ``jax.pure_callback``.
- ``refcfg.interop.diffusers``: a drop-in denoiser for diffusers scheduler loops (timesteps mapped
  through the scheduler's ``alphas_cumprod`` or sigmas).
- ``refcfg.interop.kdiffusion``: the exact EDM denoiser D(x; sigma) for k-diffusion's samplers.

Each submodule imports its framework when it is imported; this package imports none. The
framework-free core (``predict``, ``clamp_times``, ``time_from_signal_noise``) is re-exported here.

Adaptive solvers: every adapter takes ``clamp=None`` (strict: a time outside [0, 1] raises) or a
small tolerance, e.g. ``clamp=1e-3``: times in [-tol, 0) and (1, 1 + tol] are evaluated at 0 and 1.
The core (``refcfg.GMMPath``, ``refcfg.sample``) stays strict.
"""

from ._core import BACKENDS, PREDICTIONS, clamp_times, predict, time_from_signal_noise

__all__ = ["PREDICTIONS", "BACKENDS", "predict", "clamp_times", "time_from_signal_noise"]
