"""A researcher's own binary data from .npy, .npz or .csv files (issue: "your own binary data").

The file holds a 0/1 matrix, one pattern per row (or a stack of 0/1 images, one per leading
index). Everything is validated before a :class:`~bmprune.data.Dataset` is built, so a bad
file fails here with an explanation instead of deep inside training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .dataset import Dataset

__all__ = ["load_binary"]


def _read_csv(path: Path) -> np.ndarray:
    try:
        first = path.open("r", encoding="utf-8-sig").readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    cells = [c.strip() for c in first.split(",")]
    try:
        [float(c) for c in cells]
        header = 0
    except ValueError:
        header = 1  # a first line that is not numbers is a header
    try:
        arr = np.loadtxt(path, delimiter=",", skiprows=header, dtype=np.float64, ndmin=2, encoding="utf-8-sig")
    except ValueError as exc:  # ragged rows, non-numeric cells
        raise DataError(f"{path}: not a numeric CSV matrix: {exc}") from exc
    return arr


def _read(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z.files:
                    raise DataError(f"{path}: an .npz file must hold the patterns under key 'x' (found {z.files})")
                return z["x"], (z["y"] if "y" in z.files else None)
        if suffix == ".csv":
            return _read_csv(path), None
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as exc:  # truncated or corrupt files, object arrays
        raise DataError(f"cannot read {path}: {exc}") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz (keys x, y) or .csv")


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
        Missing, unreadable or unsupported file; empty data; NaN; values other than 0 and 1;
        an image shape that does not fit; labels that are not N integers.
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
