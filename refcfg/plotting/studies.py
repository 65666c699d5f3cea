"""Figures of the reproduced studies (``refcfg.experiments``): each function takes pyplot and the
data its study kept and returns a Figure; ``Result.figure`` calls it through the study's ``plot``."""

from __future__ import annotations

import numpy as np


def gaussian_pushforward(plt):
    """The figure of ``refcfg reproduce gaussian-pushforward``."""
    from ..experiments.gaussian_pushforward import VARIANCES, _single_gaussian_field, _tilted_or_nan
    from ..experiments._common import sde_grid
    from ..gaussian import cfg_endpoint_1d
    from ..sampling import sample
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    ax = axes[0]
    wg = np.linspace(0.0, 8.0, 161)
    for (v1, v0), col in zip(VARIANCES, ("C0", "C1", "C2")):
        vo = [cfg_endpoint_1d(1, v1, 0, v0, w, sampler="ode")[1] for w in wg]
        vs = [cfg_endpoint_1d(1, v1, 0, v0, w, sampler="sde")[1] for w in wg]
        vt = [_tilted_or_nan(1, v1, 0, v0, w)[1] for w in wg]
        ax.plot(wg, vo, "-", color=col)
        ax.plot(wg, vs, "--", color=col)
        ax.plot(wg, vt, ":", color=col, lw=2)
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
        Line2D([], [], color=c, lw=2, label=f"V1 = {v1:g}, V0 = {v0:g}")
        for (v1, v0), c in zip(VARIANCES, ("C0", "C1", "C2"))
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
    w = 3.0
    field = _single_gaussian_field(
        np.array([1.0]), np.array([[0.25]]), np.array([0.0]), np.array([[1.0]]), w
    )
    xo = sample(field, 10000, sampler="heun", steps=100, seed=1)[:, 0]
    xs = sample(
        field, 10000, sampler="euler_maruyama", t_grid=sde_grid(500, 0.0), sigma="ddpm", seed=2
    )[:, 0]
    grid = np.linspace(-0.5, 2.5, 400)
    bins = np.linspace(-0.5, 2.5, 80)
    ax.hist(xo, bins=bins, density=True, alpha=0.4, color="C0", label="ODE samples (Heun 100)")
    ax.hist(xs, bins=bins, density=True, alpha=0.4, color="C3", label="SDE samples (EM 500)")
    for kind, col in (("ode", "C0"), ("sde", "C3")):
        m, v = cfg_endpoint_1d(1, 0.25, 0, 1, w, sampler=kind)
        ax.plot(
            grid,
            np.exp(-0.5 * (grid - m) ** 2 / v) / np.sqrt(2 * np.pi * v),
            color=col,
            label=f"exact {kind.upper()} N({m:.3f}, {v:.4f})",
        )
    m, v = _tilted_or_nan(1, 0.25, 0, 1, w)
    ax.plot(
        grid,
        np.exp(-0.5 * (grid - m) ** 2 / v) / np.sqrt(2 * np.pi * v),
        "k:",
        lw=2,
        label=f"tilted N({m:.3f}, {v:.4f})",
    )
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title("w = 3, p(x|y)=N(1, 0.25), p(x)=N(0, 1)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cfg_vs_tilted(plt, *, keep, rows, weights):
    """The figure of ``refcfg reproduce cfg-vs-tilted``."""
    from ..experiments.cfg_vs_tilted import GRIDS

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    e = GRIDS["gauss-1d"][0]
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
    ed = GRIDS["two-class-2d"]
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


def guidance_interval(plt, *, keep, rows, wk, intervals):
    """The figure of ``refcfg reproduce guidance-interval``."""
    from ..experiments.guidance_interval import EDGES

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    ax = axes[0]
    e = EDGES[0]
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


def predictor_corrector(plt, *, m1, v1, m0, v0, srows):
    """The figure of ``refcfg reproduce predictor-corrector``."""
    from ..experiments.predictor_corrector import limits_table

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    wg = np.geomspace(1.0, 128.0, 40)
    tab = limits_table(m1, v1, m0, v0, wg)
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


def tree(plt, *, mix, keep, weights):
    """The figure of ``refcfg reproduce tree``."""
    panels = [("exact", None)] + [
        (m, w) for m in ("CFG", "autoguidance") for w in weights[-2:] if (m, w) in keep
    ]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 * len(panels), 4.2), sharex=True, sharey=True
    )
    g = mix.marginal
    xs = np.linspace(-1.6, 1.6, 200)
    X, Y = np.meshgrid(xs, xs)
    lpg = g.log_prob(np.stack([X.ravel(), Y.ravel()], 1)).reshape(X.shape)
    for ax, (m, w) in zip(axes, panels):
        ax.contour(X, Y, lpg, levels=[-2.0, 0.0, 2.0], colors="lightgray", linewidths=0.6)
        x = keep["exact"] if m == "exact" else keep[(m, w)]
        ax.plot(x[:, 0], x[:, 1], ".", ms=1.2, color="C0" if m != "CFG" else "C3")
        ax.set_title("exact p(x|0)" if m == "exact" else f"{m}, w={w:g}")
        ax.set_xlabel("x1")
        ax.set_aspect("equal")
    axes[0].set_ylabel("x2")
    fig.tight_layout()
    return fig
