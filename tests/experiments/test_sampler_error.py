"""refcfg.experiments.sampler_error and `refcfg sampler-error`: errors against the exact ODE
solution from the same noise to the end of each sampler's own grid, with fitted orders within 0.2 of
the known ones (Euler 1, Heun 2, DDIM 1) at stated step ranges; each reference's ends read off the
scheduler; DPM-Solver++ 2M on its default grid (order below 2, cause not separated by a control)
and DDIM's trailing spacing (an error floor) measured."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="torch not installed")

import refcfg  # noqa: E402
from refcfg.experiments.sampler_error import (  # noqa: E402
    Sampler,
    edm_run,
    fit_order,
    sampler_error,
)
from refcfg.interop.kdiffusion import EDMDenoiser  # noqa: E402

PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"), refcfg.schedule("linear"))
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def _edm_sampler(name, heun, w):
    model = EDMDenoiser(PATH, y=0, w=None if w == 1.0 else w)
    # linear schedule: sigma <-> t = 1 / (1 + sigma), x_t = x / (1 + sigma)
    run = edm_run(model, "heun" if heun else "euler", SIGMA_MIN, SIGMA_MAX)
    return Sampler(
        name,
        run,
        t_start=1 / (1 + SIGMA_MAX),
        scale=SIGMA_MAX / (1 + SIGMA_MAX),
        nfe=(lambda s: 2 * s - 1) if heun else (lambda s: s),
        t_end=1 / (1 + SIGMA_MIN),
        final_x0=True,
    )


def test_fit_order_recovers_a_power_law():
    steps = np.array([4, 8, 16, 32])
    assert fit_order(steps, 3.0 * steps**-1.5) == pytest.approx(1.5, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("w", [3.0])
def test_edm_euler_and_heun_orders(w):
    """Steps 32, 64, 128 (at 16 -> 32 Heun is still pre-asymptotic: ratio 4.9, order 2.3)."""
    res = sampler_error(
        [_edm_sampler("edm-euler", False, w), _edm_sampler("edm-heun", True, w)],
        PATH,
        y=0,
        ws=(w,),
        steps=(32, 64, 128),
        n=32,
        ref_steps=1000,
    )
    assert abs(res.orders[("edm-euler", w)] - 1) <= 0.2, res.table()
    assert abs(res.orders[("edm-heun", w)] - 2) <= 0.2, res.table()
    assert max(res.ref_error.values()) < 1e-8


@pytest.mark.slow
def test_diffusers_pipeline_orders():
    """DDIM (leading spacing), Euler and Heun over 10, 20, 40 steps: within 0.2 of 1, 1, 2."""
    pytest.importorskip("diffusers", reason="diffusers not installed")
    res = sampler_error(
        ["ddim", "euler", "heun"], PATH, y=0, ws=(3.0,), steps=(10, 20, 40), n=64, ref_steps=1000
    )
    for name, order in (("ddim", 1), ("euler", 1), ("heun", 2)):
        assert abs(res.orders[(name, 3.0)] - order) <= 0.2, res.table()
    assert max(res.ref_error.values()) < 1e-9


def test_references_end_where_the_schedulers_end():
    """The ends come from the scheduler after set_timesteps: DPM-Solver++ 2M's default grid ends at
    round(999/N) (100 at N = 10, 25 at N = 40), Euler's at 0, DDIM's leading grid starts at
    (N - 1) floor(1000/N) and ends at 0; each mapped by the model's own timestep map."""
    diffusers = pytest.importorskip("diffusers", reason="diffusers not installed")
    from refcfg.experiments.sampler_error import pipeline
    from refcfg.interop import time_from_signal_noise
    from refcfg.interop.diffusers import signal_noise

    def t_of(sched, k):
        return float(time_from_signal_noise(PATH.schedule, *signal_noise(sched, k))[0][0])

    dpm = pipeline("dpmpp-2m", PATH, 0, 3.0)
    sch = diffusers.DPMSolverMultistepScheduler()
    for n, last in ((10, 100), (40, 25)):
        t0, c, t1, final = dpm.ends(n)
        assert (t0, t1, final) == (t_of(sch, 999), t_of(sch, last), True)
    ddim = pipeline("ddim", PATH, 0, 3.0)
    sch = diffusers.DDIMScheduler()
    t0, c, t1, _ = ddim.ends(30)
    assert (t0, t1, c) == (
        t_of(sch, 29 * 33),
        t_of(sch, 0),
        pytest.approx(
            float(time_from_signal_noise(PATH.schedule, *signal_noise(sch, 29 * 33))[1][0]),
            rel=1e-15,
        ),
    )
    assert pipeline("euler", PATH, 0, 3.0).ends(17)[2] == t_of(
        diffusers.EulerDiscreteScheduler(), 0
    )


