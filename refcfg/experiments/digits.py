"""Exact CFG on real data: the 8 x 8 handwritten digits (d = 64) as point masses and as fitted mixtures.

Two exact problems share the 1797 training images (scaled to [-1, 1], ``refcfg.datasets``):
"digits", every image a point mass (the ideal denoiser of the training set), and "digits-gmm", 10
full-covariance components per class fitted by scikit-learn. For w in ``WEIGHTS`` and a few classes
the study samples the exact CFG field w u(x|y) + (1 - w) u(x) with the probability-flow ODE (Heun)
and the DDPM-like SDE (Euler-Maruyama, sigma_t^2 = 2 a_t), from the same initial noise, and reports
per (problem, sampler, w):

- the Bayes class confidence p(y | x) of the samples under the fitted law at t = 1 (an exact smooth
  classifier; the empirical law's own classifier at t = 1 is the nearest training image);
- the nearest-training-image class agreement (1-NN label = y);
- the distance of each sample to its nearest training image, relative to the data scale (the RMS
  norm of the training images): memorisation when it is ~0;
- the fraction of distinct nearest images among the samples (diversity).

Point masses make every field diverge like 1/beta_t off the training points at t = 1, so the
integration stops at ``T_END`` (beta_t / alpha_t = 0.002, the last noise level of an EDM grid) and a
final step maps x to the guided posterior mean w E[z|x, y] + (1 - w) E[z|x] at T_END. For the linear
schedule that final step is exactly the Euler step from T_END to 1 (x + (1 - t) u_t(x) = E[z|x]),
computed without the division by beta_t. The same grid and final step are used for the fitted problem.
"""

from __future__ import annotations

import time

import numpy as np

from ..combine import combine
from ._common import Result, edm_grid

NAME = "digits"
TITLE = "Exact CFG on the handwritten digits: point masses (memorisation) vs fitted mixtures"

WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0)
PROBLEMS = ("digits", "digits-gmm")


def guided_x0(path, y, w, x, t):
    """The CFG posterior mean w E[z|x, y] + (1 - w) E[z|x] (per-row y, w), the final denoising step."""
    w = np.broadcast_to(np.asarray(w, dtype=np.float64), (x.shape[0],))
    return combine(path.x0(x, t, y), path.x0(x, t), w)


def sample_exact_cfg(path, labels, ws, x_init, *, steps, sampler="heun", noise=None, backend="cpu"):
    """Exact CFG samples for per-row labels and weights: ``steps`` intervals of ``edm_grid`` up to
    T_END (< 1), then the final denoising step ``guided_x0``. Returns (x at t = 1, T_END)."""
    import refcfg

    grid = edm_grid(steps, path.schedule)[:-1]  # drop t = 1: point masses diverge there
    kw = dict(t_grid=grid, x_init=x_init, backend=backend)
    if sampler != "heun":
        kw.update(sampler="euler_maruyama", sigma="ddpm", noise=noise)
    x = refcfg.sample(path.cfg(labels, ws), x_init.shape[0], **kw)
    return guided_x0(path, labels, ws, x, float(grid[-1])), float(grid[-1])


def nearest_images(x, X, labels, return_index=False):
    """For each row of x: distance to the nearest training image and that image's label (and its
    index with ``return_index``)."""
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ X.T + (X * X).sum(1)[None]
    j = np.argmin(d2, axis=1)
    diff = x - X[j]  # exact distance for the argmin
    out = (np.sqrt((diff * diff).sum(1)), labels[j])
    return out + (j,) if return_index else out


def run(fast: bool = False, seed: int = 0, backend: str = "cpu") -> Result:
    """The digits study. ``fast``: 3 classes x 4 samples per w and 40 steps; otherwise 5 classes x 8
    samples and 100 steps. ``backend``: "cpu" (Numba kernels) or "numpy" (same samples to rounding)."""
    import refcfg

    from ..datasets import load_digits
    from ..problems import digits_gmm_fit

    X, lab = load_digits()
    scale = float(np.sqrt((X * X).sum(1).mean()))  # RMS norm of the training images
    classes = (0, 3, 8) if fast else (0, 2, 3, 5, 8)
    per, steps = (4, 40) if fast else (8, 100)
    fitted = digits_gmm_fit()
    classifier = refcfg.GMMPath(fitted.mixture, "linear")
    rng = np.random.default_rng(seed)
    # rows: w-major, then class, then sample; every (problem, sampler) starts from the same noise
    ys = np.tile(np.repeat(np.array(classes, dtype=np.int64), per), len(WEIGHTS))
    ws = np.repeat(np.array(WEIGHTS), len(classes) * per)
    n = ys.size
    x_init = rng.standard_normal((n, X.shape[1]))
    noise = rng.standard_normal((steps, n, X.shape[1]))
    rows, images, timings = [], {}, {}
    for prob in PROBLEMS:
        path = refcfg.GMMPath(refcfg.problem(prob), "linear")
        for sampler in ("heun", "euler_maruyama"):
            t0 = time.perf_counter()
            x, t_end = sample_exact_cfg(
                path, ys, ws, x_init, steps=steps, sampler=sampler, noise=noise, backend=backend
            )
            timings[(prob, sampler)] = time.perf_counter() - t0
            images[(prob, sampler)] = x
            dist, nn_lab, nn_idx = nearest_images(x, X, lab, return_index=True)
            conf = np.exp(classifier.class_log_probs(x, 1.0)[np.arange(n), ys])
            for w in WEIGHTS:
                m = ws == w
                rel = dist[m] / scale
                rows.append(
                    {
                        "problem": prob,
                        "sampler": "ODE (Heun)" if sampler == "heun" else "SDE (EM, ddpm)",
                        "w": w,
                        "Bayes confidence p(y|x)": float(conf[m].mean()),
                        "1-NN label = y": float((nn_lab[m] == ys[m]).mean()),
                        "median nearest distance / scale": float(np.median(rel)),
                        "max nearest distance / scale": float(rel.max()),
                        "memorised (< 1e-3)": float((rel < 1e-3).mean()),
                        "distinct nearest images": float(np.unique(nn_idx[m]).size / m.sum()),
                    }
                )
    cov_scale = float(np.sqrt(fitted.mixture.marginal.eigvals.sum(1)).mean()) / scale
    key = {
        "n_per_run": n,
        "steps": steps,
        "t_end": t_end,
        "data_scale": scale,
        "fitted_log_likelihood_per_image": fitted.log_likelihood,
        "fitted_component_std_over_scale": cov_scale,
        "memorised_fraction_digits_w1_ode": next(
            r["memorised (< 1e-3)"]
            for r in rows
            if r["problem"] == "digits" and r["w"] == 1.0 and r["sampler"].startswith("ODE")
        ),
        "seconds": {f"{p} {s}": round(v, 2) for (p, s), v in timings.items()},
    }

    data = dict(images=images, rows=rows, ys=ys, ws=ws, classes=classes, weights=WEIGHTS, per=per)
    return Result(NAME, TITLE, rows, key, figure_data=data)
