"""``refcfg audit NAME|all``: run the audits of other libraries' guidance code on the exact model
(``refcfg.audits``) and write NAME.md, NAME.json and NAME.png per audit to --out.

Exit status: 0 when every audit ran and every control and finding met its tolerance; 1 when one
failed (the failing checks are printed); 2 when an audit could not run (its library is not
installed: the message says what to install) or the arguments are wrong."""

from __future__ import annotations

import json
import sys

HELP = (
    "audit other libraries' guidance code (diffusers DiT, ddpm-pytorch, k-diffusion, "
    "flow_matching) on the exact model, with controls"
)


def add_parser(subparsers):
    from ..audits import AUDITS

    p = subparsers.add_parser(
        "audit",
        help=HELP,
        description=HELP + ". Writes NAME.md, NAME.json "
        "and NAME.png per audit to --out; exit 0 only when every control "
        "and finding passed, 1 when one failed, 2 when an audit could not "
        "run.",
    )
    p.add_argument("name", help=f"one of {', '.join(AUDITS)}, or all")
    p.add_argument(
        "--fast",
        action="store_true",
        help="small sizes (seconds to a minute per audit; what CI runs)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", default="audits", help="output directory (default audits)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..audits import AUDITS, LibraryMissing, run_audit
    from ..plotting.audits import audit_figure
    from ._args import check_int, check_out_dir, usage

    if args.name != "all" and args.name not in AUDITS:
        raise usage(f"NAME must be one of {', '.join(AUDITS)} or all, got {args.name!r}")
    check_int(args.seed, "--seed", 0)
    out = check_out_dir(args.out)
    names = list(AUDITS) if args.name == "all" else [args.name]
    failed, missing = [], []
    for name in names:
        try:
            res = run_audit(name, fast=args.fast, seed=args.seed)
        except LibraryMissing as exc:
            missing.append(f"{name}: {exc}")
            print(f"refcfg: audit {name} skipped: {exc}", file=sys.stderr)
            continue
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.md").write_text(res.markdown() + "\n", encoding="utf-8")
        (out / f"{name}.json").write_text(json.dumps(res.to_dict(), indent=1), encoding="utf-8")
        if res.series:
            audit_figure(res, out / f"{name}.png")
        n_bad = len(res.failures())
        print(
            f"{name}: {'PASS' if res.passed else 'FAIL'} ({len(res.checks)} checks, {n_bad} "
            f"failed); wrote {out / (name + '.md')}"
        )
        for c in res.failures():
            print(f"  FAIL {c.kind}: {c.name}: {c.value:.4g} (expected {c.expect})")
        if not res.passed:
            failed.append(name)
    if failed:
        return 1
    if missing:
        print(
            f"refcfg: error: {len(missing)} audit(s) could not run: " + "; ".join(missing),
            file=sys.stderr,
        )
        return 2
    return 0
