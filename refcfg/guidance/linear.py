"""Linear guidance rules: fields that are linear combinations of other fields' predictions.

Guidance weight convention (notes eq. 65): u~ = w u(x|y) + (1 - w) u(x|null) = u + w (c - u); w = 1 is
no guidance, w = 0 is unconditional. Ho and Salimans' (1 + omega) c - omega u maps to w = 1 + omega;
diffusers' ``guidance_scale`` in its default formulation (``uncond + scale * (cond - uncond)``) is w
itself, and with ``use_original_formulation=True`` it is omega (w = 1 + guidance_scale).

Every rule here is lowerable (``refcfg.guidance.base.linear_terms``) when its input fields are:

- ``GuidedField`` / ``guided``: w a + (1 - w) b for any two fields (the one guided-field class: its
  methods evaluate the combination with ``refcfg.combine``); ``CFGField`` (eq. 65) and
  ``ClassifierGuidedField`` (eq. 62; with the exact Bayes classifier it is the same combination,
  w u(x|y) + (1 - w) u(x), eqs. 59-62) on one ``GMMPath``.
- ``LinearRule`` and its rules, built on a ``cond`` and a ``ref`` field with a scalar weight w and a
  weight profile g(t): the field is ((1 - g) + w g) cond + (1 - w) g ref, i.e. CFG with the weight
  w(t) = (1 - g(t)) + w g(t): a ``GuidedField`` whose weight depends on t. g = 1: ``PlainCFG`` and ``Autoguidance`` (ref = an exact weaker path,
  ``weaker_mixture``); g = the indicator of a noise interval: ``GuidanceInterval``; g = a weight
  profile: ``ScheduledCFG``. The lowering carries g as time factors of the two terms.

Adding a linear rule: a ``LinearRule`` subclass here with ``name`` and ``profile(t)`` (the rest --
the NumPy velocity, score, x0, eps and the lowering -- follows from the profile), plus its builder in
``registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import (
    _describe,
    as_float_array,
    as_guidance_weight,
    as_label,
    as_prediction_pair,
    as_real,
    as_row_times,
    as_scalar_weight,
    as_weight_rows,
)
from ..combine import combine
from ..paths import as_path, register_field_classes
from .base import ExactField, Field, LinearTerm, Scaled
from .spaces import RuleField

__all__ = [
    "GuidedField",
    "CFGField",
    "ClassifierGuidedField",
    "guided",
    "cfg_combine",
    "noise_level",
    "weight_profile",
    "weight_schedule",
    "LinearRule",
    "PlainCFG",
    "GuidanceInterval",
    "ScheduledCFG",
    "Autoguidance",
    "weaker_mixture",
]


class GuidedField(Field):
    """w a + (1 - w) b for two fields a ("conditional") and b ("unconditional", or any weaker field
    as in autoguidance). velocity, score, x0, eps and divergence combine linearly; each is available
    when both fields provide it. Both fields must share d and, when they declare one, the schedule."""

    def __init__(self, a, b, w):
        for name, f in (("a", a), ("b", b)):
            if not callable(getattr(f, "velocity", None)):
                raise TypeError(
                    f"{name} must be a field with a velocity(x, t) method, got {_describe(f)}"
                )
        da, db = getattr(a, "d", None), getattr(b, "d", None)
        if da is not None and db is not None and da != db:
            raise ValueError(f"fields a and b must have the same dimension, got {da} and {db}")
        sa, sb = getattr(a, "schedule", None), getattr(b, "schedule", None)
        if sa is not None and sb is not None and sa != sb:
            raise ValueError(
                f"fields a and b must share the schedule (x_t must mean the same), got "
                f"{sa!r} and {sb!r}"
            )
        self.a, self.b, self.w = a, b, as_guidance_weight(w)
        self.d = da if da is not None else db
        self.schedule = sa if sa is not None else sb

    # the combination below is part of the mathematics that ``_terms`` vouches for
    _lowering_methods: tuple[str, ...] = ("_linear", "_weights")

    def __repr__(self) -> str:
        return f"GuidedField(w={self.w!r}, a={self.a!r}, b={self.b!r})"

    def _terms(self):
        return [Scaled(self.a, self.w), Scaled(self.b, 1.0 - self.w)]

    def _weights(self, x, t):
        """(x, the weight of a at (x, t): a float or one per row)."""
        w = self.w
        if np.ndim(w) != 0 and w.shape[0] != np.shape(x)[0]:
            raise ValueError(
                f"w has shape {w.shape} but x implies a float or shape ({np.shape(x)[0]},)"
            )
        return x, w

    def _linear(self, name, x, t):
        x, w = self._weights(x, t)
        return _combined(self.a, self.b, name, x, t, w)

    def velocity(self, x, t):
        """w u_a + (1 - w) u_b."""
        return self._linear("velocity", x, t)

    def score(self, x, t):
        """w score_a + (1 - w) score_b (the guided score; eq. 41 maps it to the guided velocity)."""
        return self._linear("score", x, t)

    def x0(self, x, t):
        """w x0_a + (1 - w) x0_b (CFG commutes with the affine conversions)."""
        return self._linear("x0", x, t)

    def eps(self, x, t):
        """w eps_a + (1 - w) eps_b."""
        return self._linear("eps", x, t)

    def divergence(self, x, t):
        """w div u_a + (1 - w) div u_b."""
        return self._linear("divergence", x, t)


class CFGField(GuidedField):
    """Classifier-free guidance w u(x|y) + (1 - w) u(x|null) on a GMMPath (eq. 65); one evaluation
    of the mixture components serves both terms."""

    def __init__(self, path, y, w):
        path = as_path(path)
        super().__init__(ExactField(path, y), ExactField(path, None), w)
        self.path, self.y = path, self.a.y

    def __repr__(self) -> str:
        return f"CFGField(y={self.y!r}, w={self.w!r}, path={self.path!r})"

    def _terms(self):
        return [
            LinearTerm(self.path, self.y, self.w, None),
            LinearTerm(self.path, None, 1.0 - self.w, None),
        ]

    def velocity(self, x, t):
        return self.path.cfg_velocity(x, t, self.y, self.w)

    def score(self, x, t):
        return self.path.cfg_score(x, t, self.y, self.w)


class ClassifierGuidedField(Field):
    """Classifier guidance u(x) + w a_t grad log p_t(y|x) (eq. 62) with the exact Bayes classifier;
    score(x) + w grad log p_t(y|x) for the score."""

    def __init__(self, path, y, w):
        self.path = as_path(path)
        self.y = as_label(y, path.n_classes)
        if self.y is None:
            raise ValueError(
                "y must be a class label (int or array) for classifier guidance, got None"
            )
        self.w = as_guidance_weight(w)
        self.d, self.schedule = path.d, path.schedule

    def __repr__(self) -> str:
        return f"ClassifierGuidedField(y={self.y!r}, w={self.w!r}, path={self.path!r})"

    def _terms(self):
        # u + w grad-term = u + w (u_y - u) with the exact Bayes classifier (eqs. 59-62)
        return [
            LinearTerm(self.path, self.y, self.w, None),
            LinearTerm(self.path, None, 1.0 - self.w, None),
        ]

    def velocity(self, x, t):
        return self.path.classifier_guided_velocity(x, t, self.y, self.w)

    def score(self, x, t):
        return self.path.classifier_guided_score(x, t, self.y, self.w)


def _combined(a, b, name, x, t, w):
    """The CFG combination (``refcfg.combine``) w a.name(x, t) + (1 - w) b.name(x, t) of two
    fields' ``name`` ("velocity", "score", "x0", "eps", "divergence"); w a float or one weight per
    row. The one evaluation of a guided field's methods (``GuidedField`` and ``LinearRule``)."""
    fa, fb = getattr(a, name, None), getattr(b, name, None)
    if not callable(fa) or not callable(fb):
        raise TypeError(f"{name} needs both fields to provide {name}(x, t)")
    return combine(
        np.asarray(fa(x, t), dtype=np.float64), np.asarray(fb(x, t), dtype=np.float64), w
    )


