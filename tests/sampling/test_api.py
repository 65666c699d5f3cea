"""refcfg.sample: backends agree, options work, bad input names the argument."""

import numpy as np
import pytest

import refcfg
from refcfg.sampling import api, cpu, reference
from refcfg.sampling.api import (
    AUTO_EVAL_OVERHEAD,
    AUTO_NUMPY_WORK,
    auto_work,
    resolve_backend,
    sigma_values,
)

PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"))


class UserField:
    """A user field refcfg cannot lower (it wraps the exact unconditional field by duck typing)."""

    d = 2
    schedule = PATH.schedule

    def velocity(self, x, t):
        return PATH.velocity(x, t)

    def score(self, x, t):
        return PATH.score(x, t)


@pytest.mark.slow
def test_auto_backend_rule():
    assert resolve_backend("auto", PATH.cfg(0, 2.0)) == "cpu"
    assert resolve_backend("auto", UserField()) == "numpy"
    # by the size of the job: NumPy up to AUTO_NUMPY_WORK inclusive, the kernels above
    f = PATH.cfg(0, 2.0)
    assert resolve_backend("auto", f, work=AUTO_NUMPY_WORK) == "numpy"
    assert resolve_backend("auto", f, work=np.nextafter(AUTO_NUMPY_WORK, np.inf)) == "cpu"
    assert resolve_backend("auto", UserField(), work=10 * AUTO_NUMPY_WORK) == "numpy"
    # a named backend ignores the size
    assert resolve_backend("cpu", f, work=1.0) == "cpu"
    assert resolve_backend("numpy", f, work=10 * AUTO_NUMPY_WORK) == "numpy"
    with pytest.raises(TypeError, match="backend='cpu' runs only fields that lower"):
        resolve_backend("cpu", UserField())
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("gpu", PATH.cfg(0, 2.0))


def test_auto_work_counts_particle_component_coordinates_per_evaluation():
    # two-class-2d: K = 4 components (both classes' tables, one path), d = 2; Heun evaluates the
    # field twice per step, RK4 four times, Euler-Maruyama twice (velocity and score); each
    # evaluation adds the fixed overhead; an x_init of another width sets d
    K = PATH.mixture.marginal.K
    assert K == 4
    c = AUTO_EVAL_OVERHEAD
    assert auto_work(PATH.cfg(0, 3.0), 1000, 100, "heun") == 100 * 2 * (1000 * K * 2 + c)
    assert auto_work(PATH.cfg(0, 3.0), 10, 7, "rk4") == 7 * 4 * (10 * K * 2 + c)
    assert auto_work(PATH.cfg(0, 3.0), 10, 7, "euler") == 7 * 1 * (10 * K * 2 + c)
    assert auto_work(PATH.cfg(0, 3.0), 10, 7, "euler_maruyama", d=5) == 7 * 2 * (10 * K * 5 + c)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["heun", "euler_maruyama"])
def test_auto_runs_the_backend_its_rule_names(sampler, monkeypatch):
    # the README example's size is below the threshold: auto gives NumPy's result bit for bit
    # (the SDE with NumPy's step-by-step noise); with the threshold lowered under the job's size,
    # the kernels' result bit for bit
    f = PATH.cfg(0, 3.0)
    kw = dict(steps=20, seed=3)
    if sampler == "euler_maruyama":
        kw["sigma"] = 0.5
    assert auto_work(f, 1000, 100, "heun") <= AUTO_NUMPY_WORK
    for be, threshold in (("numpy", AUTO_NUMPY_WORK), ("cpu", 0.0)):
        monkeypatch.setattr(api, "AUTO_NUMPY_WORK", threshold)
        got = refcfg.sample(f, 50, sampler, **kw)
        assert np.array_equal(got, refcfg.sample(f, 50, sampler, backend=be, **kw)), be


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["euler", "heun", "euler_maruyama"])
def test_cpu_equals_numpy_on_identical_noise(sampler):
    # same x_init and same noise: the two backends differ by rounding only (<= 1e-10)
    n, steps = 300, 25
    y = np.arange(n) % 3 - 1  # per-particle labels with NULL entries
    w = np.linspace(0.5, 3.0, n)  # per-particle weights
    noise = np.random.default_rng(0).standard_normal((steps, n, 2))
    kw = dict(steps=steps, seed=4, y=y, w=w)
    if sampler == "euler_maruyama":
        kw.update(sigma="ddpm", noise=noise)
    a = refcfg.sample(PATH, n, sampler, backend="cpu", **kw)
    b = refcfg.sample(PATH, n, sampler, backend="numpy", **kw)
    assert np.abs(a - b).max() <= 1e-10


@pytest.mark.slow
def test_trajectories_match_reference_and_time_grid():
    ts = np.array([0.0, 0.1, 0.3, 0.35, 0.8, 1.0])
    f = PATH.cfg(1, 2.0)
    x0 = np.random.default_rng(1).standard_normal((40, 2))
    a, tra, tta = refcfg.sample(
        f,
        40,
        "heun",
        t_grid=ts,
        x_init=x0,
        backend="cpu",
        return_trajectory=True,
        trajectory_every=2,
    )
    b, trb, ttb = reference.integrate(f, x0, ts, "heun", trajectory_every=2)
    assert np.array_equal(tta, ttb) and np.array_equal(tta, ts[[0, 2, 4, 5]])
    assert tra.shape == (4, 40, 2) and np.abs(tra - trb).max() <= 1e-12
    assert np.array_equal(tra[0], x0) and np.array_equal(tra[-1], a)


