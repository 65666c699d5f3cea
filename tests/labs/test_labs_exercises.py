"""Every grader passes a correct function, rejects its stub ("not written yet") and rejects typical
mistakes with the diagnosis that names them (code and words of the one sentence).

The correct functions here are written from the formulas (or are refcfg's exact fields, where the
grader must pass them); the mistakes are the ones students make. Tolerance of the graders:
||got - exact|| <= 1e-9 + 1e-6 ||exact|| per row, float64."""

from __future__ import annotations

import numpy as np
import pytest

import refcfg
from refcfg import NULL
from refcfg.labs import EXERCISES, grade
from refcfg.labs.exercises import NEAR_ONE, NEAR_ZERO, POINTS, point_mass_mixture

MIX = refcfg.problem("two-class-2d")
PATH = refcfg.GMMPath(MIX, "linear")
S = PATH.schedule


def col(q):
    return np.asarray(q)[:, None]


def stub(*args):
    raise NotImplementedError("stub")


# ----------------------------------------------------------------------- correct functions


def cosine_schedule(t):
    return (
        np.sin(np.pi * t / 2),
        np.sin(np.pi * (1 - t) / 2),
        np.pi / 2 * np.cos(np.pi * t / 2),
        -np.pi / 2 * np.sin(np.pi * t / 2),
    )


def sample_path(z, t, eps):
    return col(S.alpha(t)) * z + col(S.beta(t)) * eps


def conditional_velocity(x, t, z):
    v = S.values(t)
    return (col(v.dalpha) - col(v.dbeta) * col(v.alpha) / col(v.beta)) * z + col(
        v.dbeta / v.beta
    ) * x


def conditional_score(x, t, z):
    return -(x - col(S.alpha(t)) * z) / col(S.beta(t)) ** 2


def velocity(x, t, y):
    return PATH.velocity(x, t, y)


def score(x, t, y):
    return PATH.score(x, t, y)


def velocity_from_score(s, x, t):
    v = S.values(t)
    a = v.beta**2 * v.dalpha / v.alpha - v.dbeta * v.beta
    return col(a) * s + col(v.dalpha / v.alpha) * x


def cfm_loss(u, z, t, eps):
    v = S.values(t)
    x = col(v.alpha) * z + col(v.beta) * eps
    return np.mean(np.sum((u(x, t) - (col(v.dalpha) * z + col(v.dbeta) * eps)) ** 2, axis=1))


def drop_labels(y, u, eta):
    return np.where(u < eta, NULL, y)


def classifier_score(x, t, y):
    return PATH.score(x, t, y) - PATH.score(x, t)


def classifier_guidance(x, t, y, w):
    return PATH.velocity(x, t) + w * col(S.a(t)) * classifier_score(x, t, y)


def cfg(x, t, y, w):
    return (1 - w) * PATH.velocity(x, t) + w * PATH.velocity(x, t, y)


def cfg_from_model(model, x, t, y, w):
    return (1 - w) * model(x, t, np.full(len(x), NULL)) + w * model(x, t, y)


def tilted_log_density(x, y, w):
    return w * MIX.class_gmm(y).log_prob(x) + (1 - w) * MIX.marginal.log_prob(x) + 12.5


def sde_step(x, t, h, u, s, sigma, noise):
    return x + h * (u + sigma**2 / 2 * s) + sigma * np.sqrt(h) * noise


CORRECT = {
    "cosine_schedule": cosine_schedule,
    "sample_path": sample_path,
    "conditional_velocity": conditional_velocity,
    "conditional_score": conditional_score,
    "velocity": velocity,
    "score": score,
    "velocity_from_score": velocity_from_score,
    "cfm_loss": cfm_loss,
    "drop_labels": drop_labels,
    "classifier_score": classifier_score,
    "classifier_guidance": classifier_guidance,
    "cfg": cfg,
    "cfg_from_model": cfg_from_model,
    "tilted_log_density": tilted_log_density,
    "sde_step": sde_step,
}


