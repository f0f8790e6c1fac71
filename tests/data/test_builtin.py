"""Embedded data (no download): binarised scikit-learn digits and patches from its photographs."""

from __future__ import annotations

import numpy as np
import pytest

import bmprune as bp
from bmprune.errors import ConfigError


@pytest.fixture(scope="module")
def sk_digits():
    from sklearn.datasets import load_digits

    return load_digits()


def test_digits_splits(sk_digits):
    train, test, full = (bp.data.load_digits(s) for s in ("train", "test", "all"))
    assert train.x.shape == (1437, 64) and test.x.shape == (360, 64) and full.x.shape == (1797, 64)
    assert train.image_shape == (8, 8) and train.name == "digits" and train.split == "train"
    np.testing.assert_array_equal(np.concatenate([train.y, test.y]), sk_digits.target)
    assert set(np.unique(train.x).tolist()) == {0, 1}
    assert np.bincount(train.y, minlength=10).min() > 100  # every class present in training


def test_digits_threshold_is_the_split_mean(sk_digits):
    train = bp.data.load_digits("train")
    levels = sk_digits.data[:1437]
    mean = levels.mean() / 16
    assert train.meta["threshold"] == pytest.approx(mean)
    np.testing.assert_array_equal(train.x, (levels / 16 >= mean).astype(np.uint8))
    fixed = bp.data.load_digits("test", threshold=0.5)
    np.testing.assert_array_equal(fixed.x, (sk_digits.data[1437:] >= 8).astype(np.uint8))
    with pytest.raises(ConfigError):
        bp.data.load_digits(threshold=2.0)
    with pytest.raises(ConfigError):
        bp.data.load_digits(threshold="median")
    with pytest.raises(ConfigError):
        bp.data.load_digits("validation")


def test_photo_patches():
    ds = bp.data.load_photo_patches(n_patches=3000, seed=1)
    assert ds.x.shape == (3000, 13) and ds.x.dtype == np.uint8
    np.testing.assert_array_equal(ds.pixel_mask, bp.data.circular_mask(2.1))
    assert 0.4 < ds.on_fraction < 0.6  # median binarisation
    assert ds.meta["images"] == ["china.jpg", "flower.jpg"]
    again = bp.data.load_photo_patches(n_patches=3000, seed=1)
    np.testing.assert_array_equal(ds.x, again.x)
    assert not np.array_equal(ds.x, bp.data.load_photo_patches(n_patches=3000, seed=2).x)


def test_photo_patches_pool_and_options():
    from sklearn.datasets import load_sample_images

    full = bp.data.load_photo_patches(n_patches=None)
    assert len(full) == 2 * (427 // 5) * (640 // 5)  # 21,760 tiled 5×5 boxes
    grey = [im.astype(np.int64).sum(axis=2) for im in load_sample_images().images]
    assert full.meta["median"] == np.median(np.concatenate([g.ravel() for g in grey]))
    k = 12345
    m, (cy, cx) = full.meta["patch_image"][k], full.meta["patch_center"][k]
    ref = [grey[m][cy + dy, cx + dx] >= full.meta["median"] for dy, dx in full.meta["offsets"]]
    assert full.x[k].tolist() == [int(v) for v in ref]
    half = bp.data.load_photo_patches(n_patches=None, downsample=2, images=["flower.jpg"])
    assert len(half) == (213 // 5) * (320 // 5) and half.meta["images"] == ["flower.jpg"]
    big = bp.data.load_photo_patches(radius=3.5, n_patches=100)
    assert big.x.shape == (100, 37)
    with pytest.raises(ConfigError):
        bp.data.load_photo_patches(images=["mona_lisa.jpg"])
    with pytest.raises(ConfigError):
        bp.data.load_photo_patches(downsample=0)
    with pytest.raises(ConfigError, match="only"):
        bp.data.load_photo_patches(n_patches=10**6)
