"""Sweeps: grids of (problem, schedule, guidance rule, w, sampler, steps, n, seed) cells run as
deterministic, resumable tasks on ``dask.distributed`` (docs/sweeps.md).

- :func:`load_spec` parses and validates a spec (``refcfg.sweep.spec``);
- :func:`evaluate` computes the metrics of one cell (``refcfg.sweep.cell``);
- :func:`run` runs or resumes a sweep into a directory (``refcfg.sweep.runner``);
- :func:`read_table` reads its Parquet table (``refcfg.sweep.store``).
"""

from .cell import evaluate
from .runner import RunReport, run, run_cell
from .spec import (
    AXES,
    METRIC_COLUMNS,
    METRICS,
    SPEC_KEYS,
    TIMING_COLUMNS,
    Cell,
    Rule,
    Spec,
    load_spec,
)
from .store import read_table

__all__ = [
    "load_spec",
    "Spec",
    "Cell",
    "Rule",
    "evaluate",
    "run",
    "run_cell",
    "RunReport",
    "read_table",
    "AXES",
    "METRICS",
    "METRIC_COLUMNS",
    "TIMING_COLUMNS",
    "SPEC_KEYS",
]
