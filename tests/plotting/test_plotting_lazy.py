"""Importing refcfg.plotting and the studies does not import matplotlib (figures are drawn on
demand): checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_plotting_and_studies_import_without_matplotlib():
    code = (
        "import sys, refcfg.plotting, refcfg.plotting.format, refcfg.plotting.report\n"
        "import refcfg.plotting.studies, refcfg.plotting.figures, refcfg.plotting.interactive\n"
        "from refcfg.experiments import EXPERIMENTS\n"
        "import importlib\n"
        "for mod in ('tilted', 'compare_guidance', 'gaussian_pushforward', 'cfg_vs_tilted',\n"
        "            'classifier_vs_cfg', 'guidance_interval', 'predictor_corrector', 'tree',\n"
        "            'figure_set'):\n"
        "    importlib.import_module('refcfg.experiments.' + mod)\n"
        "print('matplotlib' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
