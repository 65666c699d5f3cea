"""refcfg.interop._jacobian and the torch backward: the closed-form Jacobian of the mixture field
against central finite differences of the field itself (float64, relative error <= 1e-6), its trace
against refcfg's exact divergence (<= 1e-12 relative), at interior times and at t = 0 and 1, for
isotropic, diagonal and full covariances, per-row labels and CFG; the other predictions through
their linear conversions; torch.autograd.gradcheck in float64 and the float32 rounding."""

import numpy as np
import pytest

import refcfg
from refcfg.interop._jacobian import prediction_vjp, velocity_jacobian, velocity_vjp

torch = pytest.importorskip("torch", reason="torch not installed")

from refcfg.interop.torch import ExactModule  # noqa: E402

TIMES = [0.0, 0.1, 0.5, 0.9, 1.0]


def _paths():
    rng = np.random.default_rng(0)
    d = 3
    A = rng.normal(size=(2, d, d))
    full = refcfg.GMM(
        [0.3, 0.7], rng.normal(size=(2, d)), np.einsum("kij,klj->kil", A, A) + 0.2 * np.eye(d)
    )
    diag = refcfg.GMM([0.5, 0.25, 0.25], rng.normal(size=(3, d)), rng.uniform(0.1, 1.0, (3, d)))
    mix = refcfg.LabeledGMM([full, diag], [0.4, 0.6])
    return {
        "two-class-2d": refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear"),
        "full+diag linear": refcfg.GMMPath(mix, "linear"),
        "full+diag cosine": refcfg.GMMPath(mix, "cosine"),
    }


PATHS = _paths()


def _fd_jacobian(field, x, t, h=1e-5):
    d = x.shape[1]
    cols = [
        (field.velocity(x + h * e, t) - field.velocity(x - h * e, t)) / (2 * h) for e in np.eye(d)
    ]
    return np.stack(cols, axis=2)


def _fields(path):
    y = np.array([0, 1, refcfg.NULL, 1, 0, 0])
    return {
        "null": path.field(None),
        "class 1": path.field(1),
        "cfg w=3": path.cfg(0, 3.0),
        "cfg per-row": path.cfg(y, np.array([1.0, 2.0, 3.0, 0.0, -1.0, 7.5])),
    }


@pytest.mark.parametrize("name", list(PATHS))
def test_jacobian_against_finite_differences_and_divergence(name):
    path = PATHS[name]
    x = np.random.default_rng(1).normal(size=(6, path.d)) * 1.5
    for fname, field in _fields(path).items():
        for t in TIMES:
            if name.endswith("cosine") and t == 0.0:
                continue  # cosine's alpha_0 = 0 too, covered by the linear paths
            J = velocity_jacobian(field, x, t)
            Jfd = _fd_jacobian(field, x, t)
            rel = np.max(np.abs(J - Jfd)) / max(1.0, np.max(np.abs(Jfd)))
            assert rel <= 1e-8, (fname, t, rel)  # central differences, h = 1e-5: ~1e-10
            div = field.divergence(x, t)
            tr = np.trace(J, axis1=1, axis2=2)
            assert np.max(np.abs(tr - div)) <= 1e-12 * max(1.0, np.max(np.abs(div))), (fname, t)
            g = np.random.default_rng(2).normal(size=x.shape)
            vjp = velocity_vjp(field, x, t, g)
            assert np.max(np.abs(vjp - np.einsum("na,nab->nb", g, J))) <= 1e-12 * max(
                1.0, np.max(np.abs(J))
            )


@pytest.mark.parametrize("prediction", ["eps", "x0", "score", "v"])
def test_other_predictions_against_finite_differences(prediction):
    path = PATHS["full+diag linear"]
    field = path.cfg(1, 2.0)
    x = np.random.default_rng(3).normal(size=(5, 3))
    h = 1e-5
    for t in [0.05, 0.5, 0.95] + ([] if prediction == "score" else [1.0]):
        from refcfg.interop import predict

        g = np.random.default_rng(4).normal(size=x.shape)
        fd = np.stack(
            [
                np.sum(
                    g
                    * (
                        predict(field, x + h * e, t, prediction, backend="numpy")
                        - predict(field, x - h * e, t, prediction, backend="numpy")
                    ),
                    axis=1,
                )
                / (2 * h)
                for e in np.eye(3)
            ],
            axis=1,
        )
        got = prediction_vjp(field, x, t, g, prediction)
        assert np.max(np.abs(got - fd)) / max(1.0, np.max(np.abs(fd))) <= 1e-8, (prediction, t)


