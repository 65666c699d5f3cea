"""Shared glue of the library stand-ins (``refcfg.interop.dit``, ``ddpm_pytorch``): the exact model
of a discrete-time diffusion (``refcfg.interop.discrete.AlphasCumprodModel``) called as a library's
network, ``net(x, k, labels)``, with the library's own label for the unconditional model.

Labels equal to ``null_class`` become refcfg's NULL (the unconditional field); a batch whose rows
share one timestep is evaluated at that one time.
"""

from __future__ import annotations

import numpy as np
import torch

from .diffusers import as_numpy
from .discrete import AlphasCumprodModel

__all__ = ["DiscreteExact"]


class DiscreteExact(AlphasCumprodModel):
    """``AlphasCumprodModel`` whose labels equal to ``null_class`` (the library's unconditional
    label; None: only refcfg's NULL = -1) mean the unconditional model. ``shape`` is required."""

    def __init__(
        self,
        field,
        alphas_cumprod,
        prediction,
        shape,
        *,
        null_class=None,
        y=None,
        w=None,
        backend="auto",
    ):
        if shape is None:
            raise ValueError("shape must be given (the library's sample shape, e.g. (C, H, W))")
        super().__init__(field, alphas_cumprod, prediction, y=y, w=w, shape=shape, backend=backend)
        self.null_class = null_class

    def forward(self, x, timestep, class_labels=None, **unused):
        if (
            isinstance(timestep, torch.Tensor)
            and timestep.ndim == 1
            and timestep.shape[0] > 1
            and bool(torch.all(timestep == timestep[0]))
        ):
            timestep = timestep[:1]
        if class_labels is not None and self.null_class is not None:
            lab = np.asarray(as_numpy(class_labels, "class_labels")).reshape(-1)
            if lab.dtype.kind not in "iu":
                raise TypeError(f"class_labels must be integer labels, got dtype {lab.dtype}")
            class_labels = np.where(lab == self.null_class, -1, lab.astype(np.int64))
        return super().forward(x, timestep, class_labels)
