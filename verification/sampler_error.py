"""Sampler error versus steps on two-class-2d, w in {1, 3, 7.5}: diffusers' DDIM, Euler, Heun and
DPM-Solver++ 2M on the exact model (``refcfg.interop.diffusers``), and the EDM-convention Euler,
Heun and DPM++ 2M algorithms of k-diffusion (written out below in its convention, run on
``refcfg.interop.kdiffusion.EDMDenoiser``, Karras sigmas in [0.002, 80]), each against refcfg's
exact ODE solution from the same noise to the end of its own grid, with fitted orders and the grids
stated. DDIM with "trailing" spacing is included to show that configuration's error floor. Writes
the table (Markdown, JSON) and the figure to --out (default docs/interop).

    python verification/sampler_error.py [--n 256] [--steps 10,20,40,80,160] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0


def edm_sampler(path, kind, y, w):
    from refcfg.experiments.sampler_error import Sampler, edm_run, karras_sigmas
    from refcfg.interop import time_from_signal_noise
    from refcfg.interop.kdiffusion import EDMDenoiser

    model = EDMDenoiser(path, y=y, w=None if w == 1.0 else w)
    t0, c = time_from_signal_noise(path.schedule, 1.0, SIGMA_MAX)
    t1, _ = time_from_signal_noise(path.schedule, 1.0, SIGMA_MIN)
    nfe = (lambda s: 2 * s - 1) if kind == "heun" else (lambda s: s)

    def grid(steps):
        sig = karras_sigmas(steps, SIGMA_MIN, SIGMA_MAX, RHO)[:-1]
        return time_from_signal_noise(path.schedule, np.ones_like(sig), sig)[0]

    # the sampler starts at x = sigma_max * noise: refcfg x_t = c * sigma_max * noise
    return Sampler(
        f"k-diffusion {kind}",
        edm_run(model, kind, SIGMA_MIN, SIGMA_MAX, RHO),
        float(t0[0]),
        float(c[0]) * SIGMA_MAX,
        nfe,
        float(t1[0]),
        True,
        grid,
        "Karras sigmas 80 ... 0.002 (rho 7), then sigma=0 (x0)",
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--steps", default="10,20,40,80,160")
    p.add_argument("--ws", default="1,3,7.5")
    p.add_argument("--ref-steps", type=int, default=1000)
    p.add_argument("--out", default="docs/interop")
    args = p.parse_args(argv)

    import refcfg
    from refcfg.experiments.sampler_error import SamplerErrorResult, sampler_error
    from refcfg.plotting.sampler_error import sampler_error_figure

    path = refcfg.GMMPath(refcfg.problem("two-class-2d"), refcfg.schedule("linear"))
    steps = [int(s) for s in args.steps.split(",")]
    rows, orders, ref_error, grids = [], {}, {}, {}
    for w in [float(v) for v in args.ws.split(",")]:
        samplers = ["ddim", "ddim-trailing", "euler", "heun", "dpmpp-2m"] + [
            edm_sampler(path, k, 0, w) for k in ("euler", "heun", "dpmpp-2m")
        ]
        r = sampler_error(
            samplers, path, y=0, ws=(w,), steps=steps, n=args.n, ref_steps=args.ref_steps
        )
        rows += r.rows
        orders.update(r.orders)
        ref_error.update(r.ref_error)
        grids.update(r.grids)
        print(r.table(), flush=True)
    res = SamplerErrorResult(rows, orders, ref_error, args.n, 0, grids)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sampler_error.md").write_text(res.table() + "\n", encoding="utf-8")
    (out / "sampler_error.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "n": args.n,
                "steps": steps,
                "orders": [{"sampler": k[0], "w": k[1], "order": v} for k, v in orders.items()],
                "reference_error": [
                    {"sampler": k[0], "w": k[1], "error": v} for k, v in ref_error.items()
                ],
                "grids": grids,
                "command": " ".join(
                    [
                        "python verification/sampler_error.py",
                        *(sys.argv[1:] if argv is None else argv),
                    ]
                ),
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    sampler_error_figure(res, out / "sampler_error.png")
    print(res.table())


if __name__ == "__main__":
    main()
