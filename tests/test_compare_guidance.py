"""Tests of refcfg.compare_guidance and the ``refcfg compare-guidance`` command (--fast sizes).

Oracles: the tilted law of the 1-D problem by numerical quadrature (scipy) for the SIR sampler; the
exact-law facts that w = 1 makes every linear variant the conditional field (identical samples) and
that exact samples score like the reference; statistical claims use fixed seeds and stated margins.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, stats

from refcfg.cli import main
from refcfg.compare_guidance import FAST, compare_guidance, format_table, tilted_sample
from refcfg.problems import problem


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_tilted_sample_matches_quadrature_1d(w):
    # gauss-1d: p(x|0) = N(-1, 1), p(x|1) = N(1, 0.25), p(y) = 1/2. Tilted law p(x|0)^w p(x)^(1-w)/Z
    # by quadrature; SIR sample (n = 4000, 20 x oversampling, seed 0) vs its CDF by a KS test.
    mix = problem("gauss-1d")
    p0 = stats.norm(-1.0, 1.0).pdf
    p1 = stats.norm(1.0, 0.5).pdf

    def dens(x):
        return p0(x) ** w * (0.5 * p0(x) + 0.5 * p1(x)) ** (1 - w)

    # CDF by the cumulative trapezoid rule on a fine grid (h = 5.5e-4: error ~1e-7, far below
    # the KS statistic's resolution at n = 4000)
    grid = np.linspace(-12.0, 10.0, 40001)
    F = integrate.cumulative_trapezoid(dens(grid), grid, initial=0.0)
    Z = F[-1]
    assert abs(Z - integrate.quad(dens, -12, 10, limit=200)[0]) < 1e-6
    F = F / Z
    x, ess = tilted_sample(mix, 0, w, 4000, seed=0)
    ks = stats.kstest(x[:, 0], lambda a: np.interp(a, grid, F))
    assert ks.pvalue > 1e-3, ks
    if w != 1.0:   # the test has power: the untilted sample is rejected against the tilted CDF
        x1, _ = tilted_sample(mix, 0, 1.0, 4000, seed=0)
        assert stats.kstest(x1[:, 0], lambda a: np.interp(a, grid, F)).pvalue < 1e-6
    assert ess > 0.3 * 4000 * 20          # weights p(y|x)^(w-1) <= 1: a well-behaved SIR
    mean = integrate.trapezoid(grid * dens(grid), grid) / Z
    assert abs(x[:, 0].mean() - mean) < 4 * x[:, 0].std() / np.sqrt(4000) + 0.02


@pytest.fixture(scope="module")
def fast_result():
    return compare_guidance("two-class-2d", **FAST, seed=0)


def test_compare_structure_and_w1_facts(fast_result):
    r = fast_result
    rows = {(row.variant, row.w): row for row in r["rows"]}
    assert set(r["ws"]) == set(FAST["ws"])
    # at w = 1 every variant except CFG-Zero* (zero-init) integrates the conditional field from the
    # same noise: identical samples, identical metrics
    base = r["samples"][("cfg", 1.0)]
    for v in ("interval", "rescale", "apg", "schedule", "autoguidance"):
        np.testing.assert_allclose(r["samples"][(v, 1.0)], base, rtol=1e-9, atol=1e-9, err_msg=v)
    assert np.abs(r["samples"][("cfg-zero-star", 1.0)] - base).max() > 1e-3
    # the unguided sampler is close to p(x|y): its energy distance is within 3x the noise floor of
    # an exact sample of the same size (+0.01 absolute for 20 Euler steps at n = 200)
    floor = rows[("exact p(x|y)", 1.0)].ed_cond
    assert rows[("cfg", 1.0)].ed_cond < 3 * floor + 0.01
    # guidance raises class confidence for plain CFG (w = 3 vs 1)
    assert rows[("cfg", 3.0)].confidence > rows[("cfg", 1.0)].confidence
    for row in r["rows"]:
        assert 0 <= row.confidence <= 1 and 0 <= row.mode_tv <= 1
        assert abs(sum(row.mode_mass) - row.accuracy) < 0.2 or row.variant.startswith("exact")


def test_format_table(fast_result):
    text = format_table(fast_result)
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert len(lines) == 1 + len(fast_result["rows"])
    assert "cfg-zero-star" in text and "tilted (SIR)" in text


def test_cli_writes_outputs(tmp_path, capsys):
    out = tmp_path / "cg"
    status = main(["compare-guidance", "--problem", "two-class-2d", "--fast", "--w", "2",
                   "--variants", "cfg", "apg", "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "| apg | 2 |" in printed
    data = json.loads((out / "results.json").read_text())
    assert {row["variant"] for row in data["rows"]} == {"exact p(x|y)", "tilted (SIR)", "cfg", "apg"}
    assert (out / "figure.png").stat().st_size > 1000
    assert (out / "table.md").read_text().startswith("problem `two-class-2d`")


def test_cli_errors(capsys):
    assert main(["compare-guidance", "--problem", "no-such", "--fast"]) == 2
    assert "unknown problem" in capsys.readouterr().err
    assert main(["compare-guidance", "--fast", "--variants", "magic"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["compare-guidance", "--fast", "--y", "7"]) == 2