def test_every_exercise_has_a_correct_function_here():
    assert set(CORRECT) == set(EXERCISES)


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_correct_function_passes(exercise):
    g = grade(CORRECT[exercise], exercise)
    assert g.passed, str(g)
    assert g.code == "" and str(g).startswith(f"PASS {exercise}: correct")


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_stub_is_rejected_as_not_written(exercise):
    g = grade(stub, exercise)
    assert not g.passed
    assert g.code == "not_implemented", str(g)
    assert str(g).startswith(f"FAIL {exercise}: not written yet: `stub` raises NotImplementedError")


# ----------------------------------------------------------------------------- mistakes


def m_schedule_chain_rule(t):
    a, b, _, _ = cosine_schedule(t)
    return a, b, np.cos(np.pi * t / 2), -np.sin(np.pi * t / 2)


def m_schedule_swapped(t):
    a, b, da, db = cosine_schedule(t)
    return b, a, db, da


def m_sample_variance(z, t, eps):
    return col(S.alpha(t)) * z + col(S.beta(t)) ** 2 * eps


def m_sample_swapped(z, t, eps):
    return col(S.beta(t)) * z + col(S.alpha(t)) * eps


def _diffusion_velocity(x, t, z):
    # a code written for t = 0 data, t = 1 noise, called with the notes' t (inf at t = 0)
    v = S.values(1.0 - t)
    with np.errstate(all="ignore"):
        return -(
            (col(v.dalpha) - col(v.dbeta) * col(v.alpha) / col(v.beta)) * z
            + col(v.dbeta / v.beta) * x
        )


def m_cond_flow_velocity_at_x(x, t, z):
    v = S.values(t)
    return col(v.dalpha) * z + col(v.dbeta) * x  # d/dt psi_t(x0|z), with x in place of x0


def m_cond_score_std(x, t, z):
    return -(x - col(S.alpha(t)) * z) / col(S.beta(t))


def m_cond_score_sign(x, t, z):
    return (x - col(S.alpha(t)) * z) / col(S.beta(t)) ** 2


def m_velocity_labels_ignored(x, t, y):
    return PATH.velocity(x, t)


def m_score_is_velocity(x, t, y):
    return PATH.velocity(x, t, y)


def m_ab_swapped(s, x, t):
    v = S.values(t)
    a = v.beta**2 * v.dalpha / v.alpha - v.dbeta * v.beta
    return col(v.dalpha / v.alpha) * s + col(a) * x


def m_loss_target_eps(u, z, t, eps):
    v = S.values(t)
    x = col(v.alpha) * z + col(v.beta) * eps
    return np.mean(np.sum((u(x, t) - eps) ** 2, axis=1))


def m_loss_mean_all(u, z, t, eps):
    v = S.values(t)
    x = col(v.alpha) * z + col(v.beta) * eps
    return np.mean((u(x, t) - (col(v.dalpha) * z + col(v.dbeta) * eps)) ** 2)


def m_dropout_inverted(y, u, eta):
    return np.where(u < eta, y, NULL)  # keeps the label with probability eta


def m_classifier_sign(x, t, y):
    return PATH.score(x, t) - PATH.score(x, t, y)


def m_cg_missing_a(x, t, y, w):  # the seed's handwritten line, without a_t
    return PATH.velocity(x, t) + w * classifier_score(x, t, y)


def m_cg_ho_salimans(x, t, y, w):
    return PATH.velocity(x, t) + (1 + w) * col(S.a(t)) * classifier_score(x, t, y)


def m_cfg_ho_salimans(x, t, y, w):
    return (1 + w) * PATH.velocity(x, t, y) - w * PATH.velocity(x, t)


def m_cfg_swapped(x, t, y, w):
    return (1 - w) * PATH.velocity(x, t, y) + w * PATH.velocity(x, t)


def m_model_label_everywhere(model, x, t, y, w):
    return (1 - w) * model(x, t, y) + w * model(x, t, y)


def m_tilted_convention(x, y, w):
    return (1 + w) * MIX.class_gmm(y).log_prob(x) - w * MIX.marginal.log_prob(x)


def m_sde_noise_twice(x, t, h, u, s, sigma, noise):
    return x + h * (u + sigma**2 / 2 * s) + 2 * sigma * np.sqrt(h) * noise


def m_sde_missing_half(x, t, h, u, s, sigma, noise):
    return x + h * (u + sigma**2 * s) + sigma * np.sqrt(h) * noise


