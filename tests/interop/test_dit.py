"""refcfg.interop.dit: the DiT transformer stand-in against an independent closed form (float64,
<= 1e-12, interior and end timesteps), the null class, and the real DiTPipeline on it equal to a
plain DDIM loop with the exact CFG field (<= 1e-10)."""

import numpy as np
import pytest

# every test builds diffusers objects; importing diffusers (~2 s) waits for the first test, so
# that collecting the fast tier, which runs none of them, does not pay it (torch it needs anyway)
pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="torch not installed")


import refcfg  # noqa: E402
from refcfg.interop.dit import (  # noqa: E402
    DIT_NULL_CLASS,
    ExactDiT,
    LatentRecorder,
    dit_alphas_cumprod,
    dit_pipeline,
)

from _interop_oracles import posterior  # noqa: E402

PATH = refcfg.problems.resolve("two-class-2d").path


@pytest.fixture(autouse=True, scope="module")
def _diffusers():
    pytest.importorskip("diffusers", reason="diffusers not installed")


@pytest.mark.parametrize("k", [0, 1, 500, 998, 999])
def test_eps_matches_closed_form(k):
    model = ExactDiT(PATH, (2, 1, 1))
    acp = dit_alphas_cumprod().double().numpy()
    a, s = np.sqrt(acp[k]), np.sqrt(1 - acp[k])
    rng = np.random.default_rng(k)
    x = rng.normal(size=(20, 2))
    out = model(
        torch.from_numpy(x).reshape(20, 2, 1, 1),
        torch.full((20,), k),
        class_labels=torch.ones(20, dtype=torch.long),
    ).sample
    assert out.shape == (20, 2, 1, 1) and out.dtype == torch.float64
    _, eps = posterior(PATH.mixture, x, a, s, 1)
    np.testing.assert_allclose(out.reshape(20, 2).numpy(), eps, rtol=0, atol=1e-12)


def test_null_class_is_the_unconditional_model():
    model = ExactDiT(PATH, (2, 1, 1))
    x = torch.randn(6, 2, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lab = torch.tensor([0, 1, DIT_NULL_CLASS, DIT_NULL_CLASS, 0, 1])
    out = model(x, torch.full((6,), 300), class_labels=lab).sample
    unc = model(x, torch.full((6,), 300), class_labels=torch.full((6,), -1)).sample
    np.testing.assert_array_equal(out[2:4].numpy(), unc[2:4].numpy())
    assert float((out[:2] - unc[:2]).abs().max()) > 1e-3


def test_config_and_bad_shapes():
    m = ExactDiT("highdim", (4, 4, 4), dtype=torch.float32)
    assert (m.config.in_channels, m.config.sample_size, m.config.out_channels) == (4, 4, 4)
    assert m.dtype == torch.float32
    with pytest.raises(ValueError, match="shape"):
        ExactDiT(PATH, (2, 2, 1))
    with pytest.raises(ValueError, match="square"):
        ExactDiT("highdim", (4, 8, 2))
    with pytest.raises(TypeError, match="dtype"):
        ExactDiT(PATH, (2, 1, 1), dtype=torch.int64)
    vae = LatentRecorder(0.5)
    z = torch.ones(3, 2, 1, 1)
    assert vae.decode(z).sample is z and float(vae.latents.max()) == 0.5


def test_pipeline_equals_plain_loop_with_exact_cfg():
    from refcfg.audits.dit import _start_latents, plain_loop, scheduler

    pipe = dit_pipeline(PATH, scheduler("ddim"), shape=(2, 1, 1))
    pipe(
        class_labels=[0] * 16,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(0),
        num_inference_steps=8,
        output_type="pt",
    )
    got = pipe.vae.latents.reshape(16, -1).numpy()
    want = plain_loop(PATH, scheduler("ddim"), _start_latents(16, 0), 0, 3.0, 8, as_pipeline=True)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
