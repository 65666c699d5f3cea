"""The exact-vs-learned comparison report and the ``refcfg train`` command."""

import json
import sys

import numpy as np
import pytest

from refcfg import GMMPath, problem
from refcfg.cli import main
from refcfg.learn.classifier import NoisyClassifier
from refcfg.learn.compare import classifier_errors, compare, field_errors, mean_over
from refcfg.learn.mlp import MLP, MLPConfig


def _zero_model(n_classes=2, d_out=2):
    m = MLP(
        MLPConfig(d_in=2, d_out=d_out, n_classes=n_classes, width=8, depth=1, seed=0),
        meta=dict(schedule="linear", schedule_params={}),
    )
    m.theta[...] = 0.0  # outputs exactly 0
    return m


def test_zero_field_has_relative_error_one():
    # |0 - u|^2 / |u|^2 = 1 exactly for every field and every w (an independent oracle)
    path = GMMPath(problem("two-class-2d"))
    f = field_errors(
        path,
        _zero_model(),
        unconditional=_zero_model(0),
        ws=(0.0, 1.0, 3.0),
        t_grid=[0.0, 0.3, 1.0],
        n=200,
        seed=0,
    )
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
    rep = compare(
        "two-class-2d",
        m,
        classifier=clf,
        ws=(1.0, 2.0),
        t_grid=[0.1, 0.5, 0.9],
        n_field=200,
        n_samples=100,
        steps=5,
        seed=3,
    )
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["fields"]["n"] == 200 and d["fields"]["seed"] == 3
    assert len(d["samples"]) == 2 * 2 * 2  # {cfg, classifier} x 2 classes x 2 weights
    for row in d["samples"]:
        assert row["energy"] >= 0 and 0 <= row["accuracy_learned"] <= 1
        assert np.isfinite(row["loglik_learned"]) and np.isfinite(row["loglik_exact"])
    text = rep.to_text()
    for piece in (
        "N = 200 per t",
        "seed = 3",
        "cfg w=2",
        "Bayes accuracy",
        "N = 100 per (y, w)",
        "seed = 5",
    ):
        assert piece in text, piece
    assert d["conditional_error_mean_05_95"] == pytest.approx(np.mean(d["fields"]["conditional"]))


