"""Circular binary patches cut from greyscale images (SPEC §3, CIFAR-10 paragraph).

The pipeline shared by CIFAR-10 (:func:`bmprune.data.load_cifar_patches`) and the photographs
shipped with scikit-learn (:func:`bmprune.data.load_photo_patches`):

1. grey values (R+G+B) of all images;
2. one global median over every pixel of every image; a pixel is 1 iff grey ≥ median;
3. a circular mask of radius r: offsets (dy, dx) with dy² + dx² ≤ r²;
4. patches centred on a grid of positions in each image;
5. a seeded random draw of N patches from the pool of all (image, position) pairs.

Only the drawn patches are gathered, with one vectorised fancy-indexing operation, so the
pool itself (1.8 million patches for CIFAR-10) is never materialised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, DataError

__all__ = [
    "CIFAR_CENTERS", "circular_mask", "mask_offsets", "tile_centers", "median_of",
    "draw_patches",
]

#: Patch centres of SPEC §3 in each direction of a 32×32 CIFAR image (0-based pixel indices).
CIFAR_CENTERS: tuple[int, ...] = (3, 8, 13, 18, 23, 28)


def _check_radius(radius: float) -> float:
    try:
        r = float(radius)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"radius must be a number; got {radius!r}") from exc
    if not math.isfinite(r) or r < 0:
        raise ConfigError(f"radius must be finite and ≥ 0; got {radius!r}")
    return r


def circular_mask(radius: float = 2.1) -> np.ndarray:
    """The circular receptive field of SPEC §3: pixels (dy, dx) with dy² + dx² ≤ r².

    Parameters
    ----------
    radius : float
        r ≥ 0. 2.1 gives the paper's 13 pixels (a plus/diamond of rows 1, 3, 5, 3, 1);
        3.5 gives the thesis's 37 pixels.

    Returns
    -------
    numpy.ndarray, shape (k, k), dtype bool
        ``k = 2⌊r⌋ + 1``; the centre pixel is ``[k // 2, k // 2]``.

    Raises
    ------
    ConfigError
        Negative, NaN or non-numeric radius.

    Examples
    --------
    >>> circular_mask(2.1).astype(int)
    array([[0, 0, 1, 0, 0],
           [0, 1, 1, 1, 0],
           [1, 1, 1, 1, 1],
           [0, 1, 1, 1, 0],
           [0, 0, 1, 0, 0]])
    >>> int(circular_mask(3.5).sum())
    37
    """
    r = _check_radius(radius)
    h = math.floor(r)
    d = np.arange(-h, h + 1)
    # Integer offsets squared against r² in float64: exact for any radius of practical size.
    return (d[:, None] ** 2 + d[None, :] ** 2) <= r * r


def mask_offsets(mask: np.ndarray) -> np.ndarray:
    """Offsets (dy, dx) of the pixels of a centred mask, in row-major order.

    Parameters
    ----------
    mask : numpy.ndarray, shape (k, k), dtype bool, k odd

    Returns
    -------
    numpy.ndarray, shape (mask.sum(), 2), dtype int64
        Unit i of a patch is the pixel ``(cy + dy_i, cx + dx_i)``.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1] or mask.shape[0] % 2 == 0:
        raise ConfigError(f"mask must be square with an odd side; got shape {mask.shape}")
    return np.argwhere(mask).astype(np.int64) - mask.shape[0] // 2


def tile_centers(length: int, half: int) -> np.ndarray:
    """Centres of non-overlapping boxes of side ``2·half + 1`` tiling ``0..length-1`` from the start."""
    step = 2 * half + 1
    return np.arange(half, length - half, step, dtype=np.int64)


