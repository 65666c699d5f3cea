"""Public hypothesis strategies and assertion helpers for testing guidance code against exact fields.

Strategies (all shrink toward small, simple problems: one component, d = 1, isotropic unit-ish
covariances, zero means, equal weights, t = 0 / small w):

- :func:`gmms` -- valid :class:`refcfg.GMM` objects with a bounded covariance condition number;
- :func:`labeled_gmms` -- valid :class:`refcfg.LabeledGMM` objects (classes share d);
- :func:`schedules` -- named schedules, with their parameters ("polynomial" n, "vp" beta_min/max);
- :func:`paths` -- :class:`refcfg.GMMPath` (a labeled GMM under a schedule);
- :func:`times` -- t in [0, 1] with or without the endpoints;
- :func:`points` -- (N, d) float64 arrays; :func:`labels` -- (N,) int labels with NULL entries;
- :func:`guidance_weights` -- CFG weights w in the notes' convention (eq. 65; w = 1 + omega).

Assertion helpers: :func:`assert_field_matches` (``check_field`` + AssertionError with the text report)
and :func:`assert_fields_close` (two arrays, row-wise norms). ``exact_values`` gives the exact reference.

Requires hypothesis (imported with this module; ``import refcfg`` does not import it).
"""

from __future__ import annotations

import math

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("refcfg.testing needs hypothesis: pip install hypothesis") from exc

from ._validation import NULL
from .schedules import SCHEDULES
from .validate import check_field, exact_values

__all__ = [
    "gmms",
    "labeled_gmms",
    "schedules",
    "paths",
    "times",
    "points",
    "labels",
    "guidance_weights",
    "assert_field_matches",
    "assert_fields_close",
    "exact_values",
    "condition_number",
    "SCHEDULE_NAMES",
    "COV_TYPES",
]

SCHEDULE_NAMES = tuple(SCHEDULES)
"""Every named schedule of ``refcfg.schedules.SCHEDULES`` (a new schedule is drawn automatically)."""
COV_TYPES = ("isotropic", "diag", "full")


def _int_strategy(value, name):
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return st.just(int(value))
    raise TypeError(f"{name} must be a positive int or a hypothesis strategy, got {value!r}")


def _check_range(lo, hi, name):
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"{name} must satisfy 0 < low <= high (finite), got ({lo!r}, {hi!r})")


def _rotation(draw, d):
    """A rotation: the product of Givens rotations G(i, j, theta_ij), theta_ij in [-pi, pi] over
    all pairs i < j (every rotation of R^d is reachable); shrinks to the identity."""
    Q = np.eye(d)
    for i in range(d):
        for j in range(i + 1, d):
            th = draw(st.floats(-math.pi, math.pi))
            c, s = math.cos(th), math.sin(th)
            G = np.eye(d)
            G[i, i] = G[j, j] = c
            G[i, j], G[j, i] = -s, s
            Q = Q @ G
    return Q


def gmms(
    *,
    d=st.integers(1, 3),
    n_components=st.integers(1, 4),
    cov_types=COV_TYPES,
    max_condition: float = 20.0,
    variance=(0.05, 2.0),
    mean_scale: float = 3.0,
    min_weight_ratio: float = 0.1,
):
    """Strategy for valid, well-conditioned :class:`refcfg.GMM` objects.

    d, n_components: ints or integer strategies. cov_types: subset of ("isotropic", "diag", "full").
    Each covariance has eigenvalues s exp(u_i), s in ``variance``, u_i in [0, log max_condition], so
    its condition number is <= max_condition (and every eigenvalue lies in
    [variance[0], variance[1] max_condition]); full covariances are rotated by a product of Givens
    rotations. Means are uniform in [-mean_scale, mean_scale]^d; weights are proportional to
    numbers in [min_weight_ratio, 1]. Shrinks to K = 1, d = 1, isotropic, zero mean.
    Arguments are checked here (ValueError / TypeError), not at the first draw.
    """
    if not 1.0 <= max_condition < math.inf:
        raise ValueError(f"max_condition must be a finite number >= 1, got {max_condition!r}")
    _check_range(*variance, "variance")
    if not 0 < min_weight_ratio <= 1:
        raise ValueError(f"min_weight_ratio must be in (0, 1], got {min_weight_ratio!r}")
    if not (math.isfinite(mean_scale) and mean_scale >= 0):
        raise ValueError(f"mean_scale must be a finite number >= 0, got {mean_scale!r}")
    bad = set(cov_types) - set(COV_TYPES)
    if not cov_types or bad:
        raise ValueError(f"cov_types must be a non-empty subset of {COV_TYPES}, got {cov_types!r}")
    return _gmms(
        _int_strategy(d, "d"),
        _int_strategy(n_components, "n_components"),
        [c for c in COV_TYPES if c in cov_types],
        float(max_condition),
        tuple(float(v) for v in variance),
        float(mean_scale),
        float(min_weight_ratio),
    )


