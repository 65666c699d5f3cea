"""``refcfg check module:function ...``: check a user's field against the exact one.

Prints the report of :func:`refcfg.validate.check_field` (or JSON with ``--json``). Exit status 0 when
every target passes, 1 when one fails (or its function raises / returns the wrong shape), 2 on usage
errors (module or function not found, bad option), with a one-line message.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path

from ._args import resolve_problem

HELP = "check a field fn(x, t, y) -> (N, d) against the exact field"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "check", help=HELP, description=HELP + ". TARGET is package.module:function (or "
        "path/to/file.py:function); the function takes NumPy arrays x (N, d), t (N,), y (N,) int "
        "(NULL = -1, see --null-label) and returns (N, d). Exit status: 0 pass, 1 fail, 2 usage.")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="module:function to check")
    p.add_argument("--problem", default="two-class-2d",
                   help="problem name or .toml problem file (default two-class-2d)")
    p.add_argument("--kind", default="velocity", choices=("velocity", "score", "x0", "eps"),
                   help="quantity the function returns (default velocity)")
    p.add_argument("--w", type=float, default=None,
                   help="check the CFG field w K(x|y) + (1 - w) K(x|null) (notes eq. 65; "
                        "Ho-Salimans omega = w - 1); default: the plain field")
    p.add_argument("--schedule", default="linear",
                   help="schedule name (linear, cosine, sqrt, polynomial, linear-vp, vp); "
                        "parameters as name:key=value,... e.g. polynomial:n=3 (default linear)")
    p.add_argument("--y", default="all",
                   help="labels: 'all' (cycle over classes, and NULL without --w), 'null', or a "
                        "class index (default all)")
    p.add_argument("--times", default=None,
                   help="comma-separated times in [0, 1] (default 0,0.1,...,1)")
    p.add_argument("--n", type=int, default=64, help="points per time (default 64)")
    p.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default 1e-6)")
    p.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance (default 1e-9)")
    p.add_argument("--seed", type=int, default=0, help="seed for the points (default 0)")
    p.add_argument("--null-label", type=int, default=-1,
                   help="the label value your function uses for NULL (default -1)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.add_argument("--traceback", action="store_true",
                   help="when a checked function (or the import of its module) raises, print its "
                        "traceback to stderr after the one-line error")
    p.set_defaults(func=run)
    return p


def _usage(msg):
    from ..cli import UsageError
    return UsageError(msg)


def _parse_schedule(text):
    from ..problems import resolve_schedule

    try:
        return resolve_schedule(text)
    except (TypeError, ValueError) as exc:
        raise _usage(f"--schedule: {exc}") from None


def _parse_times(text):
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _usage(f"--times must be comma-separated numbers, got {text!r}") from None


def _parse_y(text):
    if text in ("all", "null"):
        return text
    try:
        return int(text)
    except ValueError:
        raise _usage(f"--y must be 'all', 'null' or a class index, got {text!r}") from None


def load_target(target: str):
    """The callable named by 'package.module:function' (attribute path allowed after ':') or
    'path/to/file.py:function'. The current directory is put on sys.path first, as ``python -m``
    does. Raises UsageError (one line) when it cannot be found."""
    modname, sep, attr = target.partition(":")
    if not sep or not modname or not attr:
        raise _usage(f"target must look like package.module:function, got {target!r}")
    if modname.endswith(".py"):
        path = Path(modname)
        if not path.is_file():
            raise _usage(f"cannot import {modname!r}: no such file")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise _usage(f"importing {modname!r} raised {type(exc).__name__}: {exc}") from exc
    else:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            raise _usage(f"cannot import module {modname!r}: {exc}") from None
        except Exception as exc:
            raise _usage(f"importing {modname!r} raised {type(exc).__name__}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _usage(f"module {modname!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise _usage(f"{target!r} is not callable (got {type(obj).__name__})")
    return obj


def _user_frames(tb):
    """The traceback from the first frame outside refcfg (the user's function) on."""
    import refcfg

    pkg = os.path.dirname(os.path.abspath(refcfg.__file__)) + os.sep
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(pkg):
        tb = tb.tb_next
    return tb


def run(args) -> int:
    from ..validate import FieldError, check_field

    sched = _parse_schedule(args.schedule)
    resolve_problem(args.problem, sched)   # a bad --problem is named before any import or check
    times = _parse_times(args.times)
    y = _parse_y(args.y)
    try:
        fns = [(t, load_target(t)) for t in args.targets]
    except Exception as exc:   # importing the user's module raised: its traceback on request
        cause = exc.__cause__
        if not (args.traceback and isinstance(cause, Exception)):
            raise
        print(f"refcfg: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        traceback.print_exception(type(cause), cause, _user_frames(cause.__traceback__),
                                  file=sys.stderr)
        return 2
    reports, ok = [], True
    for target, fn in fns:
        try:
            rep = check_field(fn, args.problem, args.kind, y=y, w=args.w, schedule=sched,
                              times=times, n=args.n, rtol=args.rtol, atol=args.atol,
                              seed=args.seed, null_label=args.null_label, name=target)
        except FieldError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, BaseException) else None
            raised = cause is not None and " raised " in str(exc)
            hint = " (rerun with --traceback to see where)" if raised and not args.traceback else ""
            print(f"refcfg: error: {str(exc).splitlines()[0]}{hint}", file=sys.stderr)
            if args.traceback and raised:
                traceback.print_exception(type(cause), cause, _user_frames(cause.__traceback__),
                                          file=sys.stderr)
            return 1
        except (TypeError, ValueError) as exc:
            raise _usage(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        reports.append(rep)
        ok &= rep.passed
    if args.json:
        print(json.dumps({"passed": bool(ok), "reports": [r.to_dict() for r in reports]},
                         indent=1))
    else:
        print("\n\n".join(str(r) for r in reports))
    return 0 if ok else 1
