"""MNIST as the paper prepares it (SPEC §3).

Reads the four official IDX files (gzip or not), validates them, scales to [0, 1], crops the
central 20×20 (``img[4:24, 4:24]``) and binarises against the mean pixel of the cropped split.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import Dataset
from .integrity import read_verified
from .store import MNIST_DIR, MNIST_FILES, missing_error
from .store import data_dir as _resolve_dir

__all__ = ["load_mnist", "read_idx", "binarize_mean"]

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
SIDE = 28


def _candidates(directory: Path, gz_name: str) -> list[Path]:
    plain = gz_name[:-3]
    # LeCun's archives unpack to "train-images.idx3-ubyte"; other tools write "-idx3-".
    return [directory / gz_name, directory / plain, directory / plain.replace("-idx", ".idx")]


def _find(root: Path, gz_name: str) -> Path:
    searched = [root / MNIST_DIR, root]
    for d in searched:
        for p in _candidates(d, gz_name):
            if p.is_file():
                return p
    raise missing_error(f"MNIST file {gz_name} (or its gunzipped form)", searched, "mnist")


def _read_bytes(path: Path, verify: bool) -> tuple[dict[str, Any], bytes]:
    """(provenance, decompressed IDX bytes); gzip is recognised by its magic, not the name.

    The file is verified against its pinned checksum (through its record) before anything is
    decompressed or parsed, so a damaged official file is a ChecksumError with the re-fetch
    command rather than a parse error.
    """
    raw, source = read_verified(path, verify=verify)
    if raw[:2] != b"\x1f\x8b":
        return source, raw
    try:
        return source, gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, MemoryError) as exc:
        # EOFError: truncated stream; BadGzipFile (an OSError) / zlib.error: corrupt data
        raise DataError(f"{path} is a corrupt or truncated gzip file ({type(exc).__name__}: {exc})") from exc


def read_idx(buf: bytes, magic: int, *, what: str = "IDX data") -> np.ndarray:
    """Parse an IDX file of unsigned bytes.

    Parameters
    ----------
    buf : bytes
        The decompressed file content.
    magic : int
        The expected magic number (2051 for images, 2049 for labels).
    what : str
        Name for error messages (the file path).

    Returns
    -------
    numpy.ndarray, dtype uint8, shape given by the header (e.g. (N, 28, 28) or (N,))

    Raises
    ------
    DataError
        Wrong magic number, a header shorter than it claims, or a payload whose length is not
        the product of the dimensions (truncated or with trailing bytes).
    """
    if len(buf) < 4:
        raise DataError(f"{what}: file too short ({len(buf)} bytes) to be an IDX file")
    found = int.from_bytes(buf[:4], "big")
    if found != magic:
        raise DataError(
            f"{what}: wrong magic number {found} (expected {magic}); not an MNIST "
            f"{'image' if magic == IMAGES_MAGIC else 'label'} file, or corrupt"
        )
    ndim = buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{what}: truncated header ({len(buf)} bytes, needs {header})")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims)  # exact: four u4 dimensions can overflow int64
    got = len(buf) - header
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise DataError(f"{what}: {kind}: header says {dims} = {expected} values, file holds {got}")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims)


def binarize_mean(images: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, float]:
    """Binarise 8-bit images against the mean of the whole set (SPEC §3): ``pixel/255 ≥ mean → 1``.

    Parameters
    ----------
    images : numpy.ndarray, dtype uint8, any shape
    threshold : float, optional
        A fixed threshold in [0, 1] instead of the set's mean.

    Returns
    -------
    x : numpy.ndarray, same shape, dtype uint8 in {0, 1}
    threshold : float
        The threshold used, on the [0, 1] scale.

    Notes
    -----
    SPEC §3 says "pixel > mean → 1 (ties → 1)", i.e. ``≥``. The comparison is done exactly in
    integers: ``p/255 ≥ S/(255·n)`` ⇔ ``p ≥ ⌈S/n⌉`` with ``S`` the pixel sum and ``n`` the
    pixel count, so no float rounding can flip a tie.
    """
    if threshold is None:
        total = int(images.sum(dtype=np.int64))
        count = int(images.size)
        level = -(-total // count)  # ceil(S / n): smallest integer pixel value ≥ the mean
        t = total / count / 255.0
    else:
        t = float(threshold)
        if not 0.0 <= t <= 1.0:
            raise ConfigError(f"threshold must lie in [0, 1]; got {threshold}")
        level = int(np.ceil(t * 255.0 - 1e-9))
    return (images >= level).astype(np.uint8), t


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    crop: int | None = 20,
    threshold: float | None = None,
    verify: bool = True,
) -> Dataset:
    """Load MNIST prepared as in the paper (SPEC §3).

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test images.
    data_dir : path-like, optional
        Directory holding ``mnist/`` (the files are also accepted directly in it). Default:
        ``$BMPRUNE_DATA_DIR`` or the user cache directory.
    crop : int or None
        Side of the central crop; 20 (the paper) takes ``img[4:24, 4:24]``, ``None`` keeps 28×28.
    threshold : float, optional
        Fixed binarisation threshold in [0, 1]; default the mean pixel of the cropped split
        (≈0.25), computed separately for train and test.
    verify : bool
        Check both files against their pinned official SHA-256 (default). The first load
        hashes them (milliseconds: the four files are 11.6 MB) and records the result (size,
        mtime, ctime, digest) beside each file, or in the per-user cache
        (``$BMPRUNE_CACHE_DIR``) when the data directory is read-only; later loads only ``stat`` the files while they are unchanged
        (:mod:`bmprune.data.integrity`). Files with no pinned checksum are left unverified.
        ``False`` hashes nothing (``meta["files"]`` then has ``sha256`` and ``official``
        ``None``).

    Returns
    -------
    Dataset
        ``x`` (N, crop²) uint8 in {0,1} (row-major pixels), ``y`` (N,) int64 in 0..9,
        ``image_shape`` (crop, crop); ``meta`` has ``threshold``, ``threshold_rule``, ``crop``
        and ``files`` (path, bytes, sha256, official, verification; see
        :func:`bmprune.data.integrity.read_verified`).

    Raises
    ------
    DataError
        A file is missing (the message names the directories searched and
        ``bmprune data fetch mnist``), is a corrupt/truncated gzip, has a wrong magic number,
        truncated content, images that are not 28×28, a label count that differs from the
        image count, or labels outside 0..9.
    ChecksumError
        ``verify=True`` and a file differs from its pinned checksum (a DataError subclass;
        the message names the file, both digests and ``bmprune data fetch mnist``).
    ConfigError
        Unknown split, bad crop or threshold.

    Notes
    -----
    SPEC §3 (MNIST); DESIGN.md §Data locations and §Errors.
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test'; got {split!r}")
    if crop is not None and (not isinstance(crop, (int, np.integer)) or not 1 <= crop <= SIDE or (SIDE - crop) % 2):
        raise ConfigError(f"crop must be an even-margin central size in 1..{SIDE} (e.g. 20) or None; got {crop!r}")
    root = _resolve_dir(data_dir)
    img_path = _find(root, MNIST_FILES[(split, "images")])
    lab_path = _find(root, MNIST_FILES[(split, "labels")])

    src_i, buf_i = _read_bytes(img_path, verify)
    src_l, buf_l = _read_bytes(lab_path, verify)
    sources = [src_i, src_l]
    images = read_idx(buf_i, IMAGES_MAGIC, what=str(img_path))
    labels = read_idx(buf_l, LABELS_MAGIC, what=str(lab_path))
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{img_path}: images must be {SIDE}×{SIDE}; header says {images.shape[1:]}")
    if labels.ndim != 1:
        raise DataError(f"{lab_path}: labels must be one-dimensional; header says {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{lab_path} holds {labels.shape[0]} labels but {img_path} holds {images.shape[0]} images"
        )
    if images.shape[0] == 0:
        raise DataError(f"{img_path} holds no images")
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(f"{lab_path}: label {int(labels[bad])} at index {bad} is outside 0..9")

    side = SIDE if crop is None else int(crop)
    m = (SIDE - side) // 2
    cropped = images[:, m:m + side, m:m + side]
    x, t = binarize_mean(cropped, threshold)
    meta = {
        "source": "MNIST (LeCun, Cortes & Burges)",
        "threshold": t,
        "threshold_rule": "pixel/255 >= mean pixel of the cropped split" if threshold is None
        else "pixel/255 >= fixed threshold",
        "crop": (m, m + side, m, m + side),
        "files": sources,
        "spec": "SPEC §3 MNIST",
    }
    return Dataset(
        x=x.reshape(len(x), side * side),
        y=labels.astype(np.int64),
        image_shape=(side, side),
        name="mnist",
        split=split,
        meta=meta,
    )
