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


def as_float_array(value, name: str, *, ndim: int | None = None, copy: bool = True) -> np.ndarray:
    """Convert to a float64 array, rejecting non-numeric input and NaN/inf. With ``copy=False``
    a float64 array comes back as itself (for callers that only read it)."""
    if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
        raise TypeError(f"{name} must be a numeric array, got {_describe(value)}")
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iuf":  # bool, complex, object, strings ...
            raise TypeError
        arr = raw.astype(np.float64, copy=copy)
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


def as_points(
    x,
    d: int,
    name: str = "x",
    context: str = "the problem",
    *,
    allow_empty: bool = False,
    copy: bool = True,
) -> np.ndarray:
    """x as a finite float64 array of shape (N, d) with entries |x| <= X_MAX; N >= 1 unless
    ``allow_empty`` (the public field functions map (0, d) to an empty output, as NumPy does).
    ``copy=False``: a float64 array comes back as itself (for callers that only read it)."""
    arr = as_float_array(x, name, copy=copy)
    n_min = 0 if allow_empty else 1
    if arr.ndim != 2 or arr.shape[1] != d or arr.shape[0] < n_min:
        raise ValueError(
            f"{name} has shape {arr.shape} but {context} requires (N, {d}) with N >= {n_min}"
        )
    if arr.size == 0:
        return arr
    big = max(float(arr.max()), -float(arr.min()))  # reductions: no |x| temporary
    if big > X_MAX:
        raise ValueError(
            f"{name} has entries up to {big:.3g}; |{name}| <= {X_MAX:g} is required "
            f"(quadratic forms would overflow float64)"
        )
    return arr


def require_finite_result(value, what: str) -> None:
    """ValueError when a computed field ``what`` has NaN or infinite entries: the points are too
    large for float64 at this t (every backend raises this same error instead of returning them)."""
    if not np.all(np.isfinite(value)):
        raise ValueError(f"non-finite {what} for some points (x too large for float64 at this t?)")


def require_bounded_state(x, what: str = "sampling") -> None:
    """ValueError when an integrator's state leaves |x| <= ``X_MAX`` (or is not finite): the guided
    field grew faster than float64 can follow. Every backend raises this same error; the NumPy
    integrators check before each field evaluation, the compiled ones their result."""
    x = np.asarray(x)
    # two reductions, no |x| temporary (x may be a whole trajectory); NaN fails both comparisons;
    # compared as Python floats (X_MAX does not fit a float32 state: no overflowing cast)
    if x.size and not (float(x.max()) <= X_MAX and float(x.min()) >= -X_MAX):
        raise ValueError(
            f"{what} diverged: the state left |x| <= {X_MAX:g} (float64 quadratic "
            f"forms would overflow); lower |w|, shorten the steps, or end before t = 1 "
            f"where the field is singular"
        )


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
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{float(arr.min())!r}, {float(arr.max())!r}]"
        )
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
        raise TypeError(
            f"{name} must be an integer label, None or an integer array, got {_describe(y)}"
        )
    if raw.ndim == 0:
        raw = np.full(n, raw)
    elif raw.shape != (n,):
        raise ValueError(f"{name} has shape {raw.shape} but x implies an int or shape ({n},)")
    if raw.dtype.kind == "u":  # unsigned: no NULL, no negatives
        bad = raw >= n_classes
    else:  # checked before any cast
        bad = (raw != NULL) & ((raw < 0) | (raw >= n_classes))
    if np.any(bad):
        raise ValueError(f"{name} must be in 0..{n_classes - 1} or NULL (-1), got {raw[bad][0]}")
    return raw.astype(np.int64)


W_MAX = 1e6
"""Largest accepted |w| of a guidance weight. The guided field w c + (1 - w) u carries the rounding
of c and u times |w| (about |w| x 1e-16 relative), and its trajectories reach |x| ~ |w| x the data's
scale; beyond 1e6 the first is no longer negligible and the second soon overflows float64's quadratic
forms (``X_MAX``)."""


def _bounded_weight(arr: np.ndarray, name: str) -> None:
    big = float(np.max(np.abs(arr))) if arr.size else 0.0
    if big > W_MAX:
        raise ValueError(
            f"{name} must satisfy |{name}| <= {W_MAX:g} (a guidance weight; w = 1 is no "
            f"guidance), got {big:.3g}"
        )


def as_weight(w, n: int, name: str = "w") -> float | np.ndarray:
    """Guidance weight: a finite float or a finite (n,) array, |w| <= ``W_MAX``."""
    if isinstance(w, (bool, np.bool_)):
        raise TypeError(f"{name} must be a float, got {w!r}")
    arr = as_float_array(w, name)
    _bounded_weight(arr, name)
    if arr.ndim == 0:
        return float(arr)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape} but x implies a float or shape ({n},)")
    return arr


