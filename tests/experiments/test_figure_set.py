"""The computations of the figure set (refcfg.experiments.figure_set): bad input is refused before
any work, naming the argument; the plotting box holds the data; the arrays are the exact fields."""

from __future__ import annotations

import numpy as np
import pytest

import refcfg
from refcfg.experiments import figure_set


@pytest.fixture(scope="module")
def tiny_model():
    train = pytest.importorskip("refcfg.learn.train")
    res = train.train_cfg(
        "two-class-2d", steps=20, width=16, depth=2, batch=128, seed=0, progress=False
    )
    return res.model


def test_bad_inputs_name_the_argument():
    path2 = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    path1 = refcfg.GMMPath(refcfg.problem("gauss-1d"))
    with pytest.raises(ValueError, match="path must be 2-D"):
        figure_set.path_snapshots(path1)
    with pytest.raises(TypeError, match="path must be a refcfg.GMMPath"):
        figure_set.classifier_heatmaps("two-class-2d")
    with pytest.raises(ValueError, match="y must be in 0..1"):
        figure_set.path_snapshots(path2, y=2)
    with pytest.raises(ValueError, match="ts must lie in"):
        figure_set.classifier_heatmaps(path2, ts=(0.5, 1.5))
    with pytest.raises(ValueError, match="ts must be < 1"):
        figure_set.conditional_vs_marginal(path2, ts=(0.5, 1.0))
    with pytest.raises(ValueError, match="v1 must be a variance"):
        figure_set.gaussian_cfg_variance(v1=0.0)


def test_learned_errors_figure_needs_a_model():
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    with pytest.raises(TypeError, match="model must be a refcfg.learn.MLP"):
        figure_set.learned_vs_exact(path, "not a model")


def test_learned_errors_figure_rejects_a_model_of_another_problem(tiny_model):
    model = tiny_model
    with pytest.raises(ValueError, match="model must be a CFG model of this problem"):
        figure_set.learned_vs_exact(refcfg.GMMPath(refcfg.problem("mit-symmetric")), model)
    with pytest.raises(ValueError, match="trained with schedule 'linear'"):
        figure_set.learned_vs_exact(refcfg.GMMPath(refcfg.problem("two-class-2d"), "cosine"), model)


def test_cfg_sweep_box_fits_the_data():
    # the box holds the data law (means +- 3 sd) and the samples, and no more than 5 % padding
    mix = refcfg.problem("two-class-2d")
    x = np.array([[-1.0, 0.5], [0.3, 2.0]])
    lo, hi = figure_set.data_box(mix, x)
    m = mix.marginal
    sd = np.sqrt(m.eigvals.max(axis=1))[:, None]
    lo0, hi0 = (m.means - 3 * sd).min(), (m.means + 3 * sd).max()
    assert np.isclose(lo, lo0 - 0.05 * (hi0 - lo0)) and np.isclose(hi, hi0 + 0.05 * (hi0 - lo0))
    far = np.array([[9.0, -9.0]] * 10)
    lo2, hi2 = figure_set.data_box(mix, far)
    assert lo2 < -9.0 and hi2 > 9.0


def test_arrays_are_the_exact_fields():
    """Oracles independent of figure_set's loops: the classifier at t = 1 is the data-level Bayes
    posterior of the mixture (refcfg.mixture, 1e-12); the classifier at t = 0 is the prior p(y)
    (1e-12); the snapshot velocities are classifier guidance at w = 1 (eq. 62 at w = 1 is u(x|y),
    a different code path, 1e-10)."""
    mix = refcfg.problem("two-class-2d")
    path = refcfg.GMMPath(mix)
    d = figure_set.classifier_heatmaps(path, 1, ts=(0.0, 1.0), grid=9)
    g, pts = figure_set.plane_grid(d["box"], 9)
    assert np.array_equal(g, d["g"])
    logp = np.stack([mix.class_gmm(c).log_prob(pts) for c in (0, 1)], 1) + np.log(mix.class_probs)
    post = np.exp(logp[:, 1] - np.logaddexp(logp[:, 0], logp[:, 1])).reshape(9, 9)
    assert np.abs(d["probs"][1] - post).max() <= 1e-12
    assert np.abs(d["probs"][0] - mix.class_probs[1]).max() <= 1e-12
    s = figure_set.path_snapshots(path, 0, ts=(0.3, 1.0), grid=8, arrows=4)
    for t, v in zip(s["ts"], s["vels"]):
        want = path.classifier_guided_velocity(s["apts"], float(t), 0, 1.0)
        assert np.abs(v - want).max() <= 1e-10 * (1.0 + np.abs(want).max())