@st.composite
def _gmms(draw, d, n_components, cov_types, max_condition, variance, mean_scale, min_weight_ratio):
    from .mixture import GMM

    dd = draw(d)
    K = draw(n_components)
    cov_type = draw(st.sampled_from(cov_types))
    weights = np.array(draw(st.lists(st.floats(min_weight_ratio, 1.0), min_size=K, max_size=K)))
    weights = weights / weights.sum()
    means = np.array(
        draw(st.lists(st.floats(-mean_scale, mean_scale), min_size=K * dd, max_size=K * dd))
    ).reshape(K, dd)
    base = np.array(draw(st.lists(st.floats(*variance), min_size=K, max_size=K)))
    logc = math.log(max_condition)
    if cov_type == "isotropic":
        covs = base
    else:
        u = np.array(
            draw(st.lists(st.floats(0.0, logc), min_size=K * dd, max_size=K * dd))
        ).reshape(K, dd)
        lam = base[:, None] * np.exp(u)
        if cov_type == "diag":
            covs = lam
        else:
            covs = np.empty((K, dd, dd))
            for k in range(K):
                Q = _rotation(draw, dd)
                c = (Q * lam[k]) @ Q.T
                covs[k] = 0.5 * (c + c.T)
    return GMM(weights, means, covs)


def labeled_gmms(
    *,
    n_classes=st.integers(1, 3),
    d=st.integers(1, 3),
    n_components=st.integers(1, 3),
    min_class_ratio: float = 0.1,
    **gmm_kwargs,
):
    """Strategy for valid :class:`refcfg.LabeledGMM` objects: ``n_classes`` classes (int or
    strategy), each a :func:`gmms` draw of the same dimension d; class probabilities proportional to
    numbers in [min_class_ratio, 1]. Other keywords go to :func:`gmms`. Shrinks to one class,
    K = 1, d = 1."""
    if not 0 < min_class_ratio <= 1:
        raise ValueError(f"min_class_ratio must be in (0, 1], got {min_class_ratio!r}")
    gmms(**gmm_kwargs)  # check the keywords now
    return _labeled_gmms(
        _int_strategy(n_classes, "n_classes"),
        _int_strategy(d, "d"),
        n_components,
        float(min_class_ratio),
        gmm_kwargs,
    )


@st.composite
def _labeled_gmms(draw, n_classes, d, n_components, min_class_ratio, gmm_kwargs):
    from .mixture import LabeledGMM

    C = draw(n_classes)
    dd = draw(d)
    classes = [draw(gmms(d=dd, n_components=n_components, **gmm_kwargs)) for _ in range(C)]
    p = np.array(draw(st.lists(st.floats(min_class_ratio, 1.0), min_size=C, max_size=C)))
    return LabeledGMM(classes, p / p.sum())


