"""``refcfg train``: train a NumPy MLP with CFG label dropout and compare it with the exact fields.

Trains u_theta(x | y) by flow matching with label dropout (notes arXiv 2506.02070, section 5.2,
eq. 66) on a problem (default two-class-2d), optionally an unconditional model and a noisy classifier,
saves the models as ``.npz`` and prints the exact-vs-learned comparison report (``--json`` for
machines). Every argument and every output path is checked before training starts. Exit status 0 on
success, 2 on usage errors.
"""

from __future__ import annotations

import json
import math
import os
import sys

from ._args import check_int, check_out_file, field_bytes, require_job, resolve_problem, usage

HELP = "train a CFG flow-matching MLP (NumPy) and compare it with the exact fields"


def add_parser(subparsers):
    from ..learn.train import DEFAULTS as D  # light: NumPy only

    p = subparsers.add_parser(
        "train",
        help=HELP,
        description=HELP + ". Saves OUT (the CFG model), and with --classifier "
        "/ --unconditional OUT-classifier.npz / OUT-uncond.npz next to it.",
    )
    p.add_argument(
        "--problem",
        default="two-class-2d",
        help="problem name or .toml problem file (default two-class-2d)",
    )
    p.add_argument("--schedule", default="linear", help="schedule name (default linear)")
    p.add_argument(
        "--out", default="refcfg-model.npz", help="output file (default refcfg-model.npz)"
    )
    p.add_argument("--steps", type=int, default=None, help=f"training steps (default {D['steps']})")
    p.add_argument("--batch", type=int, default=None, help=f"batch size (default {D['batch']})")
    p.add_argument(
        "--lr", type=float, default=None, help=f"peak Adam learning rate (default {D['lr']:g})"
    )
    p.add_argument(
        "--width", type=int, default=None, help=f"hidden units per layer (default {D['width']})"
    )
    p.add_argument("--depth", type=int, default=None, help=f"hidden layers (default {D['depth']})")
    p.add_argument(
        "--eta",
        type=float,
        default=0.1,
        help=f"probability of the null label in [0, 1] (label dropout, default {D['eta']:g})",
    )
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--classifier", action="store_true", help="also train a noisy classifier")
    p.add_argument(
        "--plain-classifier",
        action="store_true",
        help="train the classifier with plain logits f(x, t) instead of the default "
        "log p(y) + alpha_t f(x, t) (see docs/learning.md)",
    )
    p.add_argument(
        "--unconditional", action="store_true", help="also train a separate unconditional model"
    )
    p.add_argument(
        "--w",
        default="1,3",
        help="comma-separated guidance weights to compare "
        "(notes eq. 65; Ho-Salimans omega = w - 1; default 1,3)",
    )
    p.add_argument("--n-field", type=int, default=4000, help="points per t for field errors")
    p.add_argument("--n-samples", type=int, default=2000, help="samples per (y, w) (default 2000)")
    p.add_argument("--sample-steps", type=int, default=50, help="Heun steps (default 50)")
    p.add_argument("--no-compare", action="store_true", help="skip the comparison report")
    p.add_argument("--no-samples", action="store_true", help="skip the sample-level comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="BLAS threads for training and the comparison (default: chosen by timing "
        "the first steps with 1 thread and with the default count, re-checked "
        "every 10 s)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
    return p


def _weights(text):
    try:
        ws = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise usage(f"--w must be comma-separated numbers, got {text!r}") from None
    if not ws:
        raise usage(f"--w must list at least one weight, got {text!r}")
    if not all(math.isfinite(w) for w in ws):
        raise usage(f"--w must be finite numbers, got {text!r}")
    return ws


def _sibling(out: str, suffix: str) -> str:
    base = out[:-4] if out.endswith(".npz") else out
    return f"{base}-{suffix}.npz"


def _require_train_memory(args, mix) -> None:
    """The largest of the phases' estimates (training, then the comparison) against the budget,
    before training starts."""
    from ..learn.mlp import MLPConfig
    from ..learn.train import DEFAULTS, training_bytes

    width = args.width or DEFAULTS["width"]
    depth = args.depth or DEFAULTS["depth"]
    batch = args.batch or DEFAULTS["batch"]
    K, d = mix.marginal.K, mix.d
    try:
        config = MLPConfig(
            d_in=d,
            d_out=max(d, mix.n_classes),
            n_classes=mix.n_classes,
            width=width,
            depth=depth,
            dtype=args.dtype,
        )
    except (TypeError, ValueError) as exc:
        raise usage(str(exc)) from None
    require_job(
        training_bytes(config, batch),
        f"training (width {width}, depth {depth}, batch {batch})",
        "--batch, --width or --depth",
    )
    if not args.no_compare:
        n = max(args.n_field, 0 if args.no_samples else args.n_samples)
        nbytes = (
            training_bytes(config, n)
            + 2 * field_bytes(n, K, d)
            + 8.0 * n * d * 4 * (len(_weights(args.w)) + 2)
        )
        require_job(
            nbytes,
            f"the comparison (n-field {args.n_field}, n-samples {args.n_samples})",
            "--n-field or --n-samples",
        )


def run(args) -> int:
    from ..learn.classifier import train_classifier
    from ..learn.compare import compare
    from ..learn.train import train_cfg, train_unconditional

    # every check before training: a failure after it would lose the model
    ws = _weights(args.w)
    for name in ("steps", "batch", "width", "depth"):
        if getattr(args, name) is not None:
            check_int(getattr(args, name), f"--{name}", 1)
    for name in ("n_field", "n_samples", "sample_steps"):
        check_int(getattr(args, name), "--" + name.replace("_", "-"), 1)
    check_int(args.seed, "--seed", 0)
    if args.blas_threads is not None:
        check_int(args.blas_threads, "--blas-threads", 1)
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise usage(f"--lr must be a finite number > 0, got {args.lr:g}")
    if not 0.0 <= args.eta <= 1.0:
        raise usage(f"--eta must be a probability in [0, 1], got {args.eta:g}")
    outputs = [args.out]
    if args.unconditional:
        outputs.append(_sibling(args.out, "uncond"))
    if args.classifier:
        outputs.append(_sibling(args.out, "classifier"))
    for path in outputs:
        check_out_file(path)
    resolved = resolve_problem(args.problem, args.schedule)
    if args.classifier and resolved.mixture.n_classes < 2:
        raise usage(
            f"--classifier needs a problem with >= 2 classes, {resolved.label} has "
            f"{resolved.mixture.n_classes}"
        )
    problem, schedule = args.problem, resolved.schedule  # the name goes into the model's meta
    _require_train_memory(args, resolved.mixture)

    kw = {
        k: getattr(args, k)
        for k in ("steps", "batch", "lr", "width", "depth")
        if getattr(args, k) is not None
    }
    progress = not args.no_progress
    kw["blas_threads"] = args.blas_threads
    log = sys.stderr
    res = train_cfg(
        problem,
        schedule=schedule,
        eta=args.eta,
        dtype=args.dtype,
        seed=args.seed,
        progress=progress,
        **kw,
    )
    saved = [res.model.save(args.out)]
    loss, k = res.final_loss(100)
    print(
        f"trained CFG model: {res.losses.size} steps in {res.seconds:.1f} s, final loss "
        f"(mean of last {k}) {loss:.4f}; saved {saved[0]}",
        file=log,
    )
    uncond = clf = None
    if args.unconditional:
        r = train_unconditional(
            problem,
            schedule=schedule,
            dtype=args.dtype,
            seed=args.seed + 1,
            progress=progress,
            **kw,
        )
        uncond = r.model
        saved.append(uncond.save(_sibling(args.out, "uncond")))
        print(f"trained unconditional model in {r.seconds:.1f} s; saved {saved[-1]}", file=log)
    if args.classifier:
        r = train_classifier(
            problem,
            schedule=schedule,
            dtype=args.dtype,
            seed=args.seed + 2,
            progress=progress,
            alpha_scaled=not args.plain_classifier,
            **kw,
        )
        clf = r.classifier
        saved.append(clf.save(_sibling(args.out, "classifier")))
        print(f"trained classifier in {r.seconds:.1f} s; saved {saved[-1]}", file=log)
    if args.no_compare:
        if args.json:
            print(json.dumps(dict(saved=saved)))
        return 0
    report = compare(
        resolved.path,
        res.model,
        unconditional=uncond,
        classifier=clf,
        schedule=schedule,
        ws=ws,
        n_field=args.n_field,
        n_samples=args.n_samples,
        steps=args.sample_steps,
        seed=args.seed,
        samples=not args.no_samples,
        blas_threads=args.blas_threads,
    )
    if args.json:
        print(json.dumps(dict(report.to_dict(), saved=[os.fspath(s) for s in saved])))
    else:
        print(report.to_text())
    return 0
