"""Exact-vs-learned comparison: what learning gets wrong, measured against the exact fields.

Three levels, each with its sample size and seed stated in the report:

* fields, per t on a grid over [0, 1]: the relative L2 error
  E_{x ~ p_t} |u_theta - u|^2 / E_{x ~ p_t} |u|^2 of the conditional field u(x|y) ((x, y) ~ p_t(x, y)),
  the unconditional field u(x) (x ~ p_t) and the CFG field w u(x|y) + (1 - w) u(x|null) (eq. 65);
* the noisy classifier p_t(y|x): accuracy, agreement with the exact Bayes classifier (eq. 60) and
  KL(p_Bayes(.|x) || p_theta(.|x)) averaged over x ~ p_t;
* samples: the learned and the exact CFG sampler at the same w, same sampler, steps and seed: energy
  distance between the two sample sets (with the energy distance of two independent exact runs as a
  noise floor), class accuracy under the exact Bayes classifier at t = 1, and the mean
  log-likelihood under the exact p(x|y).

BLAS threads: the network evaluations (NumPy matrix products) run under
:class:`refcfg._threads.BlasThreads`, one per level, whose steps are the network work at each grid
point t (fields, classifier) and each velocity or score evaluation of a learned field inside the
sampler (samples). ``blas_threads=None`` chooses between one thread and the default count by timing
those steps; an int fixes it. The choice changes only the rounding of the products, not the draws;
``compare`` records it in ``ComparisonReport.blas``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._threads import BlasThreads, check_blas_threads
from .._validation import NULL, as_generator
from .classifier import NoisyClassifier, log_softmax
from .fields import LearnedClassifierGuidedField, LearnedField, learned_cfg
from .mlp import MLP

__all__ = [
    "field_errors",
    "classifier_errors",
    "sample_comparison",
    "compare",
    "ComparisonReport",
    "T_GRID",
    "check_cfg_model",
]

T_GRID = np.linspace(0.0, 1.0, 21)
_ENERGY_MAX_N = 2000  # points per sample set in the energy distance (sample_comparison)


def check_cfg_model(model, path, *, name: str = "model") -> None:
    """ValueError naming ``name`` unless ``model`` is a CFG velocity MLP of ``path``'s problem: it
    maps d -> d, takes the path's classes plus the null label, and, when it records the schedule it
    was trained with, that schedule is the path's (x_t means the same). TypeError for a non-MLP."""
    from .train import schedule_of

    if not isinstance(model, MLP):
        raise TypeError(f"{name} must be a refcfg.learn.MLP, got {type(model).__name__}")
    c = model.config
    kind = model.meta.get("kind")
    if kind not in (None, "cfg") or c.n_classes == 0:
        raise ValueError(
            f"{name} must be a CFG model (trained with labels and the null label), got "
            f"a {kind or 'label-free'} model"
        )
    if c.d_in != path.d or c.d_out != path.d or c.n_classes != path.n_classes:
        raise ValueError(
            f"{name} must be a CFG model of this problem (d = {path.d}, "
            f"{path.n_classes} classes), got d = {c.d_in} and {c.n_classes} classes"
        )
    try:
        trained = schedule_of(model)
    except ValueError:
        return
    if trained != path.schedule:
        raise ValueError(
            f"{name} was trained with schedule {trained.name!r} but the path uses "
            f"{path.schedule.name!r}: x_t would not mean the same"
        )


def _joint_sample(path, n, t, rng):
    # (x, y) ~ p_t(x, y): (z, y) from the data law, x = alpha_t z + beta_t eps
    z, y = path.mixture.sample(n, seed=rng)
    eps = rng.standard_normal(z.shape)
    v = path.schedule.values(float(t))
    return v.alpha * z + v.beta * eps, np.asarray(y, dtype=np.int64)


def _rel(err_sq, ref_sq):
    return float(err_sq / ref_sq) if ref_sq > 0 else float("nan")


