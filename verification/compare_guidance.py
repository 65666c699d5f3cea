"""Regenerate the tables and figures of docs/guidance-variants.md.

Runs ``refcfg compare-guidance`` on two-class-2d, mit-symmetric and tree with the sizes stated in the
doc and writes docs/guidance-variants/<problem>/{table.md, results.json, figure.png}. The variants
are Python field objects whose exact component fields run on the Numba kernels; the tree
(2 x 1016 components) is still run small (about 45 s on 2 cores).

    .venv/bin/python verification/compare_guidance.py            # all three
    .venv/bin/python verification/compare_guidance.py tree       # one problem
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from refcfg.cli import main

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "guidance-variants"

RUNS = {
    "two-class-2d": ["--n", "2000", "--steps", "100", "--n-ref", "4000", "--w", "1", "2", "4"],
    "mit-symmetric": ["--n", "2000", "--steps", "100", "--n-ref", "4000", "--w", "1", "2", "4"],
    "tree": ["--n", "300", "--steps", "32", "--n-ref", "1000", "--w", "1", "2", "4"],
}


def run(name: str) -> None:
    t0 = time.perf_counter()
    status = main(
        [
            "compare-guidance",
            "--problem",
            name,
            *RUNS[name],
            "--seed",
            "0",
            "--out",
            str(OUT / name),
        ]
    )
    if status != 0:
        raise SystemExit(status)
    print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    for name in sys.argv[1:] or list(RUNS):
        if name not in RUNS:
            raise SystemExit(f"unknown problem {name!r}; known: {', '.join(RUNS)}")
        run(name)
