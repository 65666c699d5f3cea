"""Shared test configuration: headless matplotlib, a deterministic hypothesis profile."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
# small linear algebra: one BLAS thread avoids oversubscription next to numba's threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "refcfg", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("refcfg")

import pytest  # noqa: E402

from _tiers import SLOW_MODULES  # noqa: E402


def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        if str(item.path.relative_to(root)) in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
