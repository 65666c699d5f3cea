"""Guidance fields: the field protocol, exact fields and their guided combinations.

``refcfg.guidance.base``: the field protocol, ``ExactField``, the linear guided fields and the
lowering description (``NotLowerable``, ``LinearTerm``, ``linear_terms``).
"""

from .base import (CFGField, ClassifierGuidedField, ExactField, Field, GuidedField, LinearTerm,
                   MATH_METHODS, NotLowerable, Scaled, _check_label, _check_w, guided, linear_terms)

__all__ = ["Field", "ExactField", "GuidedField", "CFGField", "ClassifierGuidedField", "guided",
           "NotLowerable", "LinearTerm", "Scaled", "linear_terms", "MATH_METHODS"]
