"""The CFG combination u~ = w c + (1 - w) u (notes eq. 65): the one place it is written.

c is the conditional prediction (velocity, score, x0, eps or divergence), u the unconditional one
(or any reference: a weaker model in autoguidance, s* u in CFG-Zero*); w = 1 gives c, w = 0 gives u.
Every guided field, rule and check of refcfg calls ``combine``; it checks nothing (the public
entry points check their arguments first).

Of the two algebraic forms of the same combination, w c + (1 - w) u and u + w (c - u), this is the
first: it is the one the golden vectors (``verification/vectors``) were computed with, bit for bit.
The other rounds differently (in the last bits) and is not used.
"""

from __future__ import annotations

import numpy as np

__all__ = ["combine"]


def combine(c, u, w):
    """w c + (1 - w) u for predictions c, u of one shape (N, ...) and a weight w: a float, an (N,)
    array (one weight per row, broadcast over the other axes) or an array that broadcasts
    against c."""
    if np.ndim(w) == 1 and np.ndim(c) > 1:
        w = np.reshape(w, (-1,) + (1,) * (np.ndim(c) - 1))
    return w * c + (1.0 - w) * u
