"""The exact-vs-learned comparison report and the ``refcfg train`` command."""

import json

import numpy as np
import pytest

from refcfg import GMMPath, problem
from refcfg.cli import main
from refcfg.learn.classifier import NoisyClassifier
from refcfg.learn.compare import classifier_errors, compare, field_errors, mean_over
from refcfg.learn.mlp import MLP, MLPConfig


def _zero_model(n_classes=2, d_out=2):
    m = MLP(MLPConfig(d_in=2, d_out=d_out, n_classes=n_classes, width=8, depth=1, seed=0),
            meta=dict(schedule="linear", schedule_params={}))
    m.theta[...] = 0.0   # outputs exactly 0
    return m


def test_zero_field_has_relative_error_one():
    # |0 - u|^2 / |u|^2 = 1 exactly for every field and every w (an independent oracle)
    path = GMMPath(problem("two-class-2d"))
    f = field_errors(path, _zero_model(), unconditional=_zero_model(0), ws=(0.0, 1.0, 3.0),
                     t_grid=[0.0, 0.3, 1.0], n=200, seed=0)
    for key in ("conditional", "unconditional", "unconditional_model"):
        np.testing.assert_allclose(f[key], 1.0, rtol=1e-14)
    for w in (0.0, 1.0, 3.0):
        np.testing.assert_allclose(f["cfg"][w], 1.0, rtol=1e-14)
    assert mean_over([0.0, 0.05, 0.5, 0.95, 1.0], [9, 1, 2, 3, 9]) == 2.0


def test_cfg_error_at_w1_and_w0_are_conditional_and_unconditional():
    path = GMMPath(problem("two-class-2d"))
    m = MLP(MLPConfig(2, 2, 2, 8, 1, seed=1), meta=dict(schedule="linear", schedule_params={}))
    f = field_errors(path, m, ws=(0.0, 1.0), t_grid=[0.2, 0.8], n=300, seed=2)
    np.testing.assert_allclose(f["cfg"][1.0], f["conditional"], rtol=1e-12)
    np.testing.assert_allclose(f["cfg"][0.0], f["unconditional"], rtol=1e-12)


def test_uniform_classifier_kl_and_accuracy():
    # zero logits: p_theta = 1/C, so KL(p_B || p_theta) = log C - H(p_B); argmax picks class 0
    path = GMMPath(problem("two-class-2d"))
    clf = NoisyClassifier(_zero_model(0))
    ce = classifier_errors(path, clf, t_grid=[0.0, 0.5, 1.0], n=3000, seed=4)
    rng = np.random.default_rng(4)
    for i, t in enumerate([0.0, 0.5, 1.0]):
        z, y = path.mixture.sample(3000, seed=rng)
        x = t * z + (1 - t) * rng.standard_normal(z.shape)
        lb = path.class_log_probs(x, t)
        ent = -np.sum(np.exp(lb) * lb, axis=1)
        np.testing.assert_allclose(ce["kl"][i], np.mean(np.log(2) - ent), rtol=1e-12, atol=1e-14)
        assert ce["accuracy"][i] == np.mean(y == 0)
    # at t = 0 the Bayes classifier is p(y) = (1/2, 1/2): KL = 0
    assert abs(ce["kl"][0]) < 1e-12


def test_compare_report_text_and_dict():
    m = MLP(MLPConfig(2, 2, 2, 8, 1, seed=1), meta=dict(schedule="linear", schedule_params={}))
    clf = _zero_model(0)
    rep = compare("two-class-2d", m, classifier=clf, ws=(1.0, 2.0), t_grid=[0.1, 0.5, 0.9],
                  n_field=200, n_samples=100, steps=5, seed=3)
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["fields"]["n"] == 200 and d["fields"]["seed"] == 3
    assert len(d["samples"]) == 2 * 2 * 2   # {cfg, classifier} x 2 classes x 2 weights
    for row in d["samples"]:
        assert row["energy"] >= 0 and 0 <= row["accuracy_learned"] <= 1
        assert np.isfinite(row["loglik_learned"]) and np.isfinite(row["loglik_exact"])
    text = rep.to_text()
    for piece in ("N = 200 per t", "seed = 3", "cfg w=2", "Bayes accuracy", "N = 100 per (y, w)",
                  "seed = 5"):
        assert piece in text, piece
    assert d["conditional_error_mean_05_95"] == pytest.approx(np.mean(d["fields"]["conditional"]))


def test_train_command_writes_models_and_prints_report(tmp_path, capsys):
    out = tmp_path / "m.npz"
    code = main(["train", "--steps", "20", "--width", "8", "--depth", "1", "--batch", "32",
                 "--out", str(out), "--classifier", "--unconditional", "--n-field", "100",
                 "--n-samples", "50", "--sample-steps", "4", "--w", "1,2", "--no-progress",
                 "--json"])
    assert code == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert len(d["saved"]) == 3 and "unconditional_model" in d["fields"]
    model = MLP.load(out)
    assert model.meta["kind"] == "cfg" and model.meta["steps_done"] == 20
    assert MLP.load(tmp_path / "m-classifier.npz").meta["kind"] == "classifier"
    assert MLP.load(tmp_path / "m-uncond.npz").config.n_classes == 0
    # text report, no samples
    code = main(["train", "--steps", "5", "--width", "4", "--depth", "1", "--batch", "16", "--out",
                 str(tmp_path / "n"), "--no-samples", "--n-field", "50", "--no-progress"])
    assert code == 0
    assert "relative L2 error" in capsys.readouterr().out
    assert (tmp_path / "n.npz").exists()


@pytest.mark.parametrize("args,match", [(["--eta", "1.5"], "eta"), (["--w", "a,b"], "--w"),
                                        (["--steps", "0"], "steps"),
                                        (["--problem", "nope"], "nope")])
def test_train_command_usage_errors(tmp_path, capsys, args, match):
    code = main(["train", "--out", str(tmp_path / "x.npz"), "--no-progress", *args])
    assert code == 2
    assert match in capsys.readouterr().err
