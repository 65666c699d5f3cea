"""The underfit-models study (fast variant: two tiny models; checks the plumbing and the gross effect)."""

from __future__ import annotations

import numpy as np
import pytest

from refcfg.experiments import underfit
from refcfg.plotting.studies import write_figure

pytestmark = pytest.mark.slow


def test_fast_study(tmp_path):
    res = underfit.run(fast=True, seed=0)
    best = res.tables["best w per model"]
    weak, strong = best[0], best[-1]
    # more capacity and training lower the field error against the exact conditional field
    assert strong["cond. field err"] < 0.5 * weak["cond. field err"]
    rows = {(r["model"], r["w"]): r for r in res.table}
    # the stronger model's samples at w = 1 are close to its exact CFG(1) law (= p(x|y)) and far
    # closer to p(x|y) than the weak model's
    s1 = rows[(strong["model"], 1.0)]
    assert s1["D2 to exact CFG(w)"] < 0.05 and s1["D2 to p(x|y)"] < weak["D2 at w=1"]
    # exact CFG with w > 1 moves away from p(x|y) (the reference rows)
    ex = {
        r["w"]: r["exact CFG D2 to p(x|y)"] for r in res.tables["exact CFG (same initial points)"]
    }
    assert ex[3.0] > 5 * ex[1.0]
    assert all(np.isfinite(r["D2 to p(x|y)"]) for r in res.table)
    write_figure(res, tmp_path / "u.png")
    assert (tmp_path / "u.png").stat().st_size > 10000
