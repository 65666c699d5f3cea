"""The number formatter of the tables and reports, re-exported from ``refcfg._format`` (its one
implementation, kept below every layer so that the studies and the checks print through it too)."""

from __future__ import annotations

from .._format import format_value

__all__ = ["format_value"]
