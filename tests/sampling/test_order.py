"""Convergence order of the ODE samplers on problems whose flow is known exactly.

Single Gaussian data N(m, V): the flow map from N(0, I) is X_1 = m + V^{1/2} X_0 (for x_t = t z +
(1 - t) eps, X_t - t m = S_t^{1/2} X_0 in the eigenbasis of V). Guided pairs of Gaussians: the
guided velocity is affine, X_1 = Phi X_0 + phi with (Phi, phi) from solve_ivp (tests/sampling/_gauss.py).
Error = max over 64 fixed particles of |X_1 - exact|; slope of log error vs log h fitted over
steps in {8, 16, 32, 64}; required: within +-0.2 of 1 (Euler) and 2 (Heun). Both backends.
"""

import numpy as np
import pytest
from scipy.linalg import sqrtm

import refcfg

from _gauss import fit_order, flow_map

STEPS = [8, 16, 32, 64]
M_A, V_A = np.array([1.0, -2.0]), np.array([[0.5, 0.2], [0.2, 0.3]])
M_B, V_B = np.array([-1.5, 0.5]), np.array([[2.0, -0.4], [-0.4, 1.0]])


def gauss_path(m, V):
    return refcfg.GMMPath(refcfg.GMM([1.0], m[None], V[None]))


X0 = np.random.default_rng(0).standard_normal((64, 2))


def errors(field, exact, sampler, backend):
    return [
        np.abs(refcfg.sample(field, 64, sampler, steps=s, x_init=X0, backend=backend) - exact).max()
        for s in STEPS
    ]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("sampler,order", [("euler", 1), ("heun", 2)])
def test_order_single_gaussian(sampler, order, backend):
    exact = M_A + X0 @ np.real(sqrtm(V_A)).T
    err = errors(gauss_path(M_A, V_A).field(None), exact, sampler, backend)
    assert abs(fit_order(STEPS, err) - order) <= 0.2, err


@pytest.mark.slow
@pytest.mark.parametrize("w", [2.0, 3.0])
@pytest.mark.parametrize("sampler,order", [("euler", 1), ("heun", 2)])
def test_order_guided_gaussian_pair(sampler, order, w):
    Phi, phi = flow_map([(M_A, V_A), (M_B, V_B)], w)
    exact = X0 @ Phi.T + phi
    f = refcfg.guided(gauss_path(M_A, V_A).field(None), gauss_path(M_B, V_B).field(None), w)
    err = errors(f, exact, sampler, "cpu")
    assert abs(fit_order(STEPS, err) - order) <= 0.2, err
