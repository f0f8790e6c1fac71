"""CIFAR-10 circular patches as the paper prepares them (SPEC §3).

Reads the official binary batches (``cifar-10-batches-bin/*.bin``) or the python batches
(``cifar-10-batches-py/*``, pickles read by a restricted unpickler), always in sorted order,
turns every image into grey values R+G+B (0..765), binarises against the global median of all
pixels of all loaded images (≥ median → 1) and cuts circular patches on the 6×6 grid of
centres 3, 8, …, 28, from which a seeded random draw of N patches is returned.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import Dataset
from .integrity import read_verified
from .patches import CIFAR_CENTERS, circular_mask, draw_patches, mask_offsets, median_of
from .store import CIFAR_BIN_DIR, CIFAR_DIR, CIFAR_PY_DIR, missing_error
from .store import data_dir as _resolve_dir

__all__ = ["load_cifar_patches", "load_cifar_grey", "read_bin_batch", "read_py_batch", "TRAIN_BATCHES"]

#: The five training batches, the default selection.
TRAIN_BATCHES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
SIDE = 32
PIXELS = SIDE * SIDE
RECORD = 1 + 3 * PIXELS  # binary record: label byte, then the R, G and B planes (row-major 32×32)
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


# --------------------------------------------------------------------------------------------
# reading batches
# --------------------------------------------------------------------------------------------
def _check_labels(labels: np.ndarray, path: Path) -> None:
    if labels.size and labels.max() > 9:
        i = int(np.argmax(labels > 9))
        raise DataError(f"{path}: label {int(labels[i])} of image {i} is outside 0..9; corrupt or not a CIFAR-10 batch")


def _grey(pixels: np.ndarray) -> np.ndarray:
    """(n, 3072) uint8 RGB planes → (n, 32, 32) uint16 grey = R + G + B."""
    return pixels.reshape(-1, 3, PIXELS).sum(axis=1, dtype=np.uint16).reshape(-1, SIDE, SIDE)


def read_bin_batch(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read one binary CIFAR-10 batch.

    Parameters
    ----------
    path : path-like
        A file of 3073-byte records (label byte, 1024 R, 1024 G, 1024 B bytes).
    verify : bool
        Check the file against the pinned SHA-256 of its name before parsing it (default),
        through its verification record when one is valid (see :func:`load_cifar_grey`).
        Names with no pinned checksum are left unverified; ``False`` hashes nothing.

    Returns
    -------
    grey : numpy.ndarray, shape (n, 32, 32), dtype uint16
        R + G + B per pixel (0..765).
    labels : numpy.ndarray, shape (n,), dtype int64
    source : dict
        path, bytes, sha256, official (``True`` verified, ``None`` not verified) and
        verification (how; see :func:`bmprune.data.integrity.read_verified`).

    Raises
    ------
    DataError
        Unreadable, empty, truncated (size not a multiple of 3073) or labels outside 0..9.
    ChecksumError
        ``verify`` and the file differs from its pinned checksum.
    """
    path = Path(path)
    raw, source = read_verified(path, verify=verify)
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataError(
            f"{path}: {len(raw)} bytes is not a whole number of {RECORD}-byte CIFAR-10 records "
            "(truncated or not a binary batch)"
        )
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = rec[:, 0].astype(np.int64)
    _check_labels(labels, path)
    return _grey(rec[:, 1:]), labels, source


def _numpy_core() -> Any:
    # NumPy 2 renamed numpy.core to numpy._core; old pickles name the former. Resolve both to
    # the real module ourselves instead of importing the deprecated alias.
    return getattr(np, "_core", None) or np.core


