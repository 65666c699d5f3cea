"""refcfg.interop._core: image-shaped inputs (N, *shape), the declared latent shape, the
(signal, noise) predictions and the EDM denoiser against independent closed forms, and the
argument checks of the public entry points (TypeError/ValueError naming the argument)."""

import numpy as np
import pytest

import refcfg
from refcfg.interop import predict
from refcfg.interop._core import (
    as_shape,
    edm_denoise,
    flat_shape,
    predict_signal_noise,
    signal_noise_from_alphas_cumprod,
)

from _interop_oracles import posterior

MIX = refcfg.problem("two-class-2d")
PATH = refcfg.GMMPath(MIX, refcfg.schedule("linear"))


def _latent_path(shape=(2, 2, 3), seed=0):
    """A two-class GMM on d = prod(shape) = 12 (a small 'latent'), linear schedule."""
    d = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    classes = [
        refcfg.GMM([0.5, 0.5], rng.normal(size=(2, d)), [0.3 + 0.1 * i for i in range(2)])
        for _ in range(2)
    ]
    return refcfg.GMMPath(refcfg.LabeledGMM(classes, [0.4, 0.6]), "linear")


@pytest.mark.slow
def test_image_shaped_inputs_round_trip():
    path = _latent_path()
    field = path.cfg(1, 2.5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 2, 2, 3))
    for t in [0.0, 0.4, 1.0]:
        for p in ["velocity", "eps", "x0", "v"] + (["score"] if t < 1 else []):
            flat = predict(field, x.reshape(5, 12), t, p)
            img = predict(field, x, t, p)
            assert img.shape == x.shape
            assert np.array_equal(img.reshape(5, 12), flat)
            decl = predict(field, x, t, p, shape=(2, 2, 3))
            assert np.array_equal(decl, img)
    with pytest.raises(
        ValueError, match=r"x has shape \(5, 2, 2, 3\).*\(N, 12\) or \(N, 3, 2, 2\)"
    ):
        predict(field, x, 0.5, shape=(3, 2, 2))
    with pytest.raises(ValueError, match=r"prod\(shape\) = 12"):
        predict(field, np.zeros((5, 2, 2, 2)), 0.5)


def test_declared_shape_is_checked_against_d():
    assert as_shape((4, 1, 3), 12) == (4, 1, 3)
    assert as_shape(None, 12) is None
    with pytest.raises(ValueError, match=r"shape \(4, 4\) has 16 entries but the field has d = 12"):
        as_shape((4, 4), 12)
    with pytest.raises(TypeError, match="shape must be None or a tuple of positive ints"):
        as_shape("4x3", 12)
    with pytest.raises(TypeError, match="shape"):
        as_shape((4, 0.5), 12)
    with pytest.raises(TypeError, match="shape"):
        as_shape((4, -3), 12)
    assert flat_shape((7, 12), 12, (3, 4)) == (7, 12)
    assert flat_shape((7, 3, 4), 12, (3, 4)) == (7, 12)


@pytest.mark.slow
def test_wrong_types_name_the_argument():
    x = np.zeros((3, 2))
    with pytest.raises(TypeError, match=r"field must be a field object.*'two-class-2d'"):
        predict("two-class-2d", x, 0.5)
    with pytest.raises(TypeError, match="field"):
        predict(42, x, 0.5)
    with pytest.raises(TypeError, match="t must be"):
        predict(PATH.field(0), x, "a")
    with pytest.raises(TypeError, match="t must be"):
        predict(PATH.field(0), x, True)
    with pytest.raises(TypeError, match="x must be"):
        predict(PATH.field(0), "x", 0.5)
    with pytest.raises(TypeError, match="prediction must be one of"):
        predict(PATH.field(0), x, 0.5, 3)
    with pytest.raises(ValueError, match="prediction must be one of"):
        predict(PATH.field(0), x, 0.5, "noise")
    with pytest.raises(TypeError, match="clamp"):
        predict(PATH.field(0), x, 0.5, clamp="1e-3")
    # a GMMPath is its unconditional field
    assert np.max(np.abs(predict(PATH, x, 0.5) - PATH.velocity(x, 0.5))) <= 1e-14


@pytest.mark.slow
@pytest.mark.parametrize("output", ["epsilon", "sample", "v_prediction", "flow"])
def test_signal_noise_predictions_match_closed_form(output):
    """Against the posterior written in the library's convention (tests/_interop_oracles.py):
    <= 1e-12 relative, at several (signal, noise) pairs incl. noise-only scales."""
    rng = np.random.default_rng(2)
    xd = rng.normal(size=(40, 2)) * 2
    for a, s in [(0.999, 0.04), (0.7, 0.7), (0.3, 0.95), (0.01, 1.0), (1.0, 5.0)]:
        x0, eps = posterior(MIX, xd, a, s, 1)
        ref = {"epsilon": eps, "sample": x0, "v_prediction": a * eps - s * x0, "flow": eps - x0}[
            output
        ]
        got = predict_signal_noise(PATH.field(1), xd, a, s, output)
        assert np.max(np.abs(got - ref)) <= 1e-12 * max(1, np.max(np.abs(ref))), (a, s)
        img = predict_signal_noise(PATH.field(1), xd.reshape(40, 1, 2), a, s, output)
        assert img.shape == (40, 1, 2) and np.array_equal(img.reshape(40, 2), got)


