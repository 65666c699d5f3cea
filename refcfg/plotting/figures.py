"""Paper-style figures of the exact fields: probability paths, the noisy classifier, CFG sweeps.

Every figure is a function that takes what ``refcfg.experiments.figure_set`` computed (its function
of the same name) and returns a ``matplotlib.figure.Figure`` built without pyplot (no global state,
headless: it renders with Agg), in one style (``STYLE``); it only draws. ``make_figures(out, ...)``
computes and writes the whole set as PNG (200 dpi) and PDF with a progress bar; each random draw
comes from its ``seed=`` argument.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..experiments import figure_set as fs

__all__ = [
    "STYLE",
    "FIGURES",
    "path_snapshots",
    "conditional_vs_marginal",
    "classifier_heatmaps",
    "cfg_sweep",
    "ode_vs_sde",
    "gaussian_cfg_variance",
    "learned_vs_exact",
    "make_figures",
    "CAPTIONS",
    "skipped_figures",
    "figure_path",
]

# One style for every figure: small serif-free fonts readable at README size (~800 px wide).
STYLE = {
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.5,
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "image.interpolation": "bilinear",
    "pdf.fonttype": 42,
    "svg.hashsalt": "refcfg",
    "path.simplify": True,
}
CLASS_COLORS = ("#2f6db3", "#c8453f", "#3d9b5b", "#8a5cb8", "#d08a1c", "#3aa6a6")
DENSITY_CMAP = "Blues"
INK = "#222222"


def _class_color(y) -> str:
    return CLASS_COLORS[int(y) % len(CLASS_COLORS)]


@contextlib.contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _new_figure(width, height):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08)  # room between a suptitle and panel titles
    return fig


def _density_panel(ax, logp, box, n, cmap=DENSITY_CMAP, normalise="max"):
    """Show exp(logp) on an n x n grid; normalised to its maximum (shape, not height)."""
    p = np.exp(logp - logp.max()).reshape(n, n)
    ax.imshow(
        p,
        origin="lower",
        extent=(box[0], box[1], box[0], box[1]),
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
        aspect="equal",
    )
    return p


def _format_plane(ax, box, left=True, bottom=True):
    ax.set_xlim(box)
    ax.set_ylim(box)
    ax.set_aspect("equal")
    if bottom:
        ax.set_xlabel("$x_1$")
    else:
        ax.tick_params(labelbottom=False)
    if left:
        ax.set_ylabel("$x_2$")
    else:
        ax.tick_params(labelleft=False)


def _quiver(ax, pts, vec, scale):
    ax.quiver(
        pts[:, 0],
        pts[:, 1],
        vec[:, 0],
        vec[:, 1],
        color=INK,
        angles="xy",
        scale_units="xy",
        scale=scale,
        width=0.006,
        headwidth=3.5,
        headlength=4.0,
        alpha=0.85,
    )


def _arrow_scale(vectors, spacing):
    """A common quiver scale: the 90th percentile arrow spans ~0.9 grid spacings."""
    mags = np.concatenate([np.linalg.norm(v, axis=1) for v in vectors])
    ref = float(np.percentile(mags, 90)) if mags.size else 1.0
    return max(ref, 1e-12) / (0.9 * spacing)


# ----------------------------------------------------------------------------- figures


def path_snapshots(data):
    """Snapshots of the exact conditional path p_t(x|y) with its velocity u_t(x|y) (eq. 18), from
    ``figure_set.path_snapshots``.

    The density (normalised to its maximum in each panel) is shaded; arrows are scaled per panel
    (their lengths compare within a panel, not across t; |u| grows like 1/beta_t near data for
    narrow components). At t = 0 the density is N(0, I) whatever y is."""
    ts, box, grid, y = data["ts"], data["box"], data["grid"], data["y"]
    apts, vels = data["apts"], data["vels"]
    with _style():
        fig = _new_figure(1.9 * len(ts) + 0.3, 2.8)
        axes = fig.subplots(1, len(ts), squeeze=False)[0]
        for i, (ax, t) in enumerate(zip(axes, ts)):
            _density_panel(ax, data["logp"][i], box, grid)
            _quiver(ax, apts, vels[i], _arrow_scale([vels[i]], data["spacing"]))
            ax.set_title(f"t = {t:g}")
            _format_plane(ax, box, left=i == 0)
        fig.suptitle(
            f"Exact path $p_t(x\\,|\\,y={y})$ (shaded) and velocity $u_t(x\\,|\\,y={y})$ "
            f"(arrows, eq. 18; scaled per panel), {data['schedule']} schedule"
        )
    return fig


def conditional_vs_marginal(data):
    """Conditional path p_t(x|z) = N(alpha_t z, beta_t^2 I) with u_t(x|z) (eqs. 15, 20) for one
    data point z (top) versus the marginal path p_t(x) with u_t(x) (eq. 18, bottom), from
    ``figure_set.conditional_vs_marginal``.

    z is marked by a star. Arrows are scaled per panel: u_t(x|z) grows like 1/beta_t as t -> 1."""
    ts, box, grid, z, apts = data["ts"], data["box"], data["grid"], data["z"], data["apts"]
    cond_v, marg_v, sp = data["cond_v"], data["marg_v"], data["spacing"]
    with _style():
        fig = _new_figure(1.9 * len(ts) + 0.6, 4.3)
        axes = fig.subplots(2, len(ts), squeeze=False)
        for j, t in enumerate(ts):
            ax = axes[0, j]
            _density_panel(ax, data["cond_logp"][j], box, grid, cmap="Oranges")
            _quiver(ax, apts, cond_v[j], _arrow_scale([cond_v[j]], sp))
            ax.plot(*z, marker="*", ms=9, mfc="none", mec="#c8453f", mew=1.0, ls="none")
            ax.set_title(f"t = {t:g}")
            _format_plane(ax, box, left=j == 0, bottom=False)
            ax = axes[1, j]
            _density_panel(ax, data["marg_logp"][j], box, grid)
            _quiver(ax, apts, marg_v[j], _arrow_scale([marg_v[j]], sp))
            _format_plane(ax, box, left=j == 0)
        axes[0, 0].set_ylabel("conditional\n$p_t(x|z)$, $u_t(x|z)$\n$x_2$")
        axes[1, 0].set_ylabel("marginal\n$p_t(x)$, $u_t(x)$\n$x_2$")
        fig.suptitle(
            "Conditional path of one data point $z$ (star; eq. 20) vs the marginal path "
            "(eq. 18); arrows scaled per panel"
        )
    return fig


def classifier_heatmaps(data):
    """The exact noisy classifier p_t(y|x) = p(y) p_t(x|y) / p_t(x) (Bayes, eq. 60) over the
    plane for several t, with its 0.5 level line, from ``figure_set.classifier_heatmaps``. At t = 0
    it equals the prior p(y) everywhere."""
    ts, box, g, y = data["ts"], data["box"], data["g"], data["y"]
    with _style():
        fig = _new_figure(1.9 * len(ts) + 0.9, 2.6)
        axes = fig.subplots(1, len(ts), squeeze=False)[0]
        im = None
        for i, (ax, t) in enumerate(zip(axes, ts)):
            p = data["probs"][i]
            im = ax.imshow(
                p,
                origin="lower",
                extent=(box[0], box[1], box[0], box[1]),
                cmap="RdBu_r" if y else "RdBu",
                vmin=0,
                vmax=1,
                aspect="equal",
            )
            if p.min() < 0.5 < p.max():
                ax.contour(g, g, p, levels=[0.5], colors=INK, linewidths=0.9)
            ax.set_title(f"t = {t:g}")
            _format_plane(ax, box, left=i == 0)
        cb = fig.colorbar(im, ax=list(axes), shrink=0.85, pad=0.02)
        cb.set_label(f"$p_t(y={y}\\,|\\,x)$")
        fig.suptitle(
            f"Exact noisy classifier $p_t(y={y}\\,|\\,x)$ by Bayes' rule (eq. 60); "
            "black line: level 0.5"
        )
    return fig


def cfg_sweep(data):
    """CFG samples (eq. 65, exact fields, ODE) for several w over the contours of the tilted
    density p(x|y)^w p(x)^(1-w) / Z, from ``figure_set.cfg_sweep``.

    Each panel states the mean Bayes confidence E p(y|x) of the samples at t = 1. For w > 1 the
    samples do not follow the tilted law (CFG is a heuristic): compare dots and contours."""
    ws, xs, box, g, y = data["ws"], data["xs"], data["box"], data["g"], data["y"]
    n, steps, sampler = data["n"], data["steps"], data["sampler"]
    with _style():
        fig = _new_figure(1.9 * len(ws) + 0.3, 3.0)
        axes = fig.subplots(1, len(ws), squeeze=False)[0]
        for i, (ax, w, x) in enumerate(zip(axes, ws, xs)):
            p = data["tilted"][i]
            levels = np.quantile(p[p > p.max() * 1e-3], [0.3, 0.6, 0.8, 0.9, 0.97])
            levels = np.unique(levels)
            ax.contourf(
                g, g, p, levels=np.append(levels, p.max() + 1e-12), cmap="Greys", alpha=0.45
            )
            ax.contour(g, g, p, levels=levels, colors="#555555", linewidths=0.6)
            ax.scatter(
                x[:, 0], x[:, 1], s=1.8, color=_class_color(y), alpha=0.55, lw=0, rasterized=True
            )
            conf = data["conf"][i]
            ax.set_title(f"w = {w:g}")
            ax.text(
                0.03,
                0.03,
                f"E p(y|x) = {conf:.3f}",
                transform=ax.transAxes,
                fontsize=7.5,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8),
            )
            _format_plane(ax, box, left=i == 0)
        fig.suptitle(
            f"Exact CFG samples, y = {y} (dots; {sampler}, {steps} steps, N = {n})\n"
            f"over the tilted density $p(x|y)^w p(x)^{{1-w}}/Z$ (contours)"
        )
    return fig


def ode_vs_sde(data):
    """Trajectories of the probability-flow ODE and of the SDE of eq. 44
    (dX = [u~ + sigma^2/2 score~] dt + sigma dW, constant sigma) from the same initial points, for
    the CFG field at weight w, from ``figure_set.ode_vs_sde``; the right panel shows x_1 against
    t. Both end in p(x|y) for w = 1."""
    tr_ode, t_ode, tr_sde, t_sde = data["tr_ode"], data["t_ode"], data["tr_sde"], data["t_sde"]
    box, g, p1, n = data["box"], data["g"], data["p1"], data["n"]
    w, y, sigma = data["w"], data["y"], data["sigma"]
    import matplotlib.cm as cm

    colors = cm.viridis(np.linspace(0.05, 0.9, n))
    with _style():
        fig = _new_figure(8.2, 2.9)
        axes = fig.subplots(1, 3, width_ratios=[1, 1, 1.35])
        for k, (ax, tr, name) in enumerate(
            (
                (axes[0], tr_ode, "ODE (Heun)"),
                (axes[1], tr_sde, f"SDE, $\\sigma_t$ = {sigma:g} (Euler-Maruyama)"),
            )
        ):
            ax.contour(g, g, p1, levels=[0.05, 0.25, 0.6], colors="#999999", linewidths=0.6)
            for j in range(n):
                ax.plot(tr[:, j, 0], tr[:, j, 1], color=colors[j], lw=0.9, alpha=0.9)
            ax.scatter(
                tr[0, :, 0],
                tr[0, :, 1],
                s=10,
                color="white",
                edgecolor=INK,
                lw=0.6,
                zorder=3,
                label="$x_0 \\sim N(0, I)$",
            )
            ax.scatter(
                tr[-1, :, 0],
                tr[-1, :, 1],
                s=14,
                color=colors,
                edgecolor=INK,
                lw=0.6,
                zorder=3,
                marker="D",
                label="$x_1$",
            )
            ax.set_title(name)
            _format_plane(ax, box, left=k == 0)
        axes[0].legend(
            loc="upper right", frameon=True, framealpha=0.85, handletextpad=0.2, borderpad=0.3
        )
        ax = axes[2]
        for j in range(n):
            ax.plot(t_ode, tr_ode[:, j, 0], color=colors[j], lw=1.0)
            ax.plot(t_sde, tr_sde[:, j, 0], color=colors[j], lw=0.7, ls=":", alpha=0.9)
        ax.plot([], [], color=INK, lw=1.0, label="ODE")
        ax.plot([], [], color=INK, lw=0.7, ls=":", label="SDE")
        ax.set_xlabel("t (0 = noise, 1 = data)")
        ax.set_ylabel("$x_1(t)$")
        ax.set_xlim(0, 1)
        ax.legend(loc="best", frameon=True, framealpha=0.85)
        ax.set_title("first coordinate")
        fig.suptitle(
            f"ODE vs SDE (eq. 44) from the same starts, CFG w = {w:g}, y = {y}; "
            "grey: contours of $p(x|y)^w p(x)^{1-w}$ at t = 1"
        )
    return fig


def gaussian_cfg_variance(data):
    """Variance of the CFG endpoint X_1 against w between Gaussian laws p(x|y) = N(m1, v1) and
    p(x) = N(m0, v0) in 1-D, from ``figure_set.gaussian_cfg_variance``: the ODE and the SDE
    (sigma_t^2 = 2 a_t) closed forms and the tilted law p(x|y)^w p(x)^(1-w)/Z; markers are Monte
    Carlo variances of the ODE sampler on the exact guided field -- an independent check of the
    ODE curve."""
    ws, var_ode, var_sde, var_tilt = data["ws"], data["var_ode"], data["var_sde"], data["var_tilt"]
    mc_ws, mc, mc_n = data["mc_ws"], data["mc"], data["mc_n"]
    m1, v1, m0, v0 = data["m1"], data["v1"], data["m0"], data["v0"]
    with _style():
        fig = _new_figure(4.6, 3.1)
        ax = fig.subplots()
        ax.plot(ws, var_ode, color=CLASS_COLORS[0], label="ODE (closed form)")
        ax.plot(ws, var_sde, color=CLASS_COLORS[1], label="SDE, $\\sigma_t^2 = 2a_t$ (closed form)")
        ax.plot(ws, var_tilt, color=INK, ls="--", label="tilted law $p(x|y)^w p(x)^{1-w}/Z$")
        ax.plot(
            mc_ws,
            mc,
            ls="none",
            marker="o",
            ms=5,
            mfc="white",
            mec=CLASS_COLORS[0],
            mew=1.2,
            label=f"ODE Monte Carlo (Heun, N = {mc_n})",
        )
        ax.axvline(1.0, color="#aaaaaa", lw=0.7, ls=":")
        ax.text(
            1.05,
            0.97,
            "w = 1: p(x|y)",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            va="top",
            color="#666666",
        )
        ax.set_yscale("log")
        ax.set_xlabel("guidance weight w")
        ax.set_ylabel("Var $X_1$")
        ax.legend(loc="lower left", frameon=False)
        ax.set_title(
            f"CFG endpoint variance between Gaussians\n"
            f"p(x|y) = N({m1:g}, {v1:g}), p(x) = N({m0:g}, {v0:g}), linear schedule"
        )
    return fig


def learned_vs_exact(data):
    """Relative L2 error E|u_theta - u|^2 / E|u|^2 of a trained CFG network against the exact
    fields per t, from ``figure_set.learned_vs_exact``: conditional u(x|y), unconditional u(x)
    (the null label) and the CFG field (eq. 65) at each w."""
    err, n = data["err"], data["n"]
    with _style():
        fig = _new_figure(4.6, 3.1)
        ax = fig.subplots()
        ax.plot(
            err["t"],
            err["conditional"],
            marker="o",
            ms=3,
            color=CLASS_COLORS[0],
            label="conditional $u(x|y)$",
        )
        ax.plot(
            err["t"],
            err["unconditional"],
            marker="s",
            ms=3,
            color=CLASS_COLORS[2],
            label="unconditional $u(x|\\varnothing)$",
        )
        cfg_colors = ("#c8453f", "#8a5cb8", "#d08a1c", "#3aa6a6")
        cfg_rows = [(w, e) for w, e in err.get("cfg", {}).items() if w != 1.0]
        for k, (w, e) in enumerate(cfg_rows):
            ax.plot(
                err["t"],
                e,
                marker="^",
                ms=3,
                color=cfg_colors[k % len(cfg_colors)],
                label=f"CFG w = {w:g}",
            )
        ax.set_yscale("log")
        ax.set_xlabel("t (0 = noise, 1 = data)")
        ax.set_ylabel("relative L2 error")
        ax.set_xlim(-0.03, 1.03)  # the markers at t = 0 and t = 1 are whole
        ax.legend(frameon=False)
        steps = data["steps"]
        ax.set_title(
            f"Learned MLP ({steps} steps) vs exact fields\nover $(x, y) \\sim p_t$, N = {n} per t"
        )
    return fig


# ----------------------------------------------------------------------------- the set

CAPTIONS = {
    "path_snapshots": "The exact class-conditional path p_t(x|y) and its velocity u_t(x|y) (eq. 18) "
    "from noise (t = 0) to data (t = 1).",
    "conditional_vs_marginal": "Top: the conditional path of one data point z, N(alpha_t z, "
    "beta_t^2 I), and u_t(x|z) (eq. 20). Bottom: the marginal path and "
    "u_t(x) (eq. 18).",
    "classifier": "The exact noisy classifier p_t(y|x) by Bayes' rule (eq. 60): uninformative "
    "at t = 0, the data-level Bayes classifier at t = 1.",
    "cfg_sweep": "CFG samples of the exact guided ODE for several w over the contours of the tilted "
    "density p(x|y)^w p(x)^(1-w)/Z: for w > 1 they do not follow it.",
    "ode_vs_sde": "The probability-flow ODE and the SDE (eq. 44) from the same initial points: "
    "different paths, the same marginals.",
    "gaussian_variance": "Endpoint variance of CFG between two Gaussians with V1 < V0: the ODE "
    "collapses geometrically in w (V1^w V0^(1-w)), the SDE and the tilted law "
    "decay like 1/w. Both statements need V1 < V0: for V1 > V0 the ODE "
    "variance grows and no tilted law exists for w >= V1 / (V1 - V0).",
    "learned_errors": "Relative L2 error of a trained MLP against the exact fields, per t.",
}

FIGURES = (
    "path_snapshots",
    "conditional_vs_marginal",
    "classifier",
    "cfg_sweep",
    "ode_vs_sde",
    "gaussian_variance",
    "learned_errors",
)


def figure_path(out, name, fmt="png") -> Path:
    """Where ``make_figures`` writes figure ``name`` in format ``fmt``."""
    return Path(out) / f"{name}.{fmt}"


def _save(fig, out, name, formats):
    written = []
    for fmt in formats:
        p = figure_path(out, name, fmt)
        meta = {"png": {"Software": None}, "pdf": {"CreationDate": None}}.get(fmt, {"Date": None})
        fig.savefig(
            p,
            format=fmt,
            dpi=STYLE["savefig.dpi"],
            metadata=meta,
            facecolor="white",
            bbox_inches="tight",
            pad_inches=0.06,
        )
        written.append(p)
    return written


def skipped_figures(path, model=None) -> dict:
    """The figures of ``FIGURES`` that ``make_figures`` leaves out for this path and model, with the
    reason (name -> text): plane figures need d = 2, the learned-errors figure a model."""
    out = {}
    if path.d != 2:
        for name in FIGURES[:5]:
            out[name] = f"needs a 2-D problem (d = {path.d})"
    if model is None:
        out["learned_errors"] = "needs a trained model (--model)"
    return out


def make_figures(
    out,
    problem="two-class-2d",
    *,
    model=None,
    y: int = 0,
    seed: int = 0,
    formats=("png", "pdf"),
    fast: bool = False,
    progress=True,
    schedule="linear",
):
    """Write the figure set to directory ``out`` (created), one file per figure and format.

    problem: a problem name, ``.toml`` path, LabeledGMM or GMMPath; model: a trained CFG
    ``refcfg.learn.MLP`` (or a path to a saved one) for the learned-vs-exact figure, skipped when
    None; fast: smaller grids and samples (for tests); progress: tqdm bar (True: when stderr is a
    terminal, "force": always, False: never). Plane figures need d = 2 and are skipped otherwise.
    Returns a dict name -> list of written paths."""
    from ..paths import GMMPath
    from ..problems import resolve

    path = problem if isinstance(problem, GMMPath) else resolve(problem, schedule).path
    formats = tuple(formats)
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad or not formats:
        raise ValueError(
            f"formats must be a non-empty subset of ('png', 'pdf', 'svg'), got {formats!r}"
        )
    if model is not None and not hasattr(model, "forward"):
        from ..learn.mlp import load_mlp

        model = load_mlp(model)
    if model is not None:
        fs.check_model(path, model)  # before any figure is made
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g = 70 if fast else 140
    n = 400 if fast else 2000
    steps = 40 if fast else 100
    jobs = []
    if path.d == 2:
        y = fs.check_label(path, y)
        jobs += [
            ("path_snapshots", lambda: path_snapshots(fs.path_snapshots(path, y, grid=g))),
            (
                "conditional_vs_marginal",
                lambda: conditional_vs_marginal(fs.conditional_vs_marginal(path, grid=g)),
            ),
            ("classifier", lambda: classifier_heatmaps(fs.classifier_heatmaps(path, y, grid=g))),
            (
                "cfg_sweep",
                lambda: cfg_sweep(fs.cfg_sweep(path, y, n=n, steps=steps, seed=seed, grid=g)),
            ),
            (
                "ode_vs_sde",
                lambda: ode_vs_sde(
                    fs.ode_vs_sde(path, y, w=1.0, steps=2 * steps, seed=seed, grid=g)
                ),
            ),
        ]
    jobs.append(
        (
            "gaussian_variance",
            lambda: gaussian_cfg_variance(
                fs.gaussian_cfg_variance(mc_n=1000 if fast else 4000, steps=steps, seed=seed)
            ),
        )
    )
    if model is not None:
        jobs.append(
            (
                "learned_errors",
                lambda: learned_vs_exact(
                    fs.learned_vs_exact(path, model, n=500 if fast else 2000, seed=seed)
                ),
            )
        )
    bar = progress_bar(len(jobs), "figures", progress, unit="fig")
    written = {}
    try:
        for name, job in jobs:
            if bar is not None:
                bar.set_postfix_str(name, refresh=True)
            fig = job()
            written[name] = _save(fig, out, name, formats)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return written
