"""Named problems and TOML problem files.

Oracles: the descriptions in the issue (shapes, class counts, the MIT symmetric construction written
out), scipy densities for a loaded file, and per-field error messages.
"""

import textwrap

import numpy as np
import pytest

import refcfg
from refcfg.problems import DEFAULT_PROBLEM, PROBLEMS, load_problem

from _oracles import gmm_log_prob, rel_err

# name -> (d, n_classes, components per class or None)
EXPECTED = {
    "two-class-2d": (2, 2, None),
    "mit-symmetric": (2, 5, [1] * 5),
    "gauss-1d": (1, 2, [1, 1]),
    "tree": (2, 2, [1016, 1016]),
    "highdim": (64, None, None),
}


def test_problem_names():
    assert set(EXPECTED) <= set(PROBLEMS)
    assert DEFAULT_PROBLEM == "two-class-2d"


@pytest.fixture(scope="module")
def problems():
    return {name: refcfg.problem(name) for name in PROBLEMS}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_problem_builds_with_documented_shape(problems, name):
    L = problems[name]
    assert isinstance(L, refcfg.LabeledGMM)
    d, C, counts = EXPECTED[name]
    assert L.d == d
    if C is not None:
        assert L.n_classes == C
    if counts is not None:
        assert [g.K for g in L.classes] == counts
    if name == "highdim":
        assert all(g.K == 16 for g in L.classes)
    # valid weights and class probabilities
    assert np.all(L.class_probs > 0) and abs(L.class_probs.sum() - 1) < 1e-12
    for g in L.classes:
        assert np.all(g.weights >= 0) and abs(g.weights.sum() - 1) < 1e-12
        assert np.all(g.eigvals > 0)
    assert abs(L.marginal.weights.sum() - 1) < 1e-12
    if name == "tree":
        assert all(g.cov_type == "full" for g in L.classes)


def test_mit_symmetric_construction(problems):
    """5 modes N(m_k, I), m_k on the circle of radius 10 at angles 2 pi k / 5, one class each."""
    L = problems["mit-symmetric"]
    ang = 2 * np.pi * np.arange(5) / 5
    want = 10 * np.stack([np.cos(ang), np.sin(ang)], 1)
    got = np.concatenate([g.means for g in L.classes])
    # up to the order of the classes: every mode is present once
    for m in want:
        assert np.min(np.linalg.norm(got - m, axis=1)) < 1e-12
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 10.0, rtol=1e-14)
    for g in L.classes:
        np.testing.assert_allclose(g.covs[0], np.eye(2), atol=1e-14)
    np.testing.assert_allclose(L.class_probs, 0.2, rtol=1e-14)


def test_two_class_2d_overlaps(problems):
    """'overlapping classes so that guidance visibly matters': at t = 1 both classes have posterior
    probability >= 0.05 somewhere on a grid, and the class-conditional means differ."""
    L = problems["two-class-2d"]
    path = refcfg.GMMPath(L, "linear")
    g = np.stack(np.meshgrid(np.linspace(-4, 4, 41), np.linspace(-4, 4, 41)), -1).reshape(-1, 2)
    p = np.exp(path.class_log_probs(g, 1.0))
    assert np.any(np.all(p >= 0.05, axis=1))
    m = [c.weights @ c.means for c in L.classes]
    assert np.linalg.norm(m[0] - m[1]) > 0.5


def test_problems_usable_by_path(problems):
    """Every problem gives finite fields at t in {0, 0.5, 1} (point-mass problems: t = 1 - 1e-9, as
    their velocity and density diverge at t = 1), and log p_1 equals scipy's (small ones)."""
    for name, L in problems.items():
        path = refcfg.GMMPath(L, "linear")
        x, _ = L.sample(4, seed=1)
        t_last = 1.0 - 1e-9 if np.any(L.marginal.point_mass) else 1.0
        for t in (0.0, 0.5, t_last):
            assert np.all(np.isfinite(path.velocity(x, t))), (name, t)
            assert np.all(np.isfinite(path.log_prob(x, t))), (name, t)
        if name in ("two-class-2d", "mit-symmetric", "gauss-1d"):
            m = L.marginal
            assert (
                rel_err(path.log_prob(x, 1.0), gmm_log_prob(x, m.weights, m.means, m.covs)) < 1e-12
            )


