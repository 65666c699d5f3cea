"""Check any implementation of a (guided) flow-matching field against the exact fields.

``check_field(fn, ...)`` evaluates a user's field ``fn(x, t, y) -> (N, d)`` on points drawn from the
exact marginal path of a Gaussian-mixture problem, compares it with refcfg's closed forms
(``refcfg.GMMPath``), and returns a :class:`FieldReport`: per-time maximum and mean relative and
absolute errors, the worst point, pass/fail, a text form (``str(report)``) and ``report.to_dict()``.
When the check fails the report tries to say which known mistake the output looks like, by evaluating
each mistake's formula with the exact fields and measuring how close the user's output is to it:

- a_t and b_t swapped in the conversion u = a_t score + b_t x (notes arXiv 2506.02070, eq. 41/42;
  v1 of the notes and the course labs use the swapped names);
- the guidance weight convention: the notes' CFG is w u(x|y) + (1 - w) u(x|null) (eq. 65), the
  Ho-Salimans form is (1 + omega) u(x|y) - omega u(x|null), so w = 1 + omega;
- the sign of the guidance term, conditional and unconditional swapped, guidance not applied,
  labels ignored (the symptom of a model that never saw labels, e.g. inverted label dropout);
- the diffusion time convention (t = 0 data), another schedule, another quantity (eps for x0 ...);
- NaN or inf output at the endpoints (typically a conversion dividing by alpha_t or beta_t there);
- a small error that no known mistake explains ("fails tolerance").

Conventions (docs/architecture.md): t in [0, 1], t = 0 noise, t = 1 data, x_t = alpha_t z + beta_t eps;
labels are ints with the null label ``refcfg.NULL`` (= -1), which can be remapped for the user's
function with ``null_label=`` (e.g. the MIT labs use the number of classes).

The optional adapters :func:`torch_field` and :func:`jax_field` wrap a PyTorch module / JAX function as
a NumPy field; torch and jax are imported only when an adapter is called.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._validation import NULL, as_float_array, as_generator, as_positive_int
from .combine import combine
from .sample_checks import check_samples  # samples against the exact law: a sampler's check

__all__ = [
    "check_field",
    "FieldReport",
    "TimeStats",
    "WorstPoint",
    "Diagnosis",
    "FieldError",
    "KINDS",
    "DEFAULT_TIMES",
    "exact_values",
    "torch_field",
    "jax_field",
    "check_samples",
]

KINDS = ("velocity", "score", "x0", "eps")
"""Quantities check_field can compare: velocity u_t, score grad log p_t, x0 = E[z | x_t] (the data
prediction) and eps = E[eps | x_t] (the noise prediction)."""

DEFAULT_TIMES = tuple(float(v) for v in np.round(np.linspace(0.0, 1.0, 11), 12))
"""Default time grid: 0, 0.1, ..., 1 (endpoints included; times where the exact quantity is undefined
are skipped with a note)."""


class FieldError(RuntimeError):
    """The user's function raised, or returned something that is not an (N, d) numeric array.

    ``code``: "raised", "no_return" or "shape" (not numeric, or the wrong shape); ``t``: the time
    at which it happened (None when not known)."""

    def __init__(self, message: str = "", code: str = "raised", t: float | None = None):
        super().__init__(message)
        self.code = code
        self.t = t


# ----------------------------------------------------------------------------------------------
# report records
# ----------------------------------------------------------------------------------------------


@dataclass
class TimeStats:
    """Errors at one time t over the points where the exact value is defined.

    Per point n: abs = ||got_n - exact_n||_2, rel = abs / ||exact_n||_2 (with ||exact_n|| floored at
    1e-300); a point fails when abs > atol + rtol ||exact_n|| or got_n is not finite."""

    t: float
    n: int
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float
    n_fail: int
    n_nonfinite: int

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


@dataclass
class WorstPoint:
    """The point with the largest relative error (non-finite outputs first)."""

    t: float
    index: int
    y: int
    x: list
    expected: list
    got: list
    abs_err: float
    rel_err: float

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


@dataclass
class Diagnosis:
    """A known mistake the output looks like.

    ``code`` is stable (e.g. "ab_swapped", "w_convention", "guidance_sign", "cond_uncond_swapped",
    "no_guidance", "labels_ignored", "time_reversed", "schedule", "kind", "negated", "nonfinite",
    "small_error"); ``match`` is "exact" (within the check's tolerance of the mistake's formula),
    "close" (much closer to it than to the exact field) or "" for notes that are not formula matches;
    ``error`` is the max relative error of the output against the mistake's formula (NaN if n/a)."""

    code: str
    message: str
    match: str = ""
    error: float = float("nan")

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


