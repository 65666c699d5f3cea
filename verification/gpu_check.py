"""GPU check of the CUDA backend: agreement with the CPU kernels at N = 1e6, throughput, end-to-end
CFG sampling. Prints ONE JSON object.

    python verification/gpu_check.py             # on a machine with an NVIDIA GPU (numba-cuda)
    python verification/gpu_check.py --smoke     # tiny sizes; also under NUMBA_ENABLE_CUDASIM=1
    python verification/gpu_check.py --ptx       # no GPU needed: compile every kernel to PTX
                                                 # (sm_90 by default) with NVVM and report sizes,
                                                 # registers and spills (ptxas)

Problem (full run): a LabeledGMM of 4 classes x 16 full-covariance components (K = 64) in d = 16,
CFG with w = 3 and a random label per particle (2 groups). Agreement: the CUDA kernels on all N
particles, the Numba CPU kernels (``refcfg.sampling.cpu``) on the first ``--cpu-sub`` of them (rows
are independent, so a subsample is a fair comparison); errors are max over rows of
||gpu_i - cpu_i|| / ||cpu_i||: the velocity at t = 0, 0.3, 1 and per-particle times, the score,
Heun and RK4 (32 steps) and Euler-Maruyama on identical noise. Throughput: particle-component
pairs per second of the field kernel alone (inputs already on the device, one time value; a pair
serves every group that contains the component), float64 and float32, full and diagonal
covariances; the CPU kernels' rate on the subsample in the same process is the baseline (ratio
reported). Sampling: Heun and RK4, 32 steps, N particles, wall time including transfers and
host-side tables. Target on one H200: >= 1e11 pairs/s in float64.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

TOL = {
    "field_float64": 1e-12,
    "ode_float64": 1e-10,
    "sde_float64": 1e-10,
    "field_float32": 1e-4,
    "ode_float32": 1e-4,
}
TARGET = 1e11


def _problem(K_per_class, n_classes, d, cov, seed):
    from refcfg.mixture import GMM, LabeledGMM

    rng = np.random.default_rng(seed)
    classes = []
    for _ in range(n_classes):
        means = 3.0 * rng.standard_normal((K_per_class, d))
        if cov == "full":
            A = rng.standard_normal((K_per_class, d, d))
            covs = A @ A.transpose(0, 2, 1) / d * 0.5 + 0.1 * np.eye(d)
        else:
            covs = rng.uniform(0.1, 1.0, (K_per_class, d))
        classes.append(GMM(np.full(K_per_class, 1.0 / K_per_class), means, covs))
    return LabeledGMM(classes)


def _rowwise(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(
        np.max(np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-300))
    )


def _rate(fn, pairs, min_time, max_reps):
    fn()  # warm-up (compilation, caches)
    reps, t0 = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        el = time.perf_counter() - t0
        if el >= min_time or reps >= max_reps:
            return pairs * reps / el, el / reps


def _ptxas(ptxas, ptx, cc):
    """Registers and spills that ptxas (the PTX -> SASS assembler) reports for one kernel."""
    import re
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as fh:
            fh.write(ptx)
        proc = subprocess.run(
            [ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", src, "-o", os.path.join(tmp, "k.cubin")],
            capture_output=True,
            text=True,
        )
    text = proc.stdout + proc.stderr
    # the kernel's own figures: the properties of the entry function (internal functions such as
    # libdevice's trig slow path are listed too, after it)
    entry = re.search(r"Compiling entry function '([^']+)'", text)
    regs = spill = None
    if entry:
        after = text[entry.end() :]
        m = re.search(r"Used (\d+) registers", after)
        regs = int(m.group(1)) if m else None
        m = re.search(
            r"Function properties for "
            + re.escape(entry.group(1))
            + r"\s+\d+ bytes stack frame, (\d+) bytes spill stores",
            after,
        )
        spill = int(m.group(1)) if m else None
    return {"ptxas_ok": proc.returncode == 0, "registers": regs, "spill_store_bytes": spill}


def _find_ptxas():
    import shutil

    found = shutil.which("ptxas")
    if found:
        return found
    try:
        import nvidia.cuda_nvcc as nv  # the pip CUDA toolkit (numba-cuda[cu12])

        cand = os.path.join(list(nv.__path__)[0], "bin", "ptxas")
        return cand if os.path.exists(cand) else None
    except ImportError:
        return None


PTX_KERNELS = ("evaluate", "euler", "heun", "midpoint", "rk4", "euler_maruyama")


def _ptx(cc, only=None):
    """Compile the kernels (d = 16, a CFG field: G = 2 groups) to PTX for compute capability cc
    without a GPU (NVVM only), and assemble them with ptxas when it is installed (registers,
    spills). Keys "{float64,float32}/{diag,full}/{kernel}" with kernel in PTX_KERNELS; ``only``
    restricts to some of them."""
    ptxas = _find_ptxas()
    import numba
    import numba.cuda.dispatcher as disp
    from numba import cuda, types
    from numba.cuda.random import xoroshiro128p_type

    class _Dev:  # device functions ask the current device for its compute capability
        compute_capability = cc

    disp.get_current_device = lambda: _Dev()
    from refcfg.sampling import _cuda_kernels as KK
    from refcfg.sampling.cuda import butcher
    from refcfg.sampling.lowering import MODE_DIAG, MODE_FULL

    d, G = 16, 2
    out = {}
    for dt, F in (("float64", numba.float64), ("float32", numba.float32)):
        A1, A2, A3 = F[::1], F[:, ::1], F[:, :, ::1]
        I2, I1, i = numba.int32[:, ::1], numba.int32[::1], numba.int64
        comp = types.NamedTuple((A2, A2, A3, A2), KK.DevComponents)  # mu, mue, Q, lam
        grp = types.NamedTuple((I2, I2, A2), KK.DevGroups)
        tab = types.NamedTuple((A1, A1, A1, A2, A3, A3, A2), KK.DevTables)  # alpha, beta, dm, ...
        noise = types.NamedTuple((A1, i, A3, xoroshiro128p_type[::1]), KK.DevNoise)
        for layout, mode in (("diag", MODE_DIAG), ("full", MODE_FULL)):
            for name in PTX_KERNELS:
                key = f"{dt}/{layout}/{name}"
                if only and key not in only:
                    continue
                if name == "evaluate":
                    fn = KK.evaluate_kernel(d, dt, mode == MODE_FULL, False, G)
                    sig = (A2, I1, comp, grp, tab, A2)
                elif name == "euler_maruyama":
                    fn = KK.sde_kernel(d, dt, mode == MODE_FULL, False, G)
                    sig = (A2, A3, i, A1, comp, grp, tab, noise)
                else:
                    fn = KK.ode_kernel(d, dt, mode == MODE_FULL, False, G, *butcher(name))
                    sig = (A2, A3, i, A1, comp, grp, tab)
                t0 = time.perf_counter()
                ptx, _ = cuda.compile_ptx(fn.py_func, sig, cc=cc)
                out[key] = {
                    "ptx_chars": len(ptx),
                    "seconds": time.perf_counter() - t0,
                    "f64_instructions": ptx.count(".f64"),
                    "local_memory_instructions": ptx.count("ld.local") + ptx.count("st.local"),
                    "target": f"sm_{cc[0]}{cc[1]}" in ptx,
                }
                if ptxas:
                    out[key].update(_ptxas(ptxas, ptx, cc))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (runs under the simulator)")
    ap.add_argument("--ptx", action="store_true", help="only compile the kernels to PTX (no GPU)")
    ap.add_argument("--cc", default="9.0", help="compute capability for --ptx (default 9.0)")
    ap.add_argument(
        "--kernels",
        default=None,
        help="--ptx: comma-separated subset of {float64,float32}/{diag,full}/"
        "{evaluate,euler,heun,midpoint,rk4,euler_maruyama} (default all 24)",
    )
    ap.add_argument("--n", type=int, default=None, help="particles (default 1e6; smoke 64)")
    ap.add_argument(
        "--cpu-sub",
        type=int,
        default=None,
        help="particles compared with the CPU kernels (default 1e5; smoke all)",
    )
    args = ap.parse_args(argv)

    import numba

    res = {
        "check": "refcfg gpu_check",
        "python": platform.python_version(),
        "numba": numba.__version__,
    }
    try:
        from importlib.metadata import version

        res["numba_cuda"] = version("numba-cuda")
    except Exception:  # noqa: BLE001 -- a version is information, never a reason to stop
        res["numba_cuda"] = None
    if args.ptx:
        cc = tuple(int(v) for v in args.cc.split("."))
        res["mode"] = "ptx"
        res["ptx"] = _ptx(cc, args.kernels.split(",") if args.kernels else None)
        res["ok"] = bool(res["ptx"]) and all(
            v["target"] and v["ptx_chars"] > 0 and v.get("ptxas_ok", True)
            for v in res["ptx"].values()
        )
        print(json.dumps(res))
        return 0 if res["ok"] else 1

    from refcfg.paths import GMMPath
    from refcfg.sampling import cpu as CPU
    from refcfg.sampling import cuda as C
    from refcfg.sampling.api import sigma_values

    C.require()
    sim = C.simulator_enabled()
    res["mode"] = "simulator" if sim else "gpu"
    res["smoke"] = bool(args.smoke)
    if not sim:
        from numba import cuda

        dev = cuda.get_current_device()
        res["device"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        res["compute_capability"] = list(dev.compute_capability)
    else:
        res["device"] = "numba CUDA simulator (CPU)"
    if args.smoke:
        Kc, C_, d, N, steps, sub, min_time, max_reps = (
            2,
            2,
            3,
            args.n or 64,
            4,
            args.cpu_sub or 64,
            0.0,
            1,
        )
    else:
        Kc, C_, d, N, steps, sub, min_time, max_reps = (
            16,
            4,
            16,
            args.n or 1_000_000,
            32,
            args.cpu_sub or 100_000,
            1.0,
            50,
        )
    sub = min(sub, N)
    K = Kc * C_
    res["problem"] = {
        "K": K,
        "classes": C_,
        "d": d,
        "w": 3.0,
        "N": N,
        "cpu_subsample": sub,
        "heun_steps": steps,
    }
    rng = np.random.default_rng(20261128)
    paths = {cov: GMMPath(_problem(Kc, C_, d, cov, 7), "linear") for cov in ("full", "diag")}
    y = rng.integers(0, C_, N)
    x = 2.0 * rng.standard_normal((N, d))
    t_grid_pp = np.round(rng.uniform(0.0, 1.0, N), 3)  # per-particle times, 1001 distinct

    # ---------------------------------------------------------------- agreement
    agree = {}
    f = paths["full"].cfg(y, 3.0)
    f_sub = paths["full"].cfg(y[:sub], 3.0)
    for label, t in (("t0.3", 0.3), ("t0", 0.0), ("t1", 1.0), ("t_per_particle", t_grid_pp)):
        tsub = t if np.ndim(t) == 0 else t[:sub]
        g = C.evaluate(f, x, t)
        agree[f"cfg_velocity_{label}"] = _rowwise(g[:sub], CPU.velocity(f_sub, x[:sub], tsub))
        if label == "t0.3":
            g32 = C.evaluate(f, x, t, dtype="float32")
            agree["float32_cfg_velocity_t0.3_vs_float64"] = _rowwise(g32, g)
    agree["cfg_score_t0.3"] = _rowwise(
        C.evaluate(f, x, 0.3, what="score")[:sub], CPU.score(f_sub, x[:sub], 0.3)
    )
    ts = np.linspace(0.0, 1.0, steps + 1)
    sampling = {}
    for sampler in ("heun", "rk4"):
        C.sample(paths["full"].cfg(y[:2], 3.0), x[:2], ts, sampler)  # compile before timing
        t0 = time.perf_counter()
        g_ode = C.sample(f, x, ts, sampler)
        sec = time.perf_counter() - t0
        stages = 2 if sampler == "heun" else 4
        sampling[sampler] = {
            "steps": steps,
            "N": N,
            "seconds": sec,
            "particle_steps_per_s": N * steps / sec,
            "pairs_per_s": N * steps * stages * K / sec,
        }
        agree[f"{sampler}_vs_cpu"] = _rowwise(
            g_ode[:sub], CPU.integrate(f_sub, x[:sub], ts, sampler)
        )
        g32 = C.sample(f, x, ts, sampler, dtype="float32")
        agree[f"float32_{sampler}_vs_float64"] = _rowwise(g32, g_ode)
    ts_sde = np.linspace(0.02, 1.0, steps + 1)
    sig = sigma_values("ddpm", ts_sde, f.schedule)
    noise = rng.standard_normal((steps, sub, d))
    agree["em_same_noise_vs_cpu"] = _rowwise(
        C.sample(f_sub, x[:sub], ts_sde, "euler_maruyama", sigma_values=sig, noise=noise),
        CPU.integrate(f_sub, x[:sub], ts_sde, "euler_maruyama", sigma=sig, noise=noise),
    )
    res["agreement"] = agree
    tol_of = {
        k: (
            TOL["field_float32"]
            if k.startswith("float32_cfg")
            else TOL["ode_float32"]
            if k.startswith(("float32_heun", "float32_rk4"))
            else TOL["ode_float64"]
            if k.startswith(("heun", "rk4"))
            else TOL["sde_float64"]
            if k.startswith("em")
            else TOL["field_float64"]
        )
        for k in agree
    }
    res["tolerances"] = tol_of
    res["agreement_ok"] = all(agree[k] <= tol_of[k] for k in agree)

    # ---------------------------------------------------------------- throughput
    thr = {}
    for cov, path in paths.items():
        fc = path.cfg(y, 3.0)
        for dt in ("float64", "float32"):
            plan = C._EvalPlan(fc, x, 0.5, "velocity", dt)
            rate, per = _rate(plan.launch, plan.n_pairs, min_time, max_reps)
            thr[f"{dt}_{cov}"] = {"pairs_per_s": rate, "seconds_per_eval": per}
        fcs = path.cfg(y[:sub], 3.0)
        xs = x[:sub]
        rate, per = _rate(lambda: CPU.velocity(fcs, xs, 0.5), sub * K, min_time, max_reps)
        thr[f"cpu_float64_{cov}"] = {
            "pairs_per_s": rate,
            "seconds_per_eval": per,
            "threads": numba.get_num_threads(),
        }
        thr[f"ratio_gpu_over_cpu_float64_{cov}"] = thr[f"float64_{cov}"]["pairs_per_s"] / rate
    res["throughput"] = thr
    res["sampling"] = {"N": N, **sampling}
    res["target_pairs_per_s_float64"] = TARGET
    best = max(thr["float64_full"]["pairs_per_s"], thr["float64_diag"]["pairs_per_s"])
    res["target_met"] = None if (sim or args.smoke) else bool(best >= TARGET)
    print(json.dumps(res))
    return 0 if res["agreement_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
