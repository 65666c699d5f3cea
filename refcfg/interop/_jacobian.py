"""The closed-form Jacobian of a Gaussian-mixture field in x, and its vector-Jacobian products.

On refcfg's path component k of the data law, N(mu_k, Sigma_k), has p_t-component
N(alpha mu_k, S_k) with the marginal covariance S_k = alpha^2 Sigma_k + beta^2 I, and its velocity
is affine in x (eq. 18 per component):

    m_k(x) = dalpha mu_k + G_k (x - alpha mu_k),
    G_k = (alpha dalpha Sigma_k + beta dbeta I) S_k^-1.

The field is u(x) = sum_k r_k(x) m_k(x) with responsibilities r_k = softmax_k(log pi_k +
log N(x; alpha mu_k, S_k)), so, with l_k = grad log N_k = -S_k^-1 (x - alpha mu_k) and the score
s = sum_k r_k l_k (grad r_k = r_k (l_k - s)),

    J = du/dx = sum_k r_k G_k + sum_k r_k (m_k - u)(l_k - s)^T.

G_k and S_k share Sigma_k's eigenvectors, so both are evaluated in its eigenbasis (G_k symmetric). A
lowerable field (``refcfg.guidance.linear_terms``: a linear combination of such fields, CFG eq. 65
included) has the same combination of Jacobians. The other predictions are linear in (u, x) at fixed
t (``refcfg.convert``; v = alpha eps - beta x0), so J_p = P_u J + P_x I with the per-row
coefficients read off those conversions.
"""

from __future__ import annotations

import numpy as np

from .._limits import require_memory
from .._validation import NULL
from ..schedules import path_eigenvalues, velocity_numerator

__all__ = [
    "velocity_vjp",
    "velocity_jacobian",
    "prediction_vjp",
    "prediction_coefficients",
    "signal_noise_vjp",
]


def _component_terms(path, x, t, y):
    """For rows x (n, d) at times t ((n,) array) under label y (None/NULL or an int class): the
    responsibilities r (n, K'), component velocities m (n, K', d), l = grad log N_k (n, K', d),
    the eigenvalues g of G_k (n, K', d) and the eigenvectors Q (K', d, d) or None."""
    sched = path.schedule
    al = np.asarray(sched.alpha(t), dtype=np.float64)[:, None, None]
    be = np.asarray(sched.beta(t), dtype=np.float64)[:, None, None]
    da = np.asarray(sched.dalpha(t), dtype=np.float64)[:, None, None]
    bdb = np.asarray(sched.beta_dbeta(t), dtype=np.float64)[:, None, None]
    if y is None or y == NULL:
        sel = np.arange(path._means.shape[0])
        logw = path._log_w
    else:
        sel = np.nonzero(path._cls == int(y))[0]
        logw = path._log_w_in_class[sel]
    keep = np.isfinite(logw)
    sel, logw = sel[keep], logw[keep]
    mu = path._means[sel]  # (K', d)
    lam = path._lam[sel]  # (K', d)
    Q = None if path._Q is None else path._Q[sel]  # (K', d, d)
    c = path_eigenvalues(al, be, lam[None])  # (n, K', d)
    if np.any(c <= 0):
        raise ValueError(
            "the Jacobian is undefined at t = 1 for a component with a singular "
            "covariance (a point mass)"
        )
    g = velocity_numerator(al, da, bdb, lam[None]) / c
    diff = x[:, None, :] - al * mu[None]  # (n, K', d)
    z = diff if Q is None else np.einsum("kde,nkd->nke", Q, diff)
    zc = z / c
    logN = -0.5 * np.sum(z * zc, axis=2) - 0.5 * np.sum(np.log(c), axis=2)
    lr = logw[None] + logN
    lr -= lr.max(axis=1, keepdims=True)
    r = np.exp(lr)
    r /= r.sum(axis=1, keepdims=True)
    gz = g * z
    if Q is None:
        m = da * mu[None] + gz
        lk = -zc
    else:
        m = da * mu[None] + np.einsum("kde,nke->nkd", Q, gz)
        lk = -np.einsum("kde,nke->nkd", Q, zc)
    return r, m, lk, g, Q


