"""Figures of the digits study (``refcfg.experiments.digits``): samples drawn as 8 x 8 images."""

from __future__ import annotations

import numpy as np

__all__ = ["mosaic", "digits_study_figure"]

SIDE = 8  # the digits are 8 x 8 images, stored row-major in 64 coordinates


def mosaic(x, ys, ws, classes, weights, per, gap=2):
    """One image of the samples x (rows in the study's order: w-major, then class, then sample):
    a row of tiles per class, a block of ``per`` tiles per w, NaN gaps (drawn blank) between."""
    rows = len(classes)
    cols = len(weights) * per
    tile = SIDE + gap
    out = np.full((rows * tile + gap, cols * tile + (len(weights) - 1) * 2 * gap + gap), np.nan)
    for i, c in enumerate(classes):
        for b, w in enumerate(weights):
            sel = np.nonzero((ys == c) & (ws == w))[0][:per]
            for k, r in enumerate(sel):
                y0 = gap + i * tile
                x0 = gap + (b * per + k) * tile + b * 2 * gap
                out[y0 : y0 + SIDE, x0 : x0 + SIDE] = x[r].reshape(SIDE, SIDE)
    return out


def digits_study_figure(plt, images, rows, ys, ws, classes, weights, per):
    """Sample grids (ODE and SDE, empirical vs fitted) and, per w, the Bayes confidence and the
    distance to the nearest training image."""
    import matplotlib

    problems = list(dict.fromkeys(p for p, _ in images))
    samplers = list(dict.fromkeys(s for _, s in images))
    shape = mosaic(images[(problems[0], samplers[0])], ys, ws, classes, weights, per).shape
    panel = 7.5 * shape[0] / shape[1] + 0.5  # inches: the mosaic's aspect, plus labels
    fig = plt.figure(figsize=(7.5 * len(problems), panel * len(samplers) + 3.6))
    gs = fig.add_gridspec(
        len(samplers) + 1,
        len(problems),
        height_ratios=[panel] * len(samplers) + [3.0],
        hspace=0.5,
        wspace=0.15,
    )
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="white")
    for j, prob in enumerate(problems):
        for i, smp in enumerate(samplers):
            ax = fig.add_subplot(gs[i, j])
            m = mosaic(images[(prob, smp)], ys, ws, classes, weights, per)
            ax.imshow(
                np.clip(m, -1.0, 1.0), cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest"
            )
            ax.set_xticks([(b + 0.5) * m.shape[1] / len(weights) for b in range(len(weights))])
            ax.set_xticklabels([f"w = {w:g}" for w in weights])
            ax.set_yticks([2 + (k + 0.5) * (SIDE + 2) for k in range(len(classes))])
            ax.set_yticklabels([f"y = {c}" for c in classes])
            ax.tick_params(length=0)
            kind = "ODE (Heun)" if smp == "heun" else "SDE (Euler-Maruyama, ddpm)"
            ax.set_title(f"{prob}: {kind}", fontsize=10)
    ax1 = fig.add_subplot(gs[-1, 0])
    ax2 = fig.add_subplot(gs[-1, -1]) if len(problems) > 1 else ax1.twinx()
    for prob, smp in images:
        kind = "ODE" if smp == "heun" else "SDE"
        rr = [r for r in rows if r["problem"] == prob and r["sampler"].startswith(kind)]
        style = dict(
            color=f"C{problems.index(prob)}",
            ls="-" if kind == "ODE" else "--",
            marker="o",
            label=f"{prob} {kind}",
        )
        ax1.plot([r["w"] for r in rr], [r["Bayes confidence p(y|x)"] for r in rr], **style)
        ax2.plot(
            [r["w"] for r in rr],
            [max(r["median nearest distance / scale"], 1e-17) for r in rr],
            **style,
        )
    ax1.set_xlabel("w")
    ax1.set_ylabel("mean p(y | x) (fitted law, t = 1)")
    ax1.set_title("Bayes class confidence", fontsize=10)
    ax1.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("w")
    ax2.set_ylabel("median |x - nearest image| / RMS image norm")
    ax2.set_title(
        "distance to the nearest training image (memorisation; 0 drawn at 1e-17)", fontsize=10
    )
    ax2.legend(fontsize=8)
    return fig