@dataclass
class FieldReport:
    """The result of :func:`check_field`. ``passed`` is True when every checked point is within
    tolerance; ``str(report)`` is a readable table; ``to_dict()`` is JSON-serialisable."""

    name: str
    kind: str
    problem: str
    schedule: str
    w: float | None
    labels: str
    rtol: float
    atol: float
    n: int
    times: list
    per_t: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (t, reason)
    worst: WorstPoint | None = None
    diagnoses: list = field(default_factory=list)
    passed: bool = False

    def __bool__(self) -> bool:
        return bool(self.passed)

    @property
    def max_rel(self) -> float:
        return max((s.max_rel for s in self.per_t), default=float("nan"))

    @property
    def max_abs(self) -> float:
        return max((s.max_abs for s in self.per_t), default=float("nan"))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "problem": self.problem,
            "schedule": self.schedule,
            "w": self.w,
            "labels": self.labels,
            "rtol": self.rtol,
            "atol": self.atol,
            "n": self.n,
            "times": [float(t) for t in self.times],
            "passed": bool(self.passed),
            "max_rel": _jsonable(self.max_rel),
            "max_abs": _jsonable(self.max_abs),
            "per_t": [s.to_dict() for s in self.per_t],
            "skipped": [{"t": float(t), "reason": r} for t, r in self.skipped],
            "worst": None if self.worst is None else self.worst.to_dict(),
            "diagnoses": [d.to_dict() for d in self.diagnoses],
        }

    def __str__(self) -> str:
        guided = "" if self.w is None else f" (CFG, w = {self.w:g})"
        lines = [
            f"refcfg check: {self.kind}{guided} of {self.name}: "
            f"{'PASS' if self.passed else 'FAIL'}",
            f"problem {self.problem}, schedule {self.schedule}, labels {self.labels}, "
            f"{self.n} points per time",
            f"tolerance per point: ||got - exact|| <= {self.atol:.3g} + {self.rtol:.3g} ||exact||",
            f"{'t':>8} {'max rel':>10} {'mean rel':>10} {'max abs':>10} {'mean abs':>10}"
            f" {'fail':>5} {'nonfinite':>9}",
        ]
        for s in self.per_t:
            lines.append(
                f"{s.t:8.4g} {s.max_rel:10.3g} {s.mean_rel:10.3g} {s.max_abs:10.3g} "
                f"{s.mean_abs:10.3g} {s.n_fail:5d} {s.n_nonfinite:9d}"
            )
        for t, reason in self.skipped:
            lines.append(f"skipped t = {t:g}: {reason}")
        if self.worst is not None and not self.passed:
            wp = self.worst
            lines.append(
                f"worst point: t = {wp.t:g}, index {wp.index}, y = {wp.y}, x = {_fmt(wp.x)}"
            )
            lines.append(f"  expected {_fmt(wp.expected)}")
            lines.append(
                f"  got      {_fmt(wp.got)}  (abs err {wp.abs_err:.3g}, rel err {wp.rel_err:.3g})"
            )
        if self.diagnoses:
            lines.append("diagnosis:")
            for d in self.diagnoses:
                lines.append(f"  - [{d.code}] {d.message}")
        elif not self.passed:
            lines.append("diagnosis: no known mistake matches the output")
        return "\n".join(lines)

    def raise_if_failed(self) -> FieldReport:
        """Raise AssertionError with the text report if the check failed; return self otherwise."""
        if not self.passed:
            raise AssertionError("\n" + str(self))
        return self


def _fmt(v) -> str:
    """A point or value of the report: the one number formatter, 6 significant digits."""
    from ._format import format_value

    return format_value(
        np.asarray(v, dtype=np.float64), digits=6, sci_below=0.0, sci_above=math.inf, max_items=8
    )


