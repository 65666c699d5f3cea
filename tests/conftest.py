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
# A first call of refcfg's Numba functions on a fresh machine compiles them (10-20 s per kernel
# specialisation), so every test that runs them is outside the fast tier (pytest -m "not slow").
# This guard fails a fast test, naming the mark, when during its setup and call a CPU kernel was
# launched or a Numba function of refcfg got a new specialisation (compiled, or loaded from the
# cache: the first use in the process).

import sys  # noqa: E402

import pytest  # noqa: E402

_LAUNCHES = {"n": 0}
_BEFORE = pytest.StashKey[tuple]()
_NUMBA_MODULES = ("refcfg.sampling._cpu_kernels", "refcfg.sampling._cpu_math")


def pytest_configure(config):
    from refcfg.sampling import cpu

    launch = cpu._launch

    def counted(kernel, nitems, *args):
        _LAUNCHES["n"] += 1
        return launch(kernel, nitems, *args)

    cpu._launch = counted


def _numba_use():
    """(kernel launches, specialisations of refcfg's Numba functions in this process)."""
    from numba.core.registry import CPUDispatcher

    n = 0
    for name in _NUMBA_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            n += sum(
                len(f.overloads) for f in vars(module).values() if isinstance(f, CPUDispatcher)
            )
    return _LAUNCHES["n"], n


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    item.stash[_BEFORE] = _numba_use()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    if item.get_closest_marker("slow") is None:
        (l0, s0), (l1, s1) = item.stash.get(_BEFORE, (0, 0)), _numba_use()
        if l1 != l0 or s1 != s0:
            pytest.fail(
                f"{item.nodeid} runs refcfg's Numba code ({l1 - l0} kernel launches, {s1 - s0} "
                "new specialisations) but is in the fast tier: mark it @pytest.mark.slow (a fresh "
                "machine compiles the kernels on first use)",
                pytrace=False,
            )
    return result
