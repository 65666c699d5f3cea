"""The refcfg package of an older git revision, for the benchmarks and checks that compare it
with this tree (``--old-rev REV`` of bench_compile.py, bench_roofline.py and kernel_bits.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def old_package(rev: str, dest: Path) -> Path:
    """The package of git revision ``rev`` extracted with ``git archive`` under ``dest`` (a
    directory to put on PYTHONPATH; reused if a package is already there)."""
    dest = Path(dest)
    if (dest / "refcfg" / "__init__.py").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    arch = subprocess.run(
        ["git", "archive", rev, "refcfg"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    return dest


def short_rev(rev: str) -> str:
    """The abbreviated commit id of ``rev`` (CalledProcessError for an unknown revision)."""
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
