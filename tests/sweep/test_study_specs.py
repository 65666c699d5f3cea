"""The study sweep specs (noisy-labels-1d/-2d, underfit): their inputs are what make_inputs.py writes,
and a reduced grid of each runs and shows the study's effect (test_shipped_specs runs every shipped
spec at toy size as well)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pytest

from refcfg.sweep import load_spec, read_table, run

pytestmark = pytest.mark.slow

SWEEPS = Path(__file__).resolve().parents[2] / "verification" / "sweeps"


def _make_inputs():
    spec = importlib.util.spec_from_file_location("make_inputs", SWEEPS / "make_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_study_specs_are_shipped():
    assert {"noisy-labels-1d", "noisy-labels-2d", "underfit"} <= {
        p.stem for p in SWEEPS.glob("*.toml")
    }


def test_noisy_problem_files_are_the_generated_ones():
    for rel, text in _make_inputs().noisy_problems().items():
        assert (SWEEPS / rel).read_text() == text, rel


def test_smallest_underfit_model_retrains_bitwise():
    from refcfg.experiments.underfit import train_model
    from refcfg.learn.mlp import MLP

    models = _make_inputs().underfit_models()
    assert all((SWEEPS / rel).exists() for rel in models)
    rel, recipe = next(iter(models.items()))
    np.testing.assert_array_equal(train_model(*recipe).theta, MLP.load(SWEEPS / rel).theta)


def _reduced_run(name, tmp_path, **axes):
    doc = tomllib.loads((SWEEPS / f"{name}.toml").read_text())
    doc["seeds"] = 1
    doc["axes"].update(axes)
    doc["metrics"]["n_ref"] = doc["axes"]["n"][0]
    spec = load_spec(doc, base=SWEEPS)
    rep = run(spec, tmp_path, workers=0, progress=False)
    assert rep.failed == 0 and rep.computed == spec.n_cells
    return read_table(tmp_path).to_pylist()


@pytest.mark.parametrize("name", ["noisy-labels-1d", "noisy-labels-2d"])
def test_noisy_labels_reduced(name, tmp_path):
    # rho = 0 and rho = 0.4, w = 1 and 5, n = 3000: guidance brings the noisy model's samples closer
    # to the clean law (the study's finding, here a 10-fold drop in D^2), and at rho = 0, w = 1 the
    # samples are the clean law's (D^2 at sampling-noise level)
    probs = tomllib.loads((SWEEPS / f"{name}.toml").read_text())["axes"]["problem"]
    rows = _reduced_run(
        name, tmp_path, problem=[probs[0], probs[4]], w=[1.0, 5.0], n=[3000], steps=[100]
    )
    by = {(r["problem"], r["w"], r["sampler"]): r for r in rows}
    for sampler in ("heun", "euler_maruyama"):
        assert by[(probs[0], 1.0, sampler)]["ed_cond"] < 0.005
        noisy1, noisy5 = by[(probs[4], 1.0, sampler)], by[(probs[4], 5.0, sampler)]
        assert noisy5["ed_cond"] < 0.1 * noisy1["ed_cond"]
        assert noisy5["confidence"] > noisy1["confidence"] + 0.15
        # the noisy law's own tilted law is what w = 1 samples (ed_tilted small), not the clean one
        assert noisy1["ed_tilted"] < 0.01 < noisy1["ed_cond"]


def test_underfit_reduced(tmp_path):
    # the weakest and the strongest model (training seed 0), w = 1 and 3, n = 2000: the strong model
    # follows exact CFG closely at w = 1, much more closely than the weak one
    probs = tomllib.loads((SWEEPS / "underfit.toml").read_text())["axes"]["problem"]
    weak, strong = probs[0], probs[9]
    rows = _reduced_run("underfit", tmp_path, problem=[weak, strong], w=[1.0, 3.0], n=[2000])
    by = {(r["problem"], r["w"]): r for r in rows}
    assert by[(strong, 1.0)]["ed_cfg"] < 0.005
    assert by[(weak, 1.0)]["ed_cfg"] > 3 * by[(strong, 1.0)]["ed_cfg"]
    assert by[(strong, 1.0)]["ed_cond"] < by[(strong, 3.0)]["ed_cond"]
