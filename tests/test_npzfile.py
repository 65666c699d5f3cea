"""refcfg._npzfile: hostile .npz files are refused from their zip directory and NPY headers, before
any data is read, with a ValueError naming the file and the field."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from refcfg._npzfile import NpzFile


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _forged_header(shape, descr="<f8", payload=64):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + b"\0" * payload


def test_reads_a_good_archive(tmp_path):
    p = tmp_path / "good.npz"
    np.savez(p, a=np.arange(6.0).reshape(2, 3), s=np.array("text"))
    with NpzFile(p, "FILE") as f:
        assert sorted(f.names) == ["a", "s"]
        assert f.header("a") == ((2, 3), np.dtype("<f8"))
        np.testing.assert_array_equal(
            f.array("a", ndim=2, finite=True), np.arange(6.0).reshape(2, 3)
        )
        assert str(f.array("s", kinds="U")) == "text"


def test_a_header_declaring_1e11_entries_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1G")
    p = tmp_path / "forged.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("samples.npy", _forged_header((10**11,)))
    with NpzFile(p, "FILE") as f:
        with pytest.raises(
            ValueError,
            match=r"forged\.npz': field 'samples' \(shape "
            r"\(100000000000,\).*needs an estimated 745 GiB",
        ):
            f.array("samples")


def test_a_header_larger_than_its_data_is_refused(tmp_path):
    p = tmp_path / "short.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x.npy", _forged_header((1000,)))
    with NpzFile(p, "FILE") as f, pytest.raises(ValueError, match="truncated or forged"):
        f.array("x")


@pytest.mark.slow
def test_a_zip_bomb_is_refused_from_its_declared_size(tmp_path, monkeypatch):
    # 256 MiB of zeros compress to about 250 KiB; the zip directory declares the real size
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "64M")
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as fh:
            fh.write(_forged_header((2**25,), payload=0))
            for _ in range(16):
                fh.write(b"\0" * (1 << 24))
    assert p.stat().st_size < 2**20
    with (
        NpzFile(p, "FILE") as f,
        pytest.raises(
            ValueError,
            match=r"bomb\.npz': field 'x'.*"
            r"268435584 bytes uncompressed",
        ),
    ):
        f.array("x")


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.ones(3) + 1j, r"dtype complex128 \(complex\); required real floating-point"),
        (np.array(["1.0", "2.0"]), r"dtype <U3 \(string\)"),
        (np.array([1.0, None], dtype=object), r"dtype object"),
    ],
)
def test_dtypes_other_than_required_are_refused(tmp_path, arr, message):
    p = tmp_path / "typed.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x.npy", _npy_bytes(arr))
    with (
        NpzFile(p, "FILE") as f,
        pytest.raises(ValueError, match=r"typed\.npz': field 'x' has " + message),
    ):
        f.array("x")


def test_non_finite_values_refused_on_request(tmp_path):
    p = tmp_path / "nan.npz"
    np.savez(p, x=np.array([1.0, np.nan, np.inf]))
    with NpzFile(p, "FILE") as f:
        assert f.array("x").shape == (3,)
        with pytest.raises(ValueError, match=r"field 'x' has 2 NaN or infinite value\(s\)"):
            f.array("x", finite=True)


def test_not_an_archive(tmp_path):
    single = tmp_path / "a.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match=r"a\.npy' holds a single \.npy array"):
        NpzFile(single, "FILE")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match=r"junk\.npz' is not an \.npz archive"):
        NpzFile(junk, "FILE")
    with pytest.raises(ValueError, match="does not exist"):
        NpzFile(tmp_path / "missing.npz", "FILE")
