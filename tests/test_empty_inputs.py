"""Empty inputs: every public field function maps x of shape (0, d) to an empty output of the
documented shape, as NumPy functions do (no error, no kernel call)."""

import numpy as np
import pytest

import refcfg
import refcfg.validate
from refcfg import convert
from refcfg.learn.fields import LearnedCFGField, LearnedField
from refcfg.learn.mlp import MLP, MLPConfig

PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
D = PATH.d
X = np.empty((0, D))
MODEL = MLP(MLPConfig(d_in=D, d_out=D, n_classes=2, width=8, depth=1))

CASES = {
    "velocity": (lambda x: PATH.velocity(x, 0.5, 0), (0, D)),
    "velocity-conversion": (lambda x: PATH.velocity(x, 0.5, method="conversion"), (0, D)),
    "score": (lambda x: PATH.score(x, 0.5), (0, D)),
    "x0": (lambda x: PATH.x0(x, 0.5, 1), (0, D)),
    "eps": (lambda x: PATH.eps(x, 0.5), (0, D)),
    "log_prob": (lambda x: PATH.log_prob(x, 0.5), (0,)),
    "divergence": (lambda x: PATH.divergence(x, 0.5, 0), (0,)),
    "responsibilities": (lambda x: PATH.responsibilities(x, 0.5), (0, PATH.mixture.marginal.K)),
    "class_log_probs": (lambda x: PATH.class_log_probs(x, 0.5), (0, PATH.n_classes)),
    "classifier_score": (lambda x: PATH.classifier_score(x, 0.5, 0), (0, D)),
    "cfg_velocity": (lambda x: PATH.cfg_velocity(x, 0.5, 0, 3.0), (0, D)),
    "cfg_score": (lambda x: PATH.cfg_score(x, 0.5, 0, 3.0), (0, D)),
    "classifier_guided_velocity": (
        lambda x: PATH.classifier_guided_velocity(x, 0.5, 0, 3.0),
        (0, D),
    ),
    "classifier_guided_score": (lambda x: PATH.classifier_guided_score(x, 0.5, 0, 3.0), (0, D)),
    "conditional_sample": (lambda x: PATH.conditional_sample(x, 0.5, seed=0), (0, D)),
    "conditional_velocity": (lambda x: PATH.conditional_velocity(x, 0.5, x), (0, D)),
    "conditional_score": (lambda x: PATH.conditional_score(x, 0.5, x), (0, D)),
    "per-point times": (lambda x: PATH.velocity(x, np.empty(0), 0), (0, D)),
    "fields": (lambda x: PATH.fields(x, 0.5, want=("velocity",))["velocity"], (0, D)),
    "field.velocity": (lambda x: PATH.field(0).velocity(x, 0.5), (0, D)),
    "field.score": (lambda x: PATH.field(0).score(x, 0.5), (0, D)),
    "cfg.velocity": (lambda x: PATH.cfg(0, 3.0).velocity(x, 0.5), (0, D)),
    "cfg.score": (lambda x: PATH.cfg(0, 3.0).score(x, 0.5), (0, D)),
    "classifier_guided.velocity": (
        lambda x: PATH.classifier_guided(0, 3.0).velocity(x, 0.5),
        (0, D),
    ),
    "convert": (lambda x: convert.convert(x, "velocity", "score", x, 0.5), (0, D)),
    "convert-same": (lambda x: convert.convert(x, "x0", "x0", x, 0.5), (0, D)),
    "gmm.log_prob": (lambda x: PATH.mixture.marginal.log_prob(x), (0,)),
    "gmm.score": (lambda x: PATH.mixture.marginal.score(x), (0, D)),
    "gmm.responsibilities": (
        lambda x: PATH.mixture.marginal.responsibilities(x),
        (0, PATH.mixture.marginal.K),
    ),
    "LearnedField": (lambda x: LearnedField(MODEL, 0, "linear").velocity(x, 0.5), (0, D)),
    "LearnedCFGField": (
        lambda x: LearnedCFGField(MODEL, 0, 3.0, "linear").velocity(x, 0.5),
        (0, D),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_empty_points_give_empty_output(name):
    fn, shape = CASES[name]
    out = fn(X)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert out.shape == shape


def test_empty_points_keep_deliberate_refusals():
    with pytest.raises(ValueError, match="at least one point"):
        refcfg.validate.check_field(
            lambda x, t, y: PATH.velocity(x, t, y), "two-class-2d", points=X
        )