def field_errors(
    path,
    model: MLP | None,
    *,
    unconditional: MLP | None = None,
    ws=(),
    t_grid=None,
    n: int = 4000,
    seed=0,
    blas_threads=None,
) -> dict:
    """Per-t relative L2 errors E|u_theta - u|^2 / E|u|^2 over (x, y) ~ p_t(x, y).

    model: a CFG-trained MLP (conditional, its null-label half as unconditional, and CFG(w) for each
    w in ``ws``); unconditional: a label-free MLP (its own row "unconditional_model").
    Returns {"t": grid, "conditional": (T,), "unconditional": (T,), "cfg": {w: (T,)},
    "unconditional_model": (T,), "n": n, "seed": seed}; absent keys for absent models.
    blas_threads: None (choose by measurement) or an int (module docstring).
    """
    blas_threads = check_blas_threads(blas_threads)
    with BlasThreads(blas_threads) as bt:
        return _field_errors(path, model, unconditional, ws, t_grid, n, seed, bt)


def _field_errors(path, model, unconditional, ws, t_grid, n, seed, bt) -> dict:
    t_grid = np.asarray(T_GRID if t_grid is None else t_grid, dtype=np.float64)
    rng = as_generator(seed)
    out = {"t": t_grid, "n": int(n), "seed": seed}
    rows = {}
    if model is not None:
        rows["conditional"] = []
        rows["unconditional"] = []
        for w in ws:
            rows[("cfg", float(w))] = []
    if unconditional is not None:
        rows["unconditional_model"] = []
    for t in t_grid:
        x, y = _joint_sample(path, n, t, rng)
        u_cond = path.velocity(x, t, y)
        u_unc = path.velocity(x, t)
        with bt.step():  # the network work at this t
            if model is not None:
                both = LearnedField(model, None, path.schedule)._net(
                    np.concatenate([x, x]),
                    float(t),
                    np.concatenate([y, np.full(n, NULL, dtype=np.int64)]),
                )
            if unconditional is not None:
                u2 = LearnedField(unconditional, None, path.schedule).velocity(x, float(t))
        if model is not None:
            c_hat, u_hat = both[:n], both[n:]
            rows["conditional"].append(_rel(np.sum((c_hat - u_cond) ** 2), np.sum(u_cond**2)))
            rows["unconditional"].append(_rel(np.sum((u_hat - u_unc) ** 2), np.sum(u_unc**2)))
            for w in ws:
                g = float(w) * u_cond + (1.0 - float(w)) * u_unc
                g_hat = float(w) * c_hat + (1.0 - float(w)) * u_hat
                rows[("cfg", float(w))].append(_rel(np.sum((g_hat - g) ** 2), np.sum(g**2)))
        if unconditional is not None:
            rows["unconditional_model"].append(_rel(np.sum((u2 - u_unc) ** 2), np.sum(u_unc**2)))
    for key, vals in rows.items():
        if isinstance(key, tuple):
            out.setdefault("cfg", {})[key[1]] = np.array(vals)
        else:
            out[key] = np.array(vals)
    return out


def mean_over(t_grid, errors, lo=0.05, hi=0.95) -> float:
    """Mean of per-t errors over the grid points with lo <= t <= hi."""
    t_grid = np.asarray(t_grid)
    mask = (t_grid >= lo - 1e-12) & (t_grid <= hi + 1e-12)
    return float(np.mean(np.asarray(errors)[mask]))


def classifier_errors(
    path, classifier, *, t_grid=None, n: int = 4000, seed=0, blas_threads=None
) -> dict:
    """Per t: accuracy of the learned classifier on (x, y) ~ p_t(x, y), the Bayes classifier's
    accuracy (the best possible), their agreement (same argmax) and mean KL(p_Bayes || p_theta).
    blas_threads: None (choose by measurement) or an int (module docstring)."""
    blas_threads = check_blas_threads(blas_threads)
    with BlasThreads(blas_threads) as bt:
        return _classifier_errors(path, classifier, t_grid, n, seed, bt)


