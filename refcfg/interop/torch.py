"""The exact field as a PyTorch module: ``ExactModule(field, prediction)(x, t) -> tensor``.

Tensors keep their device and dtype: CPU tensors are evaluated by the Numba CPU kernels
(``refcfg.sampling.cpu``; the NumPy closed forms for fields that do not lower), CUDA tensors by
the numba CUDA kernels (``refcfg.sampling.cuda.evaluate``). Computation is always float64; a
float32 input gets the float64 result rounded to float32.

Gradients: the output has a backward with respect to x, the vector-Jacobian product from the
closed-form Jacobian of the mixture field (``refcfg.interop._jacobian``; exact, CFG and other
lowerable fields; float64 on the host, rounded to x's dtype). Not with respect to t (backward
refuses), not through fields that do not lower (backward raises TypeError), and once only: the
backward is not itself differentiable, so a second derivative (``create_graph=True`` followed by a
backward through the gradient) raises instead of silently dropping the Hessian term. CUDA
tensors are copied to the host and back around the CUDA kernels (one transfer each way), because
``refcfg.sampling.cuda.evaluate`` takes host arrays; its kernels give velocity and score, and x0,
eps and v follow on the host through ``refcfg.convert``.

torch is imported when this module is imported; ``import refcfg`` never imports it.
"""

from __future__ import annotations

import numpy as np
import torch

from ._core import (
    PREDICTIONS,
    _backend,
    as_shape,
    check_prediction,
    clamp_times,
    flat_shape,
    predict,
    resolve_field,
)

__all__ = ["ExactModule", "exact_module", "attach_vjp", "as_numpy", "PREDICTIONS"]


def _first_order_only(gx):
    """The gradient gx, made to raise if differentiated again. The vector-Jacobian product
    depends on x through the saved input, which autograd does not see, so with create_graph=True
    the gradient would have no graph and a second backward would silently drop the Hessian term
    (``once_differentiable`` does not help: it checks only the incoming gradient). In that mode
    (grad enabled during the backward) gx gets a node that raises on a second backward."""
    if not torch.is_grad_enabled():
        return gx
    err = torch._C._functions.DelayedError(
        b"refcfg.interop.torch: second derivatives are not available (the closed-form backward "
        b"is first-order only)",
        1,
    )
    gx = gx.detach().requires_grad_(True)
    return err(gx)


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
            raise RuntimeError(
                "refcfg.interop.torch: the gradient with respect to t is not "
                "available (only with respect to x); detach t"
            )
        x_np = x.detach().to("cpu", torch.float64).numpy().reshape(ctx.n, ctx.d)
        g_np = grad.detach().to("cpu", torch.float64).numpy().reshape(ctx.n, ctx.d)
        t = clamp_times(ctx.t_np, ctx.module.clamp)
        t = float(t) if t.ndim == 0 else t
        vjp = prediction_vjp(ctx.field, x_np, t, g_np, ctx.module.prediction)
        gx = torch.from_numpy(vjp.reshape(tuple(x.shape))).to(device=x.device, dtype=x.dtype)
        return _first_order_only(gx), None, None, None, None, None, None


class _ClosedFormFn(torch.autograd.Function):
    """``value`` (computed from x outside autograd) with the backward g -> vjp(g)."""

    @staticmethod
    def forward(ctx, x, value, vjp):
        ctx.vjp, ctx.shape = vjp, tuple(x.shape)
        ctx.device, ctx.dtype = x.device, x.dtype
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        g = grad.detach().to("cpu", torch.float64).numpy().reshape(ctx.shape)
        gx = np.ascontiguousarray(ctx.vjp(g)).reshape(ctx.shape)
        gx = torch.from_numpy(gx).to(device=ctx.device, dtype=ctx.dtype)
        return _first_order_only(gx), None, None


def attach_vjp(x, value, vjp):
    """``value``, a tensor computed from the tensor x outside autograd, given the backward
    g -> vjp(g) (g and the result: float64 NumPy arrays of x's shape) when autograd records x;
    ``value`` itself otherwise. For adapters whose output is a closed form of x (the diffusers,
    discrete and EDM adapters, with the vector-Jacobian products of ``refcfg.interop._jacobian``)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _ClosedFormFn.apply(x, value, vjp)
    return value


def _cuda_predict(field, x_np, t, prediction, clamp):
    """The prediction through the CUDA kernels: velocity and score on the device, the others from
    them on the host (``refcfg.interop._core.from_velocity_score``, as the CPU backend)."""
    from ..sampling import cuda
    from ._core import _predict_flat, _rows, from_velocity_score

    cuda.require()  # CudaUnavailableError (a RuntimeError) saying why, before any work
    t = clamp_times(t, clamp)
    t = float(t) if t.ndim == 0 else t
    return from_velocity_score(
        field.schedule,
        x_np,
        t,
        (prediction,),
        lambda: cuda.evaluate(field, x_np, t, "velocity"),
        lambda: cuda.evaluate(field, x_np, t, "score"),
        exact=lambda rows: _predict_flat(
            field, x_np[rows], _rows(t, rows), (prediction,), "numpy", None
        ),
    )[prediction]


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

    def __init__(
        self,
        field,
        prediction: str = "velocity",
        *,
        y=None,
        w=None,
        clamp=None,
        backend: str = "auto",
        shape=None,
    ):
        super().__init__()
        check_prediction(prediction)
        self.field = resolve_field(field, y, w)
        self.shape = as_shape(shape, self.field.d)
        self.prediction = prediction
        self.clamp = clamp
        clamp_times(0.0, clamp)  # validates clamp now
        _backend(self.field, backend)  # validates backend now
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
            raise TypeError(
                f"x is on device {x.device}, but only cpu and cuda tensors are supported"
            )
        field = (
            self.field
            if (y is None and w is None)
            else resolve_field(self.field, as_numpy(y), as_numpy(w))
        )
        t_np = as_numpy(t) if isinstance(t, torch.Tensor) else t
        clamp_times(t_np, self.clamp)  # checks t before any work
        if torch.is_grad_enabled() and (
            x.requires_grad or (isinstance(t, torch.Tensor) and t.requires_grad)
        ):
            tt = t if isinstance(t, torch.Tensor) else None
            return _ExactFn.apply(x, tt, self, field, t_np, n, d)
        return self._evaluate(field, x, t_np, n, d)

    def _evaluate(self, field, x, t_np, n, d):
        """The prediction as a tensor of x's shape, device and dtype (no autograd)."""
        x_np = x.detach().to("cpu", torch.float64).numpy().reshape(n, d)
        if x.device.type == "cuda":
            out = _cuda_predict(field, x_np, t_np, self.prediction, self.clamp)
        else:
            out = predict(
                field, x_np, t_np, self.prediction, backend=self.backend, clamp=self.clamp
            )
        return torch.from_numpy(np.ascontiguousarray(out).reshape(tuple(x.shape))).to(
            device=x.device, dtype=x.dtype
        )


def as_numpy(v, name=None):
    """A tensor as a NumPy array (detached, copied to the host); anything else unchanged. ``name``
    is accepted for callers that pass the argument's name and is not used."""
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return v


def exact_module(field, prediction: str = "velocity", **kwargs) -> ExactModule:
    """``ExactModule(field, prediction, **kwargs)``."""
    return ExactModule(field, prediction, **kwargs)
