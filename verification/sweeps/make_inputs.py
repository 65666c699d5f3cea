"""Write the inputs of the study sweep specs (docs/verification.md, results 7 and 9):

- problems/noisy-<problem>-rho<rho>.toml: the noisy-pair law ``refcfg.noisy_labels.relabel`` of
  gauss-1d and two-class-2d under symmetric label noise of rate rho (noisy-labels-1d/-2d.toml);
- models/underfit-<width>x<depth>-<steps>-s<seed>.npz: the CFG models of the underfit study, trained
  with its recipe (``refcfg.experiments.underfit.train_model``) at training seeds 0, 1, 2
  (underfit.toml).

Usage: python verification/sweeps/make_inputs.py [--check]   (--check: compare, write nothing; exit 1
on a difference). The tests compare the shipped problem files with ``noisy_problems()`` and retrain
the smallest model.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RHOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.45)
NOISY_PROBLEMS = ("gauss-1d", "two-class-2d")
TRAINING_SEEDS = (0, 1, 2)


def noisy_problems() -> dict:
    """{relative path: TOML text} of every noisy problem file."""
    import refcfg
    from refcfg.noisy_labels import problem_toml, relabel, symmetric_confusion

    out = {}
    for name in NOISY_PROBLEMS:
        clean = refcfg.problem(name)
        for rho in RHOS:
            noisy = relabel(clean, symmetric_confusion(clean.n_classes, rho))
            label = f"noisy-{name}-rho{rho:g}"
            text = problem_toml(
                noisy,
                label,
                f"{name} with labels flipped at the symmetric rate rho = {rho:g} "
                "(refcfg.noisy_labels.relabel; written by verification/sweeps/make_inputs.py)",
            )
            out[f"problems/{label}.toml"] = text
    return out


def underfit_models() -> dict:
    """{relative path: (width, depth, steps, batch, seed)} of every underfit model file."""
    from refcfg.experiments.underfit import _sizes

    z = _sizes(False)
    return {
        f"models/underfit-{w}x{d}-{st}-s{s}.npz": (w, d, st, z["batch"], s)
        for (w, d, st) in z["models"]
        for s in TRAINING_SEEDS
    }


def main(argv=None) -> int:
    from refcfg.experiments.underfit import train_model

    check = "--check" in (argv if argv is not None else sys.argv[1:])
    bad = 0
    for rel, text in noisy_problems().items():
        p = HERE / rel
        if check:
            if not p.exists() or p.read_text() != text:
                print(f"differs: {rel}")
                bad += 1
        else:
            p.parent.mkdir(exist_ok=True)
            p.write_text(text)
    if not check:
        for rel, recipe in underfit_models().items():
            p = HERE / rel
            p.parent.mkdir(exist_ok=True)
            if not p.exists():
                train_model(*recipe).save(p)
                print(f"trained {rel}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
