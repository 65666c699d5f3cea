"""The study figures (refcfg.plotting.studies): every registered study has a drawing function, and
a figure is drawn from what the study returned (``Result.figure_data``) and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from refcfg.experiments import EXPERIMENTS, Result
from refcfg.plotting import studies


def test_every_study_has_a_drawing_function():
    assert set(studies.DRAW) == set(EXPERIMENTS)


def test_a_result_without_figure_data_is_refused(tmp_path):
    res = Result("tree", "t", [{"a": 1}])
    with pytest.raises(ValueError, match="result 'tree' has no figure"):
        studies.write_figure(res, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_figure_from_hand_made_data(tmp_path):
    """classifier-vs-cfg drawn from two hand-made trajectories (no sampler runs): the PNG is
    written and both panels carry the two curves of each of 3 particles."""
    times = np.linspace(0.0, 1.0, 5)
    ta = np.zeros((5, 3, 2))
    tb = np.ones((5, 3, 2))
    res = Result("classifier-vs-cfg", "t", [], figure_data={"trajs": {"ode": (ta, tb, times)}})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = studies.draw(res, plt)
    assert len(fig.axes[0].lines) == 6 and len(fig.axes[1].lines) == 0
    plt.close(fig)
    out = studies.write_figure(res, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000 and out.endswith("c.png")
