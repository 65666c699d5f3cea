"""The test tiers. The fast tier, ``pytest -m "not slow"``, is the exact core (fields, conversions,
guidance, lowering, learning maths, the labs' graders, the commands' argument checks) for everyday
work, and compiles nothing; the full suite (the README's test command, CI) runs everything. A
module that runs the command line in subprocesses, draws figures, starts Dask clusters, runs the
CUDA simulator, drives a browser or draws large Monte Carlo samples is slow as a whole and says so
itself: ``pytestmark = pytest.mark.slow`` at module level; single slow tests elsewhere carry their
own mark, among them every test that runs the CPU kernels (a fresh machine compiles them on first
use, 10-20 s per specialisation): tests/conftest.py fails a fast test that launches one.

These tests keep the fast tier from silently growing: every module that was outside it when the
tier became a mark still exists and still carries the module-level mark, and the kernel guard
fails when it should."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the modules outside the fast tier when the hand list became module marks (a module that moves
# is renamed here with it)
SLOW = (
    "tests/commands/test_cli_check.py",
    "tests/commands/test_command_edges.py",
    "tests/commands/test_demo.py",
    "tests/experiments/test_compare_guidance.py",
    "tests/experiments/test_exp_cli.py",
    "tests/experiments/test_exp_digits.py",
    "tests/experiments/test_exp_gaussian.py",
    "tests/experiments/test_exp_sampling.py",
    "tests/experiments/test_sampler_error.py",
    "tests/experiments/test_tilted.py",
    "tests/interop/test_interop_diffusers.py",
    "tests/interop/test_interop_docs.py",
    "tests/interop/test_interop_imports.py",
    "tests/interop/test_interop_jax.py",
    "tests/interop/test_interop_kdiffusion.py",
    "tests/interop/test_interop_torch.py",
    "tests/plotting/test_figures.py",
    "tests/plotting/test_interactive.py",
    "tests/plotting/test_plotting_lazy.py",
    "tests/sampling/test_cuda_sim.py",
    "tests/sweep/test_run.py",
    "tests/sweep/test_shipped_specs.py",
    "tests/test_docs.py",
    "tests/test_gaussian.py",
    "tests/test_sample_checks.py",
    "tests/test_testing.py",
)


def _is_slow_mark(node: ast.expr) -> bool:
    """``pytest.mark.slow``, alone or in a list/tuple of marks."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return any(_is_slow_mark(e) for e in node.elts)
    return ast.unparse(node) == "pytest.mark.slow"


def module_is_slow(path: Path) -> bool:
    """Whether the module assigns ``pytestmark`` at top level to a value holding the slow mark."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return _is_slow_mark(node.value)
    return False


def test_slow_modules_exist():
    missing = sorted(m for m in SLOW if not (ROOT / m).is_file())
    assert not missing, f"renamed or removed: {missing} (update SLOW when a module moves)"


@pytest.mark.parametrize("module", SLOW)
def test_slow_module_carries_the_mark(module):
    path = ROOT / module
    if not path.is_file():
        pytest.fail(f"{module} does not exist")
    assert module_is_slow(path), f"{module} lost `pytestmark = pytest.mark.slow`"


def test_mark_detection_can_fail(tmp_path):
    """The check above tells a marked module from an unmarked or differently marked one."""
    cases = {
        "pytestmark = pytest.mark.slow\n": True,
        "pytestmark = [pytest.mark.filterwarnings('ignore'), pytest.mark.slow]\n": True,
        "pytestmark = pytest.mark.filterwarnings('ignore')\n": False,
        "def test_x():\n    pytestmark = pytest.mark.slow\n": False,
        "slow = pytest.mark.slow\n": False,
    }
    for i, (src, expected) in enumerate(cases.items()):
        p = tmp_path / f"m{i}.py"
        p.write_text("import pytest\n" + src)
        assert module_is_slow(p) is expected, src


def test_the_conftest_no_longer_marks_by_path():
    """One mechanism: the marks live in the modules, not in a collection hook."""
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    assert "pytest_collection_modifyitems" not in conftest


_KERNEL_TEST = """
import pytest
from refcfg.sampling import cpu


def _kernel(i0, i1):
    pass


def test_fast_and_launches():
    cpu._launch(_kernel, 1)


@pytest.mark.slow
def test_slow_and_launches():
    cpu._launch(_kernel, 1)


def test_fast_and_compiles():
    import numpy as np
    from refcfg.sampling._cpu_math import exp_fast_array

    exp_fast_array(np.zeros(2), np.empty(2))


def test_fast_and_launches_nothing():
    pass
"""


@pytest.mark.slow
def test_the_kernel_guard_fails_a_fast_test_that_launches_a_kernel(tmp_path):
    """The guard in tests/conftest.py, run on a module of four tests next to a copy of it: the
    fast test that launches a (stand-in, uncompiled) kernel and the one that compiles (or loads)
    a Numba function of refcfg fail, the slow one and the one that does neither pass, and the
    message names the mark."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_guard.py").write_text(_KERNEL_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers = slow: outside the fast tier\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "test_guard.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 failed, 2 passed" in out, out
    assert "test_fast_and_compiles runs refcfg's Numba code (0 kernel launches, 1 new" in out, out
    assert "test_fast_and_launches runs refcfg's Numba code (1 kernel launches" in out, out
    assert "mark it @pytest.mark.slow" in out, out