def schedules(names=SCHEDULE_NAMES):
    """Strategy for named :class:`refcfg.Schedule` objects from ``names``; "polynomial" draws n in
    [1, 4], "vp" draws beta_min in [0.05, 1] and beta_max = beta_min + [1, 20]. Shrinks to the first
    name ("linear" by default)."""
    bad = set(names) - set(SCHEDULE_NAMES)
    if not names or bad:
        raise ValueError(f"names must be a non-empty subset of {SCHEDULE_NAMES}, got {names!r}")
    return _schedules(list(names))


@st.composite
def _schedules(draw, names):
    from .schedules import schedule

    name = draw(st.sampled_from(names))
    if name == "polynomial":
        return schedule(name, n=draw(st.floats(1.0, 4.0)))
    if name == "vp":
        bmin = draw(st.floats(0.05, 1.0))
        return schedule(name, beta_min=bmin, beta_max=bmin + draw(st.floats(1.0, 20.0)))
    return schedule(name)


@st.composite
def paths(draw, mixtures=None, schedule_names=SCHEDULE_NAMES):
    """A :class:`refcfg.GMMPath` of a :func:`labeled_gmms` draw (or of the ``mixtures`` strategy)
    under a :func:`schedules` draw."""
    from .paths import GMMPath

    mix = draw(labeled_gmms() if mixtures is None else mixtures)
    return GMMPath(mix, draw(schedules(schedule_names)))


def times(*, endpoints: bool = True, margin: float = 1e-3):
    """Times t (floats). endpoints=True: t in [0, 1], with 0 and 1 drawn often; endpoints=False:
    t in [margin, 1 - margin] (away from the singular ends of eq. 41/42's conversions).
    Shrinks toward 0 (or margin)."""
    if endpoints:
        return st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
    if not 0 < margin < 0.5:
        raise ValueError(f"margin must be in (0, 0.5) when endpoints=False, got {margin!r}")
    return st.floats(margin, 1.0 - margin)


