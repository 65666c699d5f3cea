"""Figures of a sweep's result table: a metric against w, one line per (rule, sampler), seeds as
error bars (mean -+ one standard deviation over the seeds), one panel per (problem, schedule,
steps, n). Failed cells (status "error") are left out and counted in the title."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["metric_columns", "aggregate", "plot_metric", "plot_sweep"]

_KEY_COLUMNS = (
    "cell_id",
    "problem",
    "schedule",
    "rule",
    "w",
    "sampler",
    "steps",
    "n",
    "seed",
    "status",
    "error",
)


def metric_columns(table) -> list[str]:
    """The metric columns of a result table (every column after the cell's key and status)."""
    return [c for c in table.column_names if c not in _KEY_COLUMNS]


def aggregate(table, metric: str) -> dict:
    """{(problem, schedule, steps, n): {(rule, sampler): (w (k,), mean (k,), std (k,), seeds (k,))}}
    over the ok rows; std is the sample standard deviation over seeds (0 for a single seed)."""
    cols = metric_columns(table)
    if metric not in cols:
        raise ValueError(
            f"metric {metric!r} is not a column of the table; available: {', '.join(cols)}"
        )
    groups = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in table.select(
        ["problem", "schedule", "rule", "w", "sampler", "steps", "n", "status", metric]
    ).to_pylist():
        if r["status"] != "ok" or r[metric] is None:
            continue
        groups[(r["problem"], r["schedule"], r["steps"], r["n"])][(r["rule"], r["sampler"])][
            r["w"]
        ].append(r[metric])
    out = {}
    for panel, lines in groups.items():
        out[panel] = {}
        for line, by_w in lines.items():
            ws = np.array(sorted(by_w))
            vals = [np.asarray(by_w[w], dtype=np.float64) for w in ws]
            out[panel][line] = (
                ws,
                np.array([v.mean() for v in vals]),
                np.array([v.std(ddof=1) if v.size > 1 else 0.0 for v in vals]),
                np.array([v.size for v in vals]),
            )
    return out


def plot_metric(table, metric: str):
    """A matplotlib Figure of ``metric`` against w (module docstring)."""
    import matplotlib.pyplot as plt

    agg = aggregate(table, metric)
    if not agg:
        raise ValueError(f"the table has no finished cell with a value of {metric!r}")
    panels = sorted(agg)
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.9 * nrow), squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        for (rule, sampler), (ws, mean, std, k) in sorted(agg[panel].items()):
            ax.errorbar(
                ws,
                mean,
                yerr=std if np.any(k > 1) else None,
                marker="o",
                ms=3,
                capsize=3,
                lw=1.2,
                label=f"{rule}, {sampler}",
            )
        problem, schedule, steps, n = panel
        ax.set_title(f"{problem}, {schedule}, {steps} steps, n={n}", fontsize=9)
        ax.set_xlabel("guidance weight w")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    status = table.column("status").to_pylist()
    failed = sum(s != "ok" for s in status)
    seeds = len(set(table.column("seed").to_pylist()))
    fig.suptitle(
        (
            f"{metric}: mean over {seeds} seeds, bars = 1 sd"
            if seeds > 1
            else f"{metric}: one seed (no error bars)"
        )
        + (f"; {failed} failed cell(s) left out" if failed else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_sweep(directory, metrics=None, out=None) -> list[Path]:
    """Write ``<out>/sweep-<metric>.png`` for each metric (default: every metric column) of the
    sweep in ``directory`` (out defaults to it); returns the paths."""
    import matplotlib.pyplot as plt

    from ..sweep import read_table

    table = read_table(directory)
    cols = metric_columns(table)
    metrics = list(cols if metrics is None else metrics)
    for m in metrics:
        if m not in cols:
            raise ValueError(
                f"metric {m!r} is not a column of the table; available: {', '.join(cols)}"
            )
    out = Path(directory if out is None else out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in metrics:
        fig = plot_metric(table, m)
        p = out / f"sweep-{m}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths
