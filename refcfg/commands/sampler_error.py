"""``refcfg sampler-error``: error of diffusers samplers on the exact model against the exact ODE
solution from the same noise to the end of each scheduler's grid, over step counts, with fitted
orders and the grids stated (table + figure)."""

from __future__ import annotations

import json

HELP = "sampler error versus steps against the exact ODE solution, with fitted orders"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "sampler-error",
        help=HELP,
        description=HELP + ". Needs torch and "
        "diffusers. Writes sampler_error.md, sampler_error.json and "
        "sampler_error.png to --out.",
    )
    p.add_argument(
        "--samplers",
        default="ddim,euler,heun,dpmpp-2m",
        help="comma-separated pipelines among ddim, ddim-trailing, euler, heun, "
        "dpmpp-2m (default ddim,euler,heun,dpmpp-2m); each reference ends where "
        "its scheduler's grid ends",
    )
    p.add_argument("--problem", default="two-class-2d", help="problem name or .toml file")
    p.add_argument("--y", type=int, default=0, help="class to guide towards (default 0)")
    p.add_argument("--w", default="1,3,7.5", help="comma-separated CFG weights (default 1,3,7.5)")
    p.add_argument(
        "--steps", default="8,16,32", help="comma-separated step counts (default 8,16,32)"
    )
    p.add_argument("--n", type=int, default=256, help="particles (default 256)")
    p.add_argument(
        "--ref-steps",
        type=int,
        default=2000,
        help="RK4 steps of the exact reference (default 2000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the start noise (default 0)")
    p.add_argument("--out", default="sampler-error", help="output directory")
    p.set_defaults(func=run)
    return p


def _list(text, conv, option):
    from ._args import usage

    try:
        vals = [conv(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise usage(f"{option} must be comma-separated numbers, got {text!r}") from None
    if not vals:
        raise usage(f"{option} is empty")
    return vals


def run(args) -> int:
    from ..experiments.sampler_error import PIPELINES, sampler_error
    from ..plotting.sampler_error import sampler_error_figure
    from ._args import check_int, check_out_dir, resolve_problem, usage

    names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    bad = [s for s in names if s not in PIPELINES]
    if bad or not names:
        raise usage(f"--samplers must name some of {', '.join(PIPELINES)}, got {args.samplers!r}")
    ws = _list(args.w, float, "--w")
    steps = _list(args.steps, int, "--steps")
    if len(steps) < 2 or min(steps) < 1:
        raise usage(f"--steps needs at least two counts >= 1, got {args.steps!r}")
    check_int(args.n, "--n", 1)
    check_int(args.ref_steps, "--ref-steps", 10)
    res = resolve_problem(args.problem)
    C = len(res.mixture.classes)
    if not 0 <= args.y < C:
        raise usage(f"--y must be a class index in [0, {C}), got {args.y}")
    out = check_out_dir(args.out)
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise usage(f"sampler-error needs torch and diffusers ({exc})") from None
    result = sampler_error(
        names,
        res.path,
        y=args.y,
        ws=ws,
        steps=steps,
        n=args.n,
        seed=args.seed,
        ref_steps=args.ref_steps,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "sampler_error.md").write_text(result.table() + "\n", encoding="utf-8")
    (out / "sampler_error.json").write_text(
        json.dumps(
            {
                "rows": result.rows,
                "n": result.n,
                "seed": result.seed,
                "orders": [
                    {"sampler": k[0], "w": k[1], "order": v} for k, v in result.orders.items()
                ],
                "reference_error": [
                    {"sampler": k[0], "w": k[1], "error": v} for k, v in result.ref_error.items()
                ],
                "grids": result.grids,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    sampler_error_figure(result, out / "sampler_error.png")
    print(result.table())
    print(f"wrote {out / 'sampler_error.md'}, sampler_error.json, sampler_error.png")
    return 0