def _classifier_errors(path, classifier, t_grid, n, seed, bt) -> dict:
    if isinstance(classifier, MLP):
        classifier = NoisyClassifier(classifier)
    t_grid = np.asarray(T_GRID if t_grid is None else t_grid, dtype=np.float64)
    rng = as_generator(seed)
    acc, bayes_acc, agree, kl = [], [], [], []
    for t in t_grid:
        x, y = _joint_sample(path, n, t, rng)
        lb = path.class_log_probs(x, float(t))  # exact log p_t(y|x), eq. 60
        with bt.step():  # the network work at this t
            logits = classifier.logits(x, float(t))
        lq = log_softmax(logits)
        pb = np.exp(lb)
        kl.append(float(np.mean(np.sum(pb * (lb - lq), axis=1))))
        acc.append(float(np.mean(np.argmax(lq, 1) == y)))
        bayes_acc.append(float(np.mean(np.argmax(lb, 1) == y)))
        agree.append(float(np.mean(np.argmax(lq, 1) == np.argmax(lb, 1))))
    return {
        "t": t_grid,
        "accuracy": np.array(acc),
        "bayes_accuracy": np.array(bayes_acc),
        "agreement": np.array(agree),
        "kl": np.array(kl),
        "n": int(n),
        "seed": seed,
    }


def sample_comparison(
    path,
    model: MLP,
    *,
    ws=(1.0, 3.0),
    n: int = 2000,
    sampler: str = "heun",
    steps: int = 50,
    seed=0,
    classifier=None,
    unconditional=None,
    energy_max_n: int = _ENERGY_MAX_N,
    blas_threads=None,
) -> list[dict]:
    """Learned vs exact sampler at the same w, per class y and weight w.

    Each row: y, w, energy distance between learned and exact samples (``energy``) and between two
    independent exact runs (``energy_floor``, seeds seed and seed + 1), Bayes accuracy at t = 1 and
    mean log p(x|y) (with standard error) of both sample sets. With a classifier, rows with
    ``method="classifier"`` use learned classifier guidance on ``unconditional`` (default the CFG
    model's null half) against the exact classifier-guided sampler.
    blas_threads: None (choose by measurement) or an int (module docstring).
    """
    blas_threads = check_blas_threads(blas_threads)
    with BlasThreads(blas_threads) as bt:
        return _sample_comparison(
            path, model, ws, n, sampler, steps, seed, classifier, unconditional, energy_max_n, bt
        )


class _Stepped:
    """A learned field whose every velocity and score evaluation is one step of ``bt`` (it does
    not lower, so the sampler evaluates it with NumPy like the learned field itself)."""

    def __init__(self, field, bt):
        self.field, self.bt = field, bt
        self.d, self.schedule = field.d, field.schedule

    def velocity(self, x, t):
        with self.bt.step():
            return self.field.velocity(x, t)

    def score(self, x, t):
        with self.bt.step():
            return self.field.score(x, t)