@pytest.mark.slow
def test_edm_denoiser_closed_form_and_sigma_zero():
    rng = np.random.default_rng(3)
    xd = rng.normal(size=(20, 2)) * 3
    for sigma in [0.002, 0.5, 80.0]:
        x0, _ = posterior(MIX, xd, 1.0, sigma, 0)
        got = edm_denoise(PATH.field(0), xd, sigma)
        assert np.max(np.abs(got - x0)) <= 1e-12 * max(1, np.max(np.abs(x0)))
    sig = np.array([0.0] * 10 + [1.0] * 10)
    got = edm_denoise(PATH.field(0), xd, sig)
    assert np.max(np.abs(got[:10] - xd[:10])) <= 1e-12
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        edm_denoise(PATH.field(0), xd, -1.0)


def test_alphas_cumprod_map():
    acp = np.linspace(0.999, 0.01, 50)
    a, s = signal_noise_from_alphas_cumprod(acp, [0, 49, 10])
    assert np.array_equal(a, np.sqrt(acp[[0, 49, 10]]))
    assert np.array_equal(s, np.sqrt(1 - acp[[0, 49, 10]]))
    a, s = signal_noise_from_alphas_cumprod(acp, 10.25)
    sig = np.sqrt((1 - acp) / acp)
    want = 0.75 * sig[10] + 0.25 * sig[11]
    assert abs(s[0] / a[0] - want) <= 1e-14 * want and abs(a[0] ** 2 + s[0] ** 2 - 1) < 1e-15
    with pytest.raises(ValueError, match=r"timestep must lie in \[0, 49\]"):
        signal_noise_from_alphas_cumprod(acp, 50)
    with pytest.raises(ValueError, match=r"alphas_cumprod must be .* in \(0, 1\]"):
        signal_noise_from_alphas_cumprod(np.array([0.5, 0.0]), 0)
    with pytest.raises(TypeError, match="timestep"):
        signal_noise_from_alphas_cumprod(acp, "3")


def test_time_from_signal_noise_checks_its_arguments():
    from refcfg.interop import time_from_signal_noise

    with pytest.raises(TypeError, match="schedule must be a refcfg Schedule"):
        time_from_signal_noise("linear", 0.5, 0.5)
    with pytest.raises(TypeError, match="signal"):
        time_from_signal_noise(PATH.schedule, "a", 0.5)
    with pytest.raises(ValueError, match="signal and noise must broadcast"):
        time_from_signal_noise(PATH.schedule, [0.1, 0.2], [0.3, 0.4, 0.5])
    t, c = time_from_signal_noise(PATH.schedule, 0.6, 0.8)
    assert t[0] == pytest.approx(0.6 / 1.4, abs=1e-15) and c[0] == pytest.approx(1 / 1.4, abs=1e-15)


def test_signal_noise_lengths_are_checked_by_name():
    """A noise array of the wrong length is named as noise (it was reported against t)."""
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="noise must have 1 or 4 entries"):
        predict_signal_noise(PATH.field(0), x, 1.0, np.ones(3), "epsilon")
    with pytest.raises(ValueError, match="signal must have 1 or 4 entries"):
        predict_signal_noise(PATH.field(0), x, np.ones(2), 1.0, "epsilon")


@pytest.mark.slow
@pytest.mark.parametrize(
    "problem, x",
    [
        ("two-class-2d", [[1e50, -1e50], [0.2, 0.1], [3e9, 1e9]]),
        ("gauss-1d", [[1e20], [0.5], [-1e8]]),
        ("mit-symmetric", [[1e30, 2.0], [1.0, 1.0], [40.0, -20.0]]),
    ],
)
@pytest.mark.parametrize("t", [0.0, 1e-9, 0.3, 1.0 - 1e-9, 1.0])
def test_cpu_x0_and_eps_far_from_the_data_equal_the_numpy_core(problem, x, t):
    """Far from the data x0 and eps from the velocity cancel (at t = 0, x0 = u + x on the linear
    schedule: 1e50 - 1e50): the fast backend must give the NumPy core's answer there, not a finite
    wrong one. Tolerance: 1e-9 relative to 1 + |exact| (CONVERSION_RTOL)."""
    path = refcfg.GMMPath(refcfg.problem(problem))
    x = np.asarray(x, dtype=np.float64)
    for field in (refcfg.ExactField(path), refcfg.CFGField(path, 0, 3.0)):
        for prediction in ("x0", "eps"):
            got = predict(field, x, t, prediction, backend="cpu")
            want = predict(field, x, t, prediction, backend="numpy")
            assert np.all(np.abs(got - want) <= 1e-9 * (1.0 + np.abs(want))), (
                prediction,
                got,
                want,
            )
