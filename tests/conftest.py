"""Shared test configuration: headless matplotlib, a deterministic hypothesis profile."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
# small linear algebra: one BLAS thread avoids oversubscription next to numba's threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "refcfg", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("refcfg")
