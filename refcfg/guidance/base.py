"""The field protocol, the exact field, and the description of lowerable fields.

A *field* is any object with ``velocity(x, t) -> (N, d)`` (x (N, d), t a float or (N,)); SDE samplers
also call ``score(x, t)``. ``Field`` derives ``score``, ``x0`` and ``eps`` from the velocity through
``refcfg.convert``; exact fields (``ExactField``) give them, ``log_prob`` and ``divergence`` in
closed form.

Lowering: a field that is a linear combination of exact Gaussian-mixture fields declares it in a
method ``_terms`` and ``linear_terms(field)`` returns the flat list of ``LinearTerm`` records that the
fast backends evaluate; every other field raises ``NotLowerable`` there (and runs on NumPy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .._validation import NULL, _describe, as_label
from ..paths import GMMPath, as_path
from ..schedules import Schedule

__all__ = [
    "Field",
    "ExactField",
    "NotLowerable",
    "LinearTerm",
    "Scaled",
    "linear_terms",
    "MATH_METHODS",
]


class Field:
    """Base class of refcfg's field objects (the protocol is duck-typed: any object with
    ``velocity(x, t)`` works with the samplers).

    A subclass implements ``velocity``; ``score``, ``x0`` and ``eps`` then follow from it through the
    one conversion, ``refcfg.convert`` (endpoint-safe where the limit exists: the score at
    alpha_t = 0 is -x / beta_t^2), which needs ``self.schedule``. Exact fields override them with
    their closed forms."""

    d: int
    schedule: Schedule | None = None

    def velocity(self, x, t) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def _converted(self, target, x, t):
        from .. import convert

        if self.schedule is None:
            raise TypeError(
                f"{type(self).__name__}.{target} needs the field's schedule to convert "
                f"its velocity; the field declares schedule = None"
            )
        fn = {
            "score": convert.velocity_to_score,
            "x0": convert.velocity_to_x0,
            "eps": convert.velocity_to_eps,
        }[target]
        return fn(self.velocity(x, t), x, t, self.schedule)

    def score(self, x, t) -> np.ndarray:
        """grad log p_t(x) implied by the velocity (``refcfg.convert.velocity_to_score``), (N, d)."""
        return self._converted("score", x, t)

    def x0(self, x, t) -> np.ndarray:
        """E[z | x_t = x] implied by the velocity (``refcfg.convert.velocity_to_x0``), (N, d)."""
        return self._converted("x0", x, t)

    def eps(self, x, t) -> np.ndarray:
        """E[eps | x_t = x] implied by the velocity (``refcfg.convert.velocity_to_eps``), (N, d)."""
        return self._converted("eps", x, t)


# ---------------------------------------------------------------------------------------------
# Lowering: a field as a linear combination of exact Gaussian-mixture fields
# ---------------------------------------------------------------------------------------------


class NotLowerable(TypeError):
    """The field is not a linear combination of exact Gaussian-mixture fields (or it overrides the
    mathematics of a lowerable class without declaring how it lowers)."""


class LinearTerm(NamedTuple):
    """One term coef * tcoef(t) * u_t(x | path, y) of a lowered field.

    path: the exact ``GMMPath`` whose field the term evaluates; y: None (unconditional), an int class,
    or an (n,) int64 array of per-particle labels (NULL (-1) entries unconditional); coef: a float or
    an (n,) array (particle factor); tcoef: None (1) or f(t: (T,) float64) -> (T,) (time factor)."""

    path: object
    y: None | int | np.ndarray
    coef: float | np.ndarray
    tcoef: Callable | None


class Scaled(NamedTuple):
    """A sub-field coef * tcoef(t) * field inside a ``_terms`` decomposition; ``linear_terms``
    lowers ``field`` recursively and multiplies the factors into its terms."""

    field: object
    coef: float | np.ndarray = 1.0
    tcoef: Callable | None = None


MATH_METHODS = ("velocity", "score", "x0", "eps", "divergence", "log_prob")
"""The methods whose mathematics a ``_terms`` declaration vouches for (see ``linear_terms``)."""


class _TimeProduct:
    """t -> f(t) * g(t) as a float64 array of t's shape (composed time factors)."""

    def __init__(self, f, g):
        self.factors = tuple(f.factors if isinstance(f, _TimeProduct) else (f,)) + tuple(
            g.factors if isinstance(g, _TimeProduct) else (g,)
        )

    def __call__(self, t):
        t = np.asarray(t, dtype=np.float64)
        out = np.ones(t.shape)
        for f in self.factors:
            out = out * np.broadcast_to(np.asarray(f(t), dtype=np.float64), t.shape)
        return out

    def __repr__(self) -> str:
        return " * ".join(repr(f) for f in self.factors)


def _times(f, g):
    if f is None:
        return g
    if g is None:
        return f
    return _TimeProduct(f, g)


def _particles(a, b):
    """Product of two particle factors (floats or (n,) arrays of the same n)."""
    if np.ndim(a) == 0 and np.ndim(b) == 0:
        return float(a) * float(b)
    if np.ndim(a) == 1 and np.ndim(b) == 1 and len(a) != len(b):
        raise ValueError(
            f"per-particle weights of nested fields have lengths {len(a)} and {len(b)}; "
            f"one length n is required"
        )
    return np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)


