"""The exact field as a PyTorch module: ``ExactModule(field, prediction)(x, t) -> tensor``.

Tensors keep their device and dtype: CPU tensors are evaluated by the Numba CPU kernels
(``refcfg.sampling.cpu``; the NumPy closed forms for fields that do not lower), CUDA tensors by
the numba CUDA kernels (``refcfg.sampling.cuda.evaluate``). Computation is always float64; a
float32 input gets the float64 result rounded to float32.

Gradients: the output has a backward with respect to x, the vector-Jacobian product from the
closed-form Jacobian of the mixture field (``refcfg.interop._jacobian``; exact, CFG and other
lowerable fields; float64 on the host, rounded to x's dtype). Not with respect to t (backward
refuses), and not through fields that do not lower (backward raises TypeError). CUDA
tensors are copied to the host and back around the CUDA kernels (one transfer each way), because
``refcfg.sampling.cuda.evaluate`` takes host arrays; its kernels give velocity and score, and x0,
eps and v follow on the host through ``refcfg.convert``.

torch is imported when this module is imported; ``import refcfg`` never imports it.
"""

from __future__ import annotations

import numpy as np
import torch

from ._core import (PREDICTIONS, as_shape, check_prediction, clamp_times, flat_shape, predict,
                    resolve_field)

__all__ = ["ExactModule", "exact_module", "PREDICTIONS"]


class _ExactFn(torch.autograd.Function):
    """The exact prediction with its closed-form backward: the vector-Jacobian product
    g^T dp/dx of ``refcfg.interop._jacobian`` (float64 on the host, rounded to x's dtype). A
    gradient with respect to t is not available (backward refuses when t requires one)."""

    @staticmethod
    def forward(ctx, x, t_tensor, module, field, t_np, n, d):
        ctx.module, ctx.field, ctx.t_np, ctx.n, ctx.d = module, field, t_np, n, d
        ctx.save_for_backward(x)
        return module._evaluate(field, x, t_np, n, d)

    @staticmethod
    def backward(ctx, grad):
        from ._jacobian import prediction_vjp
        (x,) = ctx.saved_tensors
        if ctx.needs_input_grad[1]:
            raise RuntimeError("refcfg.interop.torch: the gradient with respect to t is not "
                               "available (only with respect to x); detach t")
        x_np = x.detach().to("cpu", torch.float64).numpy().reshape(ctx.n, ctx.d)
        g_np = grad.detach().to("cpu", torch.float64).numpy().reshape(ctx.n, ctx.d)
        t = clamp_times(ctx.t_np, ctx.module.clamp)
        t = float(t) if t.ndim == 0 else t
        vjp = prediction_vjp(ctx.field, x_np, t, g_np, ctx.module.prediction)
        gx = torch.from_numpy(vjp.reshape(tuple(x.shape))).to(device=x.device, dtype=x.dtype)
        return gx, None, None, None, None, None, None


def _cuda_predict(field, x_np, t, prediction, clamp):
    """The prediction through the CUDA kernels (velocity/score on the device, x0/eps/v from them
    on the host through refcfg.convert)."""
    from .. import convert
    from ..sampling import cuda

    cuda.require()  # CudaUnavailableError (a RuntimeError) saying why, before any work
    t = clamp_times(t, clamp)
    t = float(t) if t.ndim == 0 else t
    if prediction in ("velocity", "score"):
        return cuda.evaluate(field, x_np, t, prediction)
    u = cuda.evaluate(field, x_np, t, "velocity")
    s = cuda.evaluate(field, x_np, t, "score")
    sched = field.schedule
    x0 = convert.velocity_to_x0(u, x_np, t, sched)
    be = np.broadcast_to(np.asarray(sched.beta(t), dtype=np.float64), np.shape(t))
    eps = np.where(np.reshape(be, (-1, 1)) > 0, -np.reshape(be, (-1, 1)) * s,
                   convert.velocity_to_eps(u, x_np, t, sched) if np.any(be == 0) else 0.0)
    if prediction == "x0":
        return x0
    if prediction == "eps":
        return eps
    al = np.reshape(sched.alpha(t), (-1, 1))
    return al * eps - np.reshape(be, (-1, 1)) * x0


class ExactModule(torch.nn.Module):
    """An ``nn.Module`` whose ``forward(x, t, y=None, w=None)`` is the exact ``prediction`` of a
    refcfg field (one of "velocity", "eps", "x0", "score", "v"; see ``refcfg.interop``).

    field: a GMMPath, a problem name or a field object (``path.cfg(y, w)``, ``path.field(y)``, a
    guidance rule...). y / w (here or per call): labels and CFG weight (w = 1 no guidance;
    diffusers' ``guidance_scale`` s is w). x: (N, d) tensor on CPU or CUDA, float32 or float64, or
    image-shaped (N, *shape) with prod(shape) = d (the output has x's shape); ``shape`` (e.g. a
    latent's (C, H, W)) declares the one accepted besides (N, d), checked against d here.
    t: a float, a 0-d tensor or an (N,) tensor of refcfg times in [0, 1]. clamp: None (strict: t
    outside [0, 1] raises) or a tolerance for adaptive solvers that overshoot t = 1
    (``refcfg.interop``). backend ("auto", "cpu", "numpy") applies to CPU tensors."""

    def __init__(self, field, prediction: str = "velocity", *, y=None, w=None, clamp=None,
                 backend: str = "auto", shape=None):
        super().__init__()
        check_prediction(prediction)
        self.field = resolve_field(field, y, w)
        self.shape = as_shape(shape, self.field.d)
        self.prediction = prediction
        self.clamp = clamp
        clamp_times(0.0, clamp)  # validates clamp now
        self.backend = backend

    def extra_repr(self) -> str:
        return f"field={self.field!r}, prediction={self.prediction!r}, clamp={self.clamp!r}"

    def forward(self, x, t, y=None, w=None):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x must be float32 or float64, got {x.dtype}")
        n, d = flat_shape(x.shape, self.field.d, self.shape)
        if x.device.type not in ("cpu", "cuda"):
            raise TypeError(f"x is on device {x.device}, but only cpu and cuda tensors are "
                            f"supported")
        field = (self.field if (y is None and w is None)
                 else resolve_field(self.field, _np(y), _np(w)))
        t_np = _np(t) if isinstance(t, torch.Tensor) else t
        clamp_times(t_np, self.clamp)  # checks t before any work
        if torch.is_grad_enabled() and (x.requires_grad or
                                        (isinstance(t, torch.Tensor) and t.requires_grad)):
            tt = t if isinstance(t, torch.Tensor) else None
            return _ExactFn.apply(x, tt, self, field, t_np, n, d)
        return self._evaluate(field, x, t_np, n, d)

    def _evaluate(self, field, x, t_np, n, d):
        """The prediction as a tensor of x's shape, device and dtype (no autograd)."""
        x_np = x.detach().to("cpu", torch.float64).numpy().reshape(n, d)
        if x.device.type == "cuda":
            out = _cuda_predict(field, x_np, t_np, self.prediction, self.clamp)
        else:
            out = predict(field, x_np, t_np, self.prediction, backend=self.backend,
                          clamp=self.clamp)
        return torch.from_numpy(np.ascontiguousarray(out).reshape(tuple(x.shape))).to(
            device=x.device, dtype=x.dtype)


def _np(v):
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return v


def exact_module(field, prediction: str = "velocity", **kwargs) -> ExactModule:
    """``ExactModule(field, prediction, **kwargs)``."""
    return ExactModule(field, prediction, **kwargs)