def _sample_comparison(
    path, model, ws, n, sampler, steps, seed, classifier, unconditional, energy_max_n, bt
) -> list[dict]:
    from .. import metrics
    from ..sampling import sample

    rows = []
    methods = [("cfg", None)]
    if classifier is not None:
        methods.append(("classifier", classifier))
    for method, clf in methods:
        for y in range(path.n_classes):
            for w in ws:
                if method == "cfg":
                    learned = learned_cfg(model, y, w, path.schedule)
                    exact = path.cfg(y, w)
                else:
                    unc = (
                        unconditional
                        if unconditional is not None
                        else LearnedField(model, None, path.schedule)
                    )
                    learned = LearnedClassifierGuidedField(unc, clf, y, w)
                    exact = path.classifier_guided(y, w)
                xs_l = sample(_Stepped(learned, bt), n, sampler=sampler, steps=steps, seed=seed)
                xs_e = sample(exact, n, sampler=sampler, steps=steps, seed=seed)
                xs_f = sample(exact, n, sampler=sampler, steps=steps, seed=seed + 1)
                row = dict(
                    method=method,
                    y=y,
                    w=float(w),
                    energy=float(metrics.energy_distance(xs_l, xs_e, max_n=energy_max_n)),
                    energy_floor=float(metrics.energy_distance(xs_f, xs_e, max_n=energy_max_n)),
                )
                for tag, xs in (("learned", xs_l), ("exact", xs_e)):
                    row[f"accuracy_{tag}"] = metrics.class_confidence(xs, path.mixture, y).accuracy
                    ll, se = metrics.mean_log_likelihood(xs, path.mixture, y)
                    row[f"loglik_{tag}"], row[f"loglik_se_{tag}"] = ll, se
                rows.append(row)
    return rows


@dataclass
class ComparisonReport:
    """The exact-vs-learned comparison; ``to_dict()`` for machines, ``str()`` for people."""

    fields: dict
    classifier: dict | None = None
    samples: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    #: BLAS thread choice per level ("fields", "classifier", "samples" where run):
    #: ``refcfg._threads.BlasThreads.record`` of each
    blas: dict = field(default_factory=dict)

    @property
    def conditional_error_mean(self) -> float:
        """Conditional-field relative error averaged over grid points t in [0.05, 0.95]."""
        return mean_over(self.fields["t"], self.fields["conditional"])

    def to_dict(self) -> dict:
        def conv(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, dict):
                return {str(k): conv(val) for k, val in v.items()}
            if isinstance(v, list):
                return [conv(val) for val in v]
            if isinstance(v, (np.floating, np.integer)):
                return v.item()
            return v

        d = dict(
            fields=conv(self.fields),
            classifier=conv(self.classifier),
            samples=conv(self.samples),
            settings=conv(self.settings),
            blas=conv(self.blas),
        )
        if "conditional" in self.fields:
            d["conditional_error_mean_05_95"] = self.conditional_error_mean
        return d

    def to_text(self) -> str:
        f = self.fields
        lines = [
            f"Exact vs learned fields: relative L2 error E|u_theta - u|^2 / E|u|^2, "
            f"(x, y) ~ p_t, N = {f['n']} per t, seed = {f['seed']}"
        ]
        cols = [k for k in ("conditional", "unconditional", "unconditional_model") if k in f]
        cfg = f.get("cfg", {})
        head = (
            "     t "
            + "".join(f"{c[:14]:>15}" for c in cols)
            + "".join(f"{'cfg w=' + format(w, 'g'):>15}" for w in cfg)
        )
        lines.append(head)
        for i, t in enumerate(f["t"]):
            vals = [f[c][i] for c in cols] + [cfg[w][i] for w in cfg]
            lines.append(f"{t:6.3f} " + "".join(f"{v:15.3e}" for v in vals))
        if "conditional" in f:
            lines.append(
                f"mean over t in [0.05, 0.95]: conditional {self.conditional_error_mean:.4f}"
                f", unconditional {mean_over(f['t'], f['unconditional']):.4f}"
            )
        c = self.classifier
        if c is not None:
            lines.append("")
            lines.append(
                f"Noisy classifier vs exact Bayes classifier (eq. 60), N = {c['n']} per t, "
                f"seed = {c['seed']}"
            )
            lines.append("     t       accuracy  Bayes accuracy   agreement   KL(Bayes||learned)")
            for i, t in enumerate(c["t"]):
                lines.append(
                    f"{t:6.3f} {c['accuracy'][i]:14.4f} {c['bayes_accuracy'][i]:15.4f} "
                    f"{c['agreement'][i]:11.4f} {c['kl'][i]:20.3e}"
                )
        if self.samples:
            s = self.settings
            lines.append("")
            lines.append(
                f"Samples: learned vs exact sampler, {s.get('sampler')} {s.get('steps')} steps, "
                f"N = {s.get('n_samples')} per (y, w), seed = {s.get('sample_seed')} "
                f"(floor: two exact runs, seeds {s.get('sample_seed')} and "
                f"{s.get('sample_seed', 0) + 1})"
            )
            lines.append(
                "method      y     w   energy  (floor)     acc learned/exact   loglik learned/exact"
            )
            for r in self.samples:
                lines.append(
                    f"{r['method']:<10} {r['y']:2d} {r['w']:5g} {r['energy']:8.4f} "
                    f"({r['energy_floor']:.4f})   {r['accuracy_learned']:7.4f} / "
                    f"{r['accuracy_exact']:.4f}   {r['loglik_learned']:8.4f} / "
                    f"{r['loglik_exact']:.4f}"
                )
        if self.blas:
            lines.append("")
            how = (
                "requested"
                if next(iter(self.blas.values())).get("requested")
                else "chosen by measurement"
            )
            lines.append(
                f"BLAS threads ({how}): "
                + ", ".join(f"{level} {rec.get('threads')}" for level, rec in self.blas.items())
            )
        return "\n".join(lines)

    __str__ = to_text


