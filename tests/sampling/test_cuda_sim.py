"""CUDA backend (``refcfg.sampling.cuda``) without a GPU: numba's CUDA simulator, PTX compilation.

The simulator must be enabled before numba is imported, so the kernels run in a subprocess
(``_cuda_sim_checks.py`` with NUMBA_ENABLE_CUDASIM=1) that prints its measurements as JSON; the
tolerances are asserted here. Oracles: the NumPy core (field methods), the NumPy reference
integrators and the Numba CPU kernels. A simulator pass proves the algorithm, not that the kernels
compile for a GPU: ``test_cuda_ptx.py`` compiles them with NVVM for sm_90. Nothing here has run on
a GPU.

Errors are rowwise relative (max over particles of ||gpu_i - ref_i|| / ||ref_i||) for fields and
max|gpu - ref| / max|ref| for samples.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("numba_cuda", reason="numba-cuda (the 'cuda' extra) is not installed")

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("_cuda_sim_checks.py")
GPU_CHECK = ROOT / "verification" / "gpu_check.py"

FIELD_TOL = 1e-12  # float64 fields vs NumPy core and CPU kernels
SAMPLE_TOL = 1e-12  # float64 samples (every sampler; Euler-Maruyama on identical noise)
F32_TOL = 1e-4  # float32 vs float64 (the simulator computes exp/log in float64, so it shows
# ~1e-6; a GPU's float32 libdevice is expected within ~1e-5)


# the simulator subprocess, the GPU-check smoke run and the PTX compilation take minutes on two
# cores (mostly compiling the CPU kernels that serve as the oracle): the slow tier; the argument
# checks below run no kernel and stay in the fast tier
slow = pytest.mark.slow


def _env(sim: bool) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args, sim: bool, timeout: float = 600, env_extra=None):
    env = _env(sim)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def sim():
    proc = _run([HELPER], sim=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_all_below(results: dict, tol: float):
    """Every measurement is a number <= tol (a string is an error the helper caught)."""
    assert results, "no measurements"
    bad = {k: v for k, v in results.items() if isinstance(v, str) or not v <= tol}
    assert not bad, f"above {tol:g} or failed: {bad}"


@slow
def test_simulator_active_and_available(sim):
    assert sim["simulator"] is True and sim["available"] is True


@slow
def test_fields_match_numpy_core(sim):
    # 15 fields (exact cond/uncond, CFG, classifier guidance, per-particle labels and w, diagonal,
    # isotropic, guided across two mixtures, three groups, a guidance interval with time factors;
    # schedules linear/cosine/sqrt/vp) x velocity/score at t = 0, 0.37, 0.5, 1 and per-particle
    # times (0 and 1 among them)
    assert len(sim["field_vs_numpy"]) == 30
    _assert_all_below(sim["field_vs_numpy"], FIELD_TOL)


@slow
def test_large_x_near_t0_keeps_the_class_information(sim):
    # full, diagonal and isotropic CFG fields at |x| ~ 1e6, t in {0, 1e-9, 1e-6, 1e-3}: the
    # direct form of the logits gave 1e-10 .. 1e-9 here
    assert sorted(sim["large_x_vs_numpy"]) == ["cfg/linear", "diag_cfg/cosine", "iso_cfg/linear"]
    _assert_all_below(sim["large_x_vs_numpy"], FIELD_TOL)


@slow
def test_three_groups_and_time_factors_lower(sim):
    # the old two-term CUDA lowering refused these fields
    assert sim["groups"]["three_groups/linear"] == 3
    assert sim["groups"]["interval_cfg/linear"] == 2
    assert sim["groups"]["cfg/linear"] == 2 and sim["groups"]["cond/linear"] == 1


@slow
def test_many_distinct_times_split_into_launches(sim):
    assert sim["chunked_launches"] == 5  # 18 distinct times, at most 4 per launch
    assert sim["chunked_vs_single_launch"] == 0.0


@slow
def test_fields_match_cpu_kernels(sim):
    assert len(sim["field_vs_cpu"]) == 30
    _assert_all_below(sim["field_vs_cpu"], FIELD_TOL)


@slow
def test_fields_float32(sim):
    assert len(sim["field_float32_vs_float64"]) == 30
    _assert_all_below(sim["field_float32_vs_float64"], F32_TOL)


@slow
def test_every_sampler_matches_reference_and_cpu(sim):
    # every explicit Runge-Kutta tableau (euler, heun, midpoint, rk4), 6 steps, 16 particles, on 5
    # fields (per-particle labels and w, three groups, time factors, diagonal); trajectories
    # (every 4th step + last) included against the reference
    from refcfg.sampling.steppers import TABLEAUS

    assert sim["ode_samplers"] == sorted(TABLEAUS)
    assert {"midpoint", "rk4"} <= set(TABLEAUS)
    assert len(sim["ode_vs_reference"]) == 5 * len(TABLEAUS)
    _assert_all_below(sim["ode_vs_reference"], SAMPLE_TOL)
    assert len(sim["ode_vs_cpu"]) == 5 * len(TABLEAUS)
    _assert_all_below(sim["ode_vs_cpu"], SAMPLE_TOL)


@slow
def test_orders_of_midpoint_and_rk4(sim):
    # against the exact flow map of a guided Gaussian pair: fitted slopes 2 +- 0.2 and 4 +- 0.3
    orders = sim["ode_orders"]
    assert abs(orders["midpoint"]["order"] - 2.0) <= 0.2, orders["midpoint"]
    assert abs(orders["rk4"]["order"] - 4.0) <= 0.3, orders["rk4"]


@slow
def test_samples_float32(sim):
    assert sim["ode_float32_dtype"] == "float32"
    assert sim["ode_float32_vs_float64/heun"] <= F32_TOL
    assert sim["ode_float32_vs_float64/rk4"] <= F32_TOL


@slow
def test_sde_samples_on_same_noise(sim):
    # sigma "ddpm" from t = 0.05 and constant sigma = 0.8 from t = 0; CFG, three groups, interval
    assert len(sim["sde_vs_reference"]) == 6
    _assert_all_below(sim["sde_vs_reference"], SAMPLE_TOL)
    _assert_all_below(sim["sde_vs_cpu"], SAMPLE_TOL)


@slow
def test_xoroshiro_noise(sim):
    # the in-kernel draws are exactly draw_normals(seed): same result bit for bit
    assert sim["rng_vs_drawn_noise"] == 0.0
    assert sim["rng_vs_reference_on_drawn_noise"] <= SAMPLE_TOL
    assert sim["rng_same_seed_identical"] is True
    assert sim["rng_other_seed_differs"] is True
    # 288 draws (16 particles x 6 steps x d=3): standard normal by a KS test at level 1e-3, and no
    # two particles share a stream (every draw distinct)
    assert sim["rng_normals_n"] == 288
    assert sim["rng_normals_ks_pvalue"] > 1e-3
    assert sim["rng_distinct_draws"] == sim["rng_normals_n"]


@slow
def test_public_sample_backend_cuda(sim):
    # refcfg.sample(..., backend="cuda") vs backend="numpy" with the same seed (same x_init)
    api = sim["api_cuda_vs_numpy"]
    assert api["heun"] <= SAMPLE_TOL
    assert api["rk4"] <= SAMPLE_TOL
    assert api["euler_maruyama"] <= SAMPLE_TOL
    assert api["float32_midpoint"] <= F32_TOL


@slow
def test_subclass_overriding_velocity_is_refused_under_simulator(sim):
    # with the kernels available, an ExactField subclass that overrides velocity without declaring
    # how it lowers is refused (TypeError naming the override), never run as the exact formula:
    # cuda.evaluate, cuda.sample, refcfg.sample(backend="cuda") and a guided field containing it
    refusals = sim["subclass_refusals"]
    assert set(refusals) == {"evaluate", "sample", "refcfg.sample", "guided_containing_it"}
    for where, err in refusals.items():
        assert err is not None, f"{where}: no error, the override was replaced"
        assert err["is_type_error"], (where, err)
        assert "ZeroVelocity overrides velocity" in err["message"], (where, err)
        assert "backend='numpy'" in err["message"], (where, err)
    # backend="auto" follows the override (it runs on NumPy): a zero velocity leaves x_init alone
    assert sim["subclass_auto_follows_override"] is True
    # a subclass that declares its lowering (_terms: 2 u(x|y)) runs, with its own values
    assert sim["declared_subclass_vs_numpy"] <= FIELD_TOL


@slow
def test_unavailable_error_without_gpu_or_simulator():
    code = (
        "import numpy as np, refcfg\n"
        "from refcfg.sampling import cuda as C\n"
        "assert not C.available()\n"
        "f = refcfg.GMMPath(refcfg.problem('two-class-2d')).cfg(0, 2.0)\n"
        "for call in (C.require, lambda: C.evaluate(f, np.zeros((2, 2)), 0.5),\n"
        "             lambda: refcfg.sample(f, 4, 'heun', steps=2, backend='cuda')):\n"
        "    try:\n"
        "        call()\n"
        "    except C.CudaUnavailableError as exc:\n"
        "        assert isinstance(exc, RuntimeError)\n"
        "        assert 'NUMBA_ENABLE_CUDASIM=1' in str(exc) and 'refcfg[cuda]' in str(exc), exc\n"
        "    else:\n"
        "        raise SystemExit('no error')\n"
        "print('ok')\n"
    )
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so the test means the same on a GPU machine
    proc = _run(["-c", code], sim=False, timeout=120, env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


@slow
def test_gpu_check_smoke_under_simulator():
    proc = _run([GPU_CHECK, "--smoke"], sim=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    res = json.loads(lines[0])
    assert res["mode"] == "simulator" and res["smoke"] is True and res["target_met"] is None
    assert res["agreement_ok"] is True
    assert {"heun_vs_cpu", "rk4_vs_cpu", "em_same_noise_vs_cpu"} <= set(res["agreement"])
    for key, err in res["agreement"].items():
        assert err <= res["tolerances"][key], key
    assert res["tolerances"]["cfg_velocity_t0.3"] == FIELD_TOL
    for key in ("float64_full", "float32_full", "float64_diag", "float32_diag"):
        assert res["throughput"][key]["pairs_per_s"] > 0
    assert res["sampling"]["N"] == 64


# ---------------------------------------------------------------- validation (no kernels run)


def _cfg():
    import refcfg

    return refcfg.GMMPath(refcfg.problem("two-class-2d")).cfg(0, 2.0)


def test_rejects_unsupported_fields():
    from refcfg.sampling import cuda as C

    class UserField:
        d = 2

        def velocity(self, x, t):
            return x

    with pytest.raises(TypeError, match="UserField"):
        C.evaluate(UserField(), np.zeros((2, 2)), 0.5)
    with pytest.raises(TypeError, match="UserField"):
        C.sample(UserField(), np.zeros((2, 2)), np.linspace(0, 1, 3), "euler")


def test_subclass_overriding_velocity_is_refused():
    # refused by the lowering before anything else (no GPU or simulator needed for the refusal)
    import refcfg
    from refcfg.guidance import ExactField
    from refcfg.sampling import cuda as C

    class ZeroVelocity(ExactField):
        def velocity(self, x, t):
            return np.zeros_like(x)

    f = ZeroVelocity(refcfg.GMMPath(refcfg.problem("two-class-2d")), 0)
    for call in (
        lambda: C.evaluate(f, np.zeros((2, 2)), 0.5),
        lambda: C.sample(f, np.zeros((2, 2)), np.linspace(0, 1, 3), "rk4"),
        lambda: refcfg.sample(f, 4, "heun", steps=2, backend="cuda"),
    ):
        with pytest.raises(TypeError, match="ZeroVelocity overrides velocity") as err:
            call()
        assert "backend='numpy'" in str(err.value)


def test_argument_errors_name_the_argument():
    from refcfg.sampling import cuda as C

    f = _cfg()
    x = np.zeros((4, 2))
    ts = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="what"):
        C.evaluate(f, x, 0.5, what="eps")
    with pytest.raises(ValueError, match="dtype"):
        C.evaluate(f, x, 0.5, dtype="float16")
    with pytest.raises(ValueError, match="x has shape"):
        C.evaluate(f, np.zeros((4, 3)), 0.5)
    with pytest.raises(ValueError, match="sampler"):
        C.sample(f, x, ts, "rk5")
    with pytest.raises(ValueError, match="sigma_values is required"):
        C.sample(f, x, ts, "euler_maruyama")
    with pytest.raises(ValueError, match="sigma_values is only used"):
        C.sample(f, x, ts, "rk4", sigma_values=np.ones(4))
    with pytest.raises(ValueError, match="noise has shape"):
        C.sample(f, x, ts, "euler_maruyama", sigma_values=np.ones(4), noise=np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="noise is only used"):
        C.sample(f, x, ts, "midpoint", noise=np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="t_grid"):
        C.sample(f, x, [0.0, 0.5, 0.4], "euler")
    with pytest.raises(ValueError, match="trajectory_every"):
        C.sample(f, x, ts, "euler", trajectory_every=0)


def test_samplers_are_the_stepper_table():
    from refcfg.sampling import cuda as C
    from refcfg.sampling import steppers

    assert C.SAMPLERS is steppers.SAMPLERS


def test_import_does_not_import_numba_cuda():
    code = (
        "import sys, refcfg, refcfg.sampling.cuda\n"
        "print(any(m.startswith('numba.cuda') or m.startswith('numba_cuda') for m in sys.modules))"
    )
    proc = _run(["-c", code], sim=False, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]
