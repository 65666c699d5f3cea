"""Flow-matching training of NumPy MLPs with classifier-free-guidance label dropout.

CFG training (notes arXiv 2506.02070, section 5.2, the loss of eq. 66 with the draws of eq. 67): draw (z, y) from the labeled data
law, replace y by the null label with probability eta, draw t ~ U[0, 1] and eps ~ N(0, I), set
x = alpha_t z + beta_t eps, and regress the network u_theta(x | y) on the conditional velocity

    u_t(x | z) = dalpha_t z + dbeta_t eps                                  (eq. 20 at x = alpha z + beta eps)

with the loss E |u_theta_t(x | y) - u_t(x | z)|^2 (eq. 66). Its minimiser is the marginal velocity
u_t(x | y) for labelled inputs and u_t(x) for the null label, so one network gives both halves of the
CFG field u~ = w u(x|y) + (1 - w) u(x|null) (eq. 65).

Errata: a version of the course labs inverted the dropout (kept the label with probability eta);
here ``eta`` is the probability of the NULL label, and a test checks the fraction of null labels.

``train_unconditional`` trains a plain (label-free) flow-matching model on the same data law.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from .._validation import NULL, as_generator
from .mlp import MLP, Adam, MLPConfig

__all__ = [
    "TrainResult",
    "schedule_of",
    "cfg_batch",
    "train_cfg",
    "train_unconditional",
    "train_loop",
    "DEFAULTS",
]

# Default settings of the CFG training on two-class-2d (see docs/learning.md for the curve they
# reach; verification/train_two_class.py checks the ~60 s / <= 5 % target).
DEFAULTS = dict(
    width=64,
    depth=3,
    n_freqs=6,
    batch=512,
    lr=2e-3,
    steps=10000,
    eta=0.1,
    t_sampling="uniform",
    lr_final=0.02,
    warmup=200,
)


def schedule_of(model: MLP, schedule=None):
    """The schedule a model was trained with (from ``model.meta``), or ``schedule`` if given."""
    from ..problems import resolve_schedule
    from ..schedules import schedule as make_schedule

    if schedule is not None:
        return resolve_schedule(schedule)
    name = model.meta.get("schedule")
    if not name or name == "custom":
        raise ValueError("schedule: the model does not record a named schedule; pass schedule=")
    return make_schedule(name, **model.meta.get("schedule_params", {}))


def _sample_times(n: int, rng: np.random.Generator, t_sampling: str) -> np.ndarray:
    if t_sampling == "uniform":
        return rng.random(n)  # t ~ U[0, 1) (eq. 67)
    raise ValueError(f"t_sampling must be 'uniform', got {t_sampling!r}")


def cfg_batch(
    mixture,
    schedule,
    n: int,
    seed=None,
    *,
    eta: float = 0.1,
    conditional: bool = True,
    t_sampling: str = "uniform",
):
    """One CFG training batch (the draws of eq. 67): returns a dict with
    z (n, d), y (n,) true labels, y_in (n,) labels fed to the network (NULL with probability eta;
    None for an unconditional model), t (n,), eps (n, d), x = alpha z + beta eps (n, d) and
    target = dalpha z + dbeta eps (n, d), the conditional velocity u_t(x | z)."""
    rng = as_generator(seed)
    eta = _check_eta(eta)
    z, y = mixture.sample(n, seed=rng)
    y = np.asarray(y, dtype=np.int64)
    if conditional:
        drop = rng.random(n) < eta  # P(null) = eta, not 1 - eta (the labs' inverted erratum)
        y_in = np.where(drop, NULL, y)
    else:
        y_in = None
    t = _sample_times(n, rng, t_sampling)
    eps = rng.standard_normal(z.shape)
    v = schedule.values(t)
    x = v.alpha[:, None] * z + v.beta[:, None] * eps  # x_t = alpha_t z + beta_t eps
    target = v.dalpha[:, None] * z + v.dbeta[:, None] * eps  # u_t(x | z) (eq. 20)
    return dict(z=z, y=y, y_in=y_in, t=t, eps=eps, x=x, target=target)


def _check_eta(eta) -> float:
    if isinstance(eta, (bool, np.bool_)) or not isinstance(eta, numbers.Real):
        raise TypeError(f"eta must be a float in [0, 1], got {eta!r}")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be a float in [0, 1], got {eta!r}")
    return float(eta)


@dataclass
class TrainResult:
    """A trained model and its training record.

    model: the MLP (``model.meta`` records kind, problem, schedule and settings). losses: per-step
    training loss (steps,). history: list of dicts from ``eval_fn`` (step, seconds, ...).
    seconds: wall time of the loop; cpu_seconds: process CPU time of the loop (all threads; a
    load-independent measure on a shared machine). settings: the arguments used. classifier: the NoisyClassifier
    (train_classifier only). blas: the BLAS thread choice (``refcfg._threads.BlasThreads.record``:
    threads used at the end, requested, default, mean seconds per step of each candidate).
    """

    model: MLP
    losses: np.ndarray
    history: list = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    classifier: object = None
    blas: dict = field(default_factory=dict)

    def final_loss(self, last: int = 100) -> tuple[float, int]:
        """(mean of the last ``last`` training losses, how many that is: fewer after a shorter
        training). ValueError when no step was made."""
        k = min(int(last), self.losses.size)
        if k == 0:
            raise ValueError("losses is empty: no training step was made")
        return float(np.mean(self.losses[-k:])), k


def _lr_at(step: int, steps: int, lr: float, lr_final: float, warmup: int) -> float:
    # linear warm-up, then cosine decay from lr to lr * lr_final
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr * (lr_final + (1.0 - lr_final) * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0))))


def train_loop(
    model: MLP,
    loss_and_grad,
    *,
    steps: int,
    lr: float,
    lr_final: float = 0.02,
    warmup: int = 200,
    seed=None,
    progress=True,
    desc: str = "train",
    eval_fn=None,
    eval_every: int = 0,
    time_limit: float | None = None,
    blas_threads=None,
) -> TrainResult:
    """Generic Adam loop: ``loss_and_grad(model, rng) -> loss`` must fill ``model.grad``.

    progress: True shows a tqdm bar when stderr is a TTY, False never, "force" always.
    eval_fn(model) -> dict is called every ``eval_every`` steps and at the end (history).
    time_limit: stop after this many seconds (the record says how many steps ran).
    blas_threads: BLAS threads for the steps; None (default) chooses between 1 and the default
    count by timing the loop's own first steps, and re-checks every 10 s or less often
    (``refcfg._threads``); an int fixes it. The choice changes only the rounding of the matrix products, not the draws.
    The thread counts in force before the call are restored after it.
    """
    from .._threads import BlasThreads, check_blas_threads

    blas_threads = check_blas_threads(blas_threads)
    steps = _pos_int(steps, "steps")
    if not (math.isfinite(float(lr)) and float(lr) > 0):
        raise ValueError(f"lr must be > 0, got {lr!r}")
    rng = as_generator(seed)
    opt = Adam(model.theta, lr=float(lr))
    losses = np.empty(steps)
    history = []
    from .._progress import progress_bar

    bar = progress_bar(steps, desc, progress, leave=False)
    start = time.perf_counter()
    cpu_start = time.process_time()
    done = 0
    blas = BlasThreads(blas_threads)
    try:
        blas.__enter__()
        for step in range(steps):
            opt.lr = _lr_at(step, steps, float(lr), lr_final, warmup)
            with blas.step():
                losses[step] = loss_and_grad(model, rng)
                opt.step(model.grad)
            done = step + 1
            if bar is not None and (step % 50 == 0 or done == steps):
                bar.update(done - bar.n)
                bar.set_postfix(
                    loss=f"{losses[max(0, step - 49) : done].mean():.4g}", refresh=False
                )
            if eval_fn is not None and eval_every and done % eval_every == 0 and done < steps:
                history.append(
                    dict(step=done, seconds=time.perf_counter() - start, **eval_fn(model))
                )
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
    finally:
        blas.__exit__(None, None, None)
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if eval_fn is not None:
        history.append(dict(step=done, seconds=seconds, **eval_fn(model)))
    return TrainResult(
        model=model,
        losses=losses[:done],
        history=history,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        blas=blas.record(),
    )


def _pos_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _velocity_loss(batch_fn):
    """loss_and_grad for the flow-matching regression (eq. 66), mean over the batch of |.|^2."""

    def loss_and_grad(model: MLP, rng):
        b = batch_fn(rng)
        out, cache = model.forward(b["x"], b["t"], b["y_in"], cache=True)
        diff = out - b["target"]
        n = diff.shape[0]
        loss = float(np.einsum("ij,ij->", diff, diff)) / n
        diff *= 2.0 / n
        model.backward(cache, diff)
        return loss

    return loss_and_grad


def training_bytes(config: MLPConfig, batch: int) -> float:
    """Upper estimate of the bytes a training step holds: per example the input features and, per
    hidden layer, the pre-activation, the activation, the SiLU's sigmoid and their gradients
    (6 x width), and the batch's draws; plus theta, its gradient, Adam's two moments and a copy.
    (docs/limits.md compares it with measured peaks.)"""
    item = np.dtype(config.dtype).itemsize
    per_example = config.n_features + 6 * config.width * config.depth + 8 * config.d_in + 16
    return float(item) * (float(batch) * per_example + 5.0 * config.n_params) + 8.0 * batch * 8


def require_training_memory(config: MLPConfig, batch: int) -> None:
    """ValueError (before anything is allocated) when training ``config`` with ``batch`` examples
    per step cannot fit in the memory budget (:func:`refcfg._limits.require_memory`)."""
    from .._limits import require_memory

    require_memory(
        training_bytes(config, batch),
        f"training an MLP of width {config.width} and depth {config.depth} on batches of {batch}",
        "batch, width or depth",
    )


def _train_velocity(
    problem,
    *,
    conditional: bool,
    schedule=None,
    eta=0.1,
    steps=None,
    batch=None,
    lr=None,
    width=None,
    depth=None,
    n_freqs=None,
    dtype="float64",
    seed=0,
    progress=True,
    t_sampling=None,
    lr_final=None,
    warmup=None,
    eval_fn=None,
    eval_every=0,
    time_limit=None,
    blas_threads=None,
) -> TrainResult:
    from .._threads import check_blas_threads
    from ..problems import resolve

    check_blas_threads(blas_threads)
    resolved = resolve(problem, schedule)
    mixture, sched, name = resolved.mixture, resolved.schedule, resolved.name
    s = dict(DEFAULTS)
    for key, value in dict(
        steps=steps,
        batch=batch,
        lr=lr,
        width=width,
        depth=depth,
        n_freqs=n_freqs,
        t_sampling=t_sampling,
        lr_final=lr_final,
        warmup=warmup,
    ).items():
        if value is not None:
            s[key] = value
    s["eta"] = _check_eta(eta) if conditional else 0.0
    batch_n = _pos_int(s["batch"], "batch")
    rng = as_generator(seed)
    init_seed = int(rng.integers(2**31))
    n_classes = mixture.n_classes if conditional else 0
    config = MLPConfig(
        d_in=mixture.d,
        d_out=mixture.d,
        n_classes=n_classes,
        width=s["width"],
        depth=s["depth"],
        n_freqs=s["n_freqs"],
        dtype=dtype,
        seed=init_seed,
    )
    require_training_memory(config, batch_n)
    meta = dict(
        kind="cfg" if conditional else "unconditional",
        problem=name,
        schedule=sched.name,
        schedule_params=dict(sched.params),
        n_classes=mixture.n_classes,
        settings={k: s[k] for k in sorted(s)},
        seed=seed if isinstance(seed, int) else None,
    )
    model = MLP(config, meta)

    def batch_fn(r):
        return cfg_batch(
            mixture,
            sched,
            batch_n,
            r,
            eta=s["eta"],
            conditional=conditional,
            t_sampling=s["t_sampling"],
        )

    result = train_loop(
        model,
        _velocity_loss(batch_fn),
        steps=s["steps"],
        lr=s["lr"],
        lr_final=s["lr_final"],
        warmup=s["warmup"],
        seed=rng,
        progress=progress,
        desc="cfg" if conditional else "uncond",
        eval_fn=eval_fn,
        eval_every=eval_every,
        time_limit=time_limit,
        blas_threads=blas_threads,
    )
    result.settings = dict(s, problem=name, schedule=sched.name, dtype=dtype, seed=seed)
    model.meta["steps_done"] = int(result.losses.size)
    model.meta["train_seconds"] = result.seconds
    return result


def train_cfg(problem="two-class-2d", *, schedule=None, eta=0.1, **kwargs) -> TrainResult:
    """Train one network u_theta(x | y) with CFG label dropout (notes eq. 66).

    problem: name, LabeledGMM or GMMPath; schedule: name or Schedule (default the path's, else
    "linear"); eta: probability of replacing y by the null label (default 0.1). Other keywords:
    steps, batch, lr, width, depth, n_freqs, dtype, seed, progress, t_sampling, lr_final, warmup,
    eval_fn, eval_every, time_limit (defaults in ``DEFAULTS``), blas_threads (None: chosen by
    measurement, see :func:`train_loop`). Returns a :class:`TrainResult`.
    """
    return _train_velocity(problem, conditional=True, schedule=schedule, eta=eta, **kwargs)


def train_unconditional(problem="two-class-2d", *, schedule=None, **kwargs) -> TrainResult:
    """Train a plain flow-matching network u_theta(x) (no label input) on the marginal data law
    (notes eq. 49 with the conditional velocity target). Keywords as :func:`train_cfg`."""
    return _train_velocity(problem, conditional=False, schedule=schedule, **kwargs)
