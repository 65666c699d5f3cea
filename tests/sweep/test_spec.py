"""Sweep specs: validation before any work, cell keys and seeds, and the work of one cell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import refcfg
from refcfg import metrics
from refcfg.sweep import evaluate, load_spec

from _specs import SMALL, small

# -- validation: the key, the value and what was required --------------------------------------


@pytest.mark.parametrize(
    "spec, words",
    [
        (small(bogus=1), ["'bogus'", "allowed"]),
        (small(axes__speed=[1]), ["'axes.speed'", "allowed"]),
        (small(metrics__colour="red"), ["'metrics.colour'"]),
        (small(axes__w=[1.0, "big"]), ["axes.w[1]", "'big'", "finite real number"]),
        (small(axes__w=[1.0, float("nan")]), ["axes.w[1]", "finite real number"]),
        (small(axes__sampler=["euler", "rk5"]), ["axes.sampler[1]", "'rk5'", "one of", "heun"]),
        (small(axes__steps=[0]), ["axes.steps[0]", "0", "integer >= 1"]),
        (small(axes__steps=[2.5]), ["axes.steps[0]", "2.5", "integer >= 1"]),
        (small(axes__n=[1]), ["axes.n[0]", "integer >= 2"]),
        (
            small(axes__problem=["gauss-1d", "moons"]),
            ["axes.problem[1]", "'moons'", "two-class-2d"],
        ),
        (small(axes__problem=[]), ["axes.problem", "non-empty"]),
        (small(axes__rule=["cfg", "magic"]), ["axes.rule[1]", "'magic'", "one of"]),
        (
            small(axes__rule=[{"name": "interval", "lo": 0.2}]),
            ["axes.rule[0]", "interval(lo=0.2)", "'lo'"],
        ),
        (small(axes__w=[1.0, 1.0]), ["axes.w", "distinct"]),
        (small(axes__w=[1, 1.0]), ["axes.w", "distinct"]),
        (small(seeds=0), ["seeds", "0", "integer >= 1"]),
        (small(seed=-1), ["seed", "-1", "integer >= 0"]),
        (small(y=5), ["y", "5", "class of problem"]),
        (small(backend="gpu"), ["backend", "'gpu'", "one of"]),
        (small(metrics__names=["ed_cond", "fid"]), ["metrics.names[1]", "'fid'", "one of"]),
        (small(metrics__names=["tv"]), ["metrics.names", "'tv'", "two-class-2d", "1-D"]),
        (small(axes__w=[-1.0, 1.0]), ["axes.w[0]", "-1.0", "w >= 0", "ed_tilted"]),
        (small(metrics__tv_range=[1.0, 0.0]), ["metrics.tv_range", "lo < hi"]),
        ({"axes": {"w": [1.0]}}, ["axes.problem", "missing"]),
        ({"name": "x"}, ["[axes]", "missing"]),
    ],
)
def test_bad_spec_is_rejected_naming_the_key(spec, words):
    with pytest.raises(ValueError) as err:
        load_spec(spec)
    msg = str(err.value)
    for w in words:
        assert w in msg, (w, msg)


def _rules_with(attr: str, has: bool) -> list[str]:
    path = refcfg.GMMPath(refcfg.problem("gauss-1d"))
    return [
        r
        for r in refcfg.guidance.RULES
        if callable(getattr(refcfg.guidance.make(r, path, 0, 2.0), attr, None)) == has
    ]


def test_sde_and_flow_likelihood_need_a_score_and_a_divergence():
    # a rule whose field has no score cannot run the SDE, one without a divergence has no flow
    # likelihood: refused at validation, naming the rule
    no_score, no_div = _rules_with("score", False), _rules_with("divergence", False)
    if not no_score and not no_div:
        pytest.skip("every rule has a score and a divergence")
    if no_score:
        with pytest.raises(ValueError, match=r"axes.rule\[0\] = .*score.*euler_maruyama"):
            load_spec(small(axes__rule=[no_score[0]], axes__sampler=["euler_maruyama"]))
    if no_div:
        with pytest.raises(ValueError, match=r"axes.rule\[0\] = .*divergence.*flow_loglik"):
            load_spec(small(axes__rule=[no_div[0]], metrics__names=["flow_loglik"]))


def test_toml_file_and_relative_problem_path(tmp_path):
    (tmp_path / "p.toml").write_text(
        "[[classes]]\nweights = [1.0]\nmeans = [[0.0]]\ncovs = [1.0]\n"
        "[[classes]]\nweights = [1.0]\nmeans = [[2.0]]\ncovs = [0.5]\n"
    )
    (tmp_path / "s.toml").write_text(
        'name = "f"\n[axes]\nproblem = ["p.toml"]\nw = [2.0]\n'
        'steps = [4]\nn = [50]\n[metrics]\nnames = ["tv"]\n'
    )
    spec = load_spec(tmp_path / "s.toml")
    assert spec.axes["problem"] == ("p.toml",)
    assert spec.cells()[0].problem_file == str((tmp_path / "p.toml").resolve())
    got = evaluate(spec.cells()[0])  # the problem file loads in the cell
    assert set(got) == {"tv_tilted", "tv_cond", "tv_floor"}
    assert all(0.0 < v <= 1.0 for v in got.values())
    with pytest.raises(ValueError, match=r"axes.problem\[0\] = 'p.toml'"):
        load_spec(spec.source, base=tmp_path / "elsewhere")
    assert spec.n_cells == 1 and spec.settings.columns() == ("tv_tilted", "tv_cond", "tv_floor")
    (tmp_path / "bad.toml").write_text("[axes\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    with pytest.raises(ValueError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


# -- cells, keys and seeds -----------------------------------------------------------------------


def test_cells_keys_and_seeds():
    spec = load_spec(SMALL)
    cells = spec.cells()
    assert len(cells) == spec.n_cells == 2 * 2 * 2 * 2 * 2
    assert len({c.id for c in cells}) == len(cells)
    assert [c.index for c in cells] == list(range(len(cells)))
    assert json.loads(cells[0].key)[0] == ["problem", "gauss-1d"]
    # the seed depends on (problem, schedule, n, seed index) only: common random numbers
    roots = {}
    for c in cells:
        roots.setdefault((c.problem, c.schedule, c.n, c.seed), set()).add(
            tuple(c.seed_sequence().generate_state(4))
        )
    assert all(len(v) == 1 for v in roots.values())
    assert len({next(iter(v)) for v in roots.values()}) == len(roots)
    # ids and seeds follow the values, not the position in the grid
    rev = load_spec(small(axes__w=[3.0, 1.0], axes__problem=["two-class-2d", "gauss-1d"]))
    by_key = {c.key: c for c in rev.cells()}
    assert sum(by_key[c.key].index != c.index for c in cells) > 0  # really reordered
    for c in cells:
        other = by_key[c.key]
        assert other.id == c.id
        assert np.array_equal(
            other.seed_sequence().generate_state(4), c.seed_sequence().generate_state(4)
        )
    # another base seed or other settings give other ids (cells of other settings are never reused)
    assert load_spec(small(seed=8)).cells()[0].id != cells[0].id
    assert load_spec(small(metrics__ed_max_n=100)).cells()[0].id != cells[0].id
    assert (
        load_spec(small(seed=8)).cells()[0].seed_sequence().generate_state(1)
        != cells[0].seed_sequence().generate_state(1)
    ).all()


# -- the work of one cell ------------------------------------------------------------------------


def _cell(spec, **where):
    for c in load_spec(spec).cells():
        if all((c.rule.label if k == "rule" else getattr(c, k)) == v for k, v in where.items()):
            return c
    raise LookupError(where)


def test_evaluate_follows_the_documented_streams():
    """The metric columns recomputed from the documented seed streams with refcfg's public API."""
    cell = _cell(SMALL, problem="two-class-2d", rule="cfg", w=3.0, sampler="heun", seed=1)
    got = evaluate(cell)
    again = evaluate(cell)
    assert {k: v for k, v in got.items() if not k.endswith("_s")} == {
        k: v for k, v in again.items() if not k.endswith("_s")
    }
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
    noise, ref_ss, tilt_ss, ed_ss = cell.seed_sequence().spawn(4)
    ed_seed = int(np.random.default_rng(ed_ss).integers(0, 2**63))
    x = refcfg.sample(
        path.cfg(0, 3.0), 200, sampler="heun", steps=6, seed=np.random.default_rng(noise)
    )
    ref = path.mixture.class_gmm(0).sample(200, np.random.default_rng(ref_ss))
    # plain CFG through the rule and through CFGField agree to rounding (1e-12 in the metrics)
    assert got["ed_cond"] == pytest.approx(metrics.energy_distance(x, ref, seed=ed_seed), rel=1e-9)
    cc = metrics.class_confidence(x, path.mixture, 0)
    assert got["confidence"] == pytest.approx(cc.mean_prob, rel=1e-9)
    assert got["accuracy"] == cc.accuracy
    assert got["loglik"] == pytest.approx(
        metrics.mean_log_likelihood(x, path.mixture, 0)[0], rel=1e-9
    )
    assert got["sample_s"] > 0 and got["metrics_s"] > 0


