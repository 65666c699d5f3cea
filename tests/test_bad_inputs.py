"""Bad inputs raise ValueError / TypeError whose message names the argument.

Each case is one distinct kind of bad input; the regex requires the argument's name in the message
(and, where it is short, the offending value or what was required).
"""

import numpy as np
import pytest

import refcfg

RNG = np.random.default_rng(0)
W = np.array([0.4, 0.6])
MU = np.array([[0.0, 1.0], [2.0, -1.0]])
COV = np.array([[[1.0, 0.2], [0.2, 0.5]], [[0.7, 0.0], [0.0, 1.3]]])


def _path():
    g0 = refcfg.GMM(W, MU, COV)
    g1 = refcfg.GMM([1.0], [[1.0, 1.0]], [0.5])
    return refcfg.GMMPath(refcfg.LabeledGMM([g0, g1], [0.3, 0.7]), "linear")


X = RNG.standard_normal((4, 2))


def _bad(arr, i, v):
    a = np.array(arr, dtype=float)
    a.flat[i] = v
    return a


# (id, callable, exception type(s), regex)
CASES = [
    # ---- GMM construction
    (
        "weights-negative",
        lambda: refcfg.GMM([-0.5, 1.5], MU, COV),
        ValueError,
        r"weights.*-0\.5|weights.*>= ?0",
    ),
    ("weights-sum", lambda: refcfg.GMM([0.4, 0.5], MU, COV), ValueError, r"weights.*sum"),
    ("weights-length", lambda: refcfg.GMM([0.2, 0.3, 0.5], MU, COV), ValueError, r"weights"),
    ("weights-nan", lambda: refcfg.GMM([np.nan, 1.0], MU, COV), ValueError, r"weights"),
    ("weights-2d", lambda: refcfg.GMM([[0.4, 0.6]], MU, COV), ValueError, r"weights"),
    ("weights-str", lambda: refcfg.GMM("ab", MU, COV), (TypeError, ValueError), r"weights"),
    (
        "covs-asymmetric",
        lambda: refcfg.GMM(W, MU, _bad(COV, 1, 0.9)),
        ValueError,
        r"covs.*symmetric",
    ),
    (
        "covs-not-pd",
        lambda: refcfg.GMM(W, MU, np.array([[[1.0, 2.0], [2.0, 1.0]], COV[1]])),
        ValueError,
        r"covs.*positive definite",
    ),
    (
        "covs-zero-eig",
        lambda: refcfg.GMM(W, MU, np.array([[[1.0, 1.0], [1.0, 1.0]], COV[1]])),
        ValueError,
        r"covs.*positive definite",
    ),
    (
        "covs-diag-negative",
        lambda: refcfg.GMM(W, MU, np.array([[1.0, -1.0], [1.0, 1.0]])),
        ValueError,
        r"covs.*positive",
    ),
    ("covs-iso-negative", lambda: refcfg.GMM(W, MU, np.array([1.0, -1.0])), ValueError, r"covs"),
    ("covs-shape", lambda: refcfg.GMM(W, MU, np.ones((2, 3, 3))), ValueError, r"covs.*shape"),
    ("covs-inf", lambda: refcfg.GMM(W, MU, _bad(COV, 0, np.inf)), ValueError, r"covs"),
    ("means-1d", lambda: refcfg.GMM(W, np.array([0.0, 1.0]), COV), ValueError, r"means"),
    ("means-nan", lambda: refcfg.GMM(W, _bad(MU, 0, np.nan), COV), ValueError, r"means.*finite"),
    # ---- LabeledGMM
    (
        "classes-mismatched-d",
        lambda: refcfg.LabeledGMM(
            [refcfg.GMM(W, MU, COV), refcfg.GMM([1.0], [[0.0, 0.0, 0.0]], [1.0])], [0.5, 0.5]
        ),
        ValueError,
        r"classes.*dimension|classes.*d",
    ),
    (
        "class_probs-length",
        lambda: refcfg.LabeledGMM([refcfg.GMM(W, MU, COV)], [0.5, 0.5]),
        ValueError,
        r"class_probs",
    ),
    (
        "class_probs-negative",
        lambda: refcfg.LabeledGMM([refcfg.GMM(W, MU, COV), refcfg.GMM(W, MU, COV)], [1.5, -0.5]),
        ValueError,
        r"class_probs",
    ),
    ("classes-not-gmm", lambda: refcfg.LabeledGMM([1, 2], [0.5, 0.5]), TypeError, r"classes"),
    ("path-mixture-type", lambda: refcfg.GMMPath("two-class-2d"), TypeError, r"mixture"),
    # ---- t
    ("t-above-1", lambda: _path().velocity(X, 1.5), ValueError, r"t must lie in \[0, 1\].*1\.5"),
    ("t-negative", lambda: _path().score(X, -1e-3), ValueError, r"\bt\b.*\[0, 1\]"),
    ("t-nan", lambda: _path().log_prob(X, np.nan), ValueError, r"\bt\b.*(finite|NaN)"),
    ("t-inf", lambda: _path().x0(X, np.inf), ValueError, r"\bt\b"),
    ("t-shape", lambda: _path().velocity(X, np.full(3, 0.5)), ValueError, r"\bt\b.*shape"),
    ("t-2d", lambda: _path().velocity(X, np.full((4, 1), 0.5)), ValueError, r"\bt\b.*shape"),
    (
        "t-array-outside",
        lambda: _path().eps(X, np.array([0.1, 0.2, 1.2, 0.3])),
        ValueError,
        r"\bt\b",
    ),
    ("t-str", lambda: _path().velocity(X, "half"), TypeError, r"\bt\b"),
    ("t-bool", lambda: _path().velocity(X, True), TypeError, r"\bt\b"),
    # ---- labels
    ("y-out-of-range", lambda: _path().velocity(X, 0.5, 2), ValueError, r"\by\b.*0\.\.1.*2"),
    ("y-negative-not-null", lambda: _path().velocity(X, 0.5, -2), ValueError, r"\by\b"),
    (
        "y-array-out-of-range",
        lambda: _path().score(X, 0.5, np.array([0, 1, 5, -1])),
        ValueError,
        r"\by\b.*5",
    ),
    (
        "y-non-integer",
        lambda: _path().velocity(X, 0.5, np.array([0.0, 0.5, 1.0, 1.0])),
        TypeError,
        r"\by\b.*integer",
    ),
    ("y-float-scalar", lambda: _path().velocity(X, 0.5, 0.5), TypeError, r"\by\b"),
    ("y-shape", lambda: _path().velocity(X, 0.5, np.array([0, 1])), ValueError, r"\by\b.*shape"),
    ("y-str", lambda: _path().velocity(X, 0.5, "cat"), TypeError, r"\by\b"),
    ("y-bool", lambda: _path().velocity(X, 0.5, True), TypeError, r"\by\b"),
    ("y-none-classifier", lambda: _path().classifier_score(X, 0.5, None), ValueError, r"\by\b"),
    # ---- x
    ("x-nan", lambda: _path().velocity(_bad(X, 0, np.nan), 0.5), ValueError, r"\bx\b.*finite"),
    ("x-inf", lambda: _path().score(_bad(X, 3, -np.inf), 0.5), ValueError, r"\bx\b.*finite"),
    ("x-1d", lambda: _path().velocity(np.zeros(2), 0.5), ValueError, r"\bx\b.*shape"),
    ("x-3d", lambda: _path().velocity(np.zeros((2, 2, 2)), 0.5), ValueError, r"\bx\b.*shape"),
    ("x-wrong-d", lambda: _path().velocity(np.zeros((4, 3)), 0.5), ValueError, r"\bx\b.*\(N, 2\)"),
    ("x-str", lambda: _path().velocity("x", 0.5), TypeError, r"\bx\b"),
    ("x-gmm", lambda: refcfg.GMM(W, MU, COV).log_prob(np.zeros((3, 5))), ValueError, r"\bx\b"),
    # ---- w
    ("w-nan", lambda: _path().cfg_velocity(X, 0.5, 0, np.nan), ValueError, r"\bw\b.*finite"),
    ("w-inf", lambda: _path().classifier_guided_velocity(X, 0.5, 0, np.inf), ValueError, r"\bw\b"),
    ("w-str", lambda: _path().cfg_velocity(X, 0.5, 0, "big"), TypeError, r"\bw\b"),
    ("w-shape", lambda: _path().cfg_velocity(X, 0.5, 0, np.ones(3)), ValueError, r"\bw\b.*shape"),
    ("w-field-nan", lambda: _path().cfg(0, np.nan), ValueError, r"\bw\b"),
    # ---- schedules
    ("schedule-unknown", lambda: refcfg.schedule("warp-drive"), ValueError, r"warp-drive"),
    (
        "schedule-unknown-in-path",
        lambda: refcfg.GMMPath(refcfg.GMM(W, MU, COV), "nope"),
        ValueError,
        r"nope",
    ),
    ("schedule-n", lambda: refcfg.schedule("polynomial", n=-2), ValueError, r"\bn\b.*-2"),
    (
        "schedule-beta-order",
        lambda: refcfg.schedule("vp", beta_min=5.0, beta_max=1.0),
        ValueError,
        r"beta_max.*beta_min|beta_min.*beta_max",
    ),
    (
        "schedule-extra-param",
        lambda: refcfg.schedule("linear", n=2),
        (ValueError, TypeError),
        r"\bn\b",
    ),
    (
        "schedule-callable",
        lambda: refcfg.Schedule.from_callables(
            1.0, lambda t: 1 - t, lambda t: 1.0 + 0 * t, lambda t: -1.0 + 0 * t
        ),
        TypeError,
        r"alpha",
    ),
    (
        "schedule-custom-endpoint",
        lambda: refcfg.Schedule.from_callables(
            lambda t: 0.5 * t, lambda t: 1 - t, lambda t: 0.5 + 0 * t, lambda t: -1.0 + 0 * t
        ),
        ValueError,
        r"alpha",
    ),
    # ---- sampling sizes, seeds, methods
    ("n-zero", lambda: refcfg.GMM(W, MU, COV).sample(0, seed=0), ValueError, r"\bn\b.*0"),
    ("n-negative", lambda: refcfg.GMM(W, MU, COV).sample(-3, seed=0), ValueError, r"\bn\b"),
    ("n-float", lambda: refcfg.GMM(W, MU, COV).sample(2.5, seed=0), TypeError, r"\bn\b"),
    ("n-labeled", lambda: _path().mixture.sample(0, seed=0), ValueError, r"\bn\b"),
    ("seed-str", lambda: refcfg.GMM(W, MU, COV).sample(3, seed="abc"), TypeError, r"seed"),
    ("seed-negative", lambda: refcfg.GMM(W, MU, COV).sample(3, seed=-1), ValueError, r"seed"),
    (
        "method-unknown",
        lambda: _path().velocity(X, 0.5, method="magic"),
        ValueError,
        r"method.*magic",
    ),
    ("class_gmm-range", lambda: _path().mixture.class_gmm(7), ValueError, r"\by\b.*7"),
    ("labeled-sample-y", lambda: _path().mixture.sample(3, seed=0, y=9), ValueError, r"\by\b"),
    # ---- conditional path
    (
        "z-shape",
        lambda: _path().conditional_velocity(X, 0.5, np.zeros((3, 2))),
        ValueError,
        r"\bz\b",
    ),
    ("z-nan", lambda: _path().conditional_score(X, 0.5, _bad(X, 0, np.nan)), ValueError, r"\bz\b"),
    ("conditional-t1", lambda: _path().conditional_score(X, 1.0, X), ValueError, r"\bt\b"),
    # ---- schedule coefficients and conversions
    (
        "schedule-a-alpha0",
        lambda: refcfg.schedule("linear").a(0.0),
        ValueError,
        r"t = 0\.0.*a_t.*alpha_t = 0",
    ),
    (
        "schedule-b-t-range",
        lambda: refcfg.schedule("cosine").b(1.5),
        ValueError,
        r"\bt\b.*\[0, 1\]",
    ),
    (
        "schedule-n-str",
        lambda: refcfg.schedule("polynomial", n="two"),
        (ValueError, TypeError),
        r"\bn\b",
    ),
    (
        "convert-score-t1",
        lambda: refcfg.convert.velocity_to_score(X, X, 1.0, "linear"),
        ValueError,
        r"t = 1\.0",
    ),
    # ---- guidance fields and rules
    (
        "guided-w-bool",
        lambda: refcfg.guided(_path().field(0), _path().field(None), True),
        TypeError,
        r"\bw\b",
    ),
    (
        "guided-w-2d",
        lambda: refcfg.guided(_path().field(0), _path().field(None), np.ones((2, 2))),
        ValueError,
        r"\bw\b.*1-D",
    ),
    ("field-y-range", lambda: _path().field(5), ValueError, r"\by\b.*0\.\.1.*5"),
    ("field-y-float", lambda: _path().field(np.array([0.5])), TypeError, r"\by\b"),
    (
        "rule-name",
        lambda: refcfg.guidance.make("magic", _path(), 0, 2.0),
        ValueError,
        r"name.*magic",
    ),
    ("rule-w-str", lambda: refcfg.guidance.make("cfg", _path(), 0, "2"), TypeError, r"\bw\b"),
    (
        "rule-space",
        lambda: refcfg.guidance.make("rescale", _path(), 0, 2.0, space="logit"),
        ValueError,
        r"space.*logit",
    ),
    (
        "rule-sigma-order",
        lambda: refcfg.guidance.make("interval", _path(), 0, 2.0, sigma_lo=3.0, sigma_hi=1.0),
        ValueError,
        r"sigma_hi.*sigma_lo",
    ),
    (
        "rule-norm-threshold",
        lambda: refcfg.guidance.make("apg", _path(), 0, 2.0, norm_threshold=0.0),
        ValueError,
        r"norm_threshold.*> 0",
    ),
    (
        "rule-zero-until",
        lambda: refcfg.guidance.make("cfg-zero-star", _path(), 0, 2.0, zero_until=2.0),
        ValueError,
        r"zero_until.*<= 1",
    ),
    (
        "rule-zero-init-grid",
        lambda: refcfg.guidance.CFGZeroStar.zero_init_from_grid([0.0, 0.5, 0.4], 1),
        ValueError,
        r"t_grid.*increasing",
    ),
    (
        "rule-zero-init-steps",
        lambda: refcfg.guidance.CFGZeroStar.zero_init_from_grid([0.0, 1.0], 2.0),
        TypeError,
        r"zero_init_steps",
    ),
    (
        "rule-cov-scale",
        lambda: refcfg.guidance.weaker_mixture(_path().mixture, 0.0),
        ValueError,
        r"cov_scale.*> 0",
    ),
    (
        "rule-pair-shape",
        lambda: refcfg.guidance.cfg_combine(X, X[:2], 2.0),
        ValueError,
        r"\bc\b.*\bu\b",
    ),
    (
        "rule-weight-rows",
        lambda: refcfg.guidance.cfg_combine(X, X, np.ones(3)),
        ValueError,
        r"\bw\b.*shape",
    ),
    # ---- the path of a field: a GMMPath, not a mixture or a problem name
    (
        "cfg-path-mixture",
        lambda: refcfg.CFGField(_path().mixture, 0, 2.0),
        TypeError,
        r"path must be a GMMPath, got LabeledGMM.*GMMPath\(mixture",
    ),
    (
        "exact-path-name",
        lambda: refcfg.ExactField("two-class-2d", 0),
        TypeError,
        r"path must be a GMMPath, got 'two-class-2d'.*refcfg\.problem\('two-class-2d'\)",
    ),
    (
        "classifier-path-none",
        lambda: refcfg.ClassifierGuidedField(None, 0, 2.0),
        TypeError,
        r"path must be a GMMPath, got None",
    ),
    (
        "rule-path-mixture",
        lambda: refcfg.guidance.make("cfg", _path().mixture, 0, 2.0),
        TypeError,
        r"path must be a GMMPath",
    ),
    (
        "rule-weak-path",
        lambda: refcfg.guidance.make("autoguidance", _path(), 0, 2.0, weak_path="x"),
        TypeError,
        r"weak_path must be a GMMPath",
    ),
    (
        "weaker-mixture-path",
        lambda: refcfg.guidance.weaker_mixture(_path()),
        TypeError,
        r"mixture must be a LabeledGMM.*path\.mixture",
    ),
    (
        "sample-field-name",
        lambda: refcfg.sample("two-class-2d", 4),
        TypeError,
        r"field must be a field.*refcfg\.problem",
    ),
    (
        "likelihood-field-mixture",
        lambda: refcfg.log_likelihood(_path().mixture, X),
        TypeError,
        r"field must be a field.*GMMPath\(mixture",
    ),
    # ---- guidance weights: bools refused, |w| <= W_MAX (1e6)
    ("cfg-w-bool", lambda: refcfg.CFGField(_path(), 0, True), TypeError, r"\bw\b.*True"),
    (
        "rule-w-bool",
        lambda: refcfg.guidance.make("cfg", _path(), 0, True),
        TypeError,
        r"\bw\b.*True",
    ),
    (
        "rule-w-huge",
        lambda: refcfg.guidance.make("apg", _path(), 0, 1e50),
        ValueError,
        r"\|w\| <= 1e\+06.*1e\+50",
    ),
    ("cfg-w-huge", lambda: _path().cfg_velocity(X, 0.5, 0, -1e9), ValueError, r"\|w\| <= 1e\+06"),
    (
        "schedule-w-huge",
        lambda: refcfg.guidance.weight_schedule("linear", 1e7),
        ValueError,
        r"\|w\| <= 1e\+06",
    ),
    ("t-bool-array", lambda: _path().velocity(X, np.array([True] * 4)), TypeError, r"\bt\b"),
    ("t-complex", lambda: _path().velocity(X, 0.5 + 0j), TypeError, r"\bt\b.*real"),
    ("convert-t-bool", lambda: refcfg.convert.velocity_to_x0(X, X, True), TypeError, r"\bt\b"),
    # ---- problems
    ("problem-unknown", lambda: refcfg.problem("three-body"), ValueError, r"three-body"),
    (
        "problem-missing-file",
        lambda: refcfg.problems.load_problem("/nonexistent/p.toml"),
        (ValueError, FileNotFoundError, OSError),
        r"p\.toml",
    ),
]


@pytest.mark.parametrize("fn,exc,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_naming_argument(fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn()


def test_at_least_twenty_distinct_kinds():
    assert len({c[0] for c in CASES}) == len(CASES) >= 20


def test_weights_within_tolerance_are_accepted_and_renormalised():
    """Weights summing to 1 within a tiny tolerance are accepted; far off is rejected (above)."""
    g = refcfg.GMM([0.4, 0.6 + 1e-12], MU, COV)
    assert abs(g.weights.sum() - 1.0) < 1e-15
