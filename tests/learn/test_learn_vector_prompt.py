"""refcfg.learn.vector_prompt: the null embedding's gradient and a short training run against the
exact fields of ``refcfg.vector_prompts``."""

from __future__ import annotations

import numpy as np
import pytest

from refcfg.experiments.vector_prompts import family
from refcfg.learn.vector_prompt import LearnedVectorCFG, VectorPromptModel, train_vector_cfg
from refcfg.vector_prompts import VectorPromptPath


def test_null_embedding_gradient_by_finite_differences():
    rng = np.random.default_rng(0)
    model = VectorPromptModel(2, 3, width=16, depth=2, seed=1)
    model.null[...] = rng.normal(size=3)
    n = 20
    x, t, target = rng.normal(size=(n, 2)), rng.random(n), rng.normal(size=(n, 2))
    Y = rng.normal(size=(n, 3))
    drop = rng.random(n) < 0.4

    def loss(e):
        y_in = np.where(drop[:, None], e, Y)
        out = model.net.forward_features(model._features(x, t, y_in))
        return float(np.mean(np.sum((out - target) ** 2, axis=1)))

    _, g = model.loss_and_grads(x, t, target, np.where(drop[:, None], model.null, Y), drop)
    h = 1e-6
    fd = np.array(
        [(loss(model.null + h * e) - loss(model.null - h * e)) / (2 * h) for e in np.eye(3)]
    )
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_short_training_learns_both_halves():
    fam = family()
    model, losses, _ = train_vector_cfg(
        fam, steps=1500, batch=256, width=48, depth=2, seed=0, progress=False
    )
    assert losses[-100:].mean() < 0.7 * losses[:100].mean()
    assert np.linalg.norm(model.null) > 0  # the null embedding was trained
    vp = VectorPromptPath(fam, "linear")
    rng = np.random.default_rng(1)
    errs_c, errs_u = [], []
    for t in np.linspace(0.1, 0.9, 5):
        z, y = fam.sample(2000, rng)
        x = t * z + (1 - t) * rng.standard_normal(z.shape)
        uc, uu = vp.velocity(x, t, y), vp.velocity(x, t)
        errs_c.append(np.sum((model.velocity(x, t, y) - uc) ** 2) / np.sum(uc**2))
        errs_u.append(np.sum((model.velocity(x, t, None) - uu) ** 2) / np.sum(uu**2))
        # the conditional half must use the prompt: better than the null half as a model of u(x|y)
        assert errs_c[-1] < np.sum((model.velocity(x, t, None) - uc) ** 2) / np.sum(uc**2)
    # relative L2 errors after 1500 steps (measured ~0.05-0.1; bound with margin)
    assert np.mean(errs_c) < 0.25 and np.mean(errs_u) < 0.25, (errs_c, errs_u)
    f = LearnedVectorCFG(model, np.array([0.0, 0.0]), 1.0)
    xq = rng.normal(size=(5, 2))
    np.testing.assert_allclose(
        f.velocity(xq, 0.5), model.velocity(xq, 0.5, np.zeros(2)), rtol=0, atol=1e-14
    )


def test_bad_inputs():
    with pytest.raises(TypeError, match="family must be"):
        train_vector_cfg("two-class-2d", steps=1)
    with pytest.raises(ValueError, match="eta"):
        train_vector_cfg(family(), eta=1.5, steps=1)
    m = VectorPromptModel(2, 2, width=8, depth=1)
    with pytest.raises(ValueError, match="y has shape"):
        m.velocity(np.zeros((3, 2)), 0.5, np.zeros((2, 2)))
