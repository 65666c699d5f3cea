r"""Closed forms for guidance between Gaussian laws: the CFG endpoint law of the ODE and of the SDE.

Setting (notes arXiv 2506.02070, eq. 65 for CFG, eq. 41/42 and 44 for the ODE/SDE):
conditional law p(x|y) = N(m1, V1), unconditional law p(x) = N(m0, V0), path
x_t = alpha_t z + beta_t eps, so p_t(x|y) = N(alpha m1, S1), S_i = alpha^2 V_i + beta^2 I. Every field is
affine in x; the CFG velocity u~ = w u(x|y) + (1 - w) u(x) and the guided score s~ = w s1 + (1 - w) s0
are affine too, so X_1 is Gaussian when X_{t0} is, with mean and covariance solving linear moment ODEs.

Derivation (per eigen-direction when V1 and V0 commute; scalars below). With
G(t) = S1^w S0^(1-w) and u = beta^2 / alpha^2 (EDM's sigma^2), write Gh(u) = (V1+u)^w (V0+u)^(1-w), so
G = alpha^2 Gh and G(1) = V1^w V0^(1-w).

* ODE dX = u~ dt: u~ = A~ x + B~ with A~ = d/dt log sqrt(G) (since u_i = (S_i'/2 S_i)(x - alpha m_i) +
  alpha' m_i) and B~ = a_t (w alpha m1/S1 + (1-w) alpha m0/S0). Hence
      Var X_1 = v0 G(1) / G(t0)            (from t0 = 0, v0 = 1 it is V1^w V0^(1-w) for every
                                            schedule with alpha_0 = 0, beta_0 = 1, where G(0) = 1;
                                            not for "vp", whose alpha_0 != 0)
      E X_1   = sqrt(G(1)/G(t0)) m_init + sqrt(G(1))/2 * int_0^{u0} (w m1/(V1+u) + (1-w) m0/(V0+u))
                Gh(u)^(-1/2) du.
* SDE with sigma_t^2 = 2 a_t (DDPM-like): drift u~ + a_t s~ = b_t x + 2 a_t s~, s~ = -(P~ x - c~),
  P~ = w/S1 + (1-w)/S0. Using a_t/S_i = b_t - S_i'/(2 S_i), the integrating factor is
  alpha^2 / G^2 for the variance and alpha / G for the mean, and substituting q = (V0+u)/(V1+u):
      Var X_1 = v0 alpha0^2 G(1)^2/G(t0)^2 + G(1)^2 (q_b^(2w-1) - q_a^(2w-1)) / ((2w-1)(V1-V0))
      E X_1   = m_init alpha0 G(1)/G(t0) + G(1) [w m1 I(w) + (1-w) m0 I(w-1)],
                I(p) = (q_b^p - q_a^p) / (p (V1 - V0)),
  with q_a = V0/V1, q_b = (V0+u0)/(V1+u0), u0 = beta_{t0}^2/alpha_{t0}^2 (q_b = 1 from t0 = 0).
  From t0 = 0 with alpha_0 = 0 the initial law is forgotten entirely (a_t -> inf at t = 0), and since
  G(1) q_a^w = V0, G(1) q_a^(w-1) = V1, G(1)^2 q_a^(2w-1) = V0 V1, both SDE moments are elementary in
  G = G(1) = V1^w V0^(1-w) (the ODE variance):
      Var X_1 = (V0 V1 - G^2) / ((2w-1)(V0 - V1)),   E X_1 = (m1 (V0 - G) - m0 (V1 - G)) / (V0 - V1).
* tilted law p(x|y)^w p(x)^(1-w)/Z: precision w V1^-1 + (1-w) V0^-1 (normalisable iff positive definite).

Consequences (checked in tests/test_gaussian.py and refcfg/experiments/predictor_corrector.py):
equal variances -> ODE = SDE = tilted (mean w m1 + (1-w) m0); otherwise all three differ for w != 0, 1.
With r = V1/V0 < 1 and delta = 1/V1 - 1/V0, as w -> inf: V_tilt ~ 1/(w delta), V_SDE ~ 1/((2w-1) delta)
(ratio -> 1/2; it matches the tilted law at weight 2w-1, the gamma' = 2 gamma - 1 of arXiv 2408.09000),
V_ODE = V1 r^(w-1) (geometric collapse); the SDE and tilted means share the limit
(m1 V0 - m0 V1)/(V0 - V1).

``method="ivp"`` solves the moment ODEs in t with scipy's solve_ivp (DOP853, rtol 1e-10, full
matrices, commuting or not): an independent check of the closed forms. The SDE is solved in
log t from ``t_floor`` when t0 = 0 (the initial law's weight there is alpha_{t_floor}^2 ~ 1e-18).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy.special import exprel

from .problems import resolve_schedule
from .sampling.steppers import TABLEAUS, stage_times

__all__ = [
    "GaussianLaw",
    "tilted_gaussian",
    "cfg_endpoint",
    "cfg_endpoint_1d",
    "discrete_endpoint_1d",
]


@dataclass(frozen=True)
class GaussianLaw:
    """A Gaussian N(mean, cov); mean (d,), cov (d, d)."""

    mean: np.ndarray
    cov: np.ndarray

    @property
    def var(self) -> np.ndarray:
        """The diagonal of cov (d,)."""
        return np.diag(self.cov).copy()


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _mean(m, name, d=None):
    a = np.atleast_1d(np.asarray(m, dtype=np.float64))
    if a.ndim != 1 or (d is not None and a.shape[0] != d):
        raise ValueError(f"{name} has shape {np.shape(m)}; required ({d if d else 'd'},)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {m!r}")
    return a


def _cov(V, name, d):
    a = np.asarray(V, dtype=np.float64)
    if a.ndim == 0:
        a = a * np.eye(d)
    elif a.ndim == 1:
        if a.shape[0] != d:
            raise ValueError(f"{name} has shape {a.shape}; required ({d},), ({d}, {d}) or scalar")
        a = np.diag(a)
    if a.shape != (d, d):
        raise ValueError(f"{name} has shape {a.shape}; required ({d}, {d}), ({d},) or scalar")
    if not np.all(np.isfinite(a)) or not np.allclose(a, a.T, rtol=1e-12, atol=0):
        raise ValueError(f"{name} must be a finite symmetric matrix")
    a = 0.5 * (a + a.T)
    if np.linalg.eigvalsh(a).min() <= 0:
        raise ValueError(
            f"{name} must be positive definite, got eigenvalues {np.linalg.eigvalsh(a)}"
        )
    return a


def _weight(w):
    if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
        raise TypeError(f"w must be a real number, got {w!r}")
    if not np.isfinite(w):
        raise ValueError(f"w must be finite, got {w!r}")
    return float(w)


# --------------------------------------------------------------------------------------------
# tilted law
# --------------------------------------------------------------------------------------------


def tilted_gaussian(m1, V1, m0, V0, w) -> GaussianLaw:
    """The tilted law p(x|y)^w p(x)^(1-w) / Z for p(x|y) = N(m1, V1), p(x) = N(m0, V0).

    Precision P = w V1^-1 + (1 - w) V0^-1, mean P^-1 (w V1^-1 m1 + (1 - w) V0^-1 m0). This is the law
    CFG is often said to sample (notes arXiv 2506.02070, section on CFG: "a heuristic"). ValueError
    when P is not positive definite (then Z = inf: no tilted law exists, e.g. V1 > V0 and large w).
    """
    m1 = _mean(m1, "m1")
    d = m1.shape[0]
    m0 = _mean(m0, "m0", d)
    V1, V0 = _cov(V1, "V1", d), _cov(V0, "V0", d)
    w = _weight(w)
    P1, P0 = np.linalg.inv(V1), np.linalg.inv(V0)
    P = w * P1 + (1.0 - w) * P0
    P = 0.5 * (P + P.T)
    if np.linalg.eigvalsh(P).min() <= 0:
        raise ValueError(
            f"w = {w}: the tilted precision w V1^-1 + (1-w) V0^-1 is not positive "
            "definite, so p(x|y)^w p(x)^(1-w) is not normalisable"
        )
    cov = np.linalg.inv(P)
    cov = 0.5 * (cov + cov.T)
    return GaussianLaw(cov @ (w * P1 @ m1 + (1.0 - w) * P0 @ m0), cov)


# --------------------------------------------------------------------------------------------
# closed forms (commuting covariances)
# --------------------------------------------------------------------------------------------


def _log1p_over(D, c):
    """log1p(-D/c) / D, with its limit -1/c at D = 0."""
    if D == 0.0:
        return -1.0 / c
    return np.log1p(-D / c) / D


def _I(p, V1, V0, u0):
    """int_0^{u0} q^(p-1) (V1+u)^-2 du = (q_b^p - q_a^p) / (p D), q = (V0+u)/(V1+u), D = V1 - V0.

    Written as q_a^p * exprel(p L) * (L / D), L = log(q_b/q_a), stable as D -> 0 and p -> 0."""
    D = V1 - V0
    # L/D = [log q_b - log q_a] / D with log q = log1p(-D/(V1+u))
    LD = (0.0 if np.isinf(u0) else _log1p_over(D, V1 + u0)) - _log1p_over(D, V1)
    L = LD * D
    qa_p = np.exp(p * np.log1p(-D / V1))
    return qa_p * exprel(p * L) * LD


def _ode_mean_integral(w, m1, V1, m0, V0, u0):
    """int_0^{u0} (w m1/(V1+u) + (1-w) m0/(V0+u)) Gh(u)^(-1/2) du by quadrature after u = c(1/s^2 - 1)
    (smooth integrand on [s0, 1]; the u^(-3/2) tail becomes regular)."""
    c = np.sqrt(V1 * V0)
    s0 = 0.0 if np.isinf(u0) else np.sqrt(c / (c + u0))

    def f(s):
        if s <= 0.0:
            # u -> inf: integrand ~ (w m1 + (1-w) m0) u^(-3/2), du = 2c s^-3 ds -> 2 (w m1 + (1-w) m0)/sqrt(c)
            return 2.0 * (w * m1 + (1.0 - w) * m0) / np.sqrt(c)
        u = c * (1.0 / (s * s) - 1.0)
        g = -0.5 * (w * np.log(V1 + u) + (1.0 - w) * np.log(V0 + u))
        return (w * m1 / (V1 + u) + (1.0 - w) * m0 / (V0 + u)) * np.exp(g) * 2.0 * c / s**3

    val, _ = integrate.quad(f, s0, 1.0, epsabs=0.0, epsrel=1e-13, limit=200)
    return val


def _closed_1d(w, m1, V1, m0, V0, sampler, alpha0, G0, u0, m_init, v0):
    """Endpoint (mean, var) along one eigen-direction. G0 = G(t0) = S1^w S0^(1-w) at t0."""
    G1 = np.exp(w * np.log(V1) + (1.0 - w) * np.log(V0))
    if sampler == "ode":
        var = v0 * G1 / G0
        mean = np.sqrt(G1 / G0) * m_init + 0.5 * np.sqrt(G1) * _ode_mean_integral(
            w, m1, V1, m0, V0, u0
        )
        return mean, var
    # sde, sigma_t^2 = 2 a_t
    var = v0 * (alpha0 * G1 / G0) ** 2 + G1 * G1 * _I(2.0 * w - 1.0, V1, V0, u0)
    mean = m_init * alpha0 * G1 / G0 + G1 * (
        w * m1 * _I(w, V1, V0, u0) + (1.0 - w) * m0 * _I(w - 1.0, V1, V0, u0)
    )
    return mean, var


def _common_basis(V1, V0):
    """Orthogonal Q diagonalising both commuting V1, V0 (ValueError if they do not commute)."""
    comm = np.linalg.norm(V1 @ V0 - V0 @ V1)
    if comm > 1e-10 * np.linalg.norm(V1) * np.linalg.norm(V0):
        raise ValueError(
            f"V1 and V0 do not commute (||V1 V0 - V0 V1|| = {comm:.3g}); the closed "
            "form needs commuting covariances: use method='ivp'"
        )
    # a generic combination has the joint eigenvectors (ties of both spectra are harmless)
    _, Q = np.linalg.eigh(V1 + np.pi * V0)
    l1 = np.einsum("ji,jk,ki->i", Q, V1, Q)
    l0 = np.einsum("ji,jk,ki->i", Q, V0, Q)
    off = max(np.abs(Q.T @ V1 @ Q - np.diag(l1)).max(), np.abs(Q.T @ V0 @ Q - np.diag(l0)).max())
    if off > 1e-9 * max(np.abs(l1).max(), np.abs(l0).max()):
        raise ValueError("could not find a common eigenbasis of V1 and V0; use method='ivp'")
    return Q, l1, l0


# --------------------------------------------------------------------------------------------
# moment ODEs (any covariances), scipy solve_ivp
# --------------------------------------------------------------------------------------------


def _ivp(w, m1, V1, m0, V0, sampler, sch, t0, m_init, C_init, rtol, t_floor):
    d = m1.shape[0]
    I = np.eye(d)

    def coeffs(t):
        al, be, dal, _, bdb = (float(v) for v in sch.values(t))
        out = []
        for m, V in ((m1, V1), (m0, V0)):
            S = al * al * V + be * be * I
            A = np.linalg.solve(S, al * dal * V + bdb * I).T  # (al dal V + be dbe I) S^-1
            B = dal * m - A @ (al * m)
            out.append((A, B))
        At = w * out[0][0] + (1.0 - w) * out[1][0]
        Bt = w * out[0][1] + (1.0 - w) * out[1][1]
        return At, Bt, al, be, dal, bdb

    def rhs_t(t, yv):
        m, C = yv[:d], yv[d:].reshape(d, d)
        At, Bt, al, be, dal, bdb = coeffs(t)
        if sampler == "ode":
            F, g, q = At, Bt, 0.0
        else:
            b, a = float(sch.b(t)), float(sch.a(t))  # eq. 41 (t >= t_floor > 0: alpha_t > 0)
            F, g, q = 2.0 * At - b * I, 2.0 * Bt, 2.0 * a  # drift 2 u~ - b x, diffusion 2 a_t
        dm = F @ m + g
        dC = F @ C + C @ F.T + q * I
        return np.concatenate([dm, dC.ravel()])

    y0 = np.concatenate([m_init, C_init.ravel()])
    opts = dict(method="DOP853", rtol=rtol, atol=1e-13 * rtol)
    if sampler == "ode":
        sol = integrate.solve_ivp(rhs_t, (t0, 1.0), y0, **opts)
    else:
        start = max(t0, t_floor)

        def rhs_log(tau, yv):
            t = np.exp(tau)
            return t * rhs_t(min(t, 1.0), yv)

        sol = integrate.solve_ivp(rhs_log, (np.log(start), 0.0), y0, **opts)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    yT = sol.y[:, -1]
    C = yT[d:].reshape(d, d)
    return GaussianLaw(yT[:d], 0.5 * (C + C.T))


# --------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------


def cfg_endpoint(
    m1,
    V1,
    m0,
    V0,
    w,
    *,
    sampler="ode",
    schedule="linear",
    t_start=0.0,
    init_mean=None,
    init_var=1.0,
    method="closed",
    rtol=1e-10,
    t_floor=1e-9,
) -> GaussianLaw:
    """Exact law of X_1 for the CFG-guided ODE or SDE between Gaussian laws (see module docstring).

    CFG as in the notes (arXiv 2506.02070, eq. 65): u~ = w u(x|y) + (1 - w) u(x), with
    p(x|y) = N(m1, V1) and p(x) = N(m0, V0). ``sampler``: "ode" (probability flow, eq. 41) or "sde"
    (eq. 44 with sigma_t^2 = 2 a_t and the guided score (u~ - b_t x)/a_t). The process starts at
    ``t_start`` from N(init_mean, init_var I) (default N(0, I), the samplers' start). ``method``:
    "closed" (formulas of the module docstring; V1, V0 must commute; the ODE mean needs one 1-D
    quadrature) or "ivp" (moment ODEs by solve_ivp at ``rtol``; any V1, V0; the SDE starts at
    max(t_start, t_floor) since a_t diverges at t = 0). Returns a :class:`GaussianLaw`.
    """
    m1 = _mean(m1, "m1")
    d = m1.shape[0]
    m0 = _mean(m0, "m0", d)
    V1, V0 = _cov(V1, "V1", d), _cov(V0, "V0", d)
    w = _weight(w)
    if sampler not in ("ode", "sde"):
        raise ValueError(f"sampler must be 'ode' or 'sde', got {sampler!r}")
    if method not in ("closed", "ivp"):
        raise ValueError(f"method must be 'closed' or 'ivp', got {method!r}")
    t0 = float(t_start)
    if not 0.0 <= t0 < 1.0:
        raise ValueError(f"t_start must be in [0, 1), got {t_start!r}")
    m_init = np.zeros(d) if init_mean is None else _mean(init_mean, "init_mean", d)
    v0 = float(init_var)
    if not v0 >= 0.0:
        raise ValueError(f"init_var must be >= 0, got {init_var!r}")
    sch = resolve_schedule(schedule)
    al0, be0 = float(sch.alpha(t0)), float(sch.beta(t0))
    if sampler == "sde" and al0 == 0.0 and t0 > 0.0:
        raise ValueError(f"alpha_t = 0 at t_start = {t0}: the SDE is undefined there")

    if method == "ivp":
        return _ivp(w, m1, V1, m0, V0, sampler, sch, t0, m_init, v0 * np.eye(d), rtol, t_floor)

    Q, l1, l0 = _common_basis(V1, V0)
    mu1, mu0, mui = Q.T @ m1, Q.T @ m0, Q.T @ m_init
    u0 = np.inf if al0 == 0.0 else (be0 / al0) ** 2
    mean, var = np.empty(d), np.empty(d)
    for i in range(d):
        G0 = np.exp(
            w * np.log(al0 * al0 * l1[i] + be0 * be0)
            + (1.0 - w) * np.log(al0 * al0 * l0[i] + be0 * be0)
        )
        mean[i], var[i] = _closed_1d(
            w, mu1[i], l1[i], mu0[i], l0[i], sampler, al0, G0, u0, mui[i], v0
        )
    cov = (Q * var) @ Q.T
    return GaussianLaw(Q @ mean, 0.5 * (cov + cov.T))


def cfg_endpoint_1d(m1, v1, m0, v0, w, *, sampler="ode", **kwargs) -> tuple[float, float]:
    """(mean, variance) of X_1 for 1-D laws N(m1, v1), N(m0, v0); see :func:`cfg_endpoint`."""
    law = cfg_endpoint([m1], [[v1]], [m0], [[v0]], w, sampler=sampler, **kwargs)
    return float(law.mean[0]), float(law.cov[0, 0])


# --------------------------------------------------------------------------------------------
# the discretised samplers: exact moments of every explicit Runge-Kutta tableau and of
# Euler-Maruyama
# --------------------------------------------------------------------------------------------


def _affine_coeffs_1d(w, m1, v1, m0, v0, sch, t):
    """At time t: CFG velocity u~ = A x + B and guided score s~ = -P x + c (scalars)."""
    al, be, dal, _, bdb = (float(v) for v in sch.values(t))
    A = B = P = c = 0.0
    for wi, m, v in ((w, m1, v1), (1.0 - w, m0, v0)):
        S = al * al * v + be * be
        Ai = (al * dal * v + bdb) / S  # (alpha dalpha V + beta dbeta) S^-1
        A += wi * Ai
        B += wi * (dal * m - Ai * al * m)
        P += wi / S
        c += wi * al * m / S
    return A, B, P, c


def _rk_step_1d(coeffs, h, tab, st):
    """(M, k) of one explicit Runge-Kutta step x' = M x + k of dx/dt = A(t) x + B(t), for the
    Butcher tableau ``tab`` with stage times ``st`` (s,); ``coeffs(t)`` gives (A, B).

    The slopes k_j = A_j (x + h sum_{l<j} a_jl k_l) + B_j are affine in x, k_j = P_j x + Q_j, with
    P_j = A_j (1 + h sum_l a_jl P_l) and Q_j = A_j h sum_l a_jl Q_l + B_j (forward substitution,
    a strictly lower triangular); then M = 1 + h sum_j b_j P_j and k = h sum_j b_j Q_j. For
    constant A this is M = sum_{m <= s} (b^T a^(m-1) 1) (hA)^m: the method's stability polynomial."""
    s = len(tab.b)
    P, Q = np.zeros(s), np.zeros(s)
    for j in range(s):
        A, B = coeffs(st[j])
        aj = tab.a[j, :j]
        P[j] = A * (1.0 + h * float(aj @ P[:j]))
        Q[j] = A * h * float(aj @ Q[:j]) + B
    return 1.0 + h * float(tab.b @ P), h * float(tab.b @ Q)


def discrete_endpoint_1d(
    m1, v1, m0, v0, w, ts, sampler, *, schedule="linear", sigma=None, init_mean=0.0, init_var=1.0
) -> tuple[float, float]:
    """Exact (mean, variance) after the discretised sampler of ``refcfg.sample`` on the grid ``ts``.

    The CFG field between 1-D Gaussian laws N(m1, v1), N(m0, v0) is affine, so each step maps
    N(m, v) to N(M m + k, M^2 v + q): for an ODE sampler (any name in
    ``refcfg.sampling.steppers.TABLEAUS``) (M, k) follow from its Butcher tableau, the slopes
    evaluated at the stage times of ``steppers.stage_times``, q = 0; for "euler_maruyama" (drift
    u~ + sigma^2/2 s~, sigma evaluated at ts[:-1], sigma "ddpm" = sqrt(2 a_t), and 0 where
    alpha_t = 0 as in ``refcfg.sample``) M = 1 + h (A - sigma^2/2 P), q = sigma^2 h.
    The difference to :func:`cfg_endpoint` is the sampler's discretisation error alone, and the
    difference of a sample to this is Monte Carlo error alone.
    """
    w = _weight(w)
    sch = resolve_schedule(schedule)
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2 or np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be a strictly increasing 1-D grid of >= 2 times")
    known = (*TABLEAUS, "euler_maruyama")  # every ODE tableau, and Euler-Maruyama
    if sampler not in known:
        raise ValueError(f"sampler must be one of {known}, got {sampler!r}")

    def coeffs(t):
        return _affine_coeffs_1d(w, m1, v1, m0, v0, sch, t)[:2]

    sde = sampler == "euler_maruyama"
    tab = None if sde else TABLEAUS[sampler]
    st = None if sde else stage_times(ts, tab)
    m, v = float(init_mean), float(init_var)
    for i in range(ts.size - 1):
        t, h = ts[i], ts[i + 1] - ts[i]
        q = 0.0
        if not sde:
            M, k = _rk_step_1d(coeffs, h, tab, st[i])
        else:
            A, B, P, c = _affine_coeffs_1d(w, m1, v1, m0, v0, sch, t)
            if isinstance(sigma, str) and sigma == "ddpm":
                # where alpha_t = 0, a_t = inf: refcfg.sample takes a probability-flow Euler step
                s2 = 0.0 if float(sch.alpha(t)) == 0.0 else 2.0 * float(sch.a(t))
            elif callable(sigma):
                s2 = float(sigma(t)) ** 2
            else:
                s2 = float(sigma) ** 2
            M, k, q = 1.0 + h * (A - 0.5 * s2 * P), h * (B + 0.5 * s2 * c), s2 * h
        m, v = M * m + k, M * M * v + q
    return m, v
