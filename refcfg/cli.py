"""The ``refcfg`` command line.

Subcommands live one per module in ``refcfg/commands/``; each defines ``add_parser(subparsers)``
(registering its parser with ``set_defaults(func=run)``) and ``run(args) -> int``, and checks every
argument and output path (``refcfg/commands/_args.py``) before it computes or writes anything. User
errors (ValueError, TypeError, UsageError, OSError such as a missing file) are printed as one line
``refcfg: error: ...`` with exit status 2, without a traceback (``refcfg check --traceback`` shows the
traceback of an error raised inside the user's own function).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

__all__ = ["main", "UsageError", "build_parser"]


class UsageError(Exception):
    """A user error in a command's arguments (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the usage too; keep it short)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, commands

    parser = _Parser(
        prog="refcfg",
        description="Exact classifier-free guidance for Gaussian-mixture "
        "flow matching: fields, samplers, checks, figures.",
    )
    parser.add_argument("--version", action="version", version=f"refcfg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        from .sampling.cpu import announce_compiles

        with announce_compiles():  # one line on stderr before a sampling kernel compiles
            status = args.func(args)
        return 0 if status is None else int(status)
    except (UsageError, ValueError, TypeError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"refcfg: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refcfg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
