"""Prompts that are vectors: a conditional Gaussian-mixture family with y in R^m.

Components c = 1..K with weights pi_c:

    y | c    ~ N(m_c, S_c)                         (the prompt law, R^m)
    x | y, c ~ N(A_c y + b_c, Sigma_c)             (the data law given the prompt, R^d)

Then every law the guided samplers need is a Gaussian mixture:

    p(y)     = sum_c pi_c N(y; m_c, S_c)                                   (``prompt_prior``)
    p(x | y) = sum_c p(c | y) N(x; A_c y + b_c, Sigma_c),
               p(c | y) = pi_c N(y; m_c, S_c) / p(y)                       (``conditional(y)``)
    p(x)     = sum_c pi_c N(x; A_c m_c + b_c, A_c S_c A_c^T + Sigma_c)      (``marginal``)
    p(x, y)  = sum_c pi_c N((x, y); (A_c m_c + b_c, m_c),
                             [[A_c S_c A_c^T + Sigma_c, A_c S_c], [S_c A_c^T, S_c]])   (``joint``)

so along every Gaussian path x_t = alpha_t z + beta_t eps the conditional and marginal fields are
those of ``GMMPath`` (the mixture maths is not rewritten here): ``VectorPromptPath`` builds, for the
prompts of a batch, a *prompt table* (a ``LabeledGMM`` with one class p(x | y_j) per distinct prompt)
and evaluates the table's class j for every particle whose prompt is y_j. The noisy "classifier" is a
density over y (Bayes' rule, the notes' eq. 60 with a density in place of a class probability):

    log p_t(y | x) = log p(y) + log p_t(x | y) - log p_t(x),
    grad_x log p_t(y | x) = grad log p_t(x | y) - grad log p_t(x)          (eq. 61)

and classifier guidance u_t(x) + w a_t grad_x log p_t(y | x) (eq. 62) equals CFG
w u_t(x | y) + (1 - w) u_t(x) (eq. 65) for every w with these exact fields.

Lowering: the CFG field of a batch of prompts is a linear combination of two exact ``GMMPath`` fields
(the prompt table with per-particle labels, and the marginal), so it runs on the CPU and CUDA kernels;
the classifier-guided field is evaluated through the classifier gradient on NumPy only (the fast
backends refuse it with ``NotLowerable``).
"""

from __future__ import annotations

import numpy as np

from ._validation import (
    _describe,
    as_float_array,
    as_generator,
    as_points,
    as_positive_int,
    as_times,
    as_weight,
)
from .combine import combine
from .mixture import GMM, LabeledGMM
from .paths import GMMPath
from .schedules import Schedule
from .schedules import schedule as _make_schedule

__all__ = ["VectorPromptFamily", "VectorPromptPath", "prompt_rows", "BLOCK"]

BLOCK = 64
"""Rows per prompt table on the NumPy path (``VectorPromptPath.blocks``)."""


def prompt_rows(y, n: int, m: int, name: str = "y") -> np.ndarray:
    """Prompts as an (n, m) float64 array: one prompt (m,) repeated, or one row per particle."""
    a = as_float_array(y, name)
    if a.ndim == 1 and a.shape[0] == m:
        return np.broadcast_to(a, (n, m)).copy()
    if a.ndim == 2 and a.shape == (n, m):
        return a
    raise ValueError(
        f"{name} has shape {a.shape} but one prompt ({m},) or one per point ({n}, {m}) is required"
    )


def _gmm(weights, means, like: GMM) -> GMM:
    """A GMM with the given weights and means and the covariances of ``like`` (already
    eigendecomposed there: nothing is recomputed). Private: checks nothing."""
    g = GMM.__new__(GMM)
    g.weights = weights
    with np.errstate(divide="ignore"):
        g.log_weights = np.log(weights)
    g.means = np.ascontiguousarray(means)
    g.eigvals, g.eigvecs, g.cov_type = like.eigvals, like.eigvecs, like.cov_type
    return g


