"""Sample-level checks: do a sampler's samples follow the exact law they should reach?

:func:`check_samples` draws a reference sample from the exact target law (or refcfg's own accurate
integration of the guided ODE / SDE) and runs a two-sample permutation test.

The test. Both samples are mapped to F features, standardised by the pooled sample: the coordinates
(d), the centred second moments (all pairs for d <= 8, the squares otherwise) and random Fourier
features cos/sin(omega . x) at three bandwidths (0.5, 1 and 2 pooled standard deviations, 8
frequencies each, drawn from ``seed``). For each feature j, z_j = (mean_X f_j - mean_R f_j) /
(s_j sqrt(1/n + 1/m)) with s_j the pooled standard deviation. Two statistics: T1 = max_j |z_j| (a
shift in any one direction) and T2 = sum of z_j^2 over the moment features (a change spread over
several moments, e.g. a covariance error), combined by the smaller of their permutation p-values.
The null distribution is the permutation distribution: the pooled sample is split at random into
groups of sizes n and m ``permutations`` times, each split's min-p is computed against the same
permutations, and the p-value is (1 + #{min-p_perm <= min-p_obs}) / (1 + permutations). Under the
null (both samples i.i.d. from one law) the pooled sample is exchangeable, so P(p <= alpha) <= alpha
exactly, whatever the law or the features.

Effect sizes, reported beside the p-value (they do not decide): energy distance
(``refcfg.metrics.energy_distance``), the mean error in units of the reference's standard deviation,
the relative covariance error (Frobenius), and the Bayes class confidence of both samples
(``refcfg.metrics.class_confidence``) where a class y is given.
"""

from __future__ import annotations

import dataclasses
import json
import numbers

import numpy as np

from ._validation import as_float_array, as_generator

__all__ = ["check_samples", "SampleReport", "two_sample_test", "reference_samples", "TARGETS"]

TARGETS = ("data", "ode", "sde", "tilted")
"""Targets: "data" p(x|y) (what a sampler at w = 1 must reach); "ode" the push-forward of N(0, I)
by the exact guided probability-flow ODE (refcfg's RK4 with ``steps`` steps); "sde" the same for the
SDE eq. 44 with sigma_t^2 = 2 a_t (Euler-Maruyama, ``steps`` steps; weak error O(1/steps)); "tilted"
p(x|y)^w p(x)^(1-w) / Z (``refcfg.experiments.tilted``; what CFG does *not* sample for w > 1)."""

_BANDWIDTHS = (0.5, 1.0, 2.0)
_FREQS = 8  # frequencies per bandwidth
_BATCH = 32  # permutations per matrix product


