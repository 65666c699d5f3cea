"""The test tree mirrors the package: tests/<subpackage>/test_<module>.py.

The test directories are not packages (flow_matching installs a top-level ``tests`` package, which
an ``__init__.py`` here would collide with): pytest imports every test module under its basename,
with its directory and tests/ on sys.path, so helpers are plain modules (``from _oracles import``)
and basenames must be unique across the tree."""

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PACKAGE = ROOT / "refcfg"


def _test_modules():
    return sorted(p for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)


def test_basenames_are_unique():
    counts = Counter(p.name for p in _test_modules())
    twice = {name: n for name, n in counts.items() if n > 1}
    assert not twice, f"test module basenames used more than once: {twice}"


def test_no_package_markers():
    inits = sorted(str(p.relative_to(ROOT)) for p in TESTS.rglob("__init__.py"))
    assert not inits, f"tests/ must stay a plain directory tree: {inits}"


def test_test_directories_are_subpackages():
    """Every tests/<dir>/ holding tests names a subpackage refcfg/<dir>/."""
    dirs = {p.parent for p in _test_modules()} - {TESTS}
    assert dirs, "no test subdirectories found"
    orphans = sorted(
        str(d.relative_to(ROOT)) for d in dirs if not (PACKAGE / d.name / "__init__.py").is_file()
    )
    assert not orphans, f"test directories without a refcfg subpackage: {orphans}"
    nested = sorted(str(d.relative_to(ROOT)) for d in dirs if d.parent != TESTS)
    assert not nested, f"one level of test directories (as the package): {nested}"


def test_top_level_tests_are_not_named_after_a_subpackage_module():
    """A top-level test module is not named after a refcfg subpackage's module (it belongs in
    that subpackage's test directory)."""
    subpackages = [p.parent for p in PACKAGE.glob("*/__init__.py")]
    misplaced = []
    for p in TESTS.glob("test_*.py"):
        stem = p.stem.removeprefix("test_")
        if any((PACKAGE / f"{pre}{stem}.py").is_file() for pre in ("", "_")):
            continue  # a top-level module of refcfg (public or private): its test is top-level
        owners = [s.name for s in subpackages if (s / f"{stem}.py").is_file()]
        if owners:
            misplaced.append(f"{p.name} -> tests/{owners[0]}/")
    assert not misplaced, misplaced
