"""Benchmark: one training step of refcfg's NumPy MLP against the same MLP in PyTorch (CPU).

Same network (inputs x (d = 2), t with 6 sinusoidal frequencies, one-hot label with a null slot;
`depth` hidden Linear + SiLU layers of `width` units; a Linear output), same batch, same loss
(mean over the batch of |out - target|^2) and the same optimiser (Adam, lr 1e-3); one step =
features + forward + backward + Adam update on a fixed batch. Both run in this process with the
same thread count (default 1: OMP/OPENBLAS/MKL_NUM_THREADS and torch.set_num_threads). Reports the
median time per step over `--repeats` blocks of `--steps` steps (NumPy and PyTorch blocks
interleaved) and the median of the per-block-pair ratios NumPy / PyTorch (target <= 1.5). Skips PyTorch (exit 0) when it is not installed.

    .venv/bin/python verification/bench_mlp.py [--threads 1] [--dtype float64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32", "both"))
    p.add_argument("--steps", type=int, default=50, help="steps per timed block")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks (median reported)")
    p.add_argument(
        "--configs",
        default="64x3x512,128x3x512,64x2x256,256x3x1024",
        help="comma-separated WIDTHxDEPTHxBATCH",
    )
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    # thread settings must be in place before numpy / torch load their thread pools
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import time

    import numpy as np

    from refcfg.learn.mlp import MLP, Adam, MLPConfig, time_features

    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: skipping the comparison (NumPy timings only).")
    if torch is not None:
        torch.set_num_threads(args.threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    d, C, n_freqs = 2, 2, 6
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    configs = []
    for text in args.configs.split(","):
        w, dep, b = (int(v) for v in text.lower().split("x"))
        configs.append((w, dep, b))

    def timed(*steps):
        # blocks of the candidates interleaved (A B A B ...), so that load changes on a shared
        # machine hit both alike; returns the median time per step of each and the median of the
        # per-block ratios A / B
        for step in steps:
            for _ in range(10):
                step()
        times = [[] for _ in steps]
        for _ in range(args.repeats):
            for i, step in enumerate(steps):
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[i].append((time.perf_counter() - start) / args.steps)
        med = [float(np.median(ts)) for ts in times]
        ratio = (
            float(np.median(np.array(times[0]) / np.array(times[1]))) if len(steps) == 2 else None
        )
        return med, ratio

    rows = []
    print(
        f"threads: {args.threads} (OMP/OPENBLAS/MKL_NUM_THREADS={args.threads}"
        + (
            f", torch.get_num_threads()={torch.get_num_threads()}, torch {torch.__version__}"
            if torch is not None
            else ""
        )
        + f"), numpy {np.__version__}"
    )
    for dtype in dtypes:
        for width, depth, batch in configs:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((batch, d))
            t = rng.random(batch)
            y = rng.integers(-1, C, batch)
            target = rng.standard_normal((batch, d))
            model = MLP(
                MLPConfig(
                    d_in=d,
                    d_out=d,
                    n_classes=C,
                    width=width,
                    depth=depth,
                    n_freqs=n_freqs,
                    dtype=dtype,
                    seed=0,
                )
            )
            opt = Adam(model.theta, lr=1e-3)
            tgt = target.astype(dtype)

            def np_step():
                out, cache = model.forward(x, t, y, cache=True)
                diff = out - tgt
                diff *= 2.0 / batch
                model.backward(cache, diff)
                opt.step(model.grad)

            row = dict(dtype=dtype, width=width, depth=depth, batch=batch)
            if torch is None:
                (t_np,), _ = timed(np_step)
                row["numpy_ms"] = 1e3 * t_np
            else:
                tdt = getattr(torch, dtype)
                layers = []
                n_in = model.config.n_features
                for _ in range(depth):
                    layers += [torch.nn.Linear(n_in, width, dtype=tdt), torch.nn.SiLU()]
                    n_in = width
                layers.append(torch.nn.Linear(n_in, d, dtype=tdt))
                net = torch.nn.Sequential(*layers)
                topt = torch.optim.Adam(net.parameters(), lr=1e-3)
                xt = torch.from_numpy(x.astype(dtype))
                tt = torch.from_numpy(t)
                yt = torch.from_numpy(np.where(y < 0, C, y))
                target_t = torch.from_numpy(tgt)
                freqs = torch.pi * 2.0 ** torch.arange(n_freqs, dtype=torch.float64)

                def torch_step():
                    ang = tt[:, None] * freqs
                    feats = torch.cat(
                        [
                            xt,
                            tt[:, None].to(tdt),
                            torch.sin(ang).to(tdt),
                            torch.cos(ang).to(tdt),
                            torch.nn.functional.one_hot(yt, C + 1).to(tdt),
                        ],
                        dim=1,
                    )
                    topt.zero_grad(set_to_none=True)
                    loss = ((net(feats) - target_t) ** 2).sum(dim=1).mean()
                    loss.backward()
                    topt.step()

                (t_np, t_torch), ratio = timed(np_step, torch_step)
                row.update(numpy_ms=1e3 * t_np, torch_ms=1e3 * t_torch, ratio=ratio)
            rows.append(row)
            line = (
                f"{dtype:8s} width {width:4d} depth {depth} batch {batch:5d}: "
                f"NumPy {row['numpy_ms']:7.3f} ms/step"
            )
            if "torch_ms" in row:
                line += (
                    f"  PyTorch {row['torch_ms']:7.3f} ms/step  ratio NumPy/PyTorch "
                    f"{row['ratio']:.2f} ({'within' if row['ratio'] <= 1.5 else 'OUTSIDE'} 1.5x)"
                )
            print(line, flush=True)
    _ = time_features  # the feature map both implementations compute
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(threads=args.threads, rows=rows), fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
