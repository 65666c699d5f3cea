"""Seed spreads of the three guidance studies (noisy-labels, underfit, vector-prompts).

Runs ``refcfg.experiments.<study>.run(fast=..., seed=s)`` for seeds s = 0 .. N-1, one JSON file per
(study, size, seed) under OUT (so an interrupted run resumes), then prints each study's headline
numbers as mean +- sd over the seeds that are there (``refcfg.experiments._seeds``-free: the
aggregation is ``summarise`` below).

Usage: python verification/seeds_guidance_studies.py OUT [--seeds N] [--full] [STUDY ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

STUDIES = (
    "noisy-labels",
    "underfit",
    "vector-prompts",
    "noisy-labels-grid",
    "underfit-grid",
    "vector-prompts-learned",
)

GRID = {
    # noisy-labels on the full rho and w grids at fast sample sizes, one internal seed per run (so
    # the spread over runs is the spread over seeds)
    "noisy-labels-grid": (
        "noisy-labels",
        dict(
            rhos=(0.0, 0.1, 0.2, 0.3, 0.4, 0.45),
            ws=(1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
            seeds=1,
            n1=600,
            n2=600,
            M=600,
        ),
    ),
    # underfit with five models between the fast ones and the full w grid, fast sample sizes, one
    # internal seed per run
    "underfit-grid": (
        "underfit",
        dict(
            models=((8, 1, 150), (8, 1, 300), (16, 2, 300), (16, 2, 1000), (32, 2, 600)),
            ws=(1.0, 1.25, 1.5, 2.0, 3.0, 4.0),
            seeds=1,
            n=600,
        ),
    ),
}


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    return v


def run_one(study: str, seed: int, fast: bool, out: Path) -> dict:
    """Run one study at one seed (or read it back from OUT)."""
    import importlib

    from refcfg.experiments import EXPERIMENTS, run_experiment

    f = out / f"{study}{'-fast' if fast else ''}-seed{seed}.json"
    if f.exists():
        return json.loads(f.read_text())
    t0 = time.perf_counter()
    if study == "vector-prompts-learned":
        # part 4 of the vector-prompt study alone (the trained model against the exact laws)
        from refcfg.experiments import vector_prompts as vpm

        name, sizes = "vector-prompts", None
        rows, err = vpm.learned_model(seed=seed, fast=fast)
        res = vpm.Result(
            name,
            "learned model",
            rows,
            {"learned_field_error": err, "learned_best_w": vpm._learned_best(rows)},
            tables={
                "learned model: field errors": [err],
                "learned model: CFG vs the exact fields and laws": rows,
            },
        )
    elif study in GRID:
        name, sizes = GRID[study]
        mod = importlib.import_module(f"refcfg.experiments.{EXPERIMENTS[name]}")
        res = mod.run(fast=fast, seed=seed, sizes=sizes)
    else:
        name, sizes = study, None
        res = run_experiment(study, fast=fast, seed=seed)
    doc = {
        "study": name,
        "sizes": _jsonable(sizes),
        "fast": fast,
        "seed": seed,
        "wall_s": time.perf_counter() - t0,
        "key": _jsonable(res.key),
        "table": _jsonable(res.table),
        "tables": _jsonable(res.tables),
    }
    f.write_text(json.dumps(doc, indent=1))
    return doc


def _ms(v) -> str:
    v = np.asarray(v, dtype=np.float64)
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return f"{v.mean():.3g} +- {sd:.2g} (n={v.size})"


def summarise(docs: list[dict]) -> str:
    """Headline numbers of one study over its seeds: mean +- sd (ddof = 1) and n."""
    if not docs:
        return "no seeds"
    study = docs[0]["study"]
    lines = [f"## {study}: seeds {[d['seed'] for d in docs]}"]
    if study == "noisy-labels":
        best = {}
        for d in docs:
            for r in d["tables"]["best w per rho"]:
                k = (r["problem"], r["sampler"], r["rho"])
                best.setdefault(k, []).append((r["best w"], r["D2 at best"], r["D2 at w=1"]))
        for k, v in sorted(best.items()):
            a = np.array(v)
            lines.append(
                f"{k[0]:13s} {k[1]:6s} rho={k[2]:<5g} best w {_ms(a[:, 0])}; "
                f"D2 at best {_ms(a[:, 1])}; D2 at w=1 {_ms(a[:, 2])}"
            )
    elif study == "underfit":
        best = {}
        for d in docs:
            for r in d["tables"]["best w per model"]:
                best.setdefault(r["model"], []).append(
                    (r["cond. field err"], r["best w"], r["D2 at best"], r["D2 at w=1"])
                )
        for k, v in best.items():
            a = np.array(v)
            gain = a[:, 3] / a[:, 2]
            lines.append(
                f"{k}: field err {_ms(a[:, 0])}; best w {_ms(a[:, 1])} "
                f"(values {sorted(a[:, 1].tolist())}); D2 at best {_ms(a[:, 2])}; "
                f"D2 at w=1 {_ms(a[:, 3])}; ratio w=1/best {_ms(gain)}"
            )
    elif study == "vector-prompts":
        for name in ("max_cg_minus_cfg", "max_cfg_w1_minus_conditional"):
            if name in docs[0]["key"]:
                lines.append(f"{name}: max over seeds {max(d['key'][name] for d in docs):.2g}")
        errs = [d["tables"]["learned model: field errors"][0] for d in docs]
        lines.append(
            f"learned field error: cond {_ms([e['cond. field err'] for e in errs])}, "
            f"null {_ms([e['null field err'] for e in errs])}"
        )
        best = {}
        for d in docs:
            for k, v in d["key"].get("best_w_ode", {}).items():
                best.setdefault(k, []).append(v)
            for k, v in d["key"]["learned_best_w"].items():
                best.setdefault("learned " + k, []).append(v)
        for k, v in best.items():
            lines.append(f"best w (ODE) {k}: {_ms(v)}")
        learned = {}
        for d in docs:
            for r in d["tables"].get("learned model: CFG vs the exact fields and laws", []):
                learned.setdefault((r["prompt"], r["w"]), []).append(
                    (r["D2 to p(x|y)"], r["D2 to exact CFG(w)"], r["exact CFG D2 to p(x|y)"])
                )
        for k, v in learned.items():
            a = np.array(v)
            lines.append(
                f"learned {k[0]} w={k[1]:g}: D2 to p(x|y) {_ms(a[:, 0])}; D2 to exact CFG(w) "
                f"{_ms(a[:, 1])}; exact CFG D2 to p(x|y) {_ms(a[:, 2])}"
            )
    lines.append(f"wall per seed: {_ms([d['wall_s'] for d in docs])} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="full size instead of --fast")
    ap.add_argument(
        "--figure",
        action="store_true",
        help="also draw OUT/seed-spreads.png from noisy-labels-grid and underfit-grid (fast)",
    )
    ap.add_argument("studies", nargs="*", default=list(STUDIES))
    a = ap.parse_intermixed_args(argv)
    bad = [s for s in a.studies if s not in STUDIES]
    if bad or a.seeds < 1:
        ap.error(f"studies must be among {', '.join(STUDIES)} and --seeds >= 1, got {bad}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for study in a.studies:
        docs = [run_one(study, s, not a.full, out) for s in range(a.seeds)]
        print(summarise(docs), flush=True)
        if study.startswith("vector-prompts"):
            _learned_figure(docs, out / f"{study}{'-fast' if not a.full else ''}-learned.png")
    if a.figure:
        _spread_figure(out, a.seeds, out / "seed-spreads.png")
    return 0


def _spread_figure(out: Path, n: int, path):
    """noisy-labels-grid and underfit-grid (fast) over seeds 0 .. n-1, drawn by
    ``refcfg.plotting.guidance_studies.seed_spreads``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refcfg.plotting import guidance_studies

    def load(study):
        return [json.loads((out / f"{study}-fast-seed{s}.json").read_text()) for s in range(n)]

    noisy = {}
    for d in load("noisy-labels-grid"):
        for r in d["tables"]["best w per rho"]:
            if r["sampler"] != "tilted":
                k = (r["problem"], r["sampler"], r["rho"])
                noisy.setdefault(k, []).append(r["best w"])
    under = {}
    for d in load("underfit-grid"):
        for r in d["tables"]["best w per model"]:
            u = under.setdefault(r["model"], {"field err": [], "best w": []})
            u["field err"].append(r["cond. field err"])
            u["best w"].append(r["best w"])
    fig = guidance_studies.seed_spreads(
        plt,
        noisy=[
            {"problem": k[0], "sampler": k[1], "rho": k[2], "best w": v} for k, v in noisy.items()
        ],
        underfit=[{"model": k, **v} for k, v in under.items()],
    )
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")


def _learned_figure(docs, path):
    """The learned vector-prompt rows averaged over the runs (one trained model each; sd over the
    models), drawn by ``refcfg.plotting.guidance_studies.vector_prompts_learned``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refcfg.plotting import guidance_studies

    cols = ("D2 to p(x|y)", "D2 to exact CFG(w)", "exact CFG D2 to p(x|y)", "log p(y|x)")
    by = {}
    for d in docs:
        for r in d["tables"]["learned model: CFG vs the exact fields and laws"]:
            by.setdefault((r["prompt"], r["w"]), []).append([r[c] for c in cols])
    rows = []
    for (prompt, w), v in by.items():
        a = np.array(v)
        row = {"prompt": prompt, "w": w, **{c: float(a[:, j].mean()) for j, c in enumerate(cols)}}
        row["D2 sd"] = float(a[:, 0].std(ddof=1)) if len(v) > 1 else 0.0
        rows.append(row)
    fig = guidance_studies.vector_prompts_learned(plt, learned=rows)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")


if __name__ == "__main__":
    sys.exit(main())