def test_train_command_writes_models_and_prints_report(tmp_path, capsys):
    out = tmp_path / "m.npz"
    code = main(
        [
            "train",
            "--steps",
            "20",
            "--width",
            "8",
            "--depth",
            "1",
            "--batch",
            "32",
            "--out",
            str(out),
            "--classifier",
            "--unconditional",
            "--n-field",
            "100",
            "--n-samples",
            "50",
            "--sample-steps",
            "4",
            "--w",
            "1,2",
            "--no-progress",
            "--json",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert len(d["saved"]) == 3 and "unconditional_model" in d["fields"]
    model = MLP.load(out)
    assert model.meta["kind"] == "cfg" and model.meta["steps_done"] == 20
    assert MLP.load(tmp_path / "m-classifier.npz").meta["kind"] == "classifier"
    assert MLP.load(tmp_path / "m-uncond.npz").config.n_classes == 0
    # text report, no samples
    code = main(
        [
            "train",
            "--steps",
            "5",
            "--width",
            "4",
            "--depth",
            "1",
            "--batch",
            "16",
            "--out",
            str(tmp_path / "n"),
            "--no-samples",
            "--n-field",
            "50",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "relative L2 error" in capsys.readouterr().out
    assert (tmp_path / "n.npz").exists()


@pytest.mark.parametrize(
    "args,match",
    [
        (["--eta", "1.5"], "eta"),
        (["--w", "a,b"], "--w"),
        (["--steps", "0"], "steps"),
        (["--problem", "nope"], "nope"),
    ],
)
def test_train_command_usage_errors(tmp_path, capsys, args, match):
    code = main(["train", "--out", str(tmp_path / "x.npz"), "--no-progress", *args])
    assert code == 2
    assert match in capsys.readouterr().err


# ------------------------------------------------------------------------------- BLAS threads
from test_learn_threads import blas_counts, default_threads, needs_two, two_threads  # noqa: E402,F401

from refcfg.learn.compare import sample_comparison  # noqa: E402


def _blas_setup():
    # width 64 and >= 200 rows per evaluation: products above OpenBLAS's size for using threads
    m = MLP(MLPConfig(2, 2, 2, 64, 2, seed=1), meta=dict(schedule="linear", schedule_params={}))
    clf = MLP(MLPConfig(2, 2, 0, 64, 2, seed=2), meta=dict(schedule="linear", schedule_params={}))
    return m, clf


def _blas_compare(m, clf, blas_threads):
    return compare(
        "two-class-2d",
        m,
        classifier=clf,
        ws=(1.0, 2.0),
        t_grid=np.linspace(0.05, 0.95, 11),
        n_field=400,
        n_samples=100,
        steps=4,
        seed=7,
        blas_threads=blas_threads,
    )


@pytest.mark.slow
@needs_two
def test_compare_same_results_and_recorded_choice_with_one_two_or_measured_threads():
    # Only the BLAS thread count differs: the draws are the same and the products differ at most
    # in rounding; tolerance 1e-10 relative on every number of the report (OpenBLAS gives equal
    # results here; another BLAS may split sums differently).
    m, clf = _blas_setup()
    reps = {n: _blas_compare(m, clf, n) for n in (1, 2, None)}
    ref = reps[1].to_dict()
    for n in (2, None):
        d = reps[n].to_dict()
        for key in ("conditional", "unconditional"):
            np.testing.assert_allclose(d["fields"][key], ref["fields"][key], rtol=1e-10, atol=0)
        for key in ("accuracy", "agreement", "kl"):
            np.testing.assert_allclose(
                d["classifier"][key], ref["classifier"][key], rtol=1e-10, atol=1e-300
            )
        assert len(d["samples"]) == len(ref["samples"]) == 8
        for row, row1 in zip(d["samples"], ref["samples"]):
            for key in ("energy", "loglik_learned", "accuracy_learned"):
                assert row[key] == pytest.approx(row1[key], rel=1e-10, abs=1e-300), (n, key)
    levels = ["fields", "classifier", "samples"]
    for n in (1, 2):
        assert list(reps[n].blas) == levels
        for rec in reps[n].blas.values():
            assert rec["requested"] == n and rec["threads"] == n and rec["checks"] == 0
    # measured: every level ran a trial of its own steps (11 grid points; 4 Heun steps x 2
    # evaluations x 8 sampler runs) between 1 thread and the default count, and kept one of them
    D = default_threads()
    for level in levels:
        rec = reps[None].blas[level]
        assert rec["requested"] is None and rec["default"] == D and rec["checks"] >= 1, level
        assert set(rec["trials"]) == {1, D} and rec["threads"] in (1, D), level
    assert reps[2].to_dict()["blas"]["samples"]["threads"] == 2
    assert "BLAS threads (requested): fields 1, classifier 1, samples 1" in reps[1].to_text()
    assert "BLAS threads (chosen by measurement): fields " in reps[None].to_text()


@pytest.mark.slow
@needs_two
def test_requested_count_is_in_force_for_every_network_evaluation_and_restored(monkeypatch):
    m, clf = _blas_setup()
    seen = []
    forward = MLP.forward

    def spy(self, *a, **k):
        seen.append(max(blas_counts()))
        return forward(self, *a, **k)

    monkeypatch.setattr(MLP, "forward", spy)
    before = blas_counts()
    _blas_compare(m, clf, 1)
    assert len(seen) > 11 and set(seen) == {1}
    assert blas_counts() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_blas_threads_refused_before_any_work(bad, monkeypatch):
    def work(*a, **k):
        raise AssertionError("work started")

    module = sys.modules["refcfg.learn.compare"]  # the name refcfg.learn.compare is the function
    monkeypatch.setattr("refcfg.problems.resolve", work)
    monkeypatch.setattr(module, "_joint_sample", work)
    monkeypatch.setattr(module, "learned_cfg", work)
    path = GMMPath(problem("two-class-2d"))
    m, clf = _blas_setup()
    match = "blas_threads must be None .* or a positive int"
    with pytest.raises(ValueError, match=match):
        compare("two-class-2d", m, blas_threads=bad)
    with pytest.raises(ValueError, match=match):
        field_errors(path, m, blas_threads=bad)
    with pytest.raises(ValueError, match=match):
        classifier_errors(path, clf, blas_threads=bad)
    with pytest.raises(ValueError, match=match):
        sample_comparison(path, m, blas_threads=bad)


def test_standalone_levels_take_blas_threads():
    path = GMMPath(problem("two-class-2d"))
    m, clf = _blas_setup()
    kw = dict(t_grid=[0.2, 0.7], n=200, seed=1)
    for n in (1, None):
        f = field_errors(path, m, ws=(2.0,), blas_threads=n, **kw)
        c = classifier_errors(path, clf, blas_threads=n, **kw)
        rows = sample_comparison(path, m, ws=(2.0,), n=100, steps=3, seed=1, blas_threads=n)
        assert f["conditional"].shape == (2,) and c["kl"].shape == (2,) and len(rows) == 2


def test_train_command_passes_blas_threads_to_the_comparison(tmp_path, capsys):
    code = main(
        [
            "train",
            "--steps",
            "5",
            "--width",
            "8",
            "--depth",
            "1",
            "--batch",
            "16",
            "--out",
            str(tmp_path / "m.npz"),
            "--n-field",
            "50",
            "--n-samples",
            "20",
            "--sample-steps",
            "2",
            "--w",
            "2",
            "--no-progress",
            "--json",
            "--blas-threads",
            "1",
        ]
    )
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["blas"]) == {"fields", "samples"}
    assert all(rec["requested"] == 1 and rec["threads"] == 1 for rec in d["blas"].values())
