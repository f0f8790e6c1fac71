"""A researcher's own binary data from .npy, .npz or .csv files (issue: "your own binary data").

The file holds a 0/1 matrix, one pattern per row (or a stack of 0/1 images, one per leading
index). Everything is validated before a :class:`~bmprune.data.Dataset` is built, so a bad
file fails here with an explanation instead of deep inside training.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import DataError
from .dataset import Dataset

__all__ = ["load_binary"]


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _describe_magic(head: bytes) -> str:
    if not head:
        return "the file is empty"
    if head.startswith((_ZIP_MAGIC, b"PK\x05\x06")):
        return "a zip archive (an .npz file?)"
    if head.startswith(_NPY_MAGIC):
        return "a .npy file"
    if head[:1] == b"\x80" or head[:1] in (b"(", b"]", b"}"):
        return "possibly a Python pickle (never loaded)"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    return "not a NumPy file"


def _read_npy_stream(f: IO[bytes], available: int, what: str) -> np.ndarray:
    """Read one .npy array from a stream holding ``available`` bytes, validated before allocating.

    The header (magic, version, dtype, shape) is checked first: object dtypes (pickled Python
    objects) are refused unread, and the payload size the header promises must equal what the
    stream holds, so a truncated file fails here instead of inside NumPy, and a corrupt
    header cannot make it allocate a huge array.
    """
    fmt = np.lib.format
    head = f.read(len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        raise DataError(f"cannot read {what}: not a .npy array: wrong magic bytes ({_describe_magic(head + f.read(4))})")
    version = f.read(2)
    if len(version) < 2:
        raise DataError(f"cannot read {what}: truncated .npy header")
    try:
        if version == b"\x01\x00":
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == b"\x02\x00":
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise DataError(
                f"cannot read {what}: unsupported .npy format version {version[0]}.{version[1]} "
                "(NumPy writes 1.0 or 2.0 for numeric arrays)"
            )
    except DataError:
        raise
    except (ValueError, SyntaxError, TypeError, EOFError, OSError) as exc:  # truncated or garbled header
        raise DataError(f"cannot read {what}: truncated or invalid .npy header ({exc})") from exc
    if dtype.hasobject:
        raise DataError(
            f"refusing {what}: it holds Python objects (dtype {dtype}), which only a pickle can restore; "
            "bmprune never loads pickles. Save a numeric or boolean 0/1 array instead."
        )
    count = math.prod(shape)
    need = count * dtype.itemsize
    have = available - f.tell() if available >= 0 else -1
    if have >= 0 and have != need:
        kind = "truncated" if have < need else "has trailing bytes"
        raise DataError(
            f"cannot read {what}: {kind}: the header promises a {dtype} array of shape {shape} "
            f"({need:,} bytes of data), the file holds {have:,}"
        )
    buf = bytearray(need)  # writable, like what np.load returns
    view, got = memoryview(buf), 0
    while got < need:
        n = f.readinto(view[got:])
        if not n:
            raise DataError(f"cannot read {what}: truncated: {got:,} of {need:,} bytes of array data")
        got += n
    arr = np.frombuffer(buf, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        return _read_npy_stream(f, os.fstat(f.fileno()).st_size, str(path))


def _npz_member(z: zipfile.ZipFile, key: str) -> zipfile.ZipInfo | None:
    for name in (f"{key}.npy", key):
        try:
            return z.getinfo(name)
        except KeyError:
            continue
    return None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(_ZIP_MAGIC):
            raise DataError(
                f"cannot read {path}: truncated or corrupt .npz archive: it starts like a zip file but "
                f"its directory is missing or damaged ({exc})"
            ) from exc
        raise DataError(f"cannot read {path}: not an .npz (zip) archive ({_describe_magic(head)})") from exc
    with z:
        info_x, info_y = _npz_member(z, "x"), _npz_member(z, "y")
        if info_x is None:
            keys = [n.removesuffix(".npy") for n in z.namelist()]
            raise DataError(f"{path}: an .npz file must hold the patterns under key 'x' (found {keys})")
        out = []
        for info in (info_x, info_y):
            if info is None:
                out.append(None)
                continue
            with z.open(info) as member:
                out.append(_read_npy_stream(member, info.file_size, f"{path}[{info.filename}]"))
    return out[0], out[1]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> np.ndarray:
    with open(path, "r", encoding="utf-8-sig") as f:
        first = f.readline()
    # a first line without a single number is a header; one that mixes numbers and text is
    # data (and fails below), so that a damaged first row is never silently dropped
    header = 0 if any(_is_number(c.strip()) for c in first.split(",")) else 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": empty is checked later
            arr = np.loadtxt(path, delimiter=",", skiprows=header, dtype=np.float64, ndmin=2,
                             encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise
    except ValueError as exc:  # ragged rows, non-numeric cells
        raise DataError(f"{path}: not a numeric CSV matrix: {exc}") from exc
    return arr


def _read(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv"):
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz (keys x, y) or .csv")
    try:
        if suffix == ".npy":
            return _read_npy(path), None
        if suffix == ".npz":
            return _read_npz(path)
        return _read_csv(path), None
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot read {path}: not a UTF-8 text file ({exc}); a .csv must be comma-separated text") from exc
    except MemoryError as exc:
        raise DataError(f"cannot read {path}: too large to load into memory") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, NotImplementedError,
            RuntimeError) as exc:
        # truncated or corrupt archives (bad CRC, unsupported compression, encrypted members), I/O errors
        raise DataError(f"cannot read {path}: corrupt or truncated file ({type(exc).__name__}: {exc})") from exc


def load_binary(
    path: str | os.PathLike[str],
    image_shape: tuple[int, int] | None = None,
    labels: Any = None,
    *,
    name: str | None = None,
) -> Dataset:
    """Load a researcher's own 0/1 data.

    Parameters
    ----------
    path : path-like
        ``.npy`` (an array), ``.npz`` (key ``x``, optional key ``y`` for labels) or ``.csv``
        (comma-separated 0/1, one pattern per row, an optional header line). ``x`` is
        (N, n_visible), or (N, h, w) images which are flattened row-major (``image_shape``
        then defaults to (h, w)). bool, integer and float 0/1 are accepted.
    image_shape : (h, w), optional
        How a pattern is drawn; ``h·w`` must equal ``n_visible``.
    labels : array_like, shape (N,), optional
        Integer class labels; override a ``y`` stored in an .npz file.
    name : str, optional
        Dataset name; default the file's stem.

    Returns
    -------
    Dataset
        ``x`` (N, n_visible) uint8; ``meta`` has the file's path and sha256.

    Raises
    ------
    DataError
        Missing, unreadable or unsupported file; a truncated or corrupt file (an ``.npy``
        whose header promises more or fewer bytes than it holds, an ``.npz`` that is not a
        complete zip archive or whose member fails its CRC, a CSV that is not UTF-8 text or
        has ragged or non-numeric rows); arrays of Python objects (refused unread: pickles are
        never loaded); empty data; NaN; values other than 0 and 1; an image shape that does
        not fit; labels that are not N integers. Never a NumPy, zipfile or zlib exception.

    Notes
    -----
    DESIGN.md §Errors. The ``.npy`` header (also of each ``.npz`` member) is parsed and
    checked against the file's size before any array is allocated, so a corrupt header cannot
    trigger a huge allocation. A user file has no pinned checksum: ``meta["files"]`` records
    its sha256 for provenance, ``official`` is ``None``.
    """
    from .store import file_digest

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    x, y = _read(path)
    if labels is not None:
        y = labels
    x = np.asarray(x)
    if x.ndim == 3:
        if image_shape is None:
            image_shape = (int(x.shape[1]), int(x.shape[2]))
        elif tuple(image_shape) != x.shape[1:]:
            raise DataError(f"{path}: images are {x.shape[1:]} but image_shape {tuple(image_shape)} was given")
        x = x.reshape(x.shape[0], -1)
    elif x.ndim != 2:
        raise DataError(
            f"{path}: data must be a matrix (N patterns × n_visible) or a stack of images (N, h, w); got shape {x.shape}"
        )
    meta = {"source": str(path), "files": [{"path": str(path), "sha256": file_digest(path), "official": None}]}
    # Dataset validates values, NaN, emptiness, labels and the image shape with explained errors
    try:
        return Dataset(x=x, y=y, image_shape=image_shape, name=name or path.stem, meta=meta)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc
