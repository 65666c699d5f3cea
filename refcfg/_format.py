"""The one number formatter of refcfg's tables and reports.

It lives below every layer (it imports only NumPy) so that the checks, the studies and the reports
all print numbers through it; ``refcfg.plotting.format`` re-exports it.

``format_value(v)`` turns a table cell into text: 4 significant digits, scientific notation outside
[1e-3, 1e5), integers and booleans as they are, sequences and arrays element by element in
brackets. Keyword arguments select the other layouts in use (fixed decimals, other thresholds,
truncated arrays); every table of the package goes through this function.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["format_value"]


def format_value(
    v,
    *,
    digits: int = 4,
    fixed: bool = False,
    sci_below: float = 1e-3,
    sci_above: float = 1e5,
    max_items: int | None = None,
) -> str:
    """A value as text.

    Real numbers: scientific with ``digits - 1`` decimals when |v| < ``sci_below`` or |v| >=
    ``sci_above``; otherwise ``digits`` significant digits (``fixed=False``) or ``digits`` decimals
    (``fixed=True``). Zero is "0" when ``sci_below`` > 0 (it would otherwise read 0.000e+00); nan
    and inf as "nan", "inf". Integers and booleans as themselves; lists, tuples and arrays (0-d
    included) as "[a, b, ...]", cut after ``max_items`` entries with ", ..." when given; anything
    else by ``str``."""
    if isinstance(v, (bool, np.bool_)) or v is None:
        return str(bool(v)) if v is not None else "None"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if not math.isfinite(v):
            return str(v)
        a = abs(v)
        if a == 0.0 and sci_below > 0.0:
            return "0"
        if a < sci_below or a >= sci_above:
            return f"{v:.{max(digits - 1, 0)}e}"
        return f"{v:.{digits}f}" if fixed else f"{v:.{digits}g}"
    if isinstance(v, (list, tuple, np.ndarray)):
        flat = (
            list(np.ravel(np.asarray(v, dtype=object)))
            if not isinstance(v, np.ndarray)
            else list(np.ravel(v))
        )
        more = max_items is not None and len(flat) > max_items
        items = flat[:max_items] if more else flat
        kw = dict(digits=digits, fixed=fixed, sci_below=sci_below, sci_above=sci_above)
        return (
            "[" + ", ".join(format_value(x, **kw) for x in items) + (", ..." if more else "") + "]"
        )
    return str(v)
