"""Independent Gaussian oracles for the sampling tests (no refcfg kernels, only numpy/scipy).

For data N(m, V) on the path x_t = alpha_t z + beta_t eps, p_t = N(alpha m, S), S = alpha^2 V + beta^2 I,
and the exact fields are affine in x (Gaussian conditioning):
    u(x)     = (alpha dalpha V + beta dbeta I) S^{-1} (x - alpha m) + dalpha m
    score(x) = -S^{-1} (x - alpha m).
A guided combination w (a) + (1 - w) (b) of two such fields is affine too, F(x) = A(t) x + c(t), so
X_1 = Phi X_0 + phi with Phi' = A Phi, phi' = A phi + c (the ODE flow map), and for the SDE
dX = [u~ + sigma^2/2 s~] dt + sigma dW the moments obey m' = A m + c, P' = A P + P A^T + sigma^2 I.
These linear ODEs are solved with scipy's solve_ivp at rtol 1e-10.
"""

import numpy as np
from scipy.integrate import solve_ivp

# linear schedule alpha = t, beta = 1 - t (refcfg's "linear"), written out here
ALPHA = lambda t: t
BETA = lambda t: 1.0 - t
DALPHA = lambda t: 1.0
DBETA = lambda t: -1.0


def affine_velocity(m, V, t):
    """(A, c) with u(x) = A x + c for data N(m, V) at time t (linear schedule)."""
    d = len(m)
    a, b, da, db = ALPHA(t), BETA(t), DALPHA(t), DBETA(t)
    S = a * a * V + b * b * np.eye(d)
    A = np.linalg.solve(S, (a * da * V + b * db * np.eye(d)).T).T  # M S^{-1}
    return A, da * m - A @ (a * m)


def affine_score(m, V, t):
    """(B, e) with score(x) = B x + e."""
    d = len(m)
    a, b = ALPHA(t), BETA(t)
    Sinv = np.linalg.inv(a * a * V + b * b * np.eye(d))
    return -Sinv, Sinv @ (a * m)


def flow_map(laws, w, t0=0.0, t1=1.0):
    """(Phi, phi) of the ODE of w u_a + (1 - w) u_b (laws = [(m_a, V_a), (m_b, V_b)])."""
    d = len(laws[0][0])

    def rhs(t, y):
        Phi, phi = y[: d * d].reshape(d, d), y[d * d :]
        (Aa, ca), (Ab, cb) = (affine_velocity(m, V, t) for m, V in laws)
        A, c = w * Aa + (1 - w) * Ab, w * ca + (1 - w) * cb
        return np.concatenate([(A @ Phi).ravel(), A @ phi + c])

    y0 = np.concatenate([np.eye(d).ravel(), np.zeros(d)])
    sol = solve_ivp(rhs, (t0, t1), y0, method="DOP853", rtol=1e-10, atol=1e-12)
    return sol.y[: d * d, -1].reshape(d, d), sol.y[d * d :, -1]


def sde_moments(laws, w, sigma2, t0, t1=1.0, m0=None, P0=None):
    """Endpoint mean and covariance of the guided SDE with diffusion sigma2(t) from N(m0, P0) at t0
    (default N(0, I)); Radau (stiff near t = 0 for sigma^2 = 2 a_t)."""
    d = len(laws[0][0])
    m0 = np.zeros(d) if m0 is None else m0
    P0 = np.eye(d) if P0 is None else P0

    def coeffs(t):
        (Aa, ca), (Ab, cb) = (affine_velocity(mm, V, t) for mm, V in laws)
        (Ba, ea), (Bb, eb) = (affine_score(mm, V, t) for mm, V in laws)
        s2 = sigma2(t)
        A = w * Aa + (1 - w) * Ab + 0.5 * s2 * (w * Ba + (1 - w) * Bb)
        c = w * ca + (1 - w) * cb + 0.5 * s2 * (w * ea + (1 - w) * eb)
        return A, c, s2

    def rhs(t, y):
        A, c, s2 = coeffs(t)
        m, P = y[:d], y[d:].reshape(d, d)
        return np.concatenate([A @ m + c, (A @ P + P @ A.T + s2 * np.eye(d)).ravel()])

    def jac(t, y):  # the system is linear: m' = A m + c, vec(P)' = (A (x) I + I (x) A) vec(P) + ...
        A = coeffs(t)[0]
        J = np.zeros((d + d * d, d + d * d))
        J[:d, :d] = A
        J[d:, d:] = np.kron(A, np.eye(d)) + np.kron(np.eye(d), A)
        return J

    sol = solve_ivp(
        rhs,
        (t0, t1),
        np.concatenate([m0, P0.ravel()]),
        method="Radau",
        jac=jac,
        rtol=1e-10,
        atol=1e-12,
    )
    return sol.y[:d, -1], sol.y[d:, -1].reshape(d, d)


def ddpm_sigma2(t):
    """sigma_t^2 = 2 a_t, a_t = beta^2 dalpha / alpha - beta dbeta (linear schedule)."""
    return 2.0 * (BETA(t) ** 2 * DALPHA(t) / ALPHA(t) - BETA(t) * DBETA(t))


def fit_order(steps, errors):
    """Slope of log error against log step size h = 1/steps (least squares)."""
    h = 1.0 / np.asarray(steps, float)
    return float(np.polyfit(np.log(h), np.log(np.asarray(errors, float)), 1)[0])
