"""The exact model inside denoising_diffusion_pytorch's classifier-free ``GaussianDiffusion``.

The library's package ``__init__`` imports training dependencies (accelerate, torchvision,
pytorch-fid, ema-pytorch); its classifier-free module needs only torch, einops and tqdm.
:func:`load_library` loads ``denoising_diffusion_pytorch/classifier_free_guidance.py`` by itself
(the package's ``__init__`` is not run), so ``pip install --no-deps denoising-diffusion-pytorch``
plus einops is enough.

:class:`ExactUnet` stands in for the library's ``Unet``: ``forward(x, time, classes,
cond_drop_prob=None, cond_keep_mask=None)`` with the library's null handling (``cond_drop_prob``
1 gives the unconditional model for every row, 0 the conditional one, in between a random mask as
the library draws it; ``cond_keep_mask`` overrides), and the output the diffusion's ``objective``
asks for ("pred_noise": eps, "pred_x0": x0, "pred_v": v = sqrt(acp) eps - sqrt(1 - acp) x0) at
the integer timestep of the diffusion's own ``alphas_cumprod``. Its ``forward_with_cond_scale`` is
the library's own ``Unet.forward_with_cond_scale``: the guidance that runs is the library's code.

A swap in two lines::

    from refcfg.interop.ddpm_pytorch import gaussian_diffusion
    diffusion = gaussian_diffusion("two-class-2d", shape=(2, 1, 1), objective="pred_v",
                                   sampling_timesteps=50)
    img = diffusion.sample(torch.zeros(64, dtype=torch.long), cond_scale=3.0)  # (64, 2, 1, 1)

``sample`` returns ``(x + 1) / 2`` of the model's samples x (the library's map from [-1, 1] to
[0, 1] images): ``2 * img - 1`` is in the exact model's coordinates.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path

import torch

from ._core import as_shape, resolve_field
from ._standins import DiscreteExact

__all__ = ["load_library", "ExactUnet", "gaussian_diffusion", "OBJECTIVES"]

OBJECTIVES = {"pred_noise": "epsilon", "pred_x0": "sample", "pred_v": "v_prediction"}
"""The library's objectives and the exact output each one asks for."""

_MODULE = "refcfg_ddpm_pytorch_classifier_free_guidance"


@functools.lru_cache(maxsize=1)
def load_library():
    """denoising_diffusion_pytorch's ``classifier_free_guidance`` module, loaded from its file
    without running the package's ``__init__`` (module docstring). ImportError naming the install
    when the package (or einops) is absent."""
    spec = importlib.util.find_spec("denoising_diffusion_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "denoising_diffusion_pytorch is not installed (pip install --no-deps "
            "denoising-diffusion-pytorch einops)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "classifier_free_guidance.py"
    if not path.is_file():
        raise ImportError(f"denoising_diffusion_pytorch has no {path.name} at {path.parent}")
    mspec = importlib.util.spec_from_file_location(_MODULE, path)
    module = importlib.util.module_from_spec(mspec)
    sys.modules[_MODULE] = module
    try:
        mspec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(_MODULE, None)
        raise
    return module


class ExactUnet(torch.nn.Module):
    """The exact stand-in for the library's ``Unet`` (module docstring).

    field: a GMMPath, a problem name or a field object; shape: (channels, size, size) with
    channels * size^2 = d; cond_drop_prob: the default of ``forward`` (the library's Unet default
    0.5). Call :meth:`attach` with the ``GaussianDiffusion`` built around it (or use
    :func:`gaussian_diffusion`) before sampling: it reads the objective and ``alphas_cumprod``."""

    def __init__(self, field, shape, *, cond_drop_prob: float = 0.5, backend="auto"):
        super().__init__()
        lib = load_library()
        self.field = resolve_field(field)
        self.shape = as_shape(shape, self.field.d)
        if len(self.shape) != 3 or self.shape[1] != self.shape[2]:
            raise ValueError(f"shape must be (channels, size, size), got {self.shape}")
        self.channels = self.out_dim = self.shape[0]
        self.random_or_learned_sinusoidal_cond = False
        self.self_condition = False
        self.cond_drop_prob = float(cond_drop_prob)
        self.backend = backend
        self.exact = None
        self._prob_mask_like = lib.prob_mask_like
        # the library's guidance code, bound to this module
        self.forward_with_cond_scale = types.MethodType(lib.Unet.forward_with_cond_scale, self)

    def attach(self, diffusion):
        """Read ``diffusion.objective`` and ``diffusion.alphas_cumprod`` (the library's float32
        buffer, used as the schedule of the exact model); returns self."""
        objective = getattr(diffusion, "objective", None)
        if objective not in OBJECTIVES:
            raise ValueError(
                f"diffusion.objective must be one of {tuple(OBJECTIVES)}, got {objective!r}"
            )
        self.exact = DiscreteExact(
            self.field,
            diffusion.alphas_cumprod,
            OBJECTIVES[objective],
            self.shape,
            backend=self.backend,
        )
        self.objective = objective
        return self

    def forward(self, x, time, classes, cond_drop_prob=None, cond_keep_mask=None):
        if self.exact is None:
            raise RuntimeError(
                "ExactUnet: call unet.attach(diffusion) first (or build with "
                "refcfg.interop.ddpm_pytorch.gaussian_diffusion)"
            )
        drop = self.cond_drop_prob if cond_drop_prob is None else float(cond_drop_prob)
        labels = classes.detach().cpu().to(torch.int64).reshape(-1)
        if drop > 0 or cond_keep_mask is not None:
            keep = (
                cond_keep_mask
                if cond_keep_mask is not None
                else self._prob_mask_like((x.shape[0],), 1 - drop, device=x.device)
            )
            labels = torch.where(keep.to("cpu", torch.bool), labels, torch.full_like(labels, -1))
        return self.exact(x, time, class_labels=labels)


def gaussian_diffusion(field, *, shape, cond_drop_prob: float = 0.5, backend="auto", **kwargs):
    """The library's classifier-free ``GaussianDiffusion`` around an :class:`ExactUnet` of
    ``field`` (image_size from ``shape``); kwargs go to ``GaussianDiffusion`` (objective,
    beta_schedule, timesteps, sampling_timesteps, ddim_sampling_eta, ...)."""
    lib = load_library()
    unet = ExactUnet(field, shape, cond_drop_prob=cond_drop_prob, backend=backend)
    diffusion = lib.GaussianDiffusion(unet, image_size=unet.shape[1], **kwargs)
    unet.attach(diffusion)
    return diffusion
