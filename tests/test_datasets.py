"""Real data: the digits loader, from_points (point masses / smoothing), fit (scikit-learn
GaussianMixture per class) and their validation."""

import sys

import numpy as np
import pytest

import refcfg
from refcfg import datasets, problems

pytest.importorskip("sklearn")


def _cloud(seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.standard_normal((30, 3)) + 4, rng.standard_normal((20, 3)) - 4])
    return X, np.repeat([0, 1], [30, 20])


def test_load_digits_scaling():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == datasets.DIGITS_RANGE[0] and X.max() == datasets.DIGITS_RANGE[1]
    # the affine map v / 8 - 1 of integer pixel values 0..16
    assert np.array_equal((X + 1) * 8, np.round((X + 1) * 8))
    assert np.array_equal(np.bincount(y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_from_points_point_masses():
    X, y = _cloud()
    L = problems.from_points(X, y)
    assert [g.K for g in L.classes] == [30, 20]
    assert all(np.all(g.point_mass) for g in L.classes)
    np.testing.assert_array_equal(L.class_gmm(1).means, X[y == 1])
    np.testing.assert_allclose(L.class_probs, [0.6, 0.4], rtol=1e-15)
    np.testing.assert_allclose(L.classes[0].weights, 1 / 30, rtol=1e-15)
    smooth = problems.from_points(X, y, cov=0.01)
    assert smooth.classes[0].cov_type == "isotropic" and np.all(smooth.classes[0].eigvals == 0.01)


def test_digits_problems():
    L = refcfg.problem("digits")
    assert L.d == 64 and L.n_classes == 10 and sum(g.K for g in L.classes) == 1797
    assert np.all(L.marginal.point_mass)
    fitted = problems.digits_gmm_fit()
    G = refcfg.problem("digits-gmm")
    assert [g.K for g in G.classes] == [10] * 10 and all(g.cov_type == "full" for g in G.classes)
    assert np.all(G.marginal.eigvals >= 0.999 * problems.DIGITS_GMM["reg_covar"])
    assert all(f.converged for f in fitted.classes)


def test_fit_log_likelihood_is_the_mixture_log_likelihood():
    """The reported log-likelihood (scikit-learn's score) equals refcfg's own log p(x_i | y_i) of the
    fitted LabeledGMM, averaged over the data (independent implementations), to 1e-10 relative."""
    X, y = _cloud()
    for kind in datasets.COVARIANCE_TYPES:
        res = problems.fit(X, y, components=3, covariance_type=kind, reg_covar=1e-6, seed=1)
        ours = np.concatenate([res.mixture.class_gmm(c).log_prob(X[y == c]) for c in (0, 1)])
        assert abs(ours.mean() - res.log_likelihood) <= 1e-10 * abs(res.log_likelihood), kind
        expect = {"spherical": "isotropic", "diag": "diag", "full": "full", "tied": "full"}[kind]
        assert res.mixture.classes[0].cov_type == expect
    again = problems.fit(X, y, components=3, covariance_type="tied", reg_covar=1e-6, seed=1)
    np.testing.assert_array_equal(again.mixture.marginal.means, res.mixture.marginal.means)
    # fewer points than components: one component per point
    small = problems.fit(X[:32], y[:32], components=5, covariance_type="diag")
    assert [g.K for g in small.mixture.classes] == [5, 2]


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda X, y: problems.from_points(X[:, 0], y), ValueError, r"X has shape \(50,\)"),
        (lambda X, y: problems.from_points(X[:0], y[:0]), ValueError, r"X has shape \(0, 3\)"),
        (lambda X, y: problems.from_points(X, y[:-1]), ValueError, r"labels has shape \(49,\)"),
        (
            lambda X, y: problems.from_points(X, y.astype(float)),
            TypeError,
            "labels must be an integer",
        ),
        (
            lambda X, y: problems.from_points(X, y - 1),
            ValueError,
            "labels must be class indices >= 0",
        ),
        (lambda X, y: problems.from_points(X, y * 2), ValueError, "class 1 has no point"),
        (
            lambda X, y: problems.from_points(np.where(X > 5, np.nan, X), y),
            ValueError,
            "X must be finite",
        ),
        (lambda X, y: problems.from_points(X, y, cov=-1.0), ValueError, "cov must be >= 0"),
        (lambda X, y: problems.fit(X, y, components=0), ValueError, "components must be >= 1"),
        (
            lambda X, y: problems.fit(X, y, covariance_type="ful"),
            ValueError,
            "covariance_type must be",
        ),
        (lambda X, y: problems.fit(X, y, reg_covar=0.0), ValueError, "reg_covar must be > 0"),
    ],
)
def test_bad_labeled_points(call, exc, match):
    X, y = _cloud()
    with pytest.raises(exc, match=match):
        call(X, y)


def test_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"refcfg\[data\]"):
        datasets.load_digits()
    X, y = _cloud()
    with pytest.raises(ImportError, match=r"refcfg\[data\]"):
        problems.fit(X, y)
