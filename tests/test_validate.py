"""refcfg.validate.check_field: independent implementations pass, known mistakes fail with the right
diagnosis.

Oracles: an implementation written here from Gaussian conditioning with np.linalg.solve and scipy
densities (tests/_oracles.py, no refcfg code), and an implementation in PyTorch with
torch.distributions + autograd + the conversion formula eq. 41/42 (skipped without torch). Mistakes
are built from those oracles (not from refcfg), so a diagnosis is a statement about formulas.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import refcfg
from refcfg.validate import FieldError, FieldReport, check_field

from _oracles import PathOracle, schedule_formula

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# An independent NumPy implementation (oracle formulas; per unique (t, y) group)
# ------------------------------------------------------------------------------------------------


def _gmm_params(mix, label):
    """(weights, means, full covs) of p(z|y) (label >= 0) or of p(z) (label -1), read from the
    problem's parameters."""
    if label >= 0:
        g = mix.classes[label]
        return g.weights, g.means, g.covs
    ws, ms, cs = [], [], []
    for p, g in zip(mix.class_probs, mix.classes):
        ws.append(p * g.weights), ms.append(g.means), cs.append(g.covs)
    return np.concatenate(ws), np.concatenate(ms), np.concatenate(cs)


def oracle_field(mix, sched_name, kind, null_label=-1, **sched_params):
    """fn(x, t, y) computing ``kind`` with tests/_oracles.PathOracle."""

    def fn(x, t, y):
        out = np.empty_like(x)
        for tv in np.unique(t):
            sv = schedule_formula(sched_name, tv, **sched_params)
            for lab in np.unique(y):
                idx = (t == tv) & (y == lab)
                orc = PathOracle(*_gmm_params(mix, -1 if lab == null_label else int(lab)), sv)
                out[idx] = {
                    "velocity": orc.velocity,
                    "score": orc.score,
                    "x0": orc.post_mean_z,
                    "eps": orc.post_mean_eps,
                }[kind](x[idx])
        return out

    return fn


def guided(fn_of_y, w):
    """CFG combination w K(x|y) + (1 - w) K(x|null) of an oracle field (eq. 65)."""
    return lambda x, t, y: w * fn_of_y(x, t, y) + (1 - w) * fn_of_y(x, t, np.full_like(y, -1))


MIX = refcfg.problem("two-class-2d")


@pytest.mark.parametrize("kind", ["velocity", "score", "x0", "eps"])
@pytest.mark.parametrize("sched", ["linear", "cosine", "sqrt", "vp"])
def test_independent_numpy_implementation_passes(kind, sched):
    rep = check_field(
        oracle_field(MIX, sched, kind),
        "two-class-2d",
        kind,
        schedule=sched,
        n=24,
        rtol=1e-8,
        atol=1e-10,
    )
    assert rep.passed, str(rep)
    assert rep.diagnoses == []
    assert rep.max_rel < 1e-8
    assert [s.t for s in rep.per_t] == list(refcfg.validate.DEFAULT_TIMES)  # endpoints included


@pytest.mark.parametrize("kind", ["velocity", "eps"])
def test_independent_cfg_passes(kind):
    fn = guided(oracle_field(MIX, "linear", kind), 3.0)
    rep = check_field(fn, "two-class-2d", kind, w=3.0, n=24, rtol=1e-8, atol=1e-10)
    assert rep.passed, str(rep)


# ------------------------------------------------------------------------------------------------
# Known mistakes (issue point 2): each fails, and the report names it
# ------------------------------------------------------------------------------------------------

INNER = [0.1, 0.3, 0.5, 0.7, 0.9]  # a_t, b_t of eq. 41 need alpha_t > 0


def _codes(rep):
    return [d.code for d in rep.diagnoses]


def _ab(t):
    al, be, da, db, bdb = schedule_formula("linear", t)
    return be * be * da / al - bdb, da / al  # a_t, b_t (eq. 41), written out here


def test_ab_swapped_velocity_is_diagnosed():
    score = oracle_field(MIX, "linear", "score")

    def wrong(x, t, y):  # u = b_t score + a_t x instead of a_t score + b_t x
        a, b = _ab(float(t[0]))
        return b * score(x, t, y) + a * x

    rep = check_field(wrong, "two-class-2d", "velocity", times=INNER, n=24)
    assert not rep.passed
    assert _codes(rep) == ["ab_swapped"], str(rep)
    assert rep.diagnoses[0].match == "exact" and rep.diagnoses[0].error < 1e-9
    text = str(rep)
    assert "FAIL" in text and "a_t and b_t swapped" in text


