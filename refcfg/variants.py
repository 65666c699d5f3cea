"""Moved: the guidance rules live in ``refcfg.guidance`` (``make``, ``RULES``, the rule classes).

This module re-exports the former names while the remaining callers move; it will be removed."""

from .guidance import (APG, ENDPOINT_H, SPACES, VARIANTS, Autoguidance, CFGZeroStar,  # noqa: F401
                       GuidanceInterval, GuidanceRescale, PlainCFG, ScheduledCFG, VariantField,
                       apg_combine, cfg_combine, cfg_zero_star_combine, cfg_zero_star_scale,
                       from_space, make_variant, noise_level, rescale_combine, to_space,
                       weaker_mixture, weight_schedule)