@pytest.mark.slow
def test_guidance_raises_confidence_and_w1_matches_the_conditional_law():
    """A statistical sanity check of the columns: at w = 1 CFG samples p(x|y), so its energy
    distance to p(x|y) is at the noise floor of two independent exact samples of n = 2000
    (E ~ 2e-3 here; bound 0.02); w = 4 pulls the samples away and raises the class confidence."""
    spec = small(
        axes__problem=["two-class-2d"],
        axes__rule=["cfg"],
        axes__w=[1.0, 4.0],
        axes__sampler=["heun"],
        axes__steps=[40],
        axes__n=[2000],
        seeds=1,
    )
    c1, c4 = (evaluate(c) for c in load_spec(spec).cells())
    assert c1["ed_cond"] < 0.02 < c4["ed_cond"]
    assert c4["confidence"] > c1["confidence"] + 0.05
    assert c4["ed_tilted"] < c4["ed_cond"]  # closer to the tilted law than to p(x|y)


def test_tv_metric_in_1d():
    spec = small(
        axes__problem=["gauss-1d"],
        axes__rule=["cfg"],
        axes__w=[1.0],
        axes__sampler=["heun"],
        axes__steps=[40],
        axes__n=[4000],
        seeds=1,
        metrics__names=["tv"],
        metrics__tv_bins=60,
    )
    out = evaluate(load_spec(spec).cells()[0])
    assert set(out) == {"tv_tilted", "tv_cond", "tv_floor"}
    # w = 1: the tilted law is p(x|y), so both TVs agree and sit near the noise floor
    assert out["tv_tilted"] == pytest.approx(out["tv_cond"], abs=1e-12)
    assert out["tv_floor"] / 2 < out["tv_tilted"] < 3 * out["tv_floor"]


