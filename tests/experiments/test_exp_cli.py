"""``refcfg reproduce``: usage errors and one fast run through the CLI."""

from __future__ import annotations

import pytest

from refcfg.cli import main

pytestmark = pytest.mark.slow


def test_unknown_result_is_a_usage_error(capsys):
    assert main(["reproduce", "no-such-result"]) == 2
    err = capsys.readouterr().err
    assert "unknown result 'no-such-result'" in err and "predictor-corrector" in err


def test_fast_run_prints_table_and_writes_figure(tmp_path, capsys):
    assert main(["reproduce", "predictor-corrector", "--fast", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| w " in out and "sde/tilt at w_max" in out
    png = tmp_path / "predictor-corrector-fast.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_out_under_a_file_is_refused_before_the_study_runs(tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the study ran before --out was checked")

    monkeypatch.setattr("refcfg.experiments.run_experiment", never)
    blocker = tmp_path / "f"
    blocker.write_text("")
    assert main(["reproduce", "predictor-corrector", "--fast", "--out", str(blocker / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "is a file, not a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
