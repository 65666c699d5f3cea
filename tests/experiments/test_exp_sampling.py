"""Fast variants of results 2 (cfg-vs-tilted), 3 (classifier-vs-cfg), 4 (guidance-interval), 5 (tree)."""

from __future__ import annotations

import numpy as np
import pytest

import refcfg
from refcfg.experiments import cfg_vs_tilted, classifier_vs_cfg, guidance_interval, tree
from refcfg.experiments._common import edm_grid
from refcfg.guidance import GuidanceInterval

pytestmark = pytest.mark.slow


def test_classifier_guidance_equals_cfg():
    res = classifier_vs_cfg.run(fast=True)
    # rounding only: relative difference over whole trajectories <= 1e-12
    assert res.key["max_relative_difference"] < 1e-12
    assert all(r["relative"] < 1e-12 for r in res.table)


def test_cfg_vs_tilted():
    res = cfg_vs_tilted.run(fast=True)
    rows = {(r["problem"], r["w"], r["sampler"]): r for r in res.table}
    for (prob, w, s), r in rows.items():
        if w == 1.0:
            # w = 1 samples the conditional law = the tilted law at w = 1: TV at the noise floor
            # (tolerance 25 % + 0.02), mode masses within 0.05 (n = 3000: binomial sd <= 0.0092)
            assert r["TV"] < 1.25 * r["TV_floor"] + 0.02, (prob, s, r["TV"], r["TV_floor"])
            assert np.max(np.abs(np.asarray(r["modes"]) - r["modes_tilt"])) < 0.05
    for prob in ("gauss-1d", "two-class-2d"):
        ode, sde = rows[(prob, 8.0, "heun")], rows[(prob, 8.0, "euler_maruyama")]
        # at w = 8 neither sampler reaches the tilted law; the ODE is much further than the SDE
        assert ode["TV"] > 0.7 and sde["TV"] > sde["TV_floor"] + 0.1 and ode["TV"] > sde["TV"] + 0.3
        # and both are over-confident relative to the tilted law
        assert ode["conf"] > ode["conf_tilt"] and sde["conf"] > sde["conf_tilt"]


def test_guidance_interval_prevents_mode_dropping():
    res = guidance_interval.run(fast=True)
    tilt = {r["w"]: r for r in res.table if r["sampler"] == "-"}
    full = {r["w"]: r for r in res.table if r["law"] == "CFG everywhere"}
    inter = {r["w"]: r for r in res.table if r["law"].startswith("CFG on sigma in (0, 1]")}
    # tilted law keeps ~1/3 per mode (the modes are separated): within 0.05
    assert all(
        abs(tilt[w][m] - 1 / 3) < 0.05 for w in tilt for m in ("mode -3", "mode 0", "mode +3")
    )
    # guidance everywhere at w = 5 drops the modes at 0 and +3
    assert full[5.0]["mode +3"] < 0.01 and full[5.0]["mode -3"] > 0.95
    # the interval keeps the tilted masses within 0.06 (n = 2000: binomial sd 0.0105)
    for w in inter:
        for m in ("mode -3", "mode 0", "mode +3"):
            assert abs(inter[w][m] - tilt[w][m]) < 0.06


def test_interval_sampler_equals_interval_field():
    # three legs on the fast backend == one GuidanceInterval field (refcfg.guidance) on the NumPy
    # backend, Euler (which only
    # evaluates at step starts), same initial points: equal to rounding (<= 1e-12)
    mix = guidance_interval.interval_problem()
    path = refcfg.GMMPath(mix)
    t_a = guidance_interval.t_of_sigma(path.schedule, 1.0)
    assert t_a == pytest.approx(0.5, abs=1e-14)  # linear: sigma = (1 - t)/t
    a = guidance_interval.sample_interval(
        path, 0, 4.0, 0.0, 1.0, 200, "euler", 40, seed=3, backend="numpy"
    )
    ts = guidance_interval.interval_grid(40, t_a, 1.0)
    x0 = np.random.default_rng(3).standard_normal((200, 1))
    rule = GuidanceInterval(
        path.field(0), path.field(None), 4.0, sigma_lo=0.0, sigma_hi=1.0, schedule=path.schedule
    )
    b = refcfg.sample(rule, 200, sampler="euler", t_grid=ts, x_init=x0, backend="numpy")
    assert np.max(np.abs(a - b)) < 1e-12


def test_edm_grid_maps_noise_levels():
    ts = edm_grid(8)
    sig = (1 - ts[1:-1]) / ts[1:-1]  # linear schedule
    ref = (80 ** (1 / 7) + np.arange(8) / 7 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(sig, ref, rtol=1e-10)
    assert ts[0] == 0.0 and ts[-1] == 1.0 and np.all(np.diff(ts) > 0)


def test_tree_autoguidance_vs_cfg():
    res = tree.run(fast=True)
    rows = {(r["method"], r["w"]): r for r in res.table}
    n = res.key["n"]
    w1 = rows[("CFG", 1.0)]
    # w = 1 samples p(x|0): HDR fractions at 0.5 and 0.9 within 4 binomial sd + 0.06 (16 EDM steps)
    for a, col in ((0.5, "in 50% HDR"), (0.9, "in 90% HDR")):
        assert abs(w1[col] - a) < 4 * np.sqrt(a * (1 - a) / n) + 0.06
    cfg, ag = rows[("CFG", 3.0)], rows[("autoguidance", 3.0)]
    # autoguidance concentrates on the class's high-density region without losing diversity;
    # CFG moves samples away from it (outer branches) and far from p(x|0) in energy distance
    assert ag["in 90% HDR"] > cfg["in 90% HDR"] + 0.1
    assert ag["energy dist to p(x|0)"] < 0.5 * cfg["energy dist to p(x|0)"]
    assert cfg["conf"] > w1["conf"]