class VectorPromptFamily:
    """The family of the module docstring.

    Parameters
    ----------
    weights : (K,) pi_c.
    prompt_means : (K, m) m_c.
    prompt_covs : (K, m, m), (K, m) or (K,) S_c (positive definite).
    A : (K, d, m) A_c.
    b : (K, d) b_c.
    covs : (K, d, d), (K, d) or (K,) Sigma_c (positive definite).
    """

    def __init__(self, weights, prompt_means, prompt_covs, A, b, covs):
        self.prompt_prior = GMM(weights, prompt_means, prompt_covs)  # validates pi, m_c, S_c
        K, m = self.prompt_prior.K, self.prompt_prior.d
        bb = as_float_array(b, "b")
        if bb.ndim != 2 or bb.shape[0] != K or bb.shape[1] == 0:
            raise ValueError(f"b has shape {bb.shape} but weights implies ({K}, d) with d >= 1")
        d = bb.shape[1]
        AA = as_float_array(A, "A")
        if AA.shape != (K, d, m):
            raise ValueError(
                f"A has shape {AA.shape} but weights, b and prompt_means imply ({K}, {d}, {m})"
            )
        self._noise = GMM(self.prompt_prior.weights, bb, covs)  # validates Sigma_c
        if np.any(self._noise.point_mass) or np.any(self.prompt_prior.point_mass):
            raise ValueError(
                "covs and prompt_covs must be positive definite (a point mass has no "
                "density p(x | y) or p(y))"
            )
        self.A, self.b = AA, bb
        S, Sig = self.prompt_prior.covs, self._noise.covs
        mean_x = np.einsum("kdm,km->kd", AA, self.prompt_prior.means) + bb
        cov_x = np.einsum("kdm,kmn,ken->kde", AA, S, AA) + Sig
        self.marginal = GMM(
            self.prompt_prior.weights, mean_x, 0.5 * (cov_x + cov_x.transpose(0, 2, 1))
        )
        AS = np.einsum("kdm,kmn->kdn", AA, S)  # (K, d, m) = Cov(x, y | c)
        top = np.concatenate([cov_x, AS], axis=2)
        bottom = np.concatenate([AS.transpose(0, 2, 1), S], axis=2)
        cov_j = np.concatenate([top, bottom], axis=1)
        self.joint = GMM(
            self.prompt_prior.weights,
            np.concatenate([mean_x, self.prompt_prior.means], axis=1),
            0.5 * (cov_j + cov_j.transpose(0, 2, 1)),
        )

    K = property(lambda self: self.prompt_prior.K, doc="number of components")
    d = property(lambda self: self.b.shape[1], doc="data dimension")
    m = property(lambda self: self.prompt_prior.d, doc="prompt dimension")

    def __repr__(self) -> str:
        return f"VectorPromptFamily(K={self.K}, d={self.d}, m={self.m})"

    def _prompts(self, y, name="y") -> np.ndarray:
        a = as_float_array(y, name)
        if a.ndim == 1 and a.shape[0] == self.m:
            a = a[None]
        return as_points(a, self.m, name, "the prompt dimension")

    def component_weights(self, y) -> np.ndarray:
        """p(c | y) for prompts y (J, m) (or one (m,)), shape (J, K)."""
        return self.prompt_prior.responsibilities(self._prompts(y))

    def component_means(self, y) -> np.ndarray:
        """A_c y + b_c for prompts y (J, m), shape (J, K, d)."""
        return np.einsum("kdm,jm->jkd", self.A, self._prompts(y)) + self.b

    def conditional(self, y) -> GMM:
        """The GMM p(x | y) of one prompt y (m,)."""
        Y = self._prompts(y)
        if Y.shape[0] != 1:
            raise ValueError(f"y has shape {np.shape(y)} but one prompt ({self.m},) is required")
        return _gmm(self.component_weights(Y)[0], self.component_means(Y)[0], self._noise)

    def prompt_table(self, y) -> tuple[LabeledGMM, np.ndarray]:
        """(table, labels): a LabeledGMM with one class p(x | y_j) per distinct prompt row of y
        (J, m), in order of first appearance, and the class of every row (J,) int64."""
        Y = self._prompts(y)
        uniq, first, inv = np.unique(Y, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)  # classes in order of first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        U = uniq[order]
        W, Mu = self.component_weights(U), self.component_means(U)
        classes = [_gmm(W[j], Mu[j], self._noise) for j in range(U.shape[0])]
        table = LabeledGMM(classes, np.full(U.shape[0], 1.0 / U.shape[0]))
        return table, rank[np.reshape(inv, -1)].astype(np.int64)

    def sample(self, n: int, seed=None) -> tuple[np.ndarray, np.ndarray]:
        """n draws of (x (n, d), y (n, m)) from the joint law."""
        xy = self.joint.sample(as_positive_int(n, "n"), as_generator(seed))
        return xy[:, : self.d], xy[:, self.d :]

    def sample_given(self, y, n: int, seed=None) -> np.ndarray:
        """n draws of x ~ p(x | y) for one prompt y (m,)."""
        return self.conditional(y).sample(n, seed)


