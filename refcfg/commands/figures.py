"""``refcfg figures``: the paper-style figure set (PNG and PDF), optionally the interactive page."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("figures", help="write the figure set (PNG + PDF) and, with --interactive, "
                       "the interactive teaching page")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--problem", default="two-class-2d",
                   help="problem name or .toml file (default two-class-2d)")
    p.add_argument("--model", default=None,
                   help="a trained CFG model (.npz from `refcfg train` or `refcfg demo`) for the "
                        "learned-vs-exact figure")
    p.add_argument("--interactive", action="store_true",
                   help="also write OUT/interactive.html (sliders for w and t; no server needed)")
    p.add_argument("--y", type=int, default=0, help="class shown (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--formats", default="png,pdf", help="comma-separated formats (png, pdf, svg)")
    p.add_argument("--fast", action="store_true", help="small grids and samples (smoke test)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import figures, interactive
    from ..paths import GMMPath
    from ..problems import problem

    if args.model is not None and not Path(args.model).is_file():
        raise ValueError(f"--model {args.model!r} does not exist (train one with `refcfg train` or "
                         "`refcfg demo`)")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    path = GMMPath(problem(args.problem), "linear")
    written = figures.make_figures(args.out, path, model=args.model, y=args.y, seed=args.seed,
                                   formats=formats, fast=args.fast,
                                   progress=False if args.no_progress else True)
    for name, files in written.items():
        print(f"{name}: " + ", ".join(str(f) for f in files))
    if args.interactive:
        if path.d != 2:
            raise ValueError(f"--interactive needs a 2-D problem, {args.problem!r} has d = {path.d}")
        page = interactive.write_page(Path(args.out) / "interactive.html", path, y=args.y,
                                      fast=args.fast, seed=args.seed, problem=str(args.problem))
        print(f"interactive page: {page}")
    print(f"figures written to {Path(args.out).resolve()}")
    return 0
