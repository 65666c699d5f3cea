"""A learned noisy classifier p_t(y | x) for classifier guidance (notes arXiv 2506.02070, eqs. 59-62).

An :class:`~refcfg.learn.mlp.MLP` on (x, t) (no label input) outputs f_theta(x, t) (N, C); the logits
are

    plain:          l = f_theta(x, t)
    alpha-scaled:   l = log p(y) + alpha_t f_theta(x, t)        (the default of ``train_classifier``)

and p_t(y | x) = softmax(l)_y. Training minimises the cross-entropy -log p_t(y | x_t) over (z, y) from
the labeled data law, t ~ U[0, 1], x_t = alpha_t z + beta_t eps. Classifier guidance needs
grad_x log p_t(y | x), computed by backpropagation through the network:

    d log softmax(l)_y / d l = onehot(y) - softmax(l),    then back through the MLP to x.

Why alpha-scaled: the guidance term a_t grad_x log p_t(y|x) (eq. 62) multiplies the gradient by
a_t = beta^2 dalpha / alpha - beta dbeta, which diverges like 1/alpha_t at t = 0; the exact gradient
vanishes like alpha_t there (p_0(y|x) = p(y)), but a plain network's gradient does not, so its errors
are amplified without bound. With l = log p(y) + alpha_t f the classifier is exact at alpha_t = 0 and

    a_t grad_x log p_t(y|x) = (alpha_t a_t) J_f^T (onehot(y) - softmax(l)),
    alpha_t a_t = beta^2 dalpha - alpha beta dbeta        (finite on [0, 1]),

so ``guidance_term`` needs no guard at t = 0. log p(y) is the label frequency of the data law, stored
in ``model.meta["log_prior"]``.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_generator
from .mlp import MLP, MLPConfig
from .train import DEFAULTS, TrainResult, _pos_int, require_training_memory, schedule_of, train_loop

__all__ = ["NoisyClassifier", "train_classifier", "log_softmax"]


def log_softmax(f: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax by log-sum-exp (stable for any finite logits)."""
    m = f.max(axis=1, keepdims=True)
    shifted = f - m
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class NoisyClassifier:
    """Learned p_t(y | x): wraps an MLP with n_classes = 0 and d_out = C.

    Plain or alpha-scaled logits according to ``model.meta["alpha_scaled"]`` (module docstring);
    an alpha-scaled classifier needs the schedule (from ``model.meta`` unless given).
    """

    def __init__(self, model: MLP, schedule=None):
        if not isinstance(model, MLP):
            raise TypeError(f"model must be an MLP, got {type(model).__name__}")
        if model.config.n_classes != 0:
            raise ValueError(
                "model must take no label input (n_classes=0), got n_classes="
                f"{model.config.n_classes}"
            )
        if model.config.d_out < 2:
            raise ValueError(f"model must output >= 2 logits, got d_out={model.config.d_out}")
        self.model = model
        self.alpha_scaled = bool(model.meta.get("alpha_scaled", False))
        self.schedule = None
        self.log_prior = None
        if self.alpha_scaled:
            self.schedule = schedule_of(model, schedule)
            lp = np.asarray(model.meta.get("log_prior", np.zeros(model.config.d_out)), dtype=float)
            if lp.shape != (model.config.d_out,):
                raise ValueError(
                    f"model.meta['log_prior'] has shape {lp.shape}, required "
                    f"({model.config.d_out},)"
                )
            self.log_prior = lp
        elif schedule is not None:
            self.schedule = schedule_of(model, schedule)

    @property
    def n_classes(self) -> int:
        return self.model.config.d_out

    @property
    def d(self) -> int:
        return self.model.config.d_in

    def _times(self, t, n):
        t = np.asarray(t, dtype=np.float64)
        return np.full(n, float(t)) if t.ndim == 0 else t

    def _forward(self, x, t, cache=False):
        """(logits (N, C), alpha (N, 1) or None, cache)."""
        x = np.asarray(x, dtype=np.float64)
        res = self.model.forward(x, t, cache=cache)
        f, c = res if cache else (res, None)
        f = np.asarray(f, dtype=np.float64)
        if not self.alpha_scaled:
            return f, None, c
        alpha = np.reshape(self.schedule.alpha(self._times(t, x.shape[0])), (-1, 1))
        return self.log_prior + alpha * f, alpha, c

    def logits(self, x, t) -> np.ndarray:
        """The logits l (N, C) of p_t(y | x) = softmax(l)."""
        return self._forward(x, t)[0]

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
            raise ValueError(
                f"y must be in 0..{self.n_classes - 1} (no null label for a classifier), "
                f"got {int(arr[(arr < 0) | (arr >= self.n_classes)][0])}"
            )
        return arr

    def _backprop(self, x, t, y):
        # J_f^T (onehot(y) - softmax(l)) (N, d) and alpha (N, 1) or None
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0] if x.ndim == 2 else -1
        logits, alpha, cache = self._forward(x, t, cache=True)
        y = self._labels(y, n)
        g = -np.exp(log_softmax(logits))  # d log p_y / d l = onehot(y) - softmax(l)
        g[np.arange(n), y] += 1.0
        gx = self.model.backward(cache, g, input_grad=True).astype(np.float64, copy=False)
        return gx, alpha

    def grad_log_prob(self, x, t, y) -> np.ndarray:
        """grad_x log p_t(y | x) (N, d) by backpropagation (eq. 61)."""
        gx, alpha = self._backprop(x, t, y)
        return gx if alpha is None else alpha * gx

    def guidance_term(self, x, t, y) -> np.ndarray:
        """a_t grad_x log p_t(y | x) (N, d), the classifier-guidance term of eq. 62 at w = 1.

        Alpha-scaled classifiers only: computed as (beta^2 dalpha - alpha beta dbeta) J^T (...),
        finite on all of [0, 1]. Raises ValueError for a plain classifier (use a t_guard instead)."""
        if not self.alpha_scaled:
            raise ValueError(
                "guidance_term needs an alpha-scaled classifier (train_classifier's "
                "default); this one is plain"
            )
        gx, _ = self._backprop(x, t, y)
        alpha_a = self.schedule.beta_D(self._times(t, gx.shape[0]))  # alpha_t a_t, finite on [0, 1]
        return np.reshape(alpha_a, (-1, 1)) * gx

    def save(self, path) -> str:
        return self.model.save(path)

    @classmethod
    def load(cls, path, schedule=None) -> NoisyClassifier:
        return cls(MLP.load(path), schedule)