class VectorPromptPath:
    """The exact probability path of a ``VectorPromptFamily`` under a schedule.

    Every method takes x (N, d), t a float or (N,) in [0, 1] and a prompt y: None (unconditional),
    one prompt (m,) for every point, or (N, m), one per point."""

    def __init__(self, family: VectorPromptFamily, schedule: Schedule | str = "linear"):
        if not isinstance(family, VectorPromptFamily):
            raise TypeError(f"family must be a VectorPromptFamily, got {_describe(family)}")
        self.family = family
        self.schedule = _make_schedule(schedule)
        self.marginal_path = GMMPath(family.marginal, self.schedule)

    d = property(lambda self: self.family.d, doc="data dimension")
    m = property(lambda self: self.family.m, doc="prompt dimension")

    def __repr__(self) -> str:
        return f"VectorPromptPath({self.family!r}, {self.schedule!r})"

    def table(self, y, n: int):
        """(GMMPath of the prompt table, labels (n,)) for the prompts y of n points."""
        Y = prompt_rows(y, n, self.m)
        tab, labels = self.family.prompt_table(Y)
        return GMMPath(tab, self.schedule), labels

    def blocks(self, y, n: int) -> list:
        """The prompts of n points as row blocks [(rows, GMMPath of the block's table, labels)].

        A table path evaluates every component of every class for every row, so one table for n
        distinct prompts costs O(n^2 K); blocks of ``BLOCK`` rows cost O(n BLOCK K). One prompt (m,)
        is one block of one class for all rows."""
        a = as_float_array(y, "y")
        if a.ndim == 1:
            return [(slice(0, n),) + self.table(a, 1)[:1] + (0,)]
        Y = prompt_rows(a, n, self.m)
        return [
            (slice(s, min(n, s + BLOCK)),) + self.table(Y[s : s + BLOCK], min(n, s + BLOCK) - s)
            for s in range(0, n, BLOCK)
        ]

    def _fields(self, x, t, y, want, blocks=None):
        x = as_points(x, self.d, allow_empty=True)
        t = as_times(t, x.shape[0])
        if y is None and blocks is None:
            return self.marginal_path.fields(x, t, None, want)
        if blocks is None:
            blocks = self.blocks(y, x.shape[0])
        parts = [
            path.fields(x[rows], t if np.ndim(t) == 0 else t[rows], labels, want)
            for rows, path, labels in blocks
        ]
        return {k: np.concatenate([p[k] for p in parts]) for k in want}

    def log_prob(self, x, t, y=None) -> np.ndarray:
        """log p_t(x | y) (y None: log p_t(x)), (N,)."""
        return self._fields(x, t, y, ("logp",))["logp"]

    def score(self, x, t, y=None) -> np.ndarray:
        """grad_x log p_t(x | y), (N, d)."""
        return self._fields(x, t, y, ("score",))["score"]

    def velocity(self, x, t, y=None) -> np.ndarray:
        """u_t(x | y) (eq. 18 with the Gaussian conditional velocity), (N, d)."""
        return self._fields(x, t, y, ("velocity",))["velocity"]

    def x0(self, x, t, y=None) -> np.ndarray:
        """E[z | x_t = x, y], (N, d)."""
        return self._fields(x, t, y, ("x0",))["x0"]

    def cfg_velocity(self, x, t, y, w) -> np.ndarray:
        """w u_t(x | y) + (1 - w) u_t(x) (eq. 65), (N, d); w a float or (N,)."""
        return self._cfg(x, t, y, w, "velocity")

    def cfg_score(self, x, t, y, w) -> np.ndarray:
        """w grad log p_t(x | y) + (1 - w) grad log p_t(x), (N, d)."""
        return self._cfg(x, t, y, w, "score")

    def _cfg(self, x, t, y, w, what):
        self._require_prompt(y)
        x = as_points(x, self.d, allow_empty=True)
        w = np.reshape(as_weight(w, x.shape[0]), (-1, 1))
        return combine(
            self._fields(x, t, y, (what,))[what], self._fields(x, t, None, (what,))[what], w
        )

    @staticmethod
    def _require_prompt(y):
        if y is None:
            raise ValueError("y must be a prompt ((m,) or (N, m)) for guidance, got None")

    # ------------------------------------------------------------------ the classifier p_t(y | x)
    def classifier_log_density(self, x, t, y) -> np.ndarray:
        """log p_t(y | x) = log p(y) + log p_t(x | y) - log p_t(x) (Bayes, eq. 60), (N,): a
        log-density over the prompt y in R^m, one per pair (x_i, y_i)."""
        self._require_prompt(y)
        x = as_points(x, self.d, allow_empty=True)
        Y = prompt_rows(y, x.shape[0], self.m)
        return (
            self.family.prompt_prior.log_prob(Y)
            + self.log_prob(x, t, Y)
            - self.log_prob(x, t, None)
        )

    def classifier_score(self, x, t, y) -> np.ndarray:
        """grad_x log p_t(y | x) = grad log p_t(x | y) - grad log p_t(x) (eq. 61), (N, d)."""
        self._require_prompt(y)
        return self.score(x, t, y) - self.score(x, t, None)

    def classifier_guided_velocity(self, x, t, y, w) -> np.ndarray:
        """Classifier guidance u_t(x) + w a_t grad_x log p_t(y | x) (eq. 62), (N, d).

        Where alpha_t = 0 (a_t infinite, the gradient 0) the term is its limit, which is
        u_t(x | y) - u_t(x) = dalpha_0 (E[z | y] - E[z]) at t = 0; elsewhere it is a_t times
        ``classifier_score`` (rounding error ~ 1e-16 |x| / alpha_t)."""
        self._require_prompt(y)
        x = as_points(x, self.d, allow_empty=True)
        t = as_times(t, x.shape[0])
        w = np.reshape(as_weight(w, x.shape[0]), (-1, 1))
        alpha = np.broadcast_to(np.asarray(self.schedule.alpha(t), dtype=np.float64), (x.shape[0],))
        u = self.velocity(x, t, None)
        term = np.empty_like(x)
        zero = alpha == 0.0
        if np.any(~zero):
            tt = t if np.ndim(t) == 0 else t[~zero]
            Y = prompt_rows(y, x.shape[0], self.m)[~zero]
            a = np.reshape(self.schedule.a(tt), (-1, 1))
            term[~zero] = a * self.classifier_score(x[~zero], tt, Y)
        if np.any(zero):
            tt = t if np.ndim(t) == 0 else t[zero]
            Y = prompt_rows(y, x.shape[0], self.m)[zero]
            term[zero] = self.velocity(x[zero], tt, Y) - u[zero]
        return u + w * term

    # ------------------------------------------------------------------ field objects
    def field(self, y=None):
        """The exact field u_t(x | y) of the prompts y as a field object (lowerable)."""
        from .guidance import ExactField

        if y is None:
            return ExactField(self.marginal_path, None)
        return _PromptField(self, y)

    def cfg(self, y, w):
        """The CFG field w u_t(x | y) + (1 - w) u_t(x) of prompts y (m,) or (n, m) as a field
        object: a linear combination of two exact GMMPath fields, so every backend runs it. A
        field built for n prompts samples exactly n particles."""
        from .guidance import guided

        self._require_prompt(y)
        return guided(_PromptField(self, y), self.field(None), w)

    def classifier_guided(self, y, w):
        """The classifier-guided field u_t(x) + w a_t grad_x log p_t(y | x) (NumPy backend only)."""
        self._require_prompt(y)
        return _VectorClassifierGuided(self, y, w)


