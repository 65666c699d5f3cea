"""The guidance rules by name: ``make(name, path, y, w, ...)`` builds a rule on the exact fields of a
``GMMPath``; ``RULES`` lists the names (the order of the comparison tables).

Each entry of ``REGISTRY`` is a builder ``f(path, y, w, *, t_grid, weak_path, **params) -> field``.
Adding a rule: write it in ``linear.py`` (lowerable) or ``nonlinear.py`` and add its builder here.
"""

from __future__ import annotations

from collections.abc import Callable

from .._validation import as_choice
from ..paths import GMMPath, as_path
from .linear import Autoguidance, GuidanceInterval, PlainCFG, ScheduledCFG, weaker_mixture
from .nonlinear import APG, CFGZeroStar, GuidanceRescale

__all__ = ["REGISTRY", "RULES", "make"]


def _on_exact(cls):
    """A builder for a rule on cond = path.field(y), ref = path.field(None)."""

    def build(path, y, w, *, t_grid=None, weak_path=None, **params):
        return cls(path.field(y), path.field(None), w, schedule=path.schedule, **params)

    build.__doc__ = f"{cls.__name__} on the exact conditional and unconditional fields of path."
    return build


def _autoguidance(path, y, w, *, t_grid=None, weak_path=None, **params):
    """Autoguidance on path.field(y) guided away from weak_path.field(y); weak_path defaults to a
    path of ``weaker_mixture(path.mixture, cov_scale)`` (cov_scale = 2)."""
    if weak_path is None:
        weak_path = GMMPath(
            weaker_mixture(path.mixture, params.pop("cov_scale", 2.0)), path.schedule
        )
    return Autoguidance(path.field(y), weak_path.field(y), w, schedule=path.schedule, **params)


def _cfg_zero_star(path, y, w, *, t_grid=None, weak_path=None, **params):
    """CFG-Zero*; ``t_grid`` sets the zero-init threshold from ``zero_init_steps`` (default 1)
    unless ``zero_until`` is given."""
    k = params.pop("zero_init_steps", 1)
    if "zero_until" not in params:
        params["zero_until"] = (
            None if t_grid is None or k == 0 else CFGZeroStar.zero_init_from_grid(t_grid, k)
        )
    return CFGZeroStar(path.field(y), path.field(None), w, schedule=path.schedule, **params)


REGISTRY: dict[str, Callable] = {
    "cfg": _on_exact(PlainCFG),
    "interval": _on_exact(GuidanceInterval),
    "rescale": _on_exact(GuidanceRescale),
    "apg": _on_exact(APG),
    "cfg-zero-star": _cfg_zero_star,
    "autoguidance": _autoguidance,
    "schedule": _on_exact(ScheduledCFG),
}

RULES = tuple(REGISTRY)
"""Names accepted by ``make``, in table order."""


def make(name: str, path, y, w: float, *, t_grid=None, weak_path=None, **params):
    """Build rule ``name`` on exact fields of ``path`` (a GMMPath) for class ``y`` and weight w.

    cond = path.field(y), ref = path.field(None) (autoguidance: ``weak_path.field(y)``, by default a
    path of ``weaker_mixture(path.mixture)``). ``t_grid`` sets CFG-Zero*'s zero-init threshold from
    ``zero_init_steps`` (default 1). Other keyword arguments go to the rule's constructor."""
    as_choice(name, "name", RULES)
    path = as_path(path)
    if weak_path is not None:
        weak_path = as_path(weak_path, "weak_path")
    return REGISTRY[name](path, y, w, t_grid=t_grid, weak_path=weak_path, **params)
