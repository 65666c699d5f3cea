"""Golden test vectors: exact field values on fixed points, for checking implementations in any
language (C++, JAX, PyTorch ...). The schema is documented in docs/vectors-schema.md.

Each case is one problem under one schedule, written as ``<case>.npz`` (float64/int64 arrays) and
``<case>.json`` (metadata: schema version, the problem's parameters, the schedule, the conventions,
the shape and meaning of each array, and the same arrays as nested lists, with ``null`` where the
NPZ holds NaN). ``index.json`` lists the cases. Values come from :class:`refcfg.GMMPath`; the points
are drawn here from the problem's parameters with a fixed seed (``np.random.default_rng(seed)``), so a
case is reproducible from its JSON alone.

Quantities at every time t and point x (y the point's class, NULL unconditional; equation numbers
of the 2025/26 notes, arXiv 2506.02070): log p_t(x|y) and log p_t(x); score, velocity, x0 = E[z|x_t], eps = E[eps|x_t], each
conditional and unconditional; log p_t(y'|x) for every class (eq. 60); grad log p_t(y|x) (eq. 61);
the CFG velocity and score w K(x|y) + (1 - w) K(x|null) (eq. 65) and the classifier-guided velocity
u(x) + w a_t grad log p_t(y|x) (eq. 62) for each w; and the schedule's alpha, beta, their
derivatives and a_t, b_t of eq. 41.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "FORMAT",
    "DEFAULT_CASES",
    "make_case",
    "write_vectors",
    "read_case",
    "read_vectors",
    "compare_cases",
    "compare_vectors",
    "ARRAYS",
]

FORMAT = "refcfg-golden-vectors"
SCHEMA_VERSION = 1

DEFAULT_TIMES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
DEFAULT_W = (0.0, 1.0, 3.0)

DEFAULT_CASES = (
    {"name": "two-class-2d_linear", "problem": "two-class-2d", "schedule": "linear", "params": {}},
    {"name": "two-class-2d_cosine", "problem": "two-class-2d", "schedule": "cosine", "params": {}},
    {"name": "two-class-2d_sqrt", "problem": "two-class-2d", "schedule": "sqrt", "params": {}},
    {"name": "gauss-1d_vp", "problem": "gauss-1d", "schedule": "vp", "params": {}},
    {"name": "gauss-1d_linear-vp", "problem": "gauss-1d", "schedule": "linear-vp", "params": {}},
    {
        "name": "mit-symmetric_polynomial3",
        "problem": "mit-symmetric",
        "schedule": "polynomial",
        "params": {"n": 3.0},
    },
)
"""The committed small set (verification/vectors/): name, problem, schedule, schedule params."""

# name -> (shape in symbols, description)
ARRAYS = {
    "times": ("(T,)", "times t in [0, 1]; t = 0 noise, t = 1 data"),
    "alpha": ("(T,)", "alpha_t (x_t = alpha_t z + beta_t eps)"),
    "beta": ("(T,)", "beta_t"),
    "dalpha": ("(T,)", "d alpha_t / dt"),
    "dbeta": ("(T,)", "d beta_t / dt (-inf at t = 1 for sqrt, linear-vp, vp)"),
    "beta_dbeta": ("(T,)", "beta_t * d beta_t / dt (finite on [0, 1])"),
    "a": ("(T,)", "a_t = beta^2 dalpha / alpha - beta dbeta (eq. 41); NaN where alpha_t = 0"),
    "b": ("(T,)", "b_t = dalpha / alpha (eq. 41); NaN where alpha_t = 0"),
    "x": ("(T, N, d)", "points: x[i] = alpha_t z + beta_t eps with z ~ p(z|y), eps ~ N(0, I)"),
    "y": ("(N,)", "class label of each point (int64, 0..C-1); the *_uncond arrays use NULL"),
    "w": ("(W,)", "guidance weights, notes' convention: w = 1 no guidance, w = 0 unconditional"),
    "log_prob_cond": ("(T, N)", "log p_t(x | y)"),
    "log_prob_uncond": ("(T, N)", "log p_t(x)"),
    "score_cond": ("(T, N, d)", "grad_x log p_t(x | y)"),
    "score_uncond": ("(T, N, d)", "grad_x log p_t(x)"),
    "velocity_cond": ("(T, N, d)", "u_t(x | y) (marginal velocity, eq. 18)"),
    "velocity_uncond": ("(T, N, d)", "u_t(x | null)"),
    "x0_cond": ("(T, N, d)", "E[z | x_t = x, y] (data prediction)"),
    "x0_uncond": ("(T, N, d)", "E[z | x_t = x]"),
    "eps_cond": ("(T, N, d)", "E[eps | x_t = x, y] (noise prediction)"),
    "eps_uncond": ("(T, N, d)", "E[eps | x_t = x]"),
    "class_log_probs": ("(T, N, C)", "log p_t(c | x) for every class c (Bayes' rule, eq. 60)"),
    "classifier_score": ("(T, N, d)", "grad_x log p_t(y | x) (eq. 61)"),
    "cfg_velocity": ("(W, T, N, d)", "w u_t(x|y) + (1 - w) u_t(x|null) (eq. 65)"),
    "cfg_score": ("(W, T, N, d)", "w score(x|y) + (1 - w) score(x)"),
    "classifier_guided_velocity": (
        "(W, T, N, d)",
        "u_t(x) + w a_t grad log p_t(y|x) (eq. 62); equal to cfg_velocity for exact fields",
    ),
}

CONVENTIONS = {
    "time": "t in [0, 1]; t = 0 is noise N(0, I), t = 1 is data; x_t = alpha_t z + beta_t eps",
    "guidance": "CFG u~ = w u(x|y) + (1 - w) u(x|null) (notes eq. 65); Ho-Salimans omega = w - 1; "
    "diffusers guidance_scale = w",
    "null_label": "the *_uncond arrays are the unconditional (null-label) quantities; refcfg's "
    "NULL label is -1",
    "undefined": "NaN in the NPZ, null in the JSON 'data'; infinities are the strings \"inf\" / "
    '"-inf" in the JSON (dbeta at t = 1 for sqrt, linear-vp, vp)',
    "covariances": "full (K, d, d) per class",
    "dtype": "float64 (labels int64)",
}


def _mixture_spec(mix) -> dict:
    return {
        "d": int(mix.d),
        "n_classes": int(mix.n_classes),
        "class_probs": mix.class_probs.tolist(),
        "classes": [
            {"weights": g.weights.tolist(), "means": g.means.tolist(), "covs": g.covs.tolist()}
            for g in mix.classes
        ],
    }


def _mixture_from_spec(spec):
    from .mixture import GMM, LabeledGMM

    return LabeledGMM(
        [GMM(c["weights"], c["means"], c["covs"]) for c in spec["classes"]], spec["class_probs"]
    )


def _draw_points(mix, n, seed):
    """(z (n, d), eps (n, d), y (n,)): y cycles over the classes; z ~ p(z | y) drawn from the class's
    weights, means and covariances (Cholesky factor) with default_rng(seed), eps ~ N(0, I)."""
    rng = np.random.default_rng(seed)
    C, d = mix.n_classes, mix.d
    y = np.resize(np.arange(C), n).astype(np.int64)
    z = np.empty((n, d))
    for i in range(n):
        g = mix.classes[int(y[i])]
        k = int(rng.choice(g.K, p=g.weights))
        L = np.linalg.cholesky(g.covs[k])
        z[i] = g.means[k] + L @ rng.standard_normal(d)
    eps = rng.standard_normal((n, d))
    return z, eps, y


def _nan_on_error(f, shape):
    try:
        with np.errstate(all="ignore"):
            return np.asarray(f(), dtype=np.float64)
    except ValueError:
        return np.full(shape, np.nan)


def make_case(
    problem="two-class-2d",
    schedule="linear",
    params=None,
    *,
    name=None,
    times=DEFAULT_TIMES,
    w=DEFAULT_W,
    n: int = 12,
    seed: int = 0,
    mixture=None,
) -> dict:
    """One case: ``{"meta": {...}, "arrays": {name: ndarray}}`` (see :data:`ARRAYS`).

    problem: a problem name (or pass ``mixture``, a LabeledGMM, with a problem label); schedule and
    params name a refcfg schedule. Every quantity is evaluated at one scalar time at a time."""
    from . import problems
    from .paths import GMMPath
    from .schedules import schedule as make_schedule

    params = dict(params or {})
    mix = problems.problem(problem) if mixture is None else mixture
    sched = make_schedule(schedule, **params)
    path = GMMPath(mix, sched)
    ts = np.asarray(times, dtype=np.float64)
    ws = np.asarray(w, dtype=np.float64)
    T, W, d, C = ts.size, ws.size, mix.d, mix.n_classes
    z, eps, y = _draw_points(mix, n, seed)
    A = {
        k: np.full((T,), np.nan)
        for k in ("alpha", "beta", "dalpha", "dbeta", "beta_dbeta", "a", "b")
    }
    A["times"], A["y"], A["w"] = ts.copy(), y, ws.copy()
    A["x"] = np.empty((T, n, d))
    for k in ("log_prob_cond", "log_prob_uncond"):
        A[k] = np.empty((T, n))
    for k in ("score", "velocity", "x0", "eps"):
        A[k + "_cond"] = np.empty((T, n, d))
        A[k + "_uncond"] = np.empty((T, n, d))
    A["class_log_probs"] = np.empty((T, n, C))
    A["classifier_score"] = np.empty((T, n, d))
    for k in ("cfg_velocity", "cfg_score", "classifier_guided_velocity"):
        A[k] = np.empty((W, T, n, d))
    for i, t in enumerate(ts):
        t = float(t)
        v = sched.values(t)
        for k in ("alpha", "beta", "dalpha", "dbeta", "beta_dbeta"):
            A[k][i] = getattr(v, k)
        A["a"][i] = _nan_on_error(lambda: sched.a(t), ())
        A["b"][i] = _nan_on_error(lambda: sched.b(t), ())
        x = v.alpha * z + v.beta * eps
        A["x"][i] = x
        A["log_prob_cond"][i] = _nan_on_error(lambda: path.log_prob(x, t, y), (n,))
        A["log_prob_uncond"][i] = _nan_on_error(lambda: path.log_prob(x, t), (n,))
        for k in ("score", "velocity", "x0", "eps"):
            A[k + "_cond"][i] = _nan_on_error(lambda: getattr(path, k)(x, t, y), (n, d))
            A[k + "_uncond"][i] = _nan_on_error(lambda: getattr(path, k)(x, t), (n, d))
        A["class_log_probs"][i] = _nan_on_error(lambda: path.class_log_probs(x, t), (n, C))
        A["classifier_score"][i] = _nan_on_error(lambda: path.classifier_score(x, t, y), (n, d))
        for j, wj in enumerate(ws):
            wj = float(wj)
            A["cfg_velocity"][j, i] = _nan_on_error(lambda: path.cfg_velocity(x, t, y, wj), (n, d))
            A["cfg_score"][j, i] = _nan_on_error(lambda: path.cfg_score(x, t, y, wj), (n, d))
            A["classifier_guided_velocity"][j, i] = _nan_on_error(
                lambda: path.classifier_guided_velocity(x, t, y, wj), (n, d)
            )
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": name or f"{problem}_{sched.name}",
        "problem": dict(name=str(problem), **_mixture_spec(mix)),
        "schedule": {"name": sched.name, "params": dict(sched.params)},
        "seed": int(seed),
        "n": int(n),
        "T": int(T),
        "W": int(W),
        "d": int(d),
        "C": int(C),
        "conventions": CONVENTIONS,
        "arrays": {
            k: {
                "shape": list(A[k].shape),
                "symbolic_shape": ARRAYS[k][0],
                "dtype": str(A[k].dtype),
                "description": ARRAYS[k][1],
            }
            for k in ARRAYS
        },
        "points": "z ~ p(z|y) via numpy default_rng(seed): per point rng.choice(K, p=weights) then "
        "mean + cholesky(cov) @ rng.standard_normal(d); then eps = "
        "rng.standard_normal((n, d)); y cycles 0..C-1",
    }
    return {"meta": meta, "arrays": A}


def _to_json_data(a: np.ndarray):
    if a.dtype.kind in "iu":
        return a.tolist()
    out = a.astype(object)
    out[np.isnan(a)] = None
    out[np.isposinf(a)] = "inf"
    out[np.isneginf(a)] = "-inf"
    return out.tolist()


def _write_case(case, out: Path):
    meta, A = case["meta"], case["arrays"]
    name = meta["name"]
    np.savez_compressed(out / f"{name}.npz", **A)
    doc = dict(meta)
    doc["data"] = {k: _to_json_data(A[k]) for k in ARRAYS}
    with open(out / f"{name}.json", "w") as fh:
        json.dump(doc, fh, indent=None, separators=(",", ":"), allow_nan=False)
        fh.write("\n")


def write_vectors(out_dir, cases=DEFAULT_CASES, **kwargs) -> list[Path]:
    """Write each case (dicts like :data:`DEFAULT_CASES`) as NPZ + JSON under out_dir, plus
    ``index.json``. Keywords go to :func:`make_case`. Returns the written paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a directory, got the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    written, names = [], []
    for spec in cases:
        case = make_case(
            spec["problem"], spec["schedule"], spec.get("params"), name=spec.get("name"), **kwargs
        )
        _write_case(case, out)
        name = case["meta"]["name"]
        names.append(name)
        written += [out / f"{name}.npz", out / f"{name}.json"]
    index = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "cases": names,
        "specs": [dict(c) for c in cases],
        "schema": "docs/vectors-schema.md",
        "make_case_kwargs": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()
        },
    }
    with open(out / "index.json", "w") as fh:
        json.dump(index, fh, indent=1)
        fh.write("\n")
    written.append(out / "index.json")
    return written


