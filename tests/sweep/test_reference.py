"""A sweep scored against a second law (the spec's ``reference``) and learned models in a sweep.

Checked: the key is validated before any work in the spec's error style; a reference equal to the
sampled problem changes no number; samples of a noisy conditional scored against the clean law give
the clean mean log-likelihood of the noisy law (quadrature, independent of the cell code); ed_cfg is
0 for the exact CFG rule (same initial points, same field) and > 0 for another rule; a learned model
file samples and is scored against its reference; and every misuse is refused naming the key."""

from __future__ import annotations

import numpy as np
import pytest

import refcfg
from refcfg.noisy_labels import problem_toml, relabel, symmetric_confusion
from refcfg.sweep import load_spec
from refcfg.sweep.cell import evaluate


def _spec(**top):
    axes = top.pop("axes", {})
    metrics = top.pop("metrics", {"names": ["ed_cond", "confidence", "loglik"]})
    doc = {
        "seeds": 1,
        "axes": {"problem": ["gauss-1d"], "w": [1.0], "n": [400], "steps": [8], **axes},
        "metrics": metrics,
        **top,
    }
    return doc


@pytest.fixture(scope="module")
def noisy_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("noisy")
    clean = refcfg.problem("gauss-1d")
    p = d / "noisy-0.3.toml"
    p.write_text(problem_toml(relabel(clean, symmetric_confusion(2, 0.3)), "noisy"))
    return p


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from refcfg.learn import train_cfg

    d = tmp_path_factory.mktemp("model")
    res = train_cfg(
        "two-class-2d", steps=60, width=8, depth=1, batch=128, seed=0, progress=False, warmup=10
    )
    return res.model.save(d / "tiny.npz")


def test_reference_equal_to_the_sampled_problem_changes_no_number():
    a = load_spec(_spec())
    b = load_spec(_spec(reference="gauss-1d"))
    assert a.cells()[0].id != b.cells()[0].id  # the setting is part of the cell id
    assert b.canonical()["reference"] == "gauss-1d" and "reference" not in a.canonical()
    assert evaluate(a.cells()[0]) == evaluate(b.cells()[0])


@pytest.mark.slow
def test_noisy_samples_scored_against_the_clean_law(noisy_file):
    # at w = 1 the cell samples p(x | y~) of the noisy pairs; scored against the clean law, the mean
    # log p(x | y) of the samples estimates int p(x | y~) log p(x | y) dx (quadrature here)
    n = 6000
    doc = _spec(
        reference="gauss-1d",
        axes={"problem": [str(noisy_file)], "n": [n], "steps": [100], "sampler": ["rk4"]},
    )
    row = evaluate(load_spec(doc).cells()[0])
    clean = refcfg.problem("gauss-1d")
    noisy = relabel(clean, symmetric_confusion(2, 0.3))
    x = np.linspace(-12, 12, 48001)[:, None]
    px = np.exp(noisy.class_gmm(0).log_prob(x))
    expect = np.trapezoid(px * clean.class_gmm(0).log_prob(x), x[:, 0])
    # 4 standard errors of the sample mean, plus the ODE's step error (rk4, 100 steps: < 1e-3)
    assert abs(row["loglik"] - expect) < 4 * row["loglik_se"] + 1e-3, (row, expect)
    # the same cell without the reference scores against the noisy law itself
    own = evaluate(load_spec(dict(doc, reference=str(noisy_file))).cells()[0])
    expect_own = np.trapezoid(px * noisy.class_gmm(0).log_prob(x), x[:, 0])
    assert abs(own["loglik"] - expect_own) < 4 * own["loglik_se"] + 1e-3
    assert row["ed_cond"] > 20 * own["ed_cond"]  # far from the clean law, on the noisy one


def test_ed_cfg_is_zero_for_exact_cfg_and_positive_for_another_rule():
    doc = _spec(
        axes={"rule": ["cfg", {"name": "interval", "sigma_lo": 0.3, "sigma_hi": 3.0}], "w": [3.0]},
        metrics={"names": ["ed_cfg"]},
    )
    cfg, interval = (evaluate(c) for c in load_spec(doc).cells())
    assert cfg["ed_cfg"] == 0.0  # the same initial points through the same field
    assert interval["ed_cfg"] > 1e-3


