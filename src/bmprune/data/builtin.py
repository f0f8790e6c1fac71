"""Embedded data that needs no download (DESIGN.md §Data locations).

* :func:`load_digits` — scikit-learn's 1,797 handwritten digits (8×8, 17 grey levels),
  binarised like MNIST in SPEC §3 (against the mean pixel of the split), with labels: a
  miniature of the paper's MNIST experiment.
* :func:`load_photo_patches` — circular binary patches cut, with the CIFAR-10 pipeline of
  SPEC §3, from the two photographs shipped with scikit-learn (``china.jpg``,
  ``flower.jpg``, 427×640 RGB): a miniature of the paper's CIFAR experiment.

Both back ``bmprune demo`` and the fast tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import Dataset
from .patches import circular_mask, draw_patches, mask_offsets, median_of

__all__ = ["load_digits", "load_photo_patches", "DIGITS_N_TRAIN"]

#: The first 1,437 digits (80 %) are the training split, the last 360 the test split. The set
#: is ordered by writer groups, so a contiguous split tests on writers not seen in training.
DIGITS_N_TRAIN = 1437
_DIGITS_MAX = 16


def load_digits(split: str = "train", *, threshold: float | str = "mean") -> Dataset:
    """scikit-learn's 8×8 digits, binarised, with labels.

    Parameters
    ----------
    split : {"train", "test", "all"}
        First 1,437 digits, last 360, or all 1,797 (a fixed, deterministic split).
    threshold : "mean" or float
        ``"mean"`` (default): as MNIST in SPEC §3, pixel ≥ mean pixel of the split → 1
        (levels scaled to [0, 1] by /16). A float in [0, 1] is a fixed threshold on that scale.

    Returns
    -------
    Dataset
        ``x`` (N, 64) uint8 in {0,1}, ``y`` (N,) int64 in 0..9, ``image_shape`` (8, 8);
        ``meta`` has ``threshold`` (on the [0, 1] scale) and ``threshold_rule``.

    Raises
    ------
    ConfigError
        Unknown split or a threshold outside [0, 1].
    """
    from sklearn.datasets import load_digits as _sk_digits

    if split not in ("train", "test", "all"):
        raise ConfigError(f"split must be 'train', 'test' or 'all'; got {split!r}")
    bunch = _sk_digits()
    levels = np.rint(bunch.data).astype(np.int64)  # 0..16 stored as float64
    labels = bunch.target.astype(np.int64)
    rows = {"train": slice(0, DIGITS_N_TRAIN), "test": slice(DIGITS_N_TRAIN, None), "all": slice(None)}[split]
    levels, labels = levels[rows], labels[rows]
    if isinstance(threshold, str):
        if threshold != "mean":
            raise ConfigError(f"threshold must be 'mean' or a number in [0, 1]; got {threshold!r}")
        total, count = int(levels.sum()), int(levels.size)
        t = total / count / _DIGITS_MAX
        level = -(-total // count)  # exact integer form of level/16 ≥ mean (see mnist.binarize_mean)
        rule = "level/16 >= mean level of the split"
    else:
        t = float(threshold)
        if not 0.0 <= t <= 1.0:
            raise ConfigError(f"threshold must lie in [0, 1]; got {threshold}")
        level = int(np.ceil(t * _DIGITS_MAX - 1e-9))
        rule = "level/16 >= fixed threshold"
    x = (levels >= level).astype(np.uint8)
    meta = {
        "source": "scikit-learn digits (UCI optical recognition of handwritten digits)",
        "threshold": t,
        "threshold_rule": rule,
        "split_rule": f"first {DIGITS_N_TRAIN} train, remaining test",
    }
    return Dataset(x=x, y=labels, image_shape=(8, 8), name="digits", split=split, meta=meta)


def _photos(names: Sequence[str] | None) -> tuple[list[np.ndarray], list[str]]:
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    files = [str(f).replace("\\", "/").rsplit("/", 1)[-1] for f in bunch.filenames]
    if names is None:
        return list(bunch.images), files
    out, chosen = [], []
    for n in names:
        if n not in files:
            raise ConfigError(f"unknown sample image {n!r}; scikit-learn ships {', '.join(files)}")
        out.append(bunch.images[files.index(n)])
        chosen.append(n)
    if not out:
        raise ConfigError("images selects no photograph")
    return out, chosen


def load_photo_patches(
    radius: float = 2.1,
    n_patches: int | None = 10_000,
    seed: int = 0,
    *,
    downsample: int = 1,
    images: Sequence[str] | None = None,
) -> Dataset:
    """Circular binary patches from the photographs shipped with scikit-learn.

    The CIFAR-10 pipeline of SPEC §3: grey = R+G+B, global median over all pixels of the
    chosen photographs (≥ median → 1), circular mask of radius r, a seeded random draw of
    patches. Photographs have no natural grid, so the centres tile each image with
    non-overlapping mask-sized boxes from its top-left corner (21,760 patches of r = 2.1 in
    the two full-size photographs).

    Parameters
    ----------
    radius : float
        Mask radius (2.1 → 13 pixels).
    n_patches : int or None
        Patches drawn without replacement; ``None`` keeps all, in (image, row, column) order.
    seed : int
        Seed of ``numpy.random.default_rng`` for the draw.
    downsample : int
        Average the grey image over ``downsample × downsample`` blocks first (1 = full
        resolution); coarser scales are closer to CIFAR's 32×32 thumbnails, but yield fewer
        patches.
    images : sequence of str, optional
        Which photographs (``"china.jpg"``, ``"flower.jpg"``); default both.

    Returns
    -------
    Dataset
        Like :func:`bmprune.data.load_cifar_patches`: ``x`` (n_patches, n_mask) uint8,
        ``image_shape`` the mask's box, ``pixel_mask`` the mask, ``meta`` with ``median``,
        ``mask``, ``offsets``, ``patch_image``, ``patch_center`` and the photographs used.

    Raises
    ------
    ConfigError
        Bad radius, downsample factor, image name, or more patches than the photographs hold.
    """
    if not isinstance(downsample, (int, np.integer)) or isinstance(downsample, bool) or downsample < 1:
        raise ConfigError(f"downsample must be a positive integer; got {downsample!r}")
    mask = circular_mask(radius)
    photos, names = _photos(images)
    greys = []
    for im in photos:
        g = im.astype(np.uint16).sum(axis=2, dtype=np.uint16)  # R+G+B, 0..765
        if downsample > 1:
            H, W = (s - s % downsample for s in g.shape)
            if H == 0 or W == 0:
                raise ConfigError(f"downsample {downsample} is larger than the image {g.shape}")
            blocks = g[:H, :W].reshape(H // downsample, downsample, W // downsample, downsample)
            # round the block mean back to an integer grey level so the median stays exact
            g = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint16)
        greys.append(g)
    median = median_of(greys)
    x, image_index, center = draw_patches(greys, median, mask, None, n_patches, seed)
    if x.shape[0] == 0:
        raise DataError("the photographs yield no patches")
    meta = {
        "source": "scikit-learn sample images",
        "images": names,
        "median": median,
        "threshold": median,
        "threshold_rule": "R+G+B >= global median of all pixels of the photographs",
        "radius": float(radius),
        "mask": mask,
        "offsets": mask_offsets(mask),
        "downsample": int(downsample),
        "seed": int(seed),
        "patch_image": image_index,
        "patch_center": center,
    }
    return Dataset(x=x, image_shape=mask.shape, pixel_mask=mask, name="photo-patches", meta=meta)