def read_case(path) -> dict:
    """Read one case from ``<case>.npz`` or ``<case>.json`` (either path; the other file of the pair
    is not needed): ``{"meta": {...}, "arrays": {...}}``. Raises ValueError for another format or a
    newer schema version."""
    p = Path(path)
    if p.suffix not in (".npz", ".json"):
        raise ValueError(f"path must name a .npz or .json case file, got {str(p)!r}")
    jpath = p.with_suffix(".json")
    if not jpath.exists():
        raise ValueError(f"{str(jpath)!r} does not exist (every case has a JSON file)")
    with open(jpath) as fh:
        doc = json.load(fh)
    if doc.get("format") != FORMAT:
        raise ValueError(f"{str(jpath)!r} is not a {FORMAT} file (format {doc.get('format')!r})")
    if doc.get("schema_version", 0) > SCHEMA_VERSION:
        raise ValueError(
            f"{str(jpath)!r} has schema version {doc['schema_version']}, newer than "
            f"this refcfg's {SCHEMA_VERSION}"
        )
    data = doc.pop("data")
    if p.suffix == ".npz":
        from ._npzfile import NpzFile

        with NpzFile(p, "vectors file") as z:  # headers and sizes checked before the data
            arrays = {k: z.array(k, kinds="fiu") for k in z.names}
    else:
        arrays = {}
        for k, v in data.items():
            dt = doc["arrays"][k]["dtype"]
            if dt.startswith("int"):
                arrays[k] = np.asarray(v, dtype=np.int64)
            else:
                a = np.asarray(v, dtype=object).reshape(doc["arrays"][k]["shape"])
                a[a == None] = np.nan  # noqa: E711 (elementwise comparison on an object array)
                arrays[k] = a.astype(np.float64)  # "inf" / "-inf" strings convert to +-inf
    return {"meta": doc, "arrays": arrays}


