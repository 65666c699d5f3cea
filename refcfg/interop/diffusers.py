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

Gradients with respect to the sample: the closed-form vector-Jacobian product
(``refcfg.interop._jacobian.signal_noise_vjp``; lowerable fields), as ``refcfg.interop.torch``.

Samples are (N, d) tensors or image-shaped (N, *shape) with prod(shape) = d; any scheduler that
acts elementwise accepts them. DDIMScheduler and
DDPMScheduler clip x0 to [-1, 1] by default (``clip_sample=True``): build them with
``clip_sample=False`` for refcfg's problems.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ._core import (
    OUTPUTS,
    _backend,
    as_shape,
    check_prediction,
    flat_shape,
    predict_signal_noise,
    resolve_field,
    signal_noise_from_alphas_cumprod,
)
from .torch import as_numpy, attach_vjp

__all__ = ["ExactDiffusersModel", "signal_noise", "as_numpy", "labels_field", "with_backward"]


def labels_field(field, w, class_labels):
    """``field`` with per-call ``class_labels`` (None: unchanged) and the model's CFG weight w."""
    if class_labels is None:
        return field
    labels = np.asarray(as_numpy(class_labels, "class_labels"))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"class_labels must be integer labels, got dtype {labels.dtype}")
    return resolve_field(field, labels.astype(np.int64), w)


def with_backward(x, res, field, xd, signal, noise, output):
    """``res`` with the closed-form backward with respect to x (``attach_vjp``)."""
    from ._jacobian import signal_noise_vjp

    n = xd.shape[0]

    def vjp(g):
        return signal_noise_vjp(
            field, xd.reshape(n, -1), signal, noise, output, g.reshape(n, -1)
        ).reshape(xd.shape)

    return attach_vjp(x, res, vjp)


def signal_noise(scheduler, timestep) -> tuple[np.ndarray, np.ndarray]:
    """(signal, noise) arrays of the scheduler's convention x' = signal x0 + noise eps at
    ``timestep`` (a number or an array; module docstring)."""
    k = as_numpy(timestep, "timestep")
    acp = getattr(scheduler, "alphas_cumprod", None)
    if acp is not None:
        return signal_noise_from_alphas_cumprod(as_numpy(acp, "alphas_cumprod"), k)
    if type(scheduler).__name__.startswith("FlowMatch"):
        k = np.atleast_1d(np.asarray(k, dtype=np.float64))
        if not np.all(np.isfinite(k)):
            raise ValueError("timestep must be finite")
        n_train = float(scheduler.config.num_train_timesteps)
        sigma = k / n_train
        if np.any(sigma < 0) or np.any(sigma > 1):
            raise ValueError(
                f"timestep must lie in [0, {n_train:g}] for {type(scheduler).__name__}"
                f", got {k[(sigma < 0) | (sigma > 1)][0]!r}"
            )
        return 1.0 - sigma, sigma
    raise TypeError(
        f"scheduler {type(scheduler).__name__} has neither alphas_cumprod nor a flow-"
        f"matching sigma convention; refcfg.interop.diffusers cannot map its timesteps"
    )


class ExactDiffusersModel(torch.nn.Module):
    """The exact denoiser for a diffusers scheduler loop (module docstring).

    field: a GMMPath, a problem name or a field object; y, w: default labels / CFG weight (w needs
    a class; per call, ``class_labels`` replaces y). scheduler: the diffusers scheduler whose loop
    calls the model (read for its timestep convention and ``config.prediction_type``).
    prediction: override of the output ("epsilon", "sample", "v_prediction", "flow"). shape: the
    latent shape (e.g. (C, H, W), prod = d) accepted besides (N, d); samples (N, *s) with
    prod(s) = d are accepted and the output has the sample's shape. backend: see
    ``refcfg.interop.predict``."""

    def __init__(
        self, field, scheduler, *, y=None, w=None, prediction=None, backend="auto", shape=None
    ):
        super().__init__()
        self.field = resolve_field(field, y, w)
        self.shape = as_shape(shape, self.field.d)
        self.w = w
        self.scheduler = scheduler
        signal_noise(scheduler, 0)  # TypeError now for a scheduler it cannot map
        if prediction is None:
            prediction = (
                "flow"
                if type(scheduler).__name__.startswith("FlowMatch")
                else scheduler.config.prediction_type
            )
        self.prediction = check_prediction(prediction, OUTPUTS)
        _backend(self.field, backend)  # validates backend now
        self.backend = backend

    def signal_noise(self, timestep):
        """(signal, noise) at ``timestep`` (:func:`signal_noise`); override to test a mapping."""
        return signal_noise(self.scheduler, timestep)

    def forward(self, sample, timestep, class_labels=None, return_dict=True, **unused):
        if not isinstance(sample, torch.Tensor):
            raise TypeError(f"sample must be a torch.Tensor, got {type(sample).__name__}")
        if sample.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"sample must be float32 or float64, got {sample.dtype}")
        flat_shape(sample.shape, self.field.d, self.shape, "sample")
        a, s = self.signal_noise(timestep)
        field = labels_field(self.field, self.w, class_labels)
        xd = sample.detach().to("cpu", torch.float64).numpy()
        out = predict_signal_noise(
            field, xd, a, s, self.prediction, backend=self.backend, shape=self.shape
        )
        res = torch.from_numpy(np.ascontiguousarray(out)).to(
            device=sample.device, dtype=sample.dtype
        )
        res = with_backward(sample, res, field, xd, a, s, self.prediction)
        return SimpleNamespace(sample=res) if return_dict else (res,)
