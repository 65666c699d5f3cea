"""The computations of ``refcfg demo``: exact identities, exact CFG sampling against the exact and
tilted laws, a short CFG training and the learned-vs-exact comparison.

Each function returns a :class:`~refcfg.experiments.Result` (dict rows, a title that serves as the
caption, key numbers); the command only parses its arguments, calls these and writes the tables,
figures and report. ``progress`` arguments take a callable ``progress(message)`` or None.

- :func:`exact_checks`: on x ~ p_t(x, y), classifier guidance (eq. 62) against CFG (eq. 65) at w = 3,
  the conversion u = a_t score + b_t x (eq. 41/42) where alpha_t > 0, and the noisy classifier
  E p_t(y|x) on its own class (Bayes, eq. 60).
- :func:`cfg_sampling`: exact CFG samples (Heun) at each w in ``DEMO_WS``: Bayes confidence,
  likelihood, squared energy distance to p(x|y) and to the tilted law p(x|y)^w p(x)^(1-w)/Z
  (sampled by :func:`refcfg.experiments.tilted.sample`).
- :func:`train`: a short CFG training by label dropout (notes eq. 66, section 5.2).
- :func:`learned_comparison`: per-t relative field errors and sample distances of the learned field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._common import Result

__all__ = [
    "DEMO_WS",
    "SAMPLER",
    "Sizes",
    "sizes",
    "exact_checks",
    "cfg_sampling",
    "train",
    "learned_comparison",
    "CHECK_TIMES",
]

DEMO_WS = (0.0, 1.0, 2.0, 3.0, 5.0)
"""Guidance weights of the sampling table (w = 1 samples p(x|y))."""

SAMPLER = "heun"
"""The sampler of every exact and learned CFG sampling job of the demo."""

CHECK_TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Times of the identity checks (both endpoints included)."""

CHECK_W = 3.0
"""Guidance weight of the classifier-guidance = CFG check."""


@dataclass(frozen=True)
class Sizes:
    """Sample sizes of one demo run."""

    n: int  # particles per guidance weight
    steps: int  # sampler steps
    train_steps: int  # CFG training steps (0: no training)


def sizes(n: int, fast: bool, train_steps: int | None = None) -> Sizes:
    """The demo's sizes: ``--fast`` caps n at 300 and uses 20 sampler steps and 40 training steps;
    otherwise 100 steps and 6000 training steps. ``train_steps`` overrides the training default."""
    if train_steps is None:
        train_steps = 40 if fast else 6000
    return Sizes(n=min(n, 300) if fast else n, steps=20 if fast else 100, train_steps=train_steps)


def exact_checks(path, n: int, seed: int, *, progress=None) -> Result:
    """The notes' identities on x ~ p_t(x, y) at ``CHECK_TIMES`` (module docstring).

    Rows: t, max |CG - CFG| / max |u|, max |a_t s + b_t x - u| / max |u| (the text "undefined
    (alpha_t = 0)" where the conversion has no a_t, b_t), and E p_t(y=0|x) over x ~ p_t(.|0)."""
    rng = np.random.default_rng([seed, 1])
    cols = ("t", "|CG - CFG| / max|u|", "|a s + b x - u| / max|u|", "E p_t(y=0|x), x ~ p_t(.|0)")
    rows = []
    for t in CHECK_TIMES:
        if progress is not None:
            progress(f"t = {t:g} ...")
        z, y = path.mixture.sample(n, seed=rng)
        v = path.schedule.values(t)
        x = v.alpha * z + v.beta * rng.standard_normal(z.shape)
        y0 = np.zeros(n, dtype=np.int64)
        u = path.velocity(x, t, y0)
        scale = float(np.max(np.abs(u))) or 1.0
        cg = path.classifier_guided_velocity(x, t, y0, CHECK_W)
        cfg = path.cfg_velocity(x, t, y0, CHECK_W)
        diff_cg = float(np.max(np.abs(cg - cfg))) / scale
        if path.schedule.alpha(t) > 0.0:
            conv = path.velocity(x, t, y0, method="conversion")
            diff_conv = float(np.max(np.abs(conv - u))) / scale
        else:
            diff_conv = "undefined (alpha_t = 0)"
        x0 = x[y == 0]
        p0 = float(np.mean(np.exp(path.class_log_probs(x0, t)[:, 0])))
        rows.append(dict(zip(cols, (t, diff_cg, diff_conv, p0))))
    title = (
        f"Exact identities on x ~ p_t(x, y), N = {n} per t, seed {seed}: classifier guidance "
        f"(eq. 62) vs CFG (eq. 65) at w = {CHECK_W:g}; the conversion formula (eq. 41/42); the "
        f"noisy classifier (eq. 60)"
    )
    worst = max(r[cols[1]] for r in rows)
    return Result("demo-exact", title, rows, key={"max |CG - CFG| / max|u|": worst})


def _energy(a, b, seed) -> float:
    from ..metrics import energy_distance

    return float(energy_distance(a, b, max_n=2000, seed=seed))


