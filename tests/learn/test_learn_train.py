"""CFG training (notes eqs. 66-67), the unconditional model and the noisy classifier."""

import numpy as np
import pytest
from scipy.special import log_softmax as scipy_log_softmax

from refcfg import NULL, GMMPath, problem
from refcfg._progress import progress_bar
from refcfg.learn.classifier import NoisyClassifier, log_softmax, train_classifier
from refcfg.learn.compare import classifier_errors, field_errors
from refcfg.learn.mlp import MLP, MLPConfig
from refcfg.learn.train import cfg_batch, train_cfg, train_unconditional
from refcfg.problems import resolve

SMALL = dict(steps=300, width=32, depth=2, batch=256, warmup=20, progress=False)


@pytest.mark.parametrize("eta", [0.1, 0.3])
def test_label_dropout_fraction_is_eta(eta):
    # the labs once inverted the dropout (kept the label with probability eta): P(NULL) must be eta
    path = resolve("two-class-2d").path
    mixture, sched = path.mixture, path.schedule
    n = 200_000
    b = cfg_batch(mixture, sched, n, seed=11, eta=eta)
    frac = np.mean(b["y_in"] == NULL)
    sigma = np.sqrt(eta * (1 - eta) / n)
    assert abs(frac - eta) < 5 * sigma, (frac, eta)
    kept = b["y_in"] != NULL
    assert np.array_equal(b["y_in"][kept], b["y"][kept])
    # eta = 0: no null labels; eta = 1: all null
    assert np.all(cfg_batch(mixture, sched, 1000, seed=1, eta=0.0)["y_in"] != NULL)
    assert np.all(cfg_batch(mixture, sched, 1000, seed=1, eta=1.0)["y_in"] == NULL)


@pytest.mark.parametrize("sched", ["linear", "cosine", "sqrt"])
def test_batch_is_the_conditional_path_and_velocity(sched):
    # x = alpha z + beta eps and target = u_t(x|z), checked against GMMPath.conditional_velocity
    # (eq. 20 written as a function of x and z, a different formula)
    res = resolve("two-class-2d", sched)
    mixture, schedule = res.mixture, res.schedule
    b = cfg_batch(mixture, schedule, 5000, seed=3)
    assert 0.0 <= b["t"].min() and b["t"].max() < 1.0
    path = GMMPath(mixture, schedule)
    ok = b["t"] < 0.999
    np.testing.assert_allclose(
        b["target"][ok],
        path.conditional_velocity(b["x"][ok], b["t"][ok], b["z"][ok]),
        rtol=1e-9,
        atol=1e-9,
    )
    # t ~ U[0, 1]: Kolmogorov-Smirnov against the uniform law
    from scipy.stats import kstest

    assert kstest(b["t"], "uniform").pvalue > 1e-3
    # labels follow p(y) = (0.5, 0.5) within 5 sigma
    assert abs(np.mean(b["y"] == 0) - 0.5) < 5 * np.sqrt(0.25 / 5000)


def test_bad_training_arguments():
    with pytest.raises(ValueError, match="eta"):
        train_cfg(eta=1.5, **SMALL)
    with pytest.raises(ValueError, match="steps"):
        train_cfg(**dict(SMALL, steps=0))
    with pytest.raises(TypeError, match="problem"):
        train_cfg(problem=3.0, **SMALL)
    with pytest.raises(ValueError, match="t_sampling"):
        train_cfg(**dict(SMALL, t_sampling="beta"))


def _heldout_loss(model, conditional, seed=99):
    path = resolve("two-class-2d").path
    mixture, sched = path.mixture, path.schedule
    b = cfg_batch(mixture, sched, 20000, seed=seed, conditional=conditional)
    out = model.forward(b["x"], b["t"], b["y_in"])
    return float(np.mean(np.sum((out - b["target"]) ** 2, axis=1)))


def test_short_cfg_training_reduces_loss_and_field_error():
    res = train_cfg(seed=1, **SMALL)
    model = res.model
    fresh = MLP(model.config, model.meta)  # same seeded initialisation, untrained
    before, after = _heldout_loss(fresh, True), _heldout_loss(model, True)
    # the loss has an irreducible part E|u(x|z) - u(x|y)|^2; still, 300 steps cut it by > 25 %
    assert after < 0.75 * before, (before, after)
    assert res.losses.shape == (300,) and np.all(np.isfinite(res.losses))
    assert model.meta["kind"] == "cfg" and model.meta["schedule"] == "linear"
    path = GMMPath(problem("two-class-2d"))
    tg = np.linspace(0.1, 0.9, 5)
    e_before = field_errors(path, fresh, t_grid=tg, n=1000, seed=0)["conditional"].mean()
    e_after = field_errors(path, model, t_grid=tg, n=1000, seed=0)["conditional"].mean()
    assert e_after < 0.5 * e_before and e_after < 0.4, (e_before, e_after)


