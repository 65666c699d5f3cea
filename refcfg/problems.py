"""Named benchmark problems and problem files.

``problem(name)`` returns a LabeledGMM:

- "two-class-2d" (default): two overlapping 2-D classes of two full-covariance components each, so
  that guidance visibly changes the samples.
- "mit-symmetric": 5 modes N(m_k, I) on a circle of radius 10, one class each (MIT 6.S184 labs'
  ``symmetric_2D(nmodes=5, std=1, scale=10)``).
- "gauss-1d": two 1-D Gaussian classes N(-1, 1) and N(+1, 0.5^2).
- "tree": the two-class fractal tree of Karras et al. 2024 (arXiv 2406.02507, Appendix C; 2 x 1016
  full-covariance components), see ``refcfg._tree`` and docs/problems-tree.md.
- "highdim": d = 64, two classes of 16 full-covariance components each (seeded construction).
- "digits": the 8 x 8 handwritten digits bundled with scikit-learn (d = 64, 10 classes, 1797
  images scaled to [-1, 1]), every image a point mass (``from_points``, cov = 0): the exact
  "ideal denoiser" of the training set. Needs the "data" extra (scikit-learn).
- "digits-gmm": the same images, 10 full-covariance components per class fitted by scikit-learn
  (``fit``, ``DIGITS_GMM``: reg_covar = 1e-3, random_state = 0). Needs the "data" extra.

``from_points(X, labels, cov=0.0)`` and ``fit(X, labels, components=..., covariance_type=...)``
build such problems from any labeled point cloud (docs/real-data.md).

``load_problem(path)`` reads a TOML file::

    [problem]
    name = "my-problem"            # optional
    class_probs = [0.5, 0.5]       # optional, uniform by default

    [[classes]]
    weights = [0.5, 0.5]
    means = [[-1.0, 0.0], [1.0, 0.0]]
    covs = [[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.1], [0.1, 0.5]]]   # or [[d] diagonals] or [variances]

Every bad field raises ValueError naming it, e.g. ``classes[1].covs``.

``resolve(problem, schedule)`` is the one place where a problem (a name, a ``.toml`` path, a GMM, a
LabeledGMM or a GMMPath) and a schedule (a name, ``"name:key=value,..."``, a Schedule or None) become a
GMMPath; every command and API function that takes them calls it.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ._validation import X_MAX, numeric_tree, read_toml_file
from .mixture import GMM, LabeledGMM

if TYPE_CHECKING:  # paths imports this module
    from .paths import GMMPath

__all__ = [
    "problem",
    "load_problem",
    "resolve",
    "resolve_schedule",
    "ResolvedProblem",
    "PROBLEMS",
    "DEFAULT_PROBLEM",
    "from_points",
    "fit",
    "FitResult",
    "DIGITS_GMM",
    "field_bytes",
]

DEFAULT_PROBLEM = "two-class-2d"


def field_bytes(n: int, K: int, d: int) -> float:
    """Upper estimate of the bytes one exact-field evaluation at ``n`` points of a mixture with ``K``
    components in dimension ``d`` holds at once: (n, K) responsibilities and log-densities, a few
    (n, d) results, and up to 8 float64 (n, K, d) temporaries, which the field code processes in
    chunks of at most 2**22 elements (so that term stops growing beyond n K d = 2**22).
    docs/limits.md compares it with measured peaks."""
    nf, Kf, df = float(n), float(K), float(d)
    return 8.0 * nf * (Kf + 16.0 * df + 16.0) + 64.0 * min(nf * Kf * df, float(1 << 22))


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _cov2(sx: float, sy: float, theta: float) -> np.ndarray:
    R = _rot(theta)
    return R @ np.diag([sx * sx, sy * sy]) @ R.T


def _two_class_2d() -> LabeledGMM:
    # Class 0 lies up-left, class 1 down-right; they overlap near the origin, so that exact samples of
    # class 0 have mean Bayes confidence E p(y=0|x) ~ 0.90 and guidance (w > 1) visibly sharpens them.
    c0 = GMM(
        [0.6, 0.4], [[-0.9, 0.6], [0.12, 1.08]], [_cov2(1.0, 0.45, 0.5), _cov2(0.8, 0.5, -0.3)]
    )
    c1 = GMM(
        [0.5, 0.5], [[0.9, -0.48], [-0.18, -0.96]], [_cov2(0.9, 0.5, -0.6), _cov2(1.0, 0.4, 0.2)]
    )
    return LabeledGMM([c0, c1], [0.5, 0.5])


def _mit_symmetric(nmodes: int = 5, std: float = 1.0, scale: float = 10.0) -> LabeledGMM:
    angles = 2 * np.pi * np.arange(nmodes) / nmodes
    means = scale * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    classes = [GMM([1.0], means[k : k + 1], [std * std]) for k in range(nmodes)]
    return LabeledGMM(classes, np.full(nmodes, 1.0 / nmodes))


def _gauss_1d() -> LabeledGMM:
    return LabeledGMM([GMM([1.0], [[-1.0]], [1.0]), GMM([1.0], [[1.0]], [0.25])], [0.5, 0.5])


def _tree() -> LabeledGMM:
    from ._tree import tree_parts

    parts, probs = tree_parts()
    return LabeledGMM([GMM(w, m, S) for (w, m, S) in parts], probs)


def _highdim(d: int = 64, per_class: int = 16, seed: int = 20240601) -> LabeledGMM:
    rng = np.random.default_rng(seed)
    classes = []
    for c in range(2):
        centre = np.zeros(d)
        centre[c] = 4.0  # classes separated along axis c
        means = centre + rng.standard_normal((per_class, d))
        covs = []
        for _ in range(per_class):
            Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
            lam = np.exp(rng.uniform(np.log(0.05), np.log(1.0), d))  # condition number <= 20
            covs.append((Q * lam) @ Q.T)
        classes.append(GMM(np.full(per_class, 1.0 / per_class), means, np.array(covs)))
    return LabeledGMM(classes, [0.5, 0.5])


def from_points(X, labels, cov: float = 0.0) -> LabeledGMM:
    """The per-class empirical law of a labeled point cloud: class y is uniform over its points
    (each a component N(x_i, cov I); cov = 0, the default, makes them point masses) and p(y) is the
    class frequency. X (N, d), labels (N,) ints in 0..C-1 with every class present."""
    from ._validation import as_real
    from .datasets import labeled_points

    X, lab, C = labeled_points(X, labels)
    cov = as_real(cov, "cov", lo=0.0)
    counts = np.bincount(lab, minlength=C)
    classes = [GMM(np.full(n, 1.0 / n), X[lab == c], np.full(n, cov)) for c, n in enumerate(counts)]
    return LabeledGMM(classes, counts / counts.sum())


class FitResult(NamedTuple):
    """``fit``'s result: the LabeledGMM, the mean log-likelihood per point of the training data under
    its class's fitted mixture (nats; (1/N) sum_i log p(x_i | y_i)), and each class's
    (``refcfg.datasets.ClassFit``: parameters, mean log-likelihood, points, converged)."""

    mixture: LabeledGMM
    log_likelihood: float
    classes: list


def fit(
    X,
    labels,
    components: int = 10,
    covariance_type: str = "full",
    reg_covar: float = 1e-3,
    seed: int = 0,
) -> FitResult:
    """Per-class Gaussian mixtures fitted by scikit-learn's ``GaussianMixture`` (the "data" extra),
    ``random_state=seed``; p(y) is the class frequency. ``covariance_type``: "full", "diag",
    "spherical" or "tied"; ``reg_covar`` (> 0) is added to the covariances' diagonals."""
    from .datasets import fit_class_mixtures

    fits = fit_class_mixtures(X, labels, components, covariance_type, reg_covar, seed)
    return _fit_result(fits)


