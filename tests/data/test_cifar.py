"""CIFAR-10 circular patches (SPEC §3): synthetic binary and python batches with exact answers,
the restricted unpickler, every error, and the real training batches."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from data.data_synth import (
    patch_reference,
    py2_batch_pickle,
    random_cifar,
    write_cifar_bin,
    write_cifar_py,
)

import bmprune as bp
from bmprune.errors import ChecksumError, ConfigError, DataError

SIZES = {"data_batch_1": 3, "data_batch_2": 2, "data_batch_3": 4, "data_batch_4": 1, "data_batch_5": 2}
N_IMAGES = sum(SIZES.values())  # 12 images → 432 patches


@pytest.fixture
def batches():
    rng = np.random.default_rng(7)
    return {name: random_cifar(rng, n) for name, n in SIZES.items()}


@pytest.fixture
def bin_root(tmp_path, batches):
    write_cifar_bin(tmp_path, batches)
    return tmp_path


def _grey(batches, names):
    return np.concatenate([batches[n][0].astype(np.int64).sum(axis=1) for n in names])


def test_all_patches_in_order_are_exact(bin_root, batches):
    ds = bp.data.load_cifar_patches(n_patches=None, data_dir=bin_root, verify=False)
    grey = _grey(batches, sorted(SIZES))
    median = np.median(grey)
    assert ds.meta["median"] == median
    assert ds.x.shape == (N_IMAGES * 36, 13) and ds.x.dtype == np.uint8
    c = bp.data.CIFAR_CENTERS
    for k in range(0, N_IMAGES * 36, 7):  # a spread of patches, checked pixel by pixel
        m, cy, cx = k // 36, c[(k % 36) // 6], c[k % 6]
        assert ds.meta["patch_image"][k] == m
        assert ds.meta["patch_center"][k].tolist() == [cy, cx]
        np.testing.assert_array_equal(ds.x[k], patch_reference(grey, median, m, cy, cx, 2.1))
    assert ds.image_shape == (5, 5) and ds.pixel_mask.sum() == 13
    assert ds.meta["n_pool"] == N_IMAGES * 36 and ds.meta["n_images"] == N_IMAGES
    assert ds.split == "train" and ds.y is None
    labels = np.concatenate([batches[n][1] for n in sorted(SIZES)])
    np.testing.assert_array_equal(ds.meta["patch_label"], labels[ds.meta["patch_image"]])


def test_random_draw_is_seeded_and_drawn_from_the_pool(bin_root):
    full = bp.data.load_cifar_patches(n_patches=None, data_dir=bin_root, verify=False)
    a = bp.data.load_cifar_patches(n_patches=100, seed=3, data_dir=bin_root, verify=False)
    b = bp.data.load_cifar_patches(n_patches=100, seed=3, data_dir=bin_root, verify=False)
    d = bp.data.load_cifar_patches(n_patches=100, seed=4, data_dir=bin_root, verify=False)
    np.testing.assert_array_equal(a.x, b.x)
    c = np.array(bp.data.CIFAR_CENTERS)
    pool = lambda ds: (ds.meta["patch_image"] * 36 + np.searchsorted(c, ds.meta["patch_center"][:, 0]) * 6
                       + np.searchsorted(c, ds.meta["patch_center"][:, 1]))
    assert len(np.unique(pool(a))) == 100
    assert not np.array_equal(pool(a), pool(d))
    np.testing.assert_array_equal(a.x, full.x[pool(a)])
    assert a.meta["seed"] == 3


def test_batches_are_read_in_sorted_order(bin_root, batches):
    a = bp.data.load_cifar_patches(n_patches=None, batches=[3, 1], data_dir=bin_root, verify=False)
    b = bp.data.load_cifar_patches(n_patches=None, batches=["data_batch_1", "data_batch_3.bin"], data_dir=bin_root, verify=False)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.meta["batches"] == ["data_batch_1", "data_batch_3"]
    assert a.split == "data_batch_1+data_batch_3"
    grey = _grey(batches, ["data_batch_1", "data_batch_3"])
    assert a.meta["median"] == np.median(grey)  # the median of the loaded batches only
    # image 3 of the selection is the first image of batch 3
    np.testing.assert_array_equal(a.x[3 * 36], patch_reference(grey, np.median(grey), 3, 3, 3, 2.1))


def test_grey_is_the_sum_of_the_planes(bin_root, batches):
    grey, labels, meta = bp.data.load_cifar_grey(data_dir=bin_root, verify=False)
    assert grey.dtype == np.uint16 and grey.shape == (N_IMAGES, 32, 32)
    np.testing.assert_array_equal(grey, _grey(batches, sorted(SIZES)))
    np.testing.assert_array_equal(labels, np.concatenate([batches[n][1] for n in sorted(SIZES)]))
    assert meta["format"] == "bin" and [f["official"] for f in meta["files"]] == [None] * 5


def test_ties_at_the_median_are_one(tmp_path):
    rgb = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    rgb[:, 0] = np.arange(32 * 32).reshape(32, 32) % 3 * 10  # grey 0, 10, 20 → median 10
    write_cifar_bin(tmp_path, {"data_batch_1": (rgb, np.zeros(2, np.uint8))})
    ds = bp.data.load_cifar_patches(n_patches=None, batches=[1], data_dir=tmp_path, verify=False)
    assert ds.meta["median"] == 10.0
    grey = rgb.sum(axis=1)
    ref = patch_reference(grey, 10, 0, 3, 3, 2.1)
    np.testing.assert_array_equal(ds.x[0], ref)
    assert ds.x.mean() == pytest.approx((grey[:, 1:31, 1:31] >= 10).mean(), abs=0.05)


def test_radius_3_5_gives_37_pixel_patches(bin_root):
    ds = bp.data.load_cifar_patches(radius=3.5, n_patches=50, data_dir=bin_root, verify=False)
    assert ds.x.shape == (50, 37) and ds.image_shape == (7, 7)


# ---------------------------------------------------------------------------- python batches
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_python_batches_give_the_same_patches(tmp_path, batches, protocol):
    write_cifar_bin(tmp_path / "bin", batches)
    write_cifar_py(tmp_path / "py", batches, protocol=protocol)
    a = bp.data.load_cifar_patches(n_patches=200, data_dir=tmp_path / "bin", verify=False)
    b = bp.data.load_cifar_patches(n_patches=200, data_dir=tmp_path / "py", verify=False)
    assert b.meta["format"] == "py"
    np.testing.assert_array_equal(a.x, b.x)


def test_python2_pickled_batches_as_officially_distributed(tmp_path, batches):
    # the official python batches are Python 2 cPickles naming numpy.core.multiarray
    write_cifar_bin(tmp_path / "bin", batches)
    d = tmp_path / "py" / "cifar-10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name, (rgb, lab) in batches.items():
        (d / name).write_bytes(py2_batch_pickle(rgb, lab))
    a = bp.data.load_cifar_patches(n_patches=None, data_dir=tmp_path / "bin", verify=False)
    b = bp.data.load_cifar_patches(n_patches=None, data_dir=tmp_path / "py", verify=False)
    assert b.meta["format"] == "py"
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.meta["patch_label"], b.meta["patch_label"])


def test_format_choice(tmp_path, batches):
    write_cifar_bin(tmp_path, batches)
    write_cifar_py(tmp_path, batches)
    assert bp.data.load_cifar_patches(n_patches=10, data_dir=tmp_path, verify=False).meta["format"] == "bin"  # binary first
    assert bp.data.load_cifar_patches(n_patches=10, data_dir=tmp_path, format="py", verify=False).meta["format"] == "py"
    with pytest.raises(ConfigError):
        bp.data.load_cifar_patches(data_dir=tmp_path, format="matlab", verify=False)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))  # would create a directory when unpickled


def test_restricted_unpickler_refuses_foreign_globals(tmp_path, batches):
    d = write_cifar_py(tmp_path, batches)
    target = tmp_path / "pwned"
    obj = {b"data": batches["data_batch_1"][0].reshape(3, 3072), b"labels": [0, 1, 2], b"x": _Evil(target)}
    (d / "data_batch_1").write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError, match=r"refusing to load global (posix|os|nt)\.mkdir"):
        bp.data.load_cifar_patches(data_dir=tmp_path, format="py", verify=False)
    assert not target.exists()


def test_python_batch_with_wrong_content(tmp_path, batches):
    d = write_cifar_py(tmp_path, batches)
    (d / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072)), b"labels": [0, 1]}))
    with pytest.raises(DataError, match="uint8 array"):
        bp.data.load_cifar_patches(data_dir=tmp_path, format="py", verify=False)
    (d / "data_batch_2").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match="is a dict"):
        bp.data.load_cifar_patches(data_dir=tmp_path, format="py", verify=False)
    (d / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}))
    with pytest.raises(DataError, match="labels"):
        bp.data.load_cifar_patches(data_dir=tmp_path, format="py", verify=False)


def test_truncated_python_batch(tmp_path, batches):
    d = write_cifar_py(tmp_path, batches)
    raw = (d / "data_batch_4").read_bytes()
    (d / "data_batch_4").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated|corrupt"):
        bp.data.load_cifar_patches(data_dir=tmp_path, format="py", verify=False)


# ---------------------------------------------------------------------------- errors
def test_missing_batches_name_the_directories_and_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("BMPRUNE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as e:
        bp.data.load_cifar_patches(verify=False)
    msg = str(e.value)
    assert str(tmp_path / "cifar-10" / "cifar-10-batches-bin") in msg
    assert "bmprune data fetch cifar10" in msg


def test_one_missing_batch(bin_root):
    (bin_root / "cifar-10" / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    with pytest.raises(DataError, match="not found"):
        bp.data.load_cifar_patches(data_dir=bin_root, verify=False)
    assert len(bp.data.load_cifar_patches(n_patches=None, batches=[1, 2, 3, 5], data_dir=bin_root, verify=False)) == 11 * 36


def test_truncated_binary_batch(bin_root):
    p = bin_root / "cifar-10" / "cifar-10-batches-bin" / "data_batch_2.bin"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match="not a whole number of 3073-byte"):
        bp.data.load_cifar_patches(data_dir=bin_root, verify=False)
    p.write_bytes(b"")
    with pytest.raises(DataError, match="0 bytes"):
        bp.data.load_cifar_patches(data_dir=bin_root, verify=False)


def test_binary_label_out_of_range(tmp_path, batches):
    rgb, lab = batches["data_batch_1"]
    lab = lab.copy()
    lab[1] = 200
    write_cifar_bin(tmp_path, {**batches, "data_batch_1": (rgb, lab)})
    with pytest.raises(DataError, match="label 200 of image 1"):
        bp.data.load_cifar_patches(data_dir=tmp_path, verify=False)


def test_bad_parameters(bin_root):
    with pytest.raises(ConfigError, match="only 432"):
        bp.data.load_cifar_patches(n_patches=433, data_dir=bin_root, verify=False)
    with pytest.raises(ConfigError):
        bp.data.load_cifar_patches(batches=[6], data_dir=bin_root, verify=False)
    with pytest.raises(ConfigError):
        bp.data.load_cifar_patches(batches=["../../etc/passwd"], data_dir=bin_root, verify=False)
    with pytest.raises(ConfigError):
        bp.data.load_cifar_patches(batches=[], data_dir=bin_root, verify=False)
    with pytest.raises(ConfigError):
        bp.data.load_cifar_patches(radius=-2, data_dir=bin_root, verify=False)
    with pytest.raises(ConfigError, match="outside"):
        bp.data.load_cifar_patches(radius=4.5, data_dir=bin_root, verify=False)


def test_verify_rejects_files_that_are_not_official(bin_root):
    with pytest.raises(ChecksumError):
        bp.data.load_cifar_patches(data_dir=bin_root, verify=True)


# ---------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_patches(real_cifar_root):
    return bp.data.load_cifar_patches(data_dir=real_cifar_root, verify=True)


@pytest.mark.data
def test_real_cifar_patches(real_patches):
    ds = real_patches
    assert ds.x.shape == (90000, 13) and ds.x.dtype == np.uint8
    assert set(np.unique(ds.x).tolist()) == {0, 1}
    np.testing.assert_array_equal(ds.pixel_mask, np.array([
        [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]], dtype=bool))
    assert 0.47 < ds.on_fraction < 0.53  # median binarisation: about half the pixels are on
    assert ds.meta["n_images"] == 50000 and ds.meta["n_pool"] == 1_800_000
    assert ds.meta["median"] == 349.0  # of R+G+B over all 51.2 million pixels (checksum-pinned files)
    assert all(f["official"] for f in ds.meta["files"])
    assert [f["path"].rsplit("/", 1)[-1] for f in ds.meta["files"]] == [f"data_batch_{i}.bin" for i in range(1, 6)]
    assert ds.meta["patch_image"].min() >= 0 and ds.meta["patch_image"].max() < 50000
    # every patch position of the 6×6 grid is drawn
    assert set(map(tuple, np.unique(ds.meta["patch_center"], axis=0).tolist())) == {
        (a, b) for a in bp.data.CIFAR_CENTERS for b in bp.data.CIFAR_CENTERS}


@pytest.mark.data
def test_real_partial_test_batch_with_its_labels(real_cifar_root):
    partial = real_cifar_root / "cifar-10" / "partial"
    if not (partial / "test_batch_first1000.bin").is_file():
        pytest.skip("real data not available: cifar-10/partial/test_batch_first1000.bin is absent")
    grey, labels, meta = bp.data.load_cifar_grey(["test_batch_first1000"], data_dir=partial)
    assert grey.shape == (1000, 32, 32) and meta["files"][0]["official"] is None  # no pinned checksum
    all_labels = np.frombuffer((partial / "test_batch_labels.bin").read_bytes(), np.uint8)
    np.testing.assert_array_equal(labels, all_labels[:1000])
