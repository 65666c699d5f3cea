"""``refcfg compare-guidance``: guidance variants on exact fields, scored against ground truth.

Runs the study's rules (``refcfg.experiments.compare_guidance.VARIANTS``: plain CFG, guidance
interval, guidance rescale, APG, CFG-Zero*, autoguidance, a linear w(t) schedule; ``--variants``
names any rule of ``refcfg.guidance.RULES``) from the same initial noise for a sweep of w and
prints a Markdown table: class confidence under the exact Bayes classifier, mean log p(x|y), mass per
mode, energy distance to p(x|y) and to the tilted law p(x|y)^w p(x)^(1-w)/Z. With ``--out DIR`` it
also writes DIR/table.md, DIR/results.json and DIR/figure.png. See docs/guidance-variants.md.

The computation is :func:`refcfg.experiments.compare_guidance.compare_guidance`; this module checks
every argument before it starts. A variant that the problem does not support (guidance rescale needs
d >= 2) is left out of the default set with a line that says so (the study probes each rule before
sampling), and refused with exit status 2 when asked for by name.
"""

from __future__ import annotations

import math
import sys

from ._args import check_int, check_out_dir, field_bytes, require_job, resolve_problem, usage

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    from ..experiments.compare_guidance import VARIANTS
    from ..guidance import RULES
    from ..sampling.steppers import TABLEAUS

    p = subparsers.add_parser(
        "compare-guidance",
        help=f"guidance variants ({', '.join(VARIANTS)}) vs exact laws",
        description="Run every guidance variant on exact fields from the same noise for a sweep of w "
        "and score the samples against p(x|y) and the tilted law p(x|y)^w p(x)^(1-w)/Z. "
        "Variants the problem does not support (rescale needs d >= 2) are left out of "
        "the default set, with a line that says so.",
    )
    p.add_argument(
        "--problem",
        default="two-class-2d",
        help="problem name or .toml file (default two-class-2d)",
    )
    p.add_argument(
        "--w",
        type=float,
        nargs="+",
        default=None,
        help="guidance weights >= 0 (refcfg convention, w = 1 + omega; default 1 2 4)",
    )
    p.add_argument("--n", type=int, default=None, help="samples per variant and w (default 2000)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default 100)")
    p.add_argument(
        "--sampler",
        default="euler",
        choices=tuple(TABLEAUS),
        help="ODE sampler (default euler: one evaluation per step)",
    )
    p.add_argument("--y", type=int, default=0, help="target class (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shared noise and references")
    p.add_argument(
        "--n-ref", type=int, default=None, help="size of the exact reference samples (default 2 n)"
    )
    p.add_argument("--schedule", default="linear", help="schedule of the path (default linear)")
    p.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help=f"rules to run, any of {', '.join(RULES)} (default: those of {', '.join(VARIANTS)} "
        "that the problem supports)",
    )
    p.add_argument("--out", default=None, help="directory for table.md, results.json, figure.png")
    p.add_argument(
        "--fast",
        action="store_true",
        help="small sizes (n 200, 20 steps, w 1 3) for tests and smoke runs",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..experiments.compare_guidance import FAST, FULL, VARIANTS, compare_guidance
    from ..guidance import RULES

    # every check before any work or output
    sizes = dict(FAST if args.fast else FULL)
    ws = tuple(args.w) if args.w else sizes["ws"]
    bad = [w for w in ws if not math.isfinite(w) or w < 0]
    if bad:
        raise usage(
            f"--w must be finite weights >= 0 (the tilted law may not exist for w < 0), "
            f"got {bad[0]:g}"
        )
    n = check_int(args.n, "--n", 1) if args.n is not None else sizes["n"]
    steps = check_int(args.steps, "--steps", 1) if args.steps is not None else sizes["steps"]
    if args.n_ref is not None:
        check_int(args.n_ref, "--n-ref", 1)
    n_ref = args.n_ref if args.n_ref is not None else (sizes["n_ref"] if args.n is None else None)
    check_int(args.seed, "--seed", 0)
    out = check_out_dir(args.out) if args.out else None
    resolved = resolve_problem(args.problem, args.schedule)
    if not 0 <= args.y < resolved.mixture.n_classes:
        raise usage(
            f"--y must be a class of {resolved.label} in 0..{resolved.mixture.n_classes - 1}"
            f", got {args.y}"
        )
    unknown = [v for v in args.variants or () if v not in RULES]
    if unknown:
        raise usage(f"--variants: unknown variant {unknown[0]!r}; known: {', '.join(RULES)}")
    n_variants = len(args.variants) if args.variants else len(VARIANTS)
    m = n_ref if n_ref is not None else 2 * n
    K, d = resolved.mixture.marginal.K, resolved.mixture.d
    # every variant's samples at every w are kept for the table; references; field temporaries
    nbytes = (
        8.0 * n * d * (n_variants * len(ws) + 4)
        + 8.0 * m * d * 4
        + 3 * field_bytes(max(n, m), K, d)
        + 8.0 * max(n, m) * K * 2
    )
    require_job(
        nbytes,
        f"compare-guidance with --n {n} ({n_variants} variants x {len(ws)} "
        f"weights, {m} reference draws)",
        "--n or --n-ref",
    )

    from ..plotting.comparison import format_table, plot_comparison, to_json

    try:  # the study probes every rule on the problem before it samples anything
        result = compare_guidance(
            resolved.path,
            ws=ws,
            n=n,
            steps=steps,
            sampler=args.sampler,
            y=args.y,
            seed=args.seed,
            n_ref=n_ref,
            variants=tuple(args.variants) if args.variants else None,
            name=resolved.label,
            progress=lambda msg: print(msg, file=sys.stderr),
        )
    except ValueError as exc:
        if args.variants and "cannot run on this problem" in str(exc):
            raise usage(f"--variants: {str(exc).splitlines()[0]} ({resolved.label})") from None
        raise
    for v, why in result.get("skipped", {}).items():
        print(f"refcfg: skipped variant {v} on {resolved.label}: {why}", file=sys.stderr)
    table = format_table(result)
    print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table + "\n")
        (out / "results.json").write_text(to_json(result) + "\n")
        plot_comparison(result, out / "figure.png")
        print(
            f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'figure.png'}",
            file=sys.stderr,
        )
    return 0
