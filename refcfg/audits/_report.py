"""The record of an audit: checks (controls and findings, each with its measured value and the
tolerance it is held to) and tables (list of dict rows). No drawing here (``refcfg.plotting.audits``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from ..experiments._common import format_table

__all__ = [
    "Check",
    "AuditResult",
    "LibraryMissing",
    "same_noise_endpoint",
    "fit_order",
    "max_err",
    "torch_default_float64",
]


class LibraryMissing(RuntimeError):
    """The audited library (or torch) is not installed; the message says what to install."""


@dataclasses.dataclass
class Check:
    """One measured statement. kind: "control" (our glue is right: the library's code on the exact
    model equals an independent computation) or "finding" (a behaviour of the library, held to a
    stated tolerance so that a change of the library shows). passed: the value met ``expect``."""

    kind: str
    name: str
    value: float
    expect: str
    passed: bool
    detail: str = ""


@dataclasses.dataclass
class AuditResult:
    """Checks and tables of one audit run."""

    name: str
    fast: bool
    seed: int
    checks: list = dataclasses.field(default_factory=list)
    tables: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    series: dict = dataclasses.field(default_factory=dict)  # label -> (steps, errors), the figure

    def add_series(self, label, steps, errors):
        """An error-versus-steps curve for the figure (``refcfg.plotting.audits``)."""
        self.series[label] = ([int(s) for s in steps], [float(e) for e in errors])

    def check(self, kind, name, value, ok, expect, detail="") -> Check:
        """Record a check: ``ok`` is whether ``value`` met ``expect`` (a description of the
        tolerance)."""
        if kind not in ("control", "finding"):
            raise ValueError(f"kind must be 'control' or 'finding', got {kind!r}")
        c = Check(kind, name, float(value), expect, bool(ok), detail)
        self.checks.append(c)
        return c

    @property
    def passed(self) -> bool:
        """Every control and finding ran and met its tolerance (and there was at least one)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list:
        return [c for c in self.checks if not c.passed]

    def check_rows(self) -> list[dict]:
        return [
            {
                "kind": c.kind,
                "check": c.name,
                "value": c.value,
                "expected": c.expect,
                "result": "PASS" if c.passed else "FAIL",
            }
            for c in self.checks
        ]

    def markdown(self) -> str:
        """Checks table, then every table, as markdown."""
        mode = "fast" if self.fast else "full"
        out = [
            f"# Audit {self.name} ({mode} mode, seed {self.seed})",
            "",
            f"Result: {'PASS' if self.passed else 'FAIL'} ({len(self.checks)} checks, "
            f"{len(self.failures())} failed)",
            "",
            format_table(self.check_rows()),
        ]
        for name, rows in self.tables.items():
            out += ["", f"## {name}", "", format_table(rows)]
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "fast": self.fast,
            "seed": self.seed,
            "passed": self.passed,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "tables": self.tables,
            "notes": self.notes,
            "series": self.series,
        }
        return json.loads(json.dumps(d, default=_jsonable))


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


class torch_default_float64:
    """torch's default dtype float64 inside the block (libraries that draw with torch.randn or
    build tensors in the default dtype)."""

    def __enter__(self):
        import torch

        self.old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)

    def __exit__(self, *exc):
        import torch

        torch.set_default_dtype(self.old)


def max_err(a, b) -> float:
    """max |a - b| over all entries (torch tensors or arrays, compared in float64)."""
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().cpu().numpy() if hasattr(b, "detach") else np.asarray(b)
    return float(
        np.max(
            np.abs(
                np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)
                - np.asarray(b, dtype=np.float64).reshape(b.shape[0], -1)
            )
        )
    )


def fit_order(steps, errors) -> float:
    """Minus the least-squares slope of log(error) against log(steps)
    (``refcfg.experiments.sampler_error.fit_order``)."""
    from ..experiments.sampler_error import fit_order as _fit

    return _fit(steps, errors)


def same_noise_endpoint(field, x_start, t_start, t_end=1.0, tol=1e-9):
    """The exact ODE's endpoint at t_end from the points x_start (N, d) at refcfg time t_start
    (``refcfg.interop.reference.ode_endpoint``: RK4 step doubling until the RMS change is
    <= tol, far below the samplers' errors measured against it)."""
    from ..interop.reference import ode_endpoint

    return ode_endpoint(
        field, np.asarray(x_start, dtype=np.float64), float(t_start), float(t_end), tol=tol
    ).x


def law_rows(samples, path, y, w, targets, *, permutations, seed, steps) -> list[dict]:
    """Which law a library's samples reach: one row per target law of ``check_samples`` (the
    two-sample test against refcfg's exact sampler of that law; "data" is p(x|y), so at w = 1),
    with its p-value, max |z| statistic and energy distance."""
    from ..sample_checks import check_samples

    rows = []
    for target in targets:
        rep = check_samples(
            samples,
            path,
            y=y,
            w=w if target != "data" else 1.0,
            target=target,
            permutations=permutations,
            seed=seed,
            steps=steps,
        )
        rows.append(
            {
                "target": target,
                "p_value": rep.p_value,
                "max|z|": rep.statistic,
                "energy_distance": rep.effects["energy_distance"],
            }
        )
    return rows
