"""Fields of the Numba kernels against the NumPy core (GMMPath) and independent oracles."""

import sys
from pathlib import Path

import numpy as np
import pytest

import refcfg
from refcfg.sampling import cpu
from refcfg.sampling.lowering import NotLowerable, lower

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _oracles import PathOracle, fd_jacobian, random_gmm_params, schedule_formula


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def random_path(cov_type, K=6, d=3, seed=0, schedule="linear"):
    rng = np.random.default_rng(seed)
    classes = []
    for c in range(3):
        w, mu, covs = random_gmm_params(rng, K // 3 + (c == 0), d, cov_type)
        classes.append(refcfg.GMM(w, mu, covs))
    return refcfg.GMMPath(refcfg.LabeledGMM(classes, [0.5, 0.3, 0.2]), schedule)


TIMES = [0.0, 0.05, 0.5, 0.93, 1.0]


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", ["isotropic", "diag", "full"])
@pytest.mark.parametrize("schedule", ["linear", "cosine", "sqrt"])
def test_cfg_velocity_score_match_core(cov_type, schedule):
    # tolerance 1e-12 relative (max-normalised) against GMMPath.cfg_velocity / cfg_score
    path = random_path(cov_type, schedule=schedule)
    rng = np.random.default_rng(1)
    x = 2.5 * rng.standard_normal((200, path.d))
    y = rng.integers(-1, 3, 200)  # per-particle labels, NULL included
    for w in (0.0, 1.0, 3.5):
        f = refcfg.CFGField(path, y, w)
        for t in TIMES:
            assert rel(cpu.velocity(f, x, t), path.cfg_velocity(x, t, y, w)) <= 1e-12
            assert rel(cpu.score(f, x, t), path.cfg_score(x, t, y, w)) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("d", [3, 24])
def test_isotropic_split_and_matrix_product_forms_match_core(d):
    # isotropic rows with beta >= alpha use the split logits (d = 3: in loops; d = 24 >= MM_MIN_D:
    # BLAS products and the matrix-product form of pass 2), rows with alpha > beta the direct form.
    # Times on both sides of alpha = beta (t = 1/2, linear schedule) and the endpoints; 1e-12
    # relative against the NumPy core, which computes the field in its own (direct) form
    from refcfg.sampling._cpu_kernels import MM_MIN_D

    assert 3 < MM_MIN_D <= 24
    path = random_path("isotropic", K=9, d=d, seed=3)
    rng = np.random.default_rng(4)
    x = 2.5 * rng.standard_normal((300, d)) + 1.5
    for w in (0.0, 1.0, 3.5):
        f = refcfg.CFGField(path, 1, w)
        for t in (0.0, 1e-9, 0.3, 0.5 - 1e-12, 0.5, 0.5 + 1e-12, 0.7, 1 - 1e-9, 1.0):
            assert rel(cpu.velocity(f, x, t), path.cfg_velocity(x, t, 1, w)) <= 1e-12
            assert rel(cpu.score(f, x, t), path.cfg_score(x, t, 1, w)) <= 1e-12
    # |x| ~ 1e6 near t = 0: the Mahalanobis terms are ~1e12; the split form keeps the class
    # information (the direct form lost it to rounding: 7.5e-10 relative at t = 1e-6, d = 2)
    xb = 1e6 * rng.standard_normal((100, d))
    f = refcfg.CFGField(path, 1, 3.0)
    for t in (0.0, 1e-9, 1e-6, 1e-3):
        assert rel(cpu.velocity(f, xb, t), path.cfg_velocity(xb, t, 1, 3.0)) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", ["isotropic", "diag", "full"])
@pytest.mark.parametrize("d", [2, 16])
def test_large_x_near_t0_keeps_the_class_information(cov_type, d):
    # |x| ~ 1e6: the Mahalanobis terms are ~1e12 and differ between components by O(alpha |x|).
    # Where beta >= alpha the kernels take the logits in the split form of the NumPy core (the
    # direct form gave 1e-9 .. 2e-8 relative here for diagonal and full covariances); 1e-12
    # relative at one time for all particles and at per-particle times (decided lane by lane)
    path = random_path(cov_type, K=9, d=d, seed=3)
    rng = np.random.default_rng(4)
    xb = 1e6 * rng.standard_normal((100, d))
    f = refcfg.CFGField(path, 1, 3.0)
    for t in (0.0, 1e-9, 1e-6, 1e-3, 0.5, 1.0):
        assert rel(cpu.velocity(f, xb, t), path.cfg_velocity(xb, t, 1, 3.0)) <= 1e-12
    t = rng.choice([0.0, 1e-9, 1e-6, 0.7, 1.0], 100)
    assert rel(cpu.velocity(f, xb, t), path.cfg_velocity(xb, t, 1, 3.0)) <= 1e-12
    assert rel(cpu.score(f, xb, t), path.cfg_score(xb, t, 1, 3.0)) <= 1e-12


@pytest.mark.slow
def test_full_covariances_in_component_tiles_match_core():
    # K d P 8 bytes beyond TILE_FROM: pass 1 runs in tiles of Kt components (9 x 32 + 13 here);
    # pass 2 uses the M form (per-time tables of M_k = Q_k diag(gain_k) Q_k^T) on rows with
    # beta >= alpha at one time for all particles, else computes each tile's eigen-coordinates
    # again (alpha > beta, per-particle times). 1e-12 relative against the NumPy core at one time
    # for all particles (interior and endpoints, |x| ~ 1e6 near t = 0) and at per-particle times,
    # and the fused Heun loop against the reference integrator (both forms, stage by stage)
    from refcfg.sampling import reference
    from refcfg.sampling._cpu_kernels import TILE_BYTES, TILE_FROM

    K, d = 300, 16
    P = cpu._lanes(lower(random_path("full", K=K, d=d, seed=6), None).comp)
    Kt = TILE_BYTES // (8 * d * P)
    assert 8 * K * d * P > TILE_FROM and 1 < Kt < K and K % Kt != 0
    low = lower(refcfg.CFGField(random_path("full", K=K, d=d, seed=6), 2, 2.5), None)
    tab = low.tables(np.array([0.3, 0.7]), "velocity")
    tabs = cpu._tables(low, tab, 2000)
    assert tabs.M.shape == (2, d * d, low.K) and tabs.b.shape == (2, d, low.K)
    assert cpu._tables(low, tab, 2000, want_div=True).M.size == 0
    assert cpu._tables(low, tab, 2000, one_row=False).M.size == 0  # rows per particle
    assert cpu._tables(low, tab, 200).M.size == 0  # few particles: coordinates again
    path = random_path("full", K=K, d=d, seed=6)
    rng = np.random.default_rng(7)
    x = 1.5 * rng.standard_normal((cpu._MFORM_MIN_N + 30, d))
    f = refcfg.CFGField(path, 2, 2.5)
    for t in (0.0, 1e-9, 0.3, 0.5, 0.9, 1 - 1e-9, 1.0):
        assert rel(cpu.velocity(f, x, t), path.cfg_velocity(x, t, 2, 2.5)) <= 1e-12
        assert rel(cpu.score(f, x, t), path.cfg_score(x, t, 2, 2.5)) <= 1e-12
    t = rng.choice([0.0, 0.2, 0.7, 1.0], len(x))
    assert rel(cpu.velocity(f, x, t), path.cfg_velocity(x, t, 2, 2.5)) <= 1e-12
    for t in (0.3, 0.8):  # fewer particles than the M form needs: coordinates again
        assert rel(cpu.velocity(f, x[:200], t), path.cfg_velocity(x[:200], t, 2, 2.5)) <= 1e-12
    xb = 1e6 * rng.standard_normal((cpu._MFORM_MIN_N, d))
    for t in (0.0, 1e-9, 1e-6):
        assert rel(cpu.velocity(f, xb, t), path.cfg_velocity(xb, t, 2, 2.5)) <= 1e-12
    x0 = rng.standard_normal((cpu._MFORM_MIN_N, d))
    ts = np.linspace(0.0, 1.0, 5)
    a = cpu.integrate(f, x0, ts, "heun")
    b = reference.integrate(f, x0, ts, "heun")
    assert rel(a, b) <= 1e-12


@pytest.mark.slow
def test_points_are_read_without_a_copy_and_left_unchanged():
    # float64 points go to the kernel as they are (no copy); a read-only array works and stays as
    # it was; integer points are converted
    path = random_path("full")
    f = refcfg.CFGField(path, 1, 2.0)
    x = np.random.default_rng(8).standard_normal((70, path.d))
    keep = x.copy()
    x.flags.writeable = False
    assert rel(cpu.velocity(f, x, 0.3), path.cfg_velocity(keep, 0.3, 1, 2.0)) <= 1e-12
    assert np.array_equal(x, keep)
    xi = np.arange(6 * path.d).reshape(6, path.d) % 3 - 1
    assert rel(cpu.velocity(f, xi, 0.3), path.cfg_velocity(xi.astype(float), 0.3, 1, 2.0)) <= 1e-12


@pytest.mark.slow
def test_results_do_not_depend_on_the_task_split(monkeypatch):
    # the prange tasks run contiguous ranges of blocks with one scratch each: the split changes
    # nothing in a particle's arithmetic (bitwise equal)
    path = random_path("full", K=9, d=4)
    x = np.random.default_rng(5).standard_normal((1000, 4))
    f = refcfg.CFGField(path, 2, 2.0)
    out = []
    for tasks in (1, 3, 16):
        monkeypatch.setattr(cpu, "TASKS_PER_THREAD", tasks)
        out.append(
            (
                cpu.velocity(f, x, 0.4),
                refcfg.sample(path, 130, "heun", steps=5, seed=1, y=2, w=2.0, backend="cpu"),
            )
        )
    for v, smp in out[1:]:
        assert np.array_equal(v, out[0][0]) and np.array_equal(smp, out[0][1])


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", ["isotropic", "full"])
def test_blocks_with_one_label_or_several_and_the_lane_count(cov_type, monkeypatch):
    # the softmax sums a block's groups without masks when all its lanes have the same ranges (one
    # label for the block) and with per-lane masks otherwise: one label for the first 600
    # particles, then mixed labels with NULL, and one label for all (shared groups). 1e-12
    # relative against the core at interior times and the endpoints; the lane count (64 or 256
    # particles per evaluation) changes no particle's arithmetic (bitwise equal), sampling included
    path = random_path(cov_type, K=6, d=2, seed=9)
    rng = np.random.default_rng(10)
    x = 2.0 * rng.standard_normal((1000, 2))
    y = np.concatenate([np.full(600, 1), rng.integers(-1, 3, 400)])
    for lab in (y, 2):
        f = refcfg.CFGField(path, lab, 2.5)
        for t in (0.0, 0.3, 0.5, 0.8, 1.0):
            ref = path.cfg_velocity(x, t, lab, 2.5)
            out = []
            for P in (64, 256):
                monkeypatch.setattr(cpu, "_lanes", lambda comp, P=P: P)
                out.append(cpu.velocity(f, x, t))
                assert rel(out[-1], ref) <= 1e-12
            assert np.array_equal(out[0], out[1])
    smp = []
    for P in (64, 256):
        monkeypatch.setattr(cpu, "_lanes", lambda comp, P=P: P)
        smp.append(
            refcfg.sample(path, 700, "heun", steps=4, seed=3, y=y[:700], w=2.0, backend="cpu")
        )
    assert np.array_equal(smp[0], smp[1])


@pytest.mark.slow
def test_per_particle_times_and_weights():
    path = random_path("full")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((150, path.d))
    t = rng.choice([0.1, 0.4, 0.9], 150)
    w = rng.uniform(0, 4, 150)
    f = refcfg.CFGField(path, 1, w)
    ref = np.concatenate([path.cfg_velocity(x[i : i + 1], t[i], 1, w[i]) for i in range(150)])
    assert rel(cpu.velocity(f, x, t), ref) <= 1e-12


@pytest.mark.slow
def test_classifier_guided_and_guided_pair_of_different_laws():
    p1 = random_path("full", seed=3)
    p2 = random_path("diag", seed=4)
    x = np.random.default_rng(5).standard_normal((100, 3))
    f = refcfg.ClassifierGuidedField(p1, 2, 2.0)
    g = refcfg.guided(refcfg.ExactField(p1, 0), refcfg.ExactField(p2, None), 1.7)
    for t in (0.2, 0.8):
        assert rel(cpu.velocity(f, x, t), p1.classifier_guided_velocity(x, t, 2, 2.0)) <= 1e-12
        ref = 1.7 * p1.velocity(x, t, 0) - 0.7 * p2.velocity(x, t)
        assert rel(cpu.velocity(g, x, t), ref) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("name", ["two-class-2d", "tree"])
def test_velocity_against_gaussian_conditioning_oracle(name):
    # oracle: tests/_oracles.PathOracle (scipy densities + np.linalg.solve), 1e-12 relative;
    # "tree" (2032 components, tiny covariances) is where cancellation would show
    path = refcfg.GMMPath(refcfg.problem(name))
    m = path.mixture.marginal
    x = 2.0 * np.random.default_rng(6).standard_normal((20, 2))
    for t in (0.3, 0.7, 1.0):
        o = PathOracle(m.weights, m.means, m.covs, schedule_formula("linear", t))
        assert rel(cpu.velocity(path.field(None), x, t), o.velocity(x)) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", ["isotropic", "full"])
def test_divergence_matches_core_and_finite_differences(cov_type):
    path = random_path(cov_type)
    x = 1.5 * np.random.default_rng(7).standard_normal((60, path.d))
    f = refcfg.CFGField(path, 0, 2.5)
    for t in (0.0, 0.5, 1.0):
        div = cpu.divergence(f, x, t)
        # core: same formula, different association (cancellation in s.v - score.u): 1e-10
        assert rel(div, f.divergence(x, t)) <= 1e-10
        # independent: trace of the 5-point finite-difference Jacobian of the kernel velocity
        J = fd_jacobian(lambda z: cpu.velocity(f, z, t), x, h=1e-4)
        assert rel(div, np.trace(J, axis1=1, axis2=2)) <= 1e-6


@pytest.mark.slow
def test_particle_far_from_its_class_uses_its_own_softmax():
    # logit gap >> 600 between the class's components and the best one: the shared exponentials
    # would underflow; the kernel must fall back and still match the core to 1e-12
    g0 = refcfg.GMM([1.0], [[0.0, 0.0]], [1e-3])
    g1 = refcfg.GMM([1.0], [[20.0, 0.0]], [1e-3])
    path = refcfg.GMMPath(refcfg.LabeledGMM([g0, g1], [0.5, 0.5]))
    x = np.array([[0.1, 0.0], [19.9, 0.1]])
    for t in (0.9, 1.0):
        ref = path.velocity(x, t, 1)
        assert np.all(np.isfinite(ref))
        assert rel(cpu.velocity(path.field(1), x, t), ref) <= 1e-12
        f = refcfg.CFGField(path, 1, 3.0)
        assert rel(cpu.velocity(f, x, t), path.cfg_velocity(x, t, 1, 3.0)) <= 1e-12


def test_lowering_rejects_other_fields_and_bad_sizes():
    path = random_path("isotropic")

    class UserField:
        d = 3

        def velocity(self, x, t):
            return -x

    with pytest.raises(NotLowerable):
        lower(UserField())
    with pytest.raises(TypeError, match="backend='cpu' runs only fields that lower"):
        cpu.velocity(UserField(), np.zeros((2, 3)), 0.5)
    with pytest.raises(ValueError, match="per-particle"):
        lower(refcfg.CFGField(path, np.zeros(5, dtype=int), 2.0), n=4)
    with pytest.raises(ValueError, match=r"x has shape \(2, 2\)"):
        cpu.velocity(path.field(None), np.zeros((2, 2)), 0.5)
    with pytest.raises(ValueError, match="t must"):
        cpu.velocity(path.field(None), np.zeros((2, 3)), 1.5)