def test_problem_construction_is_deterministic(problems):
    """Seeded constructions give the same law every call."""
    for name in ("highdim", "two-class-2d"):
        a, b = problems[name], refcfg.problem(name)
        np.testing.assert_array_equal(a.marginal.means, b.marginal.means)
        np.testing.assert_array_equal(a.marginal.eigvals, b.marginal.eigvals)
        np.testing.assert_array_equal(a.marginal.weights, b.marginal.weights)


# ------------------------------------------------------------------ TOML files

GOOD = textwrap.dedent("""
    [problem]
    name = "toy"
    class_probs = [0.25, 0.75]

    [[classes]]
    weights = [0.5, 0.5]
    means = [[-1.0, 0.0], [1.0, 0.5]]
    covs = [[[1.0, 0.2], [0.2, 0.5]], [[0.5, 0.0], [0.0, 0.8]]]

    [[classes]]
    weights = [1.0]
    means = [[0.0, 2.0]]
    covs = [0.3]
""")


def _write(tmp_path, text, name="p.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_good_toml(tmp_path):
    p = _write(tmp_path, GOOD)
    L = load_problem(p)
    assert L.n_classes == 2 and L.d == 2
    np.testing.assert_allclose(L.class_probs, [0.25, 0.75])
    x = np.random.default_rng(0).standard_normal((5, 2))
    w = np.array([0.125, 0.125, 0.75])
    mu = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, 2.0]])
    C = np.array([[[1.0, 0.2], [0.2, 0.5]], [[0.5, 0.0], [0.0, 0.8]], [[0.3, 0], [0, 0.3]]])
    assert rel_err(L.marginal.log_prob(x), gmm_log_prob(x, w, mu, C)) < 1e-13
    # also through problem(path) and str path
    L2 = refcfg.problem(str(p))
    np.testing.assert_allclose(L2.marginal.weights, L.marginal.weights)


def test_toml_class_probs_default_uniform(tmp_path):
    text = GOOD.replace("class_probs = [0.25, 0.75]\n", "")
    L = load_problem(_write(tmp_path, text))
    np.testing.assert_allclose(L.class_probs, [0.5, 0.5])


BAD_TOML = [
    # (id, replacement (old, new) in GOOD, regex naming the field)
    (
        "class-probs-sum",
        ("class_probs = [0.25, 0.75]", "class_probs = [0.25, 0.25]"),
        r"class_probs",
    ),
    (
        "class-probs-length",
        ("class_probs = [0.25, 0.75]", "class_probs = [0.2, 0.3, 0.5]"),
        r"class_probs",
    ),
    ("weights-sum", ("weights = [0.5, 0.5]", "weights = [0.5, 0.6]"), r"classes\[0\].*weights"),
    ("weights-negative", ("weights = [1.0]", "weights = [-1.0]"), r"classes\[1\].*weights"),
    ("weights-string", ("weights = [1.0]", 'weights = ["one"]'), r"classes\[1\].*weights"),
    (
        "means-ragged",
        ("means = [[-1.0, 0.0], [1.0, 0.5]]", "means = [[-1.0, 0.0], [1.0]]"),
        r"classes\[0\].*means",
    ),
    ("covs-not-pd", ("covs = [0.3]", "covs = [-0.3]"), r"classes\[1\].*covs"),
    (
        "covs-asymmetric",
        ("[[1.0, 0.2], [0.2, 0.5]]", "[[1.0, 0.2], [0.9, 0.5]]"),
        r"classes\[0\].*covs",
    ),
    ("covs-shape", ("covs = [0.3]", "covs = [0.3, 0.4, 0.5]"), r"classes\[1\].*covs"),
    ("missing-covs", ("covs = [0.3]\n", ""), r"classes\[1\].*covs"),
    ("missing-means", ("means = [[0.0, 2.0]]\n", ""), r"classes\[1\].*means"),
    (
        "unknown-class-field",
        ("covs = [0.3]", "covs = [0.3]\ncovariance = 1"),
        r"classes\[1\].*covariance",
    ),
    ("unknown-problem-field", ('name = "toy"', 'name = "toy"\nseed = 3'), r"seed"),
    ("unknown-top-level", ("[problem]", "colour = 1\n[problem]"), r"colour"),
    ("mismatched-d", ("means = [[0.0, 2.0]]", "means = [[0.0, 2.0, 1.0]]"), r"classes"),
]


@pytest.mark.parametrize("repl,pattern", [c[1:] for c in BAD_TOML], ids=[c[0] for c in BAD_TOML])
def test_bad_toml_field_named(tmp_path, repl, pattern):
    old, new = repl
    assert old in GOOD
    p = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ValueError, match=pattern):
        load_problem(p)


