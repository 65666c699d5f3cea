"""The exact model inside diffusers' ``DiTPipeline``: a transformer stand-in and a VAE stand-in.

``DiTPipeline.__call__`` reads ``transformer.config.in_channels / sample_size / out_channels``,
``transformer.dtype``, calls ``transformer(latents, timestep=k, class_labels=labels).sample`` with
the null class 1000 for the unconditional half of its batch, combines the two halves itself
(``guidance_scale``), steps its scheduler, and decodes ``vae.decode(latents / scaling_factor)``.

- :class:`ExactDiT`: the exact eps prediction (DiT's ``prediction_type`` "epsilon") of a refcfg
  field for latents of shape (C, H, H) with C H H = d, at the training timestep k of DiT's schedule
  (linear betas 1e-4 to 0.02 over 1000 steps, computed by diffusers' own ``DDPMScheduler``; pass
  ``alphas_cumprod`` for another). Class 1000 is the unconditional field (refcfg's NULL).
- :class:`LatentRecorder`: ``vae.decode`` that returns its input and keeps the final latents
  (``recorder.latents``, (N, C, H, H), the pipeline's latents before decoding).
- :func:`dit_pipeline`: the real ``DiTPipeline`` with both stand-ins and a scheduler.

A swap in three lines::

    from diffusers import DDIMScheduler
    from refcfg.interop.dit import dit_pipeline
    pipe = dit_pipeline("two-class-2d", DDIMScheduler(clip_sample=False), shape=(2, 1, 1))
    pipe(class_labels=[0] * 64, guidance_scale=3.0, output_type="pt")
    x = pipe.vae.latents.reshape(64, -1)   # samples of the guided pipeline, (N, d)

The pipeline runs in the transformer's dtype (float64 by default).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ._core import as_shape, resolve_field
from ._standins import DiscreteExact

__all__ = ["ExactDiT", "LatentRecorder", "dit_pipeline", "DIT_NULL_CLASS", "dit_alphas_cumprod"]

DIT_NULL_CLASS = 1000
"""The label DiTPipeline passes for the unconditional half of its batch."""


def dit_alphas_cumprod():
    """DiT's training schedule: ``DDPMScheduler(beta_schedule="linear")``'s alphas_cumprod (betas
    linear from 1e-4 to 0.02, 1000 steps; diffusers' float32 values)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        beta_schedule="linear", beta_start=1e-4, beta_end=0.02, num_train_timesteps=1000
    ).alphas_cumprod


class ExactDiT(torch.nn.Module):
    """The exact eps model with the attributes DiTPipeline reads (module docstring).

    field: a GMMPath, a problem name or a field object (its labels are the classes 0..C-1);
    shape: the latent shape (C, H, H), C H H = d; alphas_cumprod: the training schedule (default
    :func:`dit_alphas_cumprod`); dtype: the pipeline's dtype (torch.float64 or torch.float32);
    record: keep every call's (timestep, input) in ``self.calls``."""

    def __init__(
        self,
        field,
        shape,
        *,
        alphas_cumprod=None,
        dtype=torch.float64,
        record=False,
        backend="auto",
    ):
        super().__init__()
        field = resolve_field(field)
        shape = as_shape(shape, field.d)
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ValueError(f"shape must be (C, H, H) (DiT's latents are square), got {shape}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        acp = dit_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
        self.exact = DiscreteExact(
            field, acp, "epsilon", shape, null_class=DIT_NULL_CLASS, backend=backend
        )
        self.config = SimpleNamespace(
            in_channels=shape[0],
            out_channels=shape[0],
            sample_size=shape[1],
            num_embeds_ada_norm=DIT_NULL_CLASS,
        )
        self._dtype = dtype
        self.record = record
        self.calls = []

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return torch.device("cpu")

    def forward(self, hidden_states, timestep=None, class_labels=None, return_dict=True, **unused):
        if self.record:
            self.calls.append(
                (
                    timestep.detach().clone() if isinstance(timestep, torch.Tensor) else timestep,
                    hidden_states.detach().clone(),
                )
            )
        out = self.exact(hidden_states, timestep, class_labels=class_labels)
        return SimpleNamespace(sample=out) if return_dict else (out,)


class LatentRecorder(torch.nn.Module):
    """The VAE stand-in: ``decode(z).sample`` is z, and ``latents`` keeps z * scaling_factor (the
    pipeline's final latents)."""

    def __init__(self, scaling_factor: float = 1.0):
        super().__init__()
        self.config = SimpleNamespace(scaling_factor=float(scaling_factor))
        self.latents = None

    @property
    def device(self):
        return torch.device("cpu")

    def decode(self, z, return_dict=True, **unused):
        self.latents = (z * self.config.scaling_factor).detach().clone()
        return SimpleNamespace(sample=z) if return_dict else (z,)


def dit_pipeline(
    field, scheduler=None, *, shape, dtype=torch.float64, record=False, backend="auto"
):
    """diffusers' ``DiTPipeline`` with :class:`ExactDiT` (for ``field``, latents of ``shape``) and
    :class:`LatentRecorder`. scheduler: any scheduler DiTPipeline accepts (default
    ``DDIMScheduler(clip_sample=False)``: DDIMScheduler's own default clips x0 to [-1, 1])."""
    from diffusers import DDIMScheduler, DiTPipeline

    if scheduler is None:
        scheduler = DDIMScheduler(clip_sample=False)
    transformer = ExactDiT(field, shape, dtype=dtype, record=record, backend=backend)
    pipe = DiTPipeline(transformer=transformer, vae=LatentRecorder(), scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe
