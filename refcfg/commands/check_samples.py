"""``refcfg check-samples FILE.npz``: a sampler's samples against the exact law they should follow.

Runs :func:`refcfg.sample_checks.check_samples` (a two-sample permutation test with a calibrated
null, plus effect sizes) and prints its report (or JSON with ``--json``). Exit status 0 when the
test does not reject, 1 when it rejects (p <= alpha), 2 on usage errors, with a one-line message.
"""

from __future__ import annotations

import json
import sys

HELP = "test a sampler's samples (an .npz array (n, d)) against the exact law"


def add_parser(subparsers):
    from ..sample_checks import TARGETS

    p = subparsers.add_parser(
        "check-samples",
        help=HELP,
        description=HELP + ": p(x|y) at w = 1, refcfg's exact-field "
        "ODE/SDE push-forward for w != 1, or the tilted law. Exit status: 0 pass, 1 fail "
        "(p <= alpha), 2 usage.",
    )
    p.add_argument("file", metavar="FILE.npz", help="NumPy .npz file holding the samples (n, d)")
    p.add_argument(
        "--key",
        default=None,
        help="array name in the file (default 'samples', or the file's only array)",
    )
    p.add_argument(
        "--problem",
        default="two-class-2d",
        help="problem name or .toml problem file (default two-class-2d)",
    )
    p.add_argument(
        "--schedule", default=None, help="schedule of the path (ode/sde targets; default linear)"
    )
    p.add_argument(
        "--y",
        default="null",
        help="class the samples were drawn for, or 'null' for the unconditional law (default null)",
    )
    p.add_argument(
        "--w",
        type=float,
        default=1.0,
        help="CFG weight the samples were drawn with "
        "(w = 1 no guidance; diffusers' guidance_scale; default 1)",
    )
    p.add_argument(
        "--target",
        default="data",
        choices=TARGETS,
        help="exact law to test against (default data = p(x|y))",
    )
    p.add_argument("--alpha", type=float, default=0.01, help="level of the test (default 0.01)")
    p.add_argument("--n-ref", type=int, default=None, help="reference sample size (default n)")
    p.add_argument(
        "--permutations", type=int, default=500, help="permutations of the null (default 500)"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=200,
        help="RK4 / Euler-Maruyama steps of the ode / sde reference (default 200)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the reference and the permutations (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
    return p


def _load(path, key):
    """The samples array of FILE, read with :class:`refcfg._npzfile.NpzFile`: the zip directory and
    the array's header are checked (dtype real or integer, 2-D, size within the memory budget)
    before its data is read; NaN and infinities are refused."""
    from .._npzfile import NpzFile
    from ._args import usage

    try:
        with NpzFile(path, "FILE") as data:
            names = data.names
            if key is None:
                key = "samples" if "samples" in names else (names[0] if len(names) == 1 else None)
                if key is None:
                    raise usage(
                        f"FILE {path!r} has arrays {names} and none is named 'samples': pass --key"
                    )
            if key not in names:
                raise usage(f"--key {key!r} is not in {path!r} (arrays: {names})")
            return data.array(key, kinds="fiu", ndim=2, finite=True)
    except ValueError as exc:
        raise usage(str(exc).splitlines()[0]) from None


def run(args) -> int:
    from ..sample_checks import check_samples
    from ._args import check_int, resolve_problem, usage

    if args.y == "null":
        y = None
    else:
        try:
            y = int(args.y)
        except ValueError:
            raise usage(f"--y must be a class index or 'null', got {args.y!r}") from None
    if not 0 < args.alpha < 1:
        raise usage(f"--alpha must be in (0, 1), got {args.alpha}")
    check_int(args.permutations, "--permutations", 19)
    check_int(args.steps, "--steps", 1)
    if args.n_ref is not None:
        check_int(args.n_ref, "--n-ref", 20)
    res = resolve_problem(args.problem, args.schedule)
    x = _load(args.file, args.key)
    try:
        rep = check_samples(
            x,
            res.path,
            y=y,
            w=args.w,
            target=args.target,
            alpha=args.alpha,
            n_ref=args.n_ref,
            permutations=args.permutations,
            seed=args.seed,
            steps=args.steps,
        )
    except (TypeError, ValueError) as exc:
        raise usage(str(exc).splitlines()[0]) from None
    rep.problem = res.label
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1))
    else:
        print(rep)
    sys.stdout.flush()
    return 0 if rep.passed else 1
