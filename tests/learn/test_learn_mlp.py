"""MLP, layers and Adam: gradients against central finite differences in float64 (every parameter
entry), Adam against Algorithm 1 of Kingma and Ba written out in scalar arithmetic, persistence."""

import json

import numpy as np
import pytest

from refcfg import NULL
from refcfg.learn.mlp import MLP, Adam, MLPConfig, time_features

RTOL = 1e-6  # gradient checks: relative error <= 1e-6 in float64
H = 1e-6  # central-difference step: truncation ~H^2, rounding ~1e-16/H, both << 1e-6


def _fd_param_grads(model, loss):
    """Central finite differences of loss() w.r.t. every entry of model.theta."""
    fd = np.empty_like(model.theta)
    for i in range(model.theta.size):
        old = model.theta[i]
        model.theta[i] = old + H
        lp = loss()
        model.theta[i] = old - H
        lm = loss()
        model.theta[i] = old
        fd[i] = (lp - lm) / (2 * H)
    return fd


def _assert_close_per_param(model, g, fd):
    offset = 0
    for name, p in model.params().items():
        gs, fs = g[offset : offset + p.size], fd[offset : offset + p.size]
        offset += p.size
        rel = np.linalg.norm(gs - fs) / max(np.linalg.norm(fs), 1e-300)
        assert rel <= RTOL, f"{name}: relative error {rel:.2e} > {RTOL}"
    # entrywise, relative to the largest gradient entry
    assert np.max(np.abs(g - fd)) <= RTOL * np.max(np.abs(fd))


@pytest.mark.parametrize("n_classes,depth", [(2, 3), (0, 1), (3, 2)])
def test_parameter_gradients_match_finite_differences(n_classes, depth):
    rng = np.random.default_rng(1)
    model = MLP(
        MLPConfig(d_in=2, d_out=3, n_classes=n_classes, width=6, depth=depth, n_freqs=2, seed=3)
    )
    n = 7
    x = rng.standard_normal((n, 2)) * 2
    t = rng.random(n)
    y = rng.integers(-1, n_classes, n) if n_classes else None
    R = rng.standard_normal((n, 3))

    def loss():  # a nonlinear scalar of the output: sum R * out + 0.5 sum out^2
        out = model.forward(x, t, y)
        return float(np.sum(R * out) + 0.5 * np.sum(out**2))

    out, cache = model.forward(x, t, y, cache=True)
    model.backward(cache, R + out)
    _assert_close_per_param(model, model.grad.copy(), _fd_param_grads(model, loss))


def test_input_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    model = MLP(MLPConfig(d_in=3, d_out=2, n_classes=2, width=5, depth=2, n_freqs=3, seed=0))
    x = rng.standard_normal((4, 3))
    t, y = rng.random(4), np.array([0, 1, NULL, 1])
    R = rng.standard_normal((4, 2))
    out, cache = model.forward(x, t, y, cache=True)
    gx = model.backward(cache, R, input_grad=True)
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += H
        xm[i] -= H
        fd[i] = (np.sum(R * model.forward(xp, t, y)) - np.sum(R * model.forward(xm, t, y))) / (
            2 * H
        )
    assert np.linalg.norm(gx - fd) <= RTOL * np.linalg.norm(fd)


def test_training_loss_gradient_matches_finite_differences():
    # the flow-matching loss wiring (mean over the batch of |out - target|^2, factor 2/n)
    from refcfg.learn.train import _velocity_loss

    rng = np.random.default_rng(5)
    model = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=5, depth=2, n_freqs=1, seed=1))
    batch = dict(
        x=rng.standard_normal((9, 2)),
        t=rng.random(9),
        y_in=rng.integers(-1, 2, 9),
        target=rng.standard_normal((9, 2)),
    )
    loss_and_grad = _velocity_loss(lambda r: batch)
    loss_and_grad(model, None)
    g = model.grad.copy()

    def loss():
        out = model.forward(batch["x"], batch["t"], batch["y_in"])
        return float(np.mean(np.sum((out - batch["target"]) ** 2, axis=1)))

    _assert_close_per_param(model, g, _fd_param_grads(model, loss))


def test_adam_matches_algorithm_1_by_hand():
    theta = np.array([1.0, -2.0, 0.5])
    grads = [np.array([0.5, -0.1, 0.0]), np.array([-0.3, 0.2, 1e-3]), np.array([0.1, 0.1, -2.0])]
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    opt = Adam(theta, lr=lr, beta1=b1, beta2=b2, eps=eps)
    # Algorithm 1 in plain Python floats, coordinate by coordinate
    ref = [1.0, -2.0, 0.5]
    m, v = [0.0] * 3, [0.0] * 3
    for k, g in enumerate(grads, start=1):
        opt.step(g)
        for i in range(3):
            m[i] = b1 * m[i] + (1 - b1) * float(g[i])
            v[i] = b2 * v[i] + (1 - b2) * float(g[i]) ** 2
            mhat = m[i] / (1 - b1**k)
            vhat = v[i] / (1 - b2**k)
            ref[i] = ref[i] - lr * mhat / (vhat**0.5 + eps)
        np.testing.assert_allclose(theta, ref, rtol=1e-14, atol=1e-15)
    # the first step moves every coordinate with a nonzero gradient by ~lr against its sign
    theta2 = np.zeros(2)
    Adam(theta2, lr=0.01).step(np.array([3.0, -1e-4]))
    np.testing.assert_allclose(theta2, [-0.01, 0.01], rtol=1e-3)


def test_adam_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lr"):
        Adam(np.zeros(2), lr=0.0)
    with pytest.raises(ValueError, match="beta1"):
        Adam(np.zeros(2), beta1=1.0)
    with pytest.raises(TypeError, match="theta"):
        Adam([0.0, 1.0])


