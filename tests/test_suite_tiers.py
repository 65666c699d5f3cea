"""The fast tier's list of slow modules names modules that exist (a renamed module would silently
move into the fast tier otherwise)."""

from pathlib import Path

from _tiers import SLOW_MODULES

ROOT = Path(__file__).resolve().parents[1]


def test_slow_modules_exist():
    missing = sorted(m for m in SLOW_MODULES if not (ROOT / m).is_file())
    assert not missing, missing