def cfg_sampling(
    path, y: int, n: int, steps: int, seed: int, *, ws=DEMO_WS, progress=None
) -> Result:
    """Exact CFG samples (Heun, ``steps`` steps, the same noise for every w) scored against p(x|y)
    and the tilted law. Rows: w, E p(y|x), accuracy, mean log p(x|y), ED to p(x|y), ED to tilted,
    ESS frac (effective sample size of the tilted law's SIR weights per proposal); key
    ``noise_floor``: the energy distance between two independent exact samples of p(x|y)."""
    from ..metrics import class_confidence, mean_log_likelihood
    from ..sampling import sample
    from .tilted import OVERSAMPLE
    from .tilted import sample as tilted_sample

    ref_cond, _ = path.mixture.sample(n, seed=np.random.default_rng([seed, 3]), y=y)
    cols = (
        "w",
        "E p(y|x)",
        "accuracy",
        "mean log p(x|y)",
        "ED to p(x|y)",
        "ED to tilted",
        "ESS frac",
    )
    rows = []
    for i, w in enumerate(ws):
        t0 = time.perf_counter()
        if progress is not None:
            progress(f"w = {w:g} ({i + 1}/{len(ws)}): sampling and scoring ...")
        x = sample(path.cfg(y, w), n, sampler=SAMPLER, steps=steps, seed=seed)
        cc = class_confidence(x, path.mixture, y)
        ll, _ = mean_log_likelihood(x, path.mixture, y)
        tilt = tilted_sample(
            path, y, w, n, seed=np.random.default_rng([seed, 2, int(round(w * 1000))])
        )
        rows.append(
            dict(
                zip(
                    cols,
                    (
                        w,
                        cc.mean_prob,
                        cc.accuracy,
                        ll,
                        _energy(x, ref_cond, seed),
                        _energy(x, tilt.x, seed),
                        tilt.ess / (OVERSAMPLE * n),
                    ),
                )
            )
        )
        if progress is not None:
            progress(f"w = {w:g} done in {time.perf_counter() - t0:.1f} s")
    other, _ = path.mixture.sample(n, seed=np.random.default_rng([seed, 4]), y=y)
    floor = _energy(ref_cond, other, seed)
    title = (
        f"Exact CFG sampler (Heun, {steps} steps, N = {n}, seed {seed}), y = {y}. ED = squared "
        f"energy distance (noise floor of two exact samples: {floor:.2e}); tilted = "
        f"p(x|y)^w p(x)^(1-w)/Z by importance resampling (ESS frac = effective sample size / "
        f"proposals)"
    )
    return Result("demo-cfg", title, rows, key={"noise_floor": floor})


def train(problem, steps: int, seed: int, progress=True):
    """A short CFG training (label dropout eta = 0.1, notes eq. 66) of the default MLP: returns the
    :class:`refcfg.learn.train.TrainResult`."""
    from ..learn.train import train_cfg

    return train_cfg(problem, steps=steps, seed=seed, progress=progress)


def learned_comparison(
    path, model, y: int, n: int, steps: int, seed: int, w: float = 3.0
) -> tuple[Result, Result]:
    """(field errors, sample comparison) of a trained CFG model against the exact fields.

    Field errors: relative L2 error E|u_theta - u|^2 / E|u|^2 over (x, y) ~ p_t at t = 0, 0.1, ...,
    1 for the conditional, unconditional and CFG (at ``w``) fields. Samples: learned and exact CFG
    samplers from the same noise at w = 1 and ``w``, with the floor of two exact runs from
    independent noise (seeds seed, seed + 1)."""
    from ..learn.compare import field_errors
    from ..learn.fields import learned_cfg
    from ..metrics import class_confidence
    from ..sampling import sample

    t_grid = np.linspace(0.0, 1.0, 11)
    n_field = min(n, 2000)
    err = field_errors(path, model, ws=(w,), t_grid=t_grid, n=n_field, seed=seed)
    fcols = ("t", "conditional", "unconditional", f"CFG w={w:g}")
    frows = [
        dict(zip(fcols, (t, err["conditional"][i], err["unconditional"][i], err["cfg"][w][i])))
        for i, t in enumerate(t_grid)
    ]
    ftitle = (
        f"Learned vs exact field: relative L2 error E|u_theta - u|^2 / E|u|^2 over (x, y) ~ "
        f"p_t, N = {n_field} per t, seed {seed}"
    )
    scols = (
        "w",
        "ED learned-exact",
        "ED exact-exact (floor)",
        "E p(y|x) learned",
        "E p(y|x) exact",
    )
    srows = []
    for wi in (1.0, w):
        xl = sample(
            learned_cfg(model, y, wi, path.schedule), n, sampler=SAMPLER, steps=steps, seed=seed
        )
        xe = sample(path.cfg(y, wi), n, sampler=SAMPLER, steps=steps, seed=seed)
        xf = sample(path.cfg(y, wi), n, sampler=SAMPLER, steps=steps, seed=seed + 1)
        srows.append(
            dict(
                zip(
                    scols,
                    (
                        wi,
                        _energy(xl, xe, seed),
                        _energy(xf, xe, seed),
                        class_confidence(xl, path.mixture, y).mean_prob,
                        class_confidence(xe, path.mixture, y).mean_prob,
                    ),
                )
            )
        )
    stitle = (
        f"Learned vs exact CFG sampler from the same initial noise (Heun, {steps} steps, "
        f"N = {n}, seed {seed}), y = {y}. The floor compares two exact runs from independent "
        f"noise (seeds {seed}, {seed + 1}); paired runs can fall below it"
    )
    return (
        Result("demo-learned-field", ftitle, frows),
        Result("demo-learned-samples", stitle, srows),
    )
