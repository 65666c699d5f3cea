"""One grader per lab exercise, and ``grade(fn, exercise, ...)`` that picks it by name.

Each grader compares the student's function with the exact quantity (refcfg's closed forms) at
interior times and at the endpoints t = 0 and t = 1 (a time where the quantity itself is undefined
is left out and the verdict says why) and returns a :class:`refcfg.labs.grade.Grade`. Fields go
through :func:`refcfg.validate.check_field` (its diagnoses: weight convention, swapped labels,
reversed time, a_t and b_t swapped, missing a_t, wrong schedule, sign ...); the other quantities are
compared by :func:`refcfg.labs.grade.compare_cases` with the mistakes listed here. Equation numbers
are those of the MIT 6.S184 lecture notes (Holderrieth and Erives, arXiv 2506.02070).

Conventions (as everywhere in refcfg): x (N, d) float64, t an (N,) array, labels y (N,) ints with
the null label ``refcfg.NULL`` = -1, CFG u~ = w u(x|y) + (1 - w) u(x|null) (eq. 65).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._limits import require_memory
from .._validation import NULL, as_generator, as_label, as_positive_int, as_real
from .grade import Case, Grade, Mistake, _sentence, call_failure, compare_cases, from_report

__all__ = ["grade", "EXERCISES", "POINTS", "TIMES", "NEAR_ZERO", "NEAR_ONE", "point_mass_mixture"]

TIMES = tuple(float(v) for v in np.round(np.linspace(0.0, 1.0, 11), 12))
"""The graders' time grid: 0, 0.1, ..., 1 (both endpoints)."""

NEAR_ZERO = 1e-3
"""The time closest to 0 where a grader of a formula that divides by alpha_t compares (t = 0 itself
is left out there, with the reason)."""

POINTS = np.array([[1.0, 2.0], [-1.5, 0.5], [0.3, -1.0]])
"""The data points z of the conditional-path exercises (one per row)."""

NEAR_ONE = 0.999
"""The time closest to 1 where the conditional exercises compare: at t = 1, p_t(x|z) is the point
mass at z (beta_1 = 0) and u_t(x|z), grad log p_t(x|z) are undefined."""

_ALPHA0 = ("t = 0", "a_t and b_t divide by alpha_0 = 0 there (eq. 41 is singular at t = 0)")
_BETA1 = (
    "t = 1",
    "p_1(x|z) is the point mass at z (beta_1 = 0), where eqs. 20 and 40 divide by "
    "beta_t; t = 0.999 stands for it",
)
_COND_TIMES = TIMES[:-1] + (NEAR_ONE,)


def point_mass_mixture(points=POINTS):
    """The labelled mixture with one point mass per row of ``points`` (class k = z_k): its
    conditional field u_t(x | y = k) is u_t(x | z_k) of eq. 20, which is how the conditional
    exercises are checked by ``check_field``."""
    from ..mixture import GMM, LabeledGMM

    pts = np.asarray(points, dtype=np.float64)
    d = pts.shape[1]
    return LabeledGMM(
        [GMM([1.0], p[None, :], np.zeros((1, d, d))) for p in pts],
        np.full(len(pts), 1.0 / len(pts)),
    )


def _resolve(problem, schedule):
    from ..problems import resolve

    return resolve(problem, schedule).path


