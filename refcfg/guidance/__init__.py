"""Guidance: the field protocol, exact fields, and the guidance rules as fields.

- ``base``: the ``Field`` protocol (velocity; score, x0, eps through ``refcfg.convert``),
  ``ExactField``, and the lowering description (``NotLowerable``, ``LinearTerm``, ``linear_terms``).
- ``linear``: the lowerable rules -- ``GuidedField``/``guided``, ``CFGField``,
  ``ClassifierGuidedField``, and on a cond/ref pair ``PlainCFG``, ``GuidanceInterval``,
  ``ScheduledCFG`` (w(t)), ``Autoguidance`` (with ``weaker_mixture``).
- ``nonlinear``: ``GuidanceRescale``, ``APG``, ``CFGZeroStar`` (NumPy only).
- ``spaces``: the prediction spaces (``to_space``/``from_space``) and ``RuleField``.
- ``registry``: ``make(name, path, y, w, ...)`` and ``RULES``.
"""

from .base import (MATH_METHODS, ExactField, Field, LinearTerm, NotLowerable, Scaled,
                   linear_terms)
from .linear import (Autoguidance, CFGField, ClassifierGuidedField, GuidanceInterval,
                     GuidedField, LinearRule, PlainCFG, ScheduledCFG, cfg_combine, guided,
                     noise_level, weaker_mixture, weight_profile, weight_schedule)
from .nonlinear import (APG, CFGZeroStar, GuidanceRescale, NonlinearRule, apg_combine,
                        cfg_zero_star_combine, cfg_zero_star_scale, rescale_combine)
from .registry import REGISTRY, RULES, VARIANTS, make, make_variant
from .spaces import ENDPOINT_H, SPACES, RuleField, VariantField, from_space, to_space

__all__ = [
    # protocol and lowering
    "Field", "ExactField", "NotLowerable", "LinearTerm", "Scaled", "linear_terms", "MATH_METHODS",
    # linear rules
    "GuidedField", "CFGField", "ClassifierGuidedField", "guided", "LinearRule", "PlainCFG",
    "GuidanceInterval", "ScheduledCFG", "Autoguidance", "weaker_mixture", "cfg_combine",
    "noise_level", "weight_profile", "weight_schedule",
    # nonlinear rules
    "NonlinearRule", "GuidanceRescale", "APG", "CFGZeroStar", "rescale_combine", "apg_combine",
    "cfg_zero_star_scale", "cfg_zero_star_combine",
    # spaces and registry
    "SPACES", "ENDPOINT_H", "to_space", "from_space", "RuleField", "VariantField",
    "REGISTRY", "RULES", "make", "VARIANTS", "make_variant",
]
