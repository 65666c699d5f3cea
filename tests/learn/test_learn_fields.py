"""Learned fields as field objects: score conversion (eq. 41) with the endpoints guarded, CFG with one
network (eq. 65), classifier guidance with a learned classifier (eq. 62), and the samplers."""

import numpy as np
import pytest

import refcfg
from refcfg import NULL, GMMPath, problem
from refcfg.learn.classifier import NoisyClassifier
from refcfg.learn.fields import (
    LearnedCFGField,
    LearnedClassifierGuidedField,
    LearnedField,
    learned_cfg,
)
from refcfg.learn.mlp import MLP, MLPConfig


def _model(n_classes=2, seed=0, schedule="linear", d_out=2):
    return MLP(
        MLPConfig(d_in=2, d_out=d_out, n_classes=n_classes, width=16, depth=2, seed=seed),
        meta=dict(schedule=schedule, schedule_params={}),
    )


class _ExactNet(LearnedField):
    """A LearnedField whose network is replaced by the exact velocity: tests the conversions."""

    def __init__(self, path, y=None):
        super().__init__(_model(schedule=path.schedule.name), y, path.schedule)
        self.path = path

    def _net(self, x, t, y):
        return self.path.velocity(x, t, y)


class _ExactClassifier:
    """grad log p_t(y|x) of the exact Bayes classifier (eq. 60), in the NoisyClassifier protocol."""

    n_classes = 2

    def __init__(self, path):
        self.path = path

    def grad_log_prob(self, x, t, y):
        return self.path.classifier_score(x, t, y)


