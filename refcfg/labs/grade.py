"""The graders' common part: the ``Grade`` record and the comparison of a student's function with an
exact quantity on a list of cases, with the known mistakes that explain a failure.

A grader never raises for what the student wrote: a stub (``NotImplementedError``), an exception, a
missing ``return`` or a wrong shape is reported as a failing :class:`Grade` whose ``sentence`` says
what happened, so that a notebook goes on to the next cell. Bad grader arguments (the teacher's
side) raise ValueError/TypeError as everywhere in refcfg.

Two comparison routes:

- marginal fields (velocity, score, the guided fields) go through :func:`refcfg.validate.check_field`,
  and the sentence of a failure is the first diagnosis of its report (:func:`from_report`);
- the quantities ``check_field`` does not evaluate (a sample of the path, a loss, a training batch,
  an integrator step, the tilted log-density) are compared case by case by :func:`compare_cases`
  against their exact value and against each known mistake's formula.

Tolerance (both routes): a row passes when ||got - exact||_2 <= atol + rtol ||exact||_2, float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = [
    "Grade",
    "Case",
    "Mistake",
    "RTOL",
    "ATOL",
    "compare_cases",
    "from_report",
    "call_failure",
]

RTOL = 1e-6
"""Relative tolerance of every grader (per row, Euclidean norm)."""
ATOL = 1e-9
"""Absolute tolerance of every grader (rows whose exact value is 0, e.g. at t = 0)."""


@dataclass
class Grade:
    """The verdict of one grader call.

    ``passed``; ``sentence``: one sentence, what is right or what is wrong; ``code``: the stable code
    of the diagnosis ("" when passed; "not_implemented", "raised", "no_return", "shape",
    "nonfinite", "unexplained", or a mistake's code such as "w_convention", "time_reversed",
    "ab_swapped", "missing_a_t", "inverted_dropout" ...); ``where``: the times (or weights) compared
    and those left out with the reason; ``report``: the ``FieldReport`` when ``check_field`` made
    the comparison. It prints as one line starting with PASS or FAIL."""

    exercise: str
    passed: bool
    sentence: str
    code: str = ""
    where: str = ""
    report: object = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return bool(self.passed)

    def __str__(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.exercise}: {self.sentence}"
        return head + (f"\n     ({self.where})" if self.where else "")

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):  # IPython: the same text as print()
        p.text(str(self))


class Case(NamedTuple):
    """One comparison: a label for the messages ("t = 0.5", "w = 3"), the student function's
    arguments, and the exact value (or None with ``skip`` saying why it is left out)."""

    label: str
    args: tuple
    exact: np.ndarray | None
    skip: str = ""


class Mistake(NamedTuple):
    """A known mistake: a stable ``code``, the one ``sentence`` that names it, and its formula
    ``f(*args)`` evaluated on the case's arguments (the value the mistaken code returns)."""

    code: str
    sentence: str
    f: Callable


def call_failure(name: str, exc: BaseException, where: str) -> tuple[str, str]:
    """(code, sentence) for a student function that raised."""
    if isinstance(exc, NotImplementedError):
        return "not_implemented", (
            f"not written yet: `{name}` raises NotImplementedError; replace its body with your code"
        )
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return "raised", f"`{name}` raised {type(exc).__name__} at {where}" + (
        f": {msg}" if msg else ""
    )


def _as_rows(value) -> np.ndarray:
    """A result as a float64 2-D array of rows (scalars become one row, tuples are joined)."""
    if isinstance(value, tuple):
        parts = [_as_rows(v) for v in value]
        n = max(p.shape[0] for p in parts)
        parts = [np.broadcast_to(p, (n, p.shape[1])) if p.shape[0] == 1 else p for p in parts]
        return np.concatenate(parts, axis=1)
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a.reshape(a.shape[0], -1)


