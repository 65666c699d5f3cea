"""Figures of the studies of what guidance is for (noisy prompt pairs, underfit models, vector
prompts): each function takes pyplot and the data its study kept in its Result and returns a
Figure. Nothing here samples or evaluates a field."""

from __future__ import annotations

import numpy as np


def _curves(ax, curves, problem, sampler, style, label_rho=True):
    rhos = sorted({c["rho"] for c in curves if c["problem"] == problem})
    for i, rho in enumerate(rhos):
        cs = sorted(
            (
                c
                for c in curves
                if (c["problem"], c["sampler"], c["rho"]) == (problem, sampler, rho)
            ),
            key=lambda c: c["w"],
        )
        if not cs:
            continue
        w = np.array([c["w"] for c in cs])
        m = np.array([c["D2"] for c in cs])
        sd = np.array([c.get("D2 sd", 0.0) or 0.0 for c in cs])
        ax.plot(w, m, style, color=f"C{i}", label=f"rho = {rho:g}" if label_rho else None)
        if np.any(sd > 0):
            ax.fill_between(w, np.maximum(m - sd, 1e-12), m + sd, color=f"C{i}", alpha=0.15)


def noisy_labels(plt, *, curves, fine, samples):
    """Energy distance to the clean class law against w (one curve per rho) and samples at the
    best w (``refcfg reproduce noisy-labels``)."""
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    ax = axes[0]
    for i, rho in enumerate(sorted(fine["D2"])):
        ax.plot(fine["w"], fine["D2"][rho], ":", color=f"C{i}", lw=1.5)
    _curves(ax, curves, "gauss-1d", "ode", "o-")
    _curves(ax, curves, "gauss-1d", "sde", "s--", label_rho=False)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-5)  # the exact rho = 0, w = 1 value is 0 (rounding: 1e-15)
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("D^2 to the clean law p(x | y)")
    ax.set_title("gauss-1d: ODE (quantile transport), SDE,\ntilted law (quadrature, dotted)")
    handles = ax.get_legend_handles_labels()[0] + [
        Line2D([], [], color="k", ls="-", marker="o", label="ODE"),
        Line2D([], [], color="k", ls="--", marker="s", label="SDE (ddpm, sampled)"),
        Line2D([], [], color="k", ls=":", label="tilted law (exact)"),
    ]
    ax.legend(handles=handles, fontsize=7)
    ax = axes[1]
    _curves(ax, curves, "two-class-2d", "ode", "o-")
    _curves(ax, curves, "two-class-2d", "sde", "s--", label_rho=False)
    ax.set_yscale("log")
    ax.set_xlabel("guidance weight w")
    ax.set_title("two-class-2d (sampled; bands: +-1 sd over seeds)")
    ax.legend(fontsize=7)
    ax = axes[2]
    from scipy.stats import gaussian_kde

    grid = np.linspace(-5, 3, 400)
    for i, (rho, x) in enumerate(sorted(samples["1d"].items())):
        if x is None:
            continue
        ax.plot(grid, gaussian_kde(x)(grid), color=f"C{i}", label=f"rho = {rho:g} (ODE, best w)")
    ax.plot(
        grid,
        np.exp(-0.5 * (grid + 1) ** 2) / np.sqrt(2 * np.pi),
        "k:",
        lw=2,
        label="clean p(x | y = 0) = N(-1, 1)",
    )
    ax.set_xlabel("x")
    ax.set_title("gauss-1d: CFG laws at the best w (KDE of the quantiles)")
    ax.legend(fontsize=7)
    ax = axes[3]
    for x, col, lab in (
        (samples["2d_clean"], "0.6", "clean p(x | y = 0)"),
        (samples["2d_w1"], "C1", "w = 1 (noisy conditional)"),
        (samples["2d_best"], "C0", f"best w = {samples['w_best_2d']:g}"),
    ):
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.4, color=col, label=lab)
    ax.set_aspect("equal")
    ax.set_title(f"two-class-2d, rho = {samples['rho_max']:g}: ODE samples")
    ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    return fig