def test_ab_swapped_score_conversion_is_diagnosed():
    vel = oracle_field(MIX, "linear", "velocity")

    def wrong(x, t, y):  # score = (u - a_t x) / b_t instead of (u - b_t x) / a_t
        a, b = _ab(float(t[0]))
        return (vel(x, t, y) - a * x) / b

    rep = check_field(wrong, "two-class-2d", "score", times=INNER, n=24)
    assert not rep.passed and _codes(rep) == ["ab_swapped"], str(rep)


@pytest.mark.parametrize("kind", ["velocity", "x0"])
def test_ho_salimans_w_vs_one_plus_w_is_diagnosed(kind):
    base = oracle_field(MIX, "linear", kind)
    w = 3.0

    def wrong(x, t, y):  # (1 + w) c - w u: Ho-Salimans with omega = w
        return (1 + w) * base(x, t, y) - w * base(x, t, np.full_like(y, -1))

    rep = check_field(wrong, "two-class-2d", kind, w=w, n=24)
    assert not rep.passed
    assert _codes(rep) == ["w_convention"], str(rep)
    assert "w' = w + 1 = 4" in rep.diagnoses[0].message


def test_approximate_mistake_is_diagnosed_as_close():
    """A model that learnt the Ho-Salimans form only approximately (1e-3 relative noise, seed 0):
    its output is much closer to the w + 1 field than to the exact one."""
    base = oracle_field(MIX, "linear", "velocity")
    rng = np.random.default_rng(0)
    w = 3.0

    def noisy(x, t, y):
        out = (1 + w) * base(x, t, y) - w * base(x, t, np.full_like(y, -1))
        return out * (1 + 1e-3 * rng.standard_normal(out.shape))

    rep = check_field(noisy, "two-class-2d", "velocity", w=w, n=24, times=INNER)
    assert _codes(rep)[0] == "w_convention" and rep.diagnoses[0].match == "close", str(rep)
    assert "approximately" in rep.diagnoses[0].message


def test_w_given_as_omega_is_diagnosed():
    base = oracle_field(MIX, "linear", "velocity")
    rep = check_field(guided(base, 2.0), "two-class-2d", "velocity", w=3.0, n=24)
    assert _codes(rep) == ["w_convention"] and "w' = w - 1 = 2" in rep.diagnoses[0].message


def test_cond_uncond_swapped_is_diagnosed():
    base = oracle_field(MIX, "linear", "velocity")
    w = 2.5

    def wrong(x, t, y):
        return w * base(x, t, np.full_like(y, -1)) + (1 - w) * base(x, t, y)

    rep = check_field(wrong, "two-class-2d", "velocity", w=w, n=24)
    assert not rep.passed and _codes(rep) == ["cond_uncond_swapped"], str(rep)


def test_guidance_sign_is_diagnosed():
    base = oracle_field(MIX, "linear", "velocity")
    w = 3.0

    def wrong(x, t, y):  # u - w (c - u)
        u = base(x, t, np.full_like(y, -1))
        return u - w * (base(x, t, y) - u)

    rep = check_field(wrong, "two-class-2d", "velocity", w=w, n=24)
    assert not rep.passed and _codes(rep) == ["guidance_sign"], str(rep)


def test_labels_ignored_is_diagnosed():
    base = oracle_field(MIX, "linear", "velocity")
    rep = check_field(
        lambda x, t, y: base(x, t, np.full_like(y, -1)), "two-class-2d", "velocity", n=24
    )
    assert not rep.passed and _codes(rep) == ["labels_ignored"], str(rep)
    assert "label dropout" in rep.diagnoses[0].message


def test_nan_at_t1_is_diagnosed():
    base = oracle_field(MIX, "linear", "velocity")

    def wrong(x, t, y):
        out = base(x, t, y)
        out[t == 1.0] = np.nan
        return out

    rep = check_field(wrong, "two-class-2d", "velocity", n=24)
    assert not rep.passed
    last = rep.per_t[-1]
    assert last.t == 1.0 and last.n_nonfinite == 24 and last.n_fail == 24
    assert all(s.n_fail == 0 for s in rep.per_t[:-1])
    assert _codes(rep)[0] == "nonfinite" and "t = 1 (24 points)" in rep.diagnoses[0].message
    assert rep.worst.t == 1.0 and np.all(np.isnan(rep.worst.got))
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)  # NaN/inf become strings in the dict
    assert d["per_t"][-1]["max_rel"] == "inf"


