"""The law a sweep scores against when it is not the law it samples (the spec's ``reference`` key).

By default a cell samples a guidance rule on the exact fields of its problem and scores the samples
against that problem's class law p(x|y). Two studies need a second law:

- noisy prompt pairs: sample CFG of a *noisy* conditional (a problem file written by
  ``refcfg.noisy_labels``), score against the *clean* class law;
- underfit models: sample CFG of a *learned* model (an ``.npz`` file of ``refcfg.learn``, in
  ``axes.problem``), score against the exact p(x|y) of the problem it was trained on and against the
  exact CFG push-forward of the same w (metric ``ed_cfg``).

``reference = "NAME"`` (a problem name or a ``.toml`` path, relative to the spec) names that law:
ed_cond, confidence/accuracy, loglik, tv_cond, the points of flow_loglik and ed_cfg use its p(x|y)
and its exact fields; ed_tilted and tv_tilted stay the sampled problem's tilted law. Everything here
is checked before any work, in the spec's error style (``spec: KEY = VALUE: required ...``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_reference", "learned_entry", "check_learned", "is_model_file"]

MODEL_SUFFIX = ".npz"


def is_model_file(problem: str) -> bool:
    """Whether an ``axes.problem`` entry names a learned model file (``.npz``)."""
    return isinstance(problem, str) and problem.endswith(MODEL_SUFFIX)


def _fail(key, value, required):
    raise ValueError(f"spec: {key} = {value!r}: required {required}")


def load_reference(doc: dict, base: Path):
    """(file, path) of the spec's ``reference`` (a problem name, or a .toml path resolved against
    ``base``), or (None, None) when the key is absent."""
    from ..problems import PROBLEMS, resolve

    if "reference" not in doc:
        return None, None
    ref = doc["reference"]
    if not isinstance(ref, str) or not (ref in PROBLEMS or ref.endswith(".toml")):
        _fail("reference", ref, f"a problem name ({', '.join(PROBLEMS)}) or a .toml path")
    file = str((base / ref).resolve()) if ref.endswith(".toml") else ref
    try:
        path = resolve(file).path
    except (TypeError, ValueError) as exc:
        _fail("reference", ref, f"a loadable problem ({exc})")
    return file, path


def check_against(i: int, problem: str, path, ref_path, y: int) -> None:
    """The sampled problem ``axes.problem[i]`` and the reference live in the same space, and the
    reference has the class y."""
    if ref_path is None:
        return
    if y >= ref_path.mixture.n_classes:
        _fail("y", y, f"a class of the reference (0..{ref_path.mixture.n_classes - 1})")
    d, rd = path.mixture.d, ref_path.mixture.d
    if d != rd:
        _fail(
            f"axes.problem[{i}]", problem, f"a problem of the reference's dimension {rd}, not {d}"
        )


def learned_entry(i: int, problem: str, base: Path, ref_path, y: int):
    """(file, path to validate on) of a learned-model entry ``axes.problem[i]``: the model must load,
    be a CFG model (``refcfg train``), and match the reference's dimension and classes; its rules,
    samplers and schedules are validated on the reference's exact path (``check_learned``)."""
    from ..learn.mlp import MLP

    key = f"axes.problem[{i}]"
    if ref_path is None:
        _fail(key, problem, "a 'reference' problem to score a learned model against")
    check_against(i, problem, ref_path, ref_path, y)
    file = str((base / problem).resolve())
    try:
        model = MLP.load(file)
    except (OSError, TypeError, ValueError) as exc:
        _fail(key, problem, f"a loadable model file ({str(exc).splitlines()[0]})")
    kind = model.meta.get("kind")
    if kind != "cfg":
        _fail(key, problem, f"a CFG model (meta kind 'cfg', from refcfg train), not kind {kind!r}")
    mix = ref_path.mixture
    c = model.config
    if c.d_out != mix.d or c.n_classes != mix.n_classes:
        _fail(
            key,
            problem,
            f"a model of the reference's dimension {mix.d} and {mix.n_classes} classes "
            f"(this one: dimension {c.d_out}, {c.n_classes} classes)",
        )
    trained_on = model.meta.get("problem")
    if isinstance(trained_on, str) and not _same_law(trained_on, mix):
        _fail(
            key,
            problem,
            f"a model trained on the reference law (this one was trained on {trained_on!r}, "
            f"a different mixture)",
        )
    return file, ref_path


def check_learned(problems, files, schedules, rules, names, backend) -> None:
    """Learned-model entries need rule 'cfg' only (the model has no other guidance), a schedule
    axis equal to the schedule the model was trained with, a backend that runs Python fields
    ('auto' or 'numpy'), and no metric that needs the sampled problem's exact law (ed_tilted, tv)
    or the field's divergence (flow_loglik)."""
    from ..learn.mlp import MLP
    from ..learn.train import schedule_of
    from ..problems import resolve_schedule

    models = [(i, p) for i, p in enumerate(problems) if is_model_file(p)]
    if not models:
        return
    i, p = models[0]
    if backend == "cpu":
        _fail(
            "backend",
            backend,
            f"'auto' or 'numpy': axes.problem[{i}] = {p!r} is a learned model (NumPy only)",
        )
    for j, r in enumerate(rules):
        if r.label != "cfg":
            _fail(
                f"axes.rule[{j}]",
                r.label,
                f"'cfg' only: axes.problem[{i}] = {p!r} is a learned model",
            )
    bad = [m for m in ("ed_tilted", "tv", "flow_loglik") if m in names]
    if bad:
        _fail(
            "metrics.names",
            names,
            f"no {', '.join(bad)} with a learned model in axes.problem ({p!r}: it has no exact "
            "tilted law and no divergence)",
        )
    for i, p in models:
        sched = schedule_of(MLP.load(files[p]))
        for j, s in enumerate(schedules):
            got = resolve_schedule(s)
            if (got.name, dict(got.params)) != (sched.name, dict(sched.params)):
                _fail(
                    f"axes.schedule[{j}]",
                    s,
                    f"the schedule the model axes.problem[{i}] = {p!r} was trained with "
                    f"({sched.name!r})",
                )


def _same_law(problem: str, mix) -> bool:
    """Whether the built-in problem ``problem`` (a model's recorded training problem) is the mixture
    ``mix``, parameter for parameter; True for a name that is not built in (a problem file: its
    recorded path need not exist here, so it cannot be checked)."""
    from ..problems import PROBLEMS, resolve

    if problem not in PROBLEMS:
        return True
    m = resolve(problem).path.mixture
    a, b = m.marginal, mix.marginal
    return (
        m.n_classes == mix.n_classes
        and a.means.shape == b.means.shape
        and np.array_equal(a.means, b.means)
        and np.array_equal(a.log_weights, b.log_weights)
        and np.array_equal(a.covs, b.covs)
    )