def vector_prompts(plt, *, curves, joint, samples, learned=None):
    """D^2 to p(x | y) and the prompt fit against w for fixed vector prompts, the per-particle joint
    fit, samples on the exact density and, with ``learned`` (rows of the study's learned-model
    table), the learned model's CFG against p(x | y) and the exact CFG law
    (``refcfg reproduce vector-prompts``)."""
    fig, axes = plt.subplots(1, 5 if learned else 4, figsize=(24 if learned else 19, 4.4))
    labels = list(dict.fromkeys(c["prompt"] for c in curves))
    for j, (col, ylab, log) in enumerate(
        (("D2", "D^2 to p(x | y)", True), ("log p(y|x)", "mean log p(y | x) (prompt fit)", False))
    ):
        ax = axes[j]
        for i, lab in enumerate(labels):
            for kind, style in (("ode", "o-"), ("sde", "s--")):
                cs = sorted(
                    (c for c in curves if c["prompt"] == lab and c["sampler"] == kind),
                    key=lambda c: c["w"],
                )
                w = np.array([c["w"] for c in cs])
                m = np.array([c[col] for c in cs])
                sd = np.array([c.get(col + " sd", 0.0) for c in cs])
                ax.plot(w, m, style, color=f"C{i}", label=f"{lab} ({kind.upper()})")
                ax.fill_between(w, m - sd, m + sd, color=f"C{i}", alpha=0.12)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("guidance weight w")
        ax.set_ylabel(ylab)
        ax.legend(fontsize=6.5)
    axes[0].set_title("CFG samples vs the exact p(x | y)\n(bands: +-1 sd over seeds)")
    axes[1].set_title("prompt fit under the exact p(y | x)")
    ax = axes[2]
    w = [r["w"] for r in joint]
    m = np.array([r["D2 (x, y) vs p(x, y)"] for r in joint])
    sd = np.array([r["D2 sd"] for r in joint])
    ax.errorbar(w, m, yerr=sd, fmt="o-", color="k", label="CFG ODE")
    ax.axhline(joint[0]["D2 floor"], color="0.5", ls=":", label="floor: two exact samples")
    ax.legend(fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("guidance weight w")
    ax.set_title("per-particle prompts y_i ~ p(y):\nD^2 of (x_i, y_i) to p(x, y) in R^4")
    ax = axes[3]
    g = samples["grid"]
    ax.contour(g, g, samples["density"], levels=8, colors="0.4", linewidths=0.7)
    ws = sorted(samples["x"])
    for i, wv in enumerate((ws[0], ws[-1]) if len(ws) > 1 else ws):
        x = samples["x"][wv]
        ax.scatter(
            x[:, 0], x[:, 1], s=3, alpha=0.5, color=f"C{i + 3}", label=f"CFG ODE, w = {wv:g}"
        )
    ax.set_aspect("equal")
    ax.set_title(f"{samples['label']}: exact p(x | y) (contours)")
    ax.legend(fontsize=7, markerscale=3)
    if learned:
        learned_vector_prompt_panel(axes[4], learned)
    fig.tight_layout()
    return fig


def underfit(plt, *, curves, exact, auto, samples):
    """D^2 to p(x | y) and to the exact CFG law against w, one curve per learned model
    (``refcfg reproduce underfit``)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    models = list(dict.fromkeys(c["model"] for c in curves))
    for i, lab in enumerate(models):
        cs = sorted((c for c in curves if c["model"] == lab), key=lambda c: c["w"])
        w = np.array([c["w"] for c in cs])
        err = cs[0]["cond. field err"]
        for ax, col, sdcol in (
            (axes[0], "D2 to p(x|y)", "D2 sd"),
            (axes[1], "D2 to exact CFG(w)", "D2 exact sd"),
        ):
            m = np.array([c[col] for c in cs])
            sd = np.array([c[sdcol] for c in cs])
            ax.plot(w, m, "o-", color=f"C{i}", label=f"{lab} (field err {err:.3f})")
            ax.fill_between(w, np.maximum(m - sd, 1e-6), m + sd, color=f"C{i}", alpha=0.15)
    ew = [r["w"] for r in exact]
    axes[0].plot(ew, [r["exact CFG D2 to p(x|y)"] for r in exact], "k--", label="exact fields")
    if auto:
        axes[0].plot(
            [r["w"] for r in auto],
            [r["autoguidance D2 to p(x|y)"] for r in auto],
            "s:",
            color="0.4",
            label="autoguidance (best by weakest)",
        )
    for ax, title in (
        (axes[0], "D^2 to the target p(x | y)"),
        (axes[1], "D^2 to the exact CFG law of the same w"),
    ):
        ax.set_yscale("log")
        ax.set_xlabel("guidance weight w")
        ax.set_title(title)
        ax.legend(fontsize=6.5)
    ax = axes[2]
    ref = samples["ref"]
    ax.scatter(ref[:, 0], ref[:, 1], s=3, color="0.7", alpha=0.5, label="exact p(x | y)")
    ws = sorted(samples["x"])
    for i, wv in enumerate((ws[0], ws[-1])):
        x = samples["x"][wv]
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.5, color=f"C{i + 3}", label=f"w = {wv:g}")
    ax.set_aspect("equal")
    ax.set_title(f"weakest model ({samples['label']})")
    ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    return fig


def learned_vector_prompt_panel(ax, learned):
    """One panel: D^2 of the learned vector-prompt model's CFG samples to p(x | y) (solid, band +-1
    sd), exact CFG's D^2 to p(x | y) (dashed) and the learned samples' D^2 to exact CFG of the same w
    (dotted) against w, one colour per prompt (rows of the study's learned-model table)."""
    for i, lab in enumerate(dict.fromkeys(r["prompt"] for r in learned)):
        rs = sorted((r for r in learned if r["prompt"] == lab), key=lambda r: r["w"])
        w = np.array([r["w"] for r in rs])
        m = np.array([r["D2 to p(x|y)"] for r in rs])
        sd = np.array([r["D2 sd"] for r in rs])
        ax.plot(w, m, "o-", color=f"C{i}", label=f"{lab}: learned CFG vs p(x|y)")
        ax.fill_between(w, np.maximum(m - sd, 1e-4), m + sd, color=f"C{i}", alpha=0.12)
        ax.plot(w, [r["exact CFG D2 to p(x|y)"] for r in rs], "--", color=f"C{i}", lw=0.9)
        ax.plot(w, [r["D2 to exact CFG(w)"] for r in rs], ":", color=f"C{i}", lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("D^2")
    ax.set_title(
        "learned vector-prompt model (solid: vs p(x|y);\n"
        "dashed: exact CFG vs p(x|y); dotted: learned vs exact CFG(w))"
    )
    ax.legend(fontsize=6.5)


def vector_prompts_learned(plt, *, learned):
    """The learned vector-prompt model alone (``learned_vector_prompt_panel``), e.g. over several
    trained models (verification/seeds_guidance_studies.py)."""
    fig, ax = plt.subplots(1, 1, figsize=(6.5, 4.6))
    learned_vector_prompt_panel(ax, learned)
    fig.tight_layout()
    return fig


def seed_spreads(plt, *, noisy, underfit):
    """The noisy-label and underfit headline numbers over seeds: the best w against rho (one marker
    per problem and sampler, mean +- sd over seeds, with 1 / (1 - 2 rho)), and the best w of each
    learned model against its conditional field error (mean +- sd over seeds).

    noisy: rows {"problem", "sampler", "rho", "best w": [one per seed]}; underfit: rows {"model",
    "field err": [...], "best w": [...]} (verification/seeds_guidance_studies.py)."""
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    ax = axes[0]
    keys = list(dict.fromkeys((r["problem"], r["sampler"]) for r in noisy))
    for i, (problem, sampler) in enumerate(keys):
        rs = sorted(
            (r for r in noisy if (r["problem"], r["sampler"]) == (problem, sampler)),
            key=lambda r: r["rho"],
        )
        rho = np.array([r["rho"] for r in rs]) + 0.004 * (i - len(keys) / 2)
        b = [np.asarray(r["best w"], dtype=float) for r in rs]
        ax.errorbar(
            rho,
            [v.mean() for v in b],
            yerr=[v.std(ddof=1) if v.size > 1 else 0.0 for v in b],
            fmt="o",
            ms=4,
            capsize=2,
            color=f"C{i}",
            label=f"{problem} {sampler} (n = {b[0].size})",
        )
    r = np.linspace(0.0, 0.45, 100)
    ax.plot(r, 1.0 / (1.0 - 2.0 * r), "k--", lw=0.9, label="1 / (1 - 2 rho)")
    top = max(max(row["best w"]) for row in noisy)
    ax.axhline(top, color="0.6", ls=":", lw=0.8, label=f"largest grid w ({top:g})")
    ax.set_xlabel("label noise rate rho")
    ax.set_ylabel("best grid w (mean +- sd over seeds)")
    ax.set_title("noisy pairs: best w against rho")
    ax.legend(fontsize=7)
    ax = axes[1]
    for i, row in enumerate(underfit):
        e = np.asarray(row["field err"], dtype=float)
        b = np.asarray(row["best w"], dtype=float)
        ax.errorbar(
            e.mean(),
            b.mean(),
            xerr=e.std(ddof=1) if e.size > 1 else 0.0,
            yerr=b.std(ddof=1) if b.size > 1 else 0.0,
            fmt="o",
            capsize=2,
            color=f"C{i}",
            label=f"{row['model']} (n = {b.size})",
        )
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("conditional field error (relative L2)")
    ax.set_ylabel("best grid w (mean +- sd over seeds)")
    ax.set_title("underfit models: best w against the model's error")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