def test_relative_perturbation_1e3_fails_tolerance_only():
    base = oracle_field(MIX, "linear", "score")
    rep = check_field(lambda x, t, y: base(x, t, y) * (1 + 1e-3), "two-class-2d", "score", n=24)
    assert not rep.passed
    assert _codes(rep) == ["small_error"], str(rep)
    # the measured errors are the perturbation: rel err 1e-3 at every point (oracle-vs-exact
    # agreement ~1e-12 adds to it)
    for s in rep.per_t:
        assert abs(s.max_rel - 1e-3) < 1e-9 and abs(s.mean_rel - 1e-3) < 1e-9
    # and a 1e-3 perturbation passes with rtol = 2e-3
    assert check_field(
        lambda x, t, y: base(x, t, y) * (1 + 1e-3), "two-class-2d", "score", n=24, rtol=2e-3
    ).passed


def test_time_reversed_schedule_and_kind_are_diagnosed():
    vel = oracle_field(MIX, "linear", "velocity")
    rev = check_field(lambda x, t, y: -vel(x, 1.0 - t, y), "two-class-2d", "velocity", n=16)
    assert _codes(rev) == ["time_reversed"], str(rev)
    cos = oracle_field(MIX, "cosine", "velocity")
    rep = check_field(cos, "two-class-2d", "velocity", n=16)
    assert _codes(rep) == ["schedule"] and "'cosine'" in rep.diagnoses[0].message, str(rep)
    eps = oracle_field(MIX, "linear", "eps")
    rep = check_field(eps, "two-class-2d", "x0", n=16, times=INNER)
    assert _codes(rep) == ["kind"] and "exact eps" in rep.diagnoses[0].message, str(rep)


def test_unrelated_error_has_no_formula_diagnosis():
    rng = np.random.default_rng(0)
    rep = check_field(
        lambda x, t, y: rng.standard_normal(x.shape), "two-class-2d", "velocity", n=16
    )
    assert not rep.passed and rep.diagnoses == []
    assert "no known mistake matches" in str(rep)


# ------------------------------------------------------------------------------------------------
# Report contents, options, argument errors
# ------------------------------------------------------------------------------------------------


def test_report_statistics_are_the_stated_norms():
    base = oracle_field(MIX, "linear", "velocity")
    delta = np.array([1e-3, -2e-3])

    def shifted(x, t, y):
        return base(x, t, y) + delta

    rep = check_field(shifted, "two-class-2d", "velocity", times=[0.5], n=16, seed=3)
    s = rep.per_t[0]
    assert abs(s.max_abs - np.linalg.norm(delta)) < 1e-12
    assert abs(s.mean_abs - np.linalg.norm(delta)) < 1e-12
    assert s.n_fail == 16 and s.n_nonfinite == 0
    assert abs(rep.worst.abs_err - np.linalg.norm(delta)) < 1e-12
    assert abs(rep.worst.rel_err - rep.worst.abs_err / np.linalg.norm(rep.worst.expected)) < 1e-12
    assert rep.worst.rel_err == pytest.approx(s.max_rel, rel=1e-12)
    d = rep.to_dict()
    assert json.loads(json.dumps(d))["passed"] is False
    assert d["kind"] == "velocity" and d["n"] == 16 and d["times"] == [0.5]


def test_points_and_labels_are_passed_as_documented():
    seen = {}

    def spy(x, t, y):
        seen.setdefault("calls", []).append((x.copy(), t.copy(), y.copy()))
        return oracle_field(MIX, "linear", "velocity", null_label=2)(x, t, y)

    pts = np.array([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]])
    rep = check_field(
        spy, "two-class-2d", "velocity", points=pts, times=[0.0, 1.0], null_label=2, rtol=1e-8
    )
    assert rep.passed, str(rep)
    (x0, t0, y0), (x1, t1, y1) = seen["calls"]
    assert np.array_equal(x0, pts) and np.array_equal(x1, pts)
    assert np.array_equal(t0, [0.0] * 3) and np.array_equal(t1, [1.0] * 3)
    assert t0.dtype == np.float64 and y0.dtype == np.int64
    assert np.array_equal(y0, [0, 1, 2])  # y="all" cycles classes and NULL (remapped to 2)