def compare(
    problem,
    model: MLP | None,
    *,
    unconditional: MLP | None = None,
    classifier=None,
    schedule=None,
    ws=(1.0, 3.0),
    t_grid=None,
    n_field: int = 4000,
    n_samples: int = 2000,
    sampler: str = "heun",
    steps: int = 50,
    seed: int = 0,
    samples: bool = True,
    blas_threads=None,
) -> ComparisonReport:
    """Compare learned models against the exact fields of ``problem`` (name, LabeledGMM or GMMPath).

    Seeds: fields use ``seed``, the classifier ``seed + 1``, samplers ``seed + 2`` (and + 3 for the
    noise floor). blas_threads: None (default) chooses the BLAS thread count of each level by
    timing its own network evaluations, an int fixes it (module docstring); the choice is in
    ``report.blas``. Returns a :class:`ComparisonReport`.
    """
    blas_threads = check_blas_threads(blas_threads)
    if model is not None and not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP or None, got {type(model).__name__}")
    if schedule is None and model is not None:
        from .fields import schedule_of

        schedule = schedule_of(model)
    from ..problems import resolve

    path = resolve(problem, schedule).path
    blas = {}
    with BlasThreads(blas_threads) as bt:
        fields = _field_errors(path, model, unconditional, ws, t_grid, n_field, seed, bt)
    blas["fields"] = bt.record()
    clf = None
    if classifier is not None:
        with BlasThreads(blas_threads) as bt:
            clf = _classifier_errors(path, classifier, t_grid, n_field, seed + 1, bt)
        blas["classifier"] = bt.record()
    rows = []
    if samples and model is not None:
        if isinstance(classifier, MLP):
            classifier = NoisyClassifier(classifier)
        unc = (
            LearnedField(unconditional, None, path.schedule) if unconditional is not None else None
        )
        with BlasThreads(blas_threads) as bt:
            rows = _sample_comparison(
                path,
                model,
                ws,
                n_samples,
                sampler,
                steps,
                seed + 2,
                classifier,
                unc,
                _ENERGY_MAX_N,
                bt,
            )
        blas["samples"] = bt.record()
    settings = dict(
        ws=[float(w) for w in ws],
        n_field=n_field,
        n_samples=n_samples,
        sampler=sampler,
        steps=steps,
        seed=seed,
        sample_seed=seed + 2,
        schedule=path.schedule.name,
    )
    return ComparisonReport(
        fields=fields, classifier=clf, samples=rows, settings=settings, blas=blas
    )
