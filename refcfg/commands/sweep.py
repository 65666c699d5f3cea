"""``refcfg sweep SPEC.toml --out DIR [--scheduler ADDR] [--workers N]``: run (or resume) a grid of
cells on Dask and write its Parquet table; ``refcfg sweep plot DIR``: plot the table (docs/sweeps.md)."""

from __future__ import annotations

HELP = "run a grid of guidance/sampler cells on Dask (resumable); 'sweep plot DIR' plots its table"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "sweep",
        help=HELP,
        description=HELP + ". A spec (TOML) names the axes and the metrics; see docs/sweeps.md.",
        epilog="examples: refcfg sweep verification/sweeps/guidance-variants.toml --out runs/gv ; "
        "refcfg sweep plot runs/gv",
    )
    p.add_argument("target", metavar="SPEC.toml | plot", help="a spec file, or 'plot'")
    p.add_argument("dir", nargs="?", metavar="DIR", help="with 'plot': the sweep directory")
    p.add_argument(
        "--out",
        help="run: the output directory (required; an existing one is resumed); "
        "plot: the directory of the figures (default DIR)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="address of an existing Dask scheduler (default: a local cluster)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local cluster: worker processes (default: the number of cores; 0: run in "
        "this process)",
    )
    p.add_argument(
        "--threads", type=int, default=1, metavar="T", help="Numba threads per cell (default 1)"
    )
    p.add_argument(
        "--retries", type=int, default=2, help="extra attempts of a failing cell (default 2)"
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="run: take over an --out that holds the sweep of another spec (refused "
        "otherwise; resuming or extending the same sweep needs no flag)",
    )
    p.add_argument(
        "--metric",
        action="append",
        metavar="COLUMN",
        help="plot: a metric column to plot (repeatable; default every metric)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar even when stderr is not a terminal",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ._args import check_int, check_out_dir, usage

    if args.target == "plot":
        return _plot(args)
    if args.dir is not None:
        raise usage(
            f"unexpected argument {args.dir!r}: give 'refcfg sweep SPEC.toml --out DIR' or "
            f"'refcfg sweep plot DIR'"
        )
    if args.metric:
        raise usage("--metric is an option of 'refcfg sweep plot DIR'")
    if args.out is None:
        raise usage("--out DIR is required to run a sweep")
    if args.workers is not None:
        check_int(args.workers, "--workers", 0)
        if args.workers == 0 and args.scheduler:
            raise usage("--workers 0 (in this process) cannot be combined with --scheduler")
    check_int(args.threads, "--threads", 1)
    check_int(args.retries, "--retries", 0)
    check_out_dir(args.out)
    from ..sweep import load_spec
    from ..sweep import run as run_sweep

    spec = load_spec(args.target)  # ValueError naming the key: exit 2, before any work
    progress = "force" if args.progress else (not args.no_progress)
    print(f"sweep {spec.name!r}: {spec.n_cells} cells -> {args.out}")
    report = run_sweep(
        spec,
        args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        threads=args.threads,
        retries=args.retries,
        progress=progress,
        replace=args.replace,
    )
    print(report.summary())
    return 1 if report.failed else 0


def _plot(args) -> int:
    from ._args import usage

    if args.dir is None:
        raise usage("'refcfg sweep plot' needs the sweep directory: refcfg sweep plot DIR")
    from ..plotting.sweeps import plot_sweep

    for path in plot_sweep(args.dir, args.metric, args.out):
        print(path)
    return 0
