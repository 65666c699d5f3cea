"""Execute the labs (docs/labs/NN-name.md) with their solutions, or their student versions, and
print each lab's wall time, the kernel's CPU time (user + system, a measure that does not depend on
the other work on the machine) and the grader verdicts. With the solutions, the exit status is 1
when a lab stops on an error, a verdict says FAIL, or a grader call printed no verdict.

    python verification/run_labs.py                 # every lab, with solutions
    python verification/run_labs.py 2 --student     # lab 2 as a student receives it

Needs jupytext, nbclient, nbformat and an ipykernel "python3" kernel (refcfg[labs]).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refcfg.labs.run import execute, solution_failures, verdicts  # noqa: E402
from refcfg.labs.student import lab_number, lab_sources, student_notebook  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("labs", nargs="*", type=int, help="lab numbers (default: all)")
    p.add_argument("--student", action="store_true", help="run the student version instead")
    p.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    p.add_argument("--source", default=None, help="folder of the lab sources (default: docs/labs)")
    args = p.parse_args(argv)
    status = 0
    for path in lab_sources(args.source):
        if args.labs and lab_number(path) not in args.labs:
            continue
        nb = student_notebook(path, solutions=not args.student)
        t0 = time.perf_counter()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        nb, error = execute(nb, cwd=path.parent, timeout=args.timeout)
        seconds = time.perf_counter() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, once shut down
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        lines = verdicts(nb)
        n_pass = sum(v.startswith("PASS") for v in lines)
        print(
            f"{path.name}: {seconds:.1f} s wall, {cpu:.1f} s CPU (kernel), {n_pass} PASS, "
            f"{len(lines) - n_pass} FAIL" + (f", stopped: {error}" if error else "")
        )
        for v in lines:
            print("   ", v)
        if not args.student:
            failures = solution_failures(nb, error)
            for f in failures:
                print("    problem:", f)
            status = 1 if failures else status
    return status


if __name__ == "__main__":
    sys.exit(main())
