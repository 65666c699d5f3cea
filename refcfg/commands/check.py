"""``refcfg check module:function ...``: check a user's field against the exact one.

Prints the report of :func:`refcfg.validate.check_field` (or JSON with ``--json``). Each target is
imported and checked in its own worker process (``refcfg/commands/_check_worker.py``) under
``--timeout``, so that a function or module that calls ``sys.exit``, ends the process or hangs
cannot pass for a verdict. Exit status 0 only when every target's every case ran and compared
within tolerance; 1 when one fails (wrong values, or its function raises, exits, or returns
something that is not a real (N, d) array); 2 when a target could not be checked (usage error,
module or function not found, import error, timeout), with a one-line message.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import signal
import sys
from pathlib import Path

from ._args import resolve_problem

HELP = "check a field fn(x, t, y) -> (N, d) against the exact field"

DEFAULT_TIMEOUT = 600.0
"""Seconds a target's import and check may take (``--timeout``)."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "check",
        help=HELP,
        description=HELP + ". TARGET is package.module:function (or "
        "path/to/file.py:function); the function takes NumPy arrays x (N, d), t (N,), y (N,) int "
        "(NULL = -1, see --null-label) and returns (N, d). The function runs in a separate process "
        "(its module is imported there), so that nothing it does (sys.exit, a crash, a hang) can "
        "pass for a verdict. Exit status: 0 pass (printed only after every case ran and was "
        "compared), 1 fail (wrong values, or the function raised, exited or returned something "
        "that is not a real (N, d) array), 2 could not check (usage error, import error, "
        "timeout).",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help="module:function to check")
    p.add_argument(
        "--problem",
        default="two-class-2d",
        help="problem name or .toml problem file (default two-class-2d)",
    )
    p.add_argument(
        "--kind",
        default="velocity",
        choices=("velocity", "score", "x0", "eps"),
        help="quantity the function returns (default velocity)",
    )
    p.add_argument(
        "--w",
        type=float,
        default=None,
        help="check the CFG field w K(x|y) + (1 - w) K(x|null) (notes eq. 65; "
        "Ho-Salimans omega = w - 1); default: the plain field",
    )
    p.add_argument(
        "--schedule",
        default="linear",
        help="schedule name (linear, cosine, sqrt, polynomial, linear-vp, vp); "
        "parameters as name:key=value,... e.g. polynomial:n=3 (default linear)",
    )
    p.add_argument(
        "--y",
        default="all",
        help="labels: 'all' (cycle over classes, and NULL without --w), 'null', or a "
        "class index (default all)",
    )
    p.add_argument(
        "--times", default=None, help="comma-separated times in [0, 1] (default 0,0.1,...,1)"
    )
    p.add_argument("--n", type=int, default=64, help="points per time (default 64)")
    p.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default 1e-6)")
    p.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance (default 1e-9)")
    p.add_argument("--seed", type=int, default=0, help="seed for the points (default 0)")
    p.add_argument(
        "--null-label",
        type=int,
        default=-1,
        help="the label value your function uses for NULL (default -1)",
    )
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up on a target (exit status 2) when its import and check take "
        f"longer than this (default {DEFAULT_TIMEOUT:g}; 0: no limit)",
    )
    p.add_argument(
        "--traceback",
        action="store_true",
        help="when a checked function (or the import of its module) raises, print its "
        "traceback to stderr after the one-line error",
    )
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