def median_of(images: np.ndarray | Sequence[np.ndarray]) -> float:
    """Median of all pixels of non-negative integer images, exactly as ``numpy.median`` gives it.

    Computed from a histogram (values are small integers: 0..765 for R+G+B), which needs no
    sorted or partitioned copy of the 51 million CIFAR pixels.

    Parameters
    ----------
    images : integer array(s), any shapes

    Returns
    -------
    float
        For an even pixel count the mean of the two middle values, as ``numpy.median``.
    """
    arrays = [images] if isinstance(images, np.ndarray) else list(images)
    hist = np.zeros(1, dtype=np.int64)
    for a in arrays:
        a = np.asarray(a)
        if a.size == 0:
            continue
        if a.dtype.kind not in "ui" or a.min() < 0:
            raise DataError("median_of expects non-negative integer pixel values")
        flat = a.ravel()
        # bincount casts to intp (8 bytes a pixel): count in chunks to bound that copy
        for start in range(0, flat.size, 1 << 22):
            h = np.bincount(flat[start:start + (1 << 22)], minlength=1)
            if h.size > hist.size:
                h[: hist.size] += hist
                hist = h
            else:
                hist[: h.size] += h
    n = int(hist.sum())
    if n == 0:
        raise DataError("cannot take the median of no pixels")
    cum = np.cumsum(hist)
    lo = int(np.searchsorted(cum, (n - 1) // 2, side="right"))  # value of order statistic (n-1)//2
    hi = int(np.searchsorted(cum, n // 2, side="right"))  # value of order statistic n//2
    return (lo + hi) / 2.0


def draw_patches(
    images: np.ndarray | Sequence[np.ndarray],
    threshold: float,
    mask: np.ndarray,
    centers: Sequence[np.ndarray | Sequence[int]] | None = None,
    n_patches: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a seeded random draw of binary patches.

    Parameters
    ----------
    images : numpy.ndarray (M, H, W) or sequence of (H_m, W_m) arrays
        Grey values.
    threshold : float
        A pixel is 1 iff its grey value ≥ threshold.
    mask : numpy.ndarray, shape (k, k), dtype bool
        The patch shape (see :func:`circular_mask`).
    centers : pair (row centres, column centres), optional
        The grid of patch centres in each image; default non-overlapping k×k boxes tiling
        each image from its top-left corner (:func:`tile_centers`).
    n_patches : int or None
        How many patches to draw without replacement from the pool of all
        (image, row centre, column centre) triples; ``None`` returns the whole pool in order.
    seed : int
        Seed of ``numpy.random.default_rng`` for the draw.

    Returns
    -------
    x : numpy.ndarray, shape (n_patches, mask.sum()), dtype uint8
        The patches, units in the row-major order of ``mask``, patches in draw order.
    image_index : numpy.ndarray, shape (n_patches,), dtype int64
        Which image each patch comes from.
    center : numpy.ndarray, shape (n_patches, 2), dtype int64
        Its centre (row, column) in that image.

    Raises
    ------
    ConfigError
        A centre too close to the border for the mask, or ``n_patches`` larger than the pool
        or < 1.
    """
    off = mask_offsets(mask)
    if isinstance(images, np.ndarray) and images.ndim == 3 and images.shape[0] == 0:
        raise DataError("no images to cut patches from")
    half = mask.shape[0] // 2
    if not (isinstance(images, np.ndarray) and images.ndim == 3):
        images = [np.asarray(im) for im in images]
        if not images:
            raise DataError("no images to cut patches from")
        if any(im.ndim != 2 for im in images):
            raise DataError("images must be 2-D greyscale arrays")
        if len({im.shape for im in images}) == 1:
            images = np.stack(images)
    if isinstance(images, np.ndarray):
        groups = [images]  # one stack of equal-sized images: fully vectorised
    else:
        groups = [im[None] for im in images]  # images of different sizes: one group each
    grids = []
    for g in groups:
        H, W = g.shape[1:]
        if centers is None:
            cy, cx = tile_centers(H, half), tile_centers(W, half)
        else:
            cy, cx = (np.asarray(c, dtype=np.int64).ravel() for c in centers)
        for c, L, axis in ((cy, H, "row"), (cx, W, "column")):
            if c.size == 0:
                raise ConfigError(f"no {axis} centres fit an image of {L} pixels with a mask of side {2 * half + 1}")
            if c.min() - half < 0 or c.max() + half > L - 1:
                raise ConfigError(
                    f"{axis} centres {c.tolist()} put a mask of radius {half} outside an image of {L} pixels"
                )
        grids.append((cy, cx))
    per_image = np.array([cy.size * cx.size for cy, cx in grids], dtype=np.int64)
    per_group = per_image * np.array([g.shape[0] for g in groups], dtype=np.int64)
    total = int(per_group.sum())
    if n_patches is None:
        pick = np.arange(total, dtype=np.int64)
    else:
        if not isinstance(n_patches, (int, np.integer)) or isinstance(n_patches, bool) or n_patches < 1:
            raise ConfigError(f"n_patches must be a positive integer or None; got {n_patches!r}")
        if n_patches > total:
            raise ConfigError(f"asked for {n_patches} patches but the images hold only {total}")
        pick = np.random.default_rng(seed).choice(total, size=int(n_patches), replace=False).astype(np.int64)

    n = pick.size
    x = np.empty((n, off.shape[0]), dtype=np.uint8)
    image_index = np.empty(n, dtype=np.int64)
    center = np.empty((n, 2), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(per_group)])
    image_starts = np.concatenate([[0], np.cumsum([g.shape[0] for g in groups])])
    for gi, (g, (cy, cx)) in enumerate(zip(groups, grids)):
        sel = np.nonzero((pick >= starts[gi]) & (pick < starts[gi + 1]))[0]
        if sel.size == 0:
            continue
        local = pick[sel] - starts[gi]
        img, pos = np.divmod(local, per_image[gi])
        iy, ix = np.divmod(pos, cx.size)
        rows = cy[iy][:, None] + off[None, :, 0]
        cols = cx[ix][:, None] + off[None, :, 1]
        x[sel] = g[img[:, None], rows, cols] >= threshold
        image_index[sel] = img + image_starts[gi]
        center[sel, 0] = cy[iy]
        center[sel, 1] = cx[ix]
    return x, image_index, center
