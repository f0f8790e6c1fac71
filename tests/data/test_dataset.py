"""The Dataset container: validation, conversions, selections."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import bmprune as bp
from bmprune.errors import DataError

N, NV = 5, 6


@pytest.fixture
def ds():
    x = np.random.default_rng(1).integers(0, 2, size=(N, NV))
    return bp.data.Dataset(x=x, y=np.arange(N), image_shape=(2, 3), name="toy", split="train", meta={"a": 1})


def test_basic_protocol(ds):
    assert len(ds) == N and ds.n_visible == NV and ds.x.dtype == np.uint8 and ds.y.dtype == np.int64
    assert "toy" in repr(ds) and "n=5" in repr(ds)
    assert np.asarray(ds).shape == (N, NV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.x = None  # type: ignore[misc]


def test_to_tensor(ds):
    t = ds.to_tensor()
    assert t.dtype == torch.float32 and t.shape == (N, NV) and t.device.type == "cpu"
    torch.testing.assert_close(t, torch.tensor(ds.x, dtype=torch.float32))
    assert ds.to_tensor(torch.bool).dtype == torch.bool
    assert ds.labels_tensor().tolist() == list(range(N))


def test_subset(ds):
    first = ds.subset(3)
    assert len(first) == 3 and first.y.tolist() == [0, 1, 2] and first.meta["subset_of"] == N
    picked = ds.subset([4, 0])
    np.testing.assert_array_equal(picked.x, ds.x[[4, 0]])
    assert picked.y.tolist() == [4, 0] and picked.image_shape == (2, 3) and picked.name == "toy"
    mask = np.array([True, False, True, False, False])
    assert ds.subset(mask).y.tolist() == [0, 2]
    with pytest.raises(DataError):
        ds.subset(0)
    with pytest.raises(DataError):
        ds.subset(N + 1)
    with pytest.raises(DataError):
        ds.subset([N])
    with pytest.raises(DataError, match="empty"):
        ds.subset(np.zeros(N, bool))
    sh = ds.shuffled(seed=3)
    assert sorted(sh.y.tolist()) == list(range(N)) and sh.meta["shuffle_seed"] == 3


def test_to_images_with_and_without_mask(ds):
    imgs = ds.to_images()
    assert imgs.shape == (N, 2, 3)
    np.testing.assert_array_equal(imgs.reshape(N, NV), ds.x)
    mask = bp.data.circular_mask(2.1)
    p = bp.data.Dataset(x=np.ones((2, 13)), pixel_mask=mask)
    assert p.image_shape == (5, 5)
    out = p.to_images(np.arange(13))
    assert out.shape == (5, 5) and np.isnan(out[0, 0]) and out[0, 2] == 0 and out[4, 2] == 12
    with pytest.raises(DataError):
        p.to_images(np.arange(12))


@pytest.mark.parametrize("kwargs,match", [
    (dict(x=np.array([[0, 2]])), "binary"),
    (dict(x=np.array([[0.0, np.nan]])), "NaN"),
    (dict(x=np.zeros((0, 3))), "empty"),
    (dict(x=np.zeros(3)), "2-D"),
    (dict(x=np.zeros((2, 3)), y=[1]), "2 patterns"),
    (dict(x=np.zeros((2, 3)), y=[0.5, 1]), "integers"),
    (dict(x=np.zeros((2, 3)), image_shape=(2, 2)), "4 pixels"),
    (dict(x=np.zeros((2, 3)), image_shape=(3,)), "pair"),
    (dict(x=np.zeros((2, 3)), pixel_mask=np.ones((2, 2), bool)), "selects 4"),
])
def test_validation(kwargs, match):
    with pytest.raises(DataError, match=match):
        bp.data.Dataset(**kwargs)


def test_accepts_tensors_and_bool():
    ds = bp.data.Dataset(x=torch.tensor([[1.0, 0.0]]), y=torch.tensor([3]))
    assert ds.x.dtype == np.uint8 and ds.y.tolist() == [3]
    assert bp.data.Dataset(x=np.array([[True, False]])).x.tolist() == [[1, 0]]


def test_random_subset_is_seeded_ordered_and_identity_when_not_smaller():
    import numpy as np

    from bmprune.data import Dataset

    ds = Dataset(x=(np.arange(40).reshape(20, 2) % 3 == 0).astype(np.uint8), y=np.arange(20) % 10)
    a, b = ds.random_subset(7, seed=3), ds.random_subset(7, seed=3)
    idx = np.sort(np.random.default_rng(3).choice(20, 7, replace=False))
    np.testing.assert_array_equal(a.y, ds.y[idx])
    np.testing.assert_array_equal(a.x, b.x)
    assert ds.random_subset(None) is ds and ds.random_subset(20) is ds and ds.random_subset(50) is ds
