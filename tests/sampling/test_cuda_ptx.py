"""Every CUDA kernel specialisation that the public API launches compiles to PTX (no GPU needed).

The simulator (``test_cuda_sim.py``) runs the kernels' Python, never their compilation; the GPU half
has never run on a GPU. ``_cuda_ptx_checks.py`` drives ``refcfg.sample(..., backend="cuda")``,
``refcfg.sampling.cuda.evaluate`` and ``draw_normals`` over every sampler of ``SAMPLERS``, both
float types and the three covariance layouts (plus G = 1, 3 linear terms and d = 1), with each
launch compiling the launched kernel for its inferred argument types with NVVM (sm_90) instead of
running it. It needs NVVM and NVRTC: ``pip install 'refcfg[cuda]'`` (numba-cuda[cu12]; [cu13]
with CUDA 13's bindings). Without them the test is skipped, unless ``REFCFG_REQUIRE_PTX=1`` (CI)
turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("numba_cuda", reason="numba-cuda (the 'cuda' extra) is not installed")

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("_cuda_ptx_checks.py")
REQUIRED = os.environ.get("REFCFG_REQUIRE_PTX") == "1"


def _run(args, timeout):
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def ptx():
    # the toolchain probe compiles a trivial kernel: NVVM alone is not enough (NVRTC is needed too)
    probe = _run(
        [
            "-c",
            "from numba import cuda\n"
            "def k(a):\n    a[0] = 1.0\n"
            "cuda.compile_ptx(k, 'void(float32[:])', cc=(9, 0))",
        ],
        timeout=180,
    )
    if probe.returncode != 0:
        why = (
            "CUDA compiler libraries (NVVM, NVRTC) not found (pip install 'refcfg[cuda]' "
            "provides them): " + (probe.stderr.strip().splitlines() or ["?"])[-1]
        )
        if REQUIRED:
            pytest.fail(f"REFCFG_REQUIRE_PTX=1 but {why}")
        pytest.skip(why)
    proc = _run([HELPER], timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _by_case(res):
    out = {}
    for key, v in res["compiled"].items():
        for case in v["cases"]:
            out.setdefault(case, []).append((key, v))
    return out


def test_every_case_launched_and_compiled(ptx):
    """Each public-API case launched exactly one kernel, and it compiled for sm_90."""
    from refcfg.sampling import SAMPLERS

    assert ptx["samplers"] == list(SAMPLERS)
    by_case = _by_case(ptx)
    # every sampler of the registry, both float types, the three layouts, and evaluation
    for dt in ("float64", "float32"):
        for layout in ("isotropic", "diag", "full"):
            for what in (*SAMPLERS, "evaluate"):
                assert f"{dt}/{layout}/G2/d3/{what}" in ptx["cases"]
    silent = [c for c in ptx["cases"] if c not in by_case]
    assert not silent, f"cases that launched no kernel: {silent}"
    many = {c: [k for k, _ in v] for c, v in by_case.items() if len(v) != 1}
    assert not many, f"cases that launched more than one kernel: {many}"
    errors = {k: v["error"] for k, v in ptx["compiled"].items() if "error" in v}
    assert not errors, errors
    for key, v in ptx["compiled"].items():
        assert v["target"] and v["entries"] == 1 and v["ptx_chars"] > 0, (key, v)


def test_ptxas_accepts_them_when_installed(ptx):
    if not ptx["ptxas"]:
        pytest.skip("no ptxas on PATH (the PTX is not assembled)")
    verdicts = {k: v["ptxas"] for k, v in ptx["compiled"].items()}
    skipped = sorted(v for v in verdicts.values() if str(v).startswith("skipped"))
    if skipped:
        pytest.skip(f"{ptx['ptxas']} is older than NVVM's PTX ({skipped[0]})")
    bad = {k: v for k, v in verdicts.items() if v is not True}
    assert not bad, bad


def test_float32_kernels_stay_float32(ptx):
    """No silent promotion by float64 literals or tableau constants: no f64 instruction in a
    float32 ODE or evaluation kernel; in the SDE kernel only those of numba-cuda's xoroshiro128p
    float32 normal, at most one draw's worth (the float32 normals kernel) per coordinate."""
    by_case = _by_case(ptx)
    rng = by_case["float32/normals"][0][1]["f64_instructions"]
    for case, [(_, v)] in by_case.items():
        if not case.startswith("float32/") or case == "float32/normals":
            continue
        d = int(case.split("/")[3][1:])
        limit = d * rng if case.endswith("/euler_maruyama") else 0
        assert v["f64_instructions"] <= limit, (case, v["f64_instructions"], limit)
