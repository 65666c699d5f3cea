"""The linear guidance rules as lowerable fields: interval, w(t), plain CFG and autoguidance.

Oracles: direct NumPy combinations of the exact fields written here, w(t) u(x|y) + (1 - w(t)) u_ref,
with the weight computed independently from the schedule (sigma = beta_t / alpha_t, inf at
alpha_t = 0, for the interval; 1 + (w - 1) g(t) with g written out for w(t)); the lowered form
(``linear_terms``: sum of coef * tcoef(t) * GMMPath.velocity) against the same combination.
Interior times and both endpoints, float64, tolerance 1e-12 relative to the field's scale.

Every registered rule (``refcfg.guidance.RULES``) is covered without a list here: a rule whose field
is a ``LinearRule`` must lower and equal the combination its own profile g(t) prescribes, every
other rule must refuse to lower; a new linear rule is tested by registering it.
"""

from __future__ import annotations

import numpy as np
import pytest

from refcfg import GMMPath, problem
from refcfg import guidance as G
from refcfg.guidance import NotLowerable, linear_terms

W = 2.5
TIMES = [0.0, 0.1, 0.25, 0.5, 0.77, 1.0]
TOL = 1e-12


@pytest.fixture(scope="module", params=["linear", "cosine", "vp"])
def path(request):
    return GMMPath(problem("two-class-2d"), request.param)


def _x(n=9, seed=0):
    return 2.0 * np.random.default_rng(seed).standard_normal((n, 2))


def _close(a, b, tol=TOL):
    assert np.max(np.abs(a - b)) <= tol * max(1.0, float(np.max(np.abs(b)))), np.max(np.abs(a - b))


def _sigma(schedule, t):
    al, be = float(schedule.alpha(t)), float(schedule.beta(t))
    return np.inf if al == 0.0 else be / al


def _direct(path, x, t, wt, kind="velocity", ref_path=None, y=1):
    """wt q(x|y) + (1 - wt) q_ref, q = velocity or score, by GMMPath directly."""
    ref = getattr(path, kind)(x, t) if ref_path is None else getattr(ref_path, kind)(x, t, y)
    return wt * getattr(path, kind)(x, t, y) + (1.0 - wt) * ref


def _lowered(field, x, t, kind="velocity"):
    out = np.zeros_like(x)
    for term in linear_terms(field):
        tc = 1.0 if term.tcoef is None else float(term.tcoef(np.array([t]))[0])
        out += term.coef * tc * getattr(term.path, kind)(x, t, term.y)
    return out


@pytest.mark.parametrize("lo,hi", [(0.28, 2.9), (None, 1.0), (0.5, None), (None, None)])
def test_interval_equals_direct_combination(path, lo, hi):
    f = G.GuidanceInterval(path.field(1), path.field(None), W, sigma_lo=lo, sigma_hi=hi)
    x = _x()
    for t in TIMES:
        s = _sigma(path.schedule, t)
        on = (lo is None or s > lo) and (hi is None or s <= hi)
        wt = W if on else 1.0
        want = _direct(path, x, t, wt)
        _close(f.velocity(x, t), want)
        _close(_lowered(f, x, t), want)
        _close(f.score(x, t), _direct(path, x, t, wt, "score"))
        _close(_lowered(f, x, t, "score"), _direct(path, x, t, wt, "score"))
        terms = linear_terms(f)
        assert float(terms[0].tcoef(np.array([t]))[0]) == wt
        assert float(terms[1].tcoef(np.array([t]))[0]) == (1.0 - W if on else 0.0)


PROFILES = {
    "constant": lambda t: 1.0,
    "linear": lambda t: 2.0 * t,
    "cosine": lambda t: 1.0 - np.cos(np.pi * t),
}


@pytest.mark.parametrize("kind", list(PROFILES))
def test_weight_schedule_equals_direct_combination(path, kind):
    f = G.ScheduledCFG(path.field(1), path.field(None), W, kind=kind)
    x = _x(seed=1)
    for t in TIMES:
        wt = 1.0 + (W - 1.0) * PROFILES[kind](t)
        want = _direct(path, x, t, wt)
        _close(f.velocity(x, t), want)
        _close(_lowered(f, x, t), want)
        _close(f.score(x, t), _direct(path, x, t, wt, "score"))
    # per-row times: each row with its own weight
    tt = np.array(TIMES + [0.6, 0.3, 0.9])
    want = np.stack(
        [
            _direct(path, x[i : i + 1], t, 1.0 + (W - 1.0) * PROFILES[kind](t))[0]
            for i, t in enumerate(tt)
        ]
    )
    _close(f.velocity(x, tt), want)