@pytest.mark.slow
def test_flow_loglik_is_the_exact_conditional_log_density_at_w1():
    """At w = 1 the rule's flow carries N(0, I) to p(x|y): the mean flow log-likelihood of exact
    points of p(x|y) equals their mean exact log p(x|y) up to the ODE discretisation (Heun, 80 steps;
    observed ~1e-4, bound 0.01)."""
    if "cfg" in _rules_with("divergence", False):
        pytest.skip("the cfg rule has no divergence: flow_loglik is refused for it")
    spec = small(
        axes__problem=["two-class-2d"],
        axes__rule=["cfg"],
        axes__w=[1.0],
        axes__sampler=["heun"],
        axes__steps=[80],
        axes__n=[200],
        seeds=1,
        metrics__names=["flow_loglik"],
        metrics__lik_n=100,
    )
    cell = load_spec(spec).cells()[0]
    got = evaluate(cell)["flow_loglik"]
    ref_ss = cell.seed_sequence().spawn(4)[1]
    mix = refcfg.problem("two-class-2d")
    pts = mix.class_gmm(0).sample(200, np.random.default_rng(ref_ss))[:100]
    assert got == pytest.approx(float(np.mean(mix.class_gmm(0).log_prob(pts))), abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", [*refcfg.sampling.steppers.TABLEAUS, "euler_maruyama"])
def test_flow_loglik_runs_the_cells_own_tableau(sampler):
    """flow_loglik integrates the likelihood with the cell's own ODE tableau (every entry of
    TABLEAUS; Heun for Euler-Maruyama, which has none): equal to refcfg.log_likelihood with that
    tableau on the cell's reference points, bit for bit."""
    from refcfg.guidance import make
    from refcfg.sampling.api import time_grid
    from refcfg.sampling.steppers import TABLEAUS

    spec = small(
        axes__problem=["two-class-2d"],
        axes__rule=["cfg"],
        axes__w=[2.0],
        axes__sampler=[sampler],
        axes__steps=[4],
        axes__n=[20],
        seeds=1,
        metrics__names=["flow_loglik"],
        metrics__lik_n=10,
    )
    cell = load_spec(spec).cells()[0]
    got = evaluate(cell)["flow_loglik"]
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    pts = path.mixture.class_gmm(0).sample(
        20, np.random.default_rng(cell.seed_sequence().spawn(4)[1])
    )
    field = make("cfg", path, 0, 2.0, t_grid=time_grid(4))
    lik = sampler if sampler in TABLEAUS else "heun"
    want = float(np.mean(refcfg.log_likelihood(field, pts[:10], steps=4, sampler=lik)))
    assert got == want
    others = [s for s in TABLEAUS if s != lik]
    assert all(
        float(np.mean(refcfg.log_likelihood(field, pts[:10], steps=4, sampler=s))) != got
        for s in others
    )
