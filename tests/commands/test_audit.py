"""``refcfg audit``: exit 0 only when every check passed, 1 when one failed, 2 when an audit could
not run (library missing: the reason is printed) or the arguments are wrong; the files it writes."""

import json

import pytest

from refcfg import audits
from refcfg.audits import AuditResult, LibraryMissing
from refcfg.cli import main


def _result(name, ok=True):
    res = AuditResult(name, True, 0)
    res.check("control", "glue", 1e-15, True, "<= 1e-12")
    res.check("finding", "behaviour", 0.5, ok, "> 0.1")
    res.add_series("sampler", [8, 16], [0.1, 0.05])
    res.tables["t"] = [{"a": 1.0}]
    return res


def test_bad_name_exits_2(capsys):
    assert main(["audit", "nope", "--fast"]) == 2
    assert "refcfg: error: NAME must be one of" in capsys.readouterr().err


def test_pass_writes_table_json_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(audits, "run_audit", lambda name, fast, seed: _result(name))
    assert main(["audit", "flow-matching", "--fast", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "flow-matching.json").read_text())
    assert data["passed"] and len(data["checks"]) == 2
    assert "| control" in (tmp_path / "flow-matching.md").read_text()
    assert (tmp_path / "flow-matching.png").stat().st_size > 1000
    assert "flow-matching: PASS" in capsys.readouterr().out


def test_failed_check_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(audits, "run_audit", lambda name, fast, seed: _result(name, ok=False))
    assert main(["audit", "k-diffusion", "--fast", "--out", str(tmp_path)]) == 1
    assert "FAIL finding: behaviour" in capsys.readouterr().out


@pytest.mark.slow
def test_missing_library_exits_2_with_reason(tmp_path, monkeypatch, capsys):
    def run(name, fast, seed):
        if name == "ddpm-pytorch":
            raise LibraryMissing("pip install --no-deps denoising-diffusion-pytorch einops")
        return _result(name)

    monkeypatch.setattr(audits, "run_audit", run)
    assert main(["audit", "all", "--fast", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ddpm-pytorch" in err and "pip install" in err and "refcfg: error:" in err
    assert (tmp_path / "diffusers-dit.json").is_file()


def test_result_passed_needs_checks():
    assert not AuditResult("x", True, 0).passed
    with pytest.raises(ValueError, match="kind"):
        AuditResult("x", True, 0).check("other", "c", 1.0, True, "")