def points(d, *, n=st.integers(1, 16), scale: float = 5.0):
    """(N, d) float64 arrays with entries in [-scale, scale]; d and n are ints or strategies.
    Shrinks to one point at the origin."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    shape = st.tuples(_int_strategy(n, "n"), _int_strategy(d, "d"))
    return hnp.arrays(np.float64, shape, elements=st.floats(-scale, scale, width=64))


def labels(n_classes: int, n: int, *, null: bool = True):
    """(n,) int64 label arrays in 0..n_classes-1, with ``refcfg.NULL`` (-1) entries when null=True.
    Shrinks to all zeros."""
    if n_classes < 1 or n < 1:
        raise ValueError(f"n_classes and n must be >= 1, got n_classes={n_classes}, n={n}")
    top = n_classes if null else n_classes - 1  # the value n_classes stands for NULL

    def to_array(values):
        a = np.array(values, dtype=np.int64)
        a[a == n_classes] = NULL
        return a

    # NULL is drawn as the largest value so that shrinking goes toward class 0
    return st.lists(st.integers(0, top), min_size=n, max_size=n).map(to_array)


def guidance_weights(min_w: float = 0.0, max_w: float = 8.0):
    """CFG weights w in the notes' convention (u~ = w u(x|y) + (1 - w) u(x|null), eq. 65; w = 1 is no
    guidance, Ho-Salimans omega = w - 1). Shrinks toward min_w."""
    if not (math.isfinite(min_w) and math.isfinite(max_w) and min_w <= max_w):
        raise ValueError(f"need finite min_w <= max_w, got ({min_w!r}, {max_w!r})")
    return st.floats(min_w, max_w)


def condition_number(gmm) -> float:
    """Largest covariance condition number over the components of a GMM."""
    return float(np.max(gmm.eigvals.max(axis=1) / gmm.eigvals.min(axis=1)))


# ----------------------------------------------------------------------------------------------
# assertion helpers
# ----------------------------------------------------------------------------------------------


def assert_field_matches(fn, problem="two-class-2d", kind: str = "velocity", **kwargs):
    """Assert that fn(x, t, y) matches the exact ``kind`` field: runs
    :func:`refcfg.validate.check_field` with the same arguments and raises AssertionError with the
    text report (errors per time, worst point, diagnosis of known mistakes) when it fails.
    Returns the report."""
    return check_field(fn, problem, kind, **kwargs).raise_if_failed()


def assert_fields_close(
    got, expected, *, rtol: float = 1e-6, atol: float = 1e-9, err_msg: str = ""
):
    """Assert ||got_n - expected_n||_2 <= atol + rtol ||expected_n||_2 for every row n of two (N, d)
    arrays (NaN/inf in got fails). The message names the number of failing rows and the worst one."""
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        raise AssertionError(f"{err_msg}shape mismatch: got {g.shape}, expected {e.shape}")
    g2, e2 = np.atleast_2d(g), np.atleast_2d(e)
    if g2.ndim > 2:
        g2, e2 = g2.reshape(-1, g2.shape[-1]), e2.reshape(-1, e2.shape[-1])
    with np.errstate(all="ignore"):
        num = np.linalg.norm(g2 - e2, axis=-1)
        den = np.linalg.norm(e2, axis=-1)
    num = np.where(np.all(np.isfinite(g2), axis=-1), num, np.inf)
    bad = ~(num <= atol + rtol * den)
    if np.any(bad):
        rel = num / np.maximum(den, 1e-300)
        j = int(np.argmax(np.where(bad, rel, -1.0)))
        raise AssertionError(
            f"{err_msg}{int(bad.sum())} of {bad.size} rows differ (tolerance ||d|| <= {atol:g} + "
            f"{rtol:g} ||expected||); worst row {j}: got {g2[j].tolist()}, expected "
            f"{e2[j].tolist()}, abs err {num[j]:.3g}, rel err {rel[j]:.3g}"
        )


# ----------------------------------------------------------------------------------------------
# vector prompts (``refcfg.vector_prompts``)
# ----------------------------------------------------------------------------------------------

__all__ += ["vector_prompt_families", "vector_prompts"]


def vector_prompt_families(
    *,
    d=st.integers(1, 3),
    m=st.integers(1, 3),
    n_components=st.integers(1, 3),
    coef_scale: float = 2.0,
    **gmm_kwargs,
):
    """:class:`refcfg.vector_prompts.VectorPromptFamily` objects: the prompt law (weights, m_c, S_c)
    and the noise covariances Sigma_c drawn by :func:`gmms` (``gmm_kwargs`` passed on), the maps
    A_c (d, m) with entries in [-coef_scale, coef_scale]. d, m and n_components are ints or
    strategies. Shrinks to one component with A = 0."""
    if not (math.isfinite(coef_scale) and coef_scale >= 0):
        raise ValueError(f"coef_scale must be a finite number >= 0, got {coef_scale!r}")
    return _vector_prompt_families(
        _int_strategy(d, "d"),
        _int_strategy(m, "m"),
        _int_strategy(n_components, "n_components"),
        coef_scale,
        gmm_kwargs,
    )


@st.composite
def _vector_prompt_families(draw, d, m, n_components, coef_scale, gmm_kwargs):
    from .vector_prompts import VectorPromptFamily

    dd, mm, K = draw(d), draw(m), draw(n_components)
    prior = draw(gmms(d=st.just(mm), n_components=st.just(K), **gmm_kwargs))
    noise = draw(gmms(d=st.just(dd), n_components=st.just(K), **gmm_kwargs))
    A = draw(
        hnp.arrays(np.float64, (K, dd, mm), elements=st.floats(-coef_scale, coef_scale, width=64))
    )
    return VectorPromptFamily(prior.weights, prior.means, prior.covs, A, noise.means, noise.covs)


def vector_prompts(family, n: int, *, scale: float = 3.0):
    """(n, m) prompt arrays for ``family`` (entries in [-scale, scale] around 0); shrinks to zeros."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return hnp.arrays(np.float64, (n, family.m), elements=st.floats(-scale, scale, width=64))