def _jsonable(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else str(v)  # JSON has no NaN/inf: "nan", "inf"
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return [_jsonable(a) for a in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_jsonable(a) for a in v]
    return v


# ----------------------------------------------------------------------------------------------
# argument handling
# ----------------------------------------------------------------------------------------------


def _schedule_name(sched) -> str:
    if sched.params:
        return sched.name + "(" + ", ".join(f"{k}={v:g}" for k, v in sched.params.items()) + ")"
    return sched.name


def _resolve_labels(y, n, n_classes, guided):
    """(labels (n,) int64 with NULL entries, description)."""
    if isinstance(y, str):
        if y == "all":
            pool = np.arange(n_classes) if guided else np.append(np.arange(n_classes), NULL)
            return np.resize(pool, n).astype(np.int64), (
                f"cycling over classes 0..{n_classes - 1}" + ("" if guided else " and NULL")
            )
        if y == "null":
            y = None
        else:
            raise ValueError(
                f"y must be 'all', 'null', None, an int or an (n,) int array, got {y!r}"
            )
    if y is None:
        if guided:
            raise ValueError(
                "y must name a class (not None / NULL) when w is given: CFG combines "
                "u(x|y) and u(x|null)"
            )
        return np.full(n, NULL, dtype=np.int64), "NULL (unconditional)"
    if isinstance(y, (bool, np.bool_)):
        raise TypeError(f"y must be 'all', 'null', None, an int or an int array, got {y!r}")
    if isinstance(y, numbers.Integral):
        arr = np.full(n, int(y), dtype=np.int64)
        desc = "NULL (unconditional)" if int(y) == NULL else f"y = {int(y)}"
    else:
        arr = np.asarray(y)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(
                f"y must be 'all', 'null', None, an int or a 1-D int array, got "
                f"{arr.dtype} array of shape {arr.shape}"
            )
        if arr.shape != (n,):
            raise ValueError(f"y has shape {arr.shape} but n = {n} points require shape ({n},)")
        arr = arr.astype(np.int64)
        desc = "given array"
    bad = (arr != NULL) & ((arr < 0) | (arr >= n_classes))
    if np.any(bad):
        raise ValueError(f"y must be in 0..{n_classes - 1} or NULL (-1), got {int(arr[bad][0])}")
    if guided and np.any(arr == NULL):
        raise ValueError(
            "y must name a class (not NULL) when w is given: CFG combines u(x|y) and u(x|null)"
        )
    return arr, desc


def _resolve_times(times):
    if times is None:
        return np.array(DEFAULT_TIMES)
    arr = as_float_array(times, "times")
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"times must be a float or a non-empty 1-D array, got shape {arr.shape}")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(
            f"times must lie in [0, 1], got values in [{float(arr.min())!r}, {float(arr.max())!r}]"
        )
    return arr


def _real_output(raw, fname: str, t: float) -> np.ndarray:
    """The user's output as float64, or FieldError when it is not a real numeric array: complex
    values with a non-zero imaginary part, strings, booleans and objects are refused (a plain
    float64 conversion would drop the imaginary part or parse the strings)."""
    try:
        arr = np.asarray(raw)
    except (TypeError, ValueError) as exc:
        raise FieldError(
            f"{fname} returned {type(raw).__name__} at t = {t:g}, which is not "
            f"a numeric array: {exc}",
            "shape",
            t,
        ) from exc
    if arr.dtype.kind == "c":
        if np.any(arr.imag != 0):
            raise FieldError(
                f"{fname} returned complex values with a non-zero imaginary part at "
                f"t = {t:g} (dtype {arr.dtype}); a field is real",
                "shape",
                t,
            )
        arr = arr.real
    elif arr.dtype.kind not in "iuf":
        raise FieldError(
            f"{fname} returned a {arr.dtype} array at t = {t:g}, which is not a "
            f"real numeric array (required float, of shape (N, d))",
            "shape",
            t,
        )
    return np.asarray(arr, dtype=np.float64)


def _sample_z_eps(path, labels, rng):
    """Data points z (N, d) drawn from p(z | y_n) (the marginal for NULL) and noise eps (N, d)."""
    mix = path.mixture
    n = labels.shape[0]
    z = np.empty((n, path.d))
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        gmm = mix.marginal if lab == NULL else mix.class_gmm(int(lab))
        z[idx] = gmm.sample(idx.size, rng)
    eps = rng.standard_normal((n, path.d))
    return z, eps


# ----------------------------------------------------------------------------------------------
# exact values and mistake formulas
# ----------------------------------------------------------------------------------------------


def exact_values(path, kind, x, t, y, w=None):
    """The exact ``kind`` at (x, t) for labels y (NULL rows unconditional); with w, the CFG
    combination w K(x|y) + (1 - w) K(x|null) (eq. 65). Every quantity here is affine in the score at
    fixed (x, t) with coefficients that do not depend on y (eq. 41/42), so the CFG combination of
    velocities, scores, x0 or eps predictions is the same guided field in each parametrisation.
    Returns an (N, d) array; raises ValueError where the quantity is undefined."""
    method = getattr(path, kind)
    if w is None:
        return method(x, t, y)
    return combine(method(x, t, y), method(x, t, None), w)


def _safe(f):
    """f() as a float64 array, or None where the formula is undefined (ValueError from refcfg,
    e.g. a_t, b_t where alpha_t = 0); non-finite entries are left for the caller to mask."""
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(f(), dtype=np.float64)
    except (ValueError, FloatingPointError, ZeroDivisionError):
        return None
    return out