def _name(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _check(exercise: str, fn, wrapped, problem, kind, *, extra_skipped=(), **kwargs) -> Grade:
    """check_field on ``wrapped`` (the student's function as fn(x, t, y)), as a Grade."""
    from ..validate import FieldError, check_field

    _points(kwargs["n"], exercise, _resolve(problem, kwargs.get("schedule")))
    name = _name(fn)
    try:
        report = check_field(wrapped, problem, kind, name=name, **kwargs)
    except FieldError as exc:  # the student's function raised or returned something unusable
        where = f"stopped at t = {exc.t:g}" if exc.t is not None else ""
        if exc.code == "raised" and isinstance(exc.__cause__, NotImplementedError):
            code, sentence = call_failure(name, exc.__cause__, "")
            return Grade(exercise, False, sentence, code, where)
        return Grade(exercise, False, _sentence(str(exc).splitlines()[0]), exc.code, where)
    return from_report(exercise, report, extra_skipped=extra_skipped)


def _weight(w) -> float:
    """The guidance weight w: a finite real number (any sign; w = 1 is no guidance)."""
    return as_real(w, "w")


_ARRAYS = 80
"""A bound on the (n, d) float64 arrays a grader holds at once: the cases' inputs and exact values
(up to 12 cases of 7 arrays), the student's outputs and one mistake's values; a mixture's field
adds about 4 per component."""


def _points(n, exercise: str, path=None, d: int = 2) -> int:
    """n, the points per case, checked: a positive int whose arrays fit in memory (refused with a
    ValueError naming n before any work)."""
    n = as_positive_int(n, "n")
    k = 1 if path is None else path.mixture.marginal.K
    d = d if path is None else path.d
    require_memory(8.0 * n * d * (_ARRAYS + 4 * k), f"grading {exercise} on n = {n} points", "n")
    return n


def _batch(n, exercise: str, path) -> int:
    """n, the points per time: at least 2 (the tilted density is compared up to a constant)."""
    n = _points(n, exercise, path)
    if n < 2:
        raise ValueError(f"n must be >= 2 points, got {n}")
    return n


# ---------------------------------------------------------------------------------------------
# lab 1: Gaussian probability paths
# ---------------------------------------------------------------------------------------------


def grade_cosine_schedule(fn: Callable, *, n: int = 16) -> Grade:
    """(alpha, beta, dalpha, dbeta) = cosine_schedule(t): alpha_t = sin(pi t / 2), beta_t =
    cos(pi t / 2) and their time derivatives, each of t's shape (N,); the schedule must meet
    alpha_0 = beta_1 = 0, alpha_1 = beta_0 = 1 (the conditions under eq. 15). Checked at t = 0,
    0.1, ..., 1 (refcfg's "cosine" schedule)."""
    from ..schedules import schedule

    sched = schedule("cosine")
    n = _points(n, "cosine_schedule", d=4)
    h = np.pi / 2

    def exact(t):
        v = sched.values(t)
        return v.alpha, v.beta, v.dalpha, v.dbeta

    cases = [Case(f"t = {t:g}", (np.full(n, t),), exact(np.full(n, t))) for t in TIMES]
    mistakes = [
        Mistake(
            "alpha_beta_swapped",
            "alpha_t and beta_t are swapped: the path must start at the "
            "noise, alpha_0 = 0 and beta_0 = 1, and end at the data, alpha_1 = 1 and beta_1 = 0 "
            "(the conditions under eq. 15).",
            lambda t: (np.cos(h * t), np.sin(h * t), -h * np.sin(h * t), h * np.cos(h * t)),
        ),
        Mistake(
            "chain_rule",
            "the derivatives miss the chain-rule factor pi/2: d/dt sin(pi t/2) = "
            "(pi/2) cos(pi t/2).",
            lambda t: (np.sin(h * t), np.cos(h * t), np.cos(h * t), -np.sin(h * t)),
        ),
        Mistake(
            "dbeta_sign",
            "dbeta_t has the wrong sign: beta_t = cos(pi t/2) decreases, so "
            "dbeta_t = -(pi/2) sin(pi t/2).",
            lambda t: (np.sin(h * t), np.cos(h * t), h * np.cos(h * t), h * np.sin(h * t)),
        ),
    ]
    return compare_cases(
        "cosine_schedule",
        fn,
        cases,
        mistakes,
        what="(alpha_t, beta_t, dalpha_t, dbeta_t)",
        name=_name(fn),
    )


def grade_sample_path(
    fn: Callable, *, schedule="linear", problem="two-class-2d", n: int = 32, seed=0
) -> Grade:
    """x = sample_path(z, t, eps): x_t = alpha_t z + beta_t eps ~ p_t(x|z) = N(alpha_t z,
    beta_t^2 I) (eqs. 15-16), at t = 0, 0.1, ..., 1 on data points z and fixed noise eps."""
    path = _resolve(problem, schedule)
    sched = path.schedule
    n = _points(n, "sample_path", path)
    rng = as_generator(seed)
    z, _ = path.mixture.sample(n, seed=rng)
    eps = rng.standard_normal(z.shape)

    def exact(z, t, e):
        return _noised(sched, z, t, e)[0]

    def at(t):
        al, be, _, _ = _cols(sched, t)
        return al, be

    cases = []
    for t in TIMES:
        tt = np.full(n, t)
        cases.append(Case(f"t = {t:g}", (z.copy(), tt, eps.copy()), exact(z, tt, eps)))

    def swapped(z, t, e):
        al, be = at(t)
        return be * z + al * e

    def variance(z, t, e):
        al, be = at(t)
        return al * z + be * be * e

    def reversed_time(z, t, e):
        return exact(z, 1.0 - t, e)

    # for the linear and cosine schedules alpha_{1-t} = beta_t: reversing time is then the same
    # answer as swapping alpha_t and beta_t, and one sentence names both
    reversal_is_swap = all(
        np.allclose(swapped(*c.args), reversed_time(*c.args), rtol=1e-12, atol=1e-12) for c in cases
    )
    reversal = (
        "time is reversed: x is the path at 1 - t (the diffusion convention, t = 0 data); "
        "in the notes t = 0 is noise and t = 1 is data (eq. 15)."
    )
    mistakes = [
        Mistake(
            "alpha_beta_swapped",
            "alpha_t and beta_t are swapped"
            + (
                " (for this schedule the same as reversing time, the diffusion convention t = 0 "
                "data)"
                if reversal_is_swap
                else ""
            )
            + ": x = beta_t z + alpha_t eps starts at the data and ends at the noise, while "
            "eq. 16 is x = alpha_t z + beta_t eps (t = 0 noise, t = 1 data).",
            swapped,
        ),
    ]
    if not reversal_is_swap:
        mistakes.append(Mistake("time_reversed", reversal, reversed_time))
    mistakes += [
        Mistake(
            "variance_as_std",
            "eps is multiplied by beta_t^2, the variance of p_t(x|z): the "
            "standard deviation beta_t multiplies eps (eq. 16: x = alpha_t z + beta_t eps).",
            variance,
        ),
        Mistake(
            "noise_sign",
            "x = alpha_t z - beta_t eps: it has the right law, but the pairing "
            "with eps that the CFM target dalpha_t z + dbeta_t eps relies on (eq. 31) is broken.",
            lambda z, t, e: exact(z, t, -e),
        ),
    ]
    return compare_cases("sample_path", fn, cases, mistakes, what="x_t", name=_name(fn))


def grade_conditional_velocity(fn: Callable, *, schedule="linear", n: int = 48, seed=0) -> Grade:
    """u = conditional_velocity(x, t, z): u_t(x|z) = (dalpha_t - dbeta_t alpha_t / beta_t) z
    + (dbeta_t / beta_t) x (eq. 20), for x on the conditional path of three points z."""
    mix = point_mass_mixture()
    labels = np.arange(_points(n, "conditional_velocity")) % len(POINTS)
    wrapped = lambda x, t, y: fn(x, t, POINTS[y].copy())  # noqa: E731
    g = _check(
        "conditional_velocity",
        fn,
        wrapped,
        mix,
        "velocity",
        y=labels,
        n=n,
        schedule=schedule,
        seed=seed,
        times=_COND_TIMES,
        extra_skipped=[_BETA1],
    )

    sched = _schedule(schedule)
    exact = _conditional_path(sched).conditional_velocity  # eq. 20

    def mistaken(x, t, z, *, alpha=1.0, power=1):  # the mistakes' formulas, not eq. 20
        al, be, da, db = _cols(sched, t)
        return (da - db * al**alpha / be**power) * z + (db / be**power) * x

    def flow_at_x(x, t, z):
        _, _, da, db = _cols(sched, t)
        return da * z + db * x

    mistakes = [
        Mistake(
            "flow_velocity_at_x",
            "this is the velocity of the flow, dalpha_t z + dbeta_t x_0, "
            "evaluated at x instead of at x_0 = (x - alpha_t z) / beta_t; substituting x_0 gives "
            "eq. 20.",
            flow_at_x,
        ),
        Mistake(
            "missing_alpha",
            "the z coefficient lacks alpha_t: eq. 20 has (dalpha_t - dbeta_t alpha_t / beta_t) z.",
            lambda x, t, z: mistaken(x, t, z, alpha=0.0),
        ),
        Mistake(
            "variance_for_std",
            "it divides by beta_t^2 (the variance) where eq. 20 divides by beta_t.",
            lambda x, t, z: mistaken(x, t, z, power=2),
        ),
    ]
    return _refine(g, fn, _conditional_cases(sched, labels, seed, exact), mistakes)


def grade_conditional_score(fn: Callable, *, schedule="linear", n: int = 48, seed=0) -> Grade:
    """s = conditional_score(x, t, z): grad log p_t(x|z) = -(x - alpha_t z) / beta_t^2 (eq. 40)."""
    mix = point_mass_mixture()
    labels = np.arange(_points(n, "conditional_score")) % len(POINTS)
    wrapped = lambda x, t, y: fn(x, t, POINTS[y].copy())  # noqa: E731
    g = _check(
        "conditional_score",
        fn,
        wrapped,
        mix,
        "score",
        y=labels,
        n=n,
        schedule=schedule,
        seed=seed,
        times=_COND_TIMES,
        extra_skipped=[_BETA1],
    )

    sched = _schedule(schedule)
    exact = _conditional_path(sched).conditional_score  # eq. 40

    def std_for_variance(x, t, z):
        al, be, _, _ = _cols(sched, t)
        return -(x - al * z) / be

    def mean_z(x, t, z):
        _, be, _, _ = _cols(sched, t)
        return -(x - z) / be**2

    mistakes = [
        Mistake(
            "std_for_variance",
            "it divides by beta_t, the standard deviation; the score of "
            "N(alpha_t z, beta_t^2 I) divides by the variance beta_t^2 (eq. 40).",
            std_for_variance,
        ),
        Mistake(
            "missing_alpha",
            "the mean of p_t(x|z) is alpha_t z, not z (eq. 40: -(x - alpha_t z) / beta_t^2).",
            mean_z,
        ),
    ]
    return _refine(g, fn, _conditional_cases(sched, labels, seed, exact), mistakes)


def _schedule(schedule):
    """The schedule of the conditional exercises (a name or a Schedule)."""
    from ..problems import resolve_schedule

    return resolve_schedule(schedule)


def _conditional_path(sched):
    """The path of the point masses at POINTS: its conditional_velocity / conditional_score are
    u_t(x|z) (eq. 20) and grad log p_t(x|z) (eq. 40), refcfg's one implementation of them."""
    from ..paths import GMMPath

    return GMMPath(point_mass_mixture(), sched)


def _noised(sched, z, t, eps):
    """(x, target): x = alpha_t z + beta_t eps on the conditional path (eq. 16) and the CFM
    regression target dalpha_t z + dbeta_t eps = u_t(x|z) (eq. 31), for the given noise eps."""
    al, be, da, db = _cols(sched, t)
    return al * z + be * eps, da * z + db * eps


def _cols(sched, t):
    """alpha_t, beta_t, dalpha_t, dbeta_t as (N, 1) columns."""
    v = sched.values(t)
    return tuple(
        np.asarray(q, dtype=np.float64)[:, None] for q in (v.alpha, v.beta, v.dalpha, v.dbeta)
    )


def _conditional_cases(sched, labels, seed, exact):
    """Cases (x, t, z) on the conditional paths of POINTS at the conditional exercises' times."""
    rng = as_generator(seed)
    z = POINTS[labels]
    eps = rng.standard_normal(z.shape)
    cases = []
    for t in _COND_TIMES:
        tt = np.full(len(z), t)
        x = _noised(sched, z, tt, eps)[0]
        cases.append(Case(f"t = {t:g}", (x, tt, z.copy()), exact(x, tt, z)))
    return cases


_CALL_FAILURES = ("not_implemented", "raised", "no_return", "shape")


def _refine(g: Grade, fn, cases, mistakes) -> Grade:
    """A failed field verdict, with the exercise's own known mistakes tried first on the same kind
    of points: they are the specific form of a mistake that check_field may name more generally
    (for the linear schedule, dividing the score by beta_t is also the "sqrt" schedule's score).
    check_field's verdict stands when none of them matches."""
    if g.passed or g.code in _CALL_FAILURES:
        return g
    g2 = compare_cases(g.exercise, fn, cases, mistakes, what="it", name=_name(fn))
    if g2.passed or g2.code in ("unexplained", "nonfinite"):
        return g
    return Grade(g.exercise, False, g2.sentence, g2.code, g.where, g.report)


# ---------------------------------------------------------------------------------------------
# lab 2: the marginal field, the score, the conversion, the CFM loss
# ---------------------------------------------------------------------------------------------


def grade_velocity(
    fn: Callable, *, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """u = marginal_velocity(x, t, y): the marginal field u_t(x|y) of the mixture (eq. 18), y a
    class or NULL (-1, the whole data law)."""
    return _check(
        "velocity", fn, fn, problem, "velocity", y="all", n=n, schedule=schedule, seed=seed
    )


def grade_score(
    fn: Callable, *, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """s = marginal_score(x, t, y): grad log p_t(x|y) of the mixture (eq. 38 with eq. 40)."""
    return _check("score", fn, fn, problem, "score", y="all", n=n, schedule=schedule, seed=seed)


def grade_velocity_from_score(
    fn: Callable, *, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """u = velocity_from_score(score, x, t): u = a_t score + b_t x (eq. 42), fed with the exact
    score. Compared at t = 1e-3, 0.1, ..., 1: the formula divides by alpha_0 = 0 at t = 0."""
    path = _resolve(problem, schedule)
    wrapped = lambda x, t, y: fn(path.score(x, t, y), x, t)  # noqa: E731
    return _check(
        "velocity_from_score",
        fn,
        wrapped,
        path,
        "velocity",
        y="all",
        n=n,
        seed=seed,
        times=(NEAR_ZERO,) + TIMES[1:],
        extra_skipped=[_ALPHA0],
    )


def _toy_model(x, t):
    """A fixed stand-in for a network u_theta(x, t): not the exact field, smooth, nonzero at t = 0."""
    return (1.0 - 2.0 * t)[:, None] * x + np.resize([0.3, -0.2], x.shape[1])


def grade_cfm_loss(
    fn: Callable, *, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """loss = cfm_loss(u_theta, z, t, eps): the Monte Carlo estimate of eq. 26 on one batch,
    mean_n || u_theta(x_n, t_n) - (dalpha_t z_n + dbeta_t eps_n) ||^2 with x_n = alpha_t z_n +
    beta_t eps_n (eq. 31). Checked on batches at t = 0, 0.1, ..., 1 and on one batch with t ~ U[0, 1]."""
    path = _resolve(problem, schedule)
    sched = path.schedule
    n = _points(n, "cfm_loss", path)
    rng = as_generator(seed)
    z, _ = path.mixture.sample(n, seed=rng)
    eps = rng.standard_normal(z.shape)

    def loss(u, z, t, e, *, target="velocity", reduce="batch", swap=False):
        x, tgt = _noised(sched, z, t, e)
        al, be, da, db = _cols(sched, t)
        if swap:
            x = be * z + al * e
        tgt = {"velocity": tgt, "eps": e, "z": z, "sign": da * z - db * e}[target]
        sq = (u(x, t) - tgt) ** 2
        if reduce == "batch":
            return float(np.mean(np.sum(sq, axis=1)))
        if reduce == "all":
            return float(np.mean(sq))
        return float(np.sum(sq))

    cases = []
    grids = [(f"t = {t:g}", np.full(n, t)) for t in TIMES]
    grids.append(("t ~ U[0, 1]", rng.random(n)))
    for label, tt in grids:
        cases.append(
            Case(
                label,
                (_toy_model, z.copy(), tt, eps.copy()),
                np.array(loss(_toy_model, z, tt, eps)),
            )
        )
    mistakes = [
        Mistake(
            "target_eps",
            "the regression target is eps (a noise-prediction loss): the CFM "
            "target is the conditional velocity u_t(x|z) = dalpha_t z + dbeta_t eps (eq. 26 "
            "with eq. 31).",
            lambda u, z, t, e: loss(u, z, t, e, target="eps"),
        ),
        Mistake(
            "target_z",
            "the regression target is z (a data-prediction loss): the CFM target is "
            "the conditional velocity u_t(x|z) = dalpha_t z + dbeta_t eps (eq. 31).",
            lambda u, z, t, e: loss(u, z, t, e, target="z"),
        ),
        Mistake(
            "target_sign",
            "the target is dalpha_t z - dbeta_t eps: the noise term's sign is "
            "flipped; d/dt (alpha_t z + beta_t eps) = dalpha_t z + dbeta_t eps (eq. 31).",
            lambda u, z, t, e: loss(u, z, t, e, target="sign"),
        ),
        Mistake(
            "x_swapped",
            "x is built as beta_t z + alpha_t eps (alpha_t and beta_t swapped): "
            "eq. 16 is x = alpha_t z + beta_t eps.",
            lambda u, z, t, e: loss(u, z, t, e, swap=True),
        ),
        Mistake(
            "mean_over_coordinates",
            "the loss also averages over the d coordinates (np.mean "
            "of the squares), i.e. it is divided by d: eq. 26 takes the squared norm (a sum "
            "over coordinates) and averages over the batch only.",
            lambda u, z, t, e: loss(u, z, t, e, reduce="all"),
        ),
        Mistake(
            "sum_over_batch",
            "the loss sums over the batch instead of averaging: eq. 26 is an "
            "expectation, estimated by the batch mean.",
            lambda u, z, t, e: loss(u, z, t, e, reduce="sum"),
        ),
    ]
    return compare_cases("cfm_loss", fn, cases, mistakes, what="the loss", name=_name(fn))


# ---------------------------------------------------------------------------------------------
# lab 3: guidance
# ---------------------------------------------------------------------------------------------


def grade_drop_labels(fn: Callable, *, n: int = 200, n_classes: int = 2, seed=0) -> Grade:
    """y_in = drop_labels(y, u, eta): the label dropout of eq. 64, y replaced by the null label
    ``refcfg.NULL`` (-1) with probability eta, decided by uniform draws u (drop where u < eta).
    Checked at eta = 0, 0.1, 0.5, 1."""
    n = _points(n, "drop_labels", d=1)
    n_classes = as_positive_int(n_classes, "n_classes")
    rng = as_generator(seed)
    y = rng.integers(0, n_classes, n)
    u = rng.random(n)
    cases = [
        Case(f"eta = {eta:g}", (y.copy(), u.copy(), eta), np.where(u < eta, NULL, y))
        for eta in (0.0, 0.1, 0.5, 1.0)
    ]
    mistakes = [
        Mistake(
            "inverted_dropout",
            "label dropout is inverted: the label is kept with probability "
            "eta and replaced by the null label with probability 1 - eta; eq. 64 replaces y by "
            "the null label with probability eta.",
            lambda y, u, eta: np.where(u < eta, y, NULL),
        ),
        Mistake(
            "null_is_class",
            "dropped labels are set to 0, which is class 0: the null label "
            "must not be a class (refcfg.NULL = -1).",
            lambda y, u, eta: np.where(u < eta, 0, y),
        ),
        Mistake(
            "no_dropout",
            "no label is dropped: y comes back unchanged, so the network never "
            "learns u_t(x|null) and CFG has no unconditional field to combine (eq. 64).",
            lambda y, u, eta: y,
        ),
    ]
    return compare_cases("drop_labels", fn, cases, mistakes, what="the label array", name=_name(fn))


def grade_classifier_score(
    fn: Callable, *, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """g = classifier_score(x, t, y): grad_x log p_t(y|x) = grad log p_t(x|y) - grad log p_t(x)
    (Bayes' rule eq. 60, its gradient eq. 61), the exact noisy classifier's gradient."""
    path = _resolve(problem, schedule)
    sched = path.schedule
    n = _points(n, "classifier_score", path)
    rng = as_generator(seed)
    z, y = path.mixture.sample(n, seed=rng)
    y = np.asarray(y, dtype=np.int64)
    eps = rng.standard_normal(z.shape)
    cases = []
    for t in TIMES:
        tt = np.full(n, t)
        x = _noised(sched, z, tt, eps)[0]
        cases.append(Case(f"t = {t:g}", (x, tt, y.copy()), path.classifier_score(x, tt, y)))
    s = path.score
    mistakes = [
        Mistake(
            "classifier_sign",
            "the sign is flipped: the output is grad log p_t(x) - grad log "
            "p_t(x|y), while Bayes' rule gives grad log p_t(y|x) = grad log p_t(x|y) - grad log "
            "p_t(x) (eq. 61).",
            lambda x, t, y: s(x, t, None) - s(x, t, y),
        ),
        Mistake(
            "unconditional_missing",
            "the output is grad log p_t(x|y) alone: the classifier's "
            "gradient subtracts the unconditional score grad log p_t(x) (eq. 61).",
            lambda x, t, y: s(x, t, y),
        ),
        Mistake(
            "bayes_sum",
            "the output is grad log p_t(x|y) + grad log p_t(x): eq. 61 subtracts grad log p_t(x).",
            lambda x, t, y: s(x, t, y) + s(x, t, None),
        ),
        Mistake(
            "time_reversed",
            "time is reversed: the output is the exact classifier gradient at "
            "1 - t (in the notes t = 0 is noise, t = 1 data).",
            lambda x, t, y: path.classifier_score(x, 1.0 - t, y),
        ),
    ]
    return compare_cases(
        "classifier_score", fn, cases, mistakes, what="grad log p_t(y|x)", name=_name(fn)
    )


def grade_classifier_guidance(
    fn: Callable, *, w: float = 3.0, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """u = classifier_guided_velocity(x, t, y, w): u_t(x) + w a_t grad log p_t(y|x) (eq. 62).
    Compared at t = 1e-3, 0.1, ..., 1: at t = 0, a_t is infinite and grad log p_t(y|x) is 0."""
    w = _weight(w)
    wrapped = lambda x, t, y: fn(x, t, y, w)  # noqa: E731
    return _check(
        "classifier_guidance",
        fn,
        wrapped,
        problem,
        "velocity",
        w=w,
        y="all",
        n=n,
        schedule=schedule,
        seed=seed,
        times=(NEAR_ZERO,) + TIMES[1:],
        extra_skipped=[_ALPHA0],
    )


def grade_cfg(
    fn: Callable, *, w: float = 3.0, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """u = cfg_velocity(x, t, y, w): (1 - w) u_t(x|null) + w u_t(x|y) (eq. 65), t = 0, ..., 1."""
    w = _weight(w)
    wrapped = lambda x, t, y: fn(x, t, y, w)  # noqa: E731
    return _check(
        "cfg", fn, wrapped, problem, "velocity", w=w, y="all", n=n, schedule=schedule, seed=seed
    )


# ---------------------------------------------------------------------------------------------
# lab 4: what guidance does
# ---------------------------------------------------------------------------------------------


def grade_cfg_from_model(
    fn: Callable, *, w: float = 3.0, problem="two-class-2d", schedule="linear", n: int = 64, seed=0
) -> Grade:
    """u = cfg_from_model(model, x, t, y, w): the CFG combination (eq. 65) of one network
    model(x, t, y) evaluated with the label y and with the null label. Graded with the exact
    field as the model, so that the result must be the exact CFG field."""
    w = _weight(w)
    path = _resolve(problem, schedule)

    def model(x, t, y):
        return path.velocity(x, t, y)

    wrapped = lambda x, t, y: fn(model, x, t, y, w)  # noqa: E731
    return _check("cfg_from_model", fn, wrapped, path, "velocity", w=w, y="all", n=n, seed=seed)


def grade_tilted_log_density(
    fn: Callable, *, y: int = 0, problem="two-class-2d", n: int = 64, seed=0
) -> Grade:
    """l = tilted_log_density(x, y, w): w log p(x|y) + (1 - w) log p(x), the log of the tilted law
    p(x|y)^w p(x)^(1-w) / Z up to a constant (compared after subtracting its value at the first
    point). Checked at w = 0, 0.5, 1, 2, 4."""
    from ..experiments import tilted

    path = _resolve(problem, None)
    n = _batch(n, "tilted_log_density", path)
    label = as_label(y, path.n_classes)
    if not isinstance(label, int):
        raise ValueError(
            f"y must be one class (an int) for the tilted law p(x|y)^w p(x)^(1-w) / Z, got {y!r}"
        )
    y = label
    x = path.mixture.marginal.sample(n, seed=as_generator(seed)) * 1.5  # also the tails
    cond, marg = path.mixture.class_gmm(y), path.mixture.marginal

    def centred(f):
        def g(x, y, w):
            v = np.asarray(f(x, y, w), dtype=np.float64)
            # (n,) and (n, 1) are the same n values (the comparison reads both as n rows)
            return v - v.reshape(-1)[0] if v.size == x.shape[0] else v

        return g

    exact = centred(lambda x, y, w: tilted.log_density(path, x, y, w))
    cases = [
        Case(f"w = {w:g}", (x.copy(), y, w), exact(x, y, w)) for w in (0.0, 0.5, 1.0, 2.0, 4.0)
    ]
    mistakes = [
        Mistake(
            "w_convention",
            "weight convention: the output is (1 + w) log p(x|y) - w log p(x), "
            "the notes' tilted law at w + 1 (Ho-Salimans' omega = w); the notes' w multiplies "
            "log p(x|y) and 1 - w multiplies log p(x).",
            centred(lambda x, y, w: (1 + w) * cond.log_prob(x) - w * marg.log_prob(x)),
        ),
        Mistake(
            "cond_uncond_swapped",
            "p(x|y) and p(x) are swapped: the output is w log p(x) + (1 - w) log p(x|y).",
            centred(lambda x, y, w: w * marg.log_prob(x) + (1 - w) * cond.log_prob(x)),
        ),
        Mistake(
            "w_ignored",
            "w is ignored: the output is log p(x|y), the tilted law at w = 1 only.",
            centred(lambda x, y, w: cond.log_prob(x)),
        ),
    ]
    return compare_cases(
        "tilted_log_density",
        _centred_student(fn, centred),
        cases,
        mistakes,
        what="the log-density (up to a constant)",
        name=_name(fn),
    )


def _centred_student(fn, centred):
    g = centred(fn)
    g.__name__ = _name(fn)
    return g


def grade_sde_step(
    fn: Callable,
    *,
    h: float = 0.01,
    sigma: float = 0.8,
    w: float = 3.0,
    problem="two-class-2d",
    schedule="linear",
    n: int = 64,
    seed=0,
) -> Grade:
    """x_next = sde_step(x, t, h, u, s, sigma, noise): one Euler-Maruyama step of the SDE eq. 44,
    x + h (u + sigma^2 / 2 s) + sigma sqrt(h) noise, with u and s the exact CFG velocity and score
    at (x, t) and noise ~ N(0, I) given. Checked from t = 0 to the last step t = 1 - h."""
    h = as_real(h, "h", gt=0.0, hi=0.5)
    sigma = as_real(sigma, "sigma", lo=0.0)
    w = _weight(w)
    path = _resolve(problem, schedule)
    n = _points(n, "sde_step", path)
    rng = as_generator(seed)
    y = np.arange(n) % path.n_classes
    cases = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0 - h):
        z, _ = path.mixture.sample(n, seed=rng)
        tt = np.full(n, t)
        x = _noised(path.schedule, z, tt, rng.standard_normal(z.shape))[0]
        u, s = path.cfg_velocity(x, tt, y, w), path.cfg_score(x, tt, y, w)
        noise = rng.standard_normal(x.shape)
        args = (x, tt, h, u, s, sigma, noise)
        cases.append(Case(f"t = {t:g}", args, _em(*args)))
    mistakes = [
        Mistake(
            "noise_twice",
            "the noise enters twice (2 sigma sqrt(h) eps): a step adds "
            "sigma (W_{t+h} - W_t) = sigma sqrt(h) eps once (eq. 44, discretised as eq. 9).",
            lambda *a: _em(*a, noise_factor=2.0),
        ),
        Mistake(
            "missing_half",
            "the score term is sigma^2 s: eq. 44 has sigma^2 / 2 times the score.",
            lambda *a: _em(*a, half=1.0),
        ),
        Mistake(
            "no_score_term",
            "the score correction sigma^2 / 2 s is missing: noise added to the "
            "ODE step spreads the samples, and eq. 44's score term is what keeps the "
            "marginals p_t.",
            lambda *a: _em(*a, half=0.0),
        ),
        Mistake(
            "score_sign",
            "the score term has the wrong sign: eq. 44 adds + sigma^2 / 2 s.",
            lambda *a: _em(*a, half=-0.5),
        ),
        Mistake(
            "noise_scale_h",
            "the noise is scaled by h: a Brownian increment over a step h has "
            "standard deviation sqrt(h) (eq. 5), so the noise term is sigma sqrt(h) eps.",
            lambda x, t, h, u, s, sg, e: _em(x, t, h, u, s, sg, e, noise_factor=np.sqrt(h)),
        ),
        Mistake(
            "noise_unscaled",
            "the noise is not scaled by sqrt(h): a Brownian increment over a "
            "step h has standard deviation sqrt(h) (eq. 5).",
            lambda x, t, h, u, s, sg, e: _em(x, t, h, u, s, sg, e, noise_factor=1.0 / np.sqrt(h)),
        ),
    ]
    return compare_cases("sde_step", fn, cases, mistakes, what="the next state", name=_name(fn))


def _em(x, t, h, u, s, sigma, noise, *, half=0.5, noise_factor=1.0):
    """Euler-Maruyama for eq. 44 (``half`` and ``noise_factor`` only to write the mistakes)."""
    return x + h * (u + half * sigma**2 * s) + noise_factor * sigma * np.sqrt(h) * noise


# ---------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------

EXERCISES = {
    "cosine_schedule": grade_cosine_schedule,
    "sample_path": grade_sample_path,
    "conditional_velocity": grade_conditional_velocity,
    "conditional_score": grade_conditional_score,
    "velocity": grade_velocity,
    "score": grade_score,
    "velocity_from_score": grade_velocity_from_score,
    "cfm_loss": grade_cfm_loss,
    "drop_labels": grade_drop_labels,
    "classifier_score": grade_classifier_score,
    "classifier_guidance": grade_classifier_guidance,
    "cfg": grade_cfg,
    "cfg_from_model": grade_cfg_from_model,
    "tilted_log_density": grade_tilted_log_density,
    "sde_step": grade_sde_step,
}
"""Exercise name -> grader. Each grader's docstring gives the function the student writes."""


def grade(fn: Callable, exercise: str, **options) -> Grade:
    """Grade the student's function ``fn`` for ``exercise`` (a key of ``EXERCISES``) and return a
    :class:`~refcfg.labs.grade.Grade` (prints as one line, PASS or FAIL with one sentence).

    ``options`` go to the exercise's grader (e.g. ``w=`` for the guidance exercises, ``schedule=``,
    ``n=``, ``seed=``). A failure of the student's code is reported, never raised."""
    if not isinstance(exercise, str):
        raise TypeError(
            f"exercise must be the exercise's name (a str, one of {', '.join(EXERCISES)}), "
            f"got {exercise!r}"
        )
    if exercise not in EXERCISES:
        raise ValueError(f"exercise must be one of {', '.join(EXERCISES)}, got {exercise!r}")
    if not callable(fn):
        raise TypeError(f"fn must be the function to grade (a callable), got {fn!r}")
    return EXERCISES[exercise](fn, **options)
