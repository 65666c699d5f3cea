"""Regenerate the committed golden test vectors in verification/vectors/ (schema:
docs/vectors-schema.md) and check them against tests/_oracles.py (scipy densities and explicit
Gaussian conditioning, no refcfg code) before writing.

    python verification/make_vectors.py [--out verification/vectors]

Equivalent to ``refcfg vectors --out verification/vectors`` plus the independent check; prints the
files, their total size (the committed set must stay < 2 MB) and the largest oracle discrepancy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/_oracles.py

from refcfg.vectors import DEFAULT_CASES, read_vectors, write_vectors  # noqa: E402

from _oracles import PathOracle, schedule_formula  # noqa: E402


def oracle_discrepancy(case) -> float:
    """Largest row-wise relative difference, over times where alpha_t, beta_t > 0 or at the
    endpoints alike, between the stored cond/uncond log_prob, score, velocity, x0, eps and the
    oracle's values."""
    meta, A = case["meta"], case["arrays"]
    spec = meta["problem"]
    sname, sparams = meta["schedule"]["name"], meta["schedule"]["params"]
    worst = 0.0
    for i, t in enumerate(A["times"]):
        sv = schedule_formula(sname, t, **sparams)
        for cond in (True, False):
            for lab in np.unique(A["y"]):
                rows = A["y"] == lab
                if cond:
                    c = spec["classes"][int(lab)]
                    w, m, S = (np.asarray(c[k]) for k in ("weights", "means", "covs"))
                else:
                    w = np.concatenate(
                        [
                            p * np.asarray(c["weights"])
                            for p, c in zip(spec["class_probs"], spec["classes"])
                        ]
                    )
                    m = np.concatenate([np.asarray(c["means"]) for c in spec["classes"]])
                    S = np.concatenate([np.asarray(c["covs"]) for c in spec["classes"]])
                orc = PathOracle(w, m, S, sv)
                x = A["x"][i][rows]
                sfx = "_cond" if cond else "_uncond"
                for key, ref in (
                    ("score", orc.score(x)),
                    ("velocity", orc.velocity(x)),
                    ("x0", orc.post_mean_z(x)),
                    ("eps", orc.post_mean_eps(x)),
                ):
                    got = A[key + sfx][i][rows]
                    num = np.linalg.norm(got - ref, axis=1)
                    den = np.maximum(np.linalg.norm(ref, axis=1), 1.0)
                    worst = max(worst, float(np.max(num / den)))
                lp = orc.log_prob(x)
                worst = max(
                    worst,
                    float(
                        np.max(
                            np.abs(A["log_prob" + sfx][i][rows] - lp) / np.maximum(np.abs(lp), 1.0)
                        )
                    ),
                )
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "verification" / "vectors"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        write_vectors(tmp, DEFAULT_CASES)
        cases = read_vectors(tmp)
        for name, case in cases.items():
            err = oracle_discrepancy(case)
            print(f"{name}: max rel difference to the oracle {err:.2e}")
            if not err < 1e-9:
                print(f"refusing to write: {name} disagrees with the oracle", file=sys.stderr)
                return 1
    paths = write_vectors(args.out, DEFAULT_CASES)
    total = sum(p.stat().st_size for p in paths)
    for p in paths:
        print(f"  {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}  {p.stat().st_size} B")
    print(f"total {total / 1024:.0f} KiB ({len(paths)} files)")
    return 0 if total < 2 * 1024 * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