@pytest.mark.parametrize("sched", ["linear", "cosine", "sqrt"])
def test_score_x0_eps_from_velocity_match_exact(sched):
    path = GMMPath(problem("two-class-2d"), sched)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2)) * 2
    for y in (None, 0, 1):
        f = _ExactNet(path, y)
        for t in (1e-6, 0.05, 0.3, 0.7, 0.95, 0.999):
            np.testing.assert_allclose(f.score(x, t), path.score(x, t, y), rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(f.x0(x, t), path.x0(x, t, y), rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(f.eps(x, t), path.eps(x, t, y), rtol=1e-7, atol=1e-7)
        # t = 0: the score of p_0 = N(0, I) is -x, whatever the network outputs
        np.testing.assert_allclose(f.score(x, 0.0), -x, rtol=0, atol=1e-12)
        # arrays of times mixing t = 0 and interior times
        ts = np.where(np.arange(50) % 2 == 0, 0.0, 0.4)
        np.testing.assert_allclose(f.score(x, ts), path.score(x, ts, y), rtol=1e-7, atol=1e-7)


def test_score_undefined_at_t1_for_linear():
    f = LearnedField(_model(), 0)
    with pytest.raises(ValueError, match="t = 1.0"):
        f.score(np.zeros((3, 2)), 1.0)
    # sqrt schedule: beta dbeta = -1/2 at t = 1, the conversion stays defined there
    path = GMMPath(problem("two-class-2d"), "sqrt")
    x = np.random.default_rng(1).standard_normal((5, 2))
    np.testing.assert_allclose(_ExactNet(path, 1).score(x, 1.0), path.score(x, 1.0, 1), rtol=1e-7)


def test_learned_cfg_equals_guided_combination():
    m = _model(seed=3)
    x = np.random.default_rng(2).standard_normal((40, 2))
    t = np.linspace(0, 1, 40)
    for w in (0.0, 1.0, 3.5):
        a = learned_cfg(m, 1, w).velocity(x, t)
        b = refcfg.guided(LearnedField(m, 1), LearnedField(m, None), w).velocity(x, t)
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
        # and the hand-written combination of two forward passes (eq. 65)
        ref = w * m.forward(x, t, 1) + (1 - w) * m.forward(x, t, NULL)
        np.testing.assert_allclose(a, ref, rtol=1e-13, atol=1e-13)
    # per-point labels and weights
    y, w = np.array([0, 1] * 20), np.linspace(0, 4, 40)
    ref = w[:, None] * m.forward(x, t, y) + (1 - w[:, None]) * m.forward(x, t, None)
    np.testing.assert_allclose(LearnedCFGField(m, y, w).velocity(x, t), ref, rtol=1e-13, atol=1e-13)


def test_classifier_guidance_with_exact_parts_matches_exact_guidance():
    path = GMMPath(problem("two-class-2d"))
    x = np.random.default_rng(3).standard_normal((30, 2)) * 1.5
    for w in (1.0, 3.0):
        f = LearnedClassifierGuidedField(path.field(None), _ExactClassifier(path), 0, w)
        for t in (0.01, 0.2, 0.6, 0.95, 1.0):
            np.testing.assert_allclose(
                f.velocity(x, t), path.classifier_guided_velocity(x, t, 0, w), rtol=1e-9, atol=1e-9
            )
            np.testing.assert_allclose(
                f.velocity(x, t), path.cfg_velocity(x, t, 0, w), rtol=1e-9, atol=1e-9
            )
        np.testing.assert_allclose(
            f.score(x, 0.4), path.cfg_score(x, 0.4, 0, w), rtol=1e-9, atol=1e-9
        )
        # t < t_guard: the guidance term is evaluated at t_guard, an O(t_guard) approximation
        g0 = f.velocity(x, 0.0)
        exact0 = path.classifier_guided_velocity(x, 0.0, 0, w)
        assert np.max(np.abs(g0 - exact0)) < 50 * f.t_guard * np.max(np.abs(exact0)) + 1e-12


def test_learned_fields_plug_into_samplers():
    m, clf = _model(seed=1), NoisyClassifier(_model(n_classes=0, seed=2))
    path = GMMPath(problem("two-class-2d"))
    fields = [
        LearnedField(m, 0),
        LearnedField(m, None),
        learned_cfg(m, 1, 3.0),
        refcfg.guided(LearnedField(m, 1), LearnedField(m, None), 2.0),
        LearnedClassifierGuidedField(LearnedField(m, None), clf, 1, 2.0),
        LearnedClassifierGuidedField(path.field(None), clf, 0, 2.0),
    ]
    for f in fields:
        for sampler in ("euler", "heun"):
            xs = refcfg.sample(f, 64, sampler=sampler, steps=8, seed=0)
            assert xs.shape == (64, 2) and np.all(np.isfinite(xs))
    # same seed, same field: identical samples; Euler by hand for the first field
    f = LearnedField(m, 0)
    xs = refcfg.sample(f, 16, sampler="euler", steps=4, seed=5)
    assert np.array_equal(xs, refcfg.sample(f, 16, sampler="euler", steps=4, seed=5))
    x = np.random.default_rng(5).standard_normal((16, 2))
    x_ref = refcfg.sample(f, 16, sampler="euler", steps=4, x_init=x)
    for k in range(4):
        x = x + 0.25 * m.forward(x, k * 0.25, 0)
    np.testing.assert_allclose(x_ref, x, rtol=1e-12, atol=1e-12)
    # SDE sampler uses the score of the learned field
    xs = refcfg.sample(LearnedField(m, 1), 32, sampler="euler_maruyama", steps=8, seed=0, sigma=0.5)
    assert xs.shape == (32, 2) and np.all(np.isfinite(xs))


def test_bad_field_arguments():
    with pytest.raises(ValueError, match="classifier"):
        LearnedField(_model(n_classes=0, d_out=3))
    with pytest.raises(ValueError, match="y must be None"):
        LearnedField(_model(n_classes=0), 1)
    with pytest.raises(ValueError, match="y must be in 0..1"):
        LearnedField(_model(), 5)
    with pytest.raises(TypeError, match="model"):
        LearnedField("model")
    with pytest.raises(ValueError, match="schedule"):
        LearnedField(MLP(MLPConfig(2, 2, 2, 8, 1)))
    with pytest.raises(ValueError, match="y must be a class label"):
        LearnedClassifierGuidedField(LearnedField(_model(), None), _model(n_classes=0), None, 2.0)
    with pytest.raises(ValueError, match="t_guard"):
        LearnedClassifierGuidedField(
            LearnedField(_model(), None), _model(n_classes=0), 0, 2.0, t_guard=-1.0
        )
    with pytest.raises(ValueError, match="x has shape"):
        LearnedField(_model(), 0).velocity(np.zeros((3, 3)), 0.5)
