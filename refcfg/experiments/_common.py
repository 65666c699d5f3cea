"""Shared pieces of the studies: the result record, table printing, the time grids."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._format import format_value


@dataclass
class Result:
    """One reproduced result: ``table`` (list of dict rows), ``key`` (the numbers the tests and the
    docs quote), further named ``tables``, and ``figure_data``: every array and number its figure
    shows, as keyword arguments of the study's drawing function (``refcfg.plotting.studies``
    draws it: ``write_figure(result, path)``). A study computes; it never draws."""

    name: str
    title: str
    table: list[dict]
    key: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)  # further named tables (list of dict rows each)
    figure_data: dict = field(default_factory=dict)

    def format_table(self) -> str:
        """The table (and any further tables) as markdown pipe tables."""
        out = [format_table(self.table)]
        for name, rows in self.tables.items():
            out += ["", f"{name}:", "", format_table(rows)]
        return "\n".join(out)

    def format_key(self) -> str:
        """The key numbers, one per line."""
        return "\n".join(
            f"{k}: {_fmt(v) if not isinstance(v, dict) else v}" for k, v in self.key.items()
        )


def _fmt(v) -> str:
    """A cell of the experiments' tables: 4 decimals, scientific outside [1e-3, 1e4)."""
    return format_value(v, fixed=True, sci_above=1e4)


def format_table(rows: list[dict]) -> str:
    """Markdown pipe table of a list of dict rows (columns from the union of keys, in order)."""
    if not rows:
        return "(empty table)"
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    cells = [[_fmt(r.get(c, "")).replace("|", "\\|") for c in cols] for r in rows]
    cols = [c.replace("|", "\\|") for c in cols]  # escaped pipes keep the markdown table intact
    widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]
    line = "| " + " | ".join(c.ljust(wd) for c, wd in zip(cols, widths)) + " |"
    sep = "|" + "|".join("-" * (wd + 2) for wd in widths) + "|"
    body = ["| " + " | ".join(x.rjust(wd) for x, wd in zip(row, widths)) + " |" for row in cells]
    return "\n".join([line, sep, *body])


def sde_grid(steps: int, t_start: float = 0.0) -> np.ndarray:
    """Uniform grid from t_start to 1. From t_start = 0 the DDPM-like SDE (a_t -> inf at t = 0) takes
    a probability-flow Euler first step in ``refcfg.sample`` (see refcfg.sampling.api)."""
    return np.linspace(t_start, 1.0, steps + 1)


def edm_grid(steps: int, schedule="linear", sigma_min=0.002, sigma_max=80.0, rho=7.0) -> np.ndarray:
    """Karras et al. (EDM, arXiv 2206.00364, eq. 5) noise levels sigma_i, mapped to times t with
    beta_t / alpha_t = sigma_i, preceded by t = 0 (sigma = inf) and followed by t = 1 (sigma = 0):
    ``steps`` + 1 intervals that concentrate on low noise, where thin components need small steps."""
    from scipy.optimize import brentq

    from ..schedules import schedule as _sch

    sch = _sch(schedule)
    i = np.arange(steps)
    sig = (
        sigma_max ** (1 / rho)
        + i / max(steps - 1, 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    ts = [
        brentq(lambda t, s=s: float(sch.beta(t)) - s * float(sch.alpha(t)), 1e-15, 1.0, xtol=1e-15)
        for s in sig
    ]
    return np.concatenate([[0.0], ts, [1.0]])
