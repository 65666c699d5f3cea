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


# --- the fast tier compiles nothing --------------------------------------------------------------
# A first call of the CPU kernels on a fresh machine compiles them (10-20 s per specialisation),
# so every test that runs them is outside the fast tier (pytest -m "not slow"). This guard counts
# the kernel launches of each fast test, its fixtures' setup included, and fails the test that
# launched any, naming the mark.

import pytest  # noqa: E402

_LAUNCHES = {"n": 0}
_BEFORE = pytest.StashKey[int]()


def pytest_configure(config):
    from refcfg.sampling import cpu

    launch = cpu._launch

    def counted(kernel, nitems, *args):
        _LAUNCHES["n"] += 1
        return launch(kernel, nitems, *args)

    cpu._launch = counted


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    item.stash[_BEFORE] = _LAUNCHES["n"]
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    launched = _LAUNCHES["n"] - item.stash.get(_BEFORE, _LAUNCHES["n"])
    if launched and item.get_closest_marker("slow") is None:
        pytest.fail(
            f"{item.nodeid} runs the CPU kernels ({launched} launches) but is in the fast tier: "
            "mark it @pytest.mark.slow (a fresh machine compiles the kernels on first use)",
            pytrace=False,
        )
    return result
