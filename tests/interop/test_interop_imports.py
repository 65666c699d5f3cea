"""`import refcfg`, `refcfg.interop`, `refcfg.sample_checks` and the CLI's start-up import no
framework: torch, jax and diffusers are imported only by the submodules that need them."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_no_framework_is_imported():
    code = (
        "import sys, refcfg, refcfg.interop, refcfg.sample_checks, "
        "refcfg.experiments.sampler_error; from refcfg.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'jax', 'diffusers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "[]"