def _lowering_owner(obj):
    """The class that declares how ``obj`` lowers (first ``_terms`` in the MRO), after checking that
    every mathematical method resolves there or above it; NotLowerable otherwise."""
    tp = type(obj)
    owner = next((k for k in tp.__mro__ if "_terms" in vars(k)), None)
    if owner is None and isinstance(obj, GMMPath):
        owner = GMMPath  # the leaf: a path's own field is its unconditional field (``_parts``)
    if owner is None:
        raise NotLowerable(
            f"{tp.__name__} is not a linear combination of exact Gaussian-mixture fields "
            f"(it declares no _terms); it runs on backend='numpy'"
        )
    allowed = set(owner.__mro__)
    names = MATH_METHODS + tuple(getattr(owner, "_lowering_methods", ()))
    inst = getattr(obj, "__dict__", {})
    for name in names:
        if name in inst:
            raise NotLowerable(
                f"this {tp.__name__} object has its own attribute {name} replacing the "
                f"method; it runs on backend='numpy'"
            )
        klass = next((k for k in tp.__mro__ if name in vars(k)), None)
        if klass is not None and klass not in allowed:
            where = "" if klass is tp else f" (a base of {tp.__name__})"
            raise NotLowerable(
                f"{klass.__name__}{where} overrides {name} without declaring _terms; "
                f"it runs on backend='numpy'"
            )
    return owner


def _parts(field, owner):
    """The decomposition of ``field`` declared by ``owner`` (``_lowering_owner``): its ``_terms``,
    or for an exact ``GMMPath`` the leaf u_t(x | path, None)."""
    if owner is GMMPath:
        return [LinearTerm(field, None, 1.0, None)]
    return field._terms()


def _expand(field, coef, tcoef, out, depth):
    if depth > 200:
        raise NotLowerable("the field tree is nested more than 200 levels deep (a cycle?)")
    parts = _parts(field, _lowering_owner(field))
    for part in parts:
        if isinstance(part, LinearTerm):
            _lowering_owner(part.path)
            y = part.y
            if y is not None and np.ndim(y) == 1:
                y = np.asarray(y, dtype=np.int64)
            elif y is not None:
                y = None if int(y) == NULL else int(y)
            out.append(
                LinearTerm(part.path, y, _particles(coef, part.coef), _times(tcoef, part.tcoef))
            )
        elif isinstance(part, Scaled):
            _expand(
                part.field, _particles(coef, part.coef), _times(tcoef, part.tcoef), out, depth + 1
            )
        else:
            raise TypeError(
                f"{type(field).__name__}._terms() must return LinearTerm or Scaled items, "
                f"got {_describe(part)}"
            )


def linear_terms(field) -> list[LinearTerm]:
    """The field as sum_g coef_g * tcoef_g(t) * u_t(x | path_g, y_g), or raise ``NotLowerable``.

    Each lowerable class declares its decomposition in a method ``_terms(self)`` returning
    ``LinearTerm`` leaves and ``Scaled`` sub-fields (expanded recursively: particle factors multiply,
    time factors multiply); an exact ``GMMPath`` is the leaf u_t(x | path, None) (paths sit below
    guidance and declare nothing here). Subclass safety: for type(field), every method of
    ``MATH_METHODS`` must resolve in the class that defines ``_terms`` (first in the MRO;
    ``GMMPath`` for a path) or in a base of it; a subclass overriding e.g. ``velocity`` without its
    own ``_terms`` raises NotLowerable naming the class and the method, so the override is never
    replaced by the exact formula. The same check applies to every path a term evaluates. The same
    coefficients give the guided score (linear in the terms).

    ValueError when per-particle arrays (labels, weights) of the terms have different lengths."""
    out: list[LinearTerm] = []
    _expand(field, 1.0, None, out, 0)
    rows = [np.asarray(a) for term in out for a in (term.y, term.coef) if a is not None]
    n = {len(a) for a in rows if a.ndim == 1}
    if len(n) > 1:
        raise ValueError(
            f"the field holds per-particle labels or weights of different lengths "
            f"{sorted(n)}; one length n is required"
        )
    return out


class ExactField(Field):
    """The exact field of a ``GMMPath`` for label y (None/NULL: unconditional)."""

    def __init__(self, path, y=None):
        self.path = as_path(path)
        self.y = as_label(y, path.n_classes)
        self.d = path.d
        self.schedule = path.schedule

    def __repr__(self) -> str:
        return f"ExactField(y={self.y!r}, d={self.d}, schedule={self.schedule!r})"

    def _terms(self):
        return [LinearTerm(self.path, self.y, 1.0, None)]

    def velocity(self, x, t):
        """u_t(x|y), (N, d)."""
        return self.path.velocity(x, t, self.y)

    def score(self, x, t):
        """grad log p_t(x|y), (N, d)."""
        return self.path.score(x, t, self.y)

    def x0(self, x, t):
        """E[z | x_t = x, y], (N, d)."""
        return self.path.x0(x, t, self.y)

    def eps(self, x, t):
        """E[eps | x_t = x, y], (N, d)."""
        return self.path.eps(x, t, self.y)

    def log_prob(self, x, t):
        """log p_t(x|y), (N,)."""
        return self.path.log_prob(x, t, self.y)

    def divergence(self, x, t):
        """div_x u_t(x|y), (N,)."""
        return self.path.divergence(x, t, self.y)
