"""Tests of the one number formatter (refcfg._format, re-exported by refcfg.plotting.format) and
the one progress bar (refcfg._progress). Expected strings are written out by hand from the
documented rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refcfg._format import format_value
from refcfg._progress import progress_bar


@pytest.mark.parametrize(
    "v, want",
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (0.123456, "0.1235"),
        (1234.5678, "1235"),
        (99999.0, "1e+05"),
        (1e5, "1.000e+05"),
        (9.99e-4, "9.990e-04"),
        (1e-3, "0.001"),
        (-2.5e-7, "-2.500e-07"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (3, "3"),
        (np.int64(-7), "-7"),
        (True, "True"),
        (np.bool_(False), "False"),
        (None, "None"),
        ("text", "text"),
        ([1.5, 2], "[1.5, 2]"),
        (np.array([[0.5, 1e-9]]), "[0.5, 1.000e-09]"),
    ],
)
def test_default_layout(v, want):
    assert format_value(v) == want


@pytest.mark.parametrize(
    "v, kw, want",
    [
        # the experiments' tables: 4 decimals, scientific outside [1e-3, 1e4)
        (0.123456, dict(fixed=True, sci_above=1e4), "0.1235"),
        (12.0, dict(fixed=True, sci_above=1e4), "12.0000"),
        (12345.0, dict(fixed=True, sci_above=1e4), "1.234e+04"),
        (0.0, dict(fixed=True, sci_above=1e4), "0"),
        # plain fixed decimals (no scientific switch): zero keeps its decimals
        (0.0, dict(digits=3, fixed=True, sci_below=0.0, sci_above=math.inf), "0.000"),
        (2e-9, dict(digits=3, fixed=True, sci_below=0.0, sci_above=math.inf), "0.000"),
        (1234.5, dict(digits=2, fixed=True, sci_below=0.0, sci_above=math.inf), "1234.50"),
        # plain general format ("{:.6g}") and truncated arrays
        (
            np.arange(10.0) / 3,
            dict(digits=6, sci_below=0.0, sci_above=math.inf, max_items=3),
            "[0, 0.333333, 0.666667, ...]",
        ),
        (np.float64(2.5), dict(digits=6, sci_below=0.0, sci_above=math.inf), "2.5"),
    ],
)
def test_other_layouts(v, kw, want):
    assert format_value(v, **kw) == want


def test_progress_bar_modes():
    assert progress_bar(10, "x", False) is None
    assert progress_bar(10, "x", None) is None
    assert progress_bar(10, "x", True) is None  # pytest captures stderr: not a terminal
    bar = progress_bar(10, "x", "force", unit="fig", leave=False)
    try:
        assert bar is not None and bar.total == 10 and bar.unit == "fig"
    finally:
        bar.close()


def test_plotting_format_is_the_one_formatter():
    from refcfg.plotting import format as plotting_format

    assert plotting_format.format_value is format_value