def train_classifier(
    problem="two-class-2d",
    *,
    schedule=None,
    steps=None,
    batch=None,
    lr=None,
    width=None,
    depth=None,
    n_freqs=None,
    dtype="float64",
    seed=0,
    progress=True,
    lr_final=None,
    warmup=None,
    eval_fn=None,
    eval_every=0,
    time_limit=None,
    alpha_scaled: bool = True,
    blas_threads=None,
) -> TrainResult:
    """Train a noisy classifier p_t(y | x) by cross-entropy on (x_t, y), t ~ U[0, 1]
    (notes section 5.2, eqs. 59-62). ``alpha_scaled`` (default True): logits log p(y) + alpha_t f
    (module docstring), else plain logits f. ``blas_threads``: None (default) chooses the BLAS
    thread count by measurement, an int fixes it (see ``refcfg.learn.train.train_loop``). Returns a
    TrainResult whose ``model`` is the MLP and ``classifier`` the :class:`NoisyClassifier` around it."""
    from .._threads import check_blas_threads
    from ..problems import resolve

    check_blas_threads(blas_threads)
    resolved = resolve(problem, schedule)
    mixture, sched, name = resolved.mixture, resolved.schedule, resolved.name
    if mixture.n_classes < 2:
        raise ValueError(
            f"problem must have >= 2 classes for a classifier, got {mixture.n_classes}"
        )
    s = dict(DEFAULTS)
    for key, value in dict(
        steps=steps,
        batch=batch,
        lr=lr,
        width=width,
        depth=depth,
        n_freqs=n_freqs,
        lr_final=lr_final,
        warmup=warmup,
    ).items():
        if value is not None:
            s[key] = value
    s.pop("eta")
    batch_n = _pos_int(s["batch"], "batch")
    rng = as_generator(seed)
    config = MLPConfig(
        d_in=mixture.d,
        d_out=mixture.n_classes,
        n_classes=0,
        width=s["width"],
        depth=s["depth"],
        n_freqs=s["n_freqs"],
        dtype=dtype,
        seed=int(rng.integers(2**31)),
    )
    require_training_memory(config, batch_n)
    with np.errstate(divide="ignore"):
        log_prior = np.log(np.asarray(mixture.class_probs, dtype=np.float64))
    model = MLP(
        config,
        dict(
            kind="classifier",
            problem=name,
            schedule=sched.name,
            schedule_params=dict(sched.params),
            n_classes=mixture.n_classes,
            alpha_scaled=bool(alpha_scaled),
            log_prior=log_prior.tolist(),
            settings={k: s[k] for k in sorted(s)},
        ),
    )

    def loss_and_grad(m: MLP, r):
        z, y = mixture.sample(batch_n, seed=r)
        t = r.random(batch_n)
        eps = r.standard_normal(z.shape)
        v = sched.values(t)
        x = v.alpha[:, None] * z + v.beta[:, None] * eps
        f, cache = m.forward(x, t, cache=True)
        if alpha_scaled:
            logits = log_prior + v.alpha[:, None] * f  # l = log p(y) + alpha_t f
        else:
            logits = f
        logp = log_softmax(logits)
        idx = np.arange(batch_n)
        loss = -float(logp[idx, y].mean())
        g = np.exp(logp)  # d CE / d l = softmax(l) - onehot(y), averaged over the batch
        g[idx, y] -= 1.0
        g /= batch_n
        if alpha_scaled:
            g *= v.alpha[:, None]  # d l / d f = alpha_t
        m.backward(cache, g)
        return loss

    result = train_loop(
        model,
        loss_and_grad,
        steps=s["steps"],
        lr=s["lr"],
        lr_final=s["lr_final"],
        warmup=s["warmup"],
        seed=rng,
        progress=progress,
        desc="classifier",
        eval_fn=eval_fn,
        eval_every=eval_every,
        time_limit=time_limit,
        blas_threads=blas_threads,
    )
    result.settings = dict(s, problem=name, schedule=sched.name, dtype=dtype, seed=seed)
    model.meta["steps_done"] = int(result.losses.size)
    model.meta["train_seconds"] = result.seconds
    result.classifier = NoisyClassifier(model)
    return result
