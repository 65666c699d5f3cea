"""Figures of the reproduced studies (``refcfg.experiments``): each function takes pyplot and the
arrays its study returned (``Result.figure_data``, as keyword arguments) and only draws.
``write_figure(result, path)`` picks the function by the study's name (``DRAW``) and writes the
figure."""

from __future__ import annotations

import numpy as np

__all__ = ["DRAW", "draw", "write_figure"]


def gaussian_pushforward(plt, *, wg, curves, w, xo, xs, grid, laws):
    """The figure of ``refcfg reproduce gaussian-pushforward``: the closed-form curves and the
    samples of ``refcfg.experiments.gaussian_pushforward.figure_data``."""
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    ax = axes[0]
    colors = ("C0", "C1", "C2")
    for c, col in zip(curves, colors):
        v1, v0 = c["V1"], c["V0"]
        ax.plot(wg, c["ode"], "-", color=col)
        ax.plot(wg, c["sde"], "--", color=col)
        ax.plot(wg, c["tilt"], ":", color=col, lw=2)
        if v1 > v0:  # the tilted precision w / V1 + (1 - w) / V0 vanishes at w = V1 / (V1 - V0)
            w_end = v1 / (v1 - v0)
            ax.axvline(w_end, color=col, lw=0.8, ls=(0, (1, 3)))
            ax.text(
                w_end + 0.1,
                0.97,
                f"no tilted law for w >= {w_end:g}: with V1 = {v1:g} > "
                f"V0 = {v0:g},\np(x|y)^w p(x)^(1-w) is not integrable",
                color=col,
                fontsize=7.5,
                transform=ax.get_xaxis_transform(),
                va="top",
            )
    ax.set_yscale("log")
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("endpoint variance")
    ax.set_title("closed forms (m1 = 1, m0 = 0)")
    pairs = [
        Line2D([], [], color=col, lw=2, label=f"V1 = {c['V1']:g}, V0 = {c['V0']:g}")
        for c, col in zip(curves, colors)
    ]
    kinds = [
        Line2D([], [], color="k", ls="-", label="ODE"),
        Line2D([], [], color="k", ls="--", label="SDE (ddpm)"),
        Line2D([], [], color="k", ls=":", lw=2, label="tilted law"),
    ]
    ax.add_artist(
        ax.legend(
            handles=pairs,
            fontsize=7.5,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.16),
            ncol=3,
            frameon=False,
        )
    )
    ax.legend(
        handles=kinds,
        fontsize=7.5,
        loc="upper left",
        bbox_to_anchor=(0.0, -0.24),
        ncol=3,
        frameon=False,
    )
    ax = axes[1]
    bins = np.linspace(-0.5, 2.5, 80)
    ax.hist(xo, bins=bins, density=True, alpha=0.4, color="C0", label="ODE samples (Heun 100)")
    ax.hist(xs, bins=bins, density=True, alpha=0.4, color="C3", label="SDE samples (EM 500)")
    for kind, col in (("ode", "C0"), ("sde", "C3")):
        m, v, pdf = laws[kind]
        ax.plot(grid, pdf, color=col, label=f"exact {kind.upper()} N({m:.3f}, {v:.4f})")
    m, v, pdf = laws["tilt"]
    ax.plot(grid, pdf, "k:", lw=2, label=f"tilted N({m:.3f}, {v:.4f})")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title(f"w = {w:g}, p(x|y)=N(1, 0.25), p(x)=N(0, 1)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cfg_vs_tilted(plt, *, keep, rows, weights, grids):
    """The figure of ``refcfg reproduce cfg-vs-tilted`` (``grids``: the histogram edges per
    problem)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    e = grids["gauss-1d"][0]
    c = 0.5 * (e[1:] + e[:-1])
    for w, col in zip((1.0, 3.0, 8.0), ("C0", "C1", "C2")):
        if ("gauss-1d", w, "tilt") not in keep:
            continue
        ax.plot(
            c, keep[("gauss-1d", w, "tilt")] / np.diff(e), color=col, lw=2, label=f"tilted w={w:g}"
        )
        for s, ls in (("heun", "--"), ("euler_maruyama", ":")):
            hh, _ = np.histogram(keep[("gauss-1d", w, s)][:, 0], bins=e[::8], density=True)
            ax.step(
                e[::8][:-1],
                hh,
                where="post",
                color=col,
                ls=ls,
                lw=1,
                label=f"CFG {'ODE' if s == 'heun' else 'SDE'} w={w:g}",
            )
    ax.set_xlim(-5, 3)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title("gauss-1d, y=0: N(-1,1) vs N(1,0.25)")
    ax.legend(fontsize=6, ncol=2)
    ax = axes[1]
    ed = grids["two-class-2d"]
    wsel = 3.0 if ("two-class-2d", 3.0, "tilt") in keep else weights[-1]
    q2 = keep[("two-class-2d", wsel, "tilt")].reshape(len(ed[0]) - 1, len(ed[1]) - 1)
    cx, cy = 0.5 * (ed[0][1:] + ed[0][:-1]), 0.5 * (ed[1][1:] + ed[1][:-1])
    ax.contour(cx, cy, q2.T, levels=8, cmap="viridis")
    xo = keep[("two-class-2d", wsel, "heun")][:1500]
    xs = keep[("two-class-2d", wsel, "euler_maruyama")][:1500]
    ax.plot(xo[:, 0], xo[:, 1], ".", ms=1.5, color="C3", label="CFG ODE samples")
    ax.plot(xs[:, 0], xs[:, 1], ".", ms=1.5, color="C0", alpha=0.5, label="CFG SDE samples")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_xlim(-4, 3)
    ax.set_ylim(-1.5, 3.5)
    ax.set_title(f"two-class-2d, y=0, w={wsel:g}: tilted density (contours)")
    ax.legend(fontsize=7, markerscale=6)
    ax = axes[2]
    for name, mk in (("gauss-1d", "o"), ("two-class-2d", "s")):
        for s, col in (("heun", "C3"), ("euler_maruyama", "C0")):
            rr = [r for r in rows if r["problem"] == name and r["sampler"] == s]
            ax.plot(
                [r["w"] for r in rr],
                [r["TV"] for r in rr],
                "-" + mk,
                color=col,
                label=f"{name} {'ODE' if s == 'heun' else 'SDE'}",
            )
        rr = [r for r in rows if r["problem"] == name and r["sampler"] == "heun"]
        ax.plot(
            [r["w"] for r in rr],
            [r["TV_floor"] for r in rr],
            ":" + mk,
            color="gray",
            label=f"{name} noise floor",
        )
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("TV(samples, tilted law) on the grid")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def classifier_vs_cfg(plt, *, trajs):
    """The figure of ``refcfg reproduce classifier-vs-cfg``."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, kind in zip(axes, ("ode", "sde")):
        if kind not in trajs:
            continue
        ta, tb, times = trajs[kind]
        for i in range(min(8, ta.shape[1])):
            ax.plot(
                times,
                ta[:, i, 0],
                "-",
                color="C0",
                lw=2.5,
                alpha=0.5,
                label="CFG" if i == 0 else None,
            )
            ax.plot(
                times,
                tb[:, i, 0],
                "--",
                color="C3",
                lw=1,
                label="classifier guidance" if i == 0 else None,
            )
        ax.set_xlabel("t")
        ax.set_ylabel("x1(t)")
        ax.set_title(
            f"two-class-2d, y=0, w=5, {'Heun' if kind == 'ode' else 'Euler-Maruyama (ddpm)'}"
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def guidance_interval(plt, *, keep, rows, wk, intervals, edges):
    """The figure of ``refcfg reproduce guidance-interval`` (``edges``: the histogram edges)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    ax = axes[0]
    e = edges[0]
    c = 0.5 * (e[1:] + e[:-1])
    ax.plot(c, keep[(wk, "tilt")] / np.diff(e), "k", lw=2, label=f"tilted law, w={wk:g}")
    bins = e[::8]
    for (lo, hi), col in zip(intervals, ("C3", "C0", "C2", "C1")):
        label = (
            "CFG everywhere" if np.isinf(hi) and lo == 0 else f"CFG on sigma in ({lo:g}, {hi:g}]"
        )
        x = keep[(wk, label, "heun")][:, 0]
        hh, _ = np.histogram(x, bins=bins, density=True)
        ax.step(bins[:-1], hh, where="post", color=col, label=label + " (ODE)")
    ax.set_xlim(-5, 5)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title("class 0 modes at -3, 0, +3; class 1 at 4.5, 7.5")
    ax.legend(fontsize=7)
    ax = axes[1]
    for (lo, hi), col in zip(intervals, ("C3", "C0", "C2", "C1")):
        label = (
            "CFG everywhere" if np.isinf(hi) and lo == 0 else f"CFG on sigma in ({lo:g}, {hi:g}]"
        )
        rr = [r for r in rows if r["law"] == label and r["sampler"] == "heun"]
        ax.plot([r["w"] for r in rr], [r["mode +3"] for r in rr], "-o", color=col, label=label)
    rr = [r for r in rows if r["sampler"] == "-"]
    ax.plot([r["w"] for r in rr], [r["mode +3"] for r in rr], "k--", label="tilted law")
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("mass of the mode at +3 (ODE)")
    ax.set_ylim(-0.02, 0.45)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def predictor_corrector(plt, *, m1, v1, m0, v0, srows, wg, tab):
    """The figure of ``refcfg reproduce predictor-corrector``: the limits table ``tab`` over the
    weights ``wg`` and the samplers' rows ``srows``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    ax.plot(wg, [r["sde/tilt"] for r in tab], label="Var SDE / Var tilted(w)")
    ax.plot(wg, [r["sde/tilt(2w-1)"] for r in tab], label="Var SDE / Var tilted(2w-1)")
    ax.plot(wg, [r["ode/tilt"] for r in tab], label="Var ODE / Var tilted(w)")
    ax.axhline(0.5, color="gray", ls=":", lw=1, label="1/2")
    ax.axhline(1.0, color="gray", ls="--", lw=1)
    for r in srows:
        ax.plot(
            r["w"],
            r["ratio_sample"],
            "o" if r["sampler"] == "heun" else "s",
            color="k",
            ms=5,
            label=f"samples ({r['sampler']})" if r["w"] == srows[0]["w"] else None,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 2.0)
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("variance ratio")
    ax.set_title(f"p(x|y)=N({m1:g},{v1:g}), p(x)=N({m0:g},{v0:g})")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(wg, [r["w_eff_sde"] for r in tab], label="SDE: tilted weight with equal variance")
    ax.plot(wg, 2 * wg - 1, "--", label="2w - 1 (gamma' of arXiv 2408.09000)")
    ax.plot(wg, wg, ":", label="w (the tilted law itself)")
    ax.plot(wg, [min(r["w_eff_ode"], 1e6) for r in tab], label="ODE: same")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(0.5, 1e4)
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("effective tilted weight")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def tree(plt, *, keep, weights, grid, log_p):
    """The figure of ``refcfg reproduce tree``: samples over the contours of log p(x) (``log_p``
    on the square ``grid`` x ``grid``)."""
    panels = [("exact", None)] + [
        (m, w) for m in ("CFG", "autoguidance") for w in weights[-2:] if (m, w) in keep
    ]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 * len(panels), 4.2), sharex=True, sharey=True
    )
    X, Y = np.meshgrid(grid, grid)
    for ax, (m, w) in zip(axes, panels):
        ax.contour(X, Y, log_p, levels=[-2.0, 0.0, 2.0], colors="lightgray", linewidths=0.6)
        x = keep["exact"] if m == "exact" else keep[(m, w)]
        ax.plot(x[:, 0], x[:, 1], ".", ms=1.2, color="C0" if m != "CFG" else "C3")
        ax.set_title("exact p(x|0)" if m == "exact" else f"{m}, w={w:g}")
        ax.set_xlabel("x1")
        ax.set_aspect("equal")
    axes[0].set_ylabel("x2")
    fig.tight_layout()
    return fig


