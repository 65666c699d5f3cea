"""Resource limits: refuse, before any work, a job whose memory cannot fit on this machine.

Every entry point that allocates in proportion to its arguments (particles, steps, batch sizes, grid
cells, sizes declared in a file header) estimates its peak memory from those arguments and calls
:func:`require_memory` first. The estimate is an upper bound of the arrays the job holds at once; the
message names the argument that drives it, so the user knows what to lower.

The memory available is the smallest of: the kernel's ``MemAvailable``, the cgroup limit (v2
``memory.max`` or v1 ``memory.limit_in_bytes``) less what the group already uses, and the process's
``RLIMIT_AS``. ``REFCFG_MEMORY_LIMIT`` (bytes, or with a suffix K, M, G, T) overrides it, for tests
and for users who want a stricter cap.
"""

from __future__ import annotations

import os
import re

__all__ = ["available_memory", "format_bytes", "require_memory", "MEMORY_FRACTION"]

MEMORY_FRACTION = 0.8
"""Fraction of the available memory a single job may plan to use (room for the interpreter, BLAS
buffers and the rest of the machine)."""

_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, flags=re.IGNORECASE)
    if m is None:
        raise ValueError(
            f"REFCFG_MEMORY_LIMIT must be a size in bytes such as 2G or 500M, got {text!r}"
        )
    return int(float(m.group(1)) * _SUFFIX[m.group(2).upper()])


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    for limit_path, usage_path in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit = _read_int(limit_path)  # "max" (no limit) reads as None
        if limit is not None and limit < 2**60:
            return max(limit - (_read_int(usage_path) or 0), 0)
    return None


def _rlimit_as() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft in (resource.RLIM_INFINITY, -1) else int(soft)


def available_memory() -> int:
    """Bytes of memory this process can still allocate (see the module docstring)."""
    override = os.environ.get("REFCFG_MEMORY_LIMIT")
    if override:
        return _parse_size(override)
    found = [v for v in (_meminfo_available(), _cgroup_available(), _rlimit_as()) if v is not None]
    if not found:  # no way to tell (not Linux): physical memory
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            return 2**40
    return min(found)


def format_bytes(n: float) -> str:
    """A byte count for messages: '1.5 GiB', '320 MiB', '12 KiB'."""
    n = float(n)
    if n != n or n in (float("inf"), float("-inf")):
        return f"{n} B"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def require_memory(nbytes: float, what: str, driver: str) -> None:
    """Raise a ValueError when a job estimated to need ``nbytes`` cannot fit.

    ``what`` names the job ("sampling 1000000000 particles"), ``driver`` the argument(s) to lower
    ("n or steps"). Call it before allocating anything or creating any output.
    """
    budget = MEMORY_FRACTION * available_memory()
    if not nbytes <= budget:  # also refuses NaN and inf estimates
        raise ValueError(
            f"{what} needs an estimated {format_bytes(nbytes)} of memory but "
            f"{format_bytes(budget)} can be used on this machine "
            f"({MEMORY_FRACTION:.0%} of {format_bytes(available_memory())} available); "
            f"lower {driver}"
        )