def _candidates(path, kind, w, labels, schedule_obj):
    """Known mistakes: (code, message, function (x, t: float) -> (N, d) or raises)."""
    out = []
    K = {"velocity": "u", "score": "s", "x0": "x0", "eps": "eps"}[kind]  # symbol in messages
    ex = lambda k, x, t, ww=w, p=path: exact_values(p, k, x, t, labels, ww)  # noqa: E731
    any_class = bool(np.any(labels != NULL))

    # a_t and b_t swapped in eq. 41 (u = a score + b x), as in v1 of the notes and the course labs
    if kind == "velocity":

        def ab_vel(x, t):
            s = ex("score", x, t)
            return schedule_obj.b(t) * s + schedule_obj.a(t) * x

        out.append(
            (
                "ab_swapped",
                "a_t and b_t swapped in u = a_t score + b_t x (eq. 41/42): the "
                "output equals b_t score + a_t x (v1 of the notes and the course labs swap the "
                "names a_t and b_t)",
                ab_vel,
            )
        )
    if kind == "score":

        def ab_score(x, t):
            u = ex("velocity", x, t)
            return (u - schedule_obj.a(t) * x) / schedule_obj.b(t)

        out.append(
            (
                "ab_swapped",
                "a_t and b_t swapped in the conversion score = (u - b_t x) / a_t "
                "(eq. 41/42): the output equals (u - a_t x) / b_t (v1 of the notes and the "
                "course labs swap the names a_t and b_t)",
                ab_score,
            )
        )

    if w is not None:
        g = lambda ww: lambda x, t: ex(kind, x, t, ww)  # noqa: E731
        out += [
            (
                "w_convention",
                f"guidance weight convention: the output equals the notes' CFG field "
                f"at w' = w + 1 = {w + 1:g}, i.e. (1 + w) {K}(x|y) - w {K}(x|null) (Ho-Salimans, "
                f"omega = w) where w {K}(x|y) + (1 - w) {K}(x|null) (eq. 65) was meant; map "
                f"omega = w - 1",
                g(w + 1.0),
            ),
            (
                "w_convention",
                f"guidance weight convention: the output equals the notes' CFG field at "
                f"w' = w - 1 = {w - 1:g}: the code treats its weight as the notes' w (eq. 65) but was "
                f"given a Ho-Salimans omega (or adds 1 twice); w = 1 + omega",
                g(w - 1.0),
            ),
            (
                "cond_uncond_swapped",
                f"conditional and unconditional swapped: the output equals "
                f"w {K}(x|null) + (1 - w) {K}(x|y) (the CFG field at w' = 1 - w = {1 - w:g})",
                g(1.0 - w),
            ),
            (
                "guidance_sign",
                f"sign of the guidance term flipped: the output equals "
                f"{K}(x|null) - w ({K}(x|y) - {K}(x|null)) (the CFG field at w' = -w = {-w:g})",
                g(-w),
            ),
            (
                "guidance_sign",
                f"sign of the guidance term flipped: the output equals "
                f"{K}(x|y) - (w - 1) ({K}(x|y) - {K}(x|null)) (the CFG field at w' = 2 - w = "
                f"{2 - w:g})",
                g(2.0 - w),
            ),
            (
                "no_guidance",
                f"guidance not applied: the output equals the conditional field "
                f"{K}(x|y) (w ignored)",
                g(1.0),
            ),
            (
                "labels_ignored",
                f"labels ignored: the output equals the unconditional field "
                f"{K}(x|null) (the labels do not reach the model, or a model trained with inverted "
                f"label dropout that almost never saw labels)",
                g(0.0),
            ),
        ]
        if kind == "velocity":  # classifier guidance (eq. 62) written without its factor a_t
            out.append(
                (
                    "missing_a_t",
                    "factor a_t missing: the output equals u(x) + w grad log "
                    "p_t(y|x) where classifier guidance is u(x) + w a_t grad log p_t(y|x) "
                    "(eq. 62)",
                    lambda x, t: (
                        ex("velocity", x, t, 0.0)
                        + w * (ex("score", x, t, 1.0) - ex("score", x, t, 0.0))
                    ),
                )
            )
    elif any_class:
        out.append(
            (
                "labels_ignored",
                "labels ignored: for class labels the output equals the "
                "unconditional field (the labels do not reach the model, or a model trained "
                "with inverted label dropout that almost never saw labels)",
                lambda x, t: exact_values(path, kind, x, t, None),
            )
        )

    # the diffusion time convention (t = 0 data): the user's field evaluated at 1 - t
    sign = -1.0 if kind == "velocity" else 1.0
    out.append(
        (
            "time_reversed",
            "time convention reversed: the output equals the exact field at "
            "1 - t"
            + (" with the sign of the velocity flipped" if sign < 0 else "")
            + " (diffusion convention t = 0 data; refcfg uses t = 0 noise, t = 1 data)",
            lambda x, t: sign * ex(kind, x, 1.0 - t),
        )
    )
    if kind == "velocity":
        out.append(
            (
                "time_reversed",
                "time convention reversed: the output equals the exact "
                "velocity at 1 - t (refcfg uses t = 0 noise, t = 1 data)",
                lambda x, t: ex(kind, x, 1.0 - t),
            )
        )
    for other in KINDS:
        if other != kind:
            out.append(
                (
                    "kind",
                    f"wrong quantity: the output equals the exact {other}, not the {kind}",
                    lambda x, t, o=other: ex(o, x, t),
                )
            )
    out.append(
        (
            "negated",
            f"sign flipped: the output equals minus the exact {kind}",
            lambda x, t: -ex(kind, x, t),
        )
    )

    from .paths import GMMPath
    from .schedules import SCHEDULES
    from .schedules import schedule as make_schedule

    for name in SCHEDULES:
        other = make_schedule(name)
        if other == schedule_obj:
            continue
        p2 = GMMPath(path.mixture, other)
        out.append(
            (
                "schedule",
                f"wrong schedule: the output equals the exact {kind} under schedule "
                f"{_schedule_name(other)!r}, not {_schedule_name(schedule_obj)!r}",
                lambda x, t, p2=p2: exact_values(p2, kind, x, t, labels, w),
            )
        )
    return out


