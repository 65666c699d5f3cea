"""Sweep specs: parsing and validation, the cells of a grid, their keys and their seeds.

A spec is a TOML file (or the equivalent dict) with top-level settings, an ``[axes]`` table and an
optional ``[metrics]`` table; every key is documented in docs/sweeps.md and in ``SPEC_KEYS`` below.
``load_spec`` validates everything before any work: an unknown key or a bad value raises ValueError
naming the key, the value and what was required. Problems, schedules and guidance rules are checked
by building them (so a bad rule parameter is caught here, not on a worker).

Cells. The grid is the product of the axes problem x schedule x rule x w x sampler x steps x n x seed
(in that order, which is also the row order of the result table). A cell's key is the canonical JSON
of its axis values; its id is a hash of the key and of the spec's settings (everything but the axes),
so cells computed under other settings are never reused.

Seeds. Every random stream of a cell comes from ``np.random.SeedSequence`` seeded with the spec's base
seed and a hash of the cell's *noise key* (problem, schedule, n, seed index): the table does not depend
on the number of workers or on the order in which cells finish. Cells that differ only in rule, w,
sampler or steps share their initial noise and reference samples (common random numbers, as in
``refcfg compare-guidance``), so differences between rules are not swamped by sampling noise.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from .._validation import read_toml_file
from . import reference

__all__ = [
    "Spec",
    "Cell",
    "Rule",
    "load_spec",
    "METRICS",
    "METRIC_COLUMNS",
    "TIMING_COLUMNS",
    "AXES",
    "SPEC_KEYS",
]

AXES = ("problem", "schedule", "rule", "w", "sampler", "steps", "n", "seed")
"""The axes of a sweep in table order ("seed" comes from the top-level ``seeds`` key)."""

METRIC_COLUMNS = {
    "ed_cond": ("ed_cond",),
    "ed_tilted": ("ed_tilted", "tilted_ess"),
    "ed_cfg": ("ed_cfg",),
    "confidence": ("confidence", "accuracy"),
    "loglik": ("loglik", "loglik_se"),
    "flow_loglik": ("flow_loglik",),
    "tv": ("tv_tilted", "tv_cond", "tv_floor"),
    "time": ("sample_s", "metrics_s"),
}
"""Metric name -> the table columns it fills (docs/sweeps.md describes each)."""

METRICS = tuple(METRIC_COLUMNS)
DEFAULT_METRICS = ("ed_cond", "ed_tilted", "confidence", "loglik", "time")
TIMING_COLUMNS = ("sample_s", "metrics_s")
"""Wall-clock columns: the only ones that differ between two runs of the same spec."""

TOP_KEYS = (
    "name",
    "description",
    "seed",
    "seeds",
    "y",
    "backend",
    "sigma",
    "reference",
    "axes",
    "metrics",
)
AXIS_KEYS = ("problem", "schedule", "rule", "w", "sampler", "steps", "n")
METRIC_KEYS = ("names", "n_ref", "ed_max_n", "lik_n", "tv_bins", "tv_range")
SPEC_KEYS = {"": TOP_KEYS, "axes": AXIS_KEYS, "metrics": METRIC_KEYS}
"""Allowed keys per table ("" is the top level)."""

_BACKENDS = ("auto", "numpy", "cpu")


def _fail(key: str, value, required: str):
    raise ValueError(f"spec: {key} = {value!r}: required {required}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _check_keys(table: dict, allowed, where: str):
    if not isinstance(table, dict):
        _fail(where or "spec", table, "a table")
    for k in table:
        if k not in allowed:
            name = f"{where}.{k}" if where else k
            raise ValueError(
                f"spec: unknown key {name!r}; allowed{' in [' + where + ']' if where else ''}: "
                f"{', '.join(allowed)}"
            )


def _list(axes: dict, key: str, default=None) -> list:
    v = axes.get(key, default)
    if v is None:
        raise ValueError(f"spec: axes.{key} is missing: required a non-empty list")
    if not isinstance(v, (list, tuple)):
        v = [v]
    if len(v) == 0:
        _fail(f"axes.{key}", v, "a non-empty list")
    if len(set(map(repr, v))) != len(v):
        _fail(f"axes.{key}", v, "distinct values")
    return list(v)


def _positive_int(key: str, v, minimum: int = 1) -> int:
    if not _is_int(v) or v < minimum:
        _fail(key, v, f"an integer >= {minimum}")
    return int(v)


@dataclass(frozen=True)
class Rule:
    """A guidance rule of ``refcfg.guidance.RULES`` with its keyword parameters."""

    name: str
    params: tuple = ()  # sorted ((key, value), ...)

    @property
    def label(self) -> str:
        """The canonical label: ``name`` or ``name(k=v,...)`` (the table's ``rule`` column)."""
        if not self.params:
            return self.name
        return f"{self.name}({','.join(f'{k}={v!r}' for k, v in self.params)})"

    def kwargs(self) -> dict:
        """The parameters as keyword arguments of ``refcfg.guidance.make``."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params}


def _freeze(v):
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


def _rule(i: int, entry) -> Rule:
    from ..guidance import RULES

    key = f"axes.rule[{i}]"
    if isinstance(entry, str):
        name, params = entry, {}
    elif isinstance(entry, dict):
        params = dict(entry)
        name = params.pop("name", None)
        if not isinstance(name, str):
            _fail(f"{key}.name", name, f"one of {', '.join(RULES)}")
    else:
        _fail(key, entry, "a rule name or an inline table {name = ..., param = value, ...}")
    if name not in RULES:
        _fail(key if isinstance(entry, str) else f"{key}.name", name, f"one of {', '.join(RULES)}")
    return Rule(name, tuple(sorted((k, _freeze(v)) for k, v in params.items())))


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep: its axis values and the spec's settings (all it needs to run)."""

    index: int  # position in the spec's cell order (the table's row order)
    problem: str
    schedule: str
    rule: Rule
    w: float
    sampler: str
    steps: int
    n: int
    seed: int  # replicate index (the table's ``seed`` column)
    settings: Settings
    problem_file: str = ""  # where the problem is loaded from: its name, or the .toml's
    # absolute path (the key keeps the path as the spec gives it)

    @property
    def key(self) -> str:
        """Canonical JSON of the axis values (floats by repr, so exact)."""
        return json.dumps(
            [
                ["problem", self.problem],
                ["schedule", self.schedule],
                ["rule", self.rule.label],
                ["w", float(self.w)],
                ["sampler", self.sampler],
                ["steps", self.steps],
                ["n", self.n],
                ["seed", self.seed],
            ]
        )

    @property
    def id(self) -> str:
        """Hash of the key and the settings: the name of the cell's result file."""
        return hashlib.sha256((self.key + "|" + self.settings.fingerprint).encode()).hexdigest()[
            :24
        ]

    def seed_sequence(self) -> np.random.SeedSequence:
        """The root of every random stream of the cell: the base seed and a hash of the noise key
        (problem, schedule, n, seed index), independent of workers and completion order."""
        noise_key = json.dumps([self.problem, self.schedule, self.n, self.seed])
        h = hashlib.sha256(noise_key.encode()).digest()
        words = [int.from_bytes(h[i : i + 4], "little") for i in range(0, 16, 4)]
        return np.random.SeedSequence([self.settings.base_seed, *words])

    def axis_values(self) -> dict:
        """{axis: value} in table order (the rule as its label)."""
        return {
            "problem": self.problem,
            "schedule": self.schedule,
            "rule": self.rule.label,
            "w": float(self.w),
            "sampler": self.sampler,
            "steps": self.steps,
            "n": self.n,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Settings:
    """Everything but the axes: the same for every cell of a spec."""

    base_seed: int
    y: int
    backend: str
    sigma: object  # "ddpm" or a float (Euler-Maruyama diffusion)
    metrics: tuple
    n_ref: int | None
    ed_max_n: int
    lik_n: int
    tv_bins: int
    tv_range: tuple | None
    reference: str | None = None  # the law scored against as the spec gives it (or None) ...
    reference_file: str | None = None  # ... and where it is loaded from (not in the fingerprint)

    @property
    def fingerprint(self) -> str:
        extra = [] if self.reference is None else [["reference", self.reference]]
        return json.dumps(
            [
                self.base_seed,
                self.y,
                self.backend,
                self.sigma,
                list(self.metrics),
                self.n_ref,
                self.ed_max_n,
                self.lik_n,
                self.tv_bins,
                None if self.tv_range is None else list(self.tv_range),
                *extra,
            ]
        )

    def columns(self) -> tuple:
        """The metric columns of the table, in order."""
        return tuple(c for m in METRICS if m in self.metrics for c in METRIC_COLUMNS[m])


@dataclass(frozen=True)
class Spec:
    """A validated sweep spec (build it with :func:`load_spec`)."""

    name: str
    description: str
    axes: dict  # axis -> tuple of values (rule: Rule objects)
    seeds: tuple
    settings: Settings
    source: dict = field(compare=False, repr=False)  # the spec as given (TOML dict)
    problem_files: dict = field(default_factory=dict, compare=False, repr=False)

    def cells(self) -> list[Cell]:
        """Every cell, in table order."""
        a = self.axes
        grid = product(
            a["problem"],
            a["schedule"],
            a["rule"],
            a["w"],
            a["sampler"],
            a["steps"],
            a["n"],
            self.seeds,
        )
        return [
            Cell(
                i,
                *vals,
                settings=self.settings,
                problem_file=self.problem_files.get(vals[0], vals[0]),
            )
            for i, vals in enumerate(grid)
        ]

    @property
    def n_cells(self) -> int:
        return math.prod(len(v) for v in self.axes.values()) * len(self.seeds)

    def canonical(self) -> dict:
        """The normalised spec as a JSON-able dict (written beside the results)."""
        s = self.settings
        return {
            "name": self.name,
            "description": self.description,
            "seed": s.base_seed,
            "seeds": list(self.seeds),
            "y": s.y,
            "backend": s.backend,
            "sigma": s.sigma,
            **({} if s.reference is None else {"reference": s.reference}),
            "axes": {
                k: ([r.label for r in v] if k == "rule" else list(v)) for k, v in self.axes.items()
            },
            "metrics": {
                "names": list(s.metrics),
                "n_ref": s.n_ref,
                "ed_max_n": s.ed_max_n,
                "lik_n": s.lik_n,
                "tv_bins": s.tv_bins,
                "tv_range": None if s.tv_range is None else list(s.tv_range),
            },
        }


def load_spec(spec, *, base=None) -> Spec:
    """A validated :class:`Spec` from a TOML file's path, the same content as a dict, or a Spec.

    Relative ``.toml`` problem paths are read from ``base`` (default: the spec file's directory,
    or the current directory for a dict). Raises ValueError naming the key, the value and what was
    required at the first problem found (unknown keys included), before any sampling."""
    if isinstance(spec, Spec):
        return spec
    base_dir = Path(".")
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        doc = read_toml_file(path, "spec file")
        base_dir = path.parent
    elif isinstance(spec, dict):
        doc = spec
    else:
        raise TypeError(
            f"spec must be a path to a TOML file, a dict or a Spec, got {type(spec).__name__}"
        )
    return _validate(doc, Path(base) if base is not None else base_dir)


CELL_BYTES = 4096
"""Bookkeeping bytes per cell held by the runner (the Cell, its row, its key and its table entry)."""


def cell_bytes(n: int, n_ref: int, K: int, d: int, ed_max_n: int) -> float:
    """Upper estimate of one cell's peak memory: the samples and the references (the tilted law's
    SIR pool included), three field evaluations' temporaries at once, and the energy distance's
    row blocks of 1024 points."""
    from ..problems import field_bytes

    m = max(n, n_ref)
    return (
        8.0 * (n + 4 * n_ref) * d * 8 + 3 * field_bytes(m, K, d) + 8.0 * 1024 * min(m, ed_max_n) * 2
    )


def _require_sweep_memory(n_cells: int, paths: dict, ns, n_ref, ed_max_n: int) -> None:
    """ValueError naming the keys when the grid's bookkeeping or one cell cannot fit in the memory
    budget (checked before any cell object is built)."""
    from .._limits import require_memory

    try:
        require_memory(
            float(n_cells) * CELL_BYTES,
            f"a sweep of {n_cells} cells",
            "the number of values of the axes or seeds",
        )
        worst = max(
            (
                (
                    cell_bytes(
                        n,
                        n_ref if n_ref is not None else n,
                        p.mixture.marginal.K,
                        p.mixture.d,
                        ed_max_n,
                    ),
                    n,
                    name,
                )
                for name, p in paths.items()
                for n in ns
            ),
            default=None,
        )
        if worst is not None:
            require_memory(
                worst[0],
                f"one cell (problem {worst[2]!r}, n = {worst[1]}"
                + (f", metrics.n_ref = {n_ref}" if n_ref is not None else "")
                + ")",
                "axes.n or metrics.n_ref",
            )
    except ValueError as exc:
        raise ValueError(f"spec: {exc}") from None


def _validate(doc: dict, base: Path) -> Spec:
    """The steps of :func:`load_spec`, in the order its errors are reported: the top-level
    settings, the axes, the metrics, what the metrics and the samplers need from the problems and
    the rules, and the memory budget."""
    _check_keys(doc, TOP_KEYS, "")
    top = _top_level(doc)
    ref_file, ref_path = reference.load_reference(doc, base)
    if "axes" not in doc:
        raise ValueError("spec: table [axes] is missing: required at least axes.problem and axes.w")
    axes = doc["axes"]
    _check_keys(axes, AXIS_KEYS, "axes")
    paths, files = _problems(axes, base, top["y"], ref_path)
    ax = {
        "problem": tuple(paths),
        "schedule": tuple(_schedules(axes)),
        "rule": tuple(_rules(axes)),
        "w": tuple(_weights(axes)),
        "sampler": tuple(_samplers(axes)),
        "steps": tuple(
            _positive_int(f"axes.steps[{i}]", s) for i, s in enumerate(_list(axes, "steps", [100]))
        ),
        "n": tuple(_positive_int(f"axes.n[{i}]", s, 2) for i, s in enumerate(_list(axes, "n"))),
    }
    mt = _metrics(doc)
    _check_metric_needs(paths, ax["w"], mt["names"])
    _check_rules(
        paths,
        ax["schedule"],
        ax["rule"],
        ax["w"],
        ax["sampler"],
        ax["steps"],
        top["y"],
        mt["names"],
    )
    reference.check_learned(
        list(ax["problem"]), files, ax["schedule"], ax["rule"], mt["names"], top["backend"]
    )
    seeds = top["seeds"]
    n_cells = math.prod(len(v) for v in ax.values()) * len(seeds)
    _require_sweep_memory(n_cells, paths, ax["n"], mt["n_ref"], mt["ed_max_n"])
    settings = Settings(
        top["base_seed"],
        top["y"],
        top["backend"],
        top["sigma"],
        tuple(m for m in METRICS if m in mt["names"]),
        mt["n_ref"],
        mt["ed_max_n"],
        mt["lik_n"],
        mt["tv_bins"],
        mt["tv_range"],
        doc.get("reference"),
        ref_file,
    )
    return Spec(
        top["name"],
        top["description"],
        ax,
        tuple(seeds),
        settings,
        source=doc,
        problem_files=files,
    )


def _seeds(seeds):
    """The replicate indices: range(count) for a count (lazy: its size is checked with the grid's,
    before use) or the given distinct integers >= 0."""
    required = "an integer >= 1 (a count) or a list of distinct integers >= 0"
    if _is_int(seeds):
        if seeds < 1:
            _fail("seeds", seeds, required)
        return range(int(seeds))
    if (
        isinstance(seeds, list)
        and seeds
        and all(_is_int(s) and s >= 0 for s in seeds)
        and len(set(seeds)) == len(seeds)
    ):
        return tuple(int(s) for s in seeds)
    _fail("seeds", seeds, required)


def _top_level(doc: dict) -> dict:
    """The top-level settings: name, description, base seed, seeds, y, backend, sigma."""
    name = doc.get("name", "sweep")
    if not isinstance(name, str):
        _fail("name", name, "a string")
    desc = doc.get("description", "")
    if not isinstance(desc, str):
        _fail("description", desc, "a string")
    base_seed = doc.get("seed", 0)
    if not _is_int(base_seed) or base_seed < 0:
        _fail("seed", base_seed, "an integer >= 0")
    seeds = _seeds(doc.get("seeds", 1))
    y = doc.get("y", 0)
    if not _is_int(y) or y < 0:
        _fail("y", y, "a class index (integer >= 0)")
    backend = doc.get("backend", "auto")
    if backend not in _BACKENDS:
        _fail("backend", backend, f"one of {', '.join(_BACKENDS)}")
    sigma = doc.get("sigma", "ddpm")
    if not (sigma == "ddpm" or (_is_real(sigma) and math.isfinite(sigma) and sigma >= 0)):
        _fail("sigma", sigma, "'ddpm' or a float >= 0 (Euler-Maruyama diffusion)")
    return {
        "name": name,
        "description": desc,
        "base_seed": int(base_seed),
        "seeds": seeds,
        "y": int(y),
        "backend": backend,
        "sigma": sigma if sigma == "ddpm" else float(sigma),
    }


def _problems(axes: dict, base: Path, y: int, ref_path):
    """({name: GMMPath}, {name: where it is loaded from}) of axes.problem, each built (so a bad
    problem file is reported here) and holding class y; a learned CFG model (.npz) or a problem
    checked against the reference law ``ref_path`` when the spec names one."""
    from ..problems import PROBLEMS, resolve

    paths, files = {}, {}
    for i, p in enumerate(_list(axes, "problem")):
        if not isinstance(p, str):
            _fail(
                f"axes.problem[{i}]", p, f"a problem name ({', '.join(PROBLEMS)}) or a .toml path"
            )
        if reference.is_model_file(p):
            files[p], paths[p] = reference.learned_entry(i, p, base, ref_path, y)
            continue
        if p not in PROBLEMS and not p.endswith(".toml"):
            _fail(
                f"axes.problem[{i}]", p, f"one of {', '.join(PROBLEMS)} or a path to a .toml file"
            )
        files[p] = str((base / p).resolve()) if p.endswith(".toml") else p
        try:
            paths[p] = resolve(files[p]).path
        except (TypeError, ValueError) as exc:
            _fail(f"axes.problem[{i}]", p, f"a loadable problem ({exc})")
        reference.check_against(i, p, paths[p], ref_path, y)
        n_classes = paths[p].mixture.n_classes
        if y >= n_classes:
            _fail("y", y, f"a class of problem {p!r} (0..{n_classes - 1})")
    return paths, files


def _schedules(axes: dict) -> list:
    """axes.schedule, each resolved once (default ["linear"])."""
    from ..problems import resolve_schedule

    schedules = _list(axes, "schedule", ["linear"])
    for i, s in enumerate(schedules):
        if not isinstance(s, str):
            _fail(f"axes.schedule[{i}]", s, "a schedule name or 'name:key=value,...'")
        try:
            resolve_schedule(s)
        except (TypeError, ValueError) as exc:
            _fail(f"axes.schedule[{i}]", s, f"a valid schedule ({exc})")
    return schedules


def _rules(axes: dict) -> list:
    """axes.rule as distinct :class:`Rule` objects (default ["cfg"])."""
    rules = [_rule(i, r) for i, r in enumerate(_list(axes, "rule", ["cfg"]))]
    if len({r.label for r in rules}) != len(rules):
        _fail("axes.rule", [r.label for r in rules], "distinct rules")
    return rules


def _weights(axes: dict) -> list:
    """axes.w as distinct finite floats."""
    ws = _list(axes, "w")
    for i, w in enumerate(ws):
        if not _is_real(w) or not math.isfinite(w):
            _fail(f"axes.w[{i}]", w, "a finite real number")
    ws = [float(w) for w in ws]
    if len(set(ws)) != len(ws):
        _fail("axes.w", ws, "distinct values")
    return ws


def _samplers(axes: dict) -> list:
    """axes.sampler: names of ``refcfg.sampling.SAMPLERS`` (default ["heun"])."""
    from ..sampling.api import SAMPLERS

    samplers = _list(axes, "sampler", ["heun"])
    for i, s in enumerate(samplers):
        if s not in SAMPLERS:
            _fail(f"axes.sampler[{i}]", s, f"one of {', '.join(SAMPLERS)}")
    return samplers


def _metrics(doc: dict) -> dict:
    """The [metrics] table: names and the metrics' sizes, with their defaults."""
    mt = doc.get("metrics", {})
    _check_keys(mt, METRIC_KEYS, "metrics")
    names = mt.get("names", list(DEFAULT_METRICS))
    if not isinstance(names, list) or not names:
        _fail("metrics.names", names, f"a non-empty list of {', '.join(METRICS)}")
    for i, m in enumerate(names):
        if m not in METRICS:
            _fail(f"metrics.names[{i}]", m, f"one of {', '.join(METRICS)}")
    if len(set(names)) != len(names):
        _fail("metrics.names", names, "distinct metric names")
    n_ref = mt.get("n_ref")
    if n_ref is not None:
        n_ref = _positive_int("metrics.n_ref", n_ref, 2)
    tv_range = mt.get("tv_range")
    if tv_range is not None:
        if not (
            isinstance(tv_range, list)
            and len(tv_range) == 2
            and all(map(_is_real, tv_range))
            and all(map(math.isfinite, tv_range))
            and tv_range[0] < tv_range[1]
        ):
            _fail("metrics.tv_range", tv_range, "[lo, hi] with finite lo < hi")
        tv_range = (float(tv_range[0]), float(tv_range[1]))
    return {
        "names": names,
        "n_ref": n_ref,
        "ed_max_n": _positive_int("metrics.ed_max_n", mt.get("ed_max_n", 5000), 2),
        "lik_n": _positive_int("metrics.lik_n", mt.get("lik_n", 1000)),
        "tv_bins": _positive_int("metrics.tv_bins", mt.get("tv_bins", 480)),
        "tv_range": tv_range,
    }


def _check_metric_needs(paths: dict, ws, names) -> None:
    """What the metrics need from the problems and the weights: 'tv' 1-D problems, 'ed_tilted'
    and 'tv' w >= 0 (the tilted law is sampled for w >= 0 only)."""
    if "tv" in names:
        for p, path in paths.items():
            if path.mixture.d != 1:
                _fail(
                    "metrics.names",
                    names,
                    f"no 'tv' with problem {p!r} of dimension "
                    f"{path.mixture.d} (total variation on a grid is computed in 1-D only)",
                )
    if "ed_tilted" in names or "tv" in names:
        for i, w in enumerate(ws):
            if w < 0:
                _fail(
                    f"axes.w[{i}]",
                    w,
                    "w >= 0 with metrics 'ed_tilted' or 'tv' (the tilted law "
                    "is sampled for w >= 0 only)",
                )


def _check_rules(paths, schedules, rules, ws, samplers, steps, y, metrics):
    """Build every rule once per problem, schedule and w (cheap: no sampling) so that bad
    parameters and unsupported combinations are reported before any work."""
    from ..guidance import make
    from ..paths import GMMPath
    from ..problems import resolve_schedule
    from ..sampling.api import time_grid
    from ..sampling.steppers import SDE_SAMPLERS

    grid = time_grid(min(steps))
    for i, rule in enumerate(rules):
        key = f"axes.rule[{i}]"
        for (p, path), s in product(paths.items(), schedules):
            gp = GMMPath(path.mixture, resolve_schedule(s))
            for w in ws:
                try:
                    f = make(rule.name, gp, y, w, t_grid=grid, **rule.kwargs())
                except (TypeError, ValueError) as exc:
                    _fail(
                        key,
                        rule.label,
                        f"a rule that builds on problem {p!r}, schedule {s!r}, "
                        f"w = {w!r} ({str(exc).splitlines()[0]})",
                    )
            sde = [s for s in samplers if s in SDE_SAMPLERS]
            if sde and not callable(getattr(f, "score", None)):
                _fail(
                    key,
                    rule.label,
                    f"a rule whose field has a score (sampler {sde[0]!r} is in axes.sampler)",
                )
            if "flow_loglik" in metrics and not callable(getattr(f, "divergence", None)):
                _fail(
                    key,
                    rule.label,
                    "a rule whose field has a divergence (metric 'flow_loglik' "
                    "is in metrics.names)",
                )