def test_save_load_round_trip(tmp_path):
    model = MLP(
        MLPConfig(d_in=2, d_out=2, n_classes=3, width=8, depth=2, seed=4),
        meta=dict(kind="cfg", schedule="linear", note="x"),
    )
    model.theta += 0.01 * np.arange(model.n_params)  # not the initial values
    path = model.save(tmp_path / "m")
    assert path.endswith(".npz")
    loaded = MLP.load(path)
    assert loaded.config == model.config and loaded.meta == model.meta
    assert np.array_equal(loaded.theta, model.theta)
    rng = np.random.default_rng(0)
    x, t, y = rng.standard_normal((5, 2)), rng.random(5), np.array([0, 1, 2, NULL, 0])
    assert np.array_equal(loaded.forward(x, t, y), model.forward(x, t, y))
    # a file that is not a model
    bad = tmp_path / "bad.npz"
    np.savez(bad, theta=np.zeros(3))
    with pytest.raises(ValueError, match="not a refcfg MLP"):
        MLP.load(bad)
    # wrong theta size for the configuration
    with np.load(path) as d:
        parts = dict(d)
    parts["theta"] = parts["theta"][:-1]
    np.savez(tmp_path / "short.npz", **parts)
    with pytest.raises(ValueError, match="theta"):
        MLP.load(tmp_path / "short.npz")
    assert json.loads(str(np.load(path)["config"]))["width"] == 8


def test_seeded_init_and_float32():
    cfg = MLPConfig(d_in=2, d_out=2, n_classes=2, width=16, depth=2, seed=9)
    a, b = MLP(cfg), MLP(cfg)
    assert np.array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, MLP(MLPConfig(2, 2, 2, 16, 2, seed=10)).theta)
    f32 = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=16, depth=2, seed=9, dtype="float32"))
    f32.theta[...] = a.theta
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 2)), rng.random(6)
    out32 = f32.forward(x, t, 1)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, a.forward(x, t, 1), rtol=1e-4, atol=1e-5)


def test_labels_and_features():
    model = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=4, depth=1, n_freqs=2))
    x = np.zeros((3, 2))
    # None and NULL are the same (null slot); an int broadcasts
    assert np.array_equal(model.forward(x, 0.5, None), model.forward(x, 0.5, np.full(3, NULL)))
    assert np.array_equal(model.forward(x, 0.5, 1), model.forward(x, 0.5, np.array([1, 1, 1])))
    oh = model.label_onehot(np.array([0, NULL, 1]), 3)
    assert np.array_equal(oh, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    tf = time_features(np.array([0.25]), 2)
    np.testing.assert_allclose(
        tf,
        [[0.25, np.sin(np.pi / 4), np.sin(np.pi / 2), np.cos(np.pi / 4), np.cos(np.pi / 2)]],
        atol=1e-15,
    )
    with pytest.raises(ValueError, match="y must be in 0..1"):
        model.forward(x, 0.5, 2)
    with pytest.raises(ValueError, match="x has shape"):
        model.forward(np.zeros((3, 3)), 0.5, 0)
    with pytest.raises(ValueError, match="t has shape"):
        model.forward(x, np.zeros(2), 0)
    with pytest.raises(ValueError, match="y must be None"):
        MLP(MLPConfig(2, 2, n_classes=0, width=4, depth=1)).forward(x, 0.5, 1)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(width=0), "width"),
        (dict(depth=0), "depth"),
        (dict(dtype="float16"), "dtype"),
        (dict(n_classes=-1), "n_classes"),
    ],
)
def test_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        MLPConfig(d_in=2, d_out=2, **kw)
    with pytest.raises(TypeError, match="width"):
        MLPConfig(d_in=2, d_out=2, width=2.5)


def test_load_says_what_is_wrong_in_refcfgs_words(tmp_path):
    # a Python file, a text file, a plain .npy array and a missing path: one ValueError each,
    # naming the path, never NumPy's pickle or zip message
    py = tmp_path / "model.py"
    py.write_text("def f(x, t, y):\n    return x\n")
    arr = tmp_path / "a.npy"
    np.save(arr, np.zeros(3))
    for p in (py, arr):
        with pytest.raises(ValueError, match="is not a refcfg model file") as info:
            MLP.load(p)
        assert "pickle" not in str(info.value) and str(p) in str(info.value)
    with pytest.raises(ValueError, match="does not exist"):
        MLP.load(tmp_path / "missing.npz")


def test_final_loss_says_how_many_steps_it_averages():
    from refcfg.learn.train import TrainResult

    model = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=8, depth=1, seed=0))
    losses = np.arange(1.0, 41.0)  # 40 steps
    assert TrainResult(model, losses).final_loss(100) == (np.mean(losses), 40)
    losses = np.arange(1.0, 251.0)  # 250 steps: the last 100 are 151..250
    assert TrainResult(model, losses).final_loss(100) == (200.5, 100)
    with pytest.raises(ValueError, match="no training step"):
        TrainResult(model, np.zeros(0)).final_loss()


def test_empty_inputs_give_empty_outputs():
    # an (0, d) batch is a batch: (0, d_out) out, as NumPy functions do
    from refcfg.learn.classifier import NoisyClassifier

    m = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=8, depth=1, seed=0))
    out = m.forward(np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int64))
    assert out.shape == (0, 2) and out.dtype == np.float64
    clf = MLP(
        MLPConfig(d_in=2, d_out=2, n_classes=0, width=8, depth=1, seed=0),
        dict(kind="classifier", schedule="linear", log_prior=[np.log(0.5)] * 2),
    )
    assert NoisyClassifier(clf).log_probs(np.zeros((0, 2)), 0.5).shape == (0, 2)