class _BatchUnpickler(pickle.Unpickler):
    """Admits exactly what CIFAR-10 python batches contain.

    The batches are dicts of bytes/str keys holding a uint8 ``ndarray``, lists of ints and
    bytes; the only globals their pickles name are NumPy's array reconstruction
    (``_reconstruct`` + ``ndarray`` + ``dtype`` for protocols ≤ 4, ``_frombuffer`` for
    protocol 5) and, for protocol 2, ``_codecs.encode`` / ``bytes()`` (how it stores bytes);
    the last two are replaced by wrappers that accept only those calls. Everything else — any
    other class or function, persistent ids — is refused, so a malicious file cannot run code.
    """

    def find_class(self, module: str, name: str) -> Any:
        core = _numpy_core()
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): core.multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): core.multiarray._reconstruct,
            ("numpy.core.numeric", "_frombuffer"): core.numeric._frombuffer,
            ("numpy._core.numeric", "_frombuffer"): core.numeric._frombuffer,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _latin1_encode,
            ("builtins", "bytes"): _empty_bytes,  # protocol 2 stores b"" as bytes()
            ("__builtin__", "bytes"): _empty_bytes,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: not part of a CIFAR-10 python batch"
            ) from None


def _latin1_encode(obj: str, encoding: str = "latin1") -> bytes:
    """What ``_codecs.encode`` does for the bytes objects of protocol-2 pickles, nothing more."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call in a CIFAR-10 batch")
    return obj.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()`` with no argument only: ``bytes(n)`` could allocate any amount of memory."""
    if args:
        raise pickle.UnpicklingError("unexpected bytes(...) call in a CIFAR-10 batch")
    return b""


def _get(d: dict[Any, Any], key: str) -> Any:
    # Python 2 pickles read with encoding="latin1" give str keys, Python 3 ones bytes keys.
    if key in d:
        return d[key]
    return d.get(key.encode())


