"""The digits study: memorisation of the exact flow on point masses, fitted mixtures do not memorise,
and the study runs and draws its figure."""

import numpy as np
import pytest

import refcfg
import refcfg.problems
from refcfg.datasets import load_digits
from refcfg.experiments import digits
from refcfg.plotting.studies import write_figure
from refcfg.problems import digits_gmm_fit

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _sklearn():
    # imported by the first test, not at collection (~1 s that the fast tier need not pay)
    pytest.importorskip("sklearn")


CLASSES = (1, 4, 7)
PER = 40  # N = 120 samples


def _class_distances(x, ys, X, lab):
    """Distance of each sample to the nearest training image of its own class."""
    out = np.empty(x.shape[0])
    for c in np.unique(ys):
        Xc = X[lab == c]
        rows = np.nonzero(ys == c)[0]
        d2 = ((x[rows, None, :] - Xc[None]) ** 2).sum(-1)
        out[rows] = np.sqrt(d2.min(1))
    return out


def test_exact_flow_memorises_training_images():
    """Empirical digits (1797 point masses), w = 1, 60 Heun steps to t_end then the exact denoising
    step: >= 99% of the samples lie within 1e-3 x the data scale (RMS image norm) of a training image
    of their class. The fitted problem's samples instead lie at distances of the order of the fitted
    component spread sqrt(tr Sigma) (measured: ratio ~0.9), none within 1e-2."""
    X, lab = load_digits()
    scale = np.sqrt((X * X).sum(1).mean())
    ys = np.repeat(np.array(CLASSES), PER)
    x_init = np.random.default_rng(5).standard_normal((ys.size, 64))
    path = refcfg.GMMPath(refcfg.problem("digits"), "linear")
    x, t_end = digits.sample_exact_cfg(path, ys, 1.0, x_init, steps=60)
    assert t_end < 1.0
    rel = _class_distances(x, ys, X, lab) / scale
    assert np.mean(rel <= 1e-3) >= 0.99, np.sort(rel)[-5:]

    fitted = digits_gmm_fit()
    spread = np.sqrt(fitted.mixture.marginal.eigvals.sum(1)).mean() / scale
    path = refcfg.GMMPath(fitted.mixture, "linear")
    xf, _ = digits.sample_exact_cfg(path, ys, 1.0, x_init, steps=60)
    dist, _ = digits.nearest_images(xf, X, lab)
    ratio = np.median(dist / scale) / spread
    assert 0.3 <= ratio <= 3.0, ratio
    assert np.min(dist / scale) > 1e-2


def test_point_mass_sampling_refuses_t1():
    """Point masses: the velocity diverges at t = 1, so a grid that reaches t = 1 is refused with a
    ValueError on the NumPy backend (instead of returning inf/NaN)."""
    path = refcfg.GMMPath(refcfg.problems.from_points(np.eye(3), np.array([0, 1, 1])), "linear")
    with pytest.raises(ValueError, match="not finite where beta_t = 0"):
        refcfg.sample(path.cfg(1, 2.0), 4, steps=3, seed=0, backend="numpy")


def test_digits_study_fast(tmp_path):
    res = digits.run(fast=True)
    assert {r["problem"] for r in res.table} == {"digits", "digits-gmm"}
    assert {r["w"] for r in res.table} == set(digits.WEIGHTS)
    emp = [r for r in res.table if r["problem"] == "digits"]
    assert all(r["memorised (< 1e-3)"] == 1.0 for r in emp if r["w"] == 1.0)
    assert all(r["memorised (< 1e-3)"] == 0.0 for r in res.table if r["problem"] == "digits-gmm")
    out = write_figure(res, tmp_path / "digits.png")
    assert (tmp_path / "digits.png").stat().st_size > 10_000, out


def test_cpu_kernels_agree_with_numpy_on_point_masses():
    """Below t = 1 the CPU kernels compute the point-mass fields (1 / (alpha^2 lam + beta^2) with
    lam = 0): the study's sampler gives the NumPy reference's samples to 1e-10 relative."""
    path = refcfg.GMMPath(refcfg.problem("digits"), "linear")
    ys = np.array([0, 3, 5, 8, 9, 2])
    ws = np.array([0.0, 1.0, 2.0, 4.0, 8.0, 1.5])
    x_init = np.random.default_rng(2).standard_normal((ys.size, 64))
    a, _ = digits.sample_exact_cfg(path, ys, ws, x_init, steps=8, backend="cpu")
    b, _ = digits.sample_exact_cfg(path, ys, ws, x_init, steps=8, backend="numpy")
    assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(b))


def test_figures_command_draws_the_digit_grids(tmp_path, capsys):
    """`refcfg figures --problem digits` writes the sample grids (one command)."""
    from refcfg.cli import main

    assert (
        main(
            [
                "figures",
                "--problem",
                "digits",
                "--fast",
                "--out",
                str(tmp_path),
                "--formats",
                "png",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (tmp_path / "digits_cfg_samples.png").stat().st_size > 10_000
    assert "digits_cfg_samples" in capsys.readouterr().out