def as_scalar_weight(w, name: str = "w") -> float:
    """A scalar guidance weight of a rule: a real number (not a bool), finite, |w| <= ``W_MAX``."""
    v = as_real(w, name)
    _bounded_weight(np.asarray(v), name)
    return v


WEIGHT_TOL = 1e-8
"""Mixture weights must sum to 1 within this absolute tolerance (they are then renormalised)."""


def as_probabilities(weights, name: str) -> np.ndarray:
    """A non-empty 1-D vector of weights >= 0 summing to 1 within ``WEIGHT_TOL``, renormalised."""
    w = as_float_array(weights, name, ndim=1)
    if w.size == 0:
        raise ValueError(f"{name} must hold at least one weight, got an empty array")
    if np.any(w < 0):
        raise ValueError(f"{name} must be >= 0, got minimum {float(w.min())!r}")
    total = w.sum()
    if abs(total - 1.0) > WEIGHT_TOL:
        raise ValueError(
            f"{name} must sum to 1 (tolerance {WEIGHT_TOL:g}), got sum {float(total)!r}"
        )
    return w / total


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
    if isinstance(seed, numbers.Integral):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        return np.random.default_rng(int(seed))
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a np.random.Generator, got {_describe(seed)}")


def as_real(
    value,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    gt: float | None = None,
    allow_inf: bool = False,
    context: str = "",
) -> float:
    """A real scalar parameter as a float: finite (or +-inf when ``allow_inf``), >= lo, <= hi and
    > gt where given. ``context`` (e.g. " for schedule 'vp'") is appended to the messages."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{context}, got {_describe(value)}")
    v = float(value)
    if v != v or (v in (float("inf"), float("-inf")) and not allow_inf):
        raise ValueError(f"{name} must be finite{context}, got {v!r}")
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo}{context}, got {v!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}{context}, got {v!r}")
    if gt is not None and not v > gt:
        raise ValueError(f"{name} must be > {gt}{context}, got {v!r}")
    return v


def as_int(value, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """An integer parameter (not a bool) in [lo, hi] where given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_describe(value)}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        if hi is None:
            need = f">= {lo}"
        elif lo is None:
            need = f"<= {hi}"
        else:
            need = f"in {lo}..{hi}"
        raise ValueError(f"{name} must be {need}, got {v}")
    return v


