"""``refcfg vectors --out DIR``: write the golden test vectors (NPZ + JSON, docs/vectors-schema.md)."""

from __future__ import annotations

import sys

from ._args import check_int, check_out_dir, field_bytes, require_job, usage

HELP = "write golden test vectors (exact fields on fixed points) as NPZ + JSON"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "vectors", help=HELP, description=HELP + "; schema: docs/vectors-schema.md."
    )
    p.add_argument("--out", required=True, help="output directory (created if needed)")
    p.add_argument(
        "--cases",
        default=None,
        help="comma-separated subset of the default case names (default: all)",
    )
    p.add_argument("--n", type=int, default=12, help="points per time (default 12)")
    p.add_argument("--seed", type=int, default=0, help="seed for the points (default 0)")
    p.set_defaults(func=run)
    return p


def vectors_bytes(n: int, cases) -> float:
    """Upper estimate of the peak memory of writing one case (cases are written one at a time):
    its (T, N, d) arrays (``refcfg.vectors.ARRAYS``, the guided ones per weight), the JSON text of
    the same numbers (about 3 times their binary size) and one field evaluation's temporaries."""
    from ..problems import problem
    from ..vectors import ARRAYS, DEFAULT_TIMES, DEFAULT_W

    T, W = len(DEFAULT_TIMES), len(DEFAULT_W)
    worst = 0.0
    for case in cases:
        mix = problem(case["problem"])
        K, d, C = mix.marginal.K, mix.d, mix.n_classes
        per_point = T * (len(ARRAYS) * d + 3 * W * d + C)
        worst = max(worst, 8.0 * n * per_point * 4 + field_bytes(n, K, d))
    return worst


def run(args) -> int:
    from ..vectors import DEFAULT_CASES, write_vectors

    cases = DEFAULT_CASES
    if args.cases:
        names = [c.strip() for c in args.cases.split(",") if c.strip()]
        known = {c["name"]: c for c in DEFAULT_CASES}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise usage(f"--cases: unknown case {unknown[0]!r}; known: {', '.join(known)}")
        cases = tuple(known[n] for n in names)
    check_int(args.n, "--n", 1)
    check_int(args.seed, "--seed", 0)
    check_out_dir(args.out)
    require_job(vectors_bytes(args.n, cases), f"writing vectors with --n {args.n}", "--n")
    kwargs = {}
    if args.n != 12:
        kwargs["n"] = args.n
    if args.seed != 0:
        kwargs["seed"] = args.seed
    paths = write_vectors(args.out, cases, **kwargs)
    size = sum(p.stat().st_size for p in paths)
    print(
        f"wrote {len(cases)} cases ({len(paths)} files, {size / 1024:.0f} KiB) to {args.out}",
        file=sys.stdout,
    )
    return 0