def _row_rel(got, ref, atol_floor=1e-300):
    num = np.linalg.norm(got - ref, axis=-1)
    den = np.maximum(np.linalg.norm(ref, axis=-1), atol_floor)
    return num, den


def _diagnose(path, kind, w, labels, schedule_obj, xs, ts, gots, refs, rtol, atol):
    """Evaluate each known mistake's formula at the checked points and report those the output
    matches ("exact": within tolerance of it at every comparable point; "close": its mean relative
    error against the mistake is < 0.1 x that against the exact field)."""
    diags = []
    # non-finite outputs where the exact value is finite
    bad_t = [
        (t, int(np.sum(~np.all(np.isfinite(g), axis=1))))
        for t, g, r in zip(ts, gots, refs)
        if r is not None
    ]
    bad_t = [(t, c) for t, c in bad_t if c]
    if bad_t:
        where = ", ".join(f"t = {t:g} ({c} points)" for t, c in bad_t)
        endpoint = all(t in (0.0, 1.0) for t, _ in bad_t)
        diags.append(
            Diagnosis(
                "nonfinite",
                f"NaN/inf output where the exact {kind} is finite: "
                f"{where}"
                + (
                    "; at an endpoint this is typically a conversion that "
                    "divides by alpha_t or beta_t (eq. 41/42 are singular "
                    "there): compute the field directly or guard the "
                    "endpoint"
                    if endpoint
                    else ""
                ),
                "",
            )
        )

    # rows used for the formula matches: checked times, finite output
    use = [
        (i, np.all(np.isfinite(g), axis=1))
        for i, (g, r) in enumerate(zip(gots, refs))
        if r is not None
    ]
    if not use:
        return diags
    rest_ok = True
    truth_parts = {}  # i -> (N,) rel err against the exact field (NaN where the output is not finite)
    for i, m in use:
        num, den = _row_rel(gots[i][m], refs[i][m])
        full = np.full(m.shape, np.nan)
        full[m] = num / den
        truth_parts[i] = full
        rest_ok &= bool(np.all(num <= atol + rtol * den))
    truth_rel = np.concatenate([v[np.isfinite(v)] for v in truth_parts.values()])
    if truth_rel.size == 0:
        return diags
    if bad_t and rest_ok:
        diags.append(
            Diagnosis(
                "nonfinite",
                "apart from the non-finite values the output matches "
                "the exact field within tolerance",
                "",
            )
        )
        return diags
    truth_mean = float(np.mean(truth_rel))

    matches = []
    for code, message, f in _candidates(path, kind, w, labels, schedule_obj):
        cand_rel, truth_sub, dist_truth, ok_all, count = [], [], [], True, 0
        for i, m in use:
            c = _safe(lambda: f(xs[i], ts[i]))
            if c is None:
                continue
            keep = m & np.all(np.isfinite(c), axis=1)
            if not np.any(keep):
                continue
            num, den = _row_rel(gots[i][keep], c[keep])
            cand_rel.append(num / den)
            ok_all &= bool(np.all(num <= atol + rtol * den))
            truth_sub.append(truth_parts[i][keep])
            dn, dd = _row_rel(c[keep], refs[i][keep])
            dist_truth.append(dn / dd)
            count += int(keep.sum())
        if count == 0:
            continue
        cand_rel = np.concatenate(cand_rel)
        truth_sub = np.concatenate(truth_sub)
        dist = np.concatenate(dist_truth)
        if np.max(dist) <= max(10 * rtol, 1e-9):
            continue  # this mistake cannot be told apart from the exact field here
        cmean, tmean = float(np.mean(cand_rel)), float(np.mean(truth_sub))
        if ok_all:
            matches.append(
                (
                    0,
                    cmean,
                    Diagnosis(
                        code,
                        message + f" (max rel err against it {np.max(cand_rel):.2g})",
                        "exact",
                        float(np.max(cand_rel)),
                    ),
                )
            )
        elif cmean < 0.1 * tmean:
            matches.append(
                (
                    1,
                    cmean,
                    Diagnosis(
                        code,
                        message + f" approximately (mean rel err "
                        f"against it {cmean:.2g}, against the exact field "
                        f"{tmean:.2g})",
                        "close",
                        float(np.max(cand_rel)),
                    ),
                )
            )
    matches.sort(key=lambda m: (m[0], m[1]))
    if matches and matches[0][0] == 0:
        matches = [m for m in matches if m[0] == 0]
    else:
        matches = matches[:3]
    diags += [m[2] for m in matches]
    if not matches:
        mx = float(np.max(truth_rel))
        if mx < 1e-2:
            diags.append(
                Diagnosis(
                    "small_error",
                    f"fails tolerance: the output is close to the "
                    f"exact {kind} (max rel err {mx:.2g}, mean {truth_mean:.2g}) but "
                    f"outside rtol = {rtol:g}, atol = {atol:g}; no known mistake "
                    f"matches (a perturbed coefficient, float32 arithmetic, an "
                    f"approximate model ...)",
                    "",
                )
            )
    return diags


