"""What the figure set of ``refcfg figures`` and the interactive page show, computed.

Each function checks its arguments, evaluates the exact fields (densities, velocities, the noisy
classifier) on a square plane grid or runs the samplers, and returns a dict of arrays and numbers;
``refcfg.plotting.figures`` and ``refcfg.plotting.interactive`` only draw what it returned. Every
random draw comes from a ``seed=`` argument.

Notation of the notes (2025/26 version): x_t = alpha_t z + beta_t eps, t = 0 noise, t = 1 data;
conditional velocity u_t(x|z) (eq. 20), marginal velocity u_t(x|y) (eq. 18), noisy classifier
p_t(y|x) by Bayes' rule (eq. 60), CFG u~ = w u_t(x|y) + (1 - w) u_t(x|null) (eq. 65), the SDE of
eq. 44 (same marginals as the ODE for every sigma_t).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..combine import combine
from . import tilted

__all__ = [
    "path_snapshots",
    "conditional_vs_marginal",
    "classifier_heatmaps",
    "cfg_sweep",
    "ode_vs_sde",
    "gaussian_cfg_variance",
    "learned_vs_exact",
    "cfg_frames",
    "check_path",
    "check_label",
    "check_model",
    "grid_box",
    "data_box",
    "plane_grid",
]


# ----------------------------------------------------------------------------- checks


def check_path(path, need_2d=True):
    """``path`` if it is a GMMPath (2-D when ``need_2d``), else TypeError/ValueError."""
    from ..paths import GMMPath

    if not isinstance(path, GMMPath):
        raise TypeError(f"path must be a refcfg.GMMPath, got {type(path).__name__}")
    if need_2d and path.d != 2:
        raise ValueError(f"path must be 2-D for this figure (a plane plot), got d = {path.d}")
    return path


def check_label(path, y):
    """``y`` as an int class label of ``path``, else TypeError/ValueError."""
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


def check_model(path, model):
    """A trained CFG MLP of this problem and schedule, or TypeError/ValueError saying why not."""
    from ..learn.mlp import MLP

    check_path(path, need_2d=False)
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


# ----------------------------------------------------------------------------- plane grids


def grid_box(mixture, margin: float = 3.0, min_half: float = 3.0):
    """A square plotting box (lo, hi) for a 2-D mixture: every component's mean +- ``margin``
    standard deviations along its widest axis, and at least [-min_half, min_half] (the noise
    end)."""
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


def plane_grid(box, n):
    """The n points per side of the square ``box`` (g, (n, n) grid nodes) and its nodes as (n*n, 2)
    points, x fastest."""
    lo, hi = box
    g = np.linspace(lo, hi, n)
    X, Y = np.meshgrid(g, g)
    return g, np.column_stack([X.ravel(), Y.ravel()])


# ----------------------------------------------------------------------------- figures


def path_snapshots(
    path, y: int = 0, ts=(0.0, 0.25, 0.5, 0.75, 1.0), *, grid: int = 140, arrows: int = 13
) -> dict:
    """log p_t(x|y) on a ``grid`` x ``grid`` plane grid and the velocity u_t(x|y) (eq. 18) on an
    ``arrows`` x ``arrows`` grid, for each t of ``ts``."""
    path = check_path(path)
    y = check_label(path, y)
    ts = _check_times(ts)
    grid, arrows = _check_int(grid, "grid", 8), _check_int(arrows, "arrows", 3)
    box = grid_box(path.mixture)
    _, pts = plane_grid(box, grid)
    ga, apts = plane_grid(box, arrows)
    vels = [path.velocity(apts, float(t), y) for t in ts]
    logp = [path.log_prob(pts, float(t), y) for t in ts]
    return {
        "y": y,
        "ts": ts,
        "box": box,
        "grid": grid,
        "apts": apts,
        "spacing": ga[1] - ga[0],
        "vels": vels,
        "logp": logp,
        "schedule": path.schedule.name,
    }


def conditional_vs_marginal(
    path, z=None, ts=(0.1, 0.4, 0.7, 0.9), *, grid: int = 140, arrows: int = 13
) -> dict:
    """For one data point z (default: the mean of the first component) the conditional path
    log N(x; alpha_t z, beta_t^2 I) (up to a constant) and u_t(x|z) (eqs. 15, 20), and the marginal
    log p_t(x) and u_t(x) (eq. 18), for each t of ``ts`` (all < 1)."""
    path = check_path(path)
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
    _, pts = plane_grid(box, grid)
    ga, apts = plane_grid(box, arrows)
    zs = np.broadcast_to(z, apts.shape)
    cond_v = [path.conditional_velocity(apts, float(t), zs) for t in ts]
    marg_v = [path.velocity(apts, float(t)) for t in ts]
    cond_logp, marg_logp = [], []
    for t in ts:
        v = path.schedule.values(float(t))
        al, be = float(v.alpha), float(v.beta)
        d2 = ((pts - al * z) ** 2).sum(1)
        cond_logp.append(-0.5 * d2 / (be * be))
        marg_logp.append(path.log_prob(pts, float(t)))
    return {
        "z": z,
        "ts": ts,
        "box": box,
        "grid": grid,
        "apts": apts,
        "spacing": ga[1] - ga[0],
        "cond_v": cond_v,
        "marg_v": marg_v,
        "cond_logp": cond_logp,
        "marg_logp": marg_logp,
    }


def classifier_heatmaps(
    path, y: int = 0, ts=(0.05, 0.25, 0.5, 0.75, 1.0), *, grid: int = 140
) -> dict:
    """The exact noisy classifier p_t(y|x) = p(y) p_t(x|y) / p_t(x) (Bayes, eq. 60) on a ``grid``
    x ``grid`` plane grid (rows: x2) for each t of ``ts``."""
    path = check_path(path)
    y = check_label(path, y)
    ts = _check_times(ts)
    box = grid_box(path.mixture)
    g, pts = plane_grid(box, grid)
    probs = [np.exp(path.class_log_probs(pts, float(t))[:, y]).reshape(grid, grid) for t in ts]
    return {"y": y, "ts": ts, "box": box, "g": g, "probs": probs}


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
) -> dict:
    """CFG samples (eq. 65, exact fields, ODE) for each w, the tilted density p(x|y)^w p(x)^(1-w)/Z
    on the plane grid of a box fitted to them (Z by the midpoint rule on the grid), and the mean
    Bayes confidence E p(y|x) of the samples at t = 1."""
    from ..sampling import sample

    path = check_path(path)
    y = check_label(path, y)
    ws = np.asarray(ws, dtype=np.float64)
    if ws.ndim != 1 or ws.size == 0 or not np.all(np.isfinite(ws)):
        raise ValueError(f"ws must be a non-empty 1-D sequence of finite floats, got {ws!r}")
    n = _check_int(n, "n")
    xs = [sample(path.cfg(y, float(w)), n, sampler=sampler, steps=steps, seed=seed) for w in ws]
    box = data_box(path.mixture, np.concatenate(xs))
    g, pts = plane_grid(box, grid)
    cell = (g[1] - g[0]) ** 2
    dens, conf = [], []
    for w, x in zip(ws, xs):
        lt = tilted.log_density(path, pts, y, float(w))
        p = np.exp(lt - lt.max())
        dens.append((p / (p.sum() * cell)).reshape(grid, grid))
        conf.append(float(np.mean(np.exp(path.class_log_probs(x, 1.0)[:, y]))))
    return {
        "y": y,
        "ws": ws,
        "xs": xs,
        "box": box,
        "g": g,
        "tilted": dens,
        "conf": conf,
        "n": n,
        "steps": steps,
        "sampler": sampler,
    }


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
) -> dict:
    """Trajectories of the probability-flow ODE (Heun) and of the SDE of eq. 44
    (dX = [u~ + sigma^2/2 score~] dt + sigma dW, constant sigma, Euler-Maruyama) from the same n
    initial points for the CFG field at weight w, and p(x|y)^w p(x)^(1-w) at t = 1 (scaled to its
    maximum) on the plane grid. Both laws end in p(x|y) for w = 1."""
    from ..sampling import sample

    path = check_path(path)
    y = check_label(path, y)
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
    g, pts = plane_grid(box, grid)
    p1 = np.exp(tilted.log_density(path, pts, y, float(w)))
    p1 = (p1 / p1.max()).reshape(grid, grid)
    return {
        "y": y,
        "w": float(w),
        "sigma": sigma,
        "n": n,
        "tr_ode": tr_ode,
        "t_ode": t_ode,
        "tr_sde": tr_sde,
        "t_sde": t_sde,
        "box": box,
        "g": g,
        "p1": p1,
    }


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
) -> dict:
    """Variance of the CFG endpoint X_1 against w between Gaussian laws p(x|y) = N(m1, v1) and
    p(x) = N(m0, v0) in 1-D: the ODE and the SDE (sigma_t^2 = 2 a_t) closed forms of
    ``refcfg.gaussian.cfg_endpoint_1d``, the tilted law p(x|y)^w p(x)^(1-w)/Z (nan where it does
    not exist), and Monte Carlo variances of the ODE sampler (Heun, ``steps`` steps, ``mc_n``
    particles, seeds (``seed``, k)) on the exact guided field at each w of ``mc_ws``."""
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
    return {
        "m1": m1,
        "v1": v1,
        "m0": m0,
        "v0": v0,
        "ws": ws,
        "var_ode": var_ode,
        "var_sde": var_sde,
        "var_tilt": var_tilt,
        "mc_ws": mc_ws,
        "mc": mc,
        "mc_n": mc_n,
    }


def learned_vs_exact(path, model, *, ws=(1.0, 3.0), n: int = 2000, seed=0, t_grid=None) -> dict:
    """Relative L2 errors E|u_theta - u|^2 / E|u|^2 of a trained CFG network against the exact
    fields over (x, y) ~ p_t(x, y) for each t (``refcfg.learn.compare.field_errors``: conditional,
    unconditional and CFG at each w), with n and the model's training steps."""
    from ..learn.compare import field_errors

    check_model(path, model)
    t_grid = np.linspace(0.0, 1.0, 21) if t_grid is None else _check_times(t_grid, "t_grid")
    err = field_errors(path, model, ws=ws, t_grid=t_grid, n=n, seed=seed)
    return {"err": err, "n": n, "steps": model.meta.get("steps_done", "?")}


