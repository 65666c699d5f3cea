"""Tests of refcfg.experiments.compare_guidance, its table and figure (refcfg.plotting.comparison)
and the ``refcfg compare-guidance`` command (--fast sizes).

Oracles (the tilted-law sampler is tested in tests/experiments/test_tilted.py): the
exact-law facts that w = 1 makes every linear variant the conditional field (identical samples) and
that exact samples score like the reference; statistical claims use fixed seeds and stated margins.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from refcfg.cli import main
from refcfg.experiments import EXPERIMENTS, run_experiment
from refcfg.experiments.compare_guidance import FAST, VARIANTS, compare_guidance
from refcfg.guidance import RULES, make
from refcfg.plotting.comparison import comparison_figure, format_table, plot_comparison, to_json
from refcfg.sampling.api import time_grid
from refcfg.sampling.steppers import TABLEAUS

pytestmark = pytest.mark.slow


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
    assert "(tilted law: SIR from p(x|y) with 20 x n_ref proposals" in text
    # one row written out by hand from its Row (fixed decimals: 3 for the scores, 4 for ED)
    row = next(r for r in fast_result["rows"] if r.variant == "apg" and r.w == 3.0)
    want = (
        f"| apg | 3 | {row.confidence:.3f} | {row.accuracy:.3f} | {row.loglik:.3f} | "
        f"{row.mode_tv:.3f} | {row.ed_cond:.4f} | {row.ed_tilted:.4f} | "
        + " ".join(f"{v:.2f}" for v in row.mode_mass)
        + " |"
    )
    assert want in lines
    data = json.loads(to_json(fast_result))
    assert data["ess"].keys() == {"1", "3"} and len(data["rows"]) == len(fast_result["rows"])


def test_figure_has_labelled_axes_and_one_legend(fast_result, tmp_path):
    fig = comparison_figure(fast_result)
    axes = [ax for ax in fig.get_axes() if ax.axison]
    assert all(ax.get_xlabel() for ax in axes)
    assert all(ax.get_ylabel() for ax in axes[:4])
    assert len(fig.subfigs[0].legends) == 1
    assert {t.get_text() for t in fig.subfigs[0].legends[0].get_texts()} >= {"cfg", "tilted (SIR)"}
    png = plot_comparison(fast_result, tmp_path / "f.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg

    assert mpimg.imread(png).shape[1] >= 2000  # 200 dpi on a ~10-inch-wide figure


def test_weights_below_one_and_bad_weights():
    r = compare_guidance(
        "gauss-1d", ws=(0.5, 2.0), n=50, steps=5, n_ref=60, variants=("cfg",), seed=1
    )
    assert "SIR from p(x) for w < 1 and from p(x|y) for w >= 1" in format_table(r)
    assert all(e > 0.3 * 20 * 60 for e in r["ess"].values())  # bounded weights
    for ws in ((1.0, -0.5), (float("nan"),), ()):
        with pytest.raises(ValueError, match="ws must"):
            compare_guidance("gauss-1d", ws=ws, n=10, steps=2, variants=("cfg",))


def test_registered_as_a_study():
    assert "compare-guidance" in EXPERIMENTS
    res = run_experiment("compare-guidance", fast=True, seed=0)
    assert res.name == "compare-guidance" and len(res.table) == 2 * (2 + len(VARIANTS))
    ref = compare_guidance("two-class-2d", **FAST, seed=0)
    assert [r["ed_tilted"] for r in res.table] == [r.ed_tilted for r in ref["rows"]]
    assert "| cfg-zero-star |" in res.format_table()


def test_cli_writes_outputs(tmp_path, capsys):
    out = tmp_path / "cg"
    status = main(
        [
            "compare-guidance",
            "--problem",
            "two-class-2d",
            "--fast",
            "--w",
            "2",
            "--variants",
            "cfg",
            "apg",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "| apg | 2 |" in printed
    data = json.loads((out / "results.json").read_text())
    assert {row["variant"] for row in data["rows"]} == {
        "exact p(x|y)",
        "tilted (SIR)",
        "cfg",
        "apg",
    }
    assert (out / "figure.png").stat().st_size > 1000
    assert (out / "table.md").read_text().startswith("problem `two-class-2d`")


def test_cli_errors(capsys):
    assert main(["compare-guidance", "--problem", "no-such", "--fast"]) == 2
    assert "unknown problem" in capsys.readouterr().err
    assert main(["compare-guidance", "--fast", "--variants", "magic"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["compare-guidance", "--fast", "--y", "7"]) == 2


def test_rules_that_cannot_run_are_skipped_or_refused_before_work():
    # guidance rescale needs d >= 2: skipped (and said) by default on gauss-1d, refused when asked
    r = compare_guidance("gauss-1d", ws=(2.0,), n=20, steps=2, n_ref=20, seed=0)
    assert "rescale" in r["skipped"] and "d >= 2" in r["skipped"]["rescale"]
    assert "rescale" not in r["variants"] and "cfg" in r["variants"]
    assert "skipped rescale: guidance rescale needs d >= 2" in format_table(r)
    calls = []
    with pytest.raises(ValueError, match="variant 'rescale' cannot run on this problem"):
        compare_guidance(
            "gauss-1d", ws=(2.0,), n=20, steps=2, variants=("cfg", "rescale"), progress=calls.append
        )
    assert calls == []  # nothing was sampled


def test_a_path_keeps_its_schedule_and_name_labels_the_table():
    from refcfg.paths import GMMPath
    from refcfg.problems import problem

    path = GMMPath(problem("two-class-2d"), "cosine")
    r = compare_guidance(
        path, ws=(1.0,), n=10, steps=2, n_ref=10, variants=("cfg",), name="my-problem"
    )
    assert r["schedule"].startswith("cosine") and r["problem"] == "my-problem"
    assert format_table(r).startswith("problem `my-problem`")
    r = compare_guidance("two-class-2d", ws=(1.0,), n=10, steps=2, n_ref=10, variants=("cfg",))
    assert r["schedule"] == "linear" and r["problem"] == "two-class-2d"


def test_the_study_compares_its_named_rules_not_the_whole_registry(fast_result):
    # the published table's rows come from VARIANTS (a rule registered later does not change it);
    # every name there is a registered rule, and any registered rule can be asked for by name
    assert set(VARIANTS) <= set(RULES) and len(set(VARIANTS)) == len(VARIANTS)
    assert fast_result["variants"] == list(VARIANTS)
    rows = [r.variant for r in fast_result["rows"] if r.w == FAST["ws"][0]]
    assert rows == ["exact p(x|y)", "tilted (SIR)", *VARIANTS]


@pytest.mark.parametrize("sampler", list(TABLEAUS))
def test_every_ode_sampler_runs_the_study(sampler):
    # the samples are those of refcfg.sample with this sampler from the study's shared noise (the
    # first draw of default_rng(seed)); bit for bit
    n, steps, seed = 30, 3, 4
    r = compare_guidance(
        "two-class-2d",
        ws=(2.0,),
        n=n,
        steps=steps,
        n_ref=30,
        sampler=sampler,
        variants=("cfg", "apg"),
        seed=seed,
    )
    assert r["sampler"] == sampler and f"{sampler} {steps} steps" in format_table(r)
    import refcfg

    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    x_init = np.random.default_rng(seed).standard_normal((n, 2))
    for v in ("cfg", "apg"):
        grid = time_grid(steps)
        want = refcfg.sample(
            make(v, path, 0, 2.0, t_grid=grid), n, sampler=sampler, t_grid=grid, x_init=x_init
        )
        assert np.array_equal(r["samples"][(v, 2.0)], want), v


def test_non_ode_samplers_are_refused_before_work(capsys):
    with pytest.raises(ValueError, match="sampler must be one of"):
        compare_guidance("gauss-1d", ws=(2.0,), n=10, steps=2, sampler="euler_maruyama")
    assert main(["compare-guidance", "--fast", "--sampler", "euler_maruyama"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("refcfg: error: argument --sampler")
    assert all(f"'{name}'" in err for name in TABLEAUS), err
