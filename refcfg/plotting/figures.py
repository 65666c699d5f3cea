"""Paper-style figures of the exact fields: probability paths, the noisy classifier, CFG sweeps.

Every figure is a function that takes a ``GMMPath`` (or plain numbers) and returns a
``matplotlib.figure.Figure`` built without pyplot (no global state, headless: it renders with Agg),
in one style (``STYLE``), and deterministic: each random draw comes from a ``seed=`` argument.
``make_figures(out, ...)`` writes the whole set as PNG (200 dpi) and PDF with a progress bar.

Notation of the notes (2025/26 version): x_t = alpha_t z + beta_t eps, t = 0 noise, t = 1 data;
conditional velocity u_t(x|z) (eq. 20), marginal velocity u_t(x|y) (eq. 18), noisy classifier
p_t(y|x) by Bayes' rule (eq. 60), CFG u~ = w u_t(x|y) + (1 - w) u_t(x|null) (eq. 65), the SDE of
eq. 44 (same marginals as the ODE for every sigma_t).
"""

from __future__ import annotations

import contextlib
import numbers
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..experiments import tilted

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
    "grid_box",
    "data_box",
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


def _check_path(path, need_2d=True):
    from ..paths import GMMPath

    if not isinstance(path, GMMPath):
        raise TypeError(f"path must be a refcfg.GMMPath, got {type(path).__name__}")
    if need_2d and path.d != 2:
        raise ValueError(f"path must be 2-D for this figure (a plane plot), got d = {path.d}")
    return path


def _check_label(path, y):
    if isinstance(y, (bool, np.bool_)) or not isinstance(y, numbers.Integral):
        raise TypeError(f"y must be an int class label, got {y!r}")
    if not 0 <= y < path.n_classes:
        raise ValueError(f"y must be in 0..{path.n_classes - 1}, got {y}")
    return int(y)


