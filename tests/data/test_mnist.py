"""MNIST loading and the SPEC §3 preparation: synthetic files with exact answers, every error, real data."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from data.data_synth import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    idx_bytes,
    random_mnist,
    write_mnist,
)

import bmprune as bp
from bmprune.errors import ChecksumError, ConfigError, DataError

N_TRAIN, N_TEST = 7, 5  # distinct, so a swapped split cannot pass


@pytest.fixture
def synth(tmp_path):
    rng = np.random.default_rng(11)
    train = random_mnist(rng, N_TRAIN)
    test = random_mnist(rng, N_TEST)
    write_mnist(tmp_path, "train", *train)
    write_mnist(tmp_path, "test", *test)
    return tmp_path, train, test


def _expected(images: np.ndarray) -> tuple[np.ndarray, float]:
    crop = images[:, 4:24, 4:24].astype(np.float64) / 255.0
    mean = crop.mean()
    return (crop >= mean).reshape(len(images), 400).astype(np.uint8), mean


@pytest.mark.parametrize("split", ["train", "test"])
def test_synthetic_preparation_is_exact(synth, split):
    root, train, test = synth
    images, labels = train if split == "train" else test
    ds = bp.data.load_mnist(split, data_dir=root, verify=False)
    x, mean = _expected(images)
    assert ds.x.shape == (len(images), 400) and ds.x.dtype == np.uint8
    np.testing.assert_array_equal(ds.x, x)
    assert ds.meta["threshold"] == pytest.approx(mean, rel=1e-12)
    np.testing.assert_array_equal(ds.y, labels.astype(np.int64))
    assert ds.y.dtype == np.int64
    assert ds.image_shape == (20, 20) and ds.split == split and ds.name == "mnist"
    assert ds.meta["crop"] == (4, 24, 4, 24)
    assert [f["official"] for f in ds.meta["files"]] == [None, None]  # verify=False: not checked


def test_train_and_test_thresholds_are_separate(synth):
    root, train, test = synth
    t_train = bp.data.load_mnist("train", data_dir=root, verify=False).meta["threshold"]
    t_test = bp.data.load_mnist("test", data_dir=root, verify=False).meta["threshold"]
    assert t_train == pytest.approx(_expected(train[0])[1])
    assert t_test == pytest.approx(_expected(test[0])[1])
    assert t_train != t_test


def test_border_outside_crop_is_ignored_and_ties_go_to_one(tmp_path):
    # crop pixels 0, 100, 200 in equal numbers: mean exactly 100/255, so the 100s are ties
    images = np.full((3, 28, 28), 255, dtype=np.uint8)  # bright border must not move the mean
    crop = np.tile(np.array([0, 100, 200], dtype=np.uint8), 400)[:1200].reshape(3, 20, 20)
    images[:, 4:24, 4:24] = crop
    write_mnist(tmp_path, "train", images, np.arange(3, dtype=np.uint8))
    ds = bp.data.load_mnist("train", data_dir=tmp_path, verify=False)
    assert ds.meta["threshold"] == pytest.approx(100 / 255)
    np.testing.assert_array_equal(ds.x, (crop >= 100).reshape(3, 400))
    assert ds.x.reshape(3, 20, 20)[crop == 100].all()  # ties → 1


def test_plain_and_dotted_idx_files_and_files_directly_in_data_dir(tmp_path):
    rng = np.random.default_rng(3)
    images, labels = random_mnist(rng, 4)
    write_mnist(tmp_path / "a", "train", images, labels, gz=False)
    write_mnist(tmp_path / "b", "train", images, labels, gz=False, dotted=True)
    write_mnist(tmp_path / "c", "train", images, labels, gz=True)
    a = bp.data.load_mnist(data_dir=tmp_path / "a", verify=False)
    b = bp.data.load_mnist(data_dir=tmp_path / "b", verify=False)
    c = bp.data.load_mnist(data_dir=tmp_path / "c/mnist", verify=False)  # the files directly in data_dir
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)


def test_crop_none_and_fixed_threshold(synth):
    root, train, _ = synth
    full = bp.data.load_mnist(data_dir=root, crop=None, verify=False)
    assert full.x.shape == (N_TRAIN, 784) and full.image_shape == (28, 28)
    fixed = bp.data.load_mnist(data_dir=root, threshold=0.5, verify=False)
    np.testing.assert_array_equal(fixed.x, (train[0][:, 4:24, 4:24] >= 128).reshape(N_TRAIN, 400))
    with pytest.raises(ConfigError):
        bp.data.load_mnist(data_dir=root, threshold=1.5, verify=False)
    with pytest.raises(ConfigError):
        bp.data.load_mnist(data_dir=root, crop=19, verify=False)
    with pytest.raises(ConfigError):
        bp.data.load_mnist("validation", data_dir=root, verify=False)


def test_data_dir_from_environment(synth, monkeypatch):
    root, _, _ = synth
    monkeypatch.setenv("BMPRUNE_DATA_DIR", str(root))
    assert len(bp.data.load_mnist(verify=False)) == N_TRAIN


# ---------------------------------------------------------------------------- errors
def test_missing_files_name_the_directory_and_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("BMPRUNE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as e:
        bp.data.load_mnist(verify=False)
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "bmprune data fetch mnist" in msg
    assert "train-images-idx3-ubyte.gz" in msg


def _write_raw(root, name, data):
    d = root / "mnist"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def test_wrong_magic(synth):
    root, train, _ = synth
    _write_raw(root, "train-images-idx3-ubyte.gz", gzip.compress(idx_bytes(train[0], LABELS_MAGIC)))
    with pytest.raises(DataError, match="magic"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_labels_file_with_image_magic(synth):
    root, train, _ = synth
    _write_raw(root, "train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(train[1], IMAGES_MAGIC)))
    with pytest.raises(DataError, match="magic"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_truncated_gzip(synth):
    root, _, _ = synth
    p = root / "mnist" / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_corrupt_gzip(synth):
    root, _, _ = synth
    p = root / "mnist" / "train-images-idx3-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # zero a stretch of the deflate stream
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="gzip"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_truncated_payload_and_trailing_bytes(synth):
    root, train, _ = synth
    good = idx_bytes(train[0], IMAGES_MAGIC)
    _write_raw(root, "train-images-idx3-ubyte.gz", gzip.compress(good[:-10]))
    with pytest.raises(DataError, match="truncated"):
        bp.data.load_mnist(data_dir=root, verify=False)
    _write_raw(root, "train-images-idx3-ubyte.gz", gzip.compress(good + b"\0"))
    with pytest.raises(DataError, match="trailing"):
        bp.data.load_mnist(data_dir=root, verify=False)
    _write_raw(root, "train-images-idx3-ubyte.gz", gzip.compress(good[:10]))  # inside the header
    with pytest.raises(DataError, match="truncated header"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_wrong_image_size(synth):
    root, _, _ = synth
    _write_raw(root, "train-images-idx3-ubyte.gz",
               gzip.compress(idx_bytes(np.zeros((N_TRAIN, 27, 27), np.uint8), IMAGES_MAGIC)))
    with pytest.raises(DataError, match="28×28"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_label_count_mismatch(synth):
    root, train, _ = synth
    _write_raw(root, "train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(train[1][:-1], LABELS_MAGIC)))
    with pytest.raises(DataError, match=f"{N_TRAIN - 1} labels but .* {N_TRAIN} images"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_label_out_of_range(synth):
    root, train, _ = synth
    labels = train[1].copy()
    labels[2] = 10
    _write_raw(root, "train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels, LABELS_MAGIC)))
    with pytest.raises(DataError, match="label 10 at index 2 is outside 0..9"):
        bp.data.load_mnist(data_dir=root, verify=False)


def test_verify_rejects_files_that_are_not_official(synth):
    root, _, _ = synth
    with pytest.raises(ChecksumError, match="checksum"):
        bp.data.load_mnist(data_dir=root, verify=True)


# ---------------------------------------------------------------------------- real data
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def real_mnist(real_mnist_root):
    return {s: bp.data.load_mnist(s, data_dir=real_mnist_root, verify=True) for s in ("train", "test")}


@pytest.mark.data
@pytest.mark.parametrize("split,n,counts", [("train", 60000, TRAIN_COUNTS), ("test", 10000, TEST_COUNTS)])
def test_real_mnist(real_mnist, split, n, counts):
    ds = real_mnist[split]
    assert ds.x.shape == (n, 400) and ds.x.dtype == np.uint8
    assert set(np.unique(ds.x).tolist()) == {0, 1}
    assert 0.24 < ds.meta["threshold"] < 0.26  # SPEC §3: ≈0.25
    assert ds.y.min() == 0 and ds.y.max() == 9
    assert np.bincount(ds.y).tolist() == counts
    assert all(f["official"] for f in ds.meta["files"])
    # the on-fraction follows from a threshold just below the typical stroke/background split
    assert 0.25 < ds.on_fraction < 0.35


@pytest.mark.data
def test_real_mnist_threshold_is_the_mean_of_the_cropped_split(real_mnist_root, real_mnist):
    raw = gzip.decompress((real_mnist_root / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(10000, 28, 28)
    mean = images[:, 4:24, 4:24].mean(dtype=np.float64) / 255
    assert real_mnist["test"].meta["threshold"] == pytest.approx(mean, rel=1e-12)
    expected = (images[:50, 4:24, 4:24] / 255 >= mean).reshape(50, 400)
    np.testing.assert_array_equal(real_mnist["test"].x[:50], expected)