def test_user_field_runs_on_numpy_backend():
    x = refcfg.sample(UserField(), 100, "heun", steps=10, seed=0)
    assert x.shape == (100, 2) and np.all(np.isfinite(x))


def test_ddpm_sigma_is_infinite_only_where_alpha_vanishes():
    ts = np.linspace(0, 1, 11)
    s = sigma_values("ddpm", ts, PATH.schedule)
    assert s[0] == np.inf and np.all(np.isfinite(s[1:]))
    # sigma^2 = 2 a_t with a_t = beta^2 dalpha/alpha - beta dbeta = (1 - t)^2 / t + (1 - t) (linear)
    t = ts[1:-1]
    assert np.allclose(s[1:] ** 2, 2 * ((1 - t) ** 2 / t + (1 - t)), rtol=1e-14)


def test_bad_inputs_name_the_argument():
    f = PATH.cfg(0, 2.0)
    with pytest.raises(ValueError, match="sampler must be one of"):
        refcfg.sample(f, 10, "rk5")
    with pytest.raises(ValueError, match="sigma is required"):
        refcfg.sample(f, 10, "euler_maruyama")
    with pytest.raises(ValueError, match="sigma is only used"):
        refcfg.sample(f, 10, "heun", sigma=1.0)
    with pytest.raises(ValueError, match="noise has shape"):
        refcfg.sample(f, 10, "euler_maruyama", steps=5, sigma=1.0, noise=np.zeros((4, 10, 2)))
    with pytest.raises(ValueError, match="w needs a label"):
        refcfg.sample(PATH, 10, w=2.0)
    with pytest.raises(TypeError, match="y= and w= need"):
        refcfg.sample(UserField(), 10, y=1)
    with pytest.raises(ValueError, match="dtype='float32' is only supported by backend='cuda'"):
        refcfg.sample(f, 10, dtype="float32", backend="cpu")
    with pytest.raises(ValueError, match="x_init has shape"):
        refcfg.sample(f, 10, x_init=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="n = 10 particles"):
        refcfg.sample(PATH, 10, y=np.zeros(7, dtype=int), w=2.0, backend="cpu")
    with pytest.raises(ValueError, match="sigma must be finite"):
        refcfg.sample(f, 10, "euler_maruyama", sigma=-1.0)


def test_cuda_backend_unavailable_is_a_clear_error():
    from refcfg.sampling import cuda

    if cuda.available():
        pytest.skip("a CUDA device (or the simulator) is available here")
    with pytest.raises(RuntimeError, match='backend="cuda" is unavailable'):
        refcfg.sample(PATH.cfg(0, 2.0), 10, backend="cuda")


@pytest.mark.slow
def test_cpu_noise_helper_reproduces_kernel_noise():
    # cpu.normals gives the normals the kernel draws: feeding them back as noise= gives the same bits
    from refcfg.sampling.api import time_grid

    f = PATH.cfg(0, 2.0)
    x0 = np.random.default_rng(2).standard_normal((30, 2))
    ts = time_grid(8)
    sig = np.full(8, 0.8)
    a = cpu.integrate(f, x0, ts, "euler_maruyama", sig, seed=77)
    b = cpu.integrate(f, x0, ts, "euler_maruyama", sig, noise=cpu.normals(77, 30, 8, 2))
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_nonlinear_rule_inputs_follow_the_backend_choice(monkeypatch):
    # a nonlinear rule runs on NumPy; its exact input fields go to the CPU kernels only where the
    # "auto" rule would run a field of the job's size there (never for backend="numpy")
    import refcfg
    from refcfg.guidance import make
    from refcfg.sampling import api, cpu

    calls = []
    real = cpu.velocity

    def counting(field, x, t):
        calls.append(x.shape[0])
        return real(field, x, t)

    monkeypatch.setattr(cpu, "velocity", counting)
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
    rule = make("rescale", path, 0, 2.0)
    for backend in ("numpy", "auto"):  # 50 particles x 2 Heun steps: far below the threshold
        refcfg.sample(rule, 50, "heun", steps=2, seed=0, backend=backend)
    assert calls == []
    n = 200
    assert api.auto_work(rule, n, 2, "heun", 2) <= api.AUTO_NUMPY_WORK  # stays small: on NumPy
    big = int(api.AUTO_NUMPY_WORK / (2 * 2 * 2 * api.field_size(rule)[0])) + 10
    assert api.auto_work(rule, big, 2, "heun", 2) > api.AUTO_NUMPY_WORK
    refcfg.sample(rule, big, "heun", steps=2, seed=0, backend="numpy")
    assert calls == []
    refcfg.sample(rule, big, "heun", steps=2, seed=0, backend="auto")
    assert calls and all(c == big for c in calls)  # each input on the kernels, all particles
    assert api.inputs_on_kernels()  # outside sample: direct calls use the kernels
