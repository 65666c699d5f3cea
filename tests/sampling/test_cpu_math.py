"""The vectorisable exp and the counter-based normals of refcfg.sampling._cpu_math."""

import numpy as np
import pytest
from scipy import stats

from refcfg.sampling._cpu_math import exp_fast_array, normals_table

# Numba functions: compiled on first use (a few seconds on a fresh machine)
pytestmark = pytest.mark.slow


def _exp(x):
    out = np.empty_like(x)
    exp_fast_array(np.ascontiguousarray(x, dtype=np.float64), out)
    return out


def test_exp_within_2_ulp_of_numpy_on_wide_range():
    # oracle: np.exp (correctly rounded to <= 1 ulp); range [-708, 709] plus a dense [-5, 5] sample
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.uniform(-708, 709, 400_000),
            rng.uniform(-5, 5, 200_000),
            np.linspace(-1e-8, 1e-8, 101),
            [-708.0, 709.0, 0.0, -0.0],
        ]
    )
    ref = np.exp(x)
    ulp = np.abs(_exp(x) - ref) / np.spacing(ref)
    assert ulp.max() <= 2.0, ulp.max()


def test_exp_edges():
    x = np.array([-np.inf, -800.0, -708.5, np.inf, 710.0, np.nan, 0.0])
    out = _exp(x)
    assert out[0] == 0.0 and out[1] == 0.0 and out[2] == 0.0  # flushed below -708 (< 3.3e-308)
    assert out[3] == np.inf and out[4] == np.inf
    assert np.isnan(out[5]) and out[6] == 1.0


def test_normals_are_standard_and_independent():
    z = normals_table(12345, 20_000, 2, 3)  # (steps, n, d)
    flat = z.reshape(-1, 3)
    # KS against N(0, 1) per coordinate, p > 1e-3 (Bonferroni for 3 tests at ~3e-3)
    for j in range(3):
        assert stats.kstest(flat[:, j], "norm").pvalue > 1e-3
    # correlations between dims and between steps: |r| < 5 / sqrt(n) (n = 40000 and 20000)
    c = np.corrcoef(flat.T)
    assert np.abs(c - np.eye(3)).max() < 5 / np.sqrt(flat.shape[0])
    assert abs(np.corrcoef(z[0, :, 0], z[1, :, 0])[0, 1]) < 5 / np.sqrt(20_000)


def test_normals_are_a_pure_function_of_indices():
    a = normals_table(7, 50, 4, 2)
    b = normals_table(7, 80, 4, 2)  # more particles: the first 50 are unchanged
    assert np.array_equal(a, b[:, :50])
    c = normals_table(8, 50, 4, 2)
    assert not np.any(a == c)