@pytest.mark.slow
def test_learned_model_cell(model_file):
    doc = {
        "seeds": 1,
        "reference": "two-class-2d",
        "axes": {"problem": [model_file], "w": [1.0, 3.0], "n": [300], "steps": [10]},
        "metrics": {"names": ["ed_cond", "ed_cfg", "confidence", "loglik"]},
    }
    rows = [evaluate(c) for c in load_spec(doc).cells()]
    for r in rows:
        assert all(np.isfinite(v) for v in r.values()) and r["ed_cfg"] > 0.0
    # an untrained-ish model at w = 3 is still pushed towards class 0 of the exact law
    assert rows[1]["confidence"] > rows[0]["confidence"]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(reference=3), r"spec: reference = 3: required a problem name"),
        (dict(reference="nope"), r"spec: reference = 'nope': required a problem name"),
        (dict(reference="missing.toml"), r"spec: reference = 'missing.toml': required a loadable"),
        (
            dict(reference="two-class-2d"),
            r"axes.problem\[0\] = 'gauss-1d': required a problem "
            r"of the reference's dimension 2, not 1",
        ),
        (dict(reference="gauss-1d", y=1, axes={"problem": ["tree"]}), r"dimension"),
    ],
)
def test_bad_reference_refused(change, message):
    with pytest.raises(ValueError, match=message):
        load_spec(_spec(**change))


def test_reference_must_have_the_class(tmp_path):
    one = tmp_path / "one.toml"
    one.write_text(
        '[problem]\nname = "one"\n\n[[classes]]\nweights = [1.0]\nmeans = [[0.0]]\ncovs = [1.0]\n'
    )
    with pytest.raises(
        ValueError, match=r"spec: y = 1: required a class of the reference \(0..0\)"
    ):
        load_spec(_spec(y=1, reference=str(one)))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(reference=None), r"required a 'reference' problem to score a learned model against"),
        (
            dict(reference="gauss-1d"),
            r"a model of the reference's dimension 1 and 2 classes "
            r"\(this one: dimension 2, 2 classes\)",
        ),
        (dict(axes={"rule": ["interval"]}), r"axes.rule\[0\] = 'interval': required 'cfg' only"),
        (
            dict(metrics={"names": ["ed_tilted"]}),
            r"metrics.names = \['ed_tilted'\]: required no "
            r"ed_tilted",
        ),
        (dict(backend="cpu"), r"backend = 'cpu': required 'auto' or 'numpy'"),
        (
            dict(axes={"schedule": ["cosine"]}),
            r"axes.schedule\[0\] = 'cosine': required the "
            r"schedule the model",
        ),
    ],
)
def test_learned_model_misuse_refused(model_file, change, message):
    doc = {
        "seeds": 1,
        "reference": "two-class-2d",
        "axes": {"problem": [model_file], "w": [1.0], "n": [100]},
        "metrics": {"names": ["ed_cond"]},
    }
    change = dict(change)  # the parametrize value is shared between runs: never mutate it
    doc["axes"].update(change.pop("axes", {}))
    doc.update(change)
    if doc.get("reference") is None:
        doc.pop("reference")
    with pytest.raises(ValueError, match=message):
        load_spec(doc)


def test_bad_model_file_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    doc = _spec(reference="two-class-2d", axes={"problem": [str(bad)]})
    with pytest.raises(ValueError, match=r"axes.problem\[0\] = .*bad.npz': required a loadable "):
        load_spec(doc)


def test_model_trained_on_another_law_refused(model_file):
    # the model was trained on two-class-2d: scored against its own law it loads; against the tree
    # (also d = 2 with 2 classes, another mixture) it is refused before any work
    doc = {
        "seeds": 1,
        "reference": "two-class-2d",
        "axes": {"problem": [model_file], "w": [1.0], "n": [100]},
        "metrics": {"names": ["ed_cond"]},
    }
    assert load_spec(doc).axes["problem"] == (model_file,)
    doc["reference"] = "tree"
    with pytest.raises(ValueError, match=r"required a model trained on the reference law \(this "):
        load_spec(doc)
