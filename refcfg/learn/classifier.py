"""A learned noisy classifier p_t(y | x) for classifier guidance (notes arXiv 2506.02070 v3, eqs. 59-62).

An :class:`~refcfg.learn.mlp.MLP` on (x, t) (no label input) outputs logits f_theta(x, t) (N, C);
p_t(y | x) = softmax(f)_y. Training minimises the cross-entropy -log p_t(y | x_t) over (z, y) from the
labeled data law, t ~ U[0, 1], x_t = alpha_t z + beta_t eps. Classifier guidance needs
grad_x log p_t(y | x), computed here by backpropagation through the network:

    d log softmax(f)_y / d f = onehot(y) - softmax(f),    then back through the MLP to x.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_generator
from .mlp import MLP, MLPConfig
from .train import DEFAULTS, TrainResult, _pos_int, resolve_problem, train_loop

__all__ = ["NoisyClassifier", "train_classifier", "log_softmax"]


def log_softmax(f: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax by log-sum-exp (stable for any finite logits)."""
    m = f.max(axis=1, keepdims=True)
    shifted = f - m
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class NoisyClassifier:
    """Learned p_t(y | x): wraps an MLP with n_classes = 0 and d_out = C (logits)."""

    def __init__(self, model: MLP):
        if not isinstance(model, MLP):
            raise TypeError(f"model must be an MLP, got {type(model).__name__}")
        if model.config.n_classes != 0:
            raise ValueError("model must take no label input (n_classes=0), got n_classes="
                             f"{model.config.n_classes}")
        if model.config.d_out < 2:
            raise ValueError(f"model must output >= 2 logits, got d_out={model.config.d_out}")
        self.model = model

    @property
    def n_classes(self) -> int:
        return self.model.config.d_out

    @property
    def d(self) -> int:
        return self.model.config.d_in

    def logits(self, x, t) -> np.ndarray:
        """f_theta(x, t) (N, C)."""
        return self.model.forward(x, t)

    def log_probs(self, x, t) -> np.ndarray:
        """log p_t(y | x) for every class (N, C)."""
        return log_softmax(self.logits(x, t))

    def _labels(self, y, n: int) -> np.ndarray:
        arr = np.asarray(y)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"y must be an int label or an int array, got {y!r}")
        if not (arr.ndim == 0 or arr.shape == (n,)):
            raise ValueError(f"y has shape {arr.shape} but x implies an int or shape ({n},)")
        arr = np.broadcast_to(arr.astype(np.int64), (n,))
        if np.any((arr < 0) | (arr >= self.n_classes)):
            raise ValueError(f"y must be in 0..{self.n_classes - 1} (no null label for a classifier), "
                             f"got {int(arr[(arr < 0) | (arr >= self.n_classes)][0])}")
        return arr

    def grad_log_prob(self, x, t, y) -> np.ndarray:
        """grad_x log p_t(y | x) (N, d) by backpropagation (the classifier-guidance term, eq. 62)."""
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0] if x.ndim == 2 else -1
        f, cache = self.model.forward(x, t, cache=True)
        y = self._labels(y, n)
        # d log p_y / d f = onehot(y) - softmax(f)
        g = -np.exp(log_softmax(f))
        g[np.arange(n), y] += 1.0
        return self.model.backward(cache, g, input_grad=True).astype(np.float64, copy=False)

    def save(self, path) -> str:
        return self.model.save(path)

    @classmethod
    def load(cls, path) -> "NoisyClassifier":
        return cls(MLP.load(path))


def train_classifier(problem="two-class-2d", *, schedule=None, steps=None, batch=None, lr=None,
                     width=None, depth=None, n_freqs=None, dtype="float64", seed=0, progress=True,
                     lr_final=None, warmup=None, eval_fn=None, eval_every=0,
                     time_limit=None) -> TrainResult:
    """Train a noisy classifier p_t(y | x) by cross-entropy on (x_t, y), t ~ U[0, 1]
    (notes section 5.1, eqs. 59-62). Returns a TrainResult whose ``model`` is the MLP; wrap it with
    :class:`NoisyClassifier` (``result.classifier`` is set for convenience)."""
    mixture, sched, name = resolve_problem(problem, schedule)
    if mixture.n_classes < 2:
        raise ValueError(f"problem must have >= 2 classes for a classifier, got {mixture.n_classes}")
    s = dict(DEFAULTS)
    for key, value in dict(steps=steps, batch=batch, lr=lr, width=width, depth=depth,
                           n_freqs=n_freqs, lr_final=lr_final, warmup=warmup).items():
        if value is not None:
            s[key] = value
    s.pop("eta")
    batch_n = _pos_int(s["batch"], "batch")
    rng = as_generator(seed)
    config = MLPConfig(d_in=mixture.d, d_out=mixture.n_classes, n_classes=0, width=s["width"],
                       depth=s["depth"], n_freqs=s["n_freqs"], dtype=dtype,
                       seed=int(rng.integers(2**31)))
    model = MLP(config, dict(kind="classifier", problem=name, schedule=sched.name,
                             schedule_params=dict(sched.params), n_classes=mixture.n_classes,
                             settings={k: s[k] for k in sorted(s)}))

    def loss_and_grad(m: MLP, r):
        z, y = mixture.sample(batch_n, seed=r)
        t = r.random(batch_n)
        eps = r.standard_normal(z.shape)
        v = sched.values(t)
        x = v.alpha[:, None] * z + v.beta[:, None] * eps
        f, cache = m.forward(x, t, cache=True)
        logp = log_softmax(f)
        idx = np.arange(batch_n)
        loss = -float(logp[idx, y].mean())
        g = np.exp(logp)            # d CE / d f = softmax(f) - onehot(y), averaged over the batch
        g[idx, y] -= 1.0
        g /= batch_n
        m.backward(cache, g)
        return loss

    result = train_loop(model, loss_and_grad, steps=s["steps"], lr=s["lr"], lr_final=s["lr_final"],
                        warmup=s["warmup"], seed=rng, progress=progress, desc="classifier",
                        eval_fn=eval_fn, eval_every=eval_every, time_limit=time_limit)
    result.settings = dict(s, problem=name, schedule=sched.name, dtype=dtype, seed=seed)
    model.meta["steps_done"] = int(result.losses.size)
    model.meta["train_seconds"] = result.seconds
    result.classifier = NoisyClassifier(model)
    return result

