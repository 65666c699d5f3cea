"""Argument checks shared by the subcommands, run before any work: each raises
:class:`refcfg.cli.UsageError` with one line that names the option, what it got and what it needs."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "usage",
    "check_int",
    "check_out_dir",
    "check_out_file",
    "resolve_problem",
    "skipped_text",
    "field_bytes",
    "require_job",
]


def usage(message: str):
    """A UsageError (exit status 2, one line)."""
    from ..cli import UsageError

    return UsageError(message)


def check_int(value: int, option: str, minimum: int) -> int:
    """``value`` if it is >= minimum, else UsageError naming ``option``."""
    if value < minimum:
        raise usage(f"{option} must be >= {minimum}, got {value}")
    return value


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_dir(out, option: str = "--out") -> Path:
    """``out`` as a Path if it is an existing directory or one that can be created: every existing
    ancestor is a directory and the nearest one is writable. Creates nothing."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise usage(f"{option} {str(out)!r} exists and is not a directory")
        if not os.access(out, os.W_OK | os.X_OK):
            raise usage(f"{option} {str(out)!r} is not writable")
        return out
    base = _nearest_existing(out.absolute())
    if not base.is_dir():
        raise usage(
            f"{option} {str(out)!r} cannot be created: {str(base)!r} is a file, not a directory"
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise usage(f"{option} {str(out)!r} cannot be created: {str(base)!r} is not writable")
    return out


def check_out_file(out, option: str = "--out") -> Path:
    """``out`` as a Path if a file can be written there: its directory exists and is writable and
    ``out`` is not a directory. Creates nothing."""
    out = Path(out)
    if out.is_dir():
        raise usage(f"{option} {str(out)!r} is a directory; give a file name")
    parent = out.absolute().parent
    if not parent.exists():
        raise usage(f"{option} {str(out)!r}: directory {str(out.parent)!r} does not exist")
    if not parent.is_dir():
        raise usage(f"{option} {str(out)!r}: {str(out.parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise usage(f"{option} {str(out)!r}: directory {str(out.parent)!r} is not writable")
    if out.exists() and not os.access(out, os.W_OK):
        raise usage(f"{option} {str(out)!r} exists and is not writable")
    return out


def resolve_problem(problem, schedule=None, *, option: str = "--problem"):
    """:func:`refcfg.problems.resolve` with its errors as one-line usage errors naming the option
    (``--schedule`` when the schedule is at fault)."""
    from ..problems import resolve, resolve_schedule

    if schedule is not None:
        try:
            schedule = resolve_schedule(schedule)
        except (TypeError, ValueError) as exc:
            raise usage(f"--schedule: {_first_line(exc)}") from None
    try:
        return resolve(problem, schedule)
    except (TypeError, ValueError) as exc:
        raise usage(f"{option}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def skipped_text(what: str, skipped: dict, total: int) -> str:
    """'skipped k of total <what>: a, b (reason); c (reason)' from {name: reason}, grouping by
    reason; '' if nothing was skipped."""
    if not skipped:
        return ""
    groups: dict[str, list[str]] = {}
    for name, why in skipped.items():
        groups.setdefault(why, []).append(name)
    return f"skipped {len(skipped)} of {total} {what}: " + "; ".join(
        f"{', '.join(names)} ({why})" for why, names in groups.items()
    )


def field_bytes(n: int, K: int, d: int) -> float:
    """:func:`refcfg.problems.field_bytes` (imported on call: the parser stays light)."""
    from ..problems import field_bytes as estimate

    return estimate(n, K, d)


def require_job(nbytes: float, what: str, driver: str) -> None:
    """:func:`refcfg._limits.require_memory` for a command: the refusal is a one-line usage error
    (exit status 2), raised before any work or output."""
    from .._limits import require_memory

    try:
        require_memory(nbytes, what, driver)
    except ValueError as exc:
        raise usage(str(exc)) from None