@dataclasses.dataclass
class SampleReport:
    """The result of :func:`check_samples`."""

    passed: bool
    p_value: float
    statistic: float
    alpha: float
    n: int
    n_ref: int
    permutations: int
    seed: int
    target: str
    problem: str
    y: int | None
    w: float
    effects: dict

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=float))

    def __str__(self) -> str:
        head = "PASS" if self.passed else "FAIL"
        lines = [
            f"{head}: {self.n} samples vs {self.n_ref} from the exact '{self.target}' law "
            f"(problem {self.problem}, y={self.y}, w={self.w:g})",
            f"  permutation test: max|z| = {self.statistic:.3f}, p = {self.p_value:.4g} "
            f"({self.permutations} permutations, seed {self.seed}); reject when p <= "
            f"{self.alpha:g}",
        ]
        for k, v in self.effects.items():
            lines.append(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
        return "\n".join(lines)


def _features(z, omegas, centre, scale, full_pairs):
    """(n, F) features of z (n, d) standardised by (centre, scale) (module docstring)."""
    u = (z - centre) / scale
    d = u.shape[1]
    cols = [u]
    if full_pairs:
        iu = np.triu_indices(d)
        cols.append(u[:, iu[0]] * u[:, iu[1]])
    else:
        cols.append(u * u)
    proj = u @ omegas
    cols += [np.cos(proj), np.sin(proj)]
    return np.concatenate(cols, axis=1)


def _stats(sums, n, m, tot, sd, k_mom):
    """(max_j |z_j|, sum of z_j^2 over the first k_mom (moment) features) for groups with feature
    sums ``sums`` (B, F) (group 1 of size n). z_j uses the pooled standard deviation sd_j, which
    every permutation shares, so the sums alone determine it."""
    diff = sums / n - (tot - sums) / m
    z = diff / (sd * np.sqrt(1.0 / n + 1.0 / m))
    return np.abs(z).max(axis=-1), np.sum(z[..., :k_mom] ** 2, axis=-1)


def _perm_p(stat, obs):
    """(1 + #{stat >= obs}) / (1 + len(stat))."""
    return (1 + np.sum(stat >= obs)) / (1 + stat.shape[0])


def permutation_test_bytes(n: int, m: int, d: int) -> float:
    """Upper estimate of the bytes :func:`two_sample_test` holds for n samples and m reference
    draws in dimension d: the pooled (n + m, F) features (a few copies) and, per batch of
    permutations, the (B, n + m) selection matrix with its random keys and argsort."""
    F = d + (d * (d + 1) // 2 if d <= 8 else d) + 2 * _FREQS * len(_BANDWIDTHS)
    N = float(n) + float(m)
    return 8.0 * N * (4 * F + 2 * d + 4 * _BATCH)


def two_sample_test(x, ref, *, permutations=500, seed=0) -> tuple[float, float]:
    """(statistic, p_value) of the permutation test of ``x`` (n, d) against ``ref`` (m, d) (module
    docstring); statistic is max_j |z_j|. Deterministic given ``seed``."""
    x = as_float_array(x, "samples", ndim=2)
    ref = as_float_array(ref, "ref", ndim=2)
    if x.shape[1] != ref.shape[1]:
        raise ValueError(f"samples have d = {x.shape[1]} but the reference has d = {ref.shape[1]}")
    if (
        isinstance(permutations, bool)
        or not isinstance(permutations, numbers.Integral)
        or permutations < 19
    ):
        raise ValueError(f"permutations must be an int >= 19, got {permutations!r}")
    n, m, d = x.shape[0], ref.shape[0], x.shape[1]
    rng = as_generator(seed)
    pooled = np.concatenate([x, ref])
    centre = pooled.mean(axis=0)
    scale = pooled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    omegas = np.concatenate([rng.normal(size=(d, _FREQS)) / h for h in _BANDWIDTHS], axis=1)
    f = _features(pooled, omegas, centre, scale, d <= 8)
    k_mom = f.shape[1] - 2 * omegas.shape[1]
    tot = f.sum(axis=0)
    sd = f.std(axis=0)
    keep = sd > 1e-12 * max(1.0, float(np.max(sd)))  # a constant feature carries no information
    f, tot, sd = f[:, keep], tot[keep], sd[keep]
    k_mom = int(np.sum(keep[:k_mom]))
    obs1, obs2 = _stats(f[:n].sum(axis=0), n, m, tot, sd, k_mom)
    perm1, perm2 = [], []
    done = 0
    while done < permutations:
        b = min(_BATCH, permutations - done)
        sel = np.zeros((b, n + m))
        np.put_along_axis(sel, np.argsort(rng.random((b, n + m)), axis=1)[:, :n], 1.0, axis=1)
        s1, s2 = _stats(sel @ f, n, m, tot, sd, k_mom)
        perm1.append(s1)
        perm2.append(s2)
        done += b
    perm1, perm2 = np.concatenate(perm1), np.concatenate(perm2)
    # min-p combination of the two statistics, calibrated by the same permutations
    all1, all2 = np.append(perm1, obs1), np.append(perm2, obs2)
    rank = lambda allv, v: np.sum(allv[None, :] >= v[:, None], axis=1) / allv.shape[0]  # noqa: E731
    q_perm = np.minimum(rank(all1, perm1), rank(all2, perm2))
    q_obs = min(_perm_p(perm1, obs1), _perm_p(perm2, obs2))
    return float(obs1), float((1 + np.sum(q_perm <= q_obs)) / (1 + permutations))


def reference_samples(path, n, y=None, w=1.0, target="data", *, seed=0, steps=200):
    """n draws of the exact ``target`` law (``TARGETS``) for class y (None: the marginal) and CFG
    weight w on ``path`` (a GMMPath)."""
    from .experiments import tilted
    from .sampling import sample

    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if target == "data":
        return path.mixture.sample(n, seed=seed, y=y)[0]
    if target == "tilted":
        if y is None:
            raise ValueError("target 'tilted' needs a class y")
        return tilted.sample(path, y, w, n, seed=seed).x
    field = path.field(y) if (y is None or w == 1.0) else path.cfg(y, w)
    if target == "ode":
        return sample(field, n, sampler="rk4", steps=steps, seed=seed)
    return sample(field, n, sampler="euler_maruyama", sigma="ddpm", steps=steps, seed=seed)


def check_samples(
    samples,
    problem,
    y=None,
    w=1.0,
    target="data",
    *,
    schedule=None,
    alpha=0.01,
    n_ref=None,
    permutations=500,
    seed=0,
    steps=200,
) -> SampleReport:
    """Two-sample test of a sampler's ``samples`` (n, d) against the exact law they should follow.

    problem: a problem name, a .toml file, a LabeledGMM or a GMMPath (``refcfg.problems.resolve``);
    y: the class the samples were drawn for (None: the marginal / unconditional law); w: the CFG
    weight they were drawn with (w = 1 no guidance; diffusers' guidance_scale s is w); target: one
    of ``TARGETS`` ("data" = p(x|y); for w != 1 use "ode" or "sde", refcfg's exact-field
    integration with ``steps`` steps; "tilted" for comparison). schedule: the path's schedule for
    the "ode"/"sde" targets (default linear). alpha: the level; n_ref: reference size (default n);
    permutations, seed: of the permutation null (module docstring).

    Returns a :class:`SampleReport`; ``passed`` is False when p <= alpha."""
    from . import metrics
    from .problems import resolve

    x = as_float_array(samples, "samples", ndim=2)
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or inf")
    if x.shape[0] < 20:
        raise ValueError(f"samples must have at least 20 rows, got {x.shape[0]}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if isinstance(w, bool) or not isinstance(w, numbers.Real) or not np.isfinite(w):
        raise ValueError(f"w must be a finite number, got {w!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    res = resolve(problem, schedule)
    path = res.path
    if x.shape[1] != path.mixture.d:
        raise ValueError(
            f"samples have shape {x.shape} but the problem needs (n, {path.mixture.d})"
        )
    C = len(path.mixture.classes)
    if y is not None and (
        isinstance(y, bool) or not isinstance(y, numbers.Integral) or not 0 <= y < C
    ):
        raise ValueError(f"y must be None or a class index in [0, {C}), got {y!r}")
    if w != 1.0 and y is None:
        raise ValueError("w != 1 needs a class y (CFG guides towards a class)")
    if target == "tilted" and y is None:
        raise ValueError("target 'tilted' needs a class y")
    n_ref = x.shape[0] if n_ref is None else n_ref
    if isinstance(n_ref, bool) or not isinstance(n_ref, numbers.Integral) or n_ref < 20:
        raise ValueError(f"n_ref must be an int >= 20, got {n_ref!r}")
    from ._limits import require_memory

    require_memory(
        permutation_test_bytes(x.shape[0], int(n_ref), x.shape[1]) + 8.0 * int(n_ref) * x.shape[1],
        f"testing {x.shape[0]} samples against {int(n_ref)} reference draws (d = {x.shape[1]})",
        "the number of samples or n_ref",
    )
    ss = np.random.SeedSequence(seed)
    ref_seed, test_seed, ed_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(3))
    ref = reference_samples(path, int(n_ref), y, float(w), target, seed=ref_seed, steps=steps)
    stat, p = two_sample_test(x, ref, permutations=permutations, seed=test_seed)
    sd = ref.std(axis=0)
    cx, cr = np.cov(x.T).reshape(x.shape[1], -1), np.cov(ref.T).reshape(x.shape[1], -1)
    effects = {
        "energy_distance": float(metrics.energy_distance(x, ref, max_n=2000, seed=ed_seed)),
        "mean_error_sd": float(np.max(np.abs(x.mean(axis=0) - ref.mean(axis=0)) / sd)),
        "cov_rel_error": float(np.linalg.norm(cx - cr) / np.linalg.norm(cr)),
    }
    if y is not None:
        effects["class_confidence"] = float(metrics.class_confidence(x, path.mixture, y).mean_prob)
        effects["class_confidence_ref"] = float(
            metrics.class_confidence(ref, path.mixture, y).mean_prob
        )
    return SampleReport(
        passed=bool(p > alpha),
        p_value=float(p),
        statistic=float(stat),
        alpha=float(alpha),
        n=int(x.shape[0]),
        n_ref=int(n_ref),
        permutations=int(permutations),
        seed=int(seed),
        target=target,
        problem=res.label,
        y=None if y is None else int(y),
        w=float(w),
        effects=effects,
    )
