"""refcfg.interop.kdiffusion: load_sampling gives k-diffusion's samplers without leaving stubs in
sys.modules; the CFG wrapper equals the exact CFG denoiser (<= 1e-12); image-shaped inputs; and
sample_euler on it equals EDM's Euler written out (<= 1e-12)."""

import importlib.util
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed")
pytest.importorskip("torchsde", reason="torchsde not installed")
if importlib.util.find_spec("k_diffusion") is None:
    pytest.skip("k-diffusion not installed", allow_module_level=True)

import refcfg  # noqa: E402
from refcfg.interop.kdiffusion import CFGDenoiser, EDMDenoiser, load_sampling  # noqa: E402

PATH = refcfg.problems.resolve("two-class-2d").path


def test_load_sampling_leaves_no_stubs():
    had = {m for m in ("torchvision", "PIL", "safetensors") if m in sys.modules}
    K = load_sampling()
    assert callable(K.sample_euler) and callable(K.get_sigmas_karras)
    for m in ("torchvision", "PIL", "safetensors"):
        if m not in had and m in sys.modules:
            assert getattr(sys.modules[m], "__spec__", None) is not None, m


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [0.0, 0.01, 1.0, 80.0])
def test_cfg_wrapper_equals_exact_cfg(sigma):
    x = torch.randn(9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2
    s = torch.full((9,), sigma, dtype=torch.float64)
    got = CFGDenoiser(EDMDenoiser(PATH), y=1, cond_scale=2.5)(x, s)
    want = EDMDenoiser(PATH, y=1, w=2.5)(x, s)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12, rtol=0)
    img = EDMDenoiser(PATH, y=1, w=2.5, shape=(2, 1, 1))(x.reshape(9, 2, 1, 1), s)
    np.testing.assert_allclose(img.reshape(9, 2).numpy(), want.numpy(), atol=1e-12, rtol=0)


@pytest.mark.slow
def test_sample_euler_equals_edm_euler():
    from refcfg.audits.kdiffusion import edm_euler

    K = load_sampling()
    model = CFGDenoiser(EDMDenoiser(PATH), y=0, cond_scale=3.0)
    sig = K.get_sigmas_karras(8, 0.002, 80.0, device="cpu").double()
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 80
    np.testing.assert_allclose(
        K.sample_euler(model, x, sig, disable=True).numpy(),
        edm_euler(model, x, sig).numpy(),
        atol=1e-12,
        rtol=0,
    )