def test_plain_cfg_and_autoguidance_lower_to_constant_weights(path):
    x = _x(seed=2)
    weak = GMMPath(G.weaker_mixture(path.mixture, 2.0), path.schedule)
    cfg = G.make("cfg", path, 1, W)
    auto = G.make("autoguidance", path, 1, W)
    for f in (cfg, auto):
        terms = linear_terms(f)
        assert [t.coef for t in terms] == [W, 1.0 - W] and all(t.tcoef is None for t in terms)
    assert (
        linear_terms(auto)[1].path.mixture.classes[0].covs[0, 0, 0]
        == 2.0 * path.mixture.classes[0].covs[0, 0, 0]
    )
    for t in TIMES:
        _close(cfg.velocity(x, t), _direct(path, x, t, W))
        _close(_lowered(cfg, x, t), _direct(path, x, t, W))
        want = W * path.velocity(x, t, 1) + (1 - W) * weak.velocity(x, t, 1)
        _close(auto.velocity(x, t), want)
        _close(_lowered(auto, x, t), want)


def _build(name, path, y=1, w=W):
    return G.make(name, path, y, w, t_grid=np.linspace(0.0, 1.0, 5))


@pytest.mark.parametrize("name", G.RULES)
def test_which_rules_lower(name):
    # the expectation is read from the registered rule itself: a LinearRule lowers to its two
    # terms, any other rule refuses with the reason
    f = _build(name, GMMPath(problem("two-class-2d")), y=0)
    if isinstance(f, G.LinearRule):
        assert len(linear_terms(f)) == 2, name
    else:
        with pytest.raises(NotLowerable, match="declares no _terms"):
            linear_terms(f)


def _exact(field, x, t, kind):
    """The input field's prediction by its GMMPath directly (not through the field object)."""
    return getattr(field.path, kind)(x, t, field.y)


LINEAR_RULES = [
    name
    for name in G.RULES
    if isinstance(_build(name, GMMPath(problem("two-class-2d")), y=0), G.LinearRule)
]
"""The registered rules whose field is a ``LinearRule`` (read from the registry)."""


def test_the_registry_has_linear_rules():
    assert {"cfg", "interval", "autoguidance", "schedule"} <= set(LINEAR_RULES)


@pytest.mark.parametrize("name", LINEAR_RULES)
def test_every_linear_rule_equals_its_profile_combination(path, name):
    # oracle: ((1 - g) + w g) cond + (1 - w) g ref with g = the rule's profile at t and cond, ref
    # evaluated by GMMPath; the NumPy field, its score and the lowered form all equal it
    f = _build(name, path)
    x = _x(seed=5)
    for t in TIMES:
        g = float(np.asarray(f.profile(np.array([t])), dtype=np.float64).reshape(-1)[0])
        for kind in ("velocity", "score"):
            want = ((1.0 - g) + W * g) * _exact(f.cond, x, t, kind) + (1.0 - W) * g * _exact(
                f.ref, x, t, kind
            )
            _close(getattr(f, kind)(x, t), want)
            _close(_lowered(f, x, t, kind), want)
    # per-row times: each row with its own profile value
    tt = np.array(TIMES[:3] + [0.6, 0.3, 0.9, 0.45, 0.8, 0.15])
    g = np.asarray(f.profile(tt), dtype=np.float64)[:, None]
    want = ((1.0 - g) + W * g) * _exact(f.cond, x, tt, "velocity") + (1.0 - W) * g * _exact(
        f.ref, x, tt, "velocity"
    )
    _close(f.velocity(x, tt), want)


def test_rules_on_non_lowerable_fields_are_refused():
    path = GMMPath(problem("two-class-2d"))

    class Learned:
        d, schedule = 2, path.schedule

        def velocity(self, x, t):
            return path.velocity(x, t, 1)

    f = G.GuidanceInterval(Learned(), path.field(None), W, schedule=path.schedule)
    with pytest.raises(NotLowerable, match="Learned"):
        linear_terms(f)
    x = _x(seed=3)
    _close(
        f.velocity(x, 0.6), G.GuidanceInterval(path.field(1), path.field(None), W).velocity(x, 0.6)
    )


class _CombineOverride(G.GuidanceInterval):
    def _combine(self, c, u, x, t, state):
        return c, None


class _NewProfile(G.LinearRule):
    """A new linear rule written as a user would add one: only ``name`` and ``profile``."""

    name = "ramp"

    def profile(self, t):
        return np.asarray(t, dtype=np.float64) ** 2


def test_subclass_rule_for_linear_rules():
    path = GMMPath(problem("two-class-2d"), "cosine")
    with pytest.raises(NotLowerable, match="_CombineOverride overrides _combine without declaring"):
        linear_terms(_CombineOverride(path.field(1), path.field(None), W))
    f = _NewProfile(path.field(1), path.field(None), W)
    x = _x(seed=4)
    for t in TIMES:
        want = _direct(path, x, t, 1.0 + (W - 1.0) * t * t)
        _close(f.velocity(x, t), want)
        _close(_lowered(f, x, t), want)


def test_registry():
    # the registry's own invariants (no list of names: adding a rule must not break this test)
    assert tuple(G.REGISTRY) == G.RULES and len(set(G.RULES)) == len(G.RULES)
    with pytest.raises(ValueError, match="name must be one of"):
        G.make("magic", GMMPath(problem("two-class-2d")), 0, W)
    with pytest.raises(TypeError, match="unexpected keyword"):
        G.make("autoguidance", GMMPath(problem("two-class-2d")), 0, W, phi=0.3)