def as_choice(value, name: str, choices) -> str:
    """One of ``choices`` (a tuple of names)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {_describe(value)}")
    return value


def as_label(y, n_classes: int, name: str = "y"):
    """A label given at construction: None/NULL -> None, an int class, or a 1-D int array (int64,
    NULL entries allowed), each in 0..n_classes - 1."""
    if y is None:
        return None
    if isinstance(y, (bool, np.bool_)):
        raise TypeError(f"{name} must be None, an int label or an int array, got {y!r}")
    if isinstance(y, numbers.Integral):
        if y != NULL and not 0 <= int(y) < n_classes:
            raise ValueError(f"{name} must be in 0..{n_classes - 1} or NULL (-1), got {y}")
        return None if y == NULL else int(y)
    arr = np.asarray(y)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be None, an int label or a 1-D int array, got {_describe(y)}")
    bad = (arr != NULL) & ((arr < 0) | (arr >= n_classes))
    if np.any(bad):
        raise ValueError(
            f"{name} must be in 0..{n_classes - 1} or NULL (-1), got {int(arr[bad][0])}"
        )
    return arr.astype(np.int64)


def as_guidance_weight(w, name: str = "w"):
    """A guidance weight given at construction: a finite float, or a finite 1-D array (one weight
    per particle; its length is checked against the points when the field is evaluated)."""
    if isinstance(w, (bool, np.bool_)):
        raise TypeError(f"{name} must be a float, got {w!r}")
    arr = as_float_array(w, name)
    _bounded_weight(arr, name)
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a float or a 1-D array (one weight per point), got shape {arr.shape}"
        )
    return arr


def as_weight_rows(w, n: int, name: str = "w") -> np.ndarray:
    """A weight (float or (n,) array) as an (n, 1) column broadcasting over the coordinates."""
    if isinstance(w, (bool, np.bool_)):
        raise TypeError(f"{name} must be a float or an (N,) array, got {w!r}")
    arr = as_float_array(w, name)
    _bounded_weight(arr, name)
    if arr.ndim == 0:
        return np.full((n, 1), float(arr))
    if arr.shape != (n,):
        raise ValueError(
            f"{name} has shape {arr.shape} but the predictions imply a float or ({n},)"
        )
    return arr[:, None]


def as_prediction_pair(c, u, name_c: str = "c", name_u: str = "u") -> tuple[np.ndarray, np.ndarray]:
    """Two predictions as finite float64 (N, d) arrays of the same shape."""
    c = as_float_array(c, name_c, ndim=2)
    u = as_float_array(u, name_u, ndim=2)
    if c.shape != u.shape:
        raise ValueError(
            f"{name_c} has shape {c.shape} but {name_u} has shape {u.shape}; "
            f"equal (N, d) shapes are required"
        )
    return c, u


def as_unit_times(t, name: str = "t") -> np.ndarray:
    """Times of any shape as a float64 array with entries in [0, 1] (schedules)."""
    arr = as_float_array(t, name)
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{float(arr.min())!r}, {float(arr.max())!r}]"
        )
    return arr


def as_row_times(t, n: int, name: str = "t") -> np.ndarray:
    """t (a float or (n,)) in [0, 1] as an (n,) float64 array."""
    tt = as_times(t, n, name)
    return np.full(n, tt) if np.ndim(tt) == 0 else np.asarray(tt)


def as_increasing_grid(grid, name: str = "t_grid") -> np.ndarray:
    """A 1-D strictly increasing float64 grid."""
    g = as_float_array(grid, name, ndim=1)
    if np.any(np.diff(g) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return g


def require_nonzero(q, t, what: str) -> None:
    """ValueError naming the first time t where the divisor ``q`` (broadcast to t's rows) is 0."""
    q = np.asarray(q)
    if np.any(q == 0):
        tt = np.atleast_1d(t)
        bad = tt[np.nonzero(np.broadcast_to(q.ravel(), tt.shape) == 0)[0][0]]
        raise ValueError(
            f"t = {float(bad)!r}: this conversion divides by {what} = 0 there and is undefined"
        )


def require_positive_alpha(alpha, tt, what: str, schedule_name: str) -> None:
    """ValueError naming the first time where alpha_t = 0 for a quantity that divides by alpha_t."""
    zero = np.atleast_1d(alpha <= 0.0)
    if np.any(zero):
        bad = float(np.atleast_1d(tt)[zero][0])
        raise ValueError(
            f"t = {bad!r}: {what} is undefined where alpha_t = 0 "
            f"(t = 0 for schedule {schedule_name!r}); it diverges like 1/alpha_t"
        )


TOML_MAX_DEPTH = 32
"""Deepest nesting of arrays and tables a TOML input file may have (problem files need 4)."""


def read_toml_file(path, what: str) -> dict:
    """The parsed TOML file ``path`` (``what``: "problem file", "spec file", ... for the messages).
    A ValueError names the file and the cause when it is missing, a directory, unreadable or not
    valid TOML, too large for the memory budget (estimated from its size before reading), not UTF-8
    (with the position of the first bad byte), or nested deeper than ``TOML_MAX_DEPTH`` (instead
    of a RecursionError from the parser or from the code that walks the result)."""
    import tomllib
    from pathlib import Path

    from ._limits import require_memory

    path = Path(path)
    name = f"{what} {str(path)!r}"
    try:
        size = path.stat().st_size
        if path.is_file():
            # parsed TOML holds a Python object per number: about 50 bytes per input byte at most
            require_memory(64.0 * size, f"reading {name} ({size} bytes)", "the size of the file")
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ValueError(f"{name} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{name} is a directory; required a TOML file") from None
    except OSError as exc:
        raise ValueError(f"{name} cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{name} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start} cannot be decoded); TOML files must be saved as UTF-8"
        ) from None
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise ValueError(
            f"{name} nests arrays or tables too deeply to be parsed (at most "
            f"{TOML_MAX_DEPTH} levels are accepted)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{name} is not valid TOML: {exc}") from None
    stack: list[tuple[dict | list, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > TOML_MAX_DEPTH:
            raise ValueError(
                f"{name} nests arrays or tables {depth} levels deep; at most "
                f"{TOML_MAX_DEPTH} are accepted"
            )
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in children if isinstance(v, (dict, list)))
    return doc


def numeric_tree(value, where: str):
    """``value`` if it is a number or a (nested) list of numbers; ValueError naming the first entry
    that is not (a string such as "1.0", a boolean, a table) with its index path, e.g.
    ``classes[0].weights[1]``. A file's numbers are never parsed from strings or taken from
    booleans."""
    stack = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, list):
            stack.extend((item, f"{at}[{i}]") for i, item in reversed(list(enumerate(v))))
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = {bool: "a boolean", str: "a string", dict: "a table"}.get(
                type(v), type(v).__name__
            )
            raise ValueError(f"field {at} must be a number, got {kind} ({v!r})")
        elif not abs(v) < 1.7976931348623157e308:  # nan, inf, or an int beyond float64
            got = f"an integer of {len(str(abs(v)))} digits" if isinstance(v, int) else repr(v)
            raise ValueError(f"field {at} must be a finite float64 number, got {got}")
    return value
