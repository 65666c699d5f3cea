"""``refcfg compare-guidance``: guidance variants on exact fields, scored against ground truth.

Runs every variant of ``refcfg.variants`` (plain CFG, guidance interval, guidance rescale, APG,
CFG-Zero*, autoguidance, a linear w(t) schedule) from the same initial noise for a sweep of w and
prints a Markdown table: class confidence under the exact Bayes classifier, mean log p(x|y), mass per
mode, energy distance to p(x|y) and to the tilted law p(x|y)^w p(x)^(1-w)/Z. With ``--out DIR`` it
also writes DIR/table.md, DIR/results.json and DIR/figure.png. See docs/guidance-variants.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare-guidance",
        help="guidance variants (interval, rescale, APG, CFG-Zero*, autoguidance, w(t)) vs exact laws",
        description="Run every guidance variant on exact fields from the same noise for a sweep of w "
                    "and score the samples against p(x|y) and the tilted law p(x|y)^w p(x)^(1-w)/Z.")
    p.add_argument("--problem", default="two-class-2d",
                   help="problem name or .toml file (default two-class-2d)")
    p.add_argument("--w", type=float, nargs="+", default=None,
                   help="guidance weights (refcfg convention, w = 1 + omega; default 1 2 4)")
    p.add_argument("--n", type=int, default=None, help="samples per variant and w (default 2000)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default 100)")
    p.add_argument("--sampler", default="euler", choices=("euler", "heun"),
                   help="ODE sampler (default euler: one evaluation per step)")
    p.add_argument("--y", type=int, default=0, help="target class (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shared noise and references")
    p.add_argument("--n-ref", type=int, default=None,
                   help="size of the exact reference samples (default 2 n)")
    p.add_argument("--schedule", default="linear", help="schedule of the path (default linear)")
    p.add_argument("--variants", nargs="+", default=None,
                   help="subset of variants (default all)")
    p.add_argument("--out", default=None, help="directory for table.md, results.json, figure.png")
    p.add_argument("--fast", action="store_true",
                   help="small sizes (n 200, 20 steps, w 1 3) for tests and smoke runs")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..compare_guidance import FAST, FULL, compare_guidance, format_table, plot_comparison, to_json
    from ..variants import VARIANTS

    sizes = dict(FAST if args.fast else FULL)
    ws = tuple(args.w) if args.w else sizes["ws"]
    n = args.n if args.n is not None else sizes["n"]
    steps = args.steps if args.steps is not None else sizes["steps"]
    n_ref = args.n_ref if args.n_ref is not None else (sizes["n_ref"] if args.n is None else None)
    variants = tuple(args.variants) if args.variants else VARIANTS
    result = compare_guidance(args.problem, ws=ws, n=n, steps=steps, sampler=args.sampler,
                              y=args.y, seed=args.seed, n_ref=n_ref, variants=variants,
                              schedule=args.schedule,
                              progress=lambda msg: print(msg, file=sys.stderr))
    table = format_table(result)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table + "\n")
        (out / "results.json").write_text(to_json(result) + "\n")
        plot_comparison(result, out / "figure.png")
        print(f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'figure.png'}",
              file=sys.stderr)
    return 0
