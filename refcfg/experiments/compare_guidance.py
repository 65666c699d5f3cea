"""Guidance variants measured against ground truth: the study behind ``refcfg compare-guidance``.

For one problem (a LabeledGMM), one class y and a sweep of guidance weights w, every variant of
``VARIANTS`` (rules of ``refcfg.guidance.RULES``, named here so that a newly registered rule does not
change the published table; any registered rule can be asked for by name) is run on the exact fields
of the problem's path from the *same* initial noise, and its samples are scored against exact laws
(``refcfg.metrics``):

- class confidence: mean p(y | x) and accuracy of the exact Bayes classifier at t = 1 (Bayes'
  rule, notes eq. 60);
- mean log-likelihood under p(x | y);
- mass per mode: hard assignment of each sample to a component of the *marginal* mixture by its exact
  responsibilities; "mode TV" is the total variation between that mass vector and the weights of
  p(x | y) (zero outside class y), so it counts both wrong-class mass and unbalanced modes;
- energy distance (squared, V-statistic) to a fresh exact sample of p(x | y) and to a sample of the
  tilted law p(x | y)^w p(x)^(1 - w) / Z.

The tilted law is sampled by sampling-importance-resampling (``refcfg.experiments.tilted``:
proposals from p(x|y) for w >= 1, from p(x) for w < 1, bounded weights for every w >= 0), with
``oversample`` x n proposals; the effective sample size of the weights is reported.

This module computes only. The Markdown table, the JSON record and the figure are made by
``refcfg.plotting.comparison``; ``run(fast, seed)`` returns the registry's ``Result`` for
``refcfg reproduce compare-guidance``.

Baselines in every table: "exact p(x|y)" (a fresh exact sample: the noise floor of every metric at
this n) and "tilted (SIR)" (the tilted sample scored like the variants).
"""

from __future__ import annotations

import numbers
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .._validation import as_choice, as_positive_int
from ..guidance import RULES, make, weaker_mixture
from ..sampling.steppers import TABLEAUS
from . import tilted
from ._common import Result

__all__ = [
    "NAME",
    "TITLE",
    "DEFAULT_WS",
    "VARIANTS",
    "FAST",
    "FULL",
    "Row",
    "score_samples",
    "compare_guidance",
    "run",
]

NAME = "compare-guidance"
TITLE = "Guidance variants on exact fields vs p(x|y) and the tilted law"

VARIANTS = ("cfg", "interval", "rescale", "apg", "cfg-zero-star", "autoguidance", "schedule")
"""The rules the study compares by default, in table order."""

DEFAULT_WS = (1.0, 2.0, 4.0)
FULL = dict(n=2000, steps=100, n_ref=4000, ws=DEFAULT_WS)
"""Default sizes of ``refcfg compare-guidance`` (Euler, 100 steps)."""
FAST = dict(n=200, steps=20, n_ref=400, ws=(1.0, 3.0))
"""``--fast`` sizes (tests)."""


@dataclass
class Row:
    """One line of the comparison table."""

    variant: str
    w: float
    confidence: float  # mean p(y|x), exact Bayes classifier at t = 1
    accuracy: float  # fraction classified as y
    loglik: float  # mean log p(x|y)
    mode_tv: float  # TV(mass per marginal component, weights of p(x|y))
    ed_cond: float  # squared energy distance to p(x|y)
    ed_tilted: float  # squared energy distance to the tilted law
    mode_mass: list = field(default_factory=list)  # mass on the components of class y
    seconds: float = 0.0


def score_samples(
    x, mixture, y: int, ref_cond, ref_tilted, *, name: str, w: float, ed_seed: int = 0
) -> Row:
    """All metrics of one sample against the exact laws (module docstring)."""
    from ..metrics import class_confidence, energy_distance, mean_log_likelihood, mode_mass

    cc = class_confidence(x, mixture, y)
    ll, _ = mean_log_likelihood(x, mixture, y)
    mass = mode_mass(x, mixture)  # (K_total,), marginal components
    target = np.zeros_like(mass)
    sl = mixture.class_slices[int(y)]
    target[sl] = mixture.classes[int(y)].weights
    tv = 0.5 * float(np.abs(mass - target).sum())
    return Row(
        variant=name,
        w=float(w),
        confidence=cc.mean_prob,
        accuracy=cc.accuracy,
        loglik=ll,
        mode_tv=tv,
        ed_cond=float(energy_distance(x, ref_cond, seed=ed_seed)),
        ed_tilted=float(energy_distance(x, ref_tilted, seed=ed_seed)),
        mode_mass=[float(v) for v in mass[sl]],
    )