def test_sampled_points_follow_the_path():
    """x_t = alpha_t z + beta_t eps with the same z, eps at every t: at t = 0 (linear) the points
    are N(0, I) draws; at t = 1 they are data, so their class-conditional mean matches the class
    mean (N = 4000 draws, tolerance 5 standard errors)."""
    xs = {}

    def spy(x, t, y):
        xs[float(t[0])] = (x.copy(), y.copy())
        return np.zeros_like(x)

    check_field(spy, "two-class-2d", "velocity", times=[0.0, 1.0], n=4000, y=0, diagnose=False)
    x0 = xs[0.0][0]
    assert abs(x0.mean()) < 5 / np.sqrt(x0.size) and abs(x0.std() - 1) < 0.05
    g = MIX.classes[0]
    mean = g.weights @ g.means
    cov = sum(
        wk * (S + np.outer(m - mean, m - mean)) for wk, m, S in zip(g.weights, g.means, g.covs)
    )
    se = np.sqrt(np.diag(cov) / 4000)
    assert np.all(np.abs(xs[1.0][0].mean(0) - mean) < 5 * se)


def test_undefined_times_are_skipped_with_a_note():
    class Path(refcfg.GMMPath):
        def eps(self, x, t, y=None):
            if np.any(np.asarray(t) == 1.0):
                raise ValueError("eps undefined at t = 1 in this test")
            return super().eps(x, t, y)

    path = Path(MIX, "linear")
    fn = oracle_field(MIX, "linear", "eps")
    rep = check_field(fn, path, "eps", n=8, rtol=1e-8)
    assert rep.passed and [t for t, _ in rep.skipped] == [1.0]
    assert "undefined at t = 1 in this test" in rep.skipped[0][1]
    assert "skipped t = 1" in str(rep) and rep.to_dict()["skipped"][0]["t"] == 1.0
    with pytest.raises(ValueError, match="no time"):
        check_field(fn, path, "eps", times=[1.0])


def test_bad_arguments_name_the_argument():
    fn = oracle_field(MIX, "linear", "velocity")
    with pytest.raises(ValueError, match="kind"):
        check_field(fn, kind="speed")
    with pytest.raises(ValueError, match="rtol"):
        check_field(fn, rtol=-1)
    with pytest.raises(ValueError, match="times"):
        check_field(fn, times=[0.5, 1.5])
    with pytest.raises(ValueError, match="problem"):
        check_field(fn, "no-such-problem")
    with pytest.raises(ValueError, match="y must name a class"):
        check_field(fn, w=2.0, y="null")
    with pytest.raises(ValueError, match="y must be in 0..1"):
        check_field(fn, y=5)
    with pytest.raises(TypeError, match="fn must be callable"):
        check_field(3)
    with pytest.raises(ValueError, match="points"):
        check_field(fn, points=np.zeros((4, 3)))


def test_user_function_errors_are_field_errors():
    with pytest.raises(FieldError, match=r"returned shape \(64, 3\)"):
        check_field(lambda x, t, y: np.zeros((x.shape[0], 3)))
    with pytest.raises(FieldError, match="raised ZeroDivisionError at t = 0"):
        check_field(lambda x, t, y: 1 / 0)


def test_exact_field_passes_on_every_problem_quickly():
    for name in ("gauss-1d", "mit-symmetric"):
        path = refcfg.GMMPath(refcfg.problem(name), "linear")
        fn = oracle_field(path.mixture, "linear", "velocity")
        rep = check_field(fn, name, "velocity", n=8, rtol=1e-8)
        assert isinstance(rep, FieldReport) and rep.passed, str(rep)


def test_jax_adapter_needs_jax():
    try:
        import jax  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="jax"):
            refcfg.validate.jax_field(lambda x, t, y: x)
    else:  # pragma: no cover - jax not installed here
        fn = refcfg.validate.jax_field(lambda x, t, y: x * 2)
        assert np.array_equal(
            fn(np.ones((2, 2)), np.zeros(2), np.zeros(2, int)), 2 * np.ones((2, 2))
        )


# ------------------------------------------------------------------------------------------------
# Issue point 1: an independent PyTorch implementation passes (skipped without torch)
# ------------------------------------------------------------------------------------------------


