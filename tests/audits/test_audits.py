"""The four audits in fast mode (what CI runs): every control agrees to its stated tolerance and
the headline findings hold. Each audit skips with the install line when its library is absent."""

import pytest

from refcfg.audits import LibraryMissing, run_audit

pytestmark = pytest.mark.slow


def _run(name):
    try:
        return run_audit(name, fast=True, seed=0)
    except LibraryMissing as exc:
        pytest.skip(str(exc))


def _value(res, text):
    hits = [c for c in res.checks if text in c.name]
    assert len(hits) == 1, (text, [c.name for c in res.checks])
    return hits[0].value


def _all_pass(res):
    assert res.passed, "\n".join(
        f"{c.kind}: {c.name}: {c.value} (expected {c.expect})" for c in res.failures()
    )
    assert sum(c.kind == "control" for c in res.checks) >= 2


def test_flow_matching():
    res = _run("flow-matching")
    _all_pass(res)
    assert _value(res, "ODESolver euler (float64 grid") <= 1e-12
    assert _value(res, "= Kutta's 3/8 rule") <= 1e-12
    assert abs(_value(res, "fitted order of midpoint") - 2) <= 0.5
    assert _value(res, "dopri5 evaluates the model past t = 1") > 0


def test_diffusers_dit():
    res = _run("diffusers-dit")
    _all_pass(res)
    assert _value(res, "ddim: pipeline (guidance_scale 3)") <= 1e-10
    assert _value(res, "guidance_scale 0 gives the conditional model") <= 1e-10
    assert _value(res, "euler inside DiTPipeline does not converge") < 0.3
    assert abs(_value(res, "fitted order of dpmpp-2m (nominal 2) in a standard loop") - 2) <= 0.3


def test_ddpm_pytorch():
    res = _run("ddpm-pytorch")
    _all_pass(res)
    assert _value(res, "pred_v: ddim_sample") <= 1e-12
    assert _value(res, "sample(classes) with its defaults") <= 1e-12
    assert _value(res, "pred_noise: the library's rule is not plain CFG") > 1e-2


def test_k_diffusion():
    res = _run("k-diffusion")
    _all_pass(res)
    assert _value(res, "CFG wrapper") <= 1e-12
    assert abs(_value(res, "fitted order of sample_heun") - 2) <= 0.5
    assert _value(res, "ancestral samplers reach the exact CFG SDE law") > 0.01
