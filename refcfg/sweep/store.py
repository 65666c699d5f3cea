"""Durable sweep results: one small JSON file per finished cell, then one Parquet table.

Layout of an output directory::

    DIR/cells/<cell id>.json   one per finished cell (written atomically: temp file + os.replace)
    DIR/results.parquet        the table, one row per cell in the spec's cell order
    DIR/spec.json              the normalised spec, the refcfg version and the run's counts

A cell file holds the cell's key and its row; a rerun reads them back and computes only the cells
whose file is missing (or holds an error). Floats go through JSON by ``repr``, which round-trips
float64 exactly, so the table is bitwise the same however the cells were computed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["prepare_out", "write_cell", "read_cells", "ok_row", "error_row", "write_table",
           "read_table", "TABLE", "SPEC_FILE", "CELLS"]

TABLE = "results.parquet"
SPEC_FILE = "spec.json"
CELLS = "cells"
_STATUS = ("ok", "error")


def prepare_out(out) -> Path:
    """Create (or check) the output directory DIR and DIR/cells; ValueError if it cannot be used."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a directory path, got {type(out).__name__}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} exists and is not a directory")
    for p in (out / TABLE, out / SPEC_FILE, out / CELLS):
        if p.exists() and p.is_dir() != (p.name == CELLS):
            raise ValueError(f"out {str(out)!r} holds {p.name!r} of the wrong kind; required a "
                             f"sweep directory or a new one")
    try:
        (out / CELLS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out {str(out)!r} cannot be created: {exc.strerror}") from None
    if not os.access(out / CELLS, os.W_OK):
        raise ValueError(f"out {str(out)!r} is not writable")
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def ok_row(cell, values: dict) -> dict:
    """The table row of a finished cell."""
    return {"cell_id": cell.id, **cell.axis_values(), "status": "ok", "error": None, **values}


def error_row(cell, exc) -> dict:
    """The table row of a failed cell: its error as ``Type: message`` (first line)."""
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return {"cell_id": cell.id, **cell.axis_values(), "status": "error",
            "error": f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__}


def write_cell(out: Path, cell, row: dict) -> Path:
    """Write one cell's row to DIR/cells/<id>.json atomically."""
    path = Path(out) / CELLS / f"{cell.id}.json"
    _atomic_write(path, json.dumps({"key": cell.key, "row": row}).encode())
    return path


def read_cells(out: Path, cells) -> dict:
    """{cell id: row} of the cells of ``cells`` that have a readable file with the same key
    (unreadable or foreign files are ignored: those cells count as missing)."""
    found = {}
    d = Path(out) / CELLS
    for cell in cells:
        p = d / f"{cell.id}.json"
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        row = doc.get("row") if isinstance(doc, dict) else None
        if doc.get("key") == cell.key and isinstance(row, dict) and row.get("status") in _STATUS:
            found[cell.id] = row
    return found


def _schema(columns):
    import pyarrow as pa
    fields = [("cell_id", pa.string()), ("problem", pa.string()), ("schedule", pa.string()),
              ("rule", pa.string()), ("w", pa.float64()), ("sampler", pa.string()),
              ("steps", pa.int64()), ("n", pa.int64()), ("seed", pa.int64()),
              ("status", pa.string()), ("error", pa.string())]
    fields += [(c, pa.float64()) for c in columns]
    return pa.schema(fields)


def write_table(out: Path, spec, rows: list, meta: dict) -> Path:
    """Write DIR/results.parquet (rows in the spec's cell order; the normalised spec and the refcfg
    version in the schema metadata) and DIR/spec.json; returns the table's path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .. import __version__

    schema = _schema(spec.settings.columns())
    info = {"spec": spec.canonical(), "refcfg_version": __version__, **meta}
    cols = {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}
    table = pa.table(cols, schema=schema.with_metadata({"refcfg": json.dumps(info)}))
    out = Path(out)
    fd, tmp = tempfile.mkstemp(dir=out, prefix="." + TABLE, suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out / TABLE)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _atomic_write(out / SPEC_FILE, (json.dumps(info, indent=1) + "\n").encode())
    return out / TABLE


def read_table(out):
    """The result table of a sweep directory (or a .parquet path) as a ``pyarrow.Table``; its
    ``schema.metadata[b"refcfg"]`` holds the spec and the refcfg version as JSON."""
    import pyarrow.parquet as pq

    p = Path(out)
    if p.is_dir():
        p = p / TABLE
    if not p.is_file():
        raise ValueError(f"no sweep table at {str(p)!r}; run `refcfg sweep SPEC --out DIR` first")
    return pq.read_table(p)