# ----------------------------------------------------------------------------------------------
# check_field
# ----------------------------------------------------------------------------------------------


def check_field(
    fn: Callable,
    problem="two-class-2d",
    kind: str = "velocity",
    *,
    y="all",
    w: float | None = None,
    schedule=None,
    times=None,
    n: int = 64,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    seed=0,
    points=None,
    null_label: int = NULL,
    diagnose: bool = True,
    name: str | None = None,
) -> FieldReport:
    """Compare a user's field with the exact one and report the errors.

    fn(x, t, y) -> (N, d): x float64 (N, d), t float64 (N,), y int64 (N,) with the null label
    ``null_label`` (default ``refcfg.NULL`` = -1) for unconditional rows. It must return an array-like
    of shape (N, d) (anything ``np.asarray`` converts). It is called once per time.

    problem: a problem name (``refcfg.problems.PROBLEMS``), a ``.toml`` problem file, a GMM, a
    LabeledGMM or a GMMPath. kind: "velocity" (u_t, eq. 18), "score" (grad log p_t), "x0"
    (E[z | x_t]) or "eps" (E[eps | x_t]); see eq. 41/42 for the conversions between them.
    y: "all" (default: labels cycle over the classes, and NULL when w is None), "null" / None /
    ``refcfg.NULL`` (unconditional), an int or an (n,) int array. w: None checks the plain field;
    a float checks the CFG field w K(x|y) + (1 - w) K(x|null) (notes eq. 65; Ho-Salimans omega maps
    to w = 1 + omega; diffusers' guidance_scale is w). schedule: a name or Schedule (default
    "linear", or the GMMPath's). times: default 0, 0.1, ..., 1; times where the exact quantity is
    undefined (ValueError from refcfg, e.g. where alpha_t = 0) are skipped with a note.
    n: points per time, drawn from the exact path: z ~ p(z | y) (the marginal for NULL), eps ~ N(0, I),
    x_t = alpha_t z + beta_t eps (the same z, eps at every t); or give ``points`` (N, d) used at every
    time. A point passes when ||got - exact||_2 <= atol + rtol ||exact||_2.

    Returns a FieldReport (truthy when passed); ``report.raise_if_failed()`` raises AssertionError
    with the text report. Raises FieldError when fn raises or returns the wrong shape.
    """
    w = _check_arguments(fn, kind, rtol, atol, w, null_label)
    from .problems import resolve

    resolved = resolve(problem, schedule)
    path, problem_name = resolved.path, resolved.label
    tgrid = _resolve_times(times)
    draw = _draw_points(path, y, w, n, points, as_generator(seed))
    n, labels = draw.n, draw.labels
    y_user = labels.copy()
    if null_label != NULL:
        y_user[labels == NULL] = int(null_label)
    label_arg = labels if np.any(labels != NULL) else None
    fname = name or getattr(fn, "__qualname__", None) or repr(fn)

    report = FieldReport(
        name=fname,
        kind=kind,
        problem=problem_name,
        schedule=_schedule_name(path.schedule),
        w=w,
        labels=draw.label_desc,
        rtol=float(rtol),
        atol=float(atol),
        n=n,
        times=[float(t) for t in tgrid],
    )
    xs, refs, gots = [], [], []
    worst_key, worst = (-1, -1.0), None
    all_pass = True
    for t in tgrid:
        t = float(t)
        x = draw.at(t, path.schedule)
        ref, reason = _exact_at(path, kind, x, t, label_arg, w)
        if ref is None:
            report.skipped.append((t, f"{kind} undefined ({reason})"))
            xs.append(x), refs.append(None), gots.append(None)
            continue
        got = _call_field(fn, fname, x, t, y_user, path.d)
        stats, num, rel, fin = _compare(got, ref, t, rtol, atol)
        all_pass &= stats.n_fail == 0
        report.per_t.append(stats)
        key, point = _worst_row(t, x, ref, got, y_user, num, rel, fin)
        if key > worst_key:
            worst_key, worst = key, point
        xs.append(x), refs.append(ref), gots.append(got)
    if not report.per_t:
        raise ValueError(
            f"no time in {report.times} has a defined exact {kind} for schedule "
            f"{report.schedule!r}; choose other times"
        )
    report.worst = worst
    report.passed = bool(all_pass)
    if not report.passed and diagnose:
        report.diagnoses = _diagnose(
            path,
            kind,
            w,
            label_arg if label_arg is not None else labels,
            path.schedule,
            xs,
            [float(t) for t in tgrid],
            gots,
            refs,
            float(rtol),
            float(atol),
        )
    return report


