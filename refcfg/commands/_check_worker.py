"""The process in which ``refcfg check`` imports and runs a user's function.

``python -m refcfg.commands._check_worker REQUEST RESULT``: REQUEST is a JSON file with the target
and the options of the check; the worker writes RESULT (JSON) twice: ``{"phase": "import"}`` before
it imports the user's module and ``{"phase": "check"}`` before it calls the function, then the
outcome: ``{"status": "report", ...}`` or ``{"status": "error", "code": 1 | 2, ...}``. If the user's
code ends the process (``sys.exit`` swallowed nowhere, ``os._exit``, a crash) or hangs, the parent
finds the last phase in RESULT and says what happened; a verdict exists only when RESULT holds one.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _write(path: str, doc: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _work(req: dict, result_path: str) -> dict:
    from ..cli import UsageError
    from ..validate import FieldError, check_field
    from .check import _user_frames, load_target

    _write(result_path, {"phase": "import"})
    try:
        fn = load_target(req["target"])
    except UsageError as exc:
        cause = exc.__cause__
        tb = ""
        if req["traceback"] and isinstance(cause, BaseException):
            tb = "".join(
                traceback.format_exception(type(cause), cause, _user_frames(cause.__traceback__))
            )
        return {"status": "error", "code": 2, "message": _first_line(exc), "traceback": tb}
    _write(result_path, {"phase": "check"})
    try:
        rep = check_field(
            fn,
            req["problem"],
            req["kind"],
            y=req["y"],
            w=req["w"],
            schedule=req["schedule"],
            times=req["times"],
            n=req["n"],
            rtol=req["rtol"],
            atol=req["atol"],
            seed=req["seed"],
            null_label=req["null_label"],
            name=req["target"],
        )
    except FieldError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, BaseException) else None
        raised = cause is not None and " raised " in str(exc)
        hint = " (rerun with --traceback to see where)" if raised and not req["traceback"] else ""
        tb = ""
        if req["traceback"] and raised:
            tb = "".join(
                traceback.format_exception(type(cause), cause, _user_frames(cause.__traceback__))
            )
        return {"status": "error", "code": 1, "message": _first_line(exc) + hint, "traceback": tb}
    except (TypeError, ValueError) as exc:
        return {"status": "error", "code": 2, "message": _first_line(exc), "traceback": ""}
    return {
        "status": "report",
        "passed": bool(rep.passed),
        "text": str(rep),
        "report": rep.to_dict(),
    }


def main(request_path: str, result_path: str) -> int:
    with open(request_path, encoding="utf-8") as fh:
        req = json.load(fh)
    for entry in reversed(req.get("sys_path", [])):  # the caller's import path, in its order
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        doc = _work(req, result_path)
    except MemoryError:
        doc = {
            "status": "error",
            "code": 2,
            "traceback": "",
            "message": f"the check of {req['target']} ran out of memory (lower --n)",
        }
    except BaseException as exc:  # noqa: BLE001 - anything else the user's code threw at us
        doc = {
            "status": "error",
            "code": 2,
            "traceback": traceback.format_exc() if req.get("traceback") else "",
            "message": f"the check of {req['target']} stopped on {type(exc).__name__}: "
            f"{_first_line(exc)}",
        }
    _write(result_path, doc)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handler or thread of the user's module may change the outcome


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
