"""The exact model for discrete-time diffusion code that keeps its own schedule buffers.

``AlphasCumprodModel(field, alphas_cumprod, prediction)`` is an ``nn.Module`` called as such code
calls its network, ``model(x, timestep, class_labels=None)``, returning a tensor of x's shape: the
exact prediction in the library's convention x' = sqrt(acp) x0 + sqrt(1 - acp) eps with
acp = alphas_cumprod[timestep] (no diffusers scheduler object needed). The timestep is mapped to
refcfg's t by matching signal-to-noise ratios (``refcfg.interop.time_from_signal_noise``; a
fractional timestep interpolates sigma = sqrt((1 - acp) / acp), as diffusers' schedulers do), the
same map as ``refcfg.interop.diffusers``.

prediction: "epsilon" (alias "eps"), "sample" (alias "x0") or "v_prediction" (alias "v"):
eps, x0, or v = sqrt(acp) eps - sqrt(1 - acp) x0 (Salimans and Ho). Gradients with respect to x:
the closed-form vector-Jacobian product (``refcfg.interop._jacobian.signal_noise_vjp``), as in
``refcfg.interop.torch``. torch is imported with this module.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import _describe
from ._core import (
    _backend,
    as_shape,
    check_prediction,
    flat_shape,
    predict_signal_noise,
    resolve_field,
    signal_noise_from_alphas_cumprod,
)
from .diffusers import as_numpy, labels_field, with_backward

__all__ = ["AlphasCumprodModel", "DISCRETE_PREDICTIONS"]

DISCRETE_PREDICTIONS = ("epsilon", "sample", "v_prediction", "eps", "x0", "v")
_ALIAS = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}


class AlphasCumprodModel(torch.nn.Module):
    """The exact prediction of a refcfg field on a discrete-time schedule given by its
    ``alphas_cumprod`` (module docstring).

    field: a GMMPath, a problem name or a field object; alphas_cumprod: 1-D array or tensor of T
    entries in (0, 1] (timesteps 0 .. T - 1); prediction: see ``DISCRETE_PREDICTIONS``; y, w:
    default labels / CFG weight (exact CFG inside the model; per call ``class_labels`` replace y,
    and with w unset a call with NULL (-1) labels gives the unconditional model); shape: the latent
    shape (e.g. (C, H, W)) accepted besides (N, d). ``forward(x, timestep, class_labels=None)``:
    x float32/float64 (N, d) or (N, *shape); timestep a number, 0-d or (N,) tensor in [0, T - 1]."""

    def __init__(
        self,
        field,
        alphas_cumprod,
        prediction="epsilon",
        *,
        y=None,
        w=None,
        shape=None,
        backend="auto",
    ):
        super().__init__()
        self.field = resolve_field(field, y, w)
        self.shape = as_shape(shape, self.field.d)
        if isinstance(alphas_cumprod, (str, bytes)) or alphas_cumprod is None:
            raise TypeError(
                f"alphas_cumprod must be a 1-D array or tensor, got {_describe(alphas_cumprod)}"
            )
        acp = np.array(as_numpy(alphas_cumprod, "alphas_cumprod"), dtype=np.float64)
        signal_noise_from_alphas_cumprod(acp, 0)  # validates alphas_cumprod now
        self.alphas_cumprod = acp
        check_prediction(prediction, DISCRETE_PREDICTIONS)
        self.prediction = _ALIAS.get(prediction, prediction)
        self.w = w
        _backend(self.field, backend)  # validates backend now
        self.backend = backend

    def extra_repr(self) -> str:
        return (
            f"field={self.field!r}, T={self.alphas_cumprod.shape[0]}, "
            f"prediction={self.prediction!r}, shape={self.shape!r}"
        )

    def signal_noise(self, timestep):
        """(signal, noise) = (sqrt(acp), sqrt(1 - acp)) at ``timestep``."""
        return signal_noise_from_alphas_cumprod(self.alphas_cumprod, as_numpy(timestep, "timestep"))

    def forward(self, x, timestep, class_labels=None, **unused):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x must be float32 or float64, got {x.dtype}")
        flat_shape(x.shape, self.field.d, self.shape)
        a, s = self.signal_noise(timestep)
        field = labels_field(self.field, self.w, class_labels)
        xd = x.detach().to("cpu", torch.float64).numpy()
        out = predict_signal_noise(
            field, xd, a, s, self.prediction, backend=self.backend, shape=self.shape
        )
        res = torch.from_numpy(np.ascontiguousarray(out)).to(device=x.device, dtype=x.dtype)
        return with_backward(x, res, field, xd, a, s, self.prediction)
