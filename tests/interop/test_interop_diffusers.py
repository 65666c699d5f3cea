"""refcfg.interop.diffusers: the exact denoiser in diffusers scheduler loops. Predictions against
an independent closed form written in diffusers' own convention (<= 1e-12 float64, <= 1e-5
float32); a DDIM loop of 500 steps at w = 1 and a flow-matching Euler loop accepted by
check_samples against p(x|y); deliberately wrong timestep mappings rejected."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="torch not installed")

import refcfg  # noqa: E402
from refcfg.interop.diffusers import ExactDiffusersModel  # noqa: E402
from refcfg.sample_checks import check_samples  # noqa: E402

from _interop_oracles import posterior  # noqa: E402

MIX = refcfg.problem("two-class-2d")
PATH = refcfg.GMMPath(MIX, refcfg.schedule("linear"))


@pytest.fixture(scope="module")
def diffusers():
    # imported by the first test that needs it, not at collection (~2 s that the fast tier, which
    # runs none of these tests, need not pay)
    return pytest.importorskip("diffusers", reason="diffusers not installed")


def _posterior(xd, a, s, y):
    return posterior(MIX, xd, a, s, y)


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize(
    "name",
    ["DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler"],
)
def test_alphas_cumprod_schedulers_match_closed_form(name, prediction, diffusers):
    sched = getattr(diffusers, name)(prediction_type=prediction)
    model = ExactDiffusersModel(PATH, sched, y=1)
    acp = sched.alphas_cumprod.double().numpy()
    rng = np.random.default_rng(0)
    for k in [0, 1, 250, 500, 998, 999]:
        a, s = np.sqrt(acp[k]), np.sqrt(1 - acp[k])
        xd = rng.normal(size=(50, 2))
        x0, eps = _posterior(xd, a, s, 1)
        ref = {"epsilon": eps, "sample": x0, "v_prediction": a * eps - s * x0}[prediction]
        out = model(torch.from_numpy(xd), torch.tensor(k)).sample
        assert np.max(np.abs(out.numpy() - ref)) <= 1e-12 * max(1, np.max(np.abs(ref))), k
        out32 = model(torch.from_numpy(xd).float(), k).sample
        assert out32.dtype == torch.float32
        assert np.max(np.abs(out32.numpy() - ref)) <= 1e-5 * max(1, np.max(np.abs(ref)))


def test_fractional_euler_timesteps_interpolate_sigma(diffusers):
    sched = diffusers.EulerDiscreteScheduler()
    model = ExactDiffusersModel(PATH, sched, y=0)
    acp = sched.alphas_cumprod.double().numpy()
    sig_all = np.sqrt((1 - acp) / acp)
    k = 412.37
    sig = (1 - 0.37) * sig_all[412] + 0.37 * sig_all[413]
    a = 1 / np.sqrt(1 + sig * sig)
    xd = np.random.default_rng(1).normal(size=(20, 2))
    _, eps = _posterior(xd, a, sig * a, 0)
    assert np.max(np.abs(model(torch.from_numpy(xd), k).sample.numpy() - eps)) <= 1e-12


def test_flow_match_scheduler_matches_closed_form(diffusers):
    sched = diffusers.FlowMatchEulerDiscreteScheduler()
    model = ExactDiffusersModel(PATH, sched, y=0)
    xd = np.random.default_rng(2).normal(size=(30, 2))
    for tau in [1.0, 250.0, 777.7, 1000.0]:
        sigma = tau / 1000
        if sigma == 1.0:
            continue  # x' = eps: x0 = E[z] but eps - x0 needs the posterior at zero signal
        x0, eps = _posterior(xd, 1 - sigma, sigma, 0)
        out = model(torch.from_numpy(xd), torch.tensor([tau], dtype=torch.float64)).sample.numpy()
        assert np.max(np.abs(out - (eps - x0))) <= 1e-12


def test_user_cfg_code_matches_exact_cfg(diffusers):
    """Guidance left to the user's code: u + s (c - u) with class and NULL labels equals the
    model built with w = s."""
    sched = diffusers.DDIMScheduler()
    plain = ExactDiffusersModel(PATH, sched)
    guided = ExactDiffusersModel(PATH, sched, y=0, w=3.0)
    xd = torch.from_numpy(np.random.default_rng(3).normal(size=(16, 2)))
    c = plain(xd, 300, class_labels=torch.zeros(16, dtype=torch.long)).sample
    u = plain(xd, 300, class_labels=torch.full((16,), -1)).sample
    assert torch.allclose(u + 3.0 * (c - u), guided(xd, 300).sample, rtol=0, atol=1e-12)


def _ddim(model, n, steps, seed):
    sched = model.scheduler
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    for k in sched.timesteps:
        x = sched.step(model(x, k).sample, k, x).prev_sample
    return x.numpy()


class _AlphasNotCumprod(ExactDiffusersModel):
    def signal_noise(self, timestep):  # the classic bug: alphas instead of alphas_cumprod
        al = self.scheduler.alphas.double().numpy()[int(timestep)]
        return np.array([np.sqrt(al)]), np.array([np.sqrt(1 - al)])


class _OneStepBehind(ExactDiffusersModel):
    def signal_noise(self, timestep):  # the timestep of the previous inference step (50 steps)
        return super().signal_noise(min(int(timestep) + 20, 999))


@pytest.mark.slow
def test_ddim_500_steps_accepted_and_wrong_mappings_rejected(diffusers):
    """500 DDIM steps on the exact model: accepted against p(x|y=0). Rejected: alphas instead of
    alphas_cumprod (500 steps), and a timestep one inference step behind (50 steps). An
    off-by-one *training* timestep (k + 1 for k) moves the samples too little to be seen at
    N = 3000 and is not asserted."""
    n = 3000
    sched = lambda: diffusers.DDIMScheduler(clip_sample=False)
    good = _ddim(ExactDiffusersModel(PATH, sched(), y=0), n, 500, seed=0)
    rep = check_samples(good, "two-class-2d", y=0, permutations=199)
    assert rep.passed, str(rep)
    bad = _ddim(_AlphasNotCumprod(PATH, sched(), y=0), n, 500, seed=0)
    assert not check_samples(bad, "two-class-2d", y=0, permutations=199).passed
    off = _ddim(_OneStepBehind(PATH, sched(), y=0), n, 50, seed=0)
    rep_off = check_samples(off, "two-class-2d", y=0, permutations=199)
    assert not rep_off.passed, str(rep_off)


def test_flow_match_euler_loop_accepted_and_reversed_time_rejected(diffusers):
    class _Reversed(ExactDiffusersModel):
        def signal_noise(self, timestep):  # t = sigma instead of t = 1 - sigma
            a, s = super().signal_noise(timestep)
            return s, a

    def loop(model, n=4000, steps=200):
        sched = model.scheduler
        sched.set_timesteps(steps)
        x = torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        for k in sched.timesteps:
            x = sched.step(model(x, k).sample, k, x).prev_sample
        return x.numpy()

    good = loop(ExactDiffusersModel(PATH, diffusers.FlowMatchEulerDiscreteScheduler(), y=1))
    assert check_samples(good, "two-class-2d", y=1, permutations=199).passed
    bad = loop(_Reversed(PATH, diffusers.FlowMatchEulerDiscreteScheduler(), y=1), steps=50)
    assert not check_samples(bad, "two-class-2d", y=1, permutations=199).passed


def test_image_shaped_samples(diffusers):
    """A (N, C, H, W) latent: the output keeps its shape and equals the (N, d) call bit for bit."""
    sched = diffusers.DDIMScheduler()
    model = ExactDiffusersModel(PATH, sched, y=0, w=2.0, shape=(2, 1, 1))
    x = torch.randn(5, 2, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    out = model(x, 321).sample
    assert out.shape == x.shape
    assert torch.equal(out.reshape(5, 2), model(x.reshape(5, 2), 321).sample)
    with pytest.raises(ValueError, match=r"sample has shape \(5, 1, 2, 1\)"):
        model(x.reshape(5, 1, 2, 1), 321)


def test_bad_inputs(diffusers):
    with pytest.raises(TypeError, match="cannot map"):
        ExactDiffusersModel(PATH, object())
    sched = diffusers.DDIMScheduler()
    with pytest.raises(ValueError, match="prediction"):
        ExactDiffusersModel(PATH, sched, prediction="noise")
    model = ExactDiffusersModel(PATH, sched, y=0)
    with pytest.raises(ValueError, match=r"timestep must lie in \[0, 999\]"):
        model(torch.zeros(3, 2), 1000)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        model(torch.zeros(3, 4), 10)
