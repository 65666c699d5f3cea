"""``refcfg demo``: the main job on the built-in default problem."""

from __future__ import annotations

import numpy as np


def add_parser(sub):
    p = sub.add_parser("demo", help="exact fields and CFG sampling on the default problem")
    p.add_argument("--problem", default="two-class-2d", help="problem name or .toml file")
    p.add_argument("--n", type=int, default=4000, help="particles per guidance weight")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    import refcfg

    mix = refcfg.problem(args.problem)
    path = refcfg.GMMPath(mix, "linear")
    print(f"problem {args.problem}: {mix}")
    print(f"{'w':>5} {'E p(y=0|x)':>12} {'mean log p(x|y=0)':>18}")
    for w in (0.0, 1.0, 2.0, 4.0):
        x = refcfg.sample(path.cfg(0, w), args.n, sampler="heun", steps=50, seed=args.seed)
        conf = np.exp(path.class_log_probs(x, 1.0)[:, 0]).mean()
        ll = path.log_prob(x, 1.0, 0).mean()
        print(f"{w:5.1f} {conf:12.4f} {ll:18.4f}")
    return 0
