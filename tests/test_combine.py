"""The one CFG combination (refcfg.combine) and the sites that call it.

- ``combine`` against a per-row loop written here (float64, rtol 1e-15 relative to the row scale);
- bit for bit against the committed golden vectors: w * velocity_cond + (1 - w) * velocity_uncond
  (and the scores) of verification/vectors are exactly ``combine`` of the committed conditional and
  unconditional arrays, at t = 0, interior times and t = 1;
- the guided fields (``GMMPath.cfg_velocity``, ``GuidedField``, ``PlainCFG``, ``cfg_combine``)
  give exactly ``combine`` of their two inputs (the same floating-point operations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import refcfg
from refcfg import guidance as G
from refcfg import vectors as V
from refcfg.combine import combine

COMMITTED = Path(__file__).resolve().parents[1] / "verification" / "vectors"


def test_combine_rowwise():
    rng = np.random.default_rng(5)
    c, u = rng.standard_normal((2, 9, 3)) * 4.0
    w = rng.uniform(-2.0, 6.0, size=9)
    ref = np.array([w[i] * c[i] + (1.0 - w[i]) * u[i] for i in range(9)])
    np.testing.assert_allclose(combine(c, u, w), ref, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(combine(c, u, 2.5), 2.5 * c + (1.0 - 2.5) * u)
    # (N,) quantities (divergences) with one weight per row
    np.testing.assert_array_equal(combine(c[:, 0], u[:, 0], w), w * c[:, 0] + (1.0 - w) * u[:, 0])
    # w = 1 is the conditional prediction, w = 0 the reference, exactly
    np.testing.assert_array_equal(combine(c, u, 1.0), c)
    np.testing.assert_array_equal(combine(c, u, 0.0), u)


def test_golden_vectors_are_combine_bit_for_bit():
    cases = V.read_vectors(COMMITTED)
    assert cases
    compared = 0
    for name, case in cases.items():
        A = case["arrays"]
        assert A["times"][0] == 0.0 and A["times"][-1] == 1.0
        for quantity in ("velocity", "score"):
            cond, uncond, guided = (
                A[f"{quantity}_cond"],
                A[f"{quantity}_uncond"],
                A[f"cfg_{quantity}"],
            )
            for j, w in enumerate(A["w"]):
                ok = np.isfinite(guided[j])
                np.testing.assert_array_equal(
                    combine(cond, uncond, float(w))[ok], guided[j][ok], err_msg=f"{name} {quantity}"
                )
                compared += int(ok.sum())
    assert compared > 1000


@pytest.fixture(scope="module")
def path():
    return refcfg.GMMPath(refcfg.problem("two-class-2d"))


@pytest.mark.parametrize("t", [0.0, 0.37, 1.0])
def test_every_guided_field_is_combine(path, t):
    rng = np.random.default_rng(7)
    x = 2.0 * rng.standard_normal((11, 2))
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    w = 3.0
    c, u = path.velocity(x, t, y), path.velocity(x, t)
    want = combine(c, u, w)
    np.testing.assert_array_equal(path.cfg_velocity(x, t, y, w), want)
    np.testing.assert_array_equal(path.cfg(y, w).velocity(x, t), want)
    np.testing.assert_array_equal(G.guided(path.field(y), path.field(None), w).velocity(x, t), want)
    np.testing.assert_array_equal(G.cfg_combine(c, u, w), want)
    np.testing.assert_array_equal(
        G.PlainCFG(path.field(y), path.field(None), w).velocity(x, t), want
    )
    np.testing.assert_array_equal(
        G.PlainCFG(path.field(y), path.field(None), w).score(x, t),
        combine(path.score(x, t, y), path.score(x, t), w),
    )
    np.testing.assert_array_equal(
        path.cfg_score(x, t, y, w), combine(path.score(x, t, y), path.score(x, t), w)
    )
