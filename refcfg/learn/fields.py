"""Learned fields: trained networks as refcfg field objects.

They follow the field protocol of ``refcfg.guidance`` (``velocity(x, t)``, ``score(x, t)``, ``d``,
``schedule``), so they plug into ``refcfg.sample``, ``refcfg.guided`` and the metrics, next to the
exact fields they approximate.

Score, x0 and eps come from the velocity through ``refcfg.convert`` (the ``Field`` defaults): the
score by the conversion of eq. 41/42 multiplied through by alpha_t, finite at t = 0 (score = -x there,
the score of p_0 = N(0, I), whatever the network says); where the score cannot be recovered from a
velocity (t = 1 for "linear") a ValueError names t.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import NULL, as_guidance_weight, as_label, as_points, as_real, as_times
from ..combine import combine
from ..guidance import Field, GuidedField
from .classifier import NoisyClassifier
from .mlp import MLP
from .train import schedule_of

__all__ = [
    "LearnedField",
    "LearnedCFGField",
    "LearnedClassifierGuidedField",
    "learned_cfg",
    "schedule_of",
]


class LearnedField(Field):
    """u_theta(x | y) of a trained network (``train_cfg`` or ``train_unconditional``) as a field.

    y: None / NULL (the null label: the unconditional half of a CFG model, or a label-free model),
    an int class or an (N,) int array. schedule: defaults to the one recorded in ``model.meta``.
    """

    def __init__(self, model: MLP, y=None, schedule=None):
        if not isinstance(model, MLP):
            raise TypeError(f"model must be an MLP, got {type(model).__name__}")
        self.model = model
        C = model.config.n_classes
        if C == 0:
            if y is not None and not (isinstance(y, numbers.Integral) and y == NULL):
                raise ValueError(f"y must be None for a model without label input, got {y!r}")
            self.y = None
        else:
            self.y = as_label(y, C)
        self.d = model.config.d_in
        if model.config.d_out != self.d:
            raise ValueError(
                f"model outputs {model.config.d_out} values but a velocity in d = "
                f"{self.d} is required (is it a classifier?)"
            )
        self.schedule = schedule_of(model, schedule)

    def __repr__(self) -> str:
        return f"LearnedField(y={self.y!r}, model={self.model!r}, schedule={self.schedule!r})"

    def _args(self, x, t):
        x = as_points(x, self.d, allow_empty=True)
        return x, as_times(t, x.shape[0])

    def _net(self, x, t, y):
        out = self.model.forward(x, t, y if self.model.config.n_classes else None)
        return np.asarray(out, dtype=np.float64)

    def velocity(self, x, t):
        """u_theta_t(x | y), (N, d)."""
        x, t = self._args(x, t)
        return self._net(x, t, self.y)


class LearnedCFGField(GuidedField):
    """CFG with one network: w u_theta(x | y) + (1 - w) u_theta(x | null) (notes eq. 65).
    Both halves are computed in one forward pass of 2N rows."""

    def __init__(self, model: MLP, y, w, schedule=None):
        if not isinstance(model, MLP) or model.config.n_classes == 0:
            raise ValueError("model must be a CFG-trained MLP with a label input (n_classes > 0)")
        super().__init__(LearnedField(model, y, schedule), LearnedField(model, None, schedule), w)
        self.model, self.y = model, self.a.y

    def __repr__(self) -> str:
        return f"LearnedCFGField(y={self.y!r}, w={self.w!r}, model={self.model!r})"

    def velocity(self, x, t):
        x, t = self.a._args(x, t)
        n = x.shape[0]
        y = np.broadcast_to(np.asarray(NULL if self.y is None else self.y, dtype=np.int64), (n,))
        tt = np.concatenate([t, t]) if np.ndim(t) else t
        out = self.a._net(
            np.concatenate([x, x]), tt, np.concatenate([y, np.full(n, NULL, dtype=np.int64)])
        )
        return combine(out[:n], out[n:], self.w)


def learned_cfg(model: MLP, y, w, schedule=None) -> LearnedCFGField:
    """The learned CFG field w u_theta(x|y) + (1 - w) u_theta(x|null) (eq. 65)."""
    return LearnedCFGField(model, y, w, schedule)


class LearnedClassifierGuidedField(Field):
    """Classifier guidance with a learned classifier (notes eq. 62):
    u~ = u(x) + w a_t grad_x log p_t(y | x), with u any field (learned or exact unconditional).

    a_t diverges like 1/alpha_t at t = 0 while the exact grad log p_t(y|x) vanishes like alpha_t.
    An alpha-scaled :class:`NoisyClassifier` (``train_classifier``'s default) provides
    ``guidance_term`` = a_t grad log p_t(y|x) in a form finite on [0, 1], used as is. Any other
    classifier (a plain one, or an object with only ``grad_log_prob(x, t, y)``) has its guidance term
    evaluated at max(t, t_guard) (default 1e-3; an O(t_guard) approximation on [0, t_guard)); pass
    t_guard=0 for schedules with alpha_0 > 0.
    score(x, t) = score_u(x) + w grad_x log p_t(y | x) (needs u.score).
    """

    def __init__(self, unconditional, classifier, y, w, *, t_guard: float = 1e-3):
        if not callable(getattr(unconditional, "velocity", None)):
            raise TypeError(
                "unconditional must be a field with velocity(x, t), got "
                f"{type(unconditional).__name__}"
            )
        if isinstance(classifier, MLP):
            classifier = NoisyClassifier(classifier)
        if not callable(getattr(classifier, "grad_log_prob", None)):
            raise TypeError(
                "classifier must be a NoisyClassifier (or have grad_log_prob(x, t, y)), "
                f"got {type(classifier).__name__}"
            )
        n_classes = getattr(classifier, "n_classes", None)
        self.y = as_label(y, n_classes if n_classes else 10**9)
        if self.y is None:
            raise ValueError("y must be a class label for classifier guidance, got None")
        self.w = as_guidance_weight(w)
        self.t_guard = as_real(t_guard, "t_guard", lo=0.0)
        if not self.t_guard < 1.0:
            raise ValueError(f"t_guard must be a float in [0, 1), got {t_guard!r}")
        self.unconditional, self.classifier = unconditional, classifier
        self.schedule = getattr(unconditional, "schedule", None)
        if self.schedule is None:
            raise ValueError("unconditional must declare its schedule (a_t depends on it)")
        cs = getattr(classifier, "schedule", None)
        if cs is not None and cs != self.schedule:
            raise ValueError(
                f"classifier and unconditional field must share the schedule, got "
                f"{cs!r} and {self.schedule!r}"
            )
        self.d = getattr(unconditional, "d", None)

    def __repr__(self) -> str:
        return (
            f"LearnedClassifierGuidedField(y={self.y!r}, w={self.w!r}, "
            f"unconditional={self.unconditional!r})"
        )

    def _w(self):
        return self.w if np.ndim(self.w) == 0 else np.reshape(self.w, (-1, 1))

    def velocity(self, x, t):
        x = as_points(x, self.d if self.d is not None else np.shape(x)[-1], allow_empty=True)
        t = as_times(t, x.shape[0])
        u = self.unconditional.velocity(x, t)
        if getattr(self.classifier, "alpha_scaled", False):
            return u + self._w() * self.classifier.guidance_term(x, t, self.y)
        tc = np.maximum(t, self.t_guard)
        if np.any(np.asarray(self.schedule.alpha(tc)) <= 0):
            raise ValueError("t_guard must be > 0 for a schedule with alpha_0 = 0, got 0")
        a = self.schedule.a(tc)  # eq. 41
        g = self.classifier.grad_log_prob(x, tc, self.y)
        return u + self._w() * (np.reshape(a, (-1, 1)) if np.ndim(a) else a) * g

    def score(self, x, t):
        x = as_points(x, self.d if self.d is not None else np.shape(x)[-1], allow_empty=True)
        t = as_times(t, x.shape[0])
        return self.unconditional.score(x, t) + self._w() * self.classifier.grad_log_prob(
            x, t, self.y
        )
