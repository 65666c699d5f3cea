"""Fast variants of results 1 (gaussian-pushforward) and 6 (predictor-corrector), checked against
closed forms written out here independently of refcfg.gaussian."""

from __future__ import annotations

import numpy as np
import pytest

from refcfg.experiments import gaussian_pushforward, predictor_corrector

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def res1():
    return gaussian_pushforward.run(fast=True)


@pytest.fixture(scope="module")
def res6():
    return predictor_corrector.run(fast=True)


def _ode_var(v1, v0, w):
    return v1**w * v0 ** (1 - w)


def _sde_var(v1, v0, w):
    if v1 == v0:
        return v1
    return (
        v1 ** (2 * w)
        * v0 ** (2 - 2 * w)
        * (1 - (v0 / v1) ** (2 * w - 1))
        / ((2 * w - 1) * (v1 - v0))
    )


def _tilt(m1, v1, m0, v0, w):
    prec = w / v1 + (1 - w) / v0
    if prec <= 0:
        return float("nan"), float("nan")
    return (w * m1 / v1 + (1 - w) * m0 / v0) / prec, 1 / prec


def test_closed_form_table(res1):
    # every row against the formulas (rel 1e-12); equal variances: all three laws coincide
    for r in res1.table:
        v1, v0, w = r["V1"], r["V0"], r["w"]
        assert r["var_ode"] == pytest.approx(_ode_var(v1, v0, w), rel=1e-12)
        assert r["var_sde"] == pytest.approx(_sde_var(v1, v0, w), rel=1e-12)
        mt, vt = _tilt(1.0, v1, 0.0, v0, w)
        if np.isnan(vt):
            assert np.isnan(r["var_tilt"])
        else:
            assert r["var_tilt"] == pytest.approx(vt, rel=1e-12)
            assert r["mean_tilt"] == pytest.approx(mt, rel=1e-12, abs=1e-14)
        if v1 == v0:
            assert r["mean_ode"] == pytest.approx(w, abs=1e-10)
            assert r["mean_sde"] == pytest.approx(w, abs=1e-10)
        if w in (0.0, 1.0) or v1 == v0:
            assert r["var_ode"] == pytest.approx(r["var_sde"], rel=1e-12)
        else:
            assert abs(r["var_ode"] / r["var_sde"] - 1) > 0.1  # ODE and SDE differ


def test_samplers_reach_the_exact_moments(res1):
    rows = res1.tables["samplers vs exact moments"]
    # Monte Carlo only (sample vs exact moments of the discrete recursion): |z| < 5 for each of the
    # 12 statistics (family-wise false alarm < 1e-5)
    assert max(max(abs(r["z_mean"]), abs(r["z_var"])) for r in rows) < 5.0
    # discretisation: Heun 50 steps (order 2) and Euler-Maruyama 100 steps (order 1)
    assert res1.key["max_discretisation_error_ode"] < 5e-3
    assert res1.key["max_discretisation_error_sde"] < 2e-2


def test_large_w_limits(res6):
    r = {row["w"]: row for row in res6.table}
    v1, v0 = 0.25, 1.0
    d = 1 / v1 - 1 / v0
    for w, row in r.items():
        vt = 1 / (1 / v0 + w * d)
        assert row["sde/tilt"] == pytest.approx(_sde_var(v1, v0, w) / vt, rel=1e-10)
        assert row["ode/tilt"] == pytest.approx(_ode_var(v1, v0, w) / vt, rel=1e-10)
        assert row["w_eff_sde"] == pytest.approx(row["w_eff_formula"], rel=1e-9)
    assert abs(r[128.0]["sde/tilt"] - 0.5) < 0.01  # -> 1/2
    assert abs(r[128.0]["sde/tilt(2w-1)"] - 1) < 0.01  # -> the tilted law at 2w - 1
    assert r[128.0]["ode/tilt"] < 1e-60  # geometric collapse
    assert r[128.0]["mean_sde"] == pytest.approx(4.0 / 3.0, abs=1e-9)  # (m1 V0 - m0 V1)/(V0 - V1)
    assert res6.key["max rel |closed - ivp| of the variances at w = 8"] < 1e-7
    assert res6.key["max |z_var| samplers"] < 5.0