@pytest.mark.slow
def test_grid_effects_are_measured_not_hidden():
    """DPM-Solver++ 2M on diffusers' default grid against a reference that ends where it ends:
    its last log-SNR step stays above 0.4 from 10 to 160 steps and the fitted order is 1.1 to
    1.6, not 2 (measured; the cause is not separated by a control: docs). DDIM with trailing
    spacing floors (order < 0.8) where its leading default fits 1."""
    pytest.importorskip("diffusers", reason="diffusers not installed")
    res = sampler_error(
        ["dpmpp-2m", "ddim-trailing"],
        PATH,
        y=0,
        ws=(3.0,),
        steps=(10, 20, 40, 80, 160),
        n=32,
        ref_steps=1000,
    )
    assert 1.1 <= res.orders[("dpmpp-2m", 3.0)] <= 1.6, res.table()
    h_last = [r["h_last"] for r in res.rows if r["sampler"] == "dpmpp-2m"]
    assert min(h_last) > 0.4, h_last
    assert res.orders[("ddim-trailing", 3.0)] < 0.8, res.table()


def test_cli_writes_table_json_and_figure(tmp_path, capsys):
    pytest.importorskip("diffusers", reason="diffusers not installed")
    from refcfg.cli import main

    out = tmp_path / "se"
    assert (
        main(
            [
                "sampler-error",
                "--samplers",
                "euler,ddim",
                "--w",
                "1,3",
                "--steps",
                "4,8",
                "--n",
                "16",
                "--ref-steps",
                "100",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads((out / "sampler_error.json").read_text())
    assert {r["sampler"] for r in data["rows"]} == {"euler", "ddim"} and len(data["rows"]) == 8
    assert (out / "sampler_error.png").stat().st_size > 10_000
    assert "fitted order" in (out / "sampler_error.md").read_text()
    capsys.readouterr()
    for argv, match in [
        (["--samplers", "rk9"], "--samplers"),
        (["--steps", "8"], "--steps"),
        (["--w", "a"], "--w"),
        (["--y", "7"], "--y"),
    ]:
        assert main(["sampler-error", *argv, "--out", str(out)]) == 2
        assert match in capsys.readouterr().err


def test_bad_arguments_fail_before_any_run():
    """A typo in any sampler name, bad weights and a float n fail up front, not after the first
    sampler's runs (a Sampler whose run raises shows that none ran)."""

    def never(noise, steps):
        raise AssertionError("a run started before the arguments were checked")

    first = Sampler("first", never, 0.5, 1.0, lambda s: s, 0.9, False)
    for kwargs, exc, match in [
        (dict(samplers=[first, "dpmpp2m"]), ValueError, "dpmpp2m"),
        (dict(samplers=[first], ws=(float("nan"),)), ValueError, "ws must be"),
        (dict(samplers=[first], ws=("3",)), ValueError, "ws must be"),
        (dict(samplers=[first], n=16.7), TypeError, "n must be a positive int"),
        (dict(samplers=[first], steps=(4, 8.5)), TypeError, "steps must be a positive int"),
    ]:
        args = dict(path=PATH, y=0, ws=(1.0,), steps=(4, 8), n=4) | kwargs
        with pytest.raises(exc, match=match):
            sampler_error(**args)
