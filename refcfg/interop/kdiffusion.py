"""The exact EDM denoiser D(x; sigma) for k-diffusion's samplers (and any EDM-convention loop).

k-diffusion (and EDM, Karras et al. 2022) write x = x0 + sigma eps and call a denoiser
``model(x, sigma, **extra_args)`` returning D(x; sigma) = E[x0 | x], with sigma a tensor of shape
(N,). ``EDMDenoiser(field, y=, w=)`` is that function for a refcfg field: sigma is mapped to
refcfg's t by matching signal-to-noise ratios (``refcfg.interop.time_from_signal_noise`` with
signal 1 and noise sigma; for the linear schedule t = 1 / (1 + sigma) and x_t = x / (1 + sigma)),
and D is the exact x0 prediction there (sigma = 0 gives D(x; 0) = x). With w the field is the
exact CFG field w u(x|y) + (1 - w) u(x|null), eq. 65 (its x0 prediction is the same combination).

Then ``k_diffusion.sampling.sample_euler(model, x, sigmas)``, ``sample_heun``, ``sample_dpmpp_2m``
... run on it unchanged (x starts as sigmas[0] * N(0, I)). Gradients are not supported.
"""

from __future__ import annotations

import numpy as np
import torch

from ._core import predict, resolve_field, time_from_signal_noise

__all__ = ["EDMDenoiser"]


class EDMDenoiser(torch.nn.Module):
    """D(x; sigma) = E[x0 | x = x0 + sigma eps] for a refcfg field (module docstring).

    field: a GMMPath, a problem name or a field object; y, w: labels and CFG weight (w needs y);
    ``forward(x, sigma, class_labels=None)`` with x (N, d), sigma a float or (N,) tensor >= 0;
    class_labels (per call) replace y. backend: see ``refcfg.interop.predict``."""

    def __init__(self, field, *, y=None, w=None, backend="auto"):
        super().__init__()
        self.field = resolve_field(field, y, w)
        self.w = w
        self.backend = backend

    def forward(self, x, sigma, class_labels=None, **unused):
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.field.d:
            raise ValueError(f"x must be an (N, {self.field.d}) torch.Tensor, got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        sig = np.atleast_1d(np.asarray(sigma.detach().cpu() if isinstance(sigma, torch.Tensor)
                                       else sigma, dtype=np.float64))
        if sig.ndim != 1 or sig.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"sigma must be a float or shape ({x.shape[0]},), got shape "
                             f"{sig.shape}")
        if not np.all(np.isfinite(sig)) or np.any(sig < 0):
            raise ValueError("sigma must be finite and >= 0")
        t, c = time_from_signal_noise(self.field.schedule, np.ones_like(sig), sig)
        field = self.field
        if class_labels is not None:
            labels = (class_labels.detach().cpu().numpy() if isinstance(class_labels, torch.Tensor)
                      else np.asarray(class_labels))
            field = resolve_field(self.field, labels.astype(np.int64), self.w)
        xr = x.detach().to("cpu", torch.float64).numpy() * c[:, None]
        x0 = predict(field, xr, float(t[0]) if t.shape[0] == 1 else t, "x0", backend=self.backend)
        return torch.from_numpy(x0).to(device=x.device, dtype=x.dtype)
