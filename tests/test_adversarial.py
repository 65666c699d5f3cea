"""The adversarial pass (verification/adversarial.py --fast): hostile problem files, model files,
NPZ inputs, sweep specs and directories, check targets and huge sizes, each run through the command
line in a fresh process; every outcome must be a one-line refusal or the correct answer, never a
traceback, a MemoryError, a hang, a false pass or an output left by a refused job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_adversarial_fast_subset_finds_no_fail(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "verification" / "adversarial.py"),
            "--fast",
            "--json",
            "--keep",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    doc = json.loads(res.stdout)
    fails = [r for r in doc["results"] if r["outcome"] == "FAIL"]
    assert not fails, fails
    assert res.returncode == 0
    counts = doc["counts"]
    assert counts["error"] >= 20 and counts["answer"] >= 2, counts