MISTAKES = [
    # (exercise, function, options, code, words of the sentence)
    ("cosine_schedule", m_schedule_chain_rule, {}, "chain_rule", "chain-rule factor pi/2"),
    ("cosine_schedule", m_schedule_swapped, {}, "alpha_beta_swapped", "alpha_0 = 0 and beta_0 = 1"),
    ("sample_path", m_sample_variance, {}, "variance_as_std", "variance"),
    ("sample_path", m_sample_swapped, {}, "alpha_beta_swapped", "swapped"),
    ("conditional_velocity", _diffusion_velocity, {}, "time_reversed", "time convention reversed"),
    (
        "conditional_velocity",
        m_cond_flow_velocity_at_x,
        {},
        "flow_velocity_at_x",
        "instead of at x_0",
    ),
    ("conditional_score", m_cond_score_sign, {}, "negated", "minus the exact score"),
    ("conditional_score", m_cond_score_std, {}, "std_for_variance", "divides by beta_t, the"),
    ("velocity", m_velocity_labels_ignored, {}, "labels_ignored", "labels ignored"),
    ("score", m_score_is_velocity, {}, "kind", "the exact velocity, not the score"),
    ("velocity_from_score", m_ab_swapped, {}, "ab_swapped", "a_t and b_t swapped"),
    ("cfm_loss", m_loss_target_eps, {}, "target_eps", "target is eps"),
    ("cfm_loss", m_loss_mean_all, {}, "mean_over_coordinates", "divided by d"),
    ("drop_labels", m_dropout_inverted, {}, "inverted_dropout", "inverted"),
    ("classifier_score", m_classifier_sign, {}, "classifier_sign", "sign is flipped"),
    ("classifier_guidance", m_cg_missing_a, {"w": 3.0}, "missing_a_t", "factor a_t missing"),
    ("classifier_guidance", m_cg_ho_salimans, {"w": 3.0}, "w_convention", "w' = w + 1 = 4"),
    ("cfg", m_cfg_ho_salimans, {"w": 3.0}, "w_convention", "(1 + w) u(x|y) - w u(x|null)"),
    (
        "cfg",
        m_cfg_swapped,
        {"w": 3.0},
        "cond_uncond_swapped",
        "conditional and unconditional swapped",
    ),
    ("cfg_from_model", m_model_label_everywhere, {"w": 3.0}, "no_guidance", "guidance not applied"),
    (
        "tilted_log_density",
        m_tilted_convention,
        {},
        "w_convention",
        "(1 + w) log p(x|y) - w log p(x)",
    ),
    ("sde_step", m_sde_noise_twice, {}, "noise_twice", "noise enters twice"),
    ("sde_step", m_sde_missing_half, {}, "missing_half", "sigma^2 / 2"),
]


@pytest.mark.parametrize(
    "exercise, fn, options, code, words", MISTAKES, ids=[f"{m[0]}-{m[3]}" for m in MISTAKES]
)
def test_typical_mistake_is_named(exercise, fn, options, code, words):
    g = grade(fn, exercise, **options)
    assert not g.passed
    assert g.code == code, str(g)
    assert words in g.sentence, str(g)
    assert "\n" not in g.sentence and g.sentence.endswith("."), g.sentence


def test_every_exercise_has_a_tested_mistake():
    assert {m[0] for m in MISTAKES} == set(EXERCISES)


# ----------------------------------------------------------------- endpoints and edge cases


def test_field_graders_compare_at_both_endpoints_or_say_why_not():
    g = grade(cfg, "cfg")
    assert [s.t for s in g.report.per_t][0] == 0.0 and g.report.per_t[-1].t == 1.0
    g = grade(conditional_velocity, "conditional_velocity")
    ts = [s.t for s in g.report.per_t]
    assert ts[0] == 0.0 and ts[-1] == NEAR_ONE and "t = 1 left out" in g.where
    g = grade(velocity_from_score, "velocity_from_score")
    ts = [s.t for s in g.report.per_t]
    assert ts[0] == NEAR_ZERO and ts[-1] == 1.0 and "t = 0 left out" in g.where


