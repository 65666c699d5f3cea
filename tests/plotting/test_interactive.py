"""The interactive page: its frames are the exact fields, it needs no network, and it renders in a
headless Chromium (skipped when no browser is installed)."""

from __future__ import annotations

import base64
import json
import re
import subprocess

import numpy as np
import pytest

import refcfg
from refcfg.experiments import figure_set
from refcfg.plotting import interactive

from _browser import NEEDS_BROWSER, REQUIRED, chromium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small():
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    frames = figure_set.cfg_frames(
        path, 0, ws=(0.0, 1.0, 3.0), n_t=5, n=40, grid=12, arrows=6, steps=8, seed=5
    )
    data = interactive.page_data(frames)
    return path, data


def test_frames_have_the_stated_shape(small):
    _, data = small
    assert len(data["frames"]) == 3 and all(len(row) == 5 for row in data["frames"])
    assert data["ts"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    f = data["frames"][1][2]
    assert len(base64.b64decode(f["heat"])) == 12 * 12
    assert len(f["vel"]) == 2 * 6 * 6 and len(f["pts"]) == 2 * 40


def test_frames_are_the_exact_fields(small):
    """Oracles independent of the page's own evaluation: the arrows equal classifier guidance
    u(x) + w a_t grad log p_t(y|x) (eq. 62, a different code path from CFG eq. 65) to the JSON
    rounding (5e-5); the shading at t = 1, w = 1 is p(x|y=0) of the class mixture (refcfg.mixture)
    scaled to its maximum, to the 8-bit quantisation (1/255); the particles at t = 0 are the seeded
    N(0, I) draws."""
    path, data = small
    apts = np.reshape(data["apts"], (-1, 2))
    for i, w in enumerate(data["ws"]):
        for k, t in enumerate(data["ts"]):
            vel = np.reshape(data["frames"][i][k]["vel"], (-1, 2))
            want = path.classifier_guided_velocity(apts, t, 0, w)
            assert np.abs(vel - want).max() <= 5.001e-5
    lo, hi = data["box"]
    g = np.linspace(lo, hi, data["grid"])
    X, Y = np.meshgrid(g, g)
    logp = path.mixture.class_gmm(0).log_prob(np.column_stack([X.ravel(), Y.ravel()]))
    want = np.exp(logp - logp.max())
    heat = np.frombuffer(base64.b64decode(data["frames"][1][-1]["heat"]), dtype=np.uint8) / 255.0
    assert np.abs(heat - want).max() <= 0.5 / 255 + 1e-12
    x0 = np.random.default_rng(5).standard_normal((40, 2))
    assert np.abs(np.reshape(data["frames"][2][0]["pts"], (-1, 2)) - x0).max() <= 5e-4


def test_bad_arguments_name_the_argument():
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    with pytest.raises(ValueError, match="steps must be a multiple of n_t - 1"):
        figure_set.cfg_frames(path, 0, n_t=5, steps=10)
    with pytest.raises(ValueError, match="n_t must be an int >= 2"):
        figure_set.cfg_frames(path, 0, n_t=1)
    with pytest.raises(ValueError, match="y must be in 0..1"):
        figure_set.cfg_frames(path, 4)
    with pytest.raises(ValueError, match="path must be 2-D"):
        figure_set.cfg_frames(refcfg.GMMPath(refcfg.problem("gauss-1d")), 0)


@pytest.fixture(scope="module")
def page(small, tmp_path_factory):
    _, data = small
    out = tmp_path_factory.mktemp("page") / "page.html"
    out.write_text(interactive.render_page(data, "two-class-2d"), encoding="utf-8")
    return out


def test_page_is_self_contained(page, small):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched
    assert "<link" not in text and "import(" not in text and "fetch(" not in text
    blob = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    assert json.loads(blob.group(1).replace("<\\/", "</")) == json.loads(json.dumps(small[1]))
    assert 'type="range"' in text


@pytest.mark.skipif(not REQUIRED, reason="REFCFG_REQUIRE_BROWSER is not set (CI sets it)")
def test_browser_present_where_required():
    assert chromium() is not None, "REFCFG_REQUIRE_BROWSER=1 but no Chromium on the PATH"


def _run_chromium(url, budget_ms):
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        url,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    # the page's own script raised nothing (Chromium logs uncaught errors as console messages)
    assert not re.search(r"Uncaught|CONSOLE.*Error", res.stderr), res.stderr[-2000:]
    return res.stdout


@NEEDS_BROWSER
def test_page_renders_in_headless_chromium(page):
    """Chromium runs the page's script (--dump-dom after load): the status line reports every
    frame and one draw, so JSON parsing, decoding and canvas drawing ran without an exception."""
    dom = _run_chromium(page.as_uri(), 5000)
    m = re.search(r'id="status"[^>]*>([^<]*)<', dom)
    assert m, dom[-2000:]
    assert m.group(1).startswith("rendered 15 frames available; draws: 1"), m.group(1)
    assert re.search(r'id="play"[^>]*>play<', dom)


@NEEDS_BROWSER
def test_play_button_reads_pause_while_playing(page):
    """``#play`` starts the animation on load (5 frames, one every 150 ms of virtual time): after
    300 ms it is playing and the button reads "pause"; after 5 s it has reached t = 1 and stopped,
    the button reads "play" again and the frames were drawn once each (1 + 5 draws)."""
    dom = _run_chromium(page.as_uri() + "#play", 300)
    assert re.search(r'id="play"[^>]*>pause<', dom), re.findall(r"<button[^>]*>[^<]*<", dom)
    dom = _run_chromium(page.as_uri() + "#play", 5000)
    assert re.search(r'id="play"[^>]*>play<', dom), re.findall(r"<button[^>]*>[^<]*<", dom)
    assert re.search(r'id="tv"[^>]*>1.00<', dom)
    m = re.search(r'id="status"[^>]*>([^<]*)<', dom)
    assert m.group(1).endswith("draws: 6"), m.group(1)
