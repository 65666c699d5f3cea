"""refcfg.interop.discrete.AlphasCumprodModel: the exact prediction on a raw alphas_cumprod, against
the posterior written in the library's convention (<= 1e-12 float64, <= 1e-5 float32), equal to
the diffusers adapter on the same alphas_cumprod, image-shaped inputs, per-call labels, and bad
arguments."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed")

import refcfg  # noqa: E402
from refcfg.interop.discrete import AlphasCumprodModel  # noqa: E402

from _interop_oracles import posterior  # noqa: E402

MIX = refcfg.problem("two-class-2d")
PATH = refcfg.GMMPath(MIX, refcfg.schedule("linear"))


def _cosine_acp(T=1000, s=0.008):
    """The cosine schedule's alphas_cumprod (Nichol and Dhariwal), written out here."""
    steps = np.arange(T + 1) / T
    f = np.cos((steps + s) / (1 + s) * np.pi / 2) ** 2
    betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    return np.cumprod(1 - betas)


ACP = _cosine_acp()


@pytest.mark.slow
@pytest.mark.parametrize(
    "prediction,key",
    [
        ("epsilon", "eps"),
        ("eps", "eps"),
        ("sample", "x0"),
        ("x0", "x0"),
        ("v_prediction", "v"),
        ("v", "v"),
    ],
)
def test_predictions_match_closed_form(prediction, key):
    model = AlphasCumprodModel(PATH, torch.from_numpy(ACP), prediction, y=1)
    rng = np.random.default_rng(0)
    for k in [0, 1, 500, 998, 999]:
        a, s = np.sqrt(ACP[k]), np.sqrt(1 - ACP[k])
        xd = rng.normal(size=(30, 2))
        x0, eps = posterior(MIX, xd, a, s, 1)
        ref = {"eps": eps, "x0": x0, "v": a * eps - s * x0}[key]
        out = model(torch.from_numpy(xd), torch.full((30,), k))
        assert out.dtype == torch.float64 and out.shape == (30, 2)
        assert np.max(np.abs(out.numpy() - ref)) <= 1e-12 * max(1, np.max(np.abs(ref))), k
        out32 = model(torch.from_numpy(xd).float(), k)
        assert out32.dtype == torch.float32
        assert np.max(np.abs(out32.numpy() - ref)) <= 1e-5 * max(1, np.max(np.abs(ref)))


@pytest.mark.slow
def test_equals_the_diffusers_adapter_on_the_same_schedule():
    diffusers = pytest.importorskip("diffusers", reason="diffusers not installed")
    from refcfg.interop.diffusers import ExactDiffusersModel

    sched = diffusers.DDPMScheduler(prediction_type="v_prediction")
    ref = ExactDiffusersModel(PATH, sched, y=0, w=2.0)
    model = AlphasCumprodModel(PATH, sched.alphas_cumprod, "v_prediction", y=0, w=2.0)
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for k in [0, 37, 999]:
        assert torch.equal(model(x, k), ref(x, k).sample)


@pytest.mark.slow
def test_image_shapes_labels_and_cfg():
    d_shape = (1, 2, 1)
    guided = AlphasCumprodModel(PATH, ACP, "epsilon", y=0, w=3.0, shape=d_shape)
    plain = AlphasCumprodModel(PATH, ACP, "epsilon", shape=d_shape)
    x = torch.randn(8, *d_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    k = torch.tensor([10, 200, 400, 600, 800, 900, 950, 999])
    out = guided(x, k)
    assert out.shape == x.shape
    assert torch.equal(out.reshape(8, 2), guided(x.reshape(8, 2), k))
    c = plain(x, k, torch.zeros(8, dtype=torch.long))
    u = plain(x, k, torch.full((8,), -1))
    assert torch.allclose(u + 3.0 * (c - u), out, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"x has shape \(8, 2, 1\)"):
        guided(x.reshape(8, 2, 1), 5)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"alphas_cumprod must be .* in \(0, 1\]"):
        AlphasCumprodModel(PATH, np.array([0.9, 1.5]))
    with pytest.raises(TypeError, match="alphas_cumprod"):
        AlphasCumprodModel(PATH, "cosine")
    with pytest.raises(ValueError, match="alphas_cumprod must have 1 dimension"):
        AlphasCumprodModel(PATH, np.ones((3, 3)) * 0.5)
    with pytest.raises(ValueError, match="prediction must be one of"):
        AlphasCumprodModel(PATH, ACP, "noise")
    with pytest.raises(ValueError, match=r"shape \(3,\) has 3 entries but the field has d = 2"):
        AlphasCumprodModel(PATH, ACP, shape=(3,))
    with pytest.raises(TypeError, match="field must be"):
        AlphasCumprodModel(3.0, ACP)
    model = AlphasCumprodModel(PATH, ACP, y=0)
    with pytest.raises(ValueError, match=r"timestep must lie in \[0, 999\]"):
        model(torch.zeros(3, 2), 1000)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model(np.zeros((3, 2)), 10)
    with pytest.raises(TypeError, match="class_labels must be integer"):
        model(torch.zeros(3, 2), 10, torch.zeros(3))


@pytest.mark.slow
@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_backward_against_finite_differences(prediction):
    """The closed-form backward (x' -> x_t = c x' and the library's combination) passes
    torch.autograd.gradcheck in float64 (central differences, rtol 1e-6), per-row timesteps."""
    model = AlphasCumprodModel(PATH, ACP, prediction, y=0, w=2.5)
    x = torch.randn(
        4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(8), requires_grad=True
    )
    k = torch.tensor([3, 250, 600, 990])
    assert torch.autograd.gradcheck(lambda z: model(z, k), (x,), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.slow
def test_diffusers_flow_backward():
    diffusers = pytest.importorskip("diffusers", reason="diffusers not installed")
    from refcfg.interop.diffusers import ExactDiffusersModel

    model = ExactDiffusersModel(PATH, diffusers.FlowMatchEulerDiscreteScheduler(), y=1, w=2.0)
    x = torch.randn(
        3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9), requires_grad=True
    )
    assert torch.autograd.gradcheck(
        lambda z: model(z, 400.0).sample, (x,), eps=1e-6, atol=1e-7, rtol=1e-6
    )


def test_backend_checked_at_construction():
    acp = np.linspace(0.999, 0.01, 100)
    with pytest.raises(ValueError, match="backend must be one of"):
        AlphasCumprodModel(PATH, acp, backend="gpu")