HOSTILE_TOML = [
    # (id, replacement (old, new) in GOOD, regex: the file is named, then the field and the cause)
    (
        "weight-as-string",
        ("weights = [1.0]", 'weights = ["1.0"]'),
        r"p\.toml.*classes\[1\]\.weights\[0\] must be a number, got a string",
    ),
    (
        "weight-as-boolean",
        ("weights = [1.0]", "weights = [true]"),
        r"p\.toml.*classes\[1\]\.weights\[0\] must be a number, got a boolean",
    ),
    (
        "class-prob-as-boolean",
        ("class_probs = [0.25, 0.75]", "class_probs = [false, true]"),
        r"p\.toml.*problem\.class_probs\[0\] must be a number, got a boolean",
    ),
    (
        "mean-nan",
        ("means = [[0.0, 2.0]]", "means = [[nan, 2.0]]"),
        r"p\.toml.*classes\[1\]\.means\[0\]\[0\] must be a finite",
    ),
    (
        "mean-int-beyond-float64",
        ("means = [[0.0, 2.0]]", "means = [[1" + "0" * 400 + ", 2.0]]"),
        r"p\.toml.*classes\[1\]\.means\[0\]\[0\] must be a finite float64 number",
    ),
    (
        "variance-1e300",
        ("covs = [0.3]", "covs = [1e300]"),
        r"p\.toml.*classes\[1\]\.covs has a variance .*1e\+300.*overflow",
    ),
    (
        "mean-1e60",
        ("means = [[0.0, 2.0]]", "means = [[1e60, 2.0]]"),
        r"p\.toml.*classes\[1\]\.means has an entry of size 1e\+60",
    ),
    (
        "deep-array",
        ("covs = [0.3]", "covs = " + "[" * 3000 + "0.3" + "]" * 3000),
        r"p\.toml.* nests arrays or tables too deeply",
    ),
    (
        "nested-40",
        ("covs = [0.3]", "covs = " + "[" * 40 + "0.3" + "]" * 40),
        r"p\.toml.* nests arrays or tables \d+ levels deep; at most 32",
    ),
]


@pytest.mark.parametrize(
    "repl,pattern", [c[1:] for c in HOSTILE_TOML], ids=[c[0] for c in HOSTILE_TOML]
)
def test_hostile_toml_refused_naming_file_and_field(tmp_path, repl, pattern):
    old, new = repl
    assert old in GOOD
    with pytest.raises(ValueError, match=pattern):
        load_problem(_write(tmp_path, GOOD.replace(old, new, 1)))


