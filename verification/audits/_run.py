"""Shared by the audit scripts: run one audit (``refcfg.audits``) and write its table, JSON and
figure to docs/audits/ (full size by default; --fast for the CI sizes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(name: str, argv=None) -> int:
    from refcfg.audits import run_audit
    from refcfg.plotting.audits import audit_figure

    p = argparse.ArgumentParser(description=f"the {name} audit (full size unless --fast)")
    p.add_argument("--fast", action="store_true", help="the CI sizes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "docs" / "audits"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = run_audit(name, fast=args.fast, seed=args.seed)
    stem = name if not args.fast else f"{name}-fast"
    (out / f"{stem}.md").write_text(res.markdown() + "\n", encoding="utf-8")
    (out / f"{stem}.json").write_text(json.dumps(res.to_dict(), indent=1), encoding="utf-8")
    if res.series:
        audit_figure(res, out / f"{stem}.png")
    print(res.markdown())
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
