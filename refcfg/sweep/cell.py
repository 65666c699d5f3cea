"""The work of one cell: sample with one guidance rule, score the samples against exact laws.

``evaluate(cell)`` builds the cell's problem path and guidance rule (``refcfg.guidance.make``), draws
n samples with ``refcfg.sample`` and computes the spec's metrics (``refcfg.metrics``; the tilted law
p(x|y)^w p(x)^(1-w) / Z through ``refcfg.experiments.tilted``). It is a pure function of the cell:
every random stream is spawned from ``cell.seed_sequence()``:

    stream 0: the initial noise x(0) ~ N(0, I) and the SDE increments (``refcfg.sample``'s seed)
    stream 1: the exact reference sample of p(x|y) (energy distance, flow log-likelihood points)
    stream 2: the SIR sample of the tilted law
    stream 3: the subsampling seed of the energy distance and of the TV noise floor

The sampled field is the rule on the problem's exact fields, or, for a learned model file (``.npz``
in ``axes.problem``), the learned CFG w u_theta(x|y) + (1 - w) u_theta(x|null) (notes eq. 65). The
law scored against ("p(x|y)" below) is the problem's, or the spec's ``reference`` problem's
(``refcfg.sweep.reference``): a clean class law for samples of a noisy conditional, the exact law a
learned model was trained on.

Metrics (columns):

- ed_cfg: squared energy distance to the exact CFG push-forward of the same w on the law scored
  against, drawn with the same sampler, steps, initial points and SDE increments (stream 0);
- ed_cond / ed_tilted: squared energy distance (V-statistic, ``metrics.energy_distance``, samples
  above ``metrics.ed_max_n`` subsampled) to an exact sample of p(x|y) / a SIR sample of the tilted
  law, each of ``n_ref`` points (default n); tilted_ess is the SIR effective sample size;
- confidence / accuracy: mean p(y|x) and accuracy of the exact Bayes classifier at t = 1
  (``metrics.class_confidence``);
- loglik / loglik_se: mean exact log p(x|y) of the samples and its standard error;
- flow_loglik: mean log-density of ``lik_n`` exact points of p(x|y) under the rule's own ODE flow
  (``refcfg.log_likelihood``, same steps, the cell's own ODE tableau; Heun for Euler-Maruyama);
- tv_tilted / tv_cond / tv_floor (1-D problems): total variation between the histogram of the samples
  and the cell masses of the tilted law / of p(x|y) on ``tv_bins`` cells over ``tv_range``, and the TV a
  perfect sampler of the tilted law shows at this n (``metrics.tv_noise_floor``, 10 repetitions);
- sample_s / metrics_s: wall-clock seconds of sampling and of the metrics (not reproducible).
"""

from __future__ import annotations

import functools
import time

import numpy as np

__all__ = ["evaluate", "tv_edges"]


@functools.lru_cache(maxsize=8)
def _path(problem: str, schedule: str):
    from ..problems import resolve

    return resolve(problem, schedule).path


@functools.lru_cache(maxsize=8)
def _model(file: str):
    from ..learn.mlp import MLP

    return MLP.load(file)


def _field(cell, grid):
    """(the sampled field, the exact path of the sampled problem or None for a learned model)."""
    from ..guidance import make
    from ..learn.fields import learned_cfg
    from .reference import is_model_file

    file = cell.problem_file or cell.problem
    if is_model_file(file):
        return learned_cfg(_model(file), cell.settings.y, cell.w), None
    path = _path(file, cell.schedule)
    rule = make(cell.rule.name, path, cell.settings.y, cell.w, t_grid=grid, **cell.rule.kwargs())
    return rule, path


def tv_edges(mixture, bins: int, rng=None) -> np.ndarray:
    """Bin edges of the 1-D TV grid: ``rng`` = (lo, hi), or by default the hull of mean -+ 8 sd of
    every component of the data law."""
    if rng is None:
        g = mixture.marginal
        sd = np.sqrt(np.asarray(g.covs, dtype=np.float64).reshape(len(g.weights), -1)[:, 0])
        mu = np.asarray(g.means, dtype=np.float64)[:, 0]
        rng = (float(np.min(mu - 8 * sd)), float(np.max(mu + 8 * sd)))
    return np.linspace(rng[0], rng[1], int(bins) + 1)


