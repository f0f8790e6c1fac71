"""The circular mask, the grid and the median of SPEC §3, checked against exact answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bmprune as bp
from bmprune.data.patches import draw_patches, median_of, tile_centers
from bmprune.errors import ConfigError, DataError

PLUS_13 = np.array([
    [0, 0, 1, 0, 0],
    [0, 1, 1, 1, 0],
    [1, 1, 1, 1, 1],
    [0, 1, 1, 1, 0],
    [0, 0, 1, 0, 0],
], dtype=bool)


def test_radius_2_1_is_the_13_pixel_plus():
    m = bp.data.circular_mask(2.1)
    assert m.dtype == bool and m.shape == (5, 5)
    np.testing.assert_array_equal(m, PLUS_13)
    assert m.sum(axis=1).tolist() == [1, 3, 5, 3, 1]


def test_radius_3_5_is_the_thesis_37_pixels():
    m = bp.data.circular_mask(3.5)
    assert m.shape == (7, 7) and m.sum() == 37
    assert m.sum(axis=1).tolist() == [3, 5, 7, 7, 7, 5, 3]


@pytest.mark.parametrize("r,n", [(0, 1), (0.5, 1), (1, 5), (1.5, 9), (2, 13), (2.3, 21), (3, 29)])
def test_mask_sizes(r, n):
    assert bp.data.circular_mask(r).sum() == n


@pytest.mark.parametrize("r", [-1, float("nan"), float("inf"), "big"])
def test_bad_radius(r):
    with pytest.raises(ConfigError):
        bp.data.circular_mask(r)


def test_offsets_are_row_major():
    off = bp.data.mask_offsets(PLUS_13)
    assert off.tolist() == [[-2, 0], [-1, -1], [-1, 0], [-1, 1], [0, -2], [0, -1], [0, 0], [0, 1], [0, 2],
                            [1, -1], [1, 0], [1, 1], [2, 0]]


def test_cifar_grid_and_tiling():
    assert bp.data.CIFAR_CENTERS == (3, 8, 13, 18, 23, 28)
    assert tile_centers(32, 2).tolist() == [2, 7, 12, 17, 22, 27]
    assert tile_centers(11, 2).tolist() == [2, 7]
    assert tile_centers(4, 2).tolist() == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 765), min_size=1, max_size=60))
def test_median_equals_numpy(values):
    a = np.array(values, dtype=np.uint16)
    assert median_of(a) == np.median(a)
    assert median_of([a[: len(a) // 2], a[len(a) // 2:]]) == np.median(a)


def test_median_rejects_nothing_and_negatives():
    with pytest.raises(DataError):
        median_of(np.array([], dtype=np.uint16))
    with pytest.raises(DataError):
        median_of(np.array([-1, 2]))


def test_draw_patches_positions_and_values():
    # images whose grey value encodes (image, row, col), so every gathered pixel is identifiable
    M, H, W = 2, 11, 13
    img = (np.arange(M)[:, None, None] * 10000 + np.arange(H)[:, None] * 100 + np.arange(W)).astype(np.int64)
    mask = bp.data.circular_mask(1)  # plus of 5 pixels in a 3×3 box
    x, image_index, center = draw_patches(img, -1, mask, None, None)  # threshold -1: everything 1
    # tiling: centres 1, 4, 7 (rows of 11) and 1, 4, 7, 10 (columns of 13) → 12 patches per image
    assert x.shape == (24, 5) and x.all()
    assert image_index.tolist() == [0] * 12 + [1] * 12
    assert center[:4].tolist() == [[1, 1], [1, 4], [1, 7], [1, 10]]
    assert center[4].tolist() == [4, 1]
    # thresholding: pixel ≥ t → 1, compared on the exact pixels of the plus around each centre
    t = 10405
    x, image_index, center = draw_patches(img, t, mask, None, None)
    for k in range(24):
        m, cy, cx = image_index[k], *center[k]
        ref = [img[m, cy + dy, cx + dx] >= t for dy, dx in bp.data.mask_offsets(mask)]
        assert x[k].tolist() == [int(v) for v in ref]


def test_draw_is_seeded_without_replacement_and_a_subset_of_the_pool():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 766, size=(4, 32, 32))
    mask = bp.data.circular_mask(2.1)
    c = np.array(bp.data.CIFAR_CENTERS)
    full, _, _ = draw_patches(img, 383, mask, (c, c), None)
    a, ai, ac = draw_patches(img, 383, mask, (c, c), 50, seed=5)
    b, _, _ = draw_patches(img, 383, mask, (c, c), 50, seed=5)
    _, di, dc = draw_patches(img, 383, mask, (c, c), 50, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(ai * 1000 + ac[:, 0] * 40 + ac[:, 1], di * 1000 + dc[:, 0] * 40 + dc[:, 1])
    pool = ai * 36 + np.searchsorted(c, ac[:, 0]) * 6 + np.searchsorted(c, ac[:, 1])
    assert len(np.unique(pool)) == 50  # without replacement
    np.testing.assert_array_equal(a, full[pool])
    with pytest.raises(ConfigError, match="only 144"):
        draw_patches(img, 383, mask, (c, c), 145)
    with pytest.raises(ConfigError):
        draw_patches(img, 383, mask, (c, c), 0)


def test_centres_too_close_to_the_border():
    img = np.zeros((1, 32, 32), dtype=np.uint16)
    c = np.array(bp.data.CIFAR_CENTERS)
    with pytest.raises(ConfigError, match="outside"):
        draw_patches(img, 1, bp.data.circular_mask(4.0), (c, c), None)


def test_images_of_different_sizes():
    a = np.arange(7 * 9).reshape(7, 9)
    b = np.arange(12 * 5).reshape(12, 5) + 1000
    mask = bp.data.circular_mask(1)
    x, image_index, center = draw_patches([a, b], 30, mask, None, None)
    # a: rows 1,4 × cols 1,4,7 = 6 patches; b: rows 1,4,7,10 × col 1 = 4 patches
    assert image_index.tolist() == [0] * 6 + [1] * 4
    assert center[6:].tolist() == [[1, 1], [4, 1], [7, 1], [10, 1]]
    assert x[6:].all()
