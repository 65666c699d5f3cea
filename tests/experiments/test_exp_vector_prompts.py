"""The vector-prompt study (fast variant)."""

from __future__ import annotations

import numpy as np
import pytest

from refcfg.experiments import vector_prompts
from refcfg.plotting.studies import write_figure

pytestmark = pytest.mark.slow


def test_fast_study(tmp_path):
    res = vector_prompts.run(fast=True, seed=0)
    # classifier guidance (density over y, a_t grad_x log p_t(y|x)) = CFG on whole trajectories;
    # CFG(w = 1) = the conditional field (the same numbers)
    assert res.key["max_cg_minus_cfg"] < 1e-12
    assert res.key["max_cfg_w1_minus_conditional"] < 1e-13
    rows = [r for r in res.table if r["w"] != "exact"]
    for r in rows:
        if r["w"] == 1.0:
            # w = 1 samples p(x | y): D^2 within the spread of two exact samples (3 floor + 0.01)
            assert r["D2"] < 3 * r["D2 floor"] + 0.01, r
    for label in vector_prompts.PROMPTS:
        by_w = {r["w"]: r for r in rows if r["prompt"] == label and r["sampler"] == "ode"}
        # guidance raises the prompt fit log p(y | x) and moves the samples away from p(x | y)
        assert by_w[4.0]["log p(y|x)"] > by_w[1.0]["log p(y|x)"] + 0.3
        assert by_w[4.0]["D2"] > 10 * by_w[1.0]["D2"]
    joint = res.tables["per-particle prompts vs the joint law"]
    assert (
        joint[0]["w"] == 1.0 and joint[0]["D2 (x, y) vs p(x, y)"] < 3 * joint[0]["D2 floor"] + 0.01
    )
    # part 4: the learned vector-prompt model (800 steps, width 32, depth 2) against the exact fields
    # and laws: both halves learned to a relative error well below 1, one finite row per prompt and w
    err = res.tables["learned model: field errors"][0]
    assert err["cond. field err"] < 0.5 and err["null field err"] < 0.6, err
    learned = res.tables["learned model: CFG vs the exact fields and laws"]
    assert {(r["prompt"], r["w"]) for r in learned} == {
        (p, w) for p in vector_prompts.PROMPTS for w in (1.0, 2.0, 4.0)
    }
    for r in learned:
        assert all(np.isfinite(r[k]) for k in r if k != "prompt"), r
        if r["w"] == 1.0:
            # exact CFG(w = 1) from the same initial points is a sample of p(x | y): the two
            # distances of the learned samples agree within their spreads
            assert abs(r["D2 to p(x|y)"] - r["D2 to exact CFG(w)"]) < 3 * r["D2 sd"] + 0.02, r
    assert set(res.key["learned_best_w"]) == set(vector_prompts.PROMPTS)
    write_figure(res, tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 10000
