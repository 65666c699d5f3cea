"""Exact Gaussian probability paths of Gaussian-mixture data laws: ``GMMPath``.

For data z ~ sum_j pi_j N(mu_j, Sigma_j) and x_t = alpha_t z + beta_t eps (eps ~ N(0, I)), the marginal
p_t is the mixture of N(alpha_t mu_j, S_j), S_j = alpha_t^2 Sigma_j + beta_t^2 I. With the
eigendecomposition Sigma_j = Q_j diag(lam_j) Q_j^T, S_j has eigenvalues s_j = alpha_t^2 lam_j + beta_t^2,
and with c_j = Q_j^T (x - alpha_t mu_j) (the "eigen-coordinates") every quantity is a
responsibility-weighted sum, r_j = softmax_j(log pi_j + log N(x; alpha_t mu_j, S_j)):

    log N_j   = -(d log 2 pi + sum log s_j + sum c_j^2 / s_j) / 2
    score     = sum_j r_j Q_j (-c_j / s_j)                                          (grad log p_t)
    E[z|x]    = sum_j r_j (mu_j + Q_j (alpha lam_j / s_j) c_j)                      (``x0``)
    E[eps|x]  = sum_j r_j Q_j (beta / s_j) c_j                                      (``eps``)
    u_t(x)    = dalpha E[z|x] + dbeta E[eps|x]                                      (marginalisation,
              = sum_j r_j (dalpha mu_j + Q_j ((alpha dalpha lam_j + beta dbeta) / s_j) c_j)  eq. 18)

The last line is finite on the closed interval [0, 1] (no division by alpha_t or beta_t); the
textbook route u = a_t score + b_t x (eq. 41/42) cancels catastrophically as t -> 0 and is offered
only as ``velocity(..., method="conversion")``.

Point masses (Sigma_j = 0, so lam_j = 0) need no special case for t < 1: s_j = beta_t^2 > 0. At t = 1
(beta_t = 0) their S_j is singular; the posterior over components, E[z|x] and the class probabilities
are then given by their limit and the fields that diverge like 1/beta_t are refused
(``_eval_point_limit``, docs/real-data.md).
"""

from __future__ import annotations

import numpy as np

from ._validation import (
    NULL,
    _describe,
    as_generator,
    as_labels,
    as_points,
    as_times,
    as_weight,
    require_finite_result,
)
from .combine import combine
from .mixture import GMM, LabeledGMM, _class_log_probs, _logsumexp, _softmax_rows
from .schedules import Schedule, path_eigenvalues, velocity_numerator
from .schedules import schedule as _make_schedule

__all__ = ["GMMPath"]

_CHUNK_ELEMENTS = 1 << 22  # largest (n, K, d) temporary, in elements


