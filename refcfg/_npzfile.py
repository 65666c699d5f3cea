"""Reading arrays from ``.npz`` files that may be hostile: sizes first, then the data.

An ``.npz`` file is a zip archive of ``.npy`` members. :class:`NpzFile` reads the zip directory
(each member's declared uncompressed size) and each member's NPY header (shape, dtype) before it
reads a byte of data, checks them against the memory budget (:func:`refcfg._limits.require_memory`)
and against what the caller requires (dtype kind, shape), never unpickles (``allow_pickle=False``),
and checks the values it returns for finiteness on request. A zip bomb, an NPY header declaring
1e11 entries, a complex, object or string array where numbers are needed, a NaN: each is a
ValueError that names the file and the field (the member), raised before the allocation.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["NpzFile", "NPY_MAGIC"]

NPY_MAGIC = b"\x93NUMPY"
"""The first bytes of an ``.npy`` file."""

_KIND_NAMES = {
    "f": "real floating-point",
    "i": "integer",
    "u": "unsigned integer",
    "b": "boolean",
    "U": "string",
    "S": "bytes",
    "c": "complex",
    "O": "object",
    "V": "structured",
    "M": "datetime",
    "m": "timedelta",
}


class NpzFile:
    """An ``.npz`` archive opened for checked reads (a context manager).

    ``what`` names the file in messages ("model file", "FILE"). ``names`` lists the arrays.
    ``header(name)`` is (shape, dtype) from the member's NPY header; ``array(name, kinds=...)``
    reads one array after checking its header."""

    def __init__(self, path, what: str = "file"):
        self.path = Path(path)
        self.label = f"{what} {str(self.path)!r}"
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(len(NPY_MAGIC))
        except FileNotFoundError:
            raise ValueError(f"{self.label} does not exist") from None
        except IsADirectoryError:
            raise ValueError(f"{self.label} is a directory; required an .npz file") from None
        except OSError as exc:
            raise ValueError(f"{self.label} cannot be read: {exc.strerror}") from None
        if head == NPY_MAGIC:
            raise ValueError(
                f"{self.label} holds a single .npy array, not an .npz archive; save "
                f"it with np.savez(FILE, name=array)"
            )
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{self.label} is not an .npz archive ({exc})") from None
        self._members = {}
        for info in self._zip.infolist():
            if info.filename.endswith(".npy"):
                self._members[info.filename[:-4]] = info

    def __enter__(self) -> NpzFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive."""
        self._zip.close()

    @property
    def names(self) -> list[str]:
        """The names of the arrays in the archive."""
        return list(self._members)

    def _info(self, name: str) -> zipfile.ZipInfo:
        if name not in self._members:
            raise ValueError(f"{self.label} has no field {name!r} (it holds {self.names})")
        return self._members[name]

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of field ``name`` from its NPY header, without reading its data."""
        info = self._info(name)
        try:
            with self._zip.open(info) as fp:
                return self._read_header(fp, name)[:2]
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise ValueError(f"{self.label}: field {name!r} cannot be read ({exc})") from None

    def _read_header(self, fp, name):
        fmt = np.lib.format
        try:
            version = fmt.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported NPY version {version}")
        except (ValueError, TypeError, SyntaxError) as exc:
            raise ValueError(
                f"{self.label}: field {name!r} has no valid NPY header "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
        return tuple(int(s) for s in shape), np.dtype(dtype), fortran

    def array(
        self,
        name: str,
        *,
        kinds: str = "f",
        ndim: int | None = None,
        finite: bool = False,
        max_items: int | None = None,
    ) -> np.ndarray:
        """Field ``name`` as an array, after checking its header: dtype kind in ``kinds`` ("f" real
        floats, "i"/"u" integers, "U" strings ...), ``ndim`` dimensions when given, at most
        ``max_items`` entries when given, and a size (declared by the header and by the zip
        directory) within the memory budget. ``finite=True`` also refuses NaN and infinities."""
        from ._limits import require_memory

        info = self._info(name)
        field = f"{self.label}: field {name!r}"
        try:
            with self._zip.open(info) as fp:
                shape, dtype, _ = self._read_header(fp, name)
                if dtype.hasobject or dtype.kind not in kinds:
                    allowed = " or ".join(_KIND_NAMES.get(k, k) for k in kinds)
                    raise ValueError(
                        f"{field} has dtype {dtype} ({_KIND_NAMES.get(dtype.kind, '?')}"
                        f"); required {allowed}"
                    )
                if ndim is not None and len(shape) != ndim:
                    raise ValueError(f"{field} has shape {shape}; required {ndim} dimension(s)")
                items = math.prod(shape)
                if max_items is not None and items > max_items:
                    raise ValueError(
                        f"{field} declares {items} entries (shape {shape}); at most "
                        f"{max_items} are accepted here"
                    )
                nbytes = float(items) * dtype.itemsize
                require_memory(
                    max(nbytes, float(info.file_size)),
                    f"reading {field} (shape {shape}, {dtype}; {info.file_size} bytes "
                    f"uncompressed)",
                    "the size of the array in the file",
                )
                if info.file_size < nbytes:
                    raise ValueError(
                        f"{field} declares {int(nbytes)} bytes of data but the "
                        f"archive holds {info.file_size} (truncated or forged)"
                    )
            with self._zip.open(info) as fp:
                try:
                    arr = np.lib.format.read_array(fp, allow_pickle=False)
                except ValueError as exc:
                    raise ValueError(
                        f"{field} cannot be read ({str(exc).splitlines()[0]})"
                    ) from None
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise ValueError(f"{field} cannot be read ({exc})") from None
        if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{field} has {bad} NaN or infinite value(s); required finite")
        return arr
