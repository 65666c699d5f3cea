"""The exact velocity as a model for flow_matching's ``ODESolver``.

flow_matching (``flow_matching.solver.ODESolver``) integrates ``velocity_model(x=x, t=t, **extras)``
from t = 0 (noise, N(0, I)) to t = 1 (data): refcfg's own time convention, so no map of times is
needed. :class:`ExactVelocity` is a ``flow_matching.utils.ModelWrapper`` whose forward is the
exact velocity of a refcfg field (conditional, unconditional, or the CFG field
w u(x|y) + (1 - w) u(x|null), eq. 65) for x of shape (N, *shape) with prod(shape) = d; t is the
solver's scalar (or (N,)) time tensor. Per call, ``y=`` (labels, NULL = -1) and ``w=`` extras
replace the model's own.

Gradients follow ``refcfg.interop.torch.ExactModule`` (the exact velocity's Jacobian where that
module provides a backward), which is what ``ODESolver.compute_likelihood`` differentiates.

Adaptive methods (dopri5 ...) evaluate stages slightly past t = 1: pass ``clamp`` (a tolerance,
``refcfg.interop.clamp_times``) to evaluate those at t = 1.

A swap in two lines::

    from flow_matching.solver import ODESolver
    from refcfg.interop.flow_matching import ExactVelocity
    x1 = ODESolver(ExactVelocity("two-class-2d", y=0, w=3.0)).sample(
        torch.randn(500, 2, dtype=torch.float64), step_size=0.01, method="midpoint",
        time_grid=torch.tensor([0.0, 1.0], dtype=torch.float64))
"""

from __future__ import annotations

import torch
from flow_matching.utils import ModelWrapper

from ._core import as_shape
from .torch import ExactModule

__all__ = ["ExactVelocity"]


class ExactVelocity(ModelWrapper):
    """flow_matching model wrapper around the exact velocity (module docstring).

    field: a GMMPath, a problem name or a field object; y, w: labels / CFG weight (w = 1 no
    guidance; the flow_matching examples' ``cfg_scale`` is w - 1); shape: the shape of one sample
    (default (d,)); clamp: None (strict) or the tolerance for adaptive solvers; backend: see
    ``refcfg.interop.predict``."""

    def __init__(self, field, *, y=None, w=None, shape=None, clamp=None, backend="auto"):
        module = ExactModule(field, "velocity", y=y, w=w, clamp=clamp, backend=backend)
        super().__init__(module)
        self.shape = as_shape((module.field.d,) if shape is None else shape, module.field.d)

    @property
    def field(self):
        return self.model.field

    def forward(self, x, t, y=None, w=None, **extras):
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"x must be a torch.Tensor of shape (N, {', '.join(map(str, self.shape))}"
                f"), got {tuple(getattr(x, 'shape', ())) or type(x).__name__}"
            )
        n = x.shape[0]
        if isinstance(t, torch.Tensor) and t.ndim == 0:
            t = float(t)
        if y is None and w is None:
            u = self.model(x.reshape(n, -1), t)
        else:
            u = self.model(x.reshape(n, -1), t, y=y, w=w)
        return u.reshape(x.shape)
