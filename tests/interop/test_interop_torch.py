"""refcfg.interop.torch: the exact predictions as an nn.Module, against the NumPy closed forms
(float64 <= 1e-12 relative to max(1, |ref|), float32 <= 1e-5), at interior times and both ends."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch, CPU build)")

import refcfg  # noqa: E402
from refcfg.interop.torch import ExactModule, attach_vjp  # noqa: E402

PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"), refcfg.schedule("linear"))
TIMES = [0.0, 1e-6, 0.05, 0.5, 0.95, 1.0 - 1e-6, 1.0]


def _reference(field, x, t, prediction):
    """Independent of the adapter: the field's NumPy closed forms; v = alpha eps - beta x0 with the
    linear schedule's alpha = t, beta = 1 - t written out here."""
    if prediction == "v":
        return t * field.eps(x, t) - (1.0 - t) * field.x0(x, t)
    return getattr(field, prediction)(x, t)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


@pytest.mark.parametrize("prediction", ["velocity", "eps", "x0", "score", "v"])
@pytest.mark.parametrize("which", ["cond", "cfg", "null"])
def test_predictions_match_exact_fields(prediction, which):
    field = {"cond": PATH.field(1), "cfg": PATH.cfg(0, 3.0), "null": PATH.field(None)}[which]
    mod = ExactModule(field, prediction)
    rng = np.random.default_rng(3)
    for t in TIMES:
        if prediction == "score" and t == 1.0:
            continue  # the data law's score: defined, tested below separately at t = 1
        x = rng.normal(size=(64, 2)) * 1.5
        ref = _reference(field, x, t, prediction)
        out64 = mod(torch.from_numpy(x), t)
        assert out64.dtype == torch.float64 and out64.shape == (64, 2)
        assert _rel(out64.numpy(), ref) <= 1e-12, (prediction, t)
        out32 = mod(torch.from_numpy(x).float(), torch.tensor(t))
        assert out32.dtype == torch.float32
        assert _rel(out32.numpy().astype(np.float64), ref) <= 1e-5, (prediction, t)


def test_score_at_t1_and_per_particle_times_and_labels():
    mod = ExactModule(PATH, "score")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 2))
    t = rng.uniform(0, 1, 40)
    t[:3] = [0.0, 1.0, 0.5]
    y = np.where(np.arange(40) % 3 == 0, refcfg.NULL, np.arange(40) % 2)
    got = mod(torch.from_numpy(x), torch.from_numpy(t), y=torch.from_numpy(y), w=2.0)
    ref = PATH.cfg(y, 2.0).score(x, t)
    assert _rel(got.numpy(), ref) <= 1e-12


def test_numpy_backend_runs_any_field():
    mod = ExactModule(PATH.cfg(0, 2.0), "eps", backend="numpy")
    x = np.random.default_rng(5).normal(size=(10, 2))
    assert _rel(mod(torch.from_numpy(x), 0.3).numpy(), PATH.cfg(0, 2.0).eps(x, 0.3)) <= 1e-15


def test_gradients_flow_to_x():
    """The backward (tested in depth in test_interop_jacobian.py) against an independent oracle:
    central finite differences (h = 1e-5) of sum(u) of the CFG field at t = 0.5, <= 1e-8."""
    field = PATH.cfg(0, 3.0)
    mod = ExactModule(field, "velocity")
    x0 = np.random.default_rng(6).normal(size=(4, 2))
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    mod(x, 0.5).sum().backward()
    h = 1e-5
    fd = np.stack(
        [
            np.sum(field.velocity(x0 + h * e, 0.5) - field.velocity(x0 - h * e, 0.5), axis=1)
            / (2 * h)
            for e in np.eye(2)
        ],
        axis=1,
    )
    assert np.max(np.abs(x.grad.numpy() - fd)) <= 1e-8 * max(1.0, np.max(np.abs(fd)))
    with torch.no_grad():
        assert not mod(x, 0.5).requires_grad


def test_strict_times_and_the_opt_in_clamp():
    x = torch.zeros(3, 2, dtype=torch.float64)
    strict = ExactModule(PATH.field(0))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\].*clamp"):
        strict(x, 1.00027)
    clamped = ExactModule(PATH.field(0), clamp=1e-3)
    assert torch.equal(clamped(x, 1.00027), strict(x, 1.0))
    assert torch.equal(clamped(x, -5e-4), strict(x, 0.0))
    with pytest.raises(ValueError, match="t must lie"):
        clamped(x, 1.01)
    with pytest.raises(ValueError, match="clamp"):
        ExactModule(PATH.field(0), clamp=0.6)


