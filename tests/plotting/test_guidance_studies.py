"""The seed-spread and learned-model figures of the guidance studies draw what they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refcfg.plotting import guidance_studies


def test_seed_spreads_draws_means_and_spreads(tmp_path):
    noisy = [
        {"problem": "gauss-1d", "sampler": "ode", "rho": rho, "best w": [w, w + 0.5, w]}
        for rho, w in ((0.1, 1.25), (0.3, 2.5))
    ]
    under = [{"model": "m", "field err": [0.7, 0.6], "best w": [3.0, 2.0]}]
    fig = guidance_studies.seed_spreads(plt, noisy=noisy, underfit=under)
    ax0, ax1 = fig.axes
    # the error bars sit at the seed means (rho nudged by at most 0.004 per series)
    y = np.asarray(ax0.containers[0].lines[0].get_ydata(), dtype=float)
    np.testing.assert_allclose(y, [np.mean([1.25, 1.75, 1.25]), np.mean([2.5, 3.0, 2.5])])
    np.testing.assert_allclose(
        np.asarray(ax1.containers[0].lines[0].get_xydata(), dtype=float), [[0.65, 2.5]]
    )
    fig.savefig(tmp_path / "s.png")
    plt.close(fig)


def test_vector_prompts_learned_draws_each_prompt(tmp_path):
    rows = [
        {
            "prompt": p,
            "w": w,
            "D2 to p(x|y)": 0.1 * w,
            "D2 sd": 0.01,
            "exact CFG D2 to p(x|y)": 0.05 * w,
            "D2 to exact CFG(w)": 0.02 * w,
        }
        for p in ("a", "b")
        for w in (1.0, 2.0)
    ]
    fig = guidance_studies.vector_prompts_learned(plt, learned=rows)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 6  # learned, exact and learned-vs-exact per prompt
    np.testing.assert_allclose(np.asarray(lines[0].get_ydata(), dtype=float), [0.1, 0.2])
    fig.savefig(tmp_path / "v.png")
    plt.close(fig)
