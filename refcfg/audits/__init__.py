"""Audits: the exact model inside the guidance code of other libraries, with controls.

Each audit module (``flow_matching``, ``dit``, ``ddpm_pytorch``, ``kdiffusion``) defines ``NAME``,
``REQUIRES`` and ``run(fast=True, seed=0) -> AuditResult`` (``refcfg.audits._report``): its
checks are controls (the library's code on the exact model equals an independent computation to
rounding: our glue is right) and findings (measured behaviours of the library, each with the
tolerance it is held to). ``run_audit(name)`` raises ``LibraryMissing`` when the library is not
installed. ``refcfg audit NAME|all`` runs them from the command line; docs/audits.md has the
findings.
"""

from __future__ import annotations

import importlib

from ._report import AuditResult, Check, LibraryMissing

__all__ = ["AUDITS", "run_audit", "AuditResult", "Check", "LibraryMissing"]

AUDITS = {
    "flow-matching": "flow_matching",
    "diffusers-dit": "dit",
    "ddpm-pytorch": "ddpm_pytorch",
    "k-diffusion": "kdiffusion",
}
"""Audit name -> module of ``refcfg.audits``."""


def audit_module(name: str):
    """The module of audit ``name`` (one of ``AUDITS``)."""
    if name not in AUDITS:
        raise ValueError(f"audit must be one of {', '.join(AUDITS)}, got {name!r}")
    return importlib.import_module(f"{__name__}.{AUDITS[name]}")


def run_audit(name: str, fast: bool = True, seed: int = 0) -> AuditResult:
    """Run audit ``name``; LibraryMissing (a RuntimeError saying what to install) when its library
    or torch is absent."""
    return audit_module(name).run(fast=fast, seed=seed)