def test_bad_inputs():
    mod = ExactModule(PATH.field(0))
    with pytest.raises(ValueError, match="backend must be one of"):
        ExactModule(PATH, backend="gpu")  # at construction, not at the first call
    with pytest.raises(ValueError, match="prediction"):
        ExactModule(PATH, "noise")
    with pytest.raises(TypeError, match="torch.Tensor"):
        mod(np.zeros((2, 2)), 0.5)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        mod(torch.zeros(2, 3, dtype=torch.float64), 0.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        mod(torch.zeros(2, 2, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match="device meta"):
        mod(torch.zeros(2, 2, device="meta"), 0.5)


def test_cuda_path_refuses_without_a_gpu(monkeypatch):
    """No GPU here: the CUDA branch must raise CudaUnavailableError (never fall back to the CPU)."""
    from refcfg.interop import torch as it
    from refcfg.sampling import cuda

    if cuda.available():
        pytest.skip("a CUDA device (or the simulator) is available: the error path does not apply")
    with pytest.raises(cuda.CudaUnavailableError):
        it._cuda_predict(PATH.field(0), np.zeros((2, 2)), 0.5, "eps", None)


def test_adaptive_solver_with_clamp_reaches_the_data_law():
    """An adaptive RK45 (scipy solve_ivp) whose last steps run past t = 1 (as torchdiffeq's dopri5
    does): strict, the module refuses; with clamp=1e-3 the solve runs and its dense output at t = 1
    matches refcfg's own RK4 (400 steps) to 1e-6."""
    from scipy.integrate import solve_ivp

    x0 = np.random.default_rng(6).normal(size=(8, 2))

    def solve(mod):
        def rhs(t, z):
            return mod(torch.from_numpy(z.reshape(8, 2)), t).numpy().ravel()

        return solve_ivp(
            rhs, (0.0, 1.0 + 5e-4), x0.ravel(), rtol=1e-10, atol=1e-10, dense_output=True
        )

    with pytest.raises(ValueError, match="clamp"):
        solve(ExactModule(PATH.field(0), "velocity"))
    sol = solve(ExactModule(PATH.field(0), "velocity", clamp=1e-3))
    assert sol.success and sol.t[-1] > 1.0
    ref = refcfg.sample(PATH.field(0), 8, sampler="rk4", steps=400, x_init=x0, backend="numpy")
    assert np.max(np.abs(sol.sol(1.0).reshape(8, 2) - ref)) < 1e-6


_SIM_SCRIPT = r"""
import json, numpy as np, refcfg
from refcfg.interop.torch import _cuda_predict
path = refcfg.GMMPath(refcfg.problem("two-class-2d"), refcfg.schedule("linear"))
field = path.cfg(0, 3.0)
x = np.random.default_rng(0).normal(size=(4, 2))
out = {}
for p in ["velocity", "score", "eps", "x0", "v"]:
    for t in [0.0, 0.5, 1.0]:
        if p == "score" and t == 1.0:
            continue
        ref = ((t * field.eps(x, t) - (1 - t) * field.x0(x, t)) if p == "v"
               else getattr(field, p)(x, t))
        got = _cuda_predict(field, x, t, p, None)
        out[f"{p}@{t}"] = float(np.max(np.abs(got - ref)) / max(1.0, np.max(np.abs(ref))))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_cuda_branch_on_the_simulator():
    """The CUDA branch's arithmetic (velocity and score from the CUDA kernels, x0/eps/v from them)
    on numba's CUDA simulator, in a subprocess (the simulator must be on before numba's import):
    <= 1e-12 relative to the NumPy closed forms. Not a GPU run."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    res = subprocess.run(
        [sys.executable, "-c", _SIM_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]
    errs = json.loads(res.stdout.strip().splitlines()[-1])
    assert len(errs) == 14 and max(errs.values()) <= 1e-12, errs


def test_image_shaped_tensors_keep_their_shape():
    """(N, *shape) with prod(shape) = d: the result has the input's shape and equals the (N, d)
    evaluation bit for bit; a declared shape is checked against d and restricts the input."""
    mod = ExactModule(PATH.cfg(0, 2.0), "eps")
    x = torch.randn(6, 2, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    out = mod(x, 0.3)
    assert out.shape == x.shape
    assert torch.equal(out.reshape(6, 2), mod(x.reshape(6, 2), 0.3))
    declared = ExactModule(PATH.cfg(0, 2.0), "eps", shape=(1, 2))
    assert torch.equal(declared(x.reshape(6, 1, 2), 0.3).reshape(6, 2), out.reshape(6, 2))
    with pytest.raises(ValueError, match=r"\(N, 2\) or \(N, 1, 2\)"):
        declared(x, 0.3)
    with pytest.raises(ValueError, match=r"shape \(2, 2\) has 4 entries but the field has d = 2"):
        ExactModule(PATH, shape=(2, 2))


@pytest.mark.parametrize("adapter", ["module", "attach_vjp"])
def test_second_derivatives_raise_instead_of_dropping_the_hessian(adapter):
    """The backward is once-differentiable: differentiating the gradient again (create_graph=True)
    raises; before, g had no graph and (g.sum() + (x**2).sum()).backward() gave x.grad = 2x, the
    Hessian term silently lost."""
    x = torch.full((3, 2), 0.3, dtype=torch.float64, requires_grad=True)
    if adapter == "module":
        u = ExactModule(PATH.field(0), "velocity")(x, 0.5)
    else:
        u = attach_vjp(x, x.detach() * 2.0, lambda g: 2.0 * g)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (g1,) = torch.autograd.grad(u.sum(), x, retain_graph=True)
    assert torch.equal(g.detach(), g1)  # the first derivative itself is unchanged
    with pytest.raises(RuntimeError, match="second derivatives are not available"):
        (g.sum() + (x**2).sum()).backward()