# The steps of ``check_field``, in order.


def _check_arguments(fn, kind, rtol, atol, w, null_label) -> float | None:
    """Check check_field's scalar arguments before any work; returns w as a float (or None)."""
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(x, t, y), got {fn!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for arg_name, v in (("rtol", rtol), ("atol", atol)):
        if (
            isinstance(v, bool)
            or not isinstance(v, numbers.Real)
            or not v >= 0
            or not math.isfinite(v)
        ):
            raise ValueError(f"{arg_name} must be a finite number >= 0, got {v!r}")
    if w is not None:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise ValueError(f"w must be None or a finite number, got {w!r}")
        w = float(w)
    if isinstance(null_label, bool) or not isinstance(null_label, numbers.Integral):
        raise TypeError(f"null_label must be an int, got {null_label!r}")
    return w


@dataclass
class _Draw:
    """The points of a check: the user's ``points`` (the same at every time) or z, eps drawn once
    (x_t = alpha_t z + beta_t eps); the labels (NULL rows unconditional) and their description."""

    n: int
    labels: np.ndarray
    label_desc: str
    points: np.ndarray | None = None
    z: np.ndarray | None = None
    eps: np.ndarray | None = None

    def at(self, t: float, schedule) -> np.ndarray:
        """The (n, d) points at time t (a fresh array)."""
        if self.points is not None:
            return self.points.copy()
        vals = schedule.values(t)
        return vals.alpha * self.z + vals.beta * self.eps


def _draw_points(path, y, w, n, points, rng) -> _Draw:
    """check_field's labels and points: ``points`` checked, or n points drawn from the exact path."""
    if points is not None:
        from ._validation import as_points

        if np.ndim(points) == 2 and np.shape(points)[0] == 0:
            raise ValueError(
                f"points has shape {np.shape(points)}: a check needs at least one point "
                f"(over none it would pass without testing anything)"
            )
        pts = as_points(points, path.d, "points")
        n = pts.shape[0]
    else:
        n = as_positive_int(n, "n")
        pts = None
    labels, label_desc = _resolve_labels(y, n, path.n_classes, w is not None)
    if pts is not None:
        return _Draw(n, labels, label_desc, points=pts)
    z, eps = _sample_z_eps(path, labels, rng)
    return _Draw(n, labels, label_desc, z=z, eps=eps)


def _exact_at(path, kind, x, t, label_arg, w):
    """(the exact values at (x, t), "") or (None, why) where the quantity is undefined or not
    finite there (such times are skipped with a note)."""
    try:
        with np.errstate(all="ignore"):
            ref = np.asarray(exact_values(path, kind, x, t, label_arg, w), dtype=np.float64)
    except ValueError as exc:
        return None, str(exc)
    if not np.all(np.isfinite(ref)):
        return None, f"the exact {kind} is not finite there"
    return ref, ""


def _call_field(fn, fname, x, t, y_user, d) -> np.ndarray:
    """The user's fn at (x, t, y) on copies, as a real (n, d) float64 array; FieldError naming
    what went wrong (it raised, returned None, or returned another shape)."""
    n = x.shape[0]
    try:
        raw = fn(x.copy(), np.full(n, t), y_user.copy())
    except (Exception, SystemExit) as exc:  # the user's code: report where it failed
        what = (
            f"SystemExit at t = {t:g}: it called sys.exit({exc.code!r})"
            if isinstance(exc, SystemExit)
            else f"{type(exc).__name__} at t = {t:g}: {exc}"
        )
        raise FieldError(f"{fname} raised {what}", "raised", t) from exc
    if raw is None:
        raise FieldError(
            f"{fname} returned None at t = {t:g}; it must return an ({n}, "
            f"{d}) array (is a return statement missing?)",
            "no_return",
            t,
        )
    got = _real_output(raw, fname, t)
    if got.shape != (n, d):
        raise FieldError(
            f"{fname} returned shape {got.shape} at t = {t:g}; required ({n}, "
            f"{d}) (x has shape ({n}, {d}))",
            "shape",
            t,
        )
    return got


def _compare(got, ref, t, rtol, atol):
    """Row errors of got against ref at one time: (TimeStats, |got - ref| per row (inf where got
    is not finite), relative error per row, finite mask). A row passes when
    |got - ref| <= atol + rtol |ref|."""
    finite = np.all(np.isfinite(got), axis=1)
    with np.errstate(all="ignore"):
        num, den = _row_rel(got, ref)
    num = np.where(finite, num, np.inf)
    rel = num / den
    fail = ~(num <= atol + rtol * den)
    fin = np.isfinite(num)
    stats = TimeStats(
        t=t,
        n=got.shape[0],
        max_abs=float(np.max(num)),
        mean_abs=float(np.mean(num)),
        max_rel=float(np.max(rel)),
        mean_rel=float(np.mean(rel)),
        n_fail=int(np.sum(fail)),
        n_nonfinite=int(np.sum(~fin)),
    )
    return stats, num, rel, fin


def _worst_row(t, x, ref, got, y_user, num, rel, fin):
    """The worst row at one time as (sort key, WorstPoint): the largest relative error among the
    finite rows; a non-finite row ranks above every finite one."""
    j = int(np.argmax(np.where(fin, rel, np.inf)))
    key = (0 if fin[j] else 1, float(rel[j]) if fin[j] else 0.0)
    point = WorstPoint(
        t=t,
        index=j,
        y=int(y_user[j]),
        x=x[j].tolist(),
        expected=ref[j].tolist(),
        got=got[j].tolist(),
        abs_err=float(num[j]),
        rel_err=float(rel[j]),
    )
    return key, point


# ----------------------------------------------------------------------------------------------
# adapters (optional dependencies, imported on call)
# ----------------------------------------------------------------------------------------------


def torch_field(
    model, *, device=None, dtype=None, t_as_column: bool = False, no_grad: bool = False
) -> Callable:
    """Wrap a PyTorch callable ``model(x, t, y) -> (N, d) tensor`` (an nn.Module or a function) as a
    NumPy field for :func:`check_field`. Inputs become tensors on ``device`` (default: the first
    parameter's device, else CPU) in ``dtype`` (default: the first parameter's dtype, else float64);
    labels are int64 tensors; t is (N,) or (N, 1) with ``t_as_column``. ``no_grad=True`` runs under
    ``torch.no_grad()`` (leave it False when the model differentiates internally, e.g. an autograd
    score). Requires torch (imported here, not at ``import refcfg``)."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("torch_field needs PyTorch: pip install torch") from exc
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t, y), got {model!r}")
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    dev = (
        torch.device(device)
        if device is not None
        else (params[0].device if params else torch.device("cpu"))
    )
    dt = dtype if dtype is not None else (params[0].dtype if params else torch.float64)

    def fn(x, t, y):
        xt = torch.as_tensor(x, dtype=dt, device=dev)
        tt = torch.as_tensor(t, dtype=dt, device=dev)
        if t_as_column:
            tt = tt[:, None]
        yt = torch.as_tensor(y, dtype=torch.int64, device=dev)
        if no_grad:
            with torch.no_grad():
                out = model(xt, tt, yt)
        else:
            out = model(xt, tt, yt)
        return out.detach().to("cpu", torch.float64).numpy()

    fn.__qualname__ = getattr(model, "__qualname__", type(model).__name__)
    return fn


def jax_field(fn: Callable, *, dtype=None) -> Callable:
    """Wrap a JAX function ``fn(x, t, y) -> (N, d)`` as a NumPy field for :func:`check_field`.
    Inputs become ``jnp`` arrays in ``dtype`` (default float64 if ``jax_enable_x64`` is on, else
    JAX's default float32: then pass e.g. rtol=1e-4). Requires jax (imported here)."""
    try:
        import jax.numpy as jnp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("jax_field needs JAX: pip install jax") from exc
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(x, t, y), got {fn!r}")

    def wrapped(x, t, y):
        out = fn(jnp.asarray(x, dtype=dtype), jnp.asarray(t, dtype=dtype), jnp.asarray(y))
        return np.asarray(out, dtype=np.float64)

    wrapped.__qualname__ = getattr(fn, "__qualname__", repr(fn))
    return wrapped
