"""refcfg.interop.kdiffusion: the exact EDM denoiser D(x; sigma) against an independent closed form
(<= 1e-12 float64, <= 1e-5 float32), and EDM Euler / Heun loops on it (written here in
k-diffusion's convention, since k-diffusion itself is not installed: its package pulls a CUDA
torch build and training dependencies) accepted by check_samples, with a wrong sigma rejected."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="torch not installed")

import refcfg  # noqa: E402
from refcfg.interop.kdiffusion import EDMDenoiser  # noqa: E402
from refcfg.sample_checks import check_samples  # noqa: E402

from _interop_oracles import posterior  # noqa: E402

MIX = refcfg.problem("two-class-2d")
PATH = refcfg.GMMPath(MIX, refcfg.schedule("linear"))


def karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """EDM's noise levels (Karras et al. 2022, eq. 5) with a final 0, as k-diffusion builds them."""
    ramp = np.linspace(0, 1, n)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.from_numpy(np.append(s, 0.0))


def sample_euler(model, x, sigmas):
    """k-diffusion's sample_euler without churn: d = (x - D(x; sigma)) / sigma, x += d dsigma."""
    for i in range(len(sigmas) - 1):
        s = sigmas[i] * x.new_ones(x.shape[0])
        d = (x - model(x, s)) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def sample_heun(model, x, sigmas):
    """EDM's deterministic Heun (Algorithm 1): Euler to the last step, trapezoid otherwise."""
    for i in range(len(sigmas) - 1):
        s = sigmas[i] * x.new_ones(x.shape[0])
        d = (x - model(x, s)) / sigmas[i]
        dt = sigmas[i + 1] - sigmas[i]
        x2 = x + d * dt
        if sigmas[i + 1] > 0:
            d2 = (x2 - model(x2, sigmas[i + 1] * x.new_ones(x.shape[0]))) / sigmas[i + 1]
            x2 = x + (d + d2) / 2 * dt
        x = x2
    return x


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_denoiser_matches_closed_form(w):
    model = EDMDenoiser(PATH, y=0, w=None if w == 1.0 else w)
    rng = np.random.default_rng(0)
    for sigma in [0.002, 0.1, 1.0, 10.0, 80.0]:
        x = rng.normal(size=(40, 2)) * np.sqrt(1 + sigma**2)
        x0c, _ = posterior(MIX, x, 1.0, sigma, 0)
        if w != 1.0:
            # CFG in x0 space: w E[x0|x, y] + (1 - w) E[x0|x], the marginal by Bayes over classes
            from scipy.special import logsumexp
            from scipy.stats import multivariate_normal

            from _interop_oracles import covariances

            logp, parts = [], []
            for c in range(2):
                g = MIX.class_gmm(c)
                covs = covariances(g)
                lp = [
                    np.log(MIX.class_probs[c] * g.weights[k])
                    + multivariate_normal(g.means[k], covs[k] + sigma**2 * np.eye(2)).logpdf(x)
                    for k in range(2)
                ]
                logp.append(logsumexp(lp, axis=0))
                parts.append(posterior(MIX, x, 1.0, sigma, c)[0])
            logp = np.array(logp)
            r = np.exp(logp - logsumexp(logp, axis=0))
            x0u = r[0][:, None] * parts[0] + r[1][:, None] * parts[1]
            ref = w * x0c + (1 - w) * x0u
        else:
            ref = x0c
        out = model(torch.from_numpy(x), torch.full((40,), sigma, dtype=torch.float64))
        assert np.max(np.abs(out.numpy() - ref)) <= 1e-12 * max(1, np.max(np.abs(ref))), sigma
        out32 = model(torch.from_numpy(x).float(), sigma)
        assert np.max(np.abs(out32.numpy() - ref)) <= 1e-5 * max(1, np.max(np.abs(ref)))
    x = torch.from_numpy(rng.normal(size=(5, 2)))
    assert torch.equal(model(x, 0.0), x)  # D(x; 0) = x


def test_heun_and_euler_loops_accepted_and_wrong_sigma_rejected():
    n = 3000
    model = EDMDenoiser(PATH, y=1)
    g = torch.Generator().manual_seed(0)
    sig = karras_sigmas(32)
    x_init = torch.randn(n, 2, generator=g, dtype=torch.float64) * sig[0]
    heun = sample_heun(model, x_init, sig).numpy()
    rep = check_samples(heun, "two-class-2d", y=1, permutations=199)
    assert rep.passed, str(rep)
    euler = sample_euler(model, x_init, karras_sigmas(200)).numpy()
    assert check_samples(euler, "two-class-2d", y=1, permutations=199).passed

    class SigmaSquared(EDMDenoiser):  # a convention bug: sigma^2 passed where sigma is meant
        def forward(self, x, sigma, **kw):
            return super().forward(x, sigma**2, **kw)

    bad = sample_heun(SigmaSquared(PATH, y=1), x_init, sig).numpy()
    assert not check_samples(bad, "two-class-2d", y=1, permutations=199).passed


def test_bad_inputs():
    model = EDMDenoiser(PATH, y=0)
    with pytest.raises(ValueError, match="sigma must be finite"):
        model(torch.zeros(3, 2), -1.0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        model(torch.zeros(3, 3), 1.0)
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(3, 2), torch.ones(4))