def _check_times(ts, name="ts", lo=0.0, hi=1.0):
    arr = np.asarray(ts, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of floats, got {ts!r}")
    if np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {ts!r}")
    return arr


def _check_int(v, name, minimum=1):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def grid_box(mixture, margin: float = 3.0, min_half: float = 3.0):
    """A square plotting box (lo, hi) for a 2-D mixture: every component's mean +- ``margin``
    standard deviations along its widest axis, and at least [-min_half, min_half] (the noise end)."""
    m = mixture.marginal if hasattr(mixture, "marginal") else mixture
    sd = np.sqrt(m.eigvals.max(axis=1))[:, None]
    lo = float(min((m.means - margin * sd).min(), -min_half))
    hi = float(max((m.means + margin * sd).max(), min_half))
    return lo, hi


def data_box(mixture, x=None, margin: float = 3.0, pad: float = 0.05):
    """A square plotting box (lo, hi) fitted to the data law at t = 1 (no noise end): every
    component's mean +- ``margin`` standard deviations along its widest axis, widened to hold the
    0.5-99.5 % quantiles of the samples x (N, 2) when given, plus ``pad`` of the width."""
    m = mixture.marginal if hasattr(mixture, "marginal") else mixture
    sd = np.sqrt(m.eigvals.max(axis=1))[:, None]
    lo, hi = float((m.means - margin * sd).min()), float((m.means + margin * sd).max())
    if x is not None and len(x):
        q_lo, q_hi = np.percentile(x, [0.5, 99.5], axis=0)
        lo, hi = min(lo, float(q_lo.min())), max(hi, float(q_hi.max()))
    extra = pad * (hi - lo)
    return lo - extra, hi + extra


def _grid(box, n):
    lo, hi = box
    g = np.linspace(lo, hi, n)
    X, Y = np.meshgrid(g, g)
    return g, np.column_stack([X.ravel(), Y.ravel()])


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


def path_snapshots(
    path, y: int = 0, ts=(0.0, 0.25, 0.5, 0.75, 1.0), *, grid: int = 140, arrows: int = 13
):
    """Snapshots of the exact conditional path p_t(x|y) with its velocity u_t(x|y) (eq. 18).

    The density (normalised to its maximum in each panel) is shaded; arrows are scaled per panel
    (their lengths compare within a panel, not across t; |u| grows like 1/beta_t near data for
    narrow components). At t = 0 the density is N(0, I) whatever y is."""
    path = _check_path(path)
    y = _check_label(path, y)
    ts = _check_times(ts)
    grid, arrows = _check_int(grid, "grid", 8), _check_int(arrows, "arrows", 3)
    box = grid_box(path.mixture)
    _, pts = _grid(box, grid)
    ga, apts = _grid(box, arrows)
    vels = [path.velocity(apts, float(t), y) for t in ts]
    with _style():
        fig = _new_figure(1.9 * len(ts) + 0.3, 2.8)
        axes = fig.subplots(1, len(ts), squeeze=False)[0]
        for i, (ax, t) in enumerate(zip(axes, ts)):
            _density_panel(ax, path.log_prob(pts, float(t), y), box, grid)
            _quiver(ax, apts, vels[i], _arrow_scale([vels[i]], ga[1] - ga[0]))
            ax.set_title(f"t = {t:g}")
            _format_plane(ax, box, left=i == 0)
        fig.suptitle(
            f"Exact path $p_t(x\\,|\\,y={y})$ (shaded) and velocity $u_t(x\\,|\\,y={y})$ "
            f"(arrows, eq. 18; scaled per panel), {path.schedule.name} schedule"
        )
    return fig


def conditional_vs_marginal(
    path, z=None, ts=(0.1, 0.4, 0.7, 0.9), *, grid: int = 140, arrows: int = 13
):
    """Conditional path p_t(x|z) = N(alpha_t z, beta_t^2 I) with u_t(x|z) (eqs. 15, 20) for one
    data point z (top) versus the marginal path p_t(x) with u_t(x) (eq. 18, bottom).

    z defaults to the mean of the first mixture component (marked by a star). Arrows are scaled
    per panel: u_t(x|z) grows like 1/beta_t as t -> 1."""
    path = _check_path(path)
    ts = _check_times(ts)
    if np.any(ts >= 1.0):
        raise ValueError(
            f"ts must be < 1: the conditional path is a point mass at t = 1, got {ts!r}"
        )
    if z is None:
        z = path.mixture.marginal.means[0]
    z = np.asarray(z, dtype=np.float64)
    if z.shape != (2,) or not np.all(np.isfinite(z)):
        raise ValueError(f"z must be a finite point of shape (2,), got {z!r}")
    box = grid_box(path.mixture)
    _, pts = _grid(box, grid)
    ga, apts = _grid(box, arrows)
    zs = np.broadcast_to(z, apts.shape)
    cond_v = [path.conditional_velocity(apts, float(t), zs) for t in ts]
    marg_v = [path.velocity(apts, float(t)) for t in ts]
    sp = ga[1] - ga[0]
    with _style():
        fig = _new_figure(1.9 * len(ts) + 0.6, 4.3)
        axes = fig.subplots(2, len(ts), squeeze=False)
        for j, t in enumerate(ts):
            v = path.schedule.values(float(t))
            al, be = float(v.alpha), float(v.beta)
            d2 = ((pts - al * z) ** 2).sum(1)
            ax = axes[0, j]
            _density_panel(ax, -0.5 * d2 / (be * be), box, grid, cmap="Oranges")
            _quiver(ax, apts, cond_v[j], _arrow_scale([cond_v[j]], sp))
            ax.plot(*z, marker="*", ms=9, mfc="none", mec="#c8453f", mew=1.0, ls="none")
            ax.set_title(f"t = {t:g}")
            _format_plane(ax, box, left=j == 0, bottom=False)
            ax = axes[1, j]
            _density_panel(ax, path.log_prob(pts, float(t)), box, grid)
            _quiver(ax, apts, marg_v[j], _arrow_scale([marg_v[j]], sp))
            _format_plane(ax, box, left=j == 0)
        axes[0, 0].set_ylabel("conditional\n$p_t(x|z)$, $u_t(x|z)$\n$x_2$")
        axes[1, 0].set_ylabel("marginal\n$p_t(x)$, $u_t(x)$\n$x_2$")
        fig.suptitle(
            "Conditional path of one data point $z$ (star; eq. 20) vs the marginal path "
            "(eq. 18); arrows scaled per panel"
        )
    return fig


def classifier_heatmaps(path, y: int = 0, ts=(0.05, 0.25, 0.5, 0.75, 1.0), *, grid: int = 140):
    """The exact noisy classifier p_t(y|x) = p(y) p_t(x|y) / p_t(x) (Bayes, eq. 60) over the
    plane for several t, with its 0.5 level line. At t = 0 it equals the prior p(y) everywhere."""
    path = _check_path(path)
    y = _check_label(path, y)
    ts = _check_times(ts)
    box = grid_box(path.mixture)
    _, pts = _grid(box, grid)
    with _style():
        fig = _new_figure(1.9 * len(ts) + 0.9, 2.6)
        axes = fig.subplots(1, len(ts), squeeze=False)[0]
        im = None
        for i, (ax, t) in enumerate(zip(axes, ts)):
            p = np.exp(path.class_log_probs(pts, float(t))[:, y]).reshape(grid, grid)
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
                g = np.linspace(box[0], box[1], grid)
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


def cfg_sweep(
    path,
    y: int = 0,
    ws=(0.0, 1.0, 2.0, 4.0),
    *,
    n: int = 1500,
    steps: int = 100,
    sampler: str = "heun",
    seed=0,
    grid: int = 140,
):
    """CFG samples (eq. 65, exact fields, ODE) for several w over the contours of the tilted
    density p(x|y)^w p(x)^(1-w) / Z (Z by the midpoint rule on the plotting grid).

    Each panel states the mean Bayes confidence E p(y|x) of the samples at t = 1. For w > 1 the
    samples do not follow the tilted law (CFG is a heuristic): compare dots and contours."""
    from ..sampling import sample

    path = _check_path(path)
    y = _check_label(path, y)
    ws = np.asarray(ws, dtype=np.float64)
    if ws.ndim != 1 or ws.size == 0 or not np.all(np.isfinite(ws)):
        raise ValueError(f"ws must be a non-empty 1-D sequence of finite floats, got {ws!r}")
    n = _check_int(n, "n")
    xs = [sample(path.cfg(y, float(w)), n, sampler=sampler, steps=steps, seed=seed) for w in ws]
    box = data_box(path.mixture, np.concatenate(xs))
    g, pts = _grid(box, grid)
    cell = (g[1] - g[0]) ** 2
    with _style():
        fig = _new_figure(1.9 * len(ws) + 0.3, 3.0)
        axes = fig.subplots(1, len(ws), squeeze=False)[0]
        for i, (ax, w, x) in enumerate(zip(axes, ws, xs)):
            lt = tilted.log_density(path, pts, y, float(w))
            p = np.exp(lt - lt.max())
            p = (p / (p.sum() * cell)).reshape(grid, grid)
            levels = np.quantile(p[p > p.max() * 1e-3], [0.3, 0.6, 0.8, 0.9, 0.97])
            levels = np.unique(levels)
            ax.contourf(
                g, g, p, levels=np.append(levels, p.max() + 1e-12), cmap="Greys", alpha=0.45
            )
            ax.contour(g, g, p, levels=levels, colors="#555555", linewidths=0.6)
            ax.scatter(
                x[:, 0], x[:, 1], s=1.8, color=_class_color(y), alpha=0.55, lw=0, rasterized=True
            )
            conf = float(np.mean(np.exp(path.class_log_probs(x, 1.0)[:, y])))
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


def ode_vs_sde(
    path,
    y: int = 0,
    w: float = 1.0,
    *,
    n: int = 8,
    steps: int = 200,
    sigma: float = 1.0,
    seed=0,
    grid: int = 140,
):
    """Trajectories of the probability-flow ODE and of the SDE of eq. 44
    (dX = [u~ + sigma^2/2 score~] dt + sigma dW, constant sigma) from the same initial points, for
    the CFG field at weight w; the right panel shows x_1 against t. Both end in p(x|y) for w = 1."""
    from ..sampling import sample

    path = _check_path(path)
    y = _check_label(path, y)
    n = _check_int(n, "n")
    steps = _check_int(steps, "steps", 2)
    if not isinstance(sigma, numbers.Real) or not sigma >= 0:
        raise ValueError(f"sigma must be a float >= 0, got {sigma!r}")
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((n, 2))
    field = path.cfg(y, float(w))
    _, tr_ode, t_ode = sample(
        field, n, sampler="heun", steps=steps, x_init=x0, return_trajectory=True
    )
    _, tr_sde, t_sde = sample(
        field,
        n,
        sampler="euler_maruyama",
        steps=steps,
        x_init=x0,
        sigma=float(sigma),
        seed=rng,
        return_trajectory=True,
    )
    box = grid_box(path.mixture)
    g, pts = _grid(box, grid)
    p1 = np.exp(tilted.log_density(path, pts, y, float(w)))
    p1 = (p1 / p1.max()).reshape(grid, grid)
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


def gaussian_cfg_variance(
    m1: float = 1.0,
    v1: float = 0.25,
    m0: float = 0.0,
    v0: float = 1.0,
    ws=None,
    *,
    mc_ws=(0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
    mc_n: int = 4000,
    steps: int = 100,
    seed=0,
):
    """Variance of the CFG endpoint X_1 against w between Gaussian laws p(x|y) = N(m1, v1) and
    p(x) = N(m0, v0) in 1-D: the ODE and the SDE (sigma_t^2 = 2 a_t) closed forms of
    ``refcfg.gaussian.cfg_endpoint_1d`` and the tilted law p(x|y)^w p(x)^(1-w)/Z; markers are
    Monte Carlo variances of the ODE sampler (Heun, ``steps`` steps, ``mc_n`` particles, ``seed``)
    on the exact guided field -- an independent check of the ODE curve."""
    from ..gaussian import cfg_endpoint_1d, tilted_gaussian
    from ..guidance import guided
    from ..mixture import GMM
    from ..paths import GMMPath
    from ..sampling import sample

    for name, v in (("v1", v1), ("v0", v0)):
        if not isinstance(v, numbers.Real) or not v > 0:
            raise ValueError(f"{name} must be a variance > 0, got {v!r}")
    ws = np.linspace(0.0, 6.0, 61) if ws is None else np.asarray(ws, dtype=np.float64)
    var_ode, var_sde, var_tilt = [], [], []
    for w in ws:
        var_ode.append(cfg_endpoint_1d(m1, v1, m0, v0, float(w), sampler="ode")[1])
        var_sde.append(cfg_endpoint_1d(m1, v1, m0, v0, float(w), sampler="sde")[1])
        try:
            var_tilt.append(float(tilted_gaussian([m1], [[v1]], [m0], [[v0]], float(w)).cov[0, 0]))
        except ValueError:
            var_tilt.append(np.nan)
    p1 = GMMPath(GMM([1.0], [[m1]], [v1]))
    p0 = GMMPath(GMM([1.0], [[m0]], [v0]))
    mc = []
    for k, w in enumerate(mc_ws):
        x = sample(
            guided(p1.field(0), p0.field(None), float(w)),
            mc_n,
            sampler="heun",
            steps=steps,
            seed=np.random.default_rng([int(seed), k]),
        )
        mc.append(float(np.var(x[:, 0], ddof=1)))
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


def learned_vs_exact(path, model, *, ws=(1.0, 3.0), n: int = 2000, seed=0, t_grid=None):
    """Relative L2 error E|u_theta - u|^2 / E|u|^2 of a trained CFG network against the exact
    fields, over (x, y) ~ p_t(x, y) for each t: conditional u(x|y), unconditional u(x) (the null
    label) and the CFG field (eq. 65) at each w (``refcfg.learn.compare.field_errors``)."""
    from ..learn.compare import field_errors

    _check_model(path, model)
    t_grid = np.linspace(0.0, 1.0, 21) if t_grid is None else _check_times(t_grid, "t_grid")
    err = field_errors(path, model, ws=ws, t_grid=t_grid, n=n, seed=seed)
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
        steps = model.meta.get("steps_done", "?")
        ax.set_title(
            f"Learned MLP ({steps} steps) vs exact fields\nover $(x, y) \\sim p_t$, N = {n} per t"
        )
    return fig


def _check_model(path, model):
    """A trained CFG MLP of this problem and schedule, or TypeError/ValueError saying why not."""
    from ..learn.mlp import MLP

    _check_path(path, need_2d=False)
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a refcfg.learn.MLP, got {type(model).__name__}")
    if model.config.n_classes != path.n_classes or model.config.d_in != path.d:
        raise ValueError(
            f"model must be a CFG model of this problem (d = {path.d}, "
            f"{path.n_classes} classes), got d = {model.config.d_in} and "
            f"n_classes = {model.config.n_classes}"
        )
    from ..learn.fields import schedule_of

    try:
        trained = schedule_of(model)
    except ValueError:
        trained = None
    if trained is not None and trained != path.schedule:
        raise ValueError(
            f"model was trained with schedule {trained.name!r} but the path uses "
            f"{path.schedule.name!r}: x_t would not mean the same"
        )


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
        meta = {"Software": None} if fmt == "png" else {"CreationDate": None}
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
        _check_model(path, model)  # before any figure is made
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g = 70 if fast else 140
    n = 400 if fast else 2000
    steps = 40 if fast else 100
    jobs = []
    if path.d == 2:
        y = _check_label(path, y)
        jobs += [
            ("path_snapshots", lambda: path_snapshots(path, y, grid=g)),
            ("conditional_vs_marginal", lambda: conditional_vs_marginal(path, grid=g)),
            ("classifier", lambda: classifier_heatmaps(path, y, grid=g)),
            ("cfg_sweep", lambda: cfg_sweep(path, y, n=n, steps=steps, seed=seed, grid=g)),
            ("ode_vs_sde", lambda: ode_vs_sde(path, y, w=1.0, steps=2 * steps, seed=seed, grid=g)),
        ]
    jobs.append(
        (
            "gaussian_variance",
            lambda: gaussian_cfg_variance(mc_n=1000 if fast else 4000, steps=steps, seed=seed),
        )
    )
    if model is not None:
        jobs.append(
            (
                "learned_errors",
                lambda: learned_vs_exact(path, model, n=500 if fast else 2000, seed=seed),
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