def _import_failure(modname: str, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return (
            f"importing {modname!r} called sys.exit({exc.code!r}): the module ended the "
            f"process at import, nothing was checked"
        )
    return f"importing {modname!r} raised {type(exc).__name__}: {exc}"


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
        except (Exception, SystemExit) as exc:
            raise _usage(_import_failure(modname, exc)) from exc
    else:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            raise _usage(f"cannot import module {modname!r}: {exc}") from None
        except (Exception, SystemExit) as exc:
            raise _usage(_import_failure(modname, exc)) from exc
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


def _check_args(args):
    """Every option checked before a worker starts (one-line usage errors)."""
    from ..validate import _resolve_labels, _resolve_times
    from ._args import field_bytes, require_job

    sched = _parse_schedule(args.schedule)
    path = resolve_problem(args.problem, sched).path  # a bad --problem is named before any import
    times = _parse_times(args.times)
    y = _parse_y(args.y)
    if not (args.timeout >= 0 and math.isfinite(args.timeout)):
        raise _usage(
            f"--timeout must be a number of seconds >= 0 (0: no limit), got {args.timeout:g}"
        )
    if args.n < 1:
        raise _usage(f"n must be a positive int, got {args.n}")
    try:
        tgrid = _resolve_times(times)
        _resolve_labels(y, 1, path.n_classes, args.w is not None)
    except (TypeError, ValueError) as exc:
        raise _usage(str(exc).splitlines()[0]) from None
    # check_field keeps x, the exact value and the output at every time, plus z, eps and the
    # field's temporaries (two evaluations with --w)
    K, d = path.mixture.marginal.K, path.d
    nbytes = 8.0 * args.n * d * (3 * tgrid.size + 6) + 2 * field_bytes(args.n, K, d)
    require_job(
        nbytes,
        f"checking at {args.n} points per time ({tgrid.size} times, d = {d}, K = {K})",
        "--n",
    )
    return times, y


def _run_worker(target: str, args, times, y):
    """(status, output, error text) of one target checked in a worker process."""
    import subprocess
    import tempfile

    import refcfg

    req = {
        "target": target,
        "problem": args.problem,
        "kind": args.kind,
        "y": y,
        "w": args.w,
        "schedule": args.schedule,
        "times": times,
        "n": args.n,
        "rtol": args.rtol,
        "atol": args.atol,
        "seed": args.seed,
        "null_label": args.null_label,
        "traceback": bool(args.traceback),
        "sys_path": [os.getcwd()] + list(sys.path),
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(refcfg.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    timeout = args.timeout if args.timeout > 0 else None
    with tempfile.TemporaryDirectory(prefix="refcfg-check-") as tmp:
        req_path, res_path = os.path.join(tmp, "request.json"), os.path.join(tmp, "result.json")
        with open(req_path, "w", encoding="utf-8") as fh:
            json.dump(req, fh)
        proc = subprocess.Popen(
            [sys.executable, "-m", "refcfg.commands._check_worker", req_path, res_path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if proc.poll() is None:  # timed out or interrupted: end the worker and its children
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                out, err = proc.communicate()
        chatter = (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")
        try:
            with open(res_path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            doc = {}
    if timed_out:
        where = {"import": "importing its module", "check": "running the check"}.get(
            doc.get("phase"), "starting the worker process, before its module was imported"
        )
        return (
            2,
            None,
            (
                f"{target} did not finish within --timeout {args.timeout:g} s (stopped "
                f"while {where}); nothing was checked to the end"
            ),
            chatter,
        )
    if "status" not in doc:
        rc = proc.returncode
        how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        if doc.get("phase") == "check":
            return (
                1,
                None,
                (
                    f"{target} ended the process ({how}) while it was being checked "
                    f"(os._exit, a crash?); no verdict"
                ),
                chatter,
            )
        return (
            2,
            None,
            (
                f"the check of {target} ended before it could run ({how}"
                + (" while importing its module" if doc.get("phase") == "import" else "")
                + "); nothing was checked"
            ),
            chatter,
        )
    return doc.get("code", 0), doc, None, chatter


def run(args) -> int:
    times, y = _check_args(args)
    for target in args.targets:  # syntax of every target before any import
        if not all(target.partition(":")[::2]) or ":" not in target:
            raise _usage(f"target must look like package.module:function, got {target!r}")
    reports, ok = [], True
    for target in args.targets:
        code, doc, error, chatter = _run_worker(target, args, times, y)
        if chatter:
            sys.stderr.write(chatter if chatter.endswith("\n") else chatter + "\n")
        if error is None and doc.get("status") == "error":
            error, tb = doc["message"], doc.get("traceback", "")
            print(f"refcfg: error: {error}", file=sys.stderr)
            if tb:
                sys.stderr.write(tb)
            return code
        if error is not None:
            print(f"refcfg: error: {error}", file=sys.stderr)
            return code
        reports.append(doc)
        ok &= bool(doc["passed"])
    if args.json:
        print(json.dumps({"passed": bool(ok), "reports": [d["report"] for d in reports]}, indent=1))
    else:
        print("\n\n".join(d["text"] for d in reports))
    return 0 if ok else 1
