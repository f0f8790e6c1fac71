"""The :class:`Dataset` container shared by every loader (DESIGN.md §Public API).

A dataset is a validated binary matrix ``x`` of shape ``(N, n_visible)`` plus optional labels,
the geometry needed to draw a pattern as an image, and provenance (``meta``). Every loader in
:mod:`bmprune.data` returns one, so the rest of the package never has to re-validate its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..errors import DataError

__all__ = ["Dataset", "check_binary"]


def check_binary(x: Any, *, what: str = "x") -> np.ndarray:
    """Validate a 2-D 0/1 matrix and return it as a C-contiguous ``uint8`` array.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (N, n_visible)
        bool, integer or floating values that are all exactly 0 or 1.
    what : str
        Name used in error messages (e.g. the file the data came from).

    Returns
    -------
    numpy.ndarray, shape (N, n_visible), dtype uint8
        The same values; no copy when ``x`` already is a contiguous uint8 array.

    Raises
    ------
    DataError
        ``x`` is not 2-D, has no rows or no columns, is not numeric, contains NaN or contains a
        value other than 0 and 1. The message says which and where.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise DataError(f"{what} cannot be read as a numeric matrix: {exc}") from exc
    if arr.ndim != 2:
        raise DataError(f"{what} must be a 2-D matrix (N patterns × n_visible units); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(f"{what} is empty: it has no patterns (shape {arr.shape})")
    if arr.shape[1] == 0:
        raise DataError(f"{what} has patterns with no units (shape {arr.shape})")
    if arr.dtype == bool:
        return np.ascontiguousarray(arr, dtype=np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{what} must be numeric or boolean 0/1 values; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        nan = np.isnan(arr)
        if nan.any():
            r, c = np.argwhere(nan)[0]
            raise DataError(f"{what} contains {int(nan.sum())} NaN value(s), the first at row {r}, column {c}")
    if arr.dtype.kind == "u" and not (arr > 1).any():  # the common case, one cheap pass
        return np.ascontiguousarray(arr, dtype=np.uint8)
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        examples = np.unique(arr[bad])[:5]
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"{what} must be binary (only 0 and 1); found {int(bad.sum())} other value(s), "
            f"e.g. {', '.join(repr(v.item()) for v in examples)} (first at row {r}, column {c}). "
            "Binarise the data first (threshold it)."
        )
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _check_labels(y: Any, n: int) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"labels y must be a vector of shape (N,); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise DataError(f"there are {arr.shape[0]} labels for {n} patterns; they must match one to one")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DataError("labels y must be integers (class indices); found non-integer or NaN values")
    elif arr.dtype.kind not in "iub":
        raise DataError(f"labels y must be integer class indices; got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A validated set of binary patterns (DESIGN.md §Public API, SPEC §3).

    Parameters
    ----------
    x : numpy.ndarray, shape (N, n_visible), dtype uint8
        The patterns, every entry 0 or 1. bool, integer, float arrays and tensors of 0/1 are
        accepted and converted to uint8.
    y : numpy.ndarray, shape (N,), dtype int64, or None
        Class labels (used only for evaluation), or ``None``.
    image_shape : tuple (h, w) or None
        How a pattern is drawn as an image. Without ``pixel_mask`` the pattern is the
        row-major ravel of an ``h × w`` image (``h·w == n_visible``).
    pixel_mask : numpy.ndarray, shape image_shape, dtype bool, or None
        For patterns that cover only part of their bounding box (circular patches): which
        pixels of the ``h × w`` box the units are, in row-major order
        (``pixel_mask.sum() == n_visible``).
    name : str
        Short name of the data source, e.g. ``"mnist"``.
    split : str or None
        ``"train"``, ``"test"``, … where the source has splits.
    meta : dict
        Provenance: binarisation threshold and rule, the source files with their sha256 and
        whether that matches a pinned official checksum, seeds, ….

    Raises
    ------
    DataError
        ``x`` is not a non-empty 2-D 0/1 matrix, contains NaN, the labels do not match it
        one to one, or the image geometry does not fit ``n_visible``.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(x=np.array([[0, 1, 1, 0], [1, 1, 0, 0]]), y=[3, 7], image_shape=(2, 2), name="toy")
    >>> len(ds), ds.n_visible, ds.x.dtype
    (2, 4, dtype('uint8'))
    >>> ds.to_tensor().shape
    torch.Size([2, 4])

    Notes
    -----
    The dataclass is frozen (fields cannot be reassigned) but the arrays are left writeable
    so that ``torch.from_numpy`` can share their memory without a warning; treat them as
    read-only.
    """

    x: np.ndarray
    y: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None
    pixel_mask: np.ndarray | None = None
    name: str = "data"
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x = check_binary(self.x, what=f"{self.name} data")
        object.__setattr__(self, "x", x)
        n, nv = x.shape
        if self.y is not None:
            object.__setattr__(self, "y", _check_labels(self.y, n))
        mask = self.pixel_mask
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim != 2 or mask.dtype != bool:
                raise DataError(f"pixel_mask must be a 2-D boolean array; got {mask.dtype} of shape {mask.shape}")
            if int(mask.sum()) != nv:
                raise DataError(f"pixel_mask selects {int(mask.sum())} pixels but the patterns have {nv} units")
            object.__setattr__(self, "pixel_mask", mask)
        shape = self.image_shape
        if shape is None and mask is not None:
            shape = mask.shape
        if shape is not None:
            try:
                shape = tuple(int(s) for s in shape)
            except (TypeError, ValueError) as exc:
                raise DataError(f"image_shape must be a pair of integers (h, w); got {self.image_shape!r}") from exc
            if len(shape) != 2 or min(shape) < 1:
                raise DataError(f"image_shape must be a pair of positive integers (h, w); got {self.image_shape!r}")
            if mask is not None:
                if mask.shape != shape:
                    raise DataError(f"pixel_mask has shape {mask.shape} but image_shape is {shape}")
            elif shape[0] * shape[1] != nv:
                raise DataError(
                    f"image_shape {shape} has {shape[0] * shape[1]} pixels but the patterns have {nv} units"
                )
        object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "meta", dict(self.meta))

    # -- basic protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.x if dtype is None else self.x.astype(dtype)

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}"]
        if self.split is not None:
            parts.append(f"split={self.split!r}")
        parts.append(f"n={len(self)}, n_visible={self.n_visible}")
        if self.image_shape is not None:
            parts.append(f"image_shape={self.image_shape}")
        parts.append(f"labels={'yes' if self.y is not None else 'no'}")
        parts.append(f"on_fraction={self.on_fraction:.3f}")
        return f"Dataset({', '.join(parts)})"

    @property
    def n_visible(self) -> int:
        """Number of units per pattern (columns of ``x``)."""
        return int(self.x.shape[1])

    @property
    def on_fraction(self) -> float:
        """Fraction of entries of ``x`` that are 1."""
        return float(self.x.mean())

    # -- conversions ----------------------------------------------------------------------
    def to_tensor(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """The patterns as a tensor of shape ``(N, n_visible)`` (float32 on the CPU by default)."""
        return torch.from_numpy(self.x).to(device=device, dtype=dtype)

    def labels_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The labels as an int64 tensor of shape ``(N,)``.

        Raises
        ------
        DataError
            The dataset has no labels.
        """
        if self.y is None:
            raise DataError(f"dataset {self.name!r} has no labels")
        return torch.from_numpy(self.y).to(device=device)

    def to_images(self, v: Any = None, fill: float = np.nan) -> np.ndarray:
        """Arrange patterns (or any per-unit values) as images for drawing.

        Parameters
        ----------
        v : array_like, shape (..., n_visible), optional
            Values per unit (patterns, biases, importances, …); default ``self.x``.
        fill : float
            Value of box pixels that are not units (outside ``pixel_mask``).

        Returns
        -------
        numpy.ndarray, shape (..., h, w), float64

        Raises
        ------
        DataError
            The dataset has no image shape, or ``v`` has the wrong last dimension.
        """
        if self.image_shape is None:
            raise DataError(f"dataset {self.name!r} has no image shape")
        if v is None:
            v = self.x
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy()
        v = np.asarray(v, dtype=np.float64)
        if v.shape[-1:] != (self.n_visible,):
            raise DataError(f"values must have last dimension {self.n_visible}; got shape {v.shape}")
        h, w = self.image_shape
        if self.pixel_mask is None:
            return v.reshape(*v.shape[:-1], h, w)
        out = np.full(v.shape[:-1] + (h, w), fill, dtype=np.float64)
        out[..., self.pixel_mask] = v
        return out

    # -- selections -----------------------------------------------------------------------
    def subset(self, index: Any) -> Dataset:
        """A dataset with a selection of the patterns (labels and metadata follow).

        Parameters
        ----------
        index : int, slice, sequence of int or boolean mask of shape (N,)
            An int ``n`` keeps the first ``n`` patterns; anything else is a NumPy index of
            the rows.

        Raises
        ------
        DataError
            ``n`` is not in ``1..N``, or the selection is empty or out of range.
        """
        n = len(self)
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if not 1 <= int(index) <= n:
                raise DataError(f"subset size must be between 1 and {n}; got {int(index)}")
            rows: Any = slice(0, int(index))
        else:
            rows = index
        try:
            x = self.x[rows]
            y = None if self.y is None else self.y[rows]
        except IndexError as exc:
            raise DataError(f"invalid subset index for a dataset of {n} patterns: {exc}") from exc
        if x.ndim != 2:
            raise DataError("subset index must select rows (an int, slice, index array or boolean mask)")
        meta = dict(self.meta)
        meta["subset_of"] = n
        return replace(self, x=x, y=y, meta=meta)

    def random_subset(self, n: int | None, seed: int = 0) -> Dataset:
        """``n`` patterns drawn without replacement by ``numpy.random.default_rng(seed)``, kept in
        their original order; the dataset itself when ``n`` is None or not smaller than N.

        Used wherever a study works on a reduced training set (``data.n_train``, the
        classifiers' ``classifier_n_train``), so every such subset is drawn the same way.
        """
        if n is None or n >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(seed).choice(len(self), int(n), replace=False)))

    def shuffled(self, seed: int = 0) -> Dataset:
        """The patterns in a random order drawn with ``numpy.random.default_rng(seed)``."""
        perm = np.random.default_rng(seed).permutation(len(self))
        out = self.subset(perm)
        out.meta.pop("subset_of", None)
        out.meta["shuffle_seed"] = int(seed)
        return out
