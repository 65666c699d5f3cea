"""refcfg.interop.jax: exact predictions through jax.pure_callback, eager and jitted, against the
NumPy closed forms (float64 <= 1e-12 with x64 enabled, float32 <= 1e-5)."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow

jax = pytest.importorskip("jax", reason="jax not installed (pip install jax)")

import refcfg  # noqa: E402
from refcfg.interop.jax import exact_fn  # noqa: E402

PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"), refcfg.schedule("linear"))


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("prediction", ["velocity", "eps", "x0", "score", "v"])
def test_predictions_eager_and_jit(prediction, x64):
    field = PATH.cfg(1, 2.5)
    f = exact_fn(field, prediction)
    fj = jax.jit(f)
    x = np.random.default_rng(0).normal(size=(32, 2))
    for t in [0.0, 0.3, 0.9, 1.0]:
        if prediction == "score" and t == 1.0:
            continue
        ref = (
            (t * field.eps(x, t) - (1 - t) * field.x0(x, t))
            if prediction == "v"
            else getattr(field, prediction)(x, t)
        )
        scale = max(1.0, np.max(np.abs(ref)))
        for fn in (f, fj):
            out = np.asarray(fn(jax.numpy.asarray(x), t))
            assert out.dtype == np.float64
            assert np.max(np.abs(out - ref)) <= 1e-12 * scale
        out32 = np.asarray(fj(jax.numpy.asarray(x, dtype=np.float32), t))
        assert out32.dtype == np.float32
        assert np.max(np.abs(out32 - ref)) <= 1e-5 * scale


def test_per_particle_times_and_errors(x64):
    f = exact_fn(PATH, "eps", y=0)
    x = np.random.default_rng(1).normal(size=(8, 2))
    t = np.linspace(0, 1, 8)
    assert np.max(np.abs(np.asarray(f(x, t)) - PATH.eps(x, t, 0))) <= 1e-12
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        f(np.zeros((3, 3)), 0.5)
    with pytest.raises(ValueError, match="prediction"):
        exact_fn(PATH, "noise")
    with pytest.raises(Exception, match="t must lie"):
        np.asarray(f(x, 1.5))
