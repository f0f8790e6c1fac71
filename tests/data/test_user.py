"""A researcher's own binary data: .npy / .npz / .csv, and every validation error."""

from __future__ import annotations

import numpy as np
import pytest

import bmprune as bp
from bmprune.errors import DataError

N, NV = 7, 6


@pytest.fixture
def x():
    return np.random.default_rng(2).integers(0, 2, size=(N, NV)).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, bool])
def test_npy_round_trip(tmp_path, x, dtype):
    p = tmp_path / "patterns.npy"
    np.save(p, x.astype(dtype))
    ds = bp.data.load_binary(p, image_shape=(2, 3))
    np.testing.assert_array_equal(ds.x, x)
    assert ds.x.dtype == np.uint8 and ds.image_shape == (2, 3) and ds.name == "patterns" and ds.y is None
    assert len(ds.meta["files"][0]["sha256"]) == 64


def test_npz_with_labels_and_labels_override(tmp_path, x):
    p = tmp_path / "d.npz"
    y = np.arange(N) % 3
    np.savez(p, x=x, y=y)
    ds = bp.data.load_binary(p)
    np.testing.assert_array_equal(ds.y, y)
    ds2 = bp.data.load_binary(p, labels=np.zeros(N, dtype=int))
    assert ds2.y.tolist() == [0] * N


def test_csv_with_and_without_header(tmp_path, x):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    np.savetxt(a, x, fmt="%d", delimiter=",")
    np.savetxt(b, x, fmt="%d", delimiter=",", header=",".join(f"u{i}" for i in range(NV)), comments="")
    np.testing.assert_array_equal(bp.data.load_binary(a).x, x)
    np.testing.assert_array_equal(bp.data.load_binary(b).x, x)


def test_stack_of_images_is_flattened(tmp_path, x):
    p = tmp_path / "img.npy"
    np.save(p, x.reshape(N, 2, 3))
    ds = bp.data.load_binary(p)
    assert ds.image_shape == (2, 3)
    np.testing.assert_array_equal(ds.x, x)
    with pytest.raises(DataError, match="images are"):
        bp.data.load_binary(p, image_shape=(3, 2))


@pytest.mark.parametrize("bad,match", [
    (np.array([[0, 1], [2, 1]]), "binary"),
    (np.array([[0, 0.5], [1, 1]]), "binary"),
    (np.array([[0, np.nan], [1, 1]]), "NaN"),
    (np.zeros((0, 4)), "empty"),
    (np.zeros((3, 0)), "no units"),
    (np.zeros(5), "2-D|matrix"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_invalid_values(tmp_path, bad, match):
    p = tmp_path / "bad.npy"
    np.save(p, bad)
    with pytest.raises(DataError, match=match):
        bp.data.load_binary(p)


def test_invalid_files_and_shapes(tmp_path, x):
    p = tmp_path / "d.npy"
    np.save(p, x)
    with pytest.raises(DataError, match="image_shape"):
        bp.data.load_binary(p, image_shape=(4, 4))
    with pytest.raises(DataError, match="labels"):
        bp.data.load_binary(p, labels=[0, 1])
    with pytest.raises(DataError, match="no such file"):
        bp.data.load_binary(tmp_path / "nope.npy")
    (tmp_path / "d.txt").write_text("0,1\n")
    with pytest.raises(DataError, match="unsupported"):
        bp.data.load_binary(tmp_path / "d.txt")
    np.savez(tmp_path / "noy.npz", data=x)
    with pytest.raises(DataError, match="key 'x'"):
        bp.data.load_binary(tmp_path / "noy.npz")
    raw = p.read_bytes()
    (tmp_path / "trunc.npy").write_bytes(raw[: len(raw) - 10])
    with pytest.raises(DataError, match="cannot read"):
        bp.data.load_binary(tmp_path / "trunc.npy")
    np.save(tmp_path / "obj.npy", np.array([[0, 1]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError):  # never unpickled
        bp.data.load_binary(tmp_path / "obj.npy")
    (tmp_path / "ragged.csv").write_text("0,1,1\n1,0\n")
    with pytest.raises(DataError, match="CSV"):
        bp.data.load_binary(tmp_path / "ragged.csv")
    (tmp_path / "nan.csv").write_text("0,1\n1,nan\n")
    with pytest.raises(DataError, match="NaN"):
        bp.data.load_binary(tmp_path / "nan.csv")