def evaluate(cell) -> dict:
    """The metric columns of one cell (a :class:`refcfg.sweep.spec.Cell`) as {column: float}.

    Deterministic: the same cell gives bitwise the same values (the timing columns aside) in any
    process, whatever the number of workers, for a fixed number of Numba threads."""
    import refcfg

    from .. import metrics
    from ..experiments import tilted
    from ..guidance import make
    from ..sampling.api import auto_work, resolve_backend, time_grid
    from ..sampling.steppers import TABLEAUS

    s = cell.settings
    y = s.y
    n_ref = s.n_ref if s.n_ref is not None else cell.n
    noise, ref_ss, tilt_ss, ed_ss = cell.seed_sequence().spawn(4)
    ed_seed = int(np.random.default_rng(ed_ss).integers(0, 2**63))
    grid = time_grid(cell.steps)
    field, path = _field(cell, grid)
    law = _path(s.reference_file, cell.schedule) if s.reference_file else path
    mix = law.mixture  # the law scored against
    extra = {"sigma": s.sigma} if cell.sampler == "euler_maruyama" else {}

    # the backend the cell's own field runs on: the exact CFG of ed_cfg runs there too, so an SDE
    # draws the same increments for both (NumPy and the kernels draw different noise streams)
    backend = resolve_backend(
        s.backend, field, work=auto_work(field, cell.n, cell.steps, cell.sampler, law.d)
    )

    def draw(f):
        return refcfg.sample(
            f,
            cell.n,
            sampler=cell.sampler,
            steps=cell.steps,
            seed=np.random.default_rng(noise),
            backend=backend,
            **extra,
        )

    t0 = time.perf_counter()
    x = draw(field)
    t1 = time.perf_counter()
    out = {}
    want = s.metrics
    ref = None
    if "ed_cond" in want or "flow_loglik" in want:
        ref = mix.class_gmm(y).sample(n_ref, np.random.default_rng(ref_ss))
    if "ed_cond" in want:
        out["ed_cond"] = float(metrics.energy_distance(x, ref, max_n=s.ed_max_n, seed=ed_seed))
    if "ed_cfg" in want:
        xc = draw(make("cfg", law, y, cell.w, t_grid=grid))
        out["ed_cfg"] = float(metrics.energy_distance(x, xc, max_n=s.ed_max_n, seed=ed_seed))
    if "ed_tilted" in want:
        ts = tilted.sample(path, y, cell.w, n_ref, seed=np.random.default_rng(tilt_ss))
        out["ed_tilted"] = float(metrics.energy_distance(x, ts.x, max_n=s.ed_max_n, seed=ed_seed))
        out["tilted_ess"] = float(ts.ess)
    if "confidence" in want:
        cc = metrics.class_confidence(x, mix, y)
        out["confidence"], out["accuracy"] = float(cc.mean_prob), float(cc.accuracy)
    if "loglik" in want:
        ll, se = metrics.mean_log_likelihood(x, mix, y)
        out["loglik"], out["loglik_se"] = float(ll), float(se)
    if "flow_loglik" in want:
        pts = ref[: s.lik_n]
        lik_sampler = cell.sampler if cell.sampler in TABLEAUS else "heun"
        ll = refcfg.log_likelihood(
            field, pts, steps=cell.steps, sampler=lik_sampler, backend=s.backend
        )
        out["flow_loglik"] = float(np.mean(ll))
    if "tv" in want:
        edges = tv_edges(mix, s.tv_bins, s.tv_range)
        h = metrics.histogram_probs(x, edges)
        q_tilt = metrics.density_probs(lambda c: tilted.log_density(path, c, y, cell.w), edges)
        # the grid spans the law scored against; the sampled problem's tilted law is put on it
        q_cond = metrics.density_probs(mix.class_gmm(y).log_prob, edges)
        out["tv_tilted"] = metrics.total_variation(h, q_tilt)
        out["tv_cond"] = metrics.total_variation(h, q_cond)
        out["tv_floor"] = metrics.tv_noise_floor(q_tilt, cell.n, reps=10, seed=ed_seed)[0]
    if "time" in want:
        out["sample_s"] = t1 - t0
        out["metrics_s"] = time.perf_counter() - t1
    return out
