"""``refcfg labs``: write the labs' student notebooks to a folder for a class.

The labs (docs/labs/NN-name.md, jupytext Markdown) hold their solutions in tagged cells; the student
version keeps every function's signature and docstring and replaces its body with
``raise NotImplementedError``. The computations are :mod:`refcfg.labs.student`; this module checks
the arguments (all of them before any file is written), calls it and prints what it wrote.
"""

from __future__ import annotations

from pathlib import Path

from ._args import check_out_dir, usage

HELP = "write the labs' student notebooks (exercises graded against the exact fields) to a folder"

DESCRIPTION = (
    "Write the student version of each lab (the lecture's Gaussian paths, the marginal field and "
    "the score, guidance, what guidance does) to --out as Jupyter notebooks: every exercise is a "
    "function to write, followed by a grader call that compares it with the exact field and names "
    "the mistake. --solutions also writes the full labs to OUT/solutions. Needs jupytext and "
    "nbformat (pip install 'refcfg[labs]').")


def add_parser(sub):
    p = sub.add_parser("labs", help=HELP, description=DESCRIPTION)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--lab", type=int, action="append", default=None, metavar="N",
                   help="only lab N (repeatable; default: every lab)")
    p.add_argument("--format", default="ipynb",
                   help="comma-separated formats among ipynb, md (default ipynb)")
    p.add_argument("--solutions", action="store_true",
                   help="also write the labs with their solutions to OUT/solutions")
    p.add_argument("--source", default=None,
                   help="folder of the lab sources NN-name.md (default: docs/labs of this checkout)")
    p.add_argument("--force", action="store_true", help="overwrite existing notebooks")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..labs.student import FORMATS, lab_sources, write_labs

    out = check_out_dir(args.out)
    formats = tuple(f.strip() for f in str(args.format).split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if not formats or bad:
        raise usage(f"--format must be a comma-separated list of {', '.join(FORMATS)}, got "
                    f"{args.format!r}")
    try:
        sources = lab_sources(args.source)
    except ValueError as exc:
        raise usage(f"--source: {str(exc).removeprefix('source: ')}") from None
    numbers = sorted(int(p.name[:2]) for p in sources)
    if args.lab is not None:
        missing = [k for k in args.lab if k not in numbers]
        if missing:
            raise usage(f"--lab {missing[0]}: no such lab (have {', '.join(map(str, numbers))})")
    try:
        written = write_labs(out, solutions=args.solutions, formats=formats, source=args.source,
                             labs=args.lab, force=args.force)
    except ValueError as exc:
        message = str(exc)
        if message.startswith("out: "):
            raise usage("--out: " + message[5:].replace("force=True (--force)", "--force")) from None
        raise
    for path in written:
        print(path)
    n_labs = len(args.lab) if args.lab else len(numbers)
    print(f"wrote {len(written)} file(s) for {n_labs} lab(s) to {Path(out)}")
    return 0
