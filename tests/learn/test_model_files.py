"""Model files (MLP.save / MLP.load) that are forged or damaged: the size the configuration declares
is checked against the memory budget before anything is allocated, theta's header before its data;
theta must be a finite real vector. Each error names the file and the field; ``refcfg figures
--model`` turns it into one line with exit status 2 (it used to draw an empty plot for a NaN)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from refcfg.cli import main
from refcfg.learn.mlp import MLP, MLPConfig


@pytest.fixture()
def saved(tmp_path):
    m = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=8, depth=1, seed=0))
    path = m.save(tmp_path / "good.npz")
    return m, dict(np.load(path))


def _variant(tmp_path, fields, name, **changes):
    fields = dict(fields, **changes)
    path = tmp_path / name
    np.savez(path, **fields)
    return path


def test_round_trip(saved, tmp_path):
    m, fields = saved
    np.testing.assert_array_equal(MLP.load(_variant(tmp_path, fields, "same.npz")).theta, m.theta)


def test_declared_size_refused_before_allocation(saved, tmp_path, monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1G")
    _, fields = saved
    cfg = dict(json.loads(str(fields["config"])), width=10**6, depth=100)
    p = _variant(tmp_path, fields, "huge.npz", config=np.array(json.dumps(cfg)))
    with pytest.raises(
        ValueError,
        match=r"huge\.npz': field 'config': an MLP of width 1000000 and "
        r"depth 100 \(99000120000002 parameters\) needs an "
        r"estimated .* lower width or depth",
    ):
        MLP.load(p)


@pytest.mark.parametrize(
    "name, change, message",
    [
        (
            "nan.npz",
            lambda th: np.where(np.arange(th.size) == 3, np.nan, th),
            r"field 'theta' has 1 NaN or infinite value\(s\)",
        ),
        ("complex.npz", lambda th: th + 1j, r"field 'theta' has dtype complex128"),
        ("strings.npz", lambda th: th.astype(str), r"field 'theta' has dtype <U"),
        (
            "short.npz",
            lambda th: th[:5],
            r"field 'theta' has shape \(5,\), the configuration requires",
        ),
    ],
)
def test_bad_theta_named(saved, tmp_path, name, change, message):
    _, fields = saved
    p = _variant(tmp_path, fields, name, theta=change(fields["theta"]))
    with pytest.raises(ValueError, match=name.replace(".", r"\.") + "': " + message):
        MLP.load(p)


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"d_in": 2, "d_out": 2, "colour": 1}', r"field 'config': .*unexpected keyword"),
        ("[1, 2]", r"field 'config' must be a JSON object"),
        ('{"d_in": 2.5, "d_out": 2}', r"field 'config': d_in must be an int"),
        ("[" * 100000 + "]" * 100000, r"field 'config' is not valid JSON"),
    ],
)
def test_bad_config_named(saved, tmp_path, config, message):
    _, fields = saved
    with pytest.raises(ValueError, match=message):
        MLP.load(_variant(tmp_path, fields, "cfg.npz", config=np.array(config)))


def test_figures_refuses_a_nan_model_before_drawing(saved, tmp_path, capsys):
    _, fields = saved
    theta = fields["theta"].copy()
    theta[0] = np.nan
    p = _variant(tmp_path, fields, "nan.npz", theta=theta)
    out = tmp_path / "figs"
    assert main(["figures", "--model", str(p), "--out", str(out), "--fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refcfg: error: --model: model file") and "NaN" in err
    assert err.count("\n") == 1 and not out.exists()
