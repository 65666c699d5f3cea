"""``refcfg reproduce NAME [--fast] [--out DIR]``: run one verification result (docs/verification.md),
print its table and key numbers, and write its figure to DIR/NAME.png."""

from __future__ import annotations

import time
from pathlib import Path

from ._args import check_int, check_out_dir, usage

HELP = "reproduce a verification result: print its table, write its figure"


def add_parser(subparsers):
    from ..experiments import EXPERIMENTS

    p = subparsers.add_parser(
        "reproduce",
        help=HELP,
        description=HELP + ". Results: " + ", ".join(EXPERIMENTS) + " (or 'all').",
    )
    p.add_argument("name", metavar="NAME", help="result name, or 'all'")
    p.add_argument("--fast", action="store_true", help="the small variant used by the tests")
    p.add_argument("--out", default=".", help="directory for the figure (default: current)")
    p.add_argument("--seed", type=int, default=0, help="seed >= 0 (default 0)")
    p.add_argument("--no-figure", action="store_true", help="do not write the figure")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..experiments import EXPERIMENTS, run_experiment
    from ..plotting.studies import write_figure

    # every check before any work or output
    if args.name != "all" and args.name not in EXPERIMENTS:
        raise usage(f"unknown result {args.name!r}; known: {', '.join(EXPERIMENTS)}, all")
    check_int(args.seed, "--seed", 0)
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    out = Path(args.out)
    if not args.no_figure:
        out = check_out_dir(args.out)
        out.mkdir(parents=True, exist_ok=True)
    for name in names:
        t0 = time.perf_counter()
        res = run_experiment(name, fast=args.fast, seed=args.seed)
        print(f"## {res.name}: {res.title}{' (fast)' if args.fast else ''}\n")
        print(res.format_table())
        print("\nkey numbers:")
        print(res.format_key())
        if not args.no_figure:
            path = write_figure(res, out / f"{name}{'-fast' if args.fast else ''}.png")
            print(f"\nfigure: {path}")
        print(f"time: {time.perf_counter() - t0:.1f} s\n")
    return 0