def guided(a, b, w) -> GuidedField:
    """w a + (1 - w) b for any two fields (CFG when a = u(.|y), b = u(.|null); autoguidance when b is
    a weaker model of the same conditional law)."""
    return GuidedField(a, b, w)


# ---------------------------------------------------------------------------------------------
# Rules on a cond and a ref field with a weight profile
# ---------------------------------------------------------------------------------------------


def cfg_combine(c, u, w) -> np.ndarray:
    """Plain CFG w c + (1 - w) u = u + w (c - u) (notes eq. 65; computed by ``refcfg.combine``)
    for predictions c, u (N, d). w: float or (N,)."""
    c, u = as_prediction_pair(c, u)
    return combine(c, u, as_weight_rows(w, c.shape[0]))


def _weight(w, g):
    """The CFG weight (1 - g) + w g of a rule with weight w and profile value g (w where g = 1,
    1 -- the conditional field alone -- where g = 0)."""
    return (1.0 - g) + w * g


def noise_level(schedule, t) -> np.ndarray:
    """EDM noise level sigma(t) = beta_t / alpha_t of x_t / alpha_t = z + sigma eps (inf at alpha = 0).

    The guidance-interval paper (arXiv 2404.07724) states its intervals in this sigma."""
    tt = np.atleast_1d(as_float_array(t, "t"))
    v = schedule.values(tt)
    alpha = np.asarray(v.alpha, dtype=np.float64)
    beta = np.asarray(v.beta, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(alpha > 0, beta / np.where(alpha > 0, alpha, 1.0), np.inf)


def weight_profile(kind) -> Callable[[np.ndarray], np.ndarray]:
    """The profile g(t) of a time-dependent weight, with mean_t g = 1 on [0, 1]: "constant" g = 1;
    "linear" g = 2 t; "cosine" g = 1 - cos(pi t) (t = 0 noise, t = 1 data); a callable g(t) passes
    through. These are the increasing "linear" and "cosine" schedulers of Wang et al.,
    arXiv 2404.13040 (sec. 3, written there in diffusion time T -> 0, here in flow time
    t = 1 - t_diff / T), applied to the guidance strength omega = w - 1."""
    if callable(kind):
        return kind
    if kind == "constant":
        return np.ones_like
    if kind == "linear":
        return lambda t: 2.0 * t
    if kind == "cosine":
        return lambda t: 1.0 - np.cos(np.pi * t)
    raise ValueError(
        f"kind must be 'constant', 'linear', 'cosine' or a callable g(t), got {kind!r}"
    )


def weight_schedule(kind, w: float) -> Callable[[np.ndarray], np.ndarray]:
    """A time-dependent weight w(t) = (1 - g(t)) + w g(t) = 1 + (w - 1) g(t) with the profile g of
    ``weight_profile(kind)`` (mean_t g = 1, so mean_t w(t) = w)."""
    w = as_scalar_weight(w)
    g = weight_profile(kind)

    def w_of_t(t):
        t = np.asarray(t, dtype=np.float64)
        return _weight(w, np.broadcast_to(np.asarray(g(t), dtype=np.float64), t.shape))

    return w_of_t


class _RuleFactor:
    """Time factor of one term of a ``LinearRule``: (1 - g(t)) + w g(t) for ``cond``,
    (1 - w) g(t) for ``ref`` (g = the rule's ``profile``)."""

    def __init__(self, rule, part: str):
        self.rule, self.part = rule, part

    def __call__(self, t):
        t = np.asarray(t, dtype=np.float64)
        g = np.broadcast_to(np.asarray(self.rule.profile(t), dtype=np.float64), t.shape)
        w = self.rule.w
        return _weight(w, g) if self.part == "cond" else (1.0 - w) * g

    def __repr__(self) -> str:
        return f"<{self.part} factor of {self.rule!r}>"


class LinearRule(RuleField, GuidedField):
    """A rule linear in the predictions: ((1 - g) + w g) cond + (1 - w) g ref for a scalar weight w
    and a weight profile g(t) (``profile``; 1 here: plain CFG) -- the guided field w(t) cond +
    (1 - w(t)) ref with the weight w(t) = (1 - g(t)) + w g(t) (``weight``).

    The velocity is computed in NumPy from the two fields' own velocities (in ``space``, which changes
    nothing but rounding: the maps are affine); score, x0, eps and divergence are the same
    combination of the fields' own (``GuidedField``, with a = cond, b = ref). ``_terms`` declares the
    lowering from the same ``profile``, so a subclass that only changes ``profile`` stays
    consistent; one that overrides any other method of the mathematics (``_combine``, ``weight``,
    ``_component``, ...) must declare its own ``_terms``."""

    name = "linear"
    _lowering_methods = (
        "_combine",
        "_component",
        "_velocity_rows",
        "_extrapolated",
        "weight",
        "_linear",
        "_weights",
    )
    a = property(lambda self: self.cond, doc="the conditional field (``GuidedField``'s a)")
    b = property(lambda self: self.ref, doc="the reference field (``GuidedField``'s b)")

    def __init__(self, cond, ref, w: float, *, space: str = "velocity", schedule=None):
        RuleField.__init__(self, cond, ref, space=space, schedule=schedule)
        self.w = as_scalar_weight(w)

    def profile(self, t) -> np.ndarray:
        """The weight profile g(t) at times t (an array): where guidance acts, and how strongly."""
        return np.ones(np.shape(t))

    def weight(self, t) -> np.ndarray:
        """The CFG weight w(t) = (1 - g(t)) + w g(t) at times t (an array)."""
        t = np.asarray(t, dtype=np.float64)
        return _weight(
            self.w, np.broadcast_to(np.asarray(self.profile(t), dtype=np.float64), t.shape)
        )

    def _combine(self, c, u, x, t, state):
        return cfg_combine(c, u, self.weight(t)), None

    def _terms(self):
        if type(self).profile is LinearRule.profile:  # constant profile: plain weights
            return [Scaled(self.cond, self.w), Scaled(self.ref, 1.0 - self.w)]
        return [
            Scaled(self.cond, 1.0, _RuleFactor(self, "cond")),
            Scaled(self.ref, 1.0, _RuleFactor(self, "ref")),
        ]

    def _weights(self, x, t):
        x = as_float_array(x, "x", ndim=2)
        return x, self.weight(as_row_times(t, x.shape[0]))

    velocity = RuleField.velocity  # in ``space``; score, x0, eps, divergence: GuidedField's

    def __repr__(self) -> str:
        return f"{type(self).__name__}(w={self.w!r}, space={self.space!r})"


class PlainCFG(LinearRule):
    """Plain CFG w c + (1 - w) u (notes eq. 65) evaluated in ``space``; the same velocity in every
    space (the maps are affine), which the tests check. Baseline of the comparison."""

    name = "cfg"


class GuidanceInterval(LinearRule):
    """Guidance only in a noise interval (Kynkaanniemi et al., arXiv 2404.07724):
    w where sigma_lo < sigma(t) <= sigma_hi, else 1 (the conditional field alone), with the EDM noise
    level sigma(t) = beta_t / alpha_t (``noise_level``). None means no bound on that side, so
    ``sigma_lo=None, sigma_hi=None`` (the interval covers [0, 1]) is plain CFG. Profile: the
    indicator of the interval.

    Defaults (0.28, 2.9]: the paper's FID-optimal interval for EDM2-XXL on ImageNet-512 (data scaled
    to std 0.5; the paper's SD-XL interval is (0.28, 5.42])."""

    name = "interval"

    def __init__(
        self,
        cond,
        ref,
        w: float,
        *,
        sigma_lo: float | None = 0.28,
        sigma_hi: float | None = 2.9,
        schedule=None,
    ):
        super().__init__(cond, ref, w, space="velocity", schedule=schedule)
        if self.schedule is None:
            raise ValueError(
                "GuidanceInterval needs a schedule (to map sigma to t): pass schedule="
            )
        self.sigma_lo = None if sigma_lo is None else as_real(sigma_lo, "sigma_lo", lo=0.0)
        self.sigma_hi = (
            None if sigma_hi is None else as_real(sigma_hi, "sigma_hi", lo=0.0, allow_inf=True)
        )
        if (
            self.sigma_lo is not None
            and self.sigma_hi is not None
            and self.sigma_hi <= self.sigma_lo
        ):
            raise ValueError(f"sigma_hi must be > sigma_lo, got ({self.sigma_lo}, {self.sigma_hi}]")

    def active(self, t) -> np.ndarray:
        """(N,) bool: where guidance is on (sigma_lo < sigma(t) <= sigma_hi)."""
        s = noise_level(self.schedule, t)
        on = np.ones(s.shape, dtype=bool)
        if self.sigma_lo is not None:
            on &= s > self.sigma_lo
        if self.sigma_hi is not None:
            on &= s <= self.sigma_hi
        return on

    def profile(self, t) -> np.ndarray:
        """1 inside the interval, 0 outside."""
        return np.reshape(self.active(t).astype(np.float64), np.shape(t))


class ScheduledCFG(LinearRule):
    """CFG with a time-dependent weight w(t) = (1 - g(t)) + w g(t) (``weight_profile``; Wang et al.,
    arXiv 2404.13040). ``kind="constant"`` is plain CFG."""

    name = "schedule"

    def __init__(self, cond, ref, w: float, *, kind="linear", schedule=None):
        super().__init__(cond, ref, w, space="velocity", schedule=schedule)
        self.kind = kind
        self._g = weight_profile(kind)
        self.w_of_t = weight_schedule(kind, self.w)

    def profile(self, t) -> np.ndarray:
        """g(t) of ``kind``."""
        t = np.asarray(t, dtype=np.float64)
        return np.broadcast_to(np.asarray(self._g(t), dtype=np.float64), t.shape)


class Autoguidance(LinearRule):
    """Autoguidance (Karras et al., arXiv 2406.02507, sec. 3): w c + (1 - w) c_weak, guiding the
    conditional field with a weaker version of itself under the same condition instead of the
    unconditional field. Exact here with ``weaker_mixture`` (the same mixture with inflated
    covariances). The paper's EDM2 guidance weights are ~2-3."""

    name = "autoguidance"

    def __init__(self, cond, weak, w: float, *, schedule=None):
        super().__init__(cond, weak, w, space="velocity", schedule=schedule)


def weaker_mixture(mixture, cov_scale: float = 2.0):
    """The same labelled mixture with every covariance multiplied by ``cov_scale`` (> 0): an exact
    "weaker model" for autoguidance (a wider, blurrier density, as in arXiv 2406.02507 fig. 1/App. C
    where the weak model is a smaller, shorter-trained network). refcfg's choice, not the paper's."""
    from ..mixture import GMM, LabeledGMM

    if not isinstance(mixture, LabeledGMM):
        raise TypeError(
            f"mixture must be a LabeledGMM, got {_describe(mixture)}"
            + ("; pass path.mixture" if hasattr(mixture, "mixture") else "")
        )
    k = as_real(cov_scale, "cov_scale", gt=0.0)
    classes = [GMM(g.weights, g.means, g.covs * k) for g in mixture.classes]
    return LabeledGMM(classes, mixture.class_probs)


register_field_classes(field=ExactField, cfg=CFGField, classifier_guided=ClassifierGuidedField)
