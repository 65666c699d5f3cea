"""A learned CFG model for prompts that are vectors: u_theta(x | y) with y in R^m and a learned null
embedding (``refcfg.vector_prompts``).

The network is ``refcfg.learn.mlp.MLP`` on the features [x, y_in, t-features], where y_in is the
prompt y or, for the null prompt, a learned vector e in R^m (the "empty token" of the notes'
section 5.2; with a vector prompt it cannot be a one-hot slot). Training is the CFG loss (notes
eqs. 63-64 / 66 with the draws of eq. 67): draw (z, y) from the joint law, replace y by e with
probability eta, t ~ U[0, 1], eps ~ N(0, I), x = alpha_t z + beta_t eps, and minimise
E |u_theta(x | y_in) - (dalpha_t z + dbeta_t eps)|^2 over theta and e. Its minimiser is u_t(x | y) for
prompts and u_t(x) for the null embedding, so one network gives both halves of CFG.

e is trained with the network: its gradient is the sum over the null rows of dL/d(y_in), which
``MLP.backward(..., input_grad=True)`` returns (the first d + m feature columns). Adam (``mlp.Adam``)
runs on one flat vector [theta, e]; the learning-rate schedule is the one of ``train_loop``.
"""

from __future__ import annotations

import time

import numpy as np

from .._validation import as_generator, as_points, as_positive_int, as_times, as_weight
from ..combine import combine
from .mlp import MLP, Adam, MLPConfig, time_features

__all__ = ["VectorPromptModel", "train_vector_cfg", "LearnedVectorCFG"]


class VectorPromptModel:
    """u_theta(x | y_in) for x in R^d, y in R^m, with the learned null embedding ``null``."""

    def __init__(
        self, d: int, m: int, *, width: int = 64, depth: int = 3, n_freqs: int = 6, seed: int = 0
    ):
        self.d, self.m = as_positive_int(d, "d"), as_positive_int(m, "m")
        # the MLP's "x" input is [x, y_in]; it has no label slots
        self.net = MLP(
            MLPConfig(
                d_in=self.d + self.m,
                d_out=self.d,
                n_classes=0,
                width=width,
                depth=depth,
                n_freqs=n_freqs,
                seed=seed,
            )
        )
        self.null = np.zeros(self.m)

    def __repr__(self) -> str:
        c = self.net.config
        return f"VectorPromptModel(d={self.d}, m={self.m}, width={c.width}, depth={c.depth})"

    def _features(self, x, t, y_in):
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (x.shape[0],))
        return np.concatenate([x, y_in, time_features(t, self.net.config.n_freqs)], axis=1)

    def prompt_input(self, y, n: int) -> np.ndarray:
        """y_in (n, m): the prompts, or the null embedding where y is None / a row is NaN."""
        if y is None:
            return np.broadcast_to(self.null, (n, self.m)).copy()
        Y = np.asarray(y, dtype=np.float64)
        Y = np.broadcast_to(Y, (n, self.m)).copy() if Y.ndim == 1 else Y.copy()
        if Y.shape != (n, self.m):
            raise ValueError(
                f"y has shape {np.shape(y)} but ({self.m},) or ({n}, {self.m}) is required"
            )
        null = np.isnan(Y).any(axis=1)
        Y[null] = self.null
        return Y

    def velocity(self, x, t, y=None) -> np.ndarray:
        """u_theta_t(x | y), (N, d); y None (or NaN rows): the null embedding."""
        x = as_points(x, self.d, allow_empty=True)
        t = as_times(t, x.shape[0])
        return self.net.forward_features(self._features(x, t, self.prompt_input(y, x.shape[0])))

    def loss_and_grads(self, x, t, target, y_in, null_rows):
        """Mean |u_theta - target|^2; fills ``net.grad`` and returns (loss, dL/d null (m,))."""
        out, cache = self.net.forward_features(self._features(x, t, y_in), cache=True)
        diff = out - target
        n = diff.shape[0]
        loss = float(np.einsum("ij,ij->", diff, diff)) / n
        g_in = self.net.backward(cache, diff * (2.0 / n), input_grad=True)
        return loss, g_in[null_rows, self.d :].sum(axis=0)


def train_vector_cfg(
    family,
    *,
    schedule="linear",
    eta: float = 0.1,
    steps: int = 3000,
    batch: int = 512,
    lr: float = 2e-3,
    width: int = 64,
    depth: int = 3,
    n_freqs: int = 6,
    seed=0,
    lr_final: float = 0.02,
    warmup: int = 200,
    progress=True,
):
    """Train a ``VectorPromptModel`` on the joint law of a ``VectorPromptFamily`` with label
    dropout eta (module docstring). Returns (model, losses (steps,), seconds)."""
    from .._progress import progress_bar
    from ..schedules import schedule as make_schedule
    from ..vector_prompts import VectorPromptFamily
    from .train import _check_eta, _lr_at

    if not isinstance(family, VectorPromptFamily):
        raise TypeError(f"family must be a VectorPromptFamily, got {type(family).__name__}")
    eta = _check_eta(eta)
    steps, batch = as_positive_int(steps, "steps"), as_positive_int(batch, "batch")
    sched = make_schedule(schedule)
    rng = as_generator(seed)
    model = VectorPromptModel(
        family.d, family.m, width=width, depth=depth, n_freqs=n_freqs, seed=int(rng.integers(2**31))
    )
    P = model.net.n_params
    flat = np.concatenate([model.net.theta, model.null])
    grad = np.empty_like(flat)
    opt = Adam(flat, lr=float(lr))
    losses = np.empty(steps)
    bar = progress_bar(steps, "vector cfg", progress, leave=False)
    start = time.perf_counter()
    for k in range(steps):
        opt.lr = _lr_at(k, steps, float(lr), lr_final, warmup)
        z, y = family.sample(batch, rng)
        drop = rng.random(batch) < eta  # P(null) = eta
        t = rng.random(batch)
        eps = rng.standard_normal(z.shape)
        v = sched.values(t)
        x = v.alpha[:, None] * z + v.beta[:, None] * eps
        target = v.dalpha[:, None] * z + v.dbeta[:, None] * eps  # u_t(x | z), eq. 20
        y_in = np.where(drop[:, None], model.null, y)
        losses[k], g_null = model.loss_and_grads(x, t, target, y_in, drop)
        grad[:P], grad[P:] = model.net.grad, g_null
        opt.step(grad)
        model.net.theta[...] = flat[:P]
        model.null[...] = flat[P:]
        if bar is not None and (k % 50 == 0 or k + 1 == steps):
            bar.update(k + 1 - bar.n)
    if bar is not None:
        bar.close()
    return model, losses, time.perf_counter() - start


class LearnedVectorCFG:
    """w u_theta(x | y) + (1 - w) u_theta(x | null) of a ``VectorPromptModel`` (eq. 65) as a field
    (NumPy backend; no exact lowering)."""

    def __init__(self, model: VectorPromptModel, y, w, schedule="linear"):
        from ..schedules import schedule as make_schedule

        if not isinstance(model, VectorPromptModel):
            raise TypeError(f"model must be a VectorPromptModel, got {type(model).__name__}")
        self.model, self.y, self.w = model, np.asarray(y, dtype=np.float64), w
        self.d, self.schedule = model.d, make_schedule(schedule)

    def velocity(self, x, t):
        x = as_points(x, self.d)
        w = np.reshape(as_weight(self.w, x.shape[0]), (-1, 1))
        return combine(self.model.velocity(x, t, self.y), self.model.velocity(x, t, None), w)
