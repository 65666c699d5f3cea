"""The Field protocol: score, x0 and eps of a velocity-only field through the one conversion
(``refcfg.convert``), against the exact path quantities at interior times and at the endpoints.

Oracle: ``GMMPath.score`` / ``x0`` / ``eps`` (posterior sums, another code path than the conversion).
Tolerances: 1e-9 relative to the field's scale at interior times (the conversion loses ~1e-16/alpha_t);
the endpoint values are exact forms (-x / beta_0^2 at t = 0), 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

from refcfg import GMMPath, problem
from refcfg.guidance import Field


class _VelocityOnly(Field):
    def __init__(self, path, y=None, schedule="path"):
        self.path, self.y, self.d = path, y, path.d
        self.schedule = path.schedule if schedule == "path" else schedule

    def velocity(self, x, t):
        return self.path.velocity(x, t, self.y)


def _close(a, b, tol):
    assert np.max(np.abs(a - b)) <= tol * max(1.0, float(np.max(np.abs(b)))), np.max(np.abs(a - b))


@pytest.mark.parametrize("sched", ["linear", "cosine", "sqrt", "vp"])
def test_converted_quantities_match_exact(sched):
    path = GMMPath(problem("two-class-2d"), sched)
    x = 2 * np.random.default_rng(0).standard_normal((30, 2))
    for y in (None, 1):
        f = _VelocityOnly(path, y)
        for t in (0.05, 0.3, 0.7, 0.95):
            for q in ("score", "x0", "eps"):
                _close(getattr(f, q)(x, t), getattr(path, q)(x, t, y), 1e-9)
        for q in ("x0", "eps"):  # t = 1: both defined for every schedule
            _close(getattr(f, q)(x, 1.0), getattr(path, q)(x, 1.0, y), 1e-9)
        if path.schedule.alpha0_is_zero:
            be0 = float(path.schedule.beta(0.0))
            _close(f.score(x, 0.0), -x / be0**2, 1e-15)
            _close(f.score(x, 0.0), path.score(x, 0.0, y), 1e-12)
            _close(f.eps(x, 0.0), path.eps(x, 0.0, y), 1e-12)


def test_undefined_conversion_and_missing_schedule():
    path = GMMPath(problem("two-class-2d"), "linear")
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"t = 1\.0"):
        _VelocityOnly(path).score(x, 1.0)
    with pytest.raises(TypeError, match="_VelocityOnly.x0 needs the field's schedule"):
        _VelocityOnly(path, schedule=None).x0(x, 0.5)


def test_classifier_guided_x0_eps_through_the_conversion():
    """ClassifierGuidedField defines velocity and score only; its x0 and eps come from the velocity
    by ``refcfg.convert`` and equal CFG's combination w x0(x|y) + (1 - w) x0(x) of the exact
    posterior means (the exact-field identity, eqs. 59-62; weights summing to 1 commute with the
    affine maps). Interior times and t = 1, tolerance 1e-9 relative."""
    path = GMMPath(problem("two-class-2d"), "cosine")
    x = 2 * np.random.default_rng(1).standard_normal((20, 2))
    f = path.classifier_guided(1, 3.0)
    for t in (0.1, 0.5, 0.9, 1.0):
        for q in ("x0", "eps"):
            want = 3.0 * getattr(path, q)(x, t, 1) - 2.0 * getattr(path, q)(x, t)
            _close(getattr(f, q)(x, t), want, 1e-9)