def read_vectors(directory, fmt: str = "npz") -> dict:
    """All cases listed in ``directory/index.json``: {case name: case}; fmt "npz" or "json"."""
    d = Path(directory)
    if fmt not in ("npz", "json"):
        raise ValueError(f"fmt must be 'npz' or 'json', got {fmt!r}")
    try:
        with open(d / "index.json") as fh:
            index = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{str(d)!r} has no index.json (not a vectors directory)") from None
    return {name: read_case(d / f"{name}.{fmt}") for name in index["cases"]}


def compare_cases(got: dict, ref: dict, rtol: float = 1e-12) -> list[str]:
    """Differences between two cases (empty list: equal within tolerance).

    Every array of ``ref`` must be in ``got`` with the same shape, NaN at the same places, and
    |got - ref| <= rtol (|ref| + s) elementwise, where s is max |ref| over the array's slice at the
    same time (the same index along the T axis), so that near-zero entries are compared on the
    scale of their neighbours."""
    problems = []
    ga, ra = got["arrays"], ref["arrays"]
    for k, r in ra.items():
        if k not in ga:
            problems.append(f"{k}: missing")
            continue
        g = ga[k]
        if g.shape != r.shape:
            problems.append(f"{k}: shape {g.shape} != {r.shape}")
            continue
        if r.dtype.kind in "iu":
            if not np.array_equal(g, r):
                problems.append(f"{k}: integer arrays differ")
            continue
        nan_r, nan_g = np.isnan(r), np.isnan(g)
        if not np.array_equal(nan_r, nan_g):
            problems.append(
                f"{k}: NaN at different places ({int(nan_g.sum())} vs {int(nan_r.sum())})"
            )
            continue
        shape = ARRAYS.get(k, ("",))[0]
        t_axis = 1 if shape.startswith("(W, T") else 0 if shape.startswith("(T") else None
        absr = np.where(nan_r, 0.0, np.abs(r))
        if t_axis is None or r.ndim == 1:
            scale = np.max(absr) if absr.size else 0.0
        else:
            axes = tuple(a for a in range(r.ndim) if a != t_axis)
            scale = np.max(absr, axis=axes, keepdims=True)
        with np.errstate(invalid="ignore"):
            diff = np.where(nan_r, 0.0, np.abs(np.where(nan_g, 0.0, g) - np.where(nan_r, 0.0, r)))
            # infinities (dbeta at t = 1) must match exactly
            inf_mismatch = np.isinf(r) & (g != r)
            diff = np.where(np.isinf(r), 0.0, diff)
        bound = rtol * (np.where(np.isinf(absr), 0.0, absr) + np.where(np.isinf(scale), 0.0, scale))
        bad = (diff > bound) | inf_mismatch
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            problems.append(
                f"{k}: {int(bad.sum())} entries differ beyond rtol {rtol:g}; first at "
                f"{idx}: {g[idx]!r} vs {r[idx]!r}"
            )
    return problems


def compare_vectors(got_dir, ref_dir, rtol: float = 1e-12) -> dict:
    """{case name: list of differences} for every case of ref_dir (missing cases reported)."""
    ref = read_vectors(ref_dir)
    try:
        got = read_vectors(got_dir)
    except ValueError as exc:
        return {"<index>": [str(exc)]}
    out = {}
    for name, r in ref.items():
        out[name] = ["missing case"] if name not in got else compare_cases(got[name], r, rtol)
    return out