class GMMPath:
    """The exact probability path of a Gaussian-mixture data law under a schedule.

    Parameters
    ----------
    mixture : LabeledGMM, or a GMM (treated as a single class, label 0).
    schedule : a Schedule or a schedule name (default "linear": alpha_t = t, beta_t = 1 - t).

    Every method takes x (N, d), t a float or (N,) in [0, 1], and where it has one an optional label
    y: None or ``refcfg.NULL`` (-1) is unconditional, an int is a class, an (N,) int array gives one
    label per point (NULL entries allowed).
    """

    def __init__(self, mixture, schedule: Schedule | str = "linear"):
        if isinstance(mixture, GMM):
            mixture = LabeledGMM([mixture], [1.0])
        if not isinstance(mixture, LabeledGMM):
            raise TypeError(f"mixture must be a GMM or LabeledGMM, got {type(mixture).__name__}")
        self.mixture = mixture
        self.schedule = _make_schedule(schedule)
        m = mixture.marginal
        self._means = m.means  # (K, d)
        self._lam = m.eigvals  # (K, d)
        self._Q = m.eigvecs  # (K, d, d) or None (identity)
        self._log_w = m.log_weights  # log p(y) pi_{y,k}, (K,)
        with np.errstate(divide="ignore"):
            self._log_w_in_class = np.concatenate([g.log_weights for g in mixture.classes])
            self._log_class_probs = np.log(mixture.class_probs)
        self._cls = mixture.component_class  # (K,)
        self._point = m.point_mass  # (K,) covariance exactly 0
        self._has_points = bool(np.any(self._point))
        # Q_j^T mu_j, (K, d): means in each component's eigenbasis
        self._mu_eig = m.means if self._Q is None else np.einsum("kde,kd->ke", self._Q, m.means)

    d = property(lambda self: self.mixture.d, doc="dimension")
    n_classes = property(lambda self: self.mixture.n_classes, doc="number of classes")

    def __repr__(self) -> str:
        return f"GMMPath({self.mixture!r}, {self.schedule!r})"

    # ------------------------------------------------------------------ lowering
    # As a field, a GMMPath is its unconditional field u_t(x): the leaf of every decomposition of
    # ``refcfg.guidance.linear_terms``. A subclass overriding any of these methods (or the public
    # mathematics) without declaring its own ``_terms`` is refused by the fast backends.
    _lowering_methods = (
        "_eval",
        "_fill",
        "_quadratic",
        "_to_x",
        "_to_x_each",
        "fields",
        "responsibilities",
        "cfg_velocity",
        "cfg_score",
        "classifier_score",
        "classifier_guided_velocity",
        "classifier_guided_score",
    )

    # ------------------------------------------------------------------ validation
    def _args(self, x, t, y=None):
        x = as_points(x, self.d, allow_empty=True)
        t = as_times(t, x.shape[0])
        y = as_labels(y, x.shape[0], self.n_classes)
        return x, t, y

    # ------------------------------------------------------------------ private kernel
    def _eval(self, x, t, labels_list, want):
        """Private kernel (checks nothing). For each label array in ``labels_list`` (None or (N,)
        ints with NULL), returns a dict with the quantities named in ``want`` among
        {"logp", "resp", "score", "velocity", "x0", "eps", "div", "cs", "a_cs", "clp"} (or one such
        tuple per label array):
        "cs" is grad log p_t(y|x) and "a_cs" is a_t grad log p_t(y|x), computed without the
        1/alpha_t cancellation (both need a label array and are 0 on NULL rows); "clp" is
        log p_t(y|x) for every class, (N, C)."""
        N, d = x.shape
        K = self._means.shape[0]
        if self._has_points:
            at_one = np.asarray(self.schedule.beta(t)) == 0.0
            if np.any(at_one):
                return self._eval_point_limit(
                    x, t, labels_list, want, np.broadcast_to(at_one, (N,))
                )
        v = self.schedule.values(t)
        per_point = np.ndim(t) > 0
        wants = list(want) if want and not isinstance(want[0], str) else [want] * len(labels_list)
        outs = [{} for _ in labels_list]
        for o, want_o in zip(outs, wants):
            for key in want_o:
                if key in ("logp", "div"):
                    o[key] = np.empty(N)
                elif key == "resp":
                    o[key] = np.empty((N, K))
                elif key == "clp":
                    o[key] = np.empty((N, self.n_classes))
                else:
                    o[key] = np.empty((N, d))
        # a_t (+inf where alpha_t = 0) and beta D = alpha a_t, for the classifier-guidance term
        ab = (
            (self.schedule.a(t, strict=False), self.schedule.beta_D(t))
            if any("a_cs" in w for w in wants)
            else None
        )
        chunk = max(1, _CHUNK_ELEMENTS // max(1, K * d))
        for s0 in range(0, N, chunk):
            sl = slice(s0, min(N, s0 + chunk))
            xs = x[sl]
            if per_point:
                al, be, da, bdb = (
                    np.asarray(q)[sl, None, None] for q in (v.alpha, v.beta, v.dalpha, v.beta_dbeta)
                )
                ab_s = None if ab is None else tuple(np.asarray(q)[sl, None, None] for q in ab)
            else:
                al, be, da, bdb = v.alpha, v.beta, v.dalpha, v.beta_dbeta
                ab_s = ab
            s = path_eigenvalues(al, be, self._lam)  # (n|1, K, d) eigenvalues of S_j
            xe = xs[:, None, :] if self._Q is None else np.einsum("nd,kde->nke", xs, self._Q)
            c = xe - al * self._mu_eig  # (n, K, d) eigen-coordinates
            # (x - alpha mu_j)^T S_j^-1 (x - alpha mu_j) = common + rest_j; the common part is the same
            # for every component, so it is kept out of the log-weights until the normaliser.
            common, rest = self._quadratic(xs, xe, c, s, al, be, per_point)
            logN = -0.5 * (
                d * np.log(2 * np.pi) + np.log(s).sum(-1) + rest
            )  # (n, K), up to -common/2
            ell_u = self._log_w + logN  # log p(y) pi_{y,j} N_j
            logZ_u = _logsumexp(ell_u)
            r_u, lost = _softmax_rows(ell_u, logZ_u)
            for labels, o in zip(labels_list, outs):
                if labels is None:
                    r, logp = r_u, logZ_u
                else:
                    lab = labels[sl]
                    cond = lab != NULL
                    mask = (~cond[:, None]) | (self._cls[None, :] == lab[:, None])
                    ell_c = np.where(cond[:, None], self._log_w_in_class + logN, ell_u)
                    ell_c = np.where(mask, ell_c, -np.inf)
                    logp = _logsumexp(ell_c)
                    r = _softmax_rows(ell_c, logp)[0]
                self._fill(o, sl, r, logp - 0.5 * common, c, s, al, be, da, bdb, xe, r_u, ab_s)
                if "clp" in o:
                    for cls, csl in enumerate(self.mixture.class_slices):
                        o["clp"][sl, cls] = _logsumexp(ell_u[:, csl]) - logZ_u
                    if np.any(lost):  # rows whose normaliser lost its sum to rounding
                        rows = np.arange(sl.start, sl.stop)[lost]
                        o["clp"][rows] = _class_log_probs(ell_u[lost], self.mixture.class_slices)
        for o in outs:
            for key, value in o.items():
                if key not in ("logp", "clp"):
                    require_finite_result(value, key)
        return outs

    _LIMIT_KEYS = ("resp", "x0", "clp")

    def _eval_point_limit(self, x, t, labels_list, want, at_one):
        """``_eval`` where some rows have beta_t = 0 (t = 1) and the mixture has point masses.

        There S_j = alpha^2 Sigma_j + beta^2 I is singular for a point mass and the fields are defined
        by their limit beta_t -> 0 at fixed x. The posterior over components converges (rule in
        ``_limit_posterior``), so "resp", "clp" and "x0" (E[z|x]) have finite limits; the score,
        the velocity, eps, the divergence and the classifier gradient diverge like 1/beta_t off the
        points (e.g. u_t(x) = (E[z|x] - x) / (1 - t) for the linear schedule) and are refused."""
        N, d = x.shape
        wants = list(want) if want and not isinstance(want[0], str) else [want] * len(labels_list)
        for want_o in wants:
            bad = [key for key in want_o if key not in self._LIMIT_KEYS]
            if bad:
                tt = float(np.atleast_1d(t)[np.argmax(at_one)] if np.ndim(t) else t)
                raise ValueError(
                    f"t = {tt!r}: {bad[0]} is not finite where beta_t = 0 for a mixture with point "
                    f"masses (covariance 0): it diverges like 1/beta_t off the points. Use t < 1 "
                    f"(e.g. end sampling at t < 1 and denoise with x0 = E[z|x_t]); the posterior "
                    f"mean x0, the responsibilities and the class probabilities have limits at t = 1"
                )
        outs = [
            {
                key: np.empty((N, d))
                if key == "x0"
                else np.empty((N, self._means.shape[0] if key == "resp" else self.n_classes))
                for key in want_o
            }
            for want_o in wants
        ]
        rows = ~at_one
        if np.any(rows):
            sub = self._eval(
                x[rows],
                t[rows] if np.ndim(t) else t,
                [None if lab is None else lab[rows] for lab in labels_list],
                wants,
            )
            for o, so in zip(outs, sub):
                for key in o:
                    o[key][rows] = so[key]
        idx = np.nonzero(at_one)[0]
        alpha = np.broadcast_to(np.asarray(self.schedule.alpha(t), dtype=float), (N,))
        for a in np.unique(alpha[idx]):
            sel = idx[alpha[idx] == a]
            xs = x[sel]
            r_u = None
            for labels, o in zip(labels_list, outs):
                r = self._limit_posterior(xs, a, None if labels is None else labels[sel])
                if "resp" in o:
                    o["resp"][sel] = r
                if "x0" in o:
                    o["x0"][sel] = r[:, self._point] @ self._means[self._point] + r[
                        :, ~self._point
                    ].sum(1)[:, None] * (xs / a)
                if "clp" in o:
                    r_u = self._limit_posterior(xs, a, None) if r_u is None else r_u
                    with np.errstate(divide="ignore"):
                        o["clp"][sel] = np.log(
                            np.stack(
                                [r_u[:, csl].sum(1) for csl in self.mixture.class_slices], axis=1
                            )
                        )
        return outs

    def _limit_posterior(self, x, alpha, labels):
        """lim_{beta -> 0} p_t(j | x, y) at fixed x, where x = alpha z + beta eps (alpha > 0), (n, K).

        Among the components allowed (class y's, or all), with prior weights w_j:
        1. point masses located at x (x = alpha mu_j exactly) take all the mass, shared by w_j
           (their density is infinite there);
        2. otherwise, if there are non-degenerate components, the usual posterior among them
           (N(x; alpha mu_j, alpha^2 Sigma_j)); point masses get 0 (their density vanishes like
           exp(-|x - alpha mu_j|^2 / (2 beta^2)));
        3. otherwise (only point masses) the nearest point(s) argmin_j |x - alpha mu_j|, exact ties
           shared by w_j (all others are exponentially smaller as beta -> 0)."""
        n = x.shape[0]
        K = self._means.shape[0]
        if labels is None:
            logw = np.broadcast_to(self._log_w, (n, K))
        else:
            cond = labels != NULL
            mask = (~cond[:, None]) | (self._cls[None, :] == labels[:, None])
            logw = np.where(
                mask, np.where(cond[:, None], self._log_w_in_class, self._log_w), -np.inf
            )
        allowed = np.isfinite(logw)
        pm = self._point
        d2 = np.full((n, K), np.inf)
        kp = np.nonzero(pm)[0]
        chunk = max(1, _CHUNK_ELEMENTS // max(1, kp.size * x.shape[1]))
        for s0 in range(0, n, chunk):
            diff = x[s0 : s0 + chunk, None, :] - alpha * self._means[kp][None]
            d2[s0 : s0 + chunk, kp] = np.einsum("nkd,nkd->nk", diff, diff)
        d2 = np.where(allowed, d2, np.inf)
        ell = np.where(d2 == 0.0, logw, -np.inf)  # rule 1
        open_rows = ~np.any(d2 == 0.0, axis=1)
        ks = np.nonzero(~pm)[0]
        if ks.size and np.any(open_rows):  # rule 2
            from .mixture import _log_normal_components

            Qs = None if self._Q is None else self._Q[ks]
            lg = _log_normal_components(
                x[open_rows], alpha * self._means[ks], alpha * alpha * self._lam[ks], Qs
            )
            sub = np.full((int(open_rows.sum()), K), -np.inf)
            sub[:, ks] = logw[open_rows][:, ks] + lg
            ell[open_rows] = sub
            open_rows = open_rows & ~np.any(np.isfinite(ell), axis=1)
        if np.any(open_rows):  # rule 3
            dmin = d2[open_rows].min(axis=1, keepdims=True)
            ell[open_rows] = np.where(d2[open_rows] == dmin, logw[open_rows], -np.inf)
        return _softmax_rows(ell, _logsumexp(ell))[0]

    def _quadratic(self, xs, xe, c, s, al, be, per_point):
        """Mahalanobis terms sum_e c_e^2 / s_e = common + rest_j, returned as (common (n,), rest (n, K)).

        Where beta_t >= alpha_t, common = |x|^2 / beta^2 and
        rest_j = alpha * sum_e [beta^2 (alpha mu_e^2 - 2 mu_e xe) - alpha lam_e xe^2] / (s_e beta^2)
        (mu, xe: mean and x in component j's eigenbasis). The common part is one float for every
        component, so it cancels exactly in responsibilities and class probabilities: for |x| up to
        1e6 near t = 0 the direct form would lose the class information to rounding (at alpha_t = 0
        all components tie exactly). Elsewhere common = 0 and rest is the direct form."""
        split_rows = np.asarray(al <= be)
        n = xs.shape[0]
        if not np.any(split_rows):
            return np.zeros(n), (c * c / s).sum(-1)
        be2 = np.where(split_rows, be * be, 1.0)  # beta > 0 where split is used
        mu = self._mu_eig
        rest = (
            al * ((be2 * (al * mu * mu - 2.0 * mu * xe) - al * self._lam * xe * xe) / (s * be2))
        ).sum(-1)
        common = (xs * xs).sum(-1) / np.reshape(be2, (-1,))
        if not per_point:
            return common, rest
        rows = np.reshape(split_rows, (-1,))
        if np.all(rows):
            return common, rest
        return np.where(rows, common, 0.0), np.where(rows[:, None], rest, (c * c / s).sum(-1))

    def _to_x(self, coef):
        """sum_j Q_j coef_j for weighted eigen-coordinates coef (n, K, d) -> (n, d)."""
        if self._Q is None:
            return coef.sum(axis=1)
        return np.einsum("kde,nke->nd", self._Q, coef)

    def _to_x_each(self, coef):
        """Q_j coef_j for every component: (n, K, d) eigen-coordinates -> (n, K, d) x-coordinates."""
        if self._Q is None:
            return coef
        return np.einsum("kde,nke->nkd", self._Q, coef)

    def _fill(self, o, sl, r, logp, c, s, al, be, da, bdb, xe, r_u, ab=None):
        rr = r[:, :, None]
        if "logp" in o:
            o["logp"][sl] = logp
        if "resp" in o:
            o["resp"][sl] = r
        if "score" in o or "div" in o:
            score = self._to_x(rr * (-c / s))
            if "score" in o:
                o["score"][sl] = score
        if "velocity" in o or "div" in o:
            m = velocity_numerator(al, da, bdb, self._lam) / s  # eigenvalues of M_j = dv_j/dx
            da_n = da if np.ndim(da) == 0 else np.reshape(da, (-1, 1))  # (n, 1) for (n, d) terms
            vel = (r @ self._means) * da_n + self._to_x(rr * (m * c))
            if "velocity" in o:
                o["velocity"][sl] = vel
        if "x0" in o:
            o["x0"][sl] = r @ self._means + self._to_x(rr * ((al * self._lam / s) * c))
        if "eps" in o:
            o["eps"][sl] = self._to_x(rr * ((be / s) * c))
        if "div" in o:
            # div u = sum_j r_j tr M_j + sum_j r_j (g_j - score).(v_j - u), with g_j = -S_j^{-1}(x - alpha mu_j),
            # v_j = dalpha mu_j + M_j (x - alpha mu_j) and grad r_j = r_j (g_j - score). The centred
            # (covariance) form avoids cancelling terms of size |x|^2.
            g_j = self._to_x_each(-c / s) - score[:, None, :]  # (n, K, d)
            v_j = self._to_x_each(m * c) + self._means * da - vel[:, None, :]
            o["div"][sl] = (r * (m.sum(-1) + (g_j * v_j).sum(-1))).sum(-1)
        if "cs" in o or "a_cs" in o:
            # grad log p_t(y|x) = sum_j (r^y_j - r_j) g_j. Since sum_j (r^y_j - r_j) = 0 any reference
            # vector can be subtracted from g_j; with g_ref = -x / beta^2 the difference is
            # g_j - g_ref = alpha_t h_j, h_j = Q_j (alpha lam_j Q_j^T x / (beta^2 s_j) + Q_j^T mu_j / s_j),
            # free of cancellation as alpha_t -> 0, and a_t alpha_t = beta^2 dalpha - alpha beta dbeta.
            dr = (r - r_u)[:, :, None]
            be_b = np.broadcast_to(be, np.broadcast_shapes(np.shape(be), (1, 1, 1)))
            use_h = np.broadcast_to(np.asarray(al) <= np.asarray(be), be_b.shape)  # beta >= alpha
            safe_be2 = np.where(use_h, be_b * be_b, 1.0)
            h = al * self._lam * xe / (safe_be2 * s) + self._mu_eig / s
            direct = -c / s  # g_j, used where alpha > beta
            if "cs" in o:
                o["cs"][sl] = self._to_x(dr * np.where(use_h, al * h, direct))
            if "a_cs" in o:
                a_t, beta_D = ab  # a_t is used only where alpha > beta >= 0 (finite there)
                with np.errstate(invalid="ignore"):
                    o["a_cs"][sl] = self._to_x(dr * np.where(use_h, beta_D * h, a_t * direct))

    # ------------------------------------------------------------------ marginal quantities
    def log_prob(self, x, t, y=None) -> np.ndarray:
        """log p_t(x|y) (or log p_t(x) for y None/NULL), shape (N,)."""
        x, t, y = self._args(x, t, y)
        return self._eval(x, t, [y], ("logp",))[0]["logp"]

    def responsibilities(self, x, t, y=None) -> np.ndarray:
        """p_t(component j | x, y), shape (N, K_total) over all components of the mixture
        (zero outside class y)."""
        x, t, y = self._args(x, t, y)
        return self._eval(x, t, [y], ("resp",))[0]["resp"]

    def score(self, x, t, y=None) -> np.ndarray:
        """grad_x log p_t(x|y), shape (N, d). At t = 0 (alpha_0 = 0) it is -x."""
        x, t, y = self._args(x, t, y)
        return self._eval(x, t, [y], ("score",))[0]["score"]

    def velocity(self, x, t, y=None, method: str = "posterior") -> np.ndarray:
        """The marginal velocity u_t(x|y) (eq. 18 with the Gaussian conditional velocity eq. 20), (N, d).

        method="posterior" (default): dalpha E[z|x] + dbeta E[eps|x], finite on [0, 1].
        method="conversion": a_t score + b_t x (eq. 41/42), as the notes derive it; undefined where
        alpha_t = 0 (ValueError) and inaccurate as t -> 0 (relative error ~ 1e-16 / t; see docs).
        """
        if method not in ("posterior", "conversion"):
            raise ValueError(f"method must be 'posterior' or 'conversion', got {method!r}")
        x, t, y = self._args(x, t, y)
        if method == "conversion":
            a, b = self.schedule.a(t), self.schedule.b(t)
            sc = self._eval(x, t, [y], ("score",))[0]["score"]
            return np.reshape(a, (-1, 1)) * sc + np.reshape(b, (-1, 1)) * x
        return self._eval(x, t, [y], ("velocity",))[0]["velocity"]

    def x0(self, x, t, y=None) -> np.ndarray:
        """E[z | x_t = x, y]: the data ("x0"/"x-") prediction of the diffusion literature, (N, d).
        In refcfg's time the data is the t = 1 end; the name follows common usage."""
        x, t, y = self._args(x, t, y)
        return self._eval(x, t, [y], ("x0",))[0]["x0"]

    def eps(self, x, t, y=None) -> np.ndarray:
        """E[eps | x_t = x, y]: the noise prediction, (N, d); 0 at t = 1 (beta_1 = 0)."""
        x, t, y = self._args(x, t, y)
        return self._eval(x, t, [y], ("eps",))[0]["eps"]

    def divergence(self, x, t, y=None) -> np.ndarray:
        """div_x u_t(x|y), exact, shape (N,) (continuity equation eq. 23; likelihood along the ODE)."""
        x, t, y = self._args(x, t, y)
        return self._eval(x, t, [y], ("div",))[0]["div"]

    def fields(self, x, t, y=None, want=("velocity",)) -> dict:
        """Several quantities in one pass: ``want`` among "logp", "resp", "score", "velocity", "x0",
        "eps", "div". Returns a dict of arrays."""
        if isinstance(want, str):
            want = (want,)
        unknown = set(want) - {"logp", "resp", "score", "velocity", "x0", "eps", "div"}
        if unknown:
            raise ValueError(f"want has unknown quantities {sorted(unknown)}")
        x, t, y = self._args(x, t, y)
        return self._eval(x, t, [y], tuple(want))[0]

    # ------------------------------------------------------------------ classifier and guidance
    def class_log_probs(self, x, t) -> np.ndarray:
        """log p_t(y|x) for every class by Bayes' rule (eq. 60), shape (N, C):
        log p(y) + log p_t(x|y) - log p_t(x), each by log-sum-exp (no underflow to -inf)."""
        x, t, _ = self._args(x, t)
        return self._eval(x, t, [None], ("clp",))[0]["clp"]

    def classifier_score(self, x, t, y) -> np.ndarray:
        """grad_x log p_t(y|x) = score(x|y) - score(x) (eq. 61), shape (N, d); 0 on NULL rows."""
        x, t, y = self._args(x, t, y)
        if y is None or (y.size > 0 and np.all(y == NULL)):
            raise ValueError(
                "y must be a class label (int or (N,) array) for classifier_score, got None/NULL"
            )
        return self._eval(x, t, [y], ("cs",))[0]["cs"]

    def cfg_velocity(self, x, t, y, w) -> np.ndarray:
        """Classifier-free guidance u~ = w u_t(x|y) + (1 - w) u_t(x|null) (eq. 65), (N, d).
        w = 1: conditional, w = 0: unconditional; Ho-Salimans' omega is w = 1 + omega."""
        x, t, y = self._args(x, t, y)
        w = np.reshape(as_weight(w, x.shape[0]), (-1, 1))
        cond, uncond = self._eval(x, t, [y, None], ("velocity",))
        return combine(cond["velocity"], uncond["velocity"], w)

    def cfg_score(self, x, t, y, w) -> np.ndarray:
        """The guided score w score(x|y) + (1 - w) score(x), (N, d)."""
        x, t, y = self._args(x, t, y)
        w = np.reshape(as_weight(w, x.shape[0]), (-1, 1))
        cond, uncond = self._eval(x, t, [y, None], ("score",))
        return combine(cond["score"], uncond["score"], w)

    def _guidance_args(self, x, t, y, w):
        x, t, y = self._args(x, t, y)
        if y is None or (y.size > 0 and np.all(y == NULL)):
            raise ValueError(
                "y must be a class label (int or (N,) array) for classifier guidance, got None/NULL"
            )
        return x, t, y, np.reshape(as_weight(w, x.shape[0]), (-1, 1))

    def classifier_guided_velocity(self, x, t, y, w) -> np.ndarray:
        """Classifier guidance u~ = u_t(x) + w a_t grad log p_t(y|x) (eq. 62), (N, d).

        With exact fields it equals ``cfg_velocity`` for every w. The product a_t grad log p_t(y|x)
        is evaluated in a form that stays finite and accurate at t = 0 where a_t diverges."""
        x, t, y, w = self._guidance_args(x, t, y, w)
        cond, uncond = self._eval(x, t, [y, None], [("a_cs",), ("velocity",)])
        return uncond["velocity"] + w * cond["a_cs"]

    def classifier_guided_score(self, x, t, y, w) -> np.ndarray:
        """score(x) + w grad log p_t(y|x), (N, d) (the score of classifier guidance)."""
        x, t, y, w = self._guidance_args(x, t, y, w)
        cond, uncond = self._eval(x, t, [y, None], [("cs",), ("score",)])
        return uncond["score"] + w * cond["cs"]

    # ------------------------------------------------------------------ conditional path (per z)
    def _cond_args(self, x, t, z):
        x = as_points(x, self.d, allow_empty=True)
        z = as_points(z, self.d, "z", allow_empty=True)
        if z.shape != x.shape:
            raise ValueError(f"z has shape {z.shape} but x has shape {x.shape}")
        t = as_times(t, x.shape[0])
        v = self.schedule.values(t)
        if np.any(np.asarray(v.beta) <= 0):
            raise ValueError(
                "t: the conditional path p_t(x|z) is a point mass where beta_t = 0 "
                "(t = 1); u_t(x|z) and grad log p_t(x|z) need t < 1"
            )
        return x, z, [np.reshape(q, (-1, 1)) for q in v]

    def conditional_sample(self, z, t, seed=None) -> np.ndarray:
        """x ~ p_t(x|z) = N(alpha_t z, beta_t^2 I) (eq. 15), shape (N, d)."""
        z = as_points(z, self.d, "z", allow_empty=True)
        t = as_times(t, z.shape[0])
        v = self.schedule.values(t)
        eps = as_generator(seed).standard_normal(z.shape)
        return np.reshape(v.alpha, (-1, 1)) * z + np.reshape(v.beta, (-1, 1)) * eps

    def conditional_velocity(self, x, t, z) -> np.ndarray:
        """u_t(x|z) = (dalpha - dbeta alpha / beta) z + (dbeta / beta) x (eq. 20), beta_t > 0."""
        x, z, (al, be, da, db, _) = self._cond_args(x, t, z)
        return (da - db * al / be) * z + (db / be) * x

    def conditional_score(self, x, t, z) -> np.ndarray:
        """grad log p_t(x|z) = -(x - alpha_t z) / beta_t^2 (eq. 40), beta_t > 0."""
        x, z, (al, be, _, _, _) = self._cond_args(x, t, z)
        return -(x - al * z) / (be * be)

    # ------------------------------------------------------------------ field objects
    # The field classes live in ``refcfg.guidance``, a layer above; it registers them here when it
    # is imported (``import refcfg`` imports it), so ``path.cfg(y, w)`` works while this module
    # imports nothing from guidance (``register_field_classes``).
    def field(self, y=None):
        """The exact field u_t(x|y) as a field object (``refcfg.guidance.ExactField``)."""
        return _field_class("field")(self, y)

    def cfg(self, y, w):
        """The CFG field w u(x|y) + (1 - w) u(x|null) as a field object
        (``refcfg.guidance.CFGField``)."""
        return _field_class("cfg")(self, y, w)

    def classifier_guided(self, y, w):
        """The classifier-guided field u(x) + w a_t grad log p_t(y|x) as a field object
        (``refcfg.guidance.ClassifierGuidedField``)."""
        return _field_class("classifier_guided")(self, y, w)


def path_hint(value) -> str:
    """How to build a GMMPath from ``value`` (a mixture or a problem name), for error messages."""
    if isinstance(value, (GMM, LabeledGMM)):
        return f"; wrap the {type(value).__name__}: refcfg.GMMPath(mixture, schedule)"
    if isinstance(value, str):
        return f"; for a named problem use refcfg.GMMPath(refcfg.problem({value!r}))"
    return ""


def as_path(path, name: str = "path"):
    """``path`` checked to be a ``GMMPath`` (TypeError naming ``name`` and the way to build one)."""
    if isinstance(path, GMMPath):
        return path
    raise TypeError(f"{name} must be a GMMPath, got {_describe(path)}{path_hint(path)}")


_FIELD_CLASSES: dict = {}


def register_field_classes(*, field, cfg, classifier_guided) -> None:
    """Set the classes that ``GMMPath.field``, ``.cfg`` and ``.classifier_guided`` build (called
    once by ``refcfg.guidance``, which defines them; paths sits below guidance and does not import
    it)."""
    _FIELD_CLASSES.update(field=field, cfg=cfg, classifier_guided=classifier_guided)


def _field_class(name: str):
    if name not in _FIELD_CLASSES:  # only when refcfg.paths is loaded without the refcfg package
        raise RuntimeError(
            f"GMMPath.{name} builds a refcfg.guidance field object: import refcfg.guidance first"
        )
    return _FIELD_CLASSES[name]
