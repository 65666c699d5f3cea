"""The figure set: every file is written and is a real picture (size, pixel variance, not blank),
figures are deterministic, bad input is rejected, and the figures' claims hold (ODE and SDE of
eq. 44 end in the same law; the tilted density is p(x|y)^w p(x)^(1-w))."""

from __future__ import annotations

import io

import numpy as np
import pytest

import refcfg
from refcfg.cli import main
from refcfg.experiments import figure_set
from refcfg.plotting import figures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    train = pytest.importorskip("refcfg.learn.train")
    res = train.train_cfg(
        "two-class-2d", steps=20, width=16, depth=2, batch=128, seed=0, progress=False
    )
    return res.model.save(tmp_path_factory.mktemp("model") / "tiny.npz")


@pytest.fixture(scope="module")
def figure_dir(tmp_path_factory, tiny_model):
    """`refcfg figures` as a user runs it (fast sizes): PNG + PDF, the learned model, the page."""
    out = tmp_path_factory.mktemp("figures")
    status = main(
        [
            "figures",
            "--out",
            str(out),
            "--fast",
            "--interactive",
            "--no-progress",
            "--model",
            str(tiny_model),
        ]
    )
    assert status == 0
    return out


def _pixels(png_path):
    import matplotlib.image as mpimg

    img = mpimg.imread(png_path)[..., :3]  # floats in [0, 1]
    return img


@pytest.mark.parametrize("name", figures.FIGURES)
def test_every_figure_is_written_and_not_blank(figure_dir, name):
    png, pdf = figure_dir / f"{name}.png", figure_dir / f"{name}.pdf"
    assert png.is_file() and pdf.is_file()
    assert png.stat().st_size > 15_000, png.stat().st_size
    assert pdf.stat().st_size > 8_000 and pdf.read_bytes()[:5] == b"%PDF-"
    img = _pixels(png)
    h, w = img.shape[:2]
    assert w >= 400 and h >= 250, (w, h)  # readable at README size
    from PIL import Image

    with Image.open(png) as im:  # PNGs at 200 dpi
        assert round(im.info["dpi"][0]) == 200, im.info.get("dpi")
    gray = img.mean(axis=2)
    assert gray.std() > 0.05, gray.std()  # not a flat canvas
    ink = np.mean(gray < 0.9)
    assert 0.02 < ink < 0.95, ink  # some ink, not all ink
    assert np.mean(np.ptp(img, axis=2) > 0.15) > 0.005  # colour is used (data, not just axes)


def test_interactive_page_written(figure_dir):
    page = figure_dir / "interactive.html"
    assert page.is_file() and page.stat().st_size > 10_000


def test_figures_are_deterministic():
    def png_bytes():
        data = figure_set.gaussian_cfg_variance(
            ws=np.linspace(0, 4, 9), mc_ws=(0.0, 2.0), mc_n=300, steps=20, seed=3
        )
        fig = figures.gaussian_cfg_variance(data)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()

    assert png_bytes() == png_bytes()


def test_bad_make_figures_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="formats must be"):
        figures.make_figures(tmp_path, formats=("jpg",))
    with pytest.raises(TypeError, match="problem must be"):
        figures.make_figures(tmp_path, problem=3)
    assert main(["figures", "--out", str(tmp_path), "--model", str(tmp_path / "nope.npz")]) == 2


def test_svg_is_written(tmp_path):
    """SVG, one of the three formats make_figures accepts, is written (deterministic metadata)."""
    written = figures.make_figures(
        tmp_path, "gauss-1d", formats=("svg",), fast=True, progress=False
    )
    svg = written["gaussian_variance"][0]
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_figures_only_draw_what_they_are_given():
    """A figure function takes the arrays of refcfg.experiments.figure_set and nothing else: here
    hand-made data (no path, no sampler) is drawn."""
    g = np.linspace(-1.0, 1.0, 5)
    data = {"ts": np.array([0.5]), "box": (-1.0, 1.0), "g": g, "y": 0}
    data["probs"] = [np.outer(np.linspace(0.0, 1.0, 5), np.ones(5))]
    fig = figures.classifier_heatmaps(data)
    assert len(fig.axes) == 2  # one panel and the colour bar


def test_ode_and_sde_end_in_the_same_law():
    """The claim of the ode_vs_sde figure (eq. 44): the SDE dX = [u + sigma^2/2 score] dt + sigma dW
    (sigma = 1) has the marginals of the ODE, so at w = 1 both end in p(x|y=0).

    Oracle: the mean and covariance of the class-0 mixture from its parameters
    (sum_k pi_k mu_k; sum_k pi_k (Sigma_k + mu_k mu_k^T) - m m^T). N = 6000, seed 11,
    Euler-Maruyama / Heun with 200 steps. Tolerances: mean 0.06 and covariance entries 0.08, about
    4 Monte Carlo standard errors plus the O(h) bias of Euler-Maruyama (~0.01 here)."""
    mix = refcfg.problem("two-class-2d")
    path = refcfg.GMMPath(mix)
    g = mix.class_gmm(0)
    m = g.weights @ g.means
    C = np.einsum("k,kij->ij", g.weights, g.covs + np.einsum("ki,kj->kij", g.means, g.means))
    C -= np.outer(m, m)
    f = path.cfg(0, 1.0)
    x_sde = refcfg.sample(f, 6000, sampler="euler_maruyama", sigma=1.0, steps=200, seed=11)
    x_ode = refcfg.sample(f, 6000, sampler="heun", steps=200, seed=11)
    for x in (x_sde, x_ode):
        assert np.abs(x.mean(0) - m).max() < 0.06, (x.mean(0), m)
        assert np.abs(np.cov(x.T) - C).max() < 0.08, (np.cov(x.T), C)
    # and the two samplers do differ path by path (the figure's other point)
    assert np.abs(x_sde - x_ode).mean() > 0.1


def test_skipped_figures_are_named_with_a_reason():
    p1 = refcfg.GMMPath(refcfg.problem("gauss-1d"))
    p2 = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    sk = figures.skipped_figures(p1)
    assert set(sk) == set(figures.FIGURES) - {"gaussian_variance"}
    assert sk["cfg_sweep"] == "needs a 2-D problem (d = 1)"
    assert set(figures.skipped_figures(p2)) == {"learned_errors"}


def test_model_of_another_problem_is_refused_before_any_figure(tiny_model, tmp_path):
    out = tmp_path / "figs"
    with pytest.raises(ValueError, match="model must be a CFG model of this problem"):
        figures.make_figures(out, "mit-symmetric", model=tiny_model, fast=True, progress=False)
    assert not any(out.glob("*.png"))
