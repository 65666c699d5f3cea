"""Small sweep specs shared by the sweep tests (n = 200, few steps, the small problems)."""

from __future__ import annotations

import copy

SMALL = {
    "name": "small",
    "seed": 7,
    "seeds": 2,
    "y": 0,
    "axes": {
        "problem": ["gauss-1d", "two-class-2d"],
        "rule": ["cfg", {"name": "interval", "sigma_lo": 0.3, "sigma_hi": 3.0}],
        "w": [1.0, 3.0],
        "sampler": ["euler", "heun"],
        "steps": [6],
        "n": [200],
    },
    "metrics": {"names": ["ed_cond", "ed_tilted", "confidence", "loglik", "time"]},
}
"""32 cells of ~10 ms each."""


def small(**changes) -> dict:
    """A deep copy of SMALL with top-level or "axes.KEY" / "metrics.KEY" entries replaced."""
    spec = copy.deepcopy(SMALL)
    for key, value in changes.items():
        table, _, sub = key.partition("__")
        if sub:
            spec[table][sub] = value
        else:
            spec[key] = value
    return spec


def stable(table):
    """The table without its wall-clock columns (the only ones that differ between runs)."""
    from refcfg.sweep import TIMING_COLUMNS

    return table.drop_columns([c for c in TIMING_COLUMNS if c in table.column_names])
