"""Guidance: the field protocol, exact fields, and the guidance rules as fields.

- ``base``: the ``Field`` protocol (velocity; score, x0, eps through ``refcfg.convert``),
  ``ExactField``, and the lowering description (``NotLowerable``, ``LinearTerm``, ``linear_terms``).
- ``linear``: the lowerable rules -- ``GuidedField``/``guided``, ``CFGField``,
  ``ClassifierGuidedField``, and on a cond/ref pair ``PlainCFG``, ``GuidanceInterval``,
  ``ScheduledCFG`` (w(t)), ``Autoguidance`` (with ``weaker_mixture``).
- ``nonlinear``: ``GuidanceRescale``, ``APG``, ``CFGZeroStar`` (NumPy only).
- ``spaces``: the prediction spaces (``to_space``/``from_space``) and ``RuleField``.
- ``registry``: ``make(name, path, y, w, ...)`` and ``RULES``.

Every public name of these modules (their ``__all__``) is re-exported here.
"""

from . import base, linear, nonlinear, registry, spaces
from .base import *  # noqa: F403
from .linear import *  # noqa: F403
from .nonlinear import *  # noqa: F403
from .registry import *  # noqa: F403
from .spaces import *  # noqa: F403

__all__ = [*base.__all__, *linear.__all__, *nonlinear.__all__, *spaces.__all__, *registry.__all__]
