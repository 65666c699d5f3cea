"""The noisy-pairs study (fast variant) and its exact 1-D pieces."""

from __future__ import annotations

import numpy as np
import pytest

import refcfg
from refcfg.experiments import noisy_labels
from refcfg.noisy_labels import relabel, symmetric_confusion
from refcfg.plotting.studies import write_figure

pytestmark = pytest.mark.slow


def test_energy_to_law_1d_is_the_cramer_integral():
    # independent route: D^2 = 2 int (F_n - G)^2 dx (Szekely-Rizzo, 1-D), by quadrature between
    # consecutive sample points (where the empirical CDF F_n is constant)
    from scipy import integrate
    from scipy.stats import norm

    g = refcfg.problem("gauss-1d").marginal
    x = np.sort(np.random.default_rng(1).normal(size=37) * 1.7)
    G = lambda v: 0.5 * norm.cdf(v, -1, 1) + 0.5 * norm.cdf(v, 1, 0.5)
    edges = np.concatenate([[-40.0], x, [40.0]])
    want = 2 * sum(
        integrate.quad(lambda v, c=i / x.size: (c - G(v)) ** 2, a, b, epsabs=1e-14, epsrel=1e-12)[0]
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))
    )
    assert noisy_labels.energy_to_law_1d(x, g) == pytest.approx(want, rel=1e-10)


def test_tilted_summary_at_w1_is_the_noisy_conditional():
    # w = 1: the tilted law is p(x | y~); its confidence under the clean law by a second quadrature
    from scipy import integrate
    from scipy.stats import norm

    clean = refcfg.problem("gauss-1d")
    rho = 0.3
    s = noisy_labels.tilted_summary_1d(clean, relabel(clean, symmetric_confusion(2, rho)), 1.0)
    p0 = lambda x: norm.pdf(x, -1, 1)
    p1 = lambda x: norm.pdf(x, 1, 0.5)
    noisy = lambda x: (1 - rho) * p0(x) + rho * p1(x)
    conf = integrate.quad(lambda x: noisy(x) * p0(x) / (p0(x) + p1(x)), -30, 30, epsabs=1e-13)[0]
    assert s["conf"] == pytest.approx(conf, abs=1e-8)
    assert noisy_labels.tilted_summary_1d(clean, clean, 1.0)["D2"] < 1e-12


@pytest.fixture(scope="module")
def fast_result():
    return noisy_labels.run(fast=True, seed=0)


def test_fast_study(fast_result, tmp_path):
    res = fast_result
    best = {(r["problem"], r["sampler"], r["rho"]): r for r in res.tables["best w per rho"]}
    # without noise w = 1 is best for the exact laws (the ODE's quantile transport and the tilted law)
    assert best[("gauss-1d", "ode", 0.0)]["best w"] == 1.0
    assert best[("gauss-1d", "tilted", 0.0)]["best w"] == 1.0
    # with noise guidance helps, and more noise needs more guidance (grid 1, 2, 3, 5)
    for prob in ("gauss-1d", "two-class-2d"):
        for rho in (0.2, 0.4):
            r = best[(prob, "ode", rho)]
            assert r["best w"] > 1.0 and r["D2 at best"] < 0.5 * r["D2 at w=1"], (prob, rho, r)
        assert best[(prob, "ode", 0.4)]["best w"] >= best[(prob, "ode", 0.2)]["best w"]
    # the deterministic 1-D ODE never reaches its floor once labels are noisy
    assert res.key["rho_recovered_1d_ode"] == []
    # the ODE at w = 1 (quantile transport) agrees with the quadrature of p(x | y~)
    assert res.key["ode_vs_quadrature_at_w1"] < 1e-4
    path = write_figure(res, tmp_path / "noisy.png")
    assert (tmp_path / "noisy.png").stat().st_size > 10000, path
