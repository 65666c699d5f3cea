"""The exact model as a drop-in denoiser for diffusers scheduler loops.

``ExactDiffusersModel(field, scheduler)`` is called as diffusers calls a UNet,
``model(sample, timestep, class_labels=None).sample``, and returns the exact prediction that the
scheduler's ``config.prediction_type`` asks for. The scheduler's timestep is mapped to refcfg's t
by matching signal-to-noise ratios (``refcfg.interop.time_from_signal_noise``):

- schedulers with ``alphas_cumprod`` (DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler,
  EulerDiscreteScheduler ...): x' = sqrt(acp) x0 + sqrt(1 - acp) eps with acp = alphas_cumprod[k]
  at an integer timestep k; at a fractional timestep (Euler discrete with "linspace" spacing) the
  noise level sigma = sqrt((1 - acp) / acp) is interpolated linearly in k, as EulerDiscreteScheduler
  does, and signal = 1 / sqrt(1 + sigma^2), noise = sigma signal. EulerDiscreteScheduler's
  ``scale_model_input`` has already divided the sample by sqrt(1 + sigma^2), so the model sees x'.
- ``FlowMatchEulerDiscreteScheduler``: x' = (1 - sigma) x0 + sigma eps with sigma = timestep /
  num_train_timesteps; the model output is the flow eps - x0 (prediction "flow").

Outputs (x0 = E[data | x'], eps = E[noise | x'], both exact): "epsilon" -> eps, "sample" -> x0,
"v_prediction" -> signal eps - noise x0, "flow" -> eps - x0.

Guidance: pass ``w`` (and per-call ``class_labels``) for the exact CFG field inside the model
(diffusers' ``guidance_scale`` s is w), or leave w None and call the model twice, with the class
labels and with NULL (-1) labels (the unconditional model), and combine in your own CFG code.
``class_labels=None`` keeps the labels the model was built with.

Samples are (N, d) tensors; any scheduler that acts elementwise accepts them. DDIMScheduler and
DDPMScheduler clip x0 to [-1, 1] by default (``clip_sample=True``): build them with
``clip_sample=False`` for refcfg's problems. Gradients are not supported (``refcfg.interop.torch``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ._core import clamp_times, predict_many, resolve_field, time_from_signal_noise

__all__ = ["ExactDiffusersModel", "signal_noise"]

_OUTPUTS = ("epsilon", "sample", "v_prediction", "flow")


def signal_noise(scheduler, timestep) -> tuple[np.ndarray, np.ndarray]:
    """(signal, noise) arrays of the scheduler's convention x' = signal x0 + noise eps at
    ``timestep`` (a number or an array; module docstring)."""
    k = np.atleast_1d(np.asarray(timestep.detach().cpu() if isinstance(timestep, torch.Tensor)
                                 else timestep, dtype=np.float64))
    if not np.all(np.isfinite(k)):
        raise ValueError("timestep must be finite")
    acp = getattr(scheduler, "alphas_cumprod", None)
    if acp is not None:
        acp = np.asarray(acp.detach().cpu() if isinstance(acp, torch.Tensor) else acp,
                         dtype=np.float64)
        T = acp.shape[0]
        if np.any(k < 0) or np.any(k > T - 1):
            raise ValueError(f"timestep must lie in [0, {T - 1}] (the scheduler's alphas_cumprod), "
                             f"got {k[(k < 0) | (k > T - 1)][0]!r}")
        whole = k == np.round(k)
        a = np.empty_like(k)
        s = np.empty_like(k)
        ki = np.round(k[whole]).astype(np.int64)
        a[whole], s[whole] = np.sqrt(acp[ki]), np.sqrt(1.0 - acp[ki])
        if not np.all(whole):
            sig = np.interp(k[~whole], np.arange(T), np.sqrt((1.0 - acp) / acp))
            a[~whole] = 1.0 / np.sqrt(1.0 + sig * sig)
            s[~whole] = sig * a[~whole]
        return a, s
    if type(scheduler).__name__.startswith("FlowMatch"):
        n_train = float(scheduler.config.num_train_timesteps)
        sigma = k / n_train
        if np.any(sigma < 0) or np.any(sigma > 1):
            raise ValueError(f"timestep must lie in [0, {n_train:g}] for {type(scheduler).__name__}"
                             f", got {k[(sigma < 0) | (sigma > 1)][0]!r}")
        return 1.0 - sigma, sigma
    raise TypeError(f"scheduler {type(scheduler).__name__} has neither alphas_cumprod nor a flow-"
                    f"matching sigma convention; refcfg.interop.diffusers cannot map its timesteps")


class ExactDiffusersModel(torch.nn.Module):
    """The exact denoiser for a diffusers scheduler loop (module docstring).

    field: a GMMPath, a problem name or a field object; y, w: default labels / CFG weight (w needs
    a class; per call, ``class_labels`` replaces y). scheduler: the diffusers scheduler whose loop
    calls the model (read for its timestep convention and ``config.prediction_type``).
    prediction: override of the output ("epsilon", "sample", "v_prediction", "flow"). backend: see
    ``refcfg.interop.predict``."""

    def __init__(self, field, scheduler, *, y=None, w=None, prediction=None, backend="auto"):
        super().__init__()
        self.field = resolve_field(field, y, w)
        self.w = w
        self.scheduler = scheduler
        signal_noise(scheduler, 0)  # TypeError now for a scheduler it cannot map
        if prediction is None:
            prediction = ("flow" if type(scheduler).__name__.startswith("FlowMatch")
                          else scheduler.config.prediction_type)
        if prediction not in _OUTPUTS:
            raise ValueError(f"prediction must be one of {_OUTPUTS}, got {prediction!r}")
        self.prediction = prediction
        self.backend = backend

    def signal_noise(self, timestep):
        """(signal, noise) at ``timestep`` (:func:`signal_noise`); override to test a mapping."""
        return signal_noise(self.scheduler, timestep)

    def forward(self, sample, timestep, class_labels=None, return_dict=True, **unused):
        if not isinstance(sample, torch.Tensor) or sample.ndim != 2:
            raise ValueError(f"sample must be an (N, d) torch.Tensor, got "
                             f"{getattr(sample, 'shape', type(sample).__name__)}")
        if sample.shape[1] != self.field.d:
            raise ValueError(f"sample has shape {tuple(sample.shape)} but (N, {self.field.d}) is "
                             f"required")
        n = sample.shape[0]
        a, s = self.signal_noise(timestep)
        if a.shape[0] not in (1, n):
            raise ValueError(f"timestep has {a.shape[0]} entries, sample has {n} rows")
        t, c = time_from_signal_noise(self.field.schedule, a, s)
        t = clamp_times(t, None)
        field = self.field
        if class_labels is not None:
            labels = (class_labels.detach().cpu().numpy() if isinstance(class_labels, torch.Tensor)
                      else np.asarray(class_labels))
            field = resolve_field(self.field, labels.astype(np.int64), self.w)
        xd = sample.detach().to("cpu", torch.float64).numpy()
        xr = xd * c[:, None]
        tt = float(t[0]) if t.shape[0] == 1 else t
        both = predict_many(field, xr, tt, ("eps", "x0"), backend=self.backend)
        eps, x0 = both["eps"], both["x0"]
        if self.prediction == "epsilon":
            out = eps
        elif self.prediction == "sample":
            out = x0
        elif self.prediction == "v_prediction":
            out = a[:, None] * eps - s[:, None] * x0
        else:
            out = eps - x0
        res = torch.from_numpy(np.ascontiguousarray(out)).to(device=sample.device,
                                                              dtype=sample.dtype)
        return SimpleNamespace(sample=res) if return_dict else (res,)