def test_short_unconditional_training_reduces_loss():
    res = train_unconditional(seed=2, **SMALL)
    assert res.model.config.n_classes == 0 and res.model.meta["kind"] == "unconditional"
    fresh = MLP(res.model.config, res.model.meta)
    assert _heldout_loss(res.model, False) < 0.9 * _heldout_loss(fresh, False)
    # the loss has a large irreducible part here; the field error itself must at least halve
    path = GMMPath(problem("two-class-2d"))
    tg = np.linspace(0.1, 0.9, 5)
    e = [
        field_errors(path, None, unconditional=m, t_grid=tg, n=1000, seed=0)[
            "unconditional_model"
        ].mean()
        for m in (fresh, res.model)
    ]
    assert e[1] < 0.5 * e[0], e


@pytest.mark.parametrize("alpha_scaled", [False, True])
def test_classifier_input_gradient_matches_finite_differences(alpha_scaled):
    rng = np.random.default_rng(4)
    meta = dict(
        schedule="cosine",
        schedule_params={},
        alpha_scaled=alpha_scaled,
        log_prior=np.log([0.2, 0.3, 0.5]).tolist(),
    )
    clf = NoisyClassifier(
        MLP(MLPConfig(d_in=2, d_out=3, width=6, depth=2, n_freqs=2, seed=2), meta)
    )
    x, t, y = rng.standard_normal((6, 2)) * 2, rng.random(6), np.array([0, 1, 2, 2, 1, 0])
    g = clf.grad_log_prob(x, t, y)
    h = 1e-6
    fd = np.zeros_like(x)
    idx = np.arange(6)
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        fd[:, j] = (clf.log_probs(x + e, t)[idx, y] - clf.log_probs(x - e, t)[idx, y]) / (2 * h)
    assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(fd)
    assert np.max(np.abs(g - fd)) <= 1e-6 * np.max(np.abs(fd))
    if alpha_scaled:
        # the guidance term is a_t grad log p (schedule.a, eq. 41, a different formula) ...
        np.testing.assert_allclose(
            clf.guidance_term(x, t, y), clf.schedule.a(t)[:, None] * g, rtol=1e-10, atol=1e-12
        )
        # ... at t = 0 the classifier is the prior p(y) exactly, its gradient 0, the term finite
        np.testing.assert_allclose(clf.log_probs(x, 0.0), np.log([[0.2, 0.3, 0.5]] * 6), rtol=1e-14)
        assert np.all(clf.grad_log_prob(x, 0.0, y) == 0.0)
        assert np.all(np.isfinite(clf.guidance_term(x, 0.0, y)))
    else:
        with pytest.raises(ValueError, match="alpha-scaled"):
            clf.guidance_term(x, t, y)


def test_log_softmax_matches_scipy():
    f = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(log_softmax(f), scipy_log_softmax(f, axis=1), rtol=1e-15, atol=0)


@pytest.mark.parametrize("alpha_scaled", [True, False])
def test_short_classifier_training_approaches_bayes(alpha_scaled):
    res = train_classifier(seed=3, alpha_scaled=alpha_scaled, **SMALL)
    assert res.classifier.alpha_scaled == alpha_scaled
    assert res.losses[-50:].mean() < 0.9 * res.losses[:50].mean()
    path = GMMPath(problem("two-class-2d"))
    # accuracy within 0.05 of the Bayes classifier (N = 2000 per t, seed 0: sampling s.e. ~0.01)
    ce = classifier_errors(path, res.classifier, t_grid=[0.3, 0.6, 0.9], n=2000, seed=0)
    assert np.all(ce["accuracy"] >= ce["bayes_accuracy"] - 0.05), ce
    assert np.all(ce["kl"] < 0.1), ce
    with pytest.raises(ValueError, match="no null label"):
        res.classifier.grad_log_prob(np.zeros((2, 2)), 0.5, NULL)
    with pytest.raises(ValueError, match="n_classes=0"):
        NoisyClassifier(MLP(MLPConfig(2, 2, n_classes=2, width=4, depth=1)))


def test_progress_bar_only_on_a_tty_or_forced(capsys):
    # training uses the one progress bar; under pytest stderr is captured (not a TTY): the bar is
    # off unless forced
    assert progress_bar(10, "x", True) is None
    assert progress_bar(10, "x", False) is None
    train_cfg(**dict(SMALL, steps=60, progress=True))
    assert "cfg" not in capsys.readouterr().err
    train_cfg(**dict(SMALL, steps=60, progress="force"))
    assert "cfg" in capsys.readouterr().err