# ----------------------------------------------------------------------------- the page


def cfg_frames(
    path,
    y: int = 0,
    ws=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    n_t: int = 21,
    *,
    n: int = 250,
    grid: int = 40,
    arrows: int = 15,
    steps: int = 100,
    seed=0,
) -> dict:
    """The frames of the interactive page: for each w of ``ws`` and each of ``n_t`` times t
    (uniform on [0, 1]) the log-density w log p_t(x|y) + (1 - w) log p_t(x) on a ``grid`` x
    ``grid`` plane grid, the exact CFG velocity (eq. 65) on an ``arrows`` x ``arrows`` grid, and
    the positions of n particles of the CFG ODE (Heun, ``steps`` steps, a multiple of n_t - 1)
    from one seeded N(0, I) draw shared by every w; the particles' mean Bayes confidence
    E p(y|x) at t = 1."""
    from ..sampling import sample

    path = check_path(path)
    y = check_label(path, y)
    ws = [float(w) for w in np.asarray(ws, dtype=np.float64).ravel()]
    if not ws or not all(np.isfinite(ws)):
        raise ValueError(f"ws must be a non-empty sequence of finite floats, got {ws!r}")
    for name, v, lo in (
        ("n_t", n_t, 2),
        ("n", n, 1),
        ("grid", grid, 4),
        ("arrows", arrows, 2),
        ("steps", steps, 1),
    ):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if steps % (n_t - 1):
        raise ValueError(f"steps must be a multiple of n_t - 1 = {n_t - 1}, got {steps}")
    ts = np.linspace(0.0, 1.0, n_t)
    box = grid_box(path.mixture)
    _, pts = plane_grid(box, grid)
    _, apts = plane_grid(box, arrows)
    x0 = np.random.default_rng(seed).standard_normal((n, 2))
    log_dens, vel, pos, conf = [], [], [], []
    for w in ws:
        _, traj, _ = sample(
            path.cfg(y, w),
            n,
            sampler="heun",
            steps=steps,
            x_init=x0,
            return_trajectory=True,
            trajectory_every=steps // (n_t - 1),
        )
        log_dens.append([combine(path.log_prob(pts, t, y), path.log_prob(pts, t), w) for t in ts])
        vel.append([path.cfg_velocity(apts, t, y, w) for t in ts])
        pos.append([traj[k] for k in range(n_t)])
        conf.append(float(np.mean(np.exp(path.class_log_probs(traj[n_t - 1], 1.0)[:, y]))))
    return {
        "ws": ws,
        "ts": ts,
        "box": box,
        "grid": int(grid),
        "arrows": int(arrows),
        "apts": apts,
        "y": y,
        "n": int(n),
        "steps": int(steps),
        "seed": seed if isinstance(seed, int) else None,
        "schedule": path.schedule.name,
        "log_density": log_dens,
        "velocity": vel,
        "particles": pos,
        "confidence": conf,
    }