def _torch_gmm_field(mix, torch):
    """Exact GMM fields in PyTorch for the linear schedule (alpha = t, beta = 1 - t):
    p_t(x|y) as a torch.distributions MixtureSameFamily of MultivariateNormal(alpha mu_k,
    alpha^2 Sigma_k + beta^2 I); the score by autograd; velocity by u = a_t s + b_t x with
    a_t = beta^2 dalpha / alpha - beta dbeta, b_t = dalpha / alpha (eq. 41/42); eps = -beta s
    (Tweedie) and x0 = (x - beta eps) / alpha... only the quantities below are used."""
    from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

    def dist(t, label):
        w, m, c = (torch.as_tensor(a, dtype=torch.float64) for a in _gmm_params(mix, label))
        al, be = t, 1.0 - t
        cov = al * al * c + be * be * torch.eye(m.shape[1], dtype=torch.float64)
        return MixtureSameFamily(
            Categorical(probs=w), MultivariateNormal(al * m, cov), validate_args=False
        )

    def score(x, t, y):
        out = torch.empty_like(x)
        for tv in torch.unique(t):
            for lab in torch.unique(y):
                idx = (t == tv) & (y == lab)
                xi = x[idx].detach().requires_grad_(True)
                with torch.enable_grad():
                    lp = dist(float(tv), int(lab)).log_prob(xi).sum()
                    (g,) = torch.autograd.grad(lp, xi)
                out[idx] = g
        return out

    def velocity(x, t, y):
        tc = t[:, None]
        a = (1 - tc) ** 2 / tc + (1 - tc)  # dalpha = 1, dbeta = -1
        b = 1 / tc
        return a * score(x, t, y) + b * x

    def eps(x, t, y):
        return -(1 - t[:, None]) * score(x, t, y)

    return {"score": score, "velocity": velocity, "eps": eps}


def test_torch_independent_implementation_passes():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny 2 x 2 factorisations: thread start-up dominates otherwise
    try:
        _torch_checks(torch)
    finally:
        torch.set_num_threads(threads)


def _torch_checks(torch):
    from refcfg.validate import torch_field

    fields = _torch_gmm_field(MIX, torch)
    inner = [0.05, 0.5, 0.95, 1.0]  # the conversion divides by alpha_t = t: no t = 0
    for kind, times in (("velocity", inner), ("score", None), ("eps", None)):
        rep = check_field(
            torch_field(fields[kind]),
            "two-class-2d",
            kind,
            times=times,
            n=24,
            rtol=1e-9,
            atol=1e-11,
        )
        assert rep.passed, str(rep)
    # CFG with w = 3 in the notes' convention, built from the torch velocity
    vel = fields["velocity"]

    def cfg(x, t, y, w=3.0):
        return w * vel(x, t, y) + (1 - w) * vel(x, t, torch.full_like(y, -1))

    rep = check_field(
        torch_field(cfg),
        "two-class-2d",
        "velocity",
        w=3.0,
        times=inner,
        n=24,
        rtol=1e-9,
        atol=1e-11,
    )
    assert rep.passed, str(rep)

    # the same torch code with Ho-Salimans' form fails with the convention diagnosis
    def hs(x, t, y, w=3.0):
        return (1 + w) * vel(x, t, y) - w * vel(x, t, torch.full_like(y, -1))

    rep = check_field(torch_field(hs), "two-class-2d", "velocity", w=3.0, times=inner, n=24)
    assert _codes(rep) == ["w_convention"], str(rep)
    # and at t = 0 the conversion formula gives non-finite values: reported, not NaN-compared
    rep = check_field(torch_field(vel), "two-class-2d", "velocity", times=[0.0, 0.5], n=8)
    assert not rep.passed and rep.per_t[0].n_nonfinite == 8 and _codes(rep)[0] == "nonfinite"


# ------------------------------------------------------------------------------------------------
# The documented example user test file runs
# ------------------------------------------------------------------------------------------------


def test_docs_example_pytest_file_runs():
    """docs/examples/test_my_field.py is loaded and every test function in it is called (the
    hypothesis one runs its own examples); in-process to avoid a second interpreter start."""
    import importlib.util

    path = ROOT / "docs" / "examples" / "test_my_field.py"
    spec = importlib.util.spec_from_file_location("refcfg_docs_example_test_my_field", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [getattr(module, k) for k in dir(module) if k.startswith("test_")]
    assert len(tests) == 3
    for test in tests:
        test()
    # and "your" implementation really is checked: a wrong weight convention fails
    with pytest.raises(AssertionError, match="w_convention"):
        module.assert_field_matches(
            module.field(module.MIX, w=4.0), problem="two-class-2d", kind="velocity", w=3.0, n=8
        )


def test_docs_include_the_example_file_verbatim():
    example = (ROOT / "docs" / "examples" / "test_my_field.py").read_text()
    doc = (ROOT / "docs" / "validating.md").read_text()
    assert "```python\n" + example + "```" in doc


def test_an_empty_set_of_points_is_refused_not_passed():
    # a check over no points would pass without testing anything: refused, naming points
    with pytest.raises(ValueError, match=r"points has shape \(0, 2\): a check needs at least one"):
        check_field(lambda x, t, y: x, "two-class-2d", points=np.zeros((0, 2)))
