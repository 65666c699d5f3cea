"""Resource limits (refcfg/_limits.py): the memory budget and its refusal message."""

import pytest

from refcfg import _limits


def test_override_is_parsed(monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "2G")
    assert _limits.available_memory() == 2 * 2**30
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1.5M")
    assert _limits.available_memory() == int(1.5 * 2**20)
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="REFCFG_MEMORY_LIMIT"):
        _limits.available_memory()


def test_machine_reading_is_positive(monkeypatch):
    monkeypatch.delenv("REFCFG_MEMORY_LIMIT", raising=False)
    assert 0 < _limits.available_memory() < 2**50


def test_require_memory_refuses_with_the_estimate(monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1G")
    _limits.require_memory(0.5 * 2**30, "a job", "n")  # fits in 80 % of 1 GiB
    with pytest.raises(ValueError, match=r"a job needs an estimated 2 GiB .* lower n"):
        _limits.require_memory(2 * 2**30, "a job", "n")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lower n"):
            _limits.require_memory(bad, "a job", "n")


@pytest.mark.parametrize(
    "n, text", [(512, "512 B"), (2**10, "1 KiB"), (3 * 2**29, "1.5 GiB"), (2**40, "1 TiB")]
)
def test_format_bytes(n, text):
    assert _limits.format_bytes(n) == text
