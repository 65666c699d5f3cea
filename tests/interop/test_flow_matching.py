"""refcfg.interop.flow_matching: ExactVelocity is the exact velocity (flat and image-shaped, per-call
labels), and flow_matching's ODESolver on it equals refcfg's own Euler from the same points
(float64 time grid, <= 1e-12)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed")
pytest.importorskip("flow_matching", reason="flow_matching not installed")
pytest.importorskip("torchdiffeq", reason="torchdiffeq not installed")

import refcfg  # noqa: E402
from refcfg.interop.flow_matching import ExactVelocity  # noqa: E402

PATH = refcfg.problems.resolve("two-class-2d").path


@pytest.mark.slow
@pytest.mark.parametrize("t", [0.0, 0.37, 1.0])
def test_velocity_flat_and_image_shaped(t):
    x = np.random.default_rng(3).normal(size=(10, 2))
    want = PATH.cfg(0, 3.0).velocity(x, t)
    tt = torch.tensor(t, dtype=torch.float64)  # a float32 time would be rounded
    m = ExactVelocity(PATH, y=0, w=3.0)
    np.testing.assert_allclose(m(torch.from_numpy(x), tt).numpy(), want, atol=1e-12, rtol=0)
    mi = ExactVelocity(PATH, y=0, w=3.0, shape=(2, 1, 1))
    out = mi(torch.from_numpy(x).reshape(10, 2, 1, 1), tt)
    assert out.shape == (10, 2, 1, 1)
    np.testing.assert_allclose(out.reshape(10, 2).numpy(), want, atol=1e-12, rtol=0)
    per_call = ExactVelocity(PATH)(
        torch.from_numpy(x), t, y=torch.zeros(10, dtype=torch.long), w=3.0
    )
    np.testing.assert_allclose(per_call.numpy(), want, atol=1e-12, rtol=0)


@pytest.mark.slow
def test_odesolver_euler_equals_refcfg_euler():
    from flow_matching.solver import ODESolver

    x0 = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = ODESolver(ExactVelocity(PATH, y=1, w=2.0)).sample(
        x0, step_size=0.1, method="euler", time_grid=torch.tensor([0.0, 1.0], dtype=torch.float64)
    )
    want = refcfg.sample(PATH.cfg(1, 2.0), 32, sampler="euler", steps=10, x_init=x0.numpy())
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12, rtol=0)


def test_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        ExactVelocity(PATH)(torch.zeros(3, 3), torch.tensor(0.5))
