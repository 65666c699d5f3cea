"""``refcfg compare-guidance``: guidance variants on exact fields, scored against ground truth.

Runs every variant of ``refcfg.variants`` (plain CFG, guidance interval, guidance rescale, APG,
CFG-Zero*, autoguidance, a linear w(t) schedule) from the same initial noise for a sweep of w and
prints a Markdown table: class confidence under the exact Bayes classifier, mean log p(x|y), mass per
mode, energy distance to p(x|y) and to the tilted law p(x|y)^w p(x)^(1-w)/Z. With ``--out DIR`` it
also writes DIR/table.md, DIR/results.json and DIR/figure.png. See docs/guidance-variants.md.

The computation is :func:`refcfg.experiments.compare_guidance.compare_guidance`; this module checks
every argument before it starts. A variant that the problem does not support (guidance rescale needs
d >= 2) is left out of the default set with a line that says so, and refused when asked for by name.
"""

from __future__ import annotations

import math
import sys

from ._args import check_int, check_out_dir, resolve_problem, usage

__all__ = ["add_parser", "run", "unsupported_variants"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare-guidance",
        help="guidance variants (interval, rescale, APG, CFG-Zero*, autoguidance, w(t)) vs exact laws",
        description="Run every guidance variant on exact fields from the same noise for a sweep of w "
                    "and score the samples against p(x|y) and the tilted law p(x|y)^w p(x)^(1-w)/Z. "
                    "Variants the problem does not support (rescale needs d >= 2) are left out of "
                    "the default set, with a line that says so.")
    p.add_argument("--problem", default="two-class-2d",
                   help="problem name or .toml file (default two-class-2d)")
    p.add_argument("--w", type=float, nargs="+", default=None,
                   help="guidance weights >= 0 (refcfg convention, w = 1 + omega; default 1 2 4)")
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
                   help="subset of variants (default: all that the problem supports)")
    p.add_argument("--out", default=None, help="directory for table.md, results.json, figure.png")
    p.add_argument("--fast", action="store_true",
                   help="small sizes (n 200, 20 steps, w 1 3) for tests and smoke runs")
    p.set_defaults(func=run)


def unsupported_variants(path, y: int, variants, steps: int) -> dict:
    """{variant: reason} for the variants that cannot run on ``path``: each is built on the exact
    fields and evaluated at two points, and the library's own ValueError is the reason."""
    import numpy as np

    from ..sampling.api import time_grid
    from ..variants import make_variant

    x = np.random.default_rng(0).standard_normal((2, path.d))
    out = {}
    for v in variants:
        try:
            make_variant(v, path, y, 2.0, t_grid=time_grid(steps)).velocity(x, 0.5)
        except ValueError as exc:
            out[v] = str(exc).splitlines()[0]
    return out


def run(args) -> int:
    from ..experiments.compare_guidance import FAST, FULL, compare_guidance
    from ..variants import VARIANTS

    # every check before any work or output
    sizes = dict(FAST if args.fast else FULL)
    ws = tuple(args.w) if args.w else sizes["ws"]
    bad = [w for w in ws if not math.isfinite(w) or w < 0]
    if bad:
        raise usage(f"--w must be finite weights >= 0 (the tilted law may not exist for w < 0), "
                    f"got {bad[0]:g}")
    n = check_int(args.n, "--n", 1) if args.n is not None else sizes["n"]
    steps = check_int(args.steps, "--steps", 1) if args.steps is not None else sizes["steps"]
    if args.n_ref is not None:
        check_int(args.n_ref, "--n-ref", 1)
    n_ref = args.n_ref if args.n_ref is not None else (sizes["n_ref"] if args.n is None else None)
    check_int(args.seed, "--seed", 0)
    out = check_out_dir(args.out) if args.out else None
    resolved = resolve_problem(args.problem, args.schedule)
    path = resolved.path
    if not 0 <= args.y < path.n_classes:
        raise usage(f"--y must be a class of {resolved.label} in 0..{path.n_classes - 1}, got "
                    f"{args.y}")
    unknown = [v for v in args.variants or () if v not in VARIANTS]
    if unknown:
        raise usage(f"--variants: unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    variants = tuple(args.variants) if args.variants else VARIANTS
    unsupported = unsupported_variants(path, args.y, variants, steps)
    if args.variants and unsupported:
        v, why = next(iter(unsupported.items()))
        raise usage(f"--variants {v}: not supported on {resolved.label}: {why}")
    for v, why in unsupported.items():
        print(f"refcfg: skipped variant {v} on {resolved.label}: {why}", file=sys.stderr)
    variants = tuple(v for v in variants if v not in unsupported)

    from ..plotting.comparison import format_table, plot_comparison, to_json

    result = compare_guidance(resolved.label, ws=ws, n=n, steps=steps, sampler=args.sampler,
                              y=args.y, seed=args.seed, n_ref=n_ref, variants=variants,
                              schedule=resolved.schedule,
                              progress=lambda msg: print(msg, file=sys.stderr))
    table = format_table(result)
    print(table)
    if unsupported:
        print("\nSkipped (not supported on this problem): "
              + "; ".join(f"{v} ({why})" for v, why in unsupported.items()))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table + "\n")
        (out / "results.json").write_text(to_json(result) + "\n")
        plot_comparison(result, out / "figure.png")
        print(f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'figure.png'}",
              file=sys.stderr)
    return 0
