"""Shared glue of the library stand-ins (``refcfg.interop.dit``, ``ddpm_pytorch``): the exact model
of a discrete-time diffusion that keeps its own ``alphas_cumprod``, called on image-shaped tensors.

A library's network is called as ``net(x, k, labels)`` with x (N, *shape) at an integer (or, for
diffusers' Euler, fractional) training timestep k; its convention is
x' = sqrt(acp[k]) x0 + sqrt(1 - acp[k]) eps. :class:`DiscreteExact` flattens x to (N, d) with
d = prod(shape), maps k to refcfg's t through ``refcfg.interop.diffusers.signal_noise`` and
``time_from_signal_noise`` (the one mapping of timesteps the adapters share), evaluates the exact
prediction and returns it in x's shape, dtype and device. Labels equal to the library's null class
become refcfg's NULL (the unconditional field).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch

from .diffusers import ExactDiffusersModel

__all__ = ["DiscreteExact", "as_shape"]


def as_shape(shape, d) -> tuple:
    """``shape`` as a tuple of positive ints whose product is d (ValueError otherwise)."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}") from None
    if not shape or any(s < 1 for s in shape) or math.prod(shape) != d:
        raise ValueError(f"shape {shape} must be positive ints whose product is the problem's "
                         f"dimension d = {d}")
    return shape


class DiscreteExact(torch.nn.Module):
    """The exact ``output`` ("epsilon", "sample" or "v_prediction") of ``field`` at a discrete
    timestep of ``alphas_cumprod`` (module docstring). ``null_class``: the library's label of the
    unconditional model (None: only refcfg's NULL = -1)."""

    def __init__(self, field, alphas_cumprod, output, shape, *, null_class=None, w=None,
                 y=None, backend="auto"):
        super().__init__()
        acp = np.asarray(alphas_cumprod.detach().cpu() if isinstance(alphas_cumprod, torch.Tensor)
                         else alphas_cumprod, dtype=np.float64)
        if acp.ndim != 1 or acp.size < 2 or not np.all((acp > 0) & (acp <= 1)):
            raise ValueError(f"alphas_cumprod must be a 1-D array of values in (0, 1], got shape "
                             f"{acp.shape}")
        sched = SimpleNamespace(alphas_cumprod=acp, config=SimpleNamespace(prediction_type=output))
        self.exact = ExactDiffusersModel(field, sched, y=y, w=w, prediction=output,
                                         backend=backend)
        self.shape = as_shape(shape, self.exact.field.d)
        self.null_class = null_class

    @property
    def field(self):
        return self.exact.field

    def forward(self, x, timestep, labels=None):
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"x must be a torch.Tensor of shape (N, {', '.join(map(str, self.shape))}"
                             f"), got {tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        n = x.shape[0]
        k = timestep
        if isinstance(k, torch.Tensor) and k.ndim == 1 and k.shape[0] == n and n > 0 \
                and bool(torch.all(k == k[0])):
            k = k[:1]  # one timestep for the batch: one time in the exact evaluation
        if labels is not None:
            lab = (labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor)
                   else np.asarray(labels)).astype(np.int64).reshape(-1)
            if lab.shape[0] != n:
                raise ValueError(f"labels has {lab.shape[0]} entries, x has {n} rows")
            if self.null_class is not None:
                lab = np.where(lab == self.null_class, -1, lab)
            labels = lab
        out = self.exact(x.reshape(n, -1), k, class_labels=labels).sample
        return out.reshape(x.shape)
