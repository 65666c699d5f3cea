"""Guidance variants measured against ground truth (the logic behind ``refcfg compare-guidance``).

For one problem (a LabeledGMM), one class y and a sweep of guidance weights w, every variant of
``refcfg.variants`` is run on the exact fields of the problem's path from the *same* initial noise,
and its samples are scored against exact laws (``refcfg.metrics``):

- class confidence: mean p(y | x) and accuracy of the exact Bayes classifier at t = 1 (notes arXiv
  2506.02070 v3, eq. 59-62);
- mean log-likelihood under p(x | y);
- mass per mode: hard assignment of each sample to a component of the *marginal* mixture by its exact
  responsibilities; "mode TV" is the total variation between that mass vector and the weights of
  p(x | y) (zero outside class y), so it counts both wrong-class mass and unbalanced modes;
- energy distance (squared, V-statistic) to a fresh exact sample of p(x | y) and to a sample of the
  tilted law p(x | y)^w p(x)^(1 - w) / Z.

The tilted law is sampled by sampling-importance-resampling (SIR) from p(x | y): its density ratio to
p(x | y) is proportional to (p(x | y) / p(x))^(w - 1) = (p(y | x) / p(y))^(w - 1), so the weights are
p(y | x)^(w - 1), bounded by 1 for w >= 1. ``oversample`` x n proposals are drawn and n resampled with
replacement; the effective sample size of the weights is reported. For w < 1 the weights are
unbounded and SIR is only approximate (the ESS says how much).

Baselines in every table: "exact p(x|y)" (a fresh exact sample: the noise floor of every metric at
this n) and "tilted (SIR)" (the tilted sample scored like the variants).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ._validation import as_generator, as_positive_int
from .variants import VARIANTS, make_variant

__all__ = ["DEFAULT_WS", "FAST", "FULL", "Row", "tilted_sample", "score_samples",
           "compare_guidance", "format_table", "plot_comparison"]

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
    confidence: float          # mean p(y|x), exact Bayes classifier at t = 1
    accuracy: float            # fraction classified as y
    loglik: float              # mean log p(x|y)
    mode_tv: float             # TV(mass per marginal component, weights of p(x|y))
    ed_cond: float             # squared energy distance to p(x|y)
    ed_tilted: float           # squared energy distance to the tilted law
    mode_mass: list = field(default_factory=list)  # mass on the components of class y
    seconds: float = 0.0


def tilted_sample(mixture, y: int, w: float, n: int, seed=None, *, oversample: int = 20):
    """n draws approximately from p(x|y)^w p(x)^(1-w) / Z by SIR from p(x|y) (module docstring).

    Returns (x (n, d), ess) where ess = 1 / sum(p_i^2) of the normalised weights over the
    ``oversample * n`` proposals."""
    from .metrics import class_log_posteriors

    n = as_positive_int(n, "n")
    oversample = as_positive_int(oversample, "oversample")
    rng = as_generator(seed)
    m = n * oversample
    xs = mixture.class_gmm(y).sample(m, rng)
    logw = (float(w) - 1.0) * class_log_posteriors(xs, mixture)[:, int(y)]
    p = np.exp(logw - logw.max())
    p /= p.sum()
    ess = float(1.0 / np.sum(p * p))
    idx = rng.choice(m, size=n, replace=True, p=p)
    return xs[idx], ess


def score_samples(x, mixture, y: int, ref_cond, ref_tilted, *, name: str, w: float,
                  ed_seed: int = 0) -> Row:
    """All metrics of one sample against the exact laws (module docstring)."""
    from .metrics import class_confidence, energy_distance, mean_log_likelihood, mode_mass

    cc = class_confidence(x, mixture, y)
    ll, _ = mean_log_likelihood(x, mixture, y)
    mass = mode_mass(x, mixture)                       # (K_total,), marginal components
    target = np.zeros_like(mass)
    sl = mixture.class_slices[int(y)]
    target[sl] = mixture.classes[int(y)].weights
    tv = 0.5 * float(np.abs(mass - target).sum())
    return Row(variant=name, w=float(w), confidence=cc.mean_prob, accuracy=cc.accuracy,
               loglik=ll, mode_tv=tv,
               ed_cond=float(energy_distance(x, ref_cond, seed=ed_seed)),
               ed_tilted=float(energy_distance(x, ref_tilted, seed=ed_seed)),
               mode_mass=[float(v) for v in mass[sl]])


def compare_guidance(problem="two-class-2d", *, ws=DEFAULT_WS, n: int = 2000, steps: int = 100,
                     sampler: str = "euler", y: int = 0, seed: int = 0, n_ref: int | None = None,
                     variants=VARIANTS, schedule="linear", variant_params: dict | None = None,
                     oversample: int = 20, progress=None) -> dict:
    """Run every variant for every w on the exact fields of ``problem`` from the same noise.

    problem: a name of ``refcfg.problems`` or a LabeledGMM. Returns a dict with the settings, the
    rows (list of ``Row``), the tilted-law ESS per w, and the final samples per (variant, w)."""
    from .paths import GMMPath
    from .problems import problem as get_problem
    from .sampling import sample
    from .sampling.api import time_grid

    mix = get_problem(problem) if isinstance(problem, str) else problem
    name = problem if isinstance(problem, str) else repr(problem)
    n = as_positive_int(n, "n")
    steps = as_positive_int(steps, "steps")
    n_ref = as_positive_int(n_ref if n_ref is not None else 2 * n, "n_ref")
    ws = [float(w) for w in ws]
    if not ws:
        raise ValueError("ws must hold at least one guidance weight")
    if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or not 0 <= y < mix.n_classes:
        raise ValueError(f"y must be a class in 0..{mix.n_classes - 1}, got {y!r}")
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    params = dict(variant_params or {})
    path = GMMPath(mix, schedule)
    grid = time_grid(steps)
    rng = np.random.default_rng(seed)
    x_init = rng.standard_normal((n, mix.d))           # the same noise for every variant and w
    ref_cond = mix.class_gmm(y).sample(n_ref, rng)
    exact = mix.class_gmm(y).sample(n, rng)            # noise floor of every metric at this n
    rows, samples, ess = [], {}, {}
    weak_path = None
    if "autoguidance" in variants:
        from .variants import weaker_mixture
        cov_scale = params.get("autoguidance", {}).get("cov_scale", 2.0)
        weak_path = GMMPath(weaker_mixture(mix, cov_scale), path.schedule)
    for w in ws:
        ref_tilted, ess[w] = tilted_sample(mix, y, w, n_ref, rng, oversample=oversample)
        tilted_own, _ = tilted_sample(mix, y, w, n, rng, oversample=oversample)
        rows.append(score_samples(exact, mix, y, ref_cond, ref_tilted, name="exact p(x|y)", w=w))
        rows.append(score_samples(tilted_own, mix, y, ref_cond, ref_tilted, name="tilted (SIR)", w=w))
        for v in variants:
            kw = {k: val for k, val in params.get(v, {}).items() if k != "cov_scale"}
            fld = make_variant(v, path, y, w, t_grid=grid, weak_path=weak_path, **kw)
            t0 = time.perf_counter()
            x = sample(fld, n, sampler=sampler, t_grid=grid, x_init=x_init)
            dt = time.perf_counter() - t0
            row = score_samples(x, mix, y, ref_cond, ref_tilted, name=v, w=w)
            row.seconds = dt
            rows.append(row)
            samples[(v, w)] = x
            if progress is not None:
                progress(f"{name} w={w:g} {v}: {dt:.1f} s")
    return dict(problem=name, y=int(y), ws=ws, n=n, steps=steps, sampler=sampler, seed=seed,
                n_ref=n_ref, schedule=path.schedule.name + (f" {path.schedule.params}" if path.schedule.params else ""), oversample=oversample, ess=ess,
                rows=rows, samples=samples, exact=exact, variants=list(variants),
                params={k: dict(v) for k, v in params.items()})


def format_table(result: dict) -> str:
    """The comparison as a Markdown table (one block per w), with the settings on top."""
    r = result
    lines = [f"problem `{r['problem']}`, class y = {r['y']}, n = {r['n']}, {r['sampler']} "
             f"{r['steps']} steps, schedule {r['schedule']}, seed {r['seed']}, reference samples "
             f"n_ref = {r['n_ref']} (tilted law: SIR from p(x|y) with {r['oversample']} x n_ref "
             f"proposals, ESS " + ", ".join(f"w={w:g}: {e:.0f}" for w, e in r["ess"].items()) + ")",
             "",
             "| variant | w | conf p(y\\|x) | acc | mean log p(x\\|y) | mode TV | ED p(x\\|y) "
             "| ED tilted | mass per mode of y |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        mm = row.mode_mass
        mass = (" ".join(f"{v:.2f}" for v in mm) if len(mm) <= 6
                else f"{sum(v > 0 for v in mm)}/{len(mm)} modes hit")
        lines.append(f"| {row.variant} | {row.w:g} | {row.confidence:.3f} | {row.accuracy:.3f} | "
                     f"{row.loglik:.3f} | {row.mode_tv:.3f} | {row.ed_cond:.4f} | "
                     f"{row.ed_tilted:.4f} | {mass} |")
    return "\n".join(lines)


def to_json(result: dict) -> str:
    """The settings and rows as JSON (samples left out)."""
    out = {k: v for k, v in result.items() if k not in ("samples", "exact", "rows", "ess")}
    out["ess"] = {f"{w:g}": e for w, e in result["ess"].items()}
    out["rows"] = [asdict(row) for row in result["rows"]]
    return json.dumps(out, indent=1)


def plot_comparison(result: dict, path) -> None:
    """Figure: metrics against w for every variant (top) and the samples at the largest w (bottom),
    over the exact density of p(x|y) (2-D problems)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = result
    variants = r["variants"]
    ws = r["ws"]
    nv = len(variants)
    ncols = max(4, nv + 1)
    fig = plt.figure(figsize=(2.4 * ncols, 6.4))
    gs = fig.add_gridspec(2, ncols, height_ratios=[1.0, 1.0])
    metrics = [("confidence", "conf p(y|x)"), ("loglik", "mean log p(x|y)"),
               ("ed_cond", "ED to p(x|y)"), ("ed_tilted", "ED to tilted law")]
    span = max(1, ncols // 4)
    for j, (key, label) in enumerate(metrics):
        ax = fig.add_subplot(gs[0, j * span:(j + 1) * span])
        for v in variants + ["tilted (SIR)"]:
            ys = [getattr(row, key) for row in r["rows"] if row.variant == v]
            ax.plot(ws, ys, marker="o", ms=3, lw=1, ls="--" if v == "tilted (SIR)" else "-",
                    label=v)
        ax.set_xlabel("w")
        ax.set_title(label, fontsize=9)
        if key.startswith("ed"):
            ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=6)
    d = r["exact"].shape[1]
    w_max = ws[-1]
    panels = [("exact p(x|y)", r["exact"])] + [(v, r["samples"][(v, w_max)]) for v in variants]
    lo = np.min(np.concatenate([p[1] for p in panels]), axis=0)
    hi = np.max(np.concatenate([p[1] for p in panels]), axis=0)
    q_lo, q_hi = np.percentile(r["exact"], [0.5, 99.5], axis=0)
    pad = 0.3 * (q_hi - q_lo)
    lo, hi = np.maximum(lo, q_lo - 2 * pad), np.minimum(hi, q_hi + 2 * pad)
    for j, (title, x) in enumerate(panels[:ncols]):
        ax = fig.add_subplot(gs[1, j])
        if d >= 2:
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, lw=0)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_aspect("equal", adjustable="box")
        else:
            ax.hist(x[:, 0], bins=60, density=True)
        ax.set_title(title if title.startswith("exact") else f"{title}, w={w_max:g}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{r['problem']}: guidance variants vs ground truth (class {r['y']}, n={r['n']}, "
                 f"{r['sampler']} {r['steps']} steps)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