def _fit_result(fits) -> FitResult:
    counts = np.array([f.n_points for f in fits], dtype=np.float64)
    mixture = LabeledGMM([GMM(f.weights, f.means, f.covs) for f in fits], counts / counts.sum())
    ll = float(sum(f.log_likelihood * f.n_points for f in fits) / counts.sum())
    return FitResult(mixture, ll, list(fits))


DIGITS_GMM = {"components": 10, "covariance_type": "full", "reg_covar": 1e-3, "seed": 0}
"""The fit of the "digits-gmm" problem."""


def _digits() -> LabeledGMM:
    from .datasets import load_digits

    return from_points(*load_digits())


@functools.lru_cache(maxsize=1)
def _digits_fits():
    from .datasets import fit_class_mixtures, load_digits

    return tuple(fit_class_mixtures(*load_digits(), **DIGITS_GMM))


def digits_gmm_fit() -> FitResult:
    """The "digits-gmm" fit (cached: scikit-learn runs once per process) with its log-likelihood."""
    return _fit_result(_digits_fits())


_BUILDERS = {
    "two-class-2d": _two_class_2d,
    "mit-symmetric": _mit_symmetric,
    "gauss-1d": _gauss_1d,
    "tree": _tree,
    "highdim": _highdim,
    "digits": _digits,
    "digits-gmm": lambda: digits_gmm_fit().mixture,
}
PROBLEMS = tuple(_BUILDERS)


