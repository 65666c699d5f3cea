"""Compile every CUDA kernel specialisation that the public API launches to PTX, without a GPU, and
print what was compiled as one JSON object.

Run by ``tests/sampling/test_cuda_sim.py`` in a subprocess (numba must not be in simulator mode).
The public entry points (``refcfg.sample(..., backend="cuda")``, ``refcfg.sampling.cuda.evaluate``
and ``draw_normals``) run for real on host memory: numba's device-memory calls are replaced by
NumPy arrays and every kernel launch, instead of running, compiles the launched kernel for the
argument types that the kernel's own dispatcher infers, with NVVM for compute capability CC. So
the kernels compiled are exactly those the API launches, whatever their names and signatures.

The axes of a specialisation: the float type (float64, float32), the covariance layout
(isotropic, diag, full), the sampler (every entry of ``SAMPLERS``) or evaluation, the number of
linear terms G and the dimension d (compile-time constants: G = 1, 2, 3 and d = 1, 3 stand in
for all). ``ptxas`` assembles each kernel when one is installed that reads NVVM's PTX version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

CC = (9, 0)


def _ptxas_path():
    """The ptxas of the pip CUDA toolkit (numba-cuda[cu12]: the same release as its NVVM), else
    the first on PATH, else None."""
    try:
        import nvidia.cuda_nvcc as nv
    except ImportError:
        return shutil.which("ptxas")
    cand = os.path.join(next(iter(nv.__path__)), "bin", "ptxas")
    return cand if os.path.exists(cand) else shutil.which("ptxas")


def _assemble(ptxas, ptx):
    """True/False: ptxas accepted the PTX; a string when this ptxas is older than the PTX."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as fh:
            fh.write(ptx)
        proc = subprocess.run(
            [ptxas, f"-arch=sm_{CC[0]}{CC[1]}", src, "-o", os.path.join(tmp, "k.cubin")],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0 and "Unsupported .version" in proc.stderr:
        return "skipped: " + proc.stderr.strip().splitlines()[0]
    return proc.returncode == 0 if proc.returncode == 0 else proc.stderr.strip()[-500:]


class _HostArray(np.ndarray):
    """A NumPy array standing in for device memory (``copy_to_host`` as a DeviceNDArray)."""

    def copy_to_host(self, *args, **kwargs):
        return np.array(self)


def main() -> int:
    from numba import config, cuda

    if config.ENABLE_CUDASIM or cuda.implementation != "NVIDIA":
        print(json.dumps({"error": "needs numba-cuda's NVIDIA target (not the simulator)"}))
        return 2

    import numba.cuda.dispatcher as disp
    import numba.cuda.random as curand

    class _Device:  # device functions ask the current device for its compute capability
        compute_capability = CC

    disp.get_current_device = lambda: _Device()

    def to_device(a, *args, **kwargs):
        return np.array(a, copy=True, order="C").view(_HostArray)

    def device_array(shape, dtype=np.float64, *args, **kwargs):
        return np.zeros(shape, dtype=dtype).view(_HostArray)

    cuda.to_device = to_device
    cuda.device_array = device_array
    cuda.synchronize = lambda *a, **k: None
    curand.create_xoroshiro128p_states = lambda n, seed=0, *a, **k: device_array(
        n, curand.xoroshiro128p_dtype
    )

    ptxas = _ptxas_path()
    compiled: dict = {}
    dispatchers: list = []  # one per specialisation (the kernel factories make one each)
    case = {"name": None}

    def launch(self, args, launch_config):
        sig = tuple(self.typeof_pyval(a) for a in args)
        if self not in dispatchers:
            dispatchers.append(self)
        key = f"{dispatchers.index(self)}: {self.py_func.__qualname__}{sig}"
        if key in compiled:
            compiled[key]["cases"].append(case["name"])
            return
        opts = self.targetoptions
        t0 = time.perf_counter()
        try:
            ptx, _ = cuda.compile_ptx(
                self.py_func,
                sig,
                fastmath=bool(opts.get("fastmath", False)),
                lineinfo=bool(opts.get("lineinfo", False)),
                cc=CC,
            )
        except Exception as exc:  # noqa: BLE001 -- recorded; the test fails on it and shows it
            compiled[key] = {
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "cases": [case["name"]],
            }
            return
        entry = {
            "kernel": self.py_func.__qualname__,
            "seconds": round(time.perf_counter() - t0, 2),
            "ptx_chars": len(ptx),
            "target": f".target sm_{CC[0]}{CC[1]}" in ptx,
            "entries": len(re.findall(r"^\.visible \.entry", ptx, re.M)),
            "f64_instructions": ptx.count(".f64"),
            "cases": [case["name"]],
        }
        if ptxas:
            entry["ptxas"] = _assemble(ptxas, ptx)
        compiled[key] = entry

    disp.CUDADispatcher.call = launch

    import refcfg
    from refcfg.mixture import GMM, LabeledGMM
    from refcfg.sampling import SAMPLERS
    from refcfg.sampling import cuda as C

    C._reason = lambda: None  # "a GPU is there": the launches above compile instead of running

    def mixture(layout, d):
        rng = np.random.default_rng(0)
        means = rng.normal(size=(2, d))
        covs = {
            "isotropic": np.array([0.5, 0.8]),
            "diag": rng.uniform(0.3, 1.0, size=(2, d)),
            "full": np.stack([np.eye(d) * 0.5 + 0.1, np.eye(d) * 0.7 - 0.05]),
        }[layout]
        return LabeledGMM([GMM([1.0], means[i : i + 1], covs[i : i + 1]) for i in range(2)])

    def run(name, fn):
        case["name"] = name
        fn()

    layouts = ("isotropic", "diag", "full")
    dtypes = ("float64", "float32")
    cases = []
    for layout in layouts:
        path = refcfg.GMMPath(mixture(layout, 3))
        cfg = path.cfg(0, 2.0)
        x = np.zeros((4, 3))
        for dt in dtypes:
            for s in SAMPLERS:
                sigma = 0.5 if s == "euler_maruyama" else None
                name = f"{dt}/{layout}/G2/d3/{s}"
                cases.append(name)
                run(
                    name,
                    lambda s=s, dt=dt, sigma=sigma: refcfg.sample(
                        cfg, 4, s, steps=2, seed=0, sigma=sigma, backend="cuda", dtype=dt
                    ),
                )
            name = f"{dt}/{layout}/G2/d3/evaluate"
            cases.append(name)
            run(name, lambda dt=dt: C.evaluate(cfg, x, 0.5, "velocity", dtype=dt))
        # other numbers of linear terms: an exact field (G = 1) and a guided CFG field (G = 3)
        three = refcfg.guided(cfg, path.field(1), 1.5)
        for g, field in (("G1", path.field(0)), ("G3", three)):
            for s in ("heun", "euler_maruyama"):
                sigma = 0.5 if s == "euler_maruyama" else None
                name = f"float64/{layout}/{g}/d3/{s}"
                cases.append(name)
                run(
                    name,
                    lambda field=field, s=s, sigma=sigma: refcfg.sample(
                        field, 4, s, steps=2, seed=0, sigma=sigma, backend="cuda"
                    ),
                )
    # d = 1 (the smallest local arrays)
    one = refcfg.GMMPath(refcfg.problem("gauss-1d")).cfg(0, 2.0)
    for dt in dtypes:
        name = f"{dt}/isotropic/G2/d1/rk4"
        cases.append(name)
        run(name, lambda dt=dt: refcfg.sample(one, 4, "rk4", steps=2, backend="cuda", dtype=dt))
    for dt in dtypes:
        name = f"{dt}/normals"
        cases.append(name)
        run(name, lambda dt=dt: C.draw_normals(4, 2, 3, seed=0, dtype=dt))

    print(
        json.dumps(
            {
                "cc": list(CC),
                "samplers": list(SAMPLERS),
                "cases": cases,
                "compiled": compiled,
                "ptxas": ptxas,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
