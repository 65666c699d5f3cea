"""Run a sweep: every missing cell as one task on ``dask.distributed``, results written as they finish.

``run(spec, out)`` validates the spec and the output directory, skips the cells already in DIR/cells
(resume), submits the others to a Dask cluster (an embedded ``LocalCluster`` of worker processes by
default, or the scheduler at ``scheduler``), writes each cell's row the moment its task finishes, and
finally writes the Parquet table. Tasks are retried ``retries`` times on an exception; a cell that
still fails (or keeps killing its worker) is recorded with its error and the others go on. A worker
process that dies is replaced by its nanny and its task rescheduled.

Each task runs with ``threads`` Numba threads (default 1) and one BLAS thread, so workers do not
oversubscribe the cores; the values do not depend on it (refcfg's samplers are thread-count
independent) and the cells' seeds come from their keys, so the table is the same for any number of
workers and any completion order. ``workers=0`` runs the cells in this process, without Dask.
"""

from __future__ import annotations

import logging
import numbers
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .._progress import progress_bar
from . import store
from .spec import load_spec

__all__ = ["run", "RunReport", "run_cell"]


@dataclass(frozen=True)
class RunReport:
    """What a run did: the table's path, the cell counts and the wall time."""

    table: Path
    cells: int  # cells of the spec
    reused: int  # found finished in DIR/cells (resume)
    computed: int  # computed by this run (failures included)
    failed: int  # cells of the table with status "error"
    seconds: float
    rejected: dict = field(default_factory=dict)  # cell file -> why it was recomputed

    def summary(self) -> str:
        """One line for the command line."""
        redone = (
            f" ({len(self.rejected)} cell file(s) did not hold a valid row of their cell and "
            f"were recomputed, e.g. {next(iter(self.rejected))}: "
            f"{next(iter(self.rejected.values()))})"
            if self.rejected
            else ""
        )
        return (
            f"{self.cells} cells: {self.computed} computed, {self.reused} reused, "
            f"{self.failed} failed{redone}; table {self.table} ({self.seconds:.1f} s)"
        )


def run_cell(fn, cell, threads: int = 1) -> dict:
    """Evaluate ``fn(cell)`` with ``threads`` Numba threads and one BLAS thread (the task of a
    worker; also used in-process), restoring the previous thread settings afterwards. The result
    must hold exactly the spec's metric columns, as real numbers (TypeError otherwise)."""
    import numba
    from threadpoolctl import threadpool_limits

    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=1):
            out = fn(cell)
    finally:
        numba.set_num_threads(prev)
    want = cell.settings.columns()
    if not isinstance(out, dict) or set(out) != set(want):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise TypeError(
            f"the cell function returned {got}; required a dict of the columns {list(want)}"
        )
    bad = [k for k, v in out.items() if isinstance(v, bool) or not isinstance(v, numbers.Real)]
    if bad:
        raise TypeError(f"the cell function returned non-numbers for {bad}; required floats")
    return {k: float(out[k]) for k in want}


def _positive(name, v, minimum):
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return v


def run(
    spec,
    out,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    retries: int = 2,
    progress=True,
    evaluate=None,
    on_cell=None,
    replace: bool = False,
) -> RunReport:
    """Run (or resume) a sweep; returns a :class:`RunReport`.

    spec: a path to a TOML spec, its dict, or a Spec (validated first: ValueError naming the key).
    out: the output directory (created; an existing sweep directory is resumed).
    scheduler: address of an existing Dask scheduler ("tcp://host:8786"); None starts a
        ``LocalCluster`` of ``workers`` processes (default: the number of cores), each with one
        task slot. ``workers=0`` (no scheduler) runs the cells in this process.
    threads: Numba threads per task (default 1). retries: extra attempts of a failing task.
    progress: a tqdm bar over the cells on stderr: True shows it when stderr is a terminal,
        "force" always, False never.
    evaluate: the function computing one cell's metric columns (default
        :func:`refcfg.sweep.evaluate`); it must be picklable for the workers.
    on_cell: called as ``on_cell(cell, row)`` after each cell's row is written.
    replace: take over an ``out`` that holds another spec's sweep (refused otherwise, see
        :func:`refcfg.sweep.store.check_owner`). Cell files that do not hold a valid row of their
        cell (wrong JSON shape, a row edited by hand) are recomputed and listed in the report.
    """
    t_start = time.perf_counter()
    spec = load_spec(spec)
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string, got {type(scheduler).__name__}")
    if workers is not None:
        _positive("workers", workers, 0)
        if workers == 0 and scheduler is not None:
            raise ValueError("workers=0 (in-process) cannot be combined with a scheduler address")
    _positive("threads", threads, 1)
    _positive("retries", retries, 0)
    if evaluate is None:
        from .cell import evaluate
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
    cells = spec.cells()
    store.check_owner(out, cells, replace)
    out = store.prepare_out(out)
    found, rejected = store.read_cells_checked(out, cells)
    rows = {k: r for k, r in found.items() if r["status"] == "ok"}
    todo = [c for c in cells if c.id not in rows]
    reused = len(rows)

    def finish(cell, row):
        store.write_cell(out, cell, row)
        rows[cell.id] = row
        if bar is not None:
            bar.update(1)
        if on_cell is not None:
            on_cell(cell, row)

    bar = progress_bar(len(todo), "sweep", progress, unit="cell")
    try:
        if todo and workers == 0:
            _run_local(todo, evaluate, threads, retries, finish)
        elif todo:
            _run_dask(todo, evaluate, threads, retries, scheduler, workers, finish)
    finally:
        if bar is not None:
            bar.close()
    table_rows = [rows[c.id] for c in cells]
    failed = sum(r["status"] != "ok" for r in table_rows)
    meta = {"cells": len(cells), "computed": len(todo), "reused": reused, "failed": failed}
    path = store.write_table(out, spec, table_rows, meta)
    return RunReport(
        path, len(cells), reused, len(todo), failed, time.perf_counter() - t_start, rejected
    )


def _run_local(todo, evaluate, threads, retries, finish):
    for cell in todo:
        for _ in range(retries + 1):
            try:
                row = store.ok_row(cell, run_cell(evaluate, cell, threads))
                break
            except Exception as exc:  # noqa: BLE001 -- recorded in the table, like a failed task on a cluster
                row = store.error_row(cell, exc)
        finish(cell, row)


def _run_dask(todo, evaluate, threads, retries, scheduler, workers, finish):
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        n = workers if workers is not None else (os.cpu_count() or 1)
        env = {
            "NUMBA_NUM_THREADS": str(threads),
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env=env,
        )
    client = Client(cluster if cluster is not None else scheduler)
    token = uuid.uuid4().hex[:8]
    futures = {}
    try:
        for cell in todo:
            fut = client.submit(
                run_cell,
                evaluate,
                cell,
                threads,
                key=f"refcfg-cell-{cell.id}-{token}",
                retries=retries,
                pure=False,
            )
            futures[fut.key] = (fut, cell)
        for fut in as_completed([f for f, _ in futures.values()]):
            cell = futures[fut.key][1]
            try:
                row = store.ok_row(cell, fut.result())
            except Exception as exc:  # noqa: BLE001 -- the last attempt's error (KilledWorker if it kept dying)
                row = store.error_row(cell, exc)
            finish(cell, row)
            fut.release()
    finally:
        for fut, _ in futures.values():
            fut.cancel()
        client.close()
        if cluster is not None:
            cluster.close()