def test_an_error_only_at_an_endpoint_is_caught():
    """A field wrong only at t = 1 (and right inside) fails: the endpoint is compared."""

    def wrong_at_one(x, t, y, w):
        out = cfg(x, t, y, w)
        return np.where(col(t) == 1.0, 0.0, out)

    g = grade(wrong_at_one, "cfg")
    assert not g.passed and "t = 1" in str(g.report)


def test_the_naive_classifier_guidance_is_not_finite_at_t0():
    """Why the classifier-guidance grader leaves t = 0 out: a_t is infinite there."""
    x = np.zeros((3, 2)) + 0.5
    with np.errstate(all="ignore"):
        out = PATH.velocity(x, 0.0) + 3.0 * S.a(0.0, strict=False) * PATH.classifier_score(
            x, 0.0, 0
        )
    assert not np.all(np.isfinite(out))


def test_point_mass_mixture_gives_the_conditional_field():
    """The conditional exercises are checked through point masses: u_t(x|y=k) = u_t(x|z_k)."""
    path = refcfg.GMMPath(point_mass_mixture(), "linear")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2))
    y = np.arange(6) % len(POINTS)
    for t in (0.0, 0.3, 0.9):
        tt = np.full(6, t)
        np.testing.assert_allclose(
            path.velocity(x, tt, y), conditional_velocity(x, tt, POINTS[y]), rtol=1e-12, atol=1e-12
        )


def test_student_errors_are_reported_not_raised():
    def raises(x, t, y, w):
        raise KeyError("oops")

    def returns_none(z, t, eps):
        return None

    def wrong_shape(z, t, eps):
        return z[:, :1]

    g = grade(raises, "cfg")
    assert not g.passed and g.code == "raised" and "KeyError" in g.sentence
    g = grade(returns_none, "sample_path")
    assert g.code == "no_return" and "return" in g.sentence
    g = grade(wrong_shape, "sample_path")
    assert g.code == "shape" and "(32, 1)" in g.sentence


def test_an_unknown_error_is_unexplained_not_misnamed():
    def off(z, t, eps):
        return sample_path(z, t, eps) * 1.01

    g = grade(off, "sample_path")
    assert g.code == "unexplained" and "matches none of the known mistakes" in g.sentence


def test_bad_grader_arguments_raise():
    with pytest.raises(ValueError, match="exercise must be one of"):
        grade(cfg, "cgf")
    with pytest.raises(TypeError, match="fn must be"):
        grade(3, "cfg")
    with pytest.raises(ValueError, match="w must be finite"):
        grade(cfg, "cfg", w=float("nan"))
    with pytest.raises(ValueError, match="n must be"):
        grade(sample_path, "sample_path", n=0)
    with pytest.raises(ValueError, match="h must be > 0"):
        grade(sde_step, "sde_step", h=0.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        grade(sde_step, "sde_step", sigma=-1.0)
    with pytest.raises(ValueError, match="y must be in 0..1"):
        grade(tilted_log_density, "tilted_log_density", y=5)
    with pytest.raises(ValueError, match="y must be one class"):
        grade(tilted_log_density, "tilted_log_density", y=None)
    with pytest.raises(ValueError, match="n must be >= 2"):
        grade(tilted_log_density, "tilted_log_density", n=1)
    with pytest.raises(ValueError, match="problem|unknown"):
        grade(cfg, "cfg", problem="no-such-problem")


# ------------------------------------------------------------------ review findings, each a case


def test_a_student_who_changes_the_inputs_in_place_gets_the_right_diagnosis():
    """The mistakes are worked out on the case's own arrays, not on those the student changed."""

    def missing_half_in_place(x, t, h, u, s, sigma, noise):
        x += h * (u + sigma**2 * s) + sigma * np.sqrt(h) * noise
        return x

    def correct_in_place(x, t, h, u, s, sigma, noise):
        x += h * (u + sigma**2 / 2 * s) + sigma * np.sqrt(h) * noise
        return x

    g = grade(missing_half_in_place, "sde_step")
    assert g.code == "missing_half", str(g)
    assert grade(correct_in_place, "sde_step").passed


def test_a_tilted_log_density_returned_as_a_column_passes():
    def as_column(x, y, w):
        return tilted_log_density(x, y, w)[:, None]

    g = grade(as_column, "tilted_log_density")
    assert g.passed, str(g)
    g = grade(lambda x, y, w: m_tilted_convention(x, y, w)[:, None], "tilted_log_density")
    assert g.code == "w_convention", str(g)


def test_bad_input_names_the_argument_before_any_work():
    with pytest.raises(TypeError, match="exercise must be the exercise's name.*got \\['cfg'\\]"):
        grade(cfg, ["cfg"])
    # a job too large for memory is refused (naming n) by the compare-cases and the field graders
    for exercise in (
        "sample_path",
        "cfg",
        "conditional_velocity",
        "drop_labels",
        "sde_step",
        "tilted_log_density",
        "cosine_schedule",
    ):
        with pytest.raises(ValueError, match="lower n"):
            grade(CORRECT[exercise], exercise, n=10**12)


def test_the_cfm_loss_grader_works_in_every_dimension():
    path = refcfg.GMMPath(refcfg.problem("highdim"), "linear")
    assert path.d == 64
    g = grade(cfm_loss, "cfm_loss", problem="highdim")
    assert g.passed, str(g)
    assert grade(m_loss_mean_all, "cfm_loss", problem="highdim").code == "mean_over_coordinates"


def _listed_mistakes():
    """(exercise, Mistake) for every mistake a grader lists, read off the graders themselves: each
    is called with a function that is off by 1 % (explained by none of them), which makes it compare
    against its list."""
    import refcfg.labs.exercises as ex

    found = []
    original = ex.compare_cases

    def recording(exercise, fn, cases, mistakes, **kwargs):
        found.extend((exercise, m) for m in mistakes)
        return original(exercise, fn, cases, mistakes, **kwargs)

    def off(f):
        def g(*a):
            r = f(*a)
            return tuple(1.01 * np.asarray(v) for v in r) if isinstance(r, tuple) else 1.01 * r

        return g

    ex.compare_cases = recording
    try:
        for exercise, f in CORRECT.items():
            grade(off(f), exercise)
    finally:
        ex.compare_cases = original
    return found


LISTED = _listed_mistakes()


def test_the_graders_list_mistakes():
    assert len(LISTED) >= 30 and len({e for e, _ in LISTED}) >= 9


@pytest.mark.parametrize("exercise, mistake", LISTED, ids=[f"{e}-{m.code}" for e, m in LISTED])
def test_each_listed_mistake_is_named_when_it_is_the_answer(exercise, mistake):
    """A student whose function is a listed mistake's own formula gets that mistake's sentence (a
    mistake that another one, listed before it, always equals could never be named)."""
    g = grade(mistake.f, exercise)
    assert not g.passed and g.code == mistake.code, str(g)
    assert g.sentence == mistake.sentence


@pytest.mark.parametrize(
    "schedule, code",
    [
        ("linear", "alpha_beta_swapped"),
        ("cosine", "alpha_beta_swapped"),
        ("vp", "time_reversed"),
        ("sqrt", "time_reversed"),
    ],
)
def test_time_reversed_path_is_named_by_the_one_mistake_it_equals(schedule, code):
    sched = refcfg.GMMPath(MIX, schedule).schedule

    def reversed_time(z, t, eps):
        return col(sched.alpha(1.0 - t)) * z + col(sched.beta(1.0 - t)) * eps

    g = grade(reversed_time, "sample_path", schedule=schedule)
    assert g.code == code, str(g)
    assert ("the same as reversing time" in g.sentence) == (code == "alpha_beta_swapped")
    assert "diffusion convention" in g.sentence


def test_a_field_that_is_not_numeric_is_a_shape_verdict_on_both_routes():
    """The same code whichever route compares (check_field for the fields, the case comparison for
    the others), and the verdict says where the function stopped."""

    def text_field(x, t, y, w):
        return "not an array"

    def text_path(z, t, eps):
        return "not an array"

    field, path = grade(text_field, "cfg"), grade(text_path, "sample_path")
    assert field.code == path.code == "shape", (field, path)
    assert "which is not" in field.sentence and field.sentence.endswith(".")
    assert field.where == "stopped at t = 0"
    g = grade(lambda x, t, y, w: None, "cfg")
    assert g.code == "no_return" and g.where == "stopped at t = 0"
    g = grade(lambda x, t, y, w: 1 / 0, "cfg")
    assert g.code == "raised" and "ZeroDivisionError" in g.sentence