def _inputs(field, x, g=None):
    """x (and the cotangents g) as float64 (n, d) arrays with d the field's dimension; ValueError
    naming the argument otherwise, before any work."""
    from .._validation import as_float_array

    x = as_float_array(x, "x")
    d = int(field.d)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must have shape (n, {d}) (the field's dimension), got {x.shape}")
    if g is None:
        return x, None
    g = as_float_array(g, "g")
    if g.shape != x.shape:
        raise ValueError(f"g (the cotangents) must have x's shape {x.shape}, got {g.shape}")
    return x, g


def _rows(v, n):
    a = np.asarray(v, dtype=np.float64)
    return np.broadcast_to(a, (n,)) if a.ndim <= 1 else a


def _terms(field):
    from ..guidance import linear_terms
    from ..guidance.base import NotLowerable
    from ..paths import GMMPath

    if isinstance(field, GMMPath):
        return linear_terms(field.field(None))
    try:
        return linear_terms(field)
    except NotLowerable as exc:
        raise TypeError(
            f"the Jacobian is available for linear combinations of exact Gaussian-"
            f"mixture fields (exact, CFG, linear guidance rules); this field does not "
            f"lower: {exc}"
        ) from exc


def _each_term(field, x, t, per_term, g=None):
    """sum over the field's linear terms of coef * tcoef(t) * per_term(path, rows, t, y[, g]) over
    the label groups of each term (per-row labels grouped by value); g: per-row cotangents passed
    to per_term with the rows."""
    n, d = x.shape
    tt = _rows(t, n).astype(np.float64)
    out = None
    for tm in _terms(field):
        w = _rows(tm.coef, n) * (1.0 if tm.tcoef is None else _rows(tm.tcoef(tt), n))
        ys = tm.y
        if ys is None or np.ndim(ys) == 0:
            groups = [(np.ones(n, dtype=bool), None if ys is None else int(ys))]
        else:
            ys = np.asarray(ys)
            groups = [(ys == v, int(v)) for v in np.unique(ys)]
        for rows, y in groups:
            args = (tm.path, x[rows], tt[rows], y) + (() if g is None else (g[rows],))
            val = per_term(*args)
            if out is None:
                out = np.zeros((n,) + val.shape[1:])
            out[rows] += w[rows].reshape((-1,) + (1,) * (val.ndim - 1)) * val
    return out


def _n_components(field) -> int:
    return max(int(tm.path._means.shape[0]) for tm in _terms(field))


def velocity_vjp(field, x, t, g) -> np.ndarray:
    """g^T du/dx for each row: (n, d) float64 from x (n, d), t (float or (n,)) and cotangents g
    (n, d). field: a lowerable field (exact, CFG, ...) or a GMMPath (module docstring)."""
    x, g = _inputs(field, x, g)
    n, d = x.shape
    require_memory(
        8 * 6 * n * d * max(1, _n_components(field)),
        "the field's Jacobian-vector products",
        "the number of rows of x",
    )

    def term(path, xs, ts, y, gg):  # g^T (sum_k r_k G_k + sum_k r_k (m_k - u)(l_k - s)^T)
        r, m, lk, gk, Q = _component_terms(path, xs, ts, y)
        u = np.einsum("nk,nkd->nd", r, m)
        s = np.einsum("nk,nkd->nd", r, lk)
        if Q is None:
            first = np.einsum("nk,nkd,nd->nd", r, gk, gg)
        else:
            qg = np.einsum("kde,nd->nke", Q, gg)
            first = np.einsum("nk,kde,nke->nd", r, Q, gk * qg)
        proj = np.einsum("nkd,nd->nk", m - u[:, None], gg)
        return first + np.einsum("nk,nkd->nd", r * proj, lk - s[:, None])

    return _each_term(field, x, t, term, g)


def velocity_jacobian(field, x, t) -> np.ndarray:
    """The full Jacobian du/dx, (n, d, d) float64 (row i: J[i] with J[i][a, b] = du_a/dx_b)."""
    x, _ = _inputs(field, x)
    n, d = x.shape
    require_memory(
        8 * n * d * d * max(2, _n_components(field)),
        "the field's Jacobian",
        "the number of rows of x",
    )

    def term(path, xs, ts, y):
        r, m, lk, gk, Q = _component_terms(path, xs, ts, y)
        u = np.einsum("nk,nkd->nd", r, m)
        s = np.einsum("nk,nkd->nd", r, lk)
        if Q is None:
            first = np.einsum("nk,nkd,de->nde", r, gk, np.eye(xs.shape[1]))
        else:
            first = np.einsum("nk,kde,nke,kfe->ndf", r, Q, gk, Q)
        return first + np.einsum("nk,nkd,nke->nde", r, m - u[:, None], lk - s[:, None])

    return _each_term(field, x, t, term)


def prediction_coefficients(schedule, t, prediction, n) -> tuple[np.ndarray, np.ndarray]:
    """(P_u, P_x), (n,) each: the prediction as P_u u + P_x x at time t (a float or (n,)), read off
    ``refcfg.convert``'s conversions from the velocity (which are linear in (u, x))."""
    from .. import convert
    from ..guidance.spaces import v_prediction
    from ._core import check_prediction

    check_prediction(prediction)
    tt = t if np.ndim(t) == 0 else np.asarray(t, dtype=np.float64)
    one, zero = np.ones((n, 1)), np.zeros((n, 1))

    def conv(u, x):
        if prediction == "velocity":
            return u
        if prediction == "v":
            return v_prediction(
                convert.velocity_to_eps(u, x, tt, schedule),
                convert.velocity_to_x0(u, x, tt, schedule),
                tt,
                schedule,
            )
        return convert.convert(u, "velocity", prediction, x, tt, schedule)

    return conv(one, zero)[:, 0].copy(), conv(zero, one)[:, 0].copy()


def prediction_vjp(field, x, t, g, prediction="velocity") -> np.ndarray:
    """g^T dp/dx for the prediction p (``refcfg.interop.PREDICTIONS``) of a lowerable field:
    P_u (g^T du/dx) + P_x g (module docstring). (n, d) float64."""
    from ._core import check_prediction

    check_prediction(prediction)
    x, g = _inputs(field, x, g)
    pu, px = prediction_coefficients(field.schedule, t, prediction, x.shape[0])
    return pu[:, None] * velocity_vjp(field, x, t, g) + px[:, None] * g


def signal_noise_vjp(field, x, signal, noise, output, g) -> np.ndarray:
    """g^T d(output)/dx' for ``refcfg.interop.predict_signal_noise``'s output (a library's
    convention x' = signal x0 + noise eps): with x_t = c x' at refcfg's t, x0 and eps give
    c (g^T dp/dx_t); v = signal eps - noise x0 and the flow eps - x0 the same combinations of
    them (``refcfg.interop._core.output_coefficients``). x, g: (n, d); signal, noise: 1 or n entries. (n, d) float64."""
    from ._core import (
        OUTPUTS,
        _levels,
        check_prediction,
        output_coefficients,
        time_from_signal_noise,
    )

    check_prediction(output, OUTPUTS, "output")
    x, g = _inputs(field, x, g)
    n = x.shape[0]
    a, s = (
        np.broadcast_to(_levels(v, name, n), (n,))
        for v, name in ((signal, "signal"), (noise, "noise"))
    )
    t, c = time_from_signal_noise(field.schedule, a, s)
    xt = x * c[:, None]
    out = np.zeros_like(x)
    for p, k in zip(("eps", "x0"), output_coefficients(output, a, s)):
        if np.any(k != 0):
            out += prediction_vjp(field, xt, t, k[:, None] * g, p)
    return c[:, None] * out
