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

__all__ = [
    "prepare_out",
    "write_cell",
    "read_cells",
    "read_cells_checked",
    "check_row",
    "check_owner",
    "ok_row",
    "error_row",
    "write_table",
    "read_table",
    "TABLE",
    "SPEC_FILE",
    "CELLS",
]

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
            raise ValueError(
                f"out {str(out)!r} holds {p.name!r} of the wrong kind; required a "
                f"sweep directory or a new one"
            )
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
    return {
        "cell_id": cell.id,
        **cell.axis_values(),
        "status": "error",
        "error": f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__,
    }


def write_cell(out: Path, cell, row: dict) -> Path:
    """Write one cell's row to DIR/cells/<id>.json atomically."""
    path = Path(out) / CELLS / f"{cell.id}.json"
    _atomic_write(path, json.dumps({"key": cell.key, "row": row}).encode())
    return path


def read_cells(out: Path, cells) -> dict:
    """{cell id: row} of the cells of ``cells`` whose file holds a valid row of that very cell
    (:func:`check_row`); the others count as missing and are recomputed. See
    :func:`read_cells_checked` for the list of rejected files."""
    return read_cells_checked(out, cells)[0]


def read_cells_checked(out: Path, cells) -> tuple[dict, dict]:
    """({cell id: row} of the cells whose file is valid, {file path: why it was rejected} of the
    files that exist but are unreadable, of the wrong shape (valid JSON such as ``[]`` or ``1``),
    or whose row does not match its cell key (an edited row, e.g. w changed)."""
    found, rejected = {}, {}
    d = Path(out) / CELLS
    for cell in cells:
        p = d / f"{cell.id}.json"
        if not p.exists():
            continue
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            rejected[str(p)] = f"unreadable ({type(exc).__name__})"
            continue
        why = check_row(cell, doc)
        if why:
            rejected[str(p)] = why
        else:
            found[cell.id] = doc["row"]
    return found, rejected


def check_row(cell, doc) -> str:
    """'' when ``doc`` (a parsed cell file) is ``{"key": cell.key, "row": row}`` with a row of this
    cell: its id, its axis values exactly, a known status, and for an ok row exactly the spec's
    metric columns as real numbers; otherwise the reason."""
    if not isinstance(doc, dict) or set(doc) != {"key", "row"}:
        return f"not a cell file (a JSON {type(doc).__name__}, required an object with key and row)"
    if doc["key"] != cell.key:
        return "its key is not this cell's"
    row = doc["row"]
    if not isinstance(row, dict):
        return f"its row is a {type(row).__name__}, required an object"
    if row.get("cell_id") != cell.id:
        return "its row's cell_id is not the cell's"
    for axis, value in cell.axis_values().items():
        got = row.get(axis)
        if type(got) is not type(value) or got != value:
            return f"its row has {axis} = {got!r} but the cell key says {value!r}"
    status = row.get("status")
    if status not in _STATUS:
        return f"its row has status {status!r}"
    if status == "ok":
        want = set(cell.settings.columns())
        have = set(row) - set(cell.axis_values()) - {"cell_id", "status", "error"}
        if have != want:
            return f"its row has the columns {sorted(have)}, the spec's are {sorted(want)}"
        bad = [c for c in want if isinstance(row[c], bool) or not isinstance(row[c], (int, float))]
        if bad or row.get("error") is not None:
            return f"its row has non-numbers in {bad}" if bad else "an ok row with an error"
    return ""


def check_owner(out, cells, replace: bool = False) -> None:
    """Refuse (ValueError) to run ``cells`` in ``out`` when it holds another spec's sweep.

    The cells already in ``out`` (its cell files and its table's cell_id column) are compatible when
    they all belong to the new spec (a resume, or the documented extension with more values) or
    when the new spec's cells are all among them (an earlier, smaller spec whose table is rebuilt
    without computing anything). Anything else would replace the table by an unrelated one:
    refused unless ``replace`` is True. Reads only; creates nothing."""
    out = Path(out)
    if replace or not out.is_dir():
        return
    existing = set()
    if (out / CELLS).is_dir():
        existing |= {p.name[:-5] for p in (out / CELLS).iterdir() if p.name.endswith(".json")}
    if (out / TABLE).is_file():
        try:
            import pyarrow.parquet as pq

            existing |= {
                v
                for v in pq.read_table(out / TABLE, columns=["cell_id"])
                .column("cell_id")
                .to_pylist()
                if isinstance(v, str)
            }
        except Exception as exc:  # noqa: BLE001 - any damage to the table: say so, do not replace
            raise ValueError(
                f"out {str(out)!r} holds a {TABLE} that cannot be read "
                f"({type(exc).__name__}); use another directory, or pass "
                f"--replace to overwrite it"
            ) from None
    if not existing:
        return
    new = {c.id for c in cells}
    if existing <= new or new <= existing:
        return
    previous = ""
    try:
        previous = f" ({json.loads((out / SPEC_FILE).read_text())['spec']['name']!r})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise ValueError(
        f"out {str(out)!r} holds the sweep of another spec{previous}: "
        f"{len(existing - new)} of its {len(existing)} cells are not cells of this "
        f"spec, and {len(new - existing)} of this spec's {len(new)} are not among "
        f"them; use another --out, or pass --replace to take the directory over "
        f"(its table is replaced)"
    )


def _schema(columns):
    import pyarrow as pa

    fields = [
        ("cell_id", pa.string()),
        ("problem", pa.string()),
        ("schedule", pa.string()),
        ("rule", pa.string()),
        ("w", pa.float64()),
        ("sampler", pa.string()),
        ("steps", pa.int64()),
        ("n", pa.int64()),
        ("seed", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
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
