"""Commands whose arguments ask for more memory than the machine has are refused before any work
and before their output directory exists, with the estimate in one line (exit status 2); and the
estimates bound the memory actually used (tracemalloc peaks of the same work at a moderate size)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from refcfg.cli import main


@pytest.fixture(autouse=True)
def one_gib(monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1G")


@pytest.mark.parametrize(
    "argv, driver",
    [
        (["demo", "--n", "100000000"], "lower --n"),
        (["compare-guidance", "--n", "100000000"], "lower --n or --n-ref"),
        (["compare-guidance", "--n", "10", "--n-ref", "1000000000"], "lower --n or --n-ref"),
        (["vectors", "--n", "100000000"], "lower --n"),
        (["figures", "--model", "{model}"], "lower width or depth"),
    ],
)
def test_refused_before_the_output_exists(tmp_path, capsys, argv, driver):
    out = tmp_path / "out"
    if "{model}" in argv:
        import json

        from refcfg.learn.mlp import MLP, MLPConfig

        m = MLP(MLPConfig(d_in=2, d_out=2, n_classes=2, width=8, depth=1))
        fields = dict(np.load(m.save(tmp_path / "m.npz")))
        cfg = dict(json.loads(str(fields["config"])), width=100000, depth=50)
        np.savez(tmp_path / "big.npz", **dict(fields, config=np.array(json.dumps(cfg))))
        argv = [a.replace("{model}", str(tmp_path / "big.npz")) for a in argv]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refcfg: error: ") and err.count("\n") == 1, err
    assert "needs an estimated" in err and "of 1 GiB available" in err and driver in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, driver",
    [
        (["--batch", "100000000"], "lower --batch, --width or --depth"),
        (["--width", "1000000", "--depth", "100"], "lower --batch, --width or --depth"),
        (["--n-field", "1000000000"], "lower --n-field or --n-samples"),
    ],
)
def test_train_refused_before_training(tmp_path, capsys, argv, driver):
    out = tmp_path / "model.npz"
    assert main(["train", *argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "needs an estimated" in err and driver in err and err.count("\n") == 1
    assert not out.exists()


def test_check_refused_before_import(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "never.py").write_text("raise SystemExit('imported')\n")
    assert main(["check", "never:f", "--n", "100000000"]) == 2
    err = capsys.readouterr().err
    assert "checking at 100000000 points per time" in err and "lower --n" in err


def _peak(f):
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "name, n",
    [
        ("gauss-1d", 50000),
        pytest.param("two-class-2d", 50000, marks=pytest.mark.slow),
        pytest.param("highdim", 4000, marks=pytest.mark.slow),
        pytest.param("tree", 4000, marks=pytest.mark.slow),  # ~7 s
    ],
)
def test_field_estimate_bounds_the_measured_peak(name, n):
    from refcfg.problems import field_bytes, resolve

    path = resolve(name).path
    x = np.random.default_rng(0).standard_normal((n, path.d))
    y = np.zeros(n, dtype=np.int64)
    path.velocity(x[:4], 0.5, y[:4])  # compile / warm caches outside the count
    peak = max(_peak(lambda: getattr(path, m)(x, 0.5, y)) for m in ("velocity", "score", "x0"))
    est = field_bytes(n, path.mixture.marginal.K, path.d)
    assert peak <= est <= 6 * peak, (peak, est)


def test_training_estimate_bounds_a_training_step():
    from refcfg.learn.mlp import MLPConfig
    from refcfg.learn.train import train_cfg, training_bytes

    batch = 20000
    peak = _peak(
        lambda: train_cfg(
            "two-class-2d", steps=2, batch=batch, width=64, depth=3, progress=False, blas_threads=1
        )
    )
    est = training_bytes(MLPConfig(d_in=2, d_out=2, n_classes=2, width=64, depth=3), batch)
    assert peak <= est <= 6 * peak, (peak, est)
