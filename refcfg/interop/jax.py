"""The exact field for JAX: ``exact_fn(field, prediction)(x, t)`` on JAX arrays, eager or under
``jax.jit``, through ``jax.pure_callback`` (the evaluation runs on the host: refcfg's CPU
kernels). Computation is float64; float32 inputs get float32 results. Gradients
are not supported (``jax.grad`` through a pure_callback raises). jax is imported when this module is
imported."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._core import (
    PREDICTIONS,
    as_shape,
    check_prediction,
    clamp_times,
    flat_shape,
    predict,
    resolve_field,
)

__all__ = ["exact_fn", "PREDICTIONS"]


def exact_fn(
    field,
    prediction: str = "velocity",
    *,
    y=None,
    w=None,
    clamp=None,
    backend: str = "auto",
    shape=None,
):
    """A function f(x, t) -> the exact ``prediction`` of the field (``refcfg.interop.predict``),
    for a JAX array x, (N, d) or (N, *shape) with prod(shape) = d (the result has x's shape), and
    t a float or (N,) array of refcfg times; jit-compatible. field, y, w, clamp, backend, shape: as
    for ``refcfg.interop.torch.ExactModule``."""
    check_prediction(prediction)
    fld = resolve_field(field, y, w)
    shp = as_shape(shape, fld.d)
    clamp_times(0.0, clamp)
    d = fld.d

    def host(x, t):
        xx = np.asarray(x, dtype=np.float64)
        out = predict(
            fld,
            xx.reshape(xx.shape[0], d),
            np.asarray(t, dtype=np.float64),
            prediction,
            backend=backend,
            clamp=clamp,
        )
        return out.reshape(xx.shape).astype(np.asarray(x).dtype)

    def f(x, t):
        x = jnp.asarray(x)
        flat_shape(x.shape, d, shp)
        if x.dtype not in (jnp.float32, jnp.float64):
            raise TypeError(f"x must be float32 or float64, got {x.dtype}")
        t = jnp.asarray(t, dtype=x.dtype)
        return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x, t)

    return f