@pytest.mark.slow
def test_torch_backward_gradcheck_and_float32():
    path = PATHS["full+diag linear"]
    for prediction in ["velocity", "eps", "x0", "v"]:
        mod = ExactModule(path.cfg(0, 3.0), prediction)
        x = torch.randn(
            4,
            3,
            dtype=torch.float64,
            generator=torch.Generator().manual_seed(5),
            requires_grad=True,
        )
        assert torch.autograd.gradcheck(lambda z: mod(z, 0.4), (x,), eps=1e-6, atol=1e-7, rtol=1e-6)
    mod = ExactModule(path.field(1), "velocity", shape=(3, 1))
    x64 = torch.randn(5, 3, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    x64.requires_grad_(True)
    mod(x64, torch.full((5,), 0.7, dtype=torch.float64)).square().sum().backward()
    x32 = x64.detach().float().requires_grad_(True)
    mod(x32, 0.7).square().sum().backward()
    assert x32.grad.dtype == torch.float32 and x64.grad.shape == (5, 3, 1)
    assert torch.max(torch.abs(x32.grad.double() - x64.grad)) <= 1e-5 * max(
        1.0, float(x64.grad.abs().max())
    )


@pytest.mark.slow
def test_torch_divergence_by_autograd_equals_exact_divergence():
    path = PATHS["two-class-2d"]
    field = path.cfg(1, 4.0)
    mod = ExactModule(field)
    x = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    x.requires_grad_(True)
    u = mod(x, 0.3)
    div = sum(torch.autograd.grad(u[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2))
    ref = field.divergence(x.detach().numpy(), 0.3)
    assert np.max(np.abs(div.numpy() - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.slow
def test_backward_refusals():
    path = PATHS["two-class-2d"]
    mod = ExactModule(path.field(0))
    t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    x = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="with respect to t"):
        mod(x, t).sum().backward()

    class Custom(refcfg.guidance.base.Field):
        d = 2
        schedule = path.schedule

        def velocity(self, x, t):
            return -x

    out = ExactModule(Custom(), backend="numpy")(x, 0.5)
    with pytest.raises(TypeError, match="does not lower"):
        out.sum().backward()
    with torch.no_grad():
        assert not mod(x, 0.5).requires_grad


@pytest.mark.slow
def test_flow_matching_compute_likelihood_on_the_exact_model():
    """flow_matching's ODESolver.compute_likelihood (dopri5, exact divergence by autograd through
    the torch backward) on the exact unconditional field equals the data law's exact log density
    log p_1(x) (GMMPath.log_prob at t = 1) to 1e-6 at rtol = atol = 1e-9, and refcfg's own
    log_likelihood (RK4, 400 steps) to 1e-6."""
    pytest.importorskip("flow_matching", reason="flow_matching not installed")
    pytest.importorskip("torchdiffeq", reason="torchdiffeq not installed")
    from flow_matching.solver import ODESolver

    from refcfg.sampling.likelihood import log_likelihood

    path = PATHS["two-class-2d"]
    mod = ExactModule(path.field(None), clamp=0.25)  # dopri5 steps past t = 0 and interpolates
    x1 = path.mixture.sample(16, seed=8)[0]
    solver = ODESolver(velocity_model=mod)

    def log_p0(z):
        return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * np.log(2 * np.pi)

    _, logp = solver.compute_likelihood(
        torch.from_numpy(x1),
        log_p0,
        step_size=None,
        method="dopri5",
        atol=1e-9,
        rtol=1e-9,
        time_grid=torch.tensor([1.0, 0.0], dtype=torch.float64),
        exact_divergence=True,
    )
    exact = path.log_prob(x1, 1.0)
    assert np.max(np.abs(logp.detach().numpy() - exact)) <= 1e-6
    ours = log_likelihood(path.field(None), x1, steps=400, sampler="rk4")
    assert np.max(np.abs(logp.detach().numpy() - ours)) <= 1e-6


def test_bad_inputs_named_before_any_work():
    """Shapes, cotangents and names are checked up front, each error naming the argument."""
    from refcfg.interop._jacobian import signal_noise_vjp

    path = PATHS["two-class-2d"]
    field = path.cfg(0, 3.0)
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\).*\(2,\)"):
        velocity_vjp(field, np.zeros(2), 0.5, np.zeros(2))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\).*\(4, 3\)"):
        velocity_jacobian(field, np.zeros((4, 3)), 0.5)
    with pytest.raises(ValueError, match=r"g \(the cotangents\) must have x's shape"):
        velocity_vjp(field, x, 0.5, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="prediction must be one of"):
        prediction_vjp(field, x, 0.5, x, "target")
    with pytest.raises(ValueError, match="output must be one of"):
        signal_noise_vjp(field, x, 1.0, 1.0, "eps", x)
    with pytest.raises(ValueError, match="noise must have 1 or 4 entries"):
        signal_noise_vjp(field, x, 1.0, np.ones(3), "epsilon", x)