def compare_guidance(
    problem="two-class-2d",
    *,
    ws=DEFAULT_WS,
    n: int = 2000,
    steps: int = 100,
    sampler: str = "euler",
    y: int = 0,
    seed: int = 0,
    n_ref: int | None = None,
    variants=None,
    schedule=None,
    variant_params: dict | None = None,
    oversample: int = 20,
    progress=None,
    name: str | None = None,
) -> dict:
    """Run every variant for every w on the exact fields of ``problem`` from the same noise.

    problem: a name of ``refcfg.problems``, a ``.toml`` path, a LabeledGMM or a GMMPath, with
    ``schedule`` as in ``refcfg.problems.resolve`` (None keeps a GMMPath's schedule, "linear"
    otherwise); name: the problem's label in the table and the progress lines (default: the name
    given, else the object's repr). variants: names of ``refcfg.guidance.RULES``; None runs every
    rule of ``VARIANTS`` that applies to the problem (rules that cannot run on it, such as guidance
    rescale in 1-D, are listed under "skipped"). sampler: an ODE sampler (a name in
    ``refcfg.sampling.steppers.TABLEAUS``): the variants share the probability-flow ODE's noise. Every rule is built and evaluated once on a few points before any
    sampling, so a rule that cannot run fails before the work starts. Returns a dict with the
    settings, the rows (list of ``Row``), the tilted-law ESS per w, and the final samples per
    (variant, w)."""
    from ..paths import GMMPath
    from ..problems import resolve
    from ..sampling import sample
    from ..sampling.api import time_grid

    path, pname = resolve(problem, schedule)
    mix = path.mixture
    if name is None:
        name = pname if pname is not None else repr(problem)
    n = as_positive_int(n, "n")
    steps = as_positive_int(steps, "steps")
    n_ref = as_positive_int(n_ref if n_ref is not None else 2 * n, "n_ref")
    ws = list(ws)
    if not ws:
        raise ValueError("ws must hold at least one guidance weight")
    for w in ws:
        if (
            isinstance(w, (bool, np.bool_))
            or not isinstance(w, numbers.Real)
            or not np.isfinite(w)
            or w < 0
        ):
            raise ValueError(
                f"ws must be finite guidance weights >= 0 (the tilted law may not "
                f"exist for w < 0), got {w!r}"
            )
    ws = [float(w) for w in ws]
    oversample = as_positive_int(oversample, "oversample")
    sampler = as_choice(sampler, "sampler", tuple(TABLEAUS))
    if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or not 0 <= y < mix.n_classes:
        raise ValueError(f"y must be a class in 0..{mix.n_classes - 1}, got {y!r}")
    chosen = variants is None
    variants = list(VARIANTS if chosen else variants)
    for v in variants:
        if v not in RULES:
            raise ValueError(f"unknown variant {v!r}; known: {', '.join(RULES)}")
    params = dict(variant_params or {})
    grid = time_grid(steps)
    weak_path = None
    if "autoguidance" in variants:
        cov_scale = params.get("autoguidance", {}).get("cov_scale", 2.0)
        weak_path = GMMPath(weaker_mixture(mix, cov_scale), path.schedule)

    def build(v, w):
        kw = {k: val for k, val in params.get(v, {}).items() if k != "cov_scale"}
        return make(v, path, y, w, t_grid=grid, weak_path=weak_path, **kw)

    skipped = {}
    probe = np.zeros((2, mix.d))
    probe[1] = 0.5
    for v in list(variants):  # before any work: can every rule run here?
        try:
            build(v, ws[-1]).velocity(probe, 0.5)
        except ValueError as exc:
            if not chosen:
                raise ValueError(f"variant {v!r} cannot run on this problem: {exc}") from exc
            skipped[v] = str(exc)
            variants.remove(v)
    rng = np.random.default_rng(seed)
    x_init = rng.standard_normal((n, mix.d))  # the same noise for every variant and w
    ref_cond = mix.class_gmm(y).sample(n_ref, rng)
    exact = mix.class_gmm(y).sample(n, rng)  # noise floor of every metric at this n
    rows, samples, ess = [], {}, {}
    for w in ws:
        ref_tilted, ess[w] = tilted.sample(mix, y, w, n_ref, seed=rng, oversample=oversample)
        tilted_own, _ = tilted.sample(mix, y, w, n, seed=rng, oversample=oversample)
        rows.append(score_samples(exact, mix, y, ref_cond, ref_tilted, name="exact p(x|y)", w=w))
        rows.append(
            score_samples(tilted_own, mix, y, ref_cond, ref_tilted, name="tilted (SIR)", w=w)
        )
        for v in variants:
            fld = build(v, w)
            t0 = time.perf_counter()
            x = sample(fld, n, sampler=sampler, t_grid=grid, x_init=x_init)
            dt = time.perf_counter() - t0
            row = score_samples(x, mix, y, ref_cond, ref_tilted, name=v, w=w)
            row.seconds = dt
            rows.append(row)
            samples[(v, w)] = x
            if progress is not None:
                progress(f"{name} w={w:g} {v}: {dt:.1f} s")
    return dict(
        problem=name,
        y=int(y),
        ws=ws,
        n=n,
        steps=steps,
        sampler=sampler,
        seed=seed,
        n_ref=n_ref,
        oversample=oversample,
        ess=ess,
        schedule=path.schedule.name + (f" {path.schedule.params}" if path.schedule.params else ""),
        rows=rows,
        samples=samples,
        exact=exact,
        variants=list(variants),
        skipped=skipped,
        params={k: dict(v) for k, v in params.items()},
    )


def run(fast: bool = False, seed: int = 0) -> Result:
    """The registry's entry: the ``VARIANTS`` on two-class-2d at the ``FULL`` (or ``FAST``) sizes.

    The table holds one row per (variant, w) with the baselines; key numbers are the sizes and the
    tilted-law ESS per w; the figure is ``refcfg.plotting.comparison.comparison_figure``."""
    sizes = dict(FAST if fast else FULL)
    result = compare_guidance("two-class-2d", seed=seed, **sizes)
    rows = []
    for row in result["rows"]:
        r = asdict(row)
        r.pop("seconds")
        r["mode_mass"] = [round(v, 4) for v in r["mode_mass"]]
        rows.append(r)
    key = {
        "n": result["n"],
        "n_ref": result["n_ref"],
        "steps": result["steps"],
        "sampler": result["sampler"],
    }
    for w, e in result["ess"].items():
        key[f"tilted ESS w={w:g}"] = e

    return Result(NAME, TITLE, rows, key, figure_data={"result": result})
