"""refcfg.sample_checks.check_samples and `refcfg check-samples`: the permutation test's size on
exact samples, its power against a 5 % variance error and a 0.05 sd mean shift at N = 20000, the
targets, the effect sizes and the CLI's exit codes."""

import math

import numpy as np
import pytest

import refcfg
from refcfg.cli import main
from refcfg.sample_checks import check_samples, reference_samples, two_sample_test

pytestmark = pytest.mark.slow

MIX = refcfg.problem("two-class-2d")
PATH = refcfg.GMMPath(MIX, refcfg.schedule("linear"))


def _binom_sf(k, n, p):
    """P(Bin(n, p) >= k), summed directly."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


def _size_runs(runs, n, alpha):
    rejected = 0
    for s in range(runs):
        x = MIX.sample(n, seed=10_000 + s, y=0)[0]
        rep = check_samples(x, "two-class-2d", y=0, alpha=alpha, permutations=99, seed=s)
        rejected += not rep.passed
    return rejected


def test_size_on_exact_samples_200_runs():
    """200 seeded exact runs at N = 500, alpha = 0.05: rejections <= 19 (P(Bin(200, 0.05) >= 20)
    < 0.01 for a test of exact size 0.05)."""
    assert _binom_sf(20, 200, 0.05) < 0.01
    assert _size_runs(200, 500, 0.05) <= 19


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_power_at_20000(seed):
    """N = 20000 exact draws of p(x|y=0): accepted; the same draws with covariance x 1.05 (scaled
    about the mean) and with the mean shifted by 0.05 sd along either axis: rejected at 0.01."""
    x = MIX.sample(20_000, seed=500 + seed, y=0)[0]
    m, sd = x.mean(axis=0), x.std(axis=0)
    assert check_samples(x, "two-class-2d", y=0, seed=seed).passed
    for bad in (m + math.sqrt(1.05) * (x - m), x + [0.05 * sd[0], 0.0], x + [0.0, 0.05 * sd[1]]):
        rep = check_samples(bad, "two-class-2d", y=0, seed=seed)
        assert not rep.passed and rep.p_value <= 0.01


def test_detects_guidance_against_data_and_accepts_the_ode_target():
    """CFG samples at w = 3 (refcfg's own RK4) are rejected against p(x|y) and accepted against
    the exact guided ODE push-forward; effect sizes show the class confidence rising."""
    x = refcfg.sample(PATH.cfg(0, 3.0), 2000, sampler="rk4", steps=100, seed=7)
    data = check_samples(x, PATH, y=0, w=3.0, target="data", n_ref=2000, permutations=199)
    assert not data.passed
    assert data.effects["class_confidence"] > data.effects["class_confidence_ref"] + 0.02
    ode = check_samples(x, PATH, y=0, w=3.0, target="ode", steps=100, permutations=199)
    assert ode.passed, str(ode)


def test_effect_sizes_are_independent_computations():
    x = MIX.sample(3000, seed=1, y=1)[0]
    rep = check_samples(x + [0.3, 0.0], "two-class-2d", y=1, permutations=99, seed=3)
    ref = reference_samples(
        PATH,
        3000,
        1,
        1.0,
        "data",
        seed=int(np.random.SeedSequence(3).spawn(3)[0].generate_state(1)[0]),
    )
    shift = abs((x[:, 0] + 0.3).mean() - ref[:, 0].mean()) / ref[:, 0].std()
    assert rep.effects["mean_error_sd"] == pytest.approx(
        max(shift, abs(x[:, 1].mean() - ref[:, 1].mean()) / ref[:, 1].std()), rel=1e-12
    )
    assert not rep.passed and rep.effects["energy_distance"] > 0.01


def test_two_sample_test_is_deterministic_and_checks_inputs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(100, 2)), rng.normal(size=(120, 2))
    assert two_sample_test(a, b, permutations=50, seed=1) == two_sample_test(
        a, b, permutations=50, seed=1
    )
    with pytest.raises(ValueError, match="permutations"):
        two_sample_test(a, b, permutations=5)
    with pytest.raises(ValueError, match="d = 3"):
        two_sample_test(a, rng.normal(size=(10, 3)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=1.5), "alpha"),
        (dict(target="exact"), "target"),
        (dict(y=5), "class index"),
        (dict(w=3.0), "needs a class"),
        (dict(n_ref=3), "n_ref"),
        (dict(target="tilted"), "tilted"),
    ],
)
def test_bad_arguments(kwargs, match):
    x = np.zeros((50, 2))
    with pytest.raises(ValueError, match=match):
        check_samples(x, "two-class-2d", **kwargs)


def test_bad_samples():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        check_samples(np.zeros((50, 3)), "two-class-2d")
    with pytest.raises(ValueError, match="NaN"):
        check_samples(np.full((50, 2), np.nan), "two-class-2d")
    with pytest.raises(ValueError, match="20 rows"):
        check_samples(np.zeros((5, 2)), "two-class-2d")


def test_cli_exit_codes(tmp_path, capsys):
    good = MIX.sample(1000, seed=2, y=0)[0]
    np.savez(tmp_path / "good.npz", samples=good)
    np.savez(tmp_path / "bad.npz", x=good + [0.3, 0.0])
    np.savez(tmp_path / "two.npz", a=good, b=good)
    assert (
        main(["check-samples", str(tmp_path / "good.npz"), "--y", "0", "--permutations", "99"]) == 0
    )
    assert "PASS" in capsys.readouterr().out
    assert (
        main(
            [
                "check-samples",
                str(tmp_path / "bad.npz"),
                "--y",
                "0",
                "--permutations",
                "99",
                "--json",
            ]
        )
        == 1
    )
    assert '"passed": false' in capsys.readouterr().out
    for argv, match in [
        ([str(tmp_path / "missing.npz")], "does not exist"),
        ([str(tmp_path / "two.npz")], "--key"),
        ([str(tmp_path / "good.npz"), "--key", "zz"], "--key 'zz'"),
        ([str(tmp_path / "good.npz"), "--y", "x"], "--y"),
        ([str(tmp_path / "good.npz"), "--alpha", "2"], "--alpha"),
        ([str(tmp_path / "good.npz"), "--permutations", "3"], "--permutations"),
        ([str(tmp_path / "good.npz"), "--problem", "nope"], "--problem"),
        ([str(tmp_path / "good.npz"), "--w", "3"], "needs a class"),
    ]:
        assert main(["check-samples", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err, err


def test_sde_and_tilted_targets():
    """Exact-field Euler-Maruyama samples (sigma_t^2 = 2 a_t, 400 steps) are accepted against the
    'sde' target (its own 200-step reference); CFG ODE samples at w = 5 are rejected against the
    tilted law p(x|y)^w p(x)^(1-w)/Z, which CFG does not sample."""
    x = refcfg.sample(
        PATH.cfg(1, 2.0), 1500, sampler="euler_maruyama", sigma="ddpm", steps=400, seed=11
    )
    assert check_samples(x, PATH, y=1, w=2.0, target="sde", permutations=199).passed
    ode = refcfg.sample(PATH.cfg(0, 5.0), 3000, sampler="rk4", steps=100, seed=12)
    assert not check_samples(ode, PATH, y=0, w=5.0, target="tilted", permutations=199).passed
