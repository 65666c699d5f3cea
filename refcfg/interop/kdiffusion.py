"""The exact EDM denoiser D(x; sigma) for k-diffusion's samplers (and any EDM-convention loop), the
usual CFG wrapper, and an import of ``k_diffusion.sampling`` without its training dependencies.

k-diffusion (and EDM, Karras et al. 2022) write x = x0 + sigma eps and call a denoiser
``model(x, sigma, **extra_args)`` returning D(x; sigma) = E[x0 | x], with sigma a tensor of shape
(N,). ``EDMDenoiser(field, y=, w=)`` is that function for a refcfg field
(``refcfg.interop._core.edm_denoise``: sigma mapped to refcfg's t by matching signal-to-noise
ratios; sigma = 0 gives D(x; 0) = x). With w the field is the exact CFG field
w u(x|y) + (1 - w) u(x|null), eq. 65 (its x0 prediction is the same combination). x may be
(N, d) or image-shaped (N, *shape) with prod(shape) = d.

:class:`CFGDenoiser` is the CFG wrapper k-diffusion users write around a conditional denoiser: one
batched call on [x, x] with the null and the given labels, combined as
uncond + (cond - uncond) * cond_scale (cond_scale is w).

:func:`load_sampling` returns ``k_diffusion.sampling``. The package's ``__init__`` imports its
training stack (wandb, clip, kornia, torchvision ...); when the plain import fails, the file
``k_diffusion/sampling.py`` is loaded by itself with ``k_diffusion/utils.py`` (from which it uses
only ``append_dims``), whose absent imports (torchvision, PIL, safetensors) are stubbed during that
load only (the stubs are removed from ``sys.modules`` afterwards). Its own needs: torch, scipy,
torchdiffeq, torchsde, tqdm.

A swap in three lines::

    from refcfg.interop.kdiffusion import CFGDenoiser, EDMDenoiser, load_sampling
    K = load_sampling()
    x = K.sample_heun(CFGDenoiser(EDMDenoiser("two-class-2d"), y=0, cond_scale=3.0),
                      80.0 * torch.randn(500, 2, dtype=torch.float64),
                      K.get_sigmas_karras(32, 0.002, 80.0, device="cpu").double())
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch

from .._validation import NULL
from ._core import as_shape, edm_denoise, resolve_field
from .diffusers import as_numpy, labels_field

__all__ = ["EDMDenoiser", "CFGDenoiser", "load_sampling"]


class EDMDenoiser(torch.nn.Module):
    """D(x; sigma) = E[x0 | x = x0 + sigma eps] for a refcfg field (module docstring).

    field: a GMMPath, a problem name or a field object; y, w: labels and CFG weight (w needs y);
    shape: a sample shape accepted besides (d,). ``forward(x, sigma, class_labels=None)`` with x
    (N, d) or (N, *shape), sigma a float or (N,) tensor >= 0; class_labels (per call, NULL = -1
    for the unconditional model) replace y. backend: see ``refcfg.interop.predict``."""

    def __init__(self, field, *, y=None, w=None, shape=None, backend="auto"):
        super().__init__()
        self.field = resolve_field(field, y, w)
        self.w = w
        self.shape = as_shape(shape, self.field.d)
        self.backend = backend

    def forward(self, x, sigma, class_labels=None, **unused):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        sig = np.atleast_1d(np.asarray(as_numpy(sigma, "sigma"), dtype=np.float64))
        if sig.ndim != 1 or sig.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"sigma must be a float or shape ({x.shape[0]},), got shape {sig.shape}"
            )
        if not np.all(np.isfinite(sig)) or np.any(sig < 0):
            raise ValueError(f"sigma must be finite and >= 0, got {sig[~(sig >= 0)][:1]}")
        if sig.shape[0] > 1 and np.all(sig == sig[0]):
            sig = sig[:1]  # one noise level for the batch: one time in the exact evaluation
        field = labels_field(self.field, self.w, class_labels)
        x0 = edm_denoise(
            field,
            x.detach().to("cpu", torch.float64).numpy(),
            sig,
            backend=self.backend,
            shape=self.shape,
        )
        return torch.from_numpy(np.ascontiguousarray(x0)).to(device=x.device, dtype=x.dtype)


class CFGDenoiser(torch.nn.Module):
    """The usual CFG wrapper: ``D(x; sigma) = uncond + (cond - uncond) * cond_scale`` from one call
    of ``inner(cat([x, x]), cat([sigma, sigma]), class_labels=cat([NULL...], [y...]))`` (module
    docstring). cond_scale is w (1: the conditional denoiser). y: an int or (N,) labels (per call,
    ``class_labels`` replace it)."""

    def __init__(self, inner, *, y, cond_scale: float):
        super().__init__()
        self.inner = inner
        self.y = y
        self.cond_scale = float(cond_scale)

    def forward(self, x, sigma, class_labels=None, **unused):
        n = x.shape[0]
        y = self.y if class_labels is None else class_labels
        y = torch.as_tensor(as_numpy(y, "y"), dtype=torch.long).reshape(-1)
        if y.shape[0] == 1:
            y = y.expand(n)
        labels = torch.cat([torch.full((n,), NULL, dtype=torch.long), y])
        sig = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1)
        sig = sig.expand(n) if sig.shape[0] == 1 else sig
        uncond, cond = self.inner(
            torch.cat([x, x]), torch.cat([sig, sig]), class_labels=labels
        ).chunk(2)
        return uncond + (cond - uncond) * self.cond_scale


def _stub(name):
    """A placeholder module: any attribute is another placeholder (for ``from m import a``)."""
    mod = types.ModuleType(name)
    mod.__path__ = []

    def _getattr(attr, _name=name):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _stub(f"{_name}.{attr}")

    mod.__getattr__ = _getattr
    return mod


_STUBBED = (
    "torchvision",
    "torchvision.transforms",
    "torchvision.transforms.functional",
    "PIL",
    "PIL.Image",
    "safetensors",
    "safetensors.torch",
)
_PACKAGE = "refcfg_k_diffusion"


@functools.lru_cache(maxsize=1)
def load_sampling():
    """``k_diffusion.sampling`` (module docstring). ImportError naming the install when
    k-diffusion or one of the sampling module's own dependencies is absent."""
    try:
        return importlib.import_module("k_diffusion.sampling")
    except ImportError:
        pass
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "k-diffusion is not installed (pip install --no-deps k-diffusion torchsde torchdiffeq)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    pkg = types.ModuleType(_PACKAGE)
    pkg.__path__ = [str(root)]
    absent = {
        top
        for top in {n.split(".")[0] for n in _STUBBED}
        if top not in sys.modules and importlib.util.find_spec(top) is None
    }
    added = [n for n in _STUBBED if n.split(".")[0] in absent]
    for name in added:
        sys.modules[name] = _stub(name)
    sys.modules[_PACKAGE] = pkg
    try:
        for sub in ("utils", "sampling"):
            mspec = importlib.util.spec_from_file_location(f"{_PACKAGE}.{sub}", root / f"{sub}.py")
            module = importlib.util.module_from_spec(mspec)
            sys.modules[mspec.name] = module
            mspec.loader.exec_module(module)
            setattr(pkg, sub, module)
    except BaseException:
        for sub in ("utils", "sampling"):
            sys.modules.pop(f"{_PACKAGE}.{sub}", None)
        sys.modules.pop(_PACKAGE, None)
        raise
    finally:
        for name in added:
            sys.modules.pop(name, None)
    return pkg.sampling
