"""refcfg.interop.ddpm_pytorch: the library's classifier-free module loaded by itself, and the
exact Unet stand-in for the three objectives against an independent closed form (float64,
<= 1e-12, timesteps 0, interior, T - 1), with the library's null handling."""

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed")
pytest.importorskip("einops", reason="einops not installed")
if __import__("importlib").util.find_spec("denoising_diffusion_pytorch") is None:
    pytest.skip("denoising-diffusion-pytorch not installed", allow_module_level=True)

import refcfg  # noqa: E402
from refcfg.interop.ddpm_pytorch import ExactUnet, gaussian_diffusion, load_library  # noqa: E402

from _interop_oracles import posterior  # noqa: E402

PATH = refcfg.problems.resolve("two-class-2d").path


def test_loaded_without_the_package_init():
    lib = load_library()
    assert hasattr(lib, "GaussianDiffusion") and hasattr(lib, "Unet")
    assert lib.__name__ != "denoising_diffusion_pytorch.classifier_free_guidance"
    # the package __init__ (which imports accelerate, torchvision, pytorch-fid) did not run
    assert "denoising_diffusion_pytorch" not in sys.modules


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["pred_noise", "pred_x0", "pred_v"])
@pytest.mark.parametrize("k", [0, 400, 999])
def test_outputs_match_closed_form(objective, k):
    diffusion = gaussian_diffusion(PATH, shape=(2, 1, 1), objective=objective)
    acp = diffusion.alphas_cumprod.double().numpy()
    a, s = np.sqrt(acp[k]), np.sqrt(1 - acp[k])
    x = np.random.default_rng(k).normal(size=(12, 2))
    out = diffusion.model(
        torch.from_numpy(x).reshape(12, 2, 1, 1),
        torch.full((12,), k),
        torch.zeros(12, dtype=torch.long),
        cond_drop_prob=0.0,
    )
    x0, eps = posterior(PATH.mixture, x, a, s, 0)
    want = {"pred_noise": eps, "pred_x0": x0, "pred_v": a * eps - s * x0}[objective]
    np.testing.assert_allclose(out.reshape(12, 2).numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_null_handling_as_the_library():
    diffusion = gaussian_diffusion(PATH, shape=(2, 1, 1))
    unet = diffusion.model
    x = torch.randn(4, 2, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t, y = torch.full((4,), 200), torch.zeros(4, dtype=torch.long)
    cond, null = unet(x, t, y, cond_drop_prob=0.0), unet(x, t, y, cond_drop_prob=1.0)
    mixed = unet(x, t, y, cond_keep_mask=torch.tensor([True, False, True, False]))
    np.testing.assert_array_equal(mixed[[0, 2]].numpy(), cond[[0, 2]].numpy())
    np.testing.assert_array_equal(mixed[[1, 3]].numpy(), null[[1, 3]].numpy())
    assert float((cond - null).abs().max()) > 1e-3
    # the guidance code is the library's own
    assert unet.forward_with_cond_scale.__func__ is load_library().Unet.forward_with_cond_scale


def test_needs_attach_and_checks_shape():
    unet = ExactUnet(PATH, (2, 1, 1))
    with pytest.raises(RuntimeError, match="attach"):
        unet(
            torch.zeros(2, 2, 1, 1),
            torch.zeros(2, dtype=torch.long),
            torch.zeros(2, dtype=torch.long),
        )
    with pytest.raises(ValueError, match="channels, size, size"):
        ExactUnet("highdim", (4, 2, 8))
    with pytest.raises(ValueError, match="objective"):
        unet.attach(type("D", (), {"objective": "pred_eps"})())