def _compare_guidance(plt, *, result):
    from .comparison import comparison_figure

    return comparison_figure(result)


def _digits(plt, **data):
    from .digits import digits_study_figure

    return digits_study_figure(plt, **data)


def _guidance_study(name):
    def draw_it(plt, **data):
        from . import guidance_studies

        return getattr(guidance_studies, name)(plt, **data)

    return draw_it


# study name (``refcfg.experiments.EXPERIMENTS``) -> its drawing function
DRAW = {
    "gaussian-pushforward": gaussian_pushforward,
    "cfg-vs-tilted": cfg_vs_tilted,
    "classifier-vs-cfg": classifier_vs_cfg,
    "guidance-interval": guidance_interval,
    "tree": tree,
    "predictor-corrector": predictor_corrector,
    "compare-guidance": _compare_guidance,
    "digits": _digits,
    "noisy-labels": _guidance_study("noisy_labels"),
    "vector-prompts": _guidance_study("vector_prompts"),
    "underfit": _guidance_study("underfit"),
}


def draw(result, plt):
    """The Figure of a study's ``Result`` (drawn by ``DRAW[result.name]`` from its
    ``figure_data``); ValueError for a result without a figure."""
    if result.name not in DRAW or not result.figure_data:
        raise ValueError(f"result {result.name!r} has no figure")
    return DRAW[result.name](plt, **result.figure_data)


def write_figure(result, path) -> str:
    """Write a study's figure to ``path`` (format from the suffix; PNG at 200 dpi) and return the
    path as a string."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw(result, plt)
    fig.savefig(path, dpi=200, bbox_inches="tight")
    plt.close(fig)
    return str(path)