def _close(got: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> tuple[bool, float]:
    """(every row within tolerance, max relative error over the rows). The relative error of a row
    is ||got - exact|| / max(||exact||, atol / rtol): rows whose exact value is 0 (at t = 0, say)
    are measured against the absolute tolerance, as the pass rule does."""
    num = np.linalg.norm(got - ref, axis=-1)
    den = np.linalg.norm(ref, axis=-1)
    ok = bool(np.all(np.isfinite(got)) and np.all(num <= atol + rtol * den))
    with np.errstate(all="ignore"):
        rel = np.where(
            np.isfinite(num), num / np.maximum(den, atol / rtol if rtol > 0 else 1e-300), np.inf
        )
    return ok, float(np.max(rel)) if rel.size else 0.0


def _where(done: Sequence[str], skipped: Sequence[tuple[str, str]], per: str = "") -> str:
    if done and all(d.startswith("t = ") for d in done):
        done = ["t = " + ", ".join(d[4:] for d in done)]
    text = "compared at " + ", ".join(done) + per if done else "nothing compared"
    for label, reason in skipped:
        text += f"; {label} left out: {reason}"
    return text


def compare_cases(
    exercise: str,
    fn: Callable,
    cases: Sequence[Case],
    mistakes: Sequence[Mistake],
    *,
    what: str,
    name: str | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Grade:
    """Compare ``fn(*case.args)`` with ``case.exact`` for every case.

    PASS when every compared case is within tolerance. Otherwise the sentence is, in this order:
    the failure of the call itself (stub, exception, None, shape); a mistake whose formula the
    output matches within tolerance at every case; non-finite output; else the largest error and
    the case where it occurs. ``what`` names the quantity in the sentences ("x_t", "the loss" ...)."""
    name = name or getattr(fn, "__name__", "your function")
    done = [c.label for c in cases if c.exact is not None]
    skipped = [(c.label, c.skip) for c in cases if c.exact is None]
    where = _where(done, skipped)
    gots = []
    for c in cases:
        if c.exact is None:
            gots.append(None)
            continue
        try:
            with np.errstate(all="ignore"):
                raw = fn(*_copies(c.args))  # the case's arrays stay as they are for the mistakes
        except Exception as exc:  # noqa: BLE001 -- the student's code: report it, never raise
            code, sentence = call_failure(name, exc, c.label)
            return Grade(exercise, False, sentence, code, where)
        if raw is None:
            return Grade(
                exercise,
                False,
                f"`{name}` returned None at {c.label}: is the `return` statement missing?",
                "no_return",
                where,
            )
        try:
            got = _as_rows(raw)
        except (TypeError, ValueError) as exc:
            return Grade(
                exercise,
                False,
                f"`{name}` returned {type(raw).__name__} at {c.label}, which is not numeric: {exc}",
                "shape",
                where,
            )
        ref = _as_rows(c.exact)
        if got.shape != ref.shape:
            return Grade(
                exercise,
                False,
                f"`{name}` returned {_shape(raw)} at {c.label} where {what} has {_shape(c.exact)}",
                "shape",
                where,
            )
        gots.append(got)
    worst = (-1.0, "")
    all_ok = True
    for c, got in zip(cases, gots):
        if got is None:
            continue
        ok, rel = _close(got, _as_rows(c.exact), rtol, atol)
        all_ok &= ok
        if rel > worst[0]:
            worst = (rel, c.label)
    if all_ok:
        return Grade(
            exercise,
            True,
            f"correct: {what} agrees with the exact value (max rel err {worst[0]:.1e})",
            "",
            where,
        )
    for m in mistakes:
        if _matches(m, cases, gots, rtol, atol):
            return Grade(exercise, False, m.sentence, m.code, where)
    bad = [c.label for c, g in zip(cases, gots) if g is not None and not np.all(np.isfinite(g))]
    if bad:
        return Grade(
            exercise,
            False,
            f"{what} is NaN or infinite at {', '.join(bad)}, where the exact value is finite",
            "nonfinite",
            where,
        )
    return Grade(
        exercise,
        False,
        f"{what} differs from the exact value (max rel err "
        f"{worst[0]:.2g} at {worst[1]}) and matches none of the known mistakes",
        "unexplained",
        where,
    )


def _copies(args: tuple) -> tuple:
    """The arguments with every array copied: a student function that changes its inputs in place
    (``x += ...``) must not change the case that the exact value and the mistakes are computed on."""
    return tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args)


def _matches(m: Mistake, cases, gots, rtol, atol) -> bool:
    """True when the output equals the mistake's formula within tolerance at every compared case
    and the formula differs from the exact value somewhere (else it explains nothing)."""
    differs = False
    for c, got in zip(cases, gots):
        if got is None:
            continue
        try:
            with np.errstate(all="ignore"):
                cand = _as_rows(m.f(*_copies(c.args)))
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return False
        if cand.shape != got.shape or not np.all(np.isfinite(cand)):
            return False
        if not _close(got, cand, rtol, atol)[0]:
            return False
        differs |= not _close(cand, _as_rows(c.exact), rtol, atol)[0]
    return differs


def _shape(value) -> str:
    if isinstance(value, tuple):
        return "a tuple of " + ", ".join(_shape(v) for v in value)
    shape = np.shape(value)
    return "a scalar" if shape == () else f"shape {shape}"


def from_report(exercise: str, report, *, extra_skipped: Sequence[tuple[str, str]] = ()) -> Grade:
    """A Grade from a :class:`refcfg.validate.FieldReport`: the first diagnosis that names a
    formula the output matches ("exact", then "close"), else the non-finite note, else the largest
    error. Its sentence is the diagnosis' own message (one source: ``refcfg check`` says the same)."""
    done = [f"t = {s.t:g}" for s in report.per_t]
    skipped = [(f"t = {t:g}", _short(r)) for t, r in report.skipped] + list(extra_skipped)
    where = _where(done, skipped, f" ({report.n} points each)")
    what = {"velocity": "the velocity", "score": "the score", "x0": "x0", "eps": "eps"}[report.kind]
    if report.passed:
        return Grade(
            exercise,
            True,
            f"correct: {what} agrees with the exact field (max rel err {report.max_rel:.1e})",
            "",
            where,
            report,
        )
    diags = list(report.diagnoses)
    for match in ("exact", "close"):
        for d in diags:
            if d.match == match:
                return Grade(exercise, False, _sentence(d.message), d.code, where, report)
    for d in diags:
        if d.code == "nonfinite":
            return Grade(exercise, False, _sentence(d.message), d.code, where, report)
    wp = report.worst
    at = f" at t = {wp.t:g}" if wp is not None else ""
    small = next((d for d in diags if d.code == "small_error"), None)
    if small is not None:
        return Grade(exercise, False, _sentence(small.message), small.code, where, report)
    return Grade(
        exercise,
        False,
        f"{what} differs from the exact field (max rel err "
        f"{report.max_rel:.2g}{at}) and matches none of the known mistakes",
        "unexplained",
        where,
        report,
    )


def _sentence(message: str) -> str:
    """A diagnosis message as one sentence ending with a full stop."""
    message = message.strip()
    return message if message.endswith(".") else message + "."


def _short(reason: str) -> str:
    """The first clause of a skip reason (check_field's are several sentences long)."""
    reason = reason.split(". ")[0]
    return reason if len(reason) <= 160 else reason[:157] + "..."
