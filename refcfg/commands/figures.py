"""``refcfg figures``: the paper-style figure set (PNG and PDF), optionally the interactive page.

Every argument is checked before any figure is drawn (the output directory, the problem, the class,
the model and whether the problem supports what is asked); figures the problem does not support are
listed with the reason.
"""

from __future__ import annotations

from pathlib import Path

from ._args import check_int, check_out_dir, resolve_problem, skipped_text, usage

HELP = "write the figure set (PNG + PDF) and, with --interactive, the interactive teaching page"

DESCRIPTION = (
    "Write the figure set of a problem to --out: the exact path and its velocity, conditional vs "
    "marginal fields, the noisy classifier, a CFG sweep over w, ODE vs SDE (these five need a 2-D "
    "problem), the Gaussian CFG variance, and with --model the learned-vs-exact errors of a trained "
    "CFG model. Figures a problem does not support are skipped and listed. --interactive also "
    "writes a self-contained HTML page with sliders for w and t (2-D problems). For the digits "
    "problems (digits, digits-gmm) it also draws the digits study's CFG sample grids as 8 x 8 images."
)


def add_parser(sub):
    p = sub.add_parser("figures", help=HELP, description=DESCRIPTION)
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument(
        "--problem",
        default="two-class-2d",
        help="problem name or .toml file (default two-class-2d)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="a trained CFG model (.npz from `refcfg train` or `refcfg demo`) of the same "
        "problem, for the learned-vs-exact figure",
    )
    p.add_argument(
        "--interactive",
        action="store_true",
        help="also write OUT/interactive.html (2-D problems; sliders for w and t; no "
        "server needed)",
    )
    p.add_argument("--y", type=int, default=0, help="class shown (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--formats", default="png,pdf", help="comma-separated formats (png, pdf, svg)")
    p.add_argument("--fast", action="store_true", help="small grids and samples (smoke test)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _load_model(text, path):
    from ..learn.compare import check_cfg_model
    from ..learn.mlp import MLP

    if not Path(text).is_file():
        raise usage(
            f"--model {text!r} does not exist (train one with `refcfg train` or `refcfg demo`)"
        )
    try:
        model = MLP.load(text)
        check_cfg_model(model, path, name="--model")
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise usage(message if message.startswith("--model") else f"--model: {message}") from None
    return model


def run(args) -> int:
    from ..plotting import figures, interactive

    # every check before any work or output
    out = check_out_dir(args.out)
    check_int(args.seed, "--seed", 0)
    resolved = resolve_problem(args.problem)
    path = resolved.path
    if not 0 <= args.y < path.n_classes:
        raise usage(
            f"--y must be a class of {resolved.label} in 0..{path.n_classes - 1}, got {args.y}"
        )
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if args.interactive and path.d != 2:
        raise usage(f"--interactive needs a 2-D problem, {resolved.label} has d = {path.d}")
    model = _load_model(args.model, path) if args.model is not None else None

    try:  # make_figures checks the formats before it draws or writes anything
        written = figures.make_figures(
            out,
            path,
            model=model,
            y=args.y,
            seed=args.seed,
            formats=formats,
            fast=args.fast,
            progress=not args.no_progress,
        )
    except ValueError as exc:
        if str(exc).startswith("formats "):
            raise usage(f"--{str(exc).splitlines()[0]}") from None
        raise
    if resolved.label in ("digits", "digits-gmm"):
        # real data (d = 64): the digits study's sample grids, drawn as 8 x 8 images
        from ..experiments import run_experiment
        from ..plotting.studies import write_figure

        result = run_experiment("digits", fast=args.fast, seed=args.seed)
        written["digits_cfg_samples"] = [
            write_figure(result, out / f"digits_cfg_samples.{fmt}") for fmt in formats
        ]
    for name, files in written.items():
        print(f"{name}: " + ", ".join(str(f) for f in files))
    skipped = figures.skipped_figures(path, model)
    if skipped:
        print(skipped_text("figures", skipped, len(figures.FIGURES)))
    if args.interactive:
        page = interactive.write_page(
            out / "interactive.html",
            path,
            y=args.y,
            fast=args.fast,
            seed=args.seed,
            problem=resolved.label,
        )
        print(f"interactive page: {page}")
    print(f"figures written to {out.resolve()}")
    return 0
