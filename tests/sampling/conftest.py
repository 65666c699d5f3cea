"""Fixtures for the sampling tests: warm (compile or load from cache) every Numba kernel once.

The CPU kernels are ``cache=True``: the first session compiles them (about a minute on 2 cores)
and writes the cache; later sessions load them in about a second. Every specialisation the tests
use is warmed here, so that the compile time shows up once, in the setup of the first slow test
(fast tests run no kernels: tests/conftest.py)."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _warm_for_slow_tests(request):
    if request.node.get_closest_marker("slow") is not None:
        request.getfixturevalue("warm_kernels")


@pytest.fixture(scope="session")
def warm_kernels():
    """Compile each CPU kernel once per session (later calls reuse the dispatcher)."""
    import refcfg
    from refcfg.sampling import cpu
    from refcfg.sampling._cpu_math import exp_fast_array, normals_table

    path = refcfg.GMMPath(refcfg.problem("gauss-1d"))
    f = refcfg.CFGField(path, 0, 2.0)
    x = np.zeros((2, 1))
    cpu.velocity(f, x, 0.5)  # one table row for all particles
    cpu.velocity(f, x, np.array([0.2, 0.7]))  # per-particle rows
    cpu.divergence(f, x, 0.5)
    cpu.integrate(f, x, np.linspace(0, 1, 3), "heun")
    cpu.integrate_logdet(f, x, np.linspace(1, 0, 3))
    exp_fast_array(np.zeros(2), np.empty(2))
    normals_table(1, 1, 1, 1)
    yield