def read_py_batch(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read one python (pickled) CIFAR-10 batch with a restricted unpickler.

    Parameters
    ----------
    path : path-like
        A pickle of a dict with ``data`` (n, 3072) uint8 (R, G, B planes) and ``labels``
        (n ints), as in the official ``cifar-10-batches-py``.
    verify : bool
        Check the file against its pinned checksum (MD5 for the python batches, as
        torchvision pins them) before unpickling it; see :func:`read_bin_batch`.

    Returns
    -------
    grey, labels, source
        As :func:`read_bin_batch`.

    Raises
    ------
    DataError
        Unreadable, corrupt or truncated pickle, a pickle naming anything but NumPy's array
        reconstruction (refused unread), or content of the wrong type or shape.
    ChecksumError
        ``verify`` and the file differs from its pinned checksum.
    """
    path = Path(path)
    raw, source = read_verified(path, verify=verify)
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path}: not a valid CIFAR-10 python batch: {exc}") from exc
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, MemoryError,
            OverflowError, RecursionError, struct.error) as exc:
        raise DataError(f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: a CIFAR-10 python batch is a dict; found {type(obj).__name__}")
    data, labels = _get(obj, "data"), _get(obj, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * PIXELS:
        desc = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (n, {3 * PIXELS}); found {desc}")
    if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != data.shape[0]:
        raise DataError(f"{path}: 'labels' must be a list of {data.shape[0]} class indices")
    try:
        lab = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: 'labels' are not integers") from exc
    if lab.ndim != 1 or (lab.size and lab.min() < 0):
        raise DataError(f"{path}: 'labels' must be class indices 0..9")
    _check_labels(lab, path)
    if data.shape[0] == 0:
        raise DataError(f"{path}: the batch holds no images")
    return _grey(np.ascontiguousarray(data)), lab, source


def _batch_names(batches: Iterable[int | str] | int | str | None) -> list[str]:
    if batches is None:
        return list(TRAIN_BATCHES)
    if isinstance(batches, (int, str)):
        batches = [batches]
    names = []
    for b in batches:
        if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
            if not 1 <= int(b) <= 5:
                raise ConfigError(f"CIFAR-10 training batches are numbered 1..5; got {b}")
            names.append(f"data_batch_{int(b)}")
        elif isinstance(b, str) and _NAME.match(b.removesuffix(".bin")):
            names.append(b.removesuffix(".bin"))
        else:
            raise ConfigError(f"a batch is a number 1..5 or a file name like 'test_batch'; got {b!r}")
    if not names:
        raise ConfigError("batches selects no batch")
    # A fixed, sorted order: the original code's os.listdir order was a bug (SPEC §3).
    return sorted(set(names))


def _locate(root: Path, names: list[str], fmt: str) -> tuple[str, list[Path]]:
    if fmt not in ("auto", "bin", "py"):
        raise ConfigError(f"format must be 'auto', 'bin' or 'py'; got {fmt!r}")
    formats = ("bin", "py") if fmt == "auto" else (fmt,)
    searched = []
    # the official layout first, then the batch folders or the batch files directly in data_dir
    candidates = [(root / CIFAR_DIR / (CIFAR_BIN_DIR if f == "bin" else CIFAR_PY_DIR), f) for f in formats]
    candidates += [(root / (CIFAR_BIN_DIR if f == "bin" else CIFAR_PY_DIR), f) for f in formats]
    candidates += [(root, f) for f in formats]
    for d, f in candidates:
        if d not in searched:
            searched.append(d)
        paths = [d / (n + ".bin" if f == "bin" else n) for n in names]
        if all(p.is_file() for p in paths):
            return f, paths
    raise missing_error(f"CIFAR-10 batch file(s) {', '.join(names)}", searched, "cifar10")


def load_cifar_grey(
    batches: Iterable[int | str] | int | str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    format: str = "auto",
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """CIFAR-10 images as grey values R+G+B, batches in sorted order.

    Parameters
    ----------
    batches : iterable of int or str, optional
        Which batches: numbers 1..5 or file names (``"test_batch"``); default the five
        training batches. Read in sorted name order whatever the order given.
    data_dir : path-like, optional
        Directory holding ``cifar-10/`` (or the batch folders directly). Default
        ``$BMPRUNE_DATA_DIR`` or the user cache directory.
    format : {"auto", "bin", "py"}
        Binary batches, python batches, or whichever is complete (binary first).
    verify : bool
        Check every file against its pinned official checksum before parsing it (default):
        SHA-256 for the binary batches, MD5 for the python ones. The first load hashes them
        (the five 30 MB training batches: ~0.1 s with SHA instructions, a few tenths of a
        second without) and records the result (size, mtime, ctime, digest) beside each file,
        or in the per-user cache (``$BMPRUNE_CACHE_DIR``) when the data directory is read-only;
        later loads only ``stat`` unchanged files (:mod:`bmprune.data.integrity`). Files with
        no pinned checksum (e.g. ``cifar-10/partial/*``) are left unverified. ``False`` hashes
        nothing.

    Returns
    -------
    grey : numpy.ndarray, shape (M, 32, 32), dtype uint16
    labels : numpy.ndarray, shape (M,), dtype int64
    meta : dict
        ``format``, ``batches`` and ``files`` (path, bytes, sha256, official, verification;
        ``official`` is ``True`` for a verified file and ``None`` for one not verified).

    Raises
    ------
    DataError
        Files missing (names the directories searched and ``bmprune data fetch cifar10``),
        truncated, corrupt, or refused by the restricted unpickler.
    ChecksumError
        ``verify=True`` and a file differs from its pinned checksum (a DataError subclass;
        the message names the file, both digests and ``bmprune data fetch cifar10``).
    ConfigError
        Bad ``batches`` or ``format``.

    Notes
    -----
    SPEC §3 (CIFAR-10); DESIGN.md §Data locations and §Errors.
    """
    names = _batch_names(batches)
    fmt, paths = _locate(_resolve_dir(data_dir), names, format)
    reader = read_bin_batch if fmt == "bin" else read_py_batch
    greys, labels, sources = [], [], []
    for p in paths:
        g, lab, src = reader(p, verify=verify)
        greys.append(g)
        labels.append(lab)
        sources.append(src)
    grey = greys[0] if len(greys) == 1 else np.concatenate(greys)
    del greys
    return grey, np.concatenate(labels), {"format": fmt, "batches": names, "files": sources}


def load_cifar_patches(
    radius: float = 2.1,
    n_patches: int | None = 90_000,
    batches: Iterable[int | str] | int | str | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    centers: Iterable[int] = CIFAR_CENTERS,
    format: str = "auto",
    verify: bool = True,
) -> Dataset:
    """Binary circular patches of CIFAR-10 images (SPEC §3).

    Parameters
    ----------
    radius : float
        Mask radius r: pixels with dy² + dx² ≤ r². 2.1 → 13 pixels (the paper), 3.5 → 37
        (the thesis).
    n_patches : int or None
        Patches drawn at random without replacement from all (image, centre) pairs
        (50,000 images × 36 = 1.8 million for the training set); ``None`` keeps them all, in
        (image, row, column) order.
    batches : iterable of int or str, optional
        Which batches (default the five training batches); read in sorted order.
    seed : int
        Seed of ``numpy.random.default_rng`` for the draw.
    data_dir : path-like, optional
        Directory holding ``cifar-10/``; default ``$BMPRUNE_DATA_DIR`` or the user cache.
    centers : iterable of int
        Patch centres in each direction; default 3, 8, 13, 18, 23, 28 (6×6 = 36 patches per
        image, non-overlapping for r < 3).
    format : {"auto", "bin", "py"}
        Which version of the files to read.
    verify : bool
        Check the files against their pinned official checksums (default), reusing the
        verification record of unchanged files; ``False`` hashes nothing. See
        :func:`load_cifar_grey`.

    Returns
    -------
    Dataset
        ``x`` (n_patches, n_mask) uint8, units in the row-major order of the mask;
        ``y`` None; ``image_shape`` the mask's bounding box (5, 5) and ``pixel_mask`` the mask;
        ``meta``: ``median`` (the binarisation threshold), ``radius``, ``mask``, ``offsets``,
        ``centers``, ``seed``, ``n_images``, ``n_pool``, ``patch_image`` / ``patch_center`` /
        ``patch_label`` (source image, centre (row, col) and class of every patch), ``files``.

    Raises
    ------
    DataError
        Missing, truncated or corrupt batch files (see :func:`load_cifar_grey`).
    ChecksumError
        ``verify=True`` and a file differs from its pinned checksum (names the file and
        ``bmprune data fetch cifar10``).
    ConfigError
        Bad radius, centres outside the image for this radius, ``n_patches`` not in
        1..pool size.
    """
    mask = circular_mask(radius)
    c = np.asarray(list(centers), dtype=np.int64)
    grey, labels, info = load_cifar_grey(batches, data_dir, format=format, verify=verify)
    median = median_of(grey)
    x, image_index, center = draw_patches(grey, median, mask, (c, c), n_patches, seed)
    names = info["batches"]
    split = "train" if names == list(TRAIN_BATCHES) else "test" if names == [TEST_BATCH] else "+".join(names)
    meta = {
        "source": "CIFAR-10 (Krizhevsky 2009)",
        "median": median,
        "threshold": median,
        "threshold_rule": "R+G+B >= global median of all pixels of all loaded images",
        "radius": float(radius),
        "mask": mask,
        "offsets": mask_offsets(mask),
        "centers": tuple(int(v) for v in c),
        "seed": int(seed),
        "n_images": int(grey.shape[0]),
        "n_pool": int(grey.shape[0] * c.size * c.size),
        "patch_image": image_index,
        "patch_center": center,
        "patch_label": labels[image_index],
        "spec": "SPEC §3 CIFAR-10 circular patches",
        **info,
    }
    return Dataset(x=x, image_shape=mask.shape, pixel_mask=mask, name="cifar10-patches", split=split, meta=meta)
