"""Input validation shared by the public layer.

Every public function converts and checks its arguments here, then calls private kernels that check
nothing. Each failure is a ``ValueError`` (or ``TypeError`` for the wrong kind of object) whose message
names the argument, what it got and what was required.
"""

from __future__ import annotations

import numbers

import numpy as np

NULL = -1
"""The null label (the notes' empty token): unconditional, inside label arrays."""


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_float_array(value, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Convert to a float64 array, rejecting non-numeric input and NaN/inf."""
    if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
        raise TypeError(f"{name} must be a numeric array, got {_describe(value)}")
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iuf":            # bool, complex, object, strings ...
            raise TypeError
        arr = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real numeric array, got {_describe(value)}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite value(s)")
    return arr


X_MAX = 1e100
"""Largest accepted |x| entry: quadratic forms of larger points overflow float64."""


def as_points(x, d: int, name: str = "x", context: str = "the problem") -> np.ndarray:
    """x as a finite float64 array of shape (N, d) with N >= 1 and entries |x| <= X_MAX."""
    arr = as_float_array(x, name)
    if arr.ndim != 2 or arr.shape[1] != d or arr.shape[0] < 1:
        raise ValueError(f"{name} has shape {arr.shape} but {context} requires (N, {d}) with N >= 1")
    big = float(np.max(np.abs(arr)))
    if big > X_MAX:
        raise ValueError(f"{name} has entries up to {big:.3g}; |{name}| <= {X_MAX:g} is required "
                         f"(quadratic forms would overflow float64)")
    return arr


def as_times(t, n: int, name: str = "t") -> np.ndarray | float:
    """t as a float in [0, 1] or a float64 array of shape (n,) with entries in [0, 1]."""
    if isinstance(t, (bool, np.bool_)):
        raise TypeError(f"{name} must be a float or an array of floats, got {t!r}")
    arr = as_float_array(t, name)
    if arr.ndim == 0:
        value = float(arr)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        return value
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape} but x implies a float or shape ({n},)")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{float(arr.min())!r}, "
                         f"{float(arr.max())!r}]")
    return arr


def as_labels(y, n: int, n_classes: int, name: str = "y") -> np.ndarray | None:
    """Labels as None (unconditional) or an int64 array of shape (n,) with entries in
    {0, ..., n_classes - 1} or NULL (-1). A scalar label is broadcast to (n,)."""
    if y is None:
        return None
    if isinstance(y, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer label, None or an integer array, got {y!r}")
    if isinstance(y, numbers.Integral):
        if int(y) != NULL and not 0 <= int(y) < n_classes:
            raise ValueError(f"{name} must be in 0..{n_classes - 1} or NULL (-1), got {int(y)}")
        return np.full(n, int(y), dtype=np.int64)
    raw = np.asarray(y)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer label, None or an integer array, got {_describe(y)}")
    if raw.ndim == 0:
        raw = np.full(n, raw)
    elif raw.shape != (n,):
        raise ValueError(f"{name} has shape {raw.shape} but x implies an int or shape ({n},)")
    if raw.dtype.kind == "u":                                 # unsigned: no NULL, no negatives
        bad = raw >= n_classes
    else:                                                     # checked before any cast
        bad = (raw != NULL) & ((raw < 0) | (raw >= n_classes))
    if np.any(bad):
        raise ValueError(f"{name} must be in 0..{n_classes - 1} or NULL (-1), got {raw[bad][0]}")
    return raw.astype(np.int64)


def as_weight(w, n: int, name: str = "w") -> float | np.ndarray:
    """Guidance weight: a finite float or a finite (n,) array."""
    if isinstance(w, (bool, np.bool_)):
        raise TypeError(f"{name} must be a float, got {w!r}")
    arr = as_float_array(w, name)
    if arr.ndim == 0:
        return float(arr)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape} but x implies a float or shape ({n},)")
    return arr


def as_positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {_describe(value)}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def as_generator(seed) -> np.random.Generator:
    """A ``np.random.Generator`` from None, an int seed, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(seed, numbers.Integral) and seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a np.random.Generator, got {_describe(seed)}")