def test_non_utf8_file_named_with_the_offending_byte(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes(GOOD.replace('"toy"', '"caf\u00e9"').encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.toml' is not UTF-8 text \(byte 0xe9 at offset"):
        load_problem(p)


def test_point_mass_covariance_is_accepted_as_documented(tmp_path):
    # docs/problems.md: covs = [0.0] is a point mass at the mean (as from_points builds)
    L = load_problem(_write(tmp_path, GOOD.replace("covs = [0.3]", "covs = [0.0]", 1)))
    assert L.classes[1].point_mass.tolist() == [True]
    np.testing.assert_array_equal(
        L.classes[1].sample(3, np.random.default_rng(0)), [[0.0, 2.0]] * 3
    )


def test_file_too_large_for_the_memory_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1M")
    with pytest.raises(ValueError, match=r"reading problem file .*p\.toml.*lower the size"):
        load_problem(_write(tmp_path, GOOD + "#" * 100_000 + "\n"))


def test_bad_toml_syntax_and_no_classes(tmp_path):
    with pytest.raises(ValueError, match="TOML|toml"):
        load_problem(_write(tmp_path, "[problem\nname = 1", "bad.toml"))
    with pytest.raises(ValueError, match="classes"):
        load_problem(_write(tmp_path, '[problem]\nname = "empty"\n', "empty.toml"))


def test_tree_classes_grow_in_opposite_directions(problems):
    """arXiv 2406.02507 App. C: two trees from a common root, one per class, growing in opposite
    directions; the class means lie on opposite sides of the root and the classes barely overlap."""
    L = problems["tree"]
    m0 = L.classes[0].weights @ L.classes[0].means
    m1 = L.classes[1].weights @ L.classes[1].means
    assert np.dot(m0, m1) < 0
    x0, _ = L.sample(300, seed=0, y=0)
    path = refcfg.GMMPath(L, "linear")
    # at t = 1 a point of class 0 is classified as class 0 with high probability on average
    assert np.mean(np.exp(path.class_log_probs(x0, 1.0)[:, 0])) > 0.9


@pytest.mark.parametrize("name", ["tree", "highdim", "two-class-2d"])
def test_named_problem_fields_vs_oracle(problems, name):
    """The path fields of the big named problems equal explicit Gaussian conditioning (tests/_oracles,
    scipy + np.linalg.solve) at t in {0.3, 0.9, 1}: rel <= 1e-9 (the tree's thin components have
    covariance condition numbers up to ~1e4, which bounds both computations' agreement)."""
    from _oracles import PathOracle, schedule_formula

    L = problems[name]
    m = L.marginal
    path = refcfg.GMMPath(L, "linear")
    x, _ = L.sample(3, seed=5)
    for t in (
        (0.9,) if name == "tree" else (0.3, 0.9, 1.0)
    ):  # the tree's 2032-component oracle is slow
        o = PathOracle(m.weights, m.means, m.covs, schedule_formula("linear", t))
        assert rel_err(path.log_prob(x, t), o.log_prob(x), floor=1e-3) < 1e-9, t
        assert rel_err(path.velocity(x, t), o.velocity(x), floor=1e-3) < 1e-9, t
        assert rel_err(path.score(x, t), o.score(x), floor=1e-3) < 1e-9, t


# ----------------------------------------------------------------------------------------------
# the one resolver: refcfg.problems.resolve / resolve_schedule
# ----------------------------------------------------------------------------------------------

from refcfg.problems import resolve, resolve_schedule  # noqa: E402

TOML_1D = textwrap.dedent("""
    [[classes]]
    weights = [1.0]
    means = [[0.5]]
    covs = [[2.0]]
""")


def test_resolve_every_problem_form(tmp_path):
    t = 0.4
    x = np.array([[0.3, -0.2], [1.1, 0.7]])
    by_name = resolve("two-class-2d")
    assert by_name.name == "two-class-2d" and by_name.schedule.name == "linear"
    mix = refcfg.problem("two-class-2d")
    ref = refcfg.GMMPath(mix, "cosine").velocity(x, t)
    for given in ("two-class-2d", mix, refcfg.GMMPath(mix, "linear")):
        got = resolve(given, "cosine")
        assert got.schedule.name == "cosine"
        np.testing.assert_allclose(got.path.velocity(x, t), ref, rtol=1e-13, atol=0)
    # a GMM becomes a one-class LabeledGMM; objects have no name
    g = mix.class_gmm(0)
    r = resolve(g)
    assert r.name is None and r.label == "custom" and r.mixture.n_classes == 1
    # a GMMPath keeps its schedule when none is given
    p = refcfg.GMMPath(mix, "sqrt")
    assert resolve(p).path is p
    # a .toml file, as str and as Path
    f = _write(tmp_path, TOML_1D)
    for given in (f, str(f)):
        r = resolve(given)
        assert r.name == str(f) and r.mixture.d == 1
        assert r.mixture.class_gmm(0).means[0, 0] == 0.5


def test_resolve_schedule_forms():
    s = resolve_schedule("polynomial:n=3")
    assert s.name == "polynomial" and s.params == {"n": 3.0}
    assert s.alpha(0.5) == 0.5**3
    assert resolve_schedule(None).name == "linear"
    assert resolve_schedule(None, default="cosine").name == "cosine"
    assert resolve_schedule(s) is s
    assert resolve("gauss-1d", "polynomial:n=3").schedule == s


@pytest.mark.parametrize(
    "problem, schedule, exc, match",
    [
        ("nope", None, ValueError, "unknown problem 'nope'"),
        (3.0, None, TypeError, "problem must be"),
        ("two-class-2d", "nope", ValueError, "unknown schedule 'nope'"),
        ("two-class-2d", "polynomial:n", ValueError, "key=value"),
        ("two-class-2d", "polynomial:m=2", ValueError, "bad parameters"),
        ("two-class-2d", 2.0, TypeError, "schedule must be"),
        ("/nonexistent/p.toml", None, ValueError, "does not exist"),
    ],
)
def test_resolve_rejects_bad_input(problem, schedule, exc, match):
    with pytest.raises(exc, match=match):
        resolve(problem, schedule)
