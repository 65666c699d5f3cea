"""``refcfg labs``: write the labs' student notebooks to a folder for a class.

The labs (docs/labs/NN-name.md, jupytext Markdown) hold their solutions in tagged cells; the student
version keeps every function's signature and docstring and replaces its body with
``raise NotImplementedError``. The computations and the checks of the arguments (all of them before
any file is written) are :func:`refcfg.labs.student.write_labs`; this module checks that jupytext is
there, turns write_labs' errors into one-line usage errors and prints what it wrote.
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
    "nbformat (pip install 'refcfg[labs]')."
)

# write_labs' argument -> this command's option, for its error messages ("labs: ..." -> "--lab: ...")
_OPTIONS = {"formats": "--format", "labs": "--lab", "source": "--source", "out": "--out"}


def add_parser(sub):
    p = sub.add_parser("labs", help=HELP, description=DESCRIPTION)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument(
        "--lab",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="only lab N (repeatable; default: every lab)",
    )
    p.add_argument(
        "--format", default="ipynb", help="comma-separated formats among ipynb, md (default ipynb)"
    )
    p.add_argument(
        "--solutions",
        action="store_true",
        help="also write the labs with their solutions to OUT/solutions",
    )
    p.add_argument(
        "--source",
        default=None,
        help="folder of the lab sources NN-name.md (default: docs/labs of a source "
        "checkout, or the copy installed with refcfg)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing notebooks")
    p.set_defaults(func=run)


def run(args) -> int:
    out = check_out_dir(args.out)
    try:
        import jupytext  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as exc:
        raise usage(
            f"labs needs jupytext and nbformat (pip install 'refcfg[labs]'): {exc}; nothing written"
        ) from None
    from ..labs.student import write_labs

    formats = tuple(f.strip() for f in str(args.format).split(",") if f.strip())
    try:
        written = write_labs(
            out,
            solutions=args.solutions,
            formats=formats,
            source=args.source,
            labs=args.lab,
            force=args.force,
        )
    except (ValueError, TypeError) as exc:
        raise usage(_option_message(str(exc))) from None
    for path in written:
        print(path)
    n_labs = len({p.stem for p in written})
    print(f"wrote {len(written)} file(s) for {n_labs} lab(s) to {Path(out)}")
    return 0


def _option_message(message: str) -> str:
    """write_labs' message with its argument's name replaced by the option's."""
    name, sep, rest = message.partition(": ")
    if sep and name in _OPTIONS:
        return f"{_OPTIONS[name]}: " + rest.replace("force=True (--force)", "--force")
    return message