class _PromptField:
    """u_t(x | y) for fixed prompts: the prompt table's exact field with per-particle labels.

    For one prompt (m,) it serves any number of points; for (n, m) prompts exactly n."""

    def __init__(self, vpath: VectorPromptPath, y):
        from .guidance import ExactField

        Y = as_float_array(y, "y")
        n = 1 if Y.ndim == 1 else Y.shape[0]
        path, labels = vpath.table(Y, n)
        self.n = None if Y.ndim == 1 else n
        self.vpath, self.Y = vpath, Y
        # one table for the fast backends (they evaluate each particle's own class only); row blocks
        # for NumPy (``VectorPromptPath.blocks``)
        self.exact = ExactField(path, 0 if Y.ndim == 1 else labels)
        self._blocks = None if Y.ndim == 1 else vpath.blocks(Y, n)
        self.d, self.schedule = vpath.d, vpath.schedule

    def __repr__(self) -> str:
        return f"PromptField(n={self.n}, table={self.exact.path!r})"

    def _terms(self):
        return self.exact._terms()

    def _check(self, x):
        if self.n is not None and np.shape(x)[0] != self.n:
            raise ValueError(
                f"x has {np.shape(x)[0]} points but the field holds {self.n} prompts "
                f"(one per point)"
            )

    def _eval(self, x, t, what):
        self._check(x)
        if self._blocks is None:
            return getattr(self.exact, what)(x, t)
        key = {"velocity": "velocity", "score": "score", "log_prob": "logp"}[what]
        return self.vpath._fields(x, t, self.Y, (key,), self._blocks)[key]

    def velocity(self, x, t):
        return self._eval(x, t, "velocity")

    def score(self, x, t):
        return self._eval(x, t, "score")

    def log_prob(self, x, t):
        return self._eval(x, t, "log_prob")


class _VectorClassifierGuided:
    """Classifier guidance with the exact p_t(y | x) of vector prompts (no ``_terms``: the fast
    backends refuse it with NotLowerable)."""

    def __init__(self, vpath: VectorPromptPath, y, w):
        self.vpath, self.y, self.w = vpath, as_float_array(y, "y"), w
        self.d, self.schedule = vpath.d, vpath.schedule

    def __repr__(self) -> str:
        return f"VectorClassifierGuided(w={self.w!r})"

    def velocity(self, x, t):
        return self.vpath.classifier_guided_velocity(x, t, self.y, self.w)

    def score(self, x, t):
        x = as_points(x, self.d)
        w = np.reshape(as_weight(self.w, x.shape[0]), (-1, 1))
        return self.vpath.score(x, t, None) + w * self.vpath.classifier_score(x, t, self.y)