def problem(name: str = DEFAULT_PROBLEM) -> LabeledGMM:
    """The named problem as a LabeledGMM; a path to a ``.toml`` file is loaded with load_problem."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"problem name must be a str, got {name!r}")
    if os.fspath(name).endswith(".toml"):
        return load_problem(name)
    if name not in _BUILDERS:
        raise ValueError(
            f"unknown problem {name!r}; known: {', '.join(PROBLEMS)} "
            f"(or a path to a .toml problem file)"
        )
    return _BUILDERS[name]()


_by_name = problem  # for resolve(), whose argument is also called problem


def load_problem(path) -> LabeledGMM:
    """A LabeledGMM from a TOML problem file (format in this module's docstring).

    Every error is a ValueError that names the file and the field: a file that is not UTF-8,
    nested too deeply or too large (``refcfg._validation.read_toml_file``), a number written as a
    string or a boolean, a non-finite number, a mean beyond 1e50 or a covariance eigenvalue beyond
    1e100 (the path's points would leave the range |x| <= 1e100 in which the fields' quadratic
    forms are computed without overflow), and whatever :class:`GMM` and :class:`LabeledGMM`
    refuse."""
    path = Path(path)
    doc = read_toml_file(path, "problem file")
    pf = f"problem file {str(path)!r}"
    unknown = set(doc) - {"problem", "classes"}
    if unknown:
        raise ValueError(
            f"{pf}: unknown top-level field(s) {sorted(unknown)}; "
            f"expected [problem] and [[classes]]"
        )
    header = doc.get("problem", {})
    if not isinstance(header, dict):
        raise ValueError(f"{pf}: field 'problem' must be a table")
    unknown = set(header) - {"name", "class_probs", "description"}
    if unknown:
        raise ValueError(f"{pf}: unknown field(s) {sorted('problem.' + k for k in unknown)}")
    classes = doc.get("classes")
    if not isinstance(classes, list) or not classes:
        raise ValueError(f"{pf}: field 'classes' must be a non-empty array of tables ([[classes]])")
    gmms = []
    for i, entry in enumerate(classes):
        where = f"classes[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{pf}: field {where} must be a table")
        for key in ("weights", "means", "covs"):
            if key not in entry:
                raise ValueError(f"{pf}: field {where}.{key} is missing")
        unknown = set(entry) - {"weights", "means", "covs", "name"}
        if unknown:
            raise ValueError(f"{pf}: unknown field(s) {sorted(where + '.' + k for k in unknown)}")
        arrays = {}
        for key in ("weights", "means", "covs"):
            try:
                arrays[key] = np.asarray(
                    numeric_tree(entry[key], f"{where}.{key}"), dtype=np.float64
                )
            except ValueError as exc:
                if str(exc).startswith("field "):
                    raise ValueError(f"{pf}: {exc}") from None
                raise ValueError(
                    f"{pf}: field {where}.{key} must be a (nested) array of "
                    f"numbers with consistent lengths"
                ) from None
        try:
            gmm = GMM(arrays["weights"], arrays["means"], arrays["covs"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{pf}: field {where}: {exc}") from None
        _require_in_range(gmm, f"{pf}: field {where}")
        gmms.append(gmm)
    probs = header.get("class_probs")
    if probs is not None:
        try:
            probs = numeric_tree(probs, "problem.class_probs")
        except ValueError as exc:
            raise ValueError(f"{pf}: {exc}") from None
    try:
        return LabeledGMM(gmms, probs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{pf}: field problem.class_probs or classes: {exc}") from None


MEAN_MAX = X_MAX**0.5
"""Largest |mean| entry of a problem file: the path's points x_t = alpha_t z + beta_t eps must stay
within |x| <= X_MAX = 1e100 with room for the spread."""
COV_MAX = X_MAX
"""Largest covariance eigenvalue of a problem file (standard deviation 1e50, see MEAN_MAX)."""


def _require_in_range(gmm: GMM, where: str) -> None:
    m = float(np.max(np.abs(gmm.means)))
    lam = float(np.max(gmm.eigvals))
    if not m <= MEAN_MAX:
        raise ValueError(
            f"{where}.means has an entry of size {m:.3g} > {MEAN_MAX:.0e}: the "
            f"path's points would leave |x| <= {X_MAX:.0e}, beyond which the fields' "
            f"quadratic forms overflow float64"
        )
    if not lam <= COV_MAX:
        raise ValueError(
            f"{where}.covs has a variance (eigenvalue) {lam:.3g} > {COV_MAX:.0e}: "
            f"samples (|x| ~ sqrt({lam:.3g}) = {lam**0.5:.3g}) would leave "
            f"|x| <= {X_MAX:.0e}, beyond which the fields' quadratic forms overflow "
            f"float64"
        )


# ----------------------------------------------------------------------------------------------
# the one problem / schedule resolver
# ----------------------------------------------------------------------------------------------


class ResolvedProblem(NamedTuple):
    """A resolved problem: the GMMPath, and the name it was given by (None for an object)."""

    path: GMMPath
    name: str | None

    @property
    def mixture(self) -> LabeledGMM:
        """The LabeledGMM of the path."""
        return self.path.mixture

    @property
    def schedule(self):
        """The Schedule of the path."""
        return self.path.schedule

    @property
    def label(self) -> str:
        """The name, or "custom <type>" for a problem given as an object (for messages, reports)."""
        return self.name if self.name is not None else "custom"


def resolve_schedule(schedule=None, *, default="linear"):
    """A Schedule from a Schedule, a schedule name, ``"name:key=value,..."`` (e.g.
    ``"polynomial:n=3"``) or None (``default``). ValueError/TypeError naming ``schedule`` otherwise."""
    from .schedules import Schedule
    from .schedules import schedule as make_schedule

    if schedule is None:
        schedule = default
    if isinstance(schedule, Schedule):
        return schedule
    if not isinstance(schedule, str):
        raise TypeError(f"schedule must be a schedule name or a refcfg Schedule, got {schedule!r}")
    name, _, rest = schedule.partition(":")
    params = {}
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            try:
                if not eq or not key.strip():
                    raise ValueError
                params[key.strip()] = float(value)
            except ValueError:
                raise ValueError(
                    f"schedule parameters must look like name:key=value,..., got {schedule!r}"
                ) from None
    try:
        return make_schedule(name.strip(), **params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"schedule: {exc}") from None


def resolve(problem=DEFAULT_PROBLEM, schedule=None) -> ResolvedProblem:
    """(GMMPath, name) from a problem and a schedule.

    problem: a name of ``PROBLEMS``, a path to a ``.toml`` problem file (str or PathLike), a GMM, a
    LabeledGMM or a GMMPath. schedule: see :func:`resolve_schedule`; None keeps a GMMPath's schedule
    and is "linear" otherwise. The name is the string given (None for an object)."""
    from .mixture import GMM
    from .paths import GMMPath

    if isinstance(problem, GMMPath):
        if schedule is None:
            return ResolvedProblem(problem, None)
        return ResolvedProblem(GMMPath(problem.mixture, resolve_schedule(schedule)), None)
    sched = resolve_schedule(schedule)
    if isinstance(problem, (str, os.PathLike)):
        name = os.fspath(problem)
        return ResolvedProblem(GMMPath(_by_name(name), sched), name)
    if isinstance(problem, (GMM, LabeledGMM)):
        return ResolvedProblem(GMMPath(problem, sched), None)
    raise TypeError(
        f"problem must be a problem name, a .toml path, a GMM, a LabeledGMM or a "
        f"GMMPath, got {type(problem).__name__}"
    )
