"""Issue 13, item 4: real data verified (and the verification recorded), user files checked.

Every case asserts the typed error (``ChecksumError`` / ``DataError``, never a NumPy, gzip,
zipfile, zlib or pickle exception) and that the files the user made are left as they were.
Synthetic files have no published checksum, so their checksums are pinned here
(``store._PINNED`` monkeypatched); the cases marked ``data`` use copies of, or links to, the
real files of ``BMPRUNE_DATA_DIR`` and skip where it is absent.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from data.data_synth import idx_bytes, py2_batch_pickle, random_cifar, random_mnist, write_cifar_bin, write_mnist

import bmprune as bp
from bmprune.data import integrity, store
from bmprune.errors import ChecksumError, DataError

MNIST_GZ = list(store.MNIST_FILES.values())


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A private record cache; records trusted at once (the racy window has its own test)."""
    d = tmp_path / "cache"
    monkeypatch.setenv(integrity.CACHE_ENV_VAR, str(d))
    monkeypatch.setattr(integrity, "RACY_WINDOW_NS", 0)
    return d


@pytest.fixture
def hashes(monkeypatch) -> list[object]:
    """Every call of the one hashing function, in order (a path, or the size of bytes hashed)."""
    calls: list[object] = []
    real = integrity.compute_digests

    def counting(source, algorithms=("sha256",)):
        calls.append(Path(source).name if isinstance(source, (str, os.PathLike)) else len(source))
        return real(source, algorithms)

    monkeypatch.setattr(integrity, "compute_digests", counting)
    return calls


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _pin(monkeypatch, path: Path) -> None:
    raw = path.read_bytes()
    monkeypatch.setitem(store._PINNED, path.name, store.Checksum(sha256=_sha(raw), size=len(raw)))


def _is_record(p: Path) -> bool:
    return p.name.endswith(".verified.json") or ".verified.json." in p.name


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Content digest and mtime of every file the user made under root (records excluded)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not _is_record(p):
            out[str(p.relative_to(root))] = (_sha(p.read_bytes()), p.stat().st_mtime_ns)
    return out


def records(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if _is_record(p))


@pytest.fixture
def mnist_root(tmp_path, monkeypatch) -> Path:
    """Synthetic MNIST (train 6, test 4 images) in the official layout, checksums pinned."""
    root = tmp_path / "data"
    rng = np.random.default_rng(13)
    for split, n in (("train", 6), ("test", 4)):
        for p in write_mnist(root, split, *random_mnist(rng, n)):
            _pin(monkeypatch, p)
    return root


def _images(root: Path) -> Path:
    return root / "mnist" / "t10k-images-idx3-ubyte.gz"


def _how(ds) -> list[str]:
    return [f["verification"] for f in ds.meta["files"]]


def _flip_one_pixel(gz: bytes) -> bytes:
    """The same IDX file with one pixel changed, gzipped again: a valid file, not the official one."""
    idx = bytearray(gzip.decompress(gz))
    idx[16 + 14 * 28 + 14] ^= 0x40  # the centre pixel of the first image
    return gzip.compress(bytes(idx), compresslevel=1)


@pytest.fixture
def restore_mode():
    """chmod directories back after a test made them read-only."""
    changed: list[tuple[Path, int]] = []

    def make_read_only(d: Path) -> None:
        changed.append((d, stat.S_IMODE(d.stat().st_mode)))
        d.chmod(0o555)

    yield make_read_only
    for d, mode in reversed(changed):
        d.chmod(mode)


# ---------------------------------------------------------------------------- the example (real files)
@pytest.mark.data
@pytest.mark.parametrize("how", ["one pixel, gzipped again", "one pixel, gunzipped file", "one byte of the gzip"])
def test_real_mnist_file_with_one_changed_pixel_is_a_checksum_error(data_dir, tmp_path, how):
    real = data_dir / "mnist"
    if not all((real / n).is_file() for n in MNIST_GZ):
        pytest.skip(f"real data not available: {real} lacks the MNIST files")
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").symlink_to(real / "t10k-labels-idx1-ubyte.gz")
    gz = (real / "t10k-images-idx3-ubyte.gz").read_bytes()
    if how == "one pixel, gzipped again":
        bad = root / "mnist" / "t10k-images-idx3-ubyte.gz"
        bad.write_bytes(_flip_one_pixel(gz))
    elif how == "one pixel, gunzipped file":
        bad = root / "mnist" / "t10k-images-idx3-ubyte"
        bad.write_bytes(gzip.decompress(_flip_one_pixel(gz)))
    else:
        bad = root / "mnist" / "t10k-images-idx3-ubyte.gz"
        raw = bytearray(gz)
        raw[len(raw) // 2] ^= 0x01
        bad.write_bytes(bytes(raw))
    before = snapshot(root)
    with pytest.raises(ChecksumError) as e:
        bp.data.load_mnist("test", data_dir=root)
    msg = str(e.value)
    pin = store.pinned_checksum(bad)
    assert str(bad) in msg and pin.sha256 in msg and _sha(bad.read_bytes()) in msg
    assert "bmprune data fetch mnist" in msg
    assert snapshot(root) == before and records(root) == []  # nothing changed, nothing recorded
    if how != "one byte of the gzip":  # the opt-out loads it: without verification the change is silent
        ds = bp.data.load_mnist("test", data_dir=root, verify=False)
        assert len(ds) == 10000 and _how(ds) == ["skipped", "skipped"]


@pytest.mark.data
def test_real_files_are_hashed_once_then_their_record_is_reused(data_dir, tmp_path, hashes):
    real_m, real_c = data_dir / "mnist", data_dir / "cifar-10" / "cifar-10-batches-bin"
    if not (real_m / MNIST_GZ[2]).is_file() or not (real_c / "data_batch_1.bin").is_file():
        pytest.skip("real data not available: MNIST test files or CIFAR-10 data_batch_1.bin absent")
    root = tmp_path / "data"  # a writable directory of links to the real files: records beside them
    (root / "mnist").mkdir(parents=True)
    (root / "cifar-10" / "cifar-10-batches-bin").mkdir(parents=True)
    for n in MNIST_GZ[2:]:
        (root / "mnist" / n).symlink_to(real_m / n)
    (root / "cifar-10" / "cifar-10-batches-bin" / "data_batch_1.bin").symlink_to(real_c / "data_batch_1.bin")
    first = bp.data.load_mnist("test", data_dir=root)
    grey1, _, meta1 = bp.data.load_cifar_grey([1], data_dir=root)
    assert _how(first) == ["hashed", "hashed"] and meta1["files"][0]["verification"] == "hashed"
    assert len(hashes) == 3
    assert records(root) == sorted(f".{n}.verified.json" for n in MNIST_GZ[2:] + ["data_batch_1.bin"])
    again = bp.data.load_mnist("test", data_dir=root)
    grey2, _, meta2 = bp.data.load_cifar_grey([1], data_dir=root)
    assert len(hashes) == 3  # nothing hashed the second time
    assert _how(again) == ["record", "record"] and meta2["files"][0]["verification"] == "record"
    assert [f["sha256"] for f in again.meta["files"]] == [store._PINNED[n].sha256 for n in MNIST_GZ[2:]]
    assert meta2["files"][0]["sha256"] == store._PINNED["data_batch_1.bin"].sha256
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(grey1, grey2)


@pytest.mark.data
def test_read_only_real_data_dir_is_left_alone_and_recorded_in_the_cache(data_dir, cache, hashes):
    mnist = data_dir / "mnist"
    if not all((mnist / n).is_file() for n in MNIST_GZ[2:]):
        pytest.skip(f"real data not available: {mnist} lacks the MNIST test files")
    if integrity._writable_dir(mnist):
        pytest.skip(f"{mnist} is writable here; this case is about a read-only data directory")
    listing = sorted(os.listdir(mnist))
    ds = bp.data.load_mnist("test", data_dir=data_dir)
    assert _how(ds) == ["hashed", "hashed"] and all(f["official"] for f in ds.meta["files"])
    assert sorted(os.listdir(mnist)) == listing  # nothing written beside the files
    assert len(list((cache / "verified").glob("*.json"))) == 2
    assert _how(bp.data.load_mnist("test", data_dir=data_dir)) == ["record", "record"]
    assert len(hashes) == 2


# ---------------------------------------------------------------------------- records (synthetic, pinned)
def test_record_is_written_beside_the_file_and_reused(mnist_root, hashes):
    before = snapshot(mnist_root)
    first = bp.data.load_mnist("test", data_dir=mnist_root)
    assert _how(first) == ["hashed", "hashed"] and len(hashes) == 2
    rec_path = mnist_root / "mnist" / ".t10k-images-idx3-ubyte.gz.verified.json"
    rec = json.loads(rec_path.read_text())
    st = _images(mnist_root).stat()
    assert (rec["size"], rec["mtime_ns"], rec["sha256"]) == (st.st_size, st.st_mtime_ns, _sha(_images(mnist_root).read_bytes()))
    assert rec["path"] == str(_images(mnist_root).resolve())
    second = bp.data.load_mnist("test", data_dir=mnist_root)
    assert _how(second) == ["record", "record"] and len(hashes) == 2  # not hashed again
    assert second.meta["files"][0]["sha256"] == rec["sha256"] and second.meta["files"][0]["official"] is True
    np.testing.assert_array_equal(first.x, second.x)
    assert snapshot(mnist_root) == before


def test_touched_file_is_verified_again(mnist_root, hashes):
    bp.data.load_mnist("test", data_dir=mnist_root)
    st = _images(mnist_root).stat()
    os.utime(_images(mnist_root), ns=(st.st_atime_ns, st.st_mtime_ns - 1_000_000_000))  # touched
    before = snapshot(mnist_root)
    ds = bp.data.load_mnist("test", data_dir=mnist_root)
    assert _how(ds) == ["hashed", "record"] and len(hashes) == 3
    assert _how(bp.data.load_mnist("test", data_dir=mnist_root)) == ["record", "record"]  # recorded afresh
    assert snapshot(mnist_root) == before


def test_same_size_edit_with_restored_mtime_is_still_caught(mnist_root):
    p = _images(mnist_root)
    bp.data.load_mnist("test", data_dir=mnist_root)  # verified and recorded
    st = p.stat()
    with open(p, "r+b") as f:  # one byte changed in place: same size
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([b[0] ^ 0x01]))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -d` / `cp -p`: mtime as recorded
    assert (p.stat().st_size, p.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    before = snapshot(mnist_root)
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz"):
        bp.data.load_mnist("test", data_dir=mnist_root)  # ctime changed: the record is not trusted
    assert snapshot(mnist_root) == before
    assert not (mnist_root / "mnist" / ".t10k-images-idx3-ubyte.gz.verified.json").exists()  # stale record gone


def test_one_byte_changed_in_place_same_size_same_mtime_is_caught(tmp_path, hashes):
    p = tmp_path / "blob.bin"
    p.write_bytes(bytes(range(256)) * 40)
    expected = _sha(p.read_bytes())
    assert integrity.verify_file(p, expected).how == "hashed"
    st = p.stat()
    with open(p, "r+b") as f:  # one byte, same size
        f.seek(1000)
        f.write(b"\x00")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert p.stat().st_size == st.st_size and p.stat().st_mtime_ns == st.st_mtime_ns
    before = p.read_bytes()
    with pytest.raises(ChecksumError) as e:
        integrity.verify_file(p, expected)
    assert expected in str(e.value) and _sha(before) in str(e.value) and str(p) in str(e.value)
    assert p.read_bytes() == before and len(hashes) == 2


def test_recently_changed_file_is_hashed_until_its_record_is_safe(mnist_root, hashes, monkeypatch):
    monkeypatch.setattr(integrity, "RACY_WINDOW_NS", 2_000_000_000)  # the default
    bp.data.load_mnist("test", data_dir=mnist_root)
    ds = bp.data.load_mnist("test", data_dir=mnist_root)  # files changed < 2 s before the record: hash again
    assert _how(ds) == ["hashed", "hashed"] and len(hashes) == 4
    rec_path = mnist_root / "mnist" / ".t10k-images-idx3-ubyte.gz.verified.json"
    rec = json.loads(rec_path.read_text())
    rec["verified_at_ns"] += 3_000_000_000  # as if verified 3 s after the last change
    rec_path.write_text(json.dumps(rec))
    assert _how(bp.data.load_mnist("test", data_dir=mnist_root))[0] == "record"


@pytest.mark.parametrize("damage", [
    b"", b"{", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"null", b"[" * 30000,
    "wrong-types", "other-version", "other-file", "other-digest", "huge",
])
def test_damaged_record_is_ignored_and_replaced(mnist_root, hashes, damage):
    bp.data.load_mnist("test", data_dir=mnist_root)
    rec_path = mnist_root / "mnist" / ".t10k-images-idx3-ubyte.gz.verified.json"
    rec = json.loads(rec_path.read_text())
    if isinstance(damage, bytes):
        rec_path.write_bytes(damage)
    elif damage == "huge":
        rec_path.write_bytes(b" " * (1 << 17) + json.dumps(rec).encode())
    else:
        if damage == "wrong-types":
            rec["size"] = str(rec["size"])
        elif damage == "other-version":
            rec["version"] = 99
        elif damage == "other-file":
            rec["path"] = "/elsewhere/t10k-images-idx3-ubyte.gz"
        else:
            rec["sha256"] = "0" * 64
        rec_path.write_text(json.dumps(rec))
    before = snapshot(mnist_root)
    ds = bp.data.load_mnist("test", data_dir=mnist_root)  # never an error
    assert _how(ds) == ["hashed", "record"] and len(hashes) == 3
    assert json.loads(rec_path.read_text())["sha256"] == _sha(_images(mnist_root).read_bytes())  # rewritten
    assert _how(bp.data.load_mnist("test", data_dir=mnist_root)) == ["record", "record"]
    assert snapshot(mnist_root) == before


def test_read_only_data_dir_records_in_the_cache(mnist_root, cache, hashes, restore_mode):
    d = mnist_root / "mnist"
    restore_mode(d)
    before = snapshot(mnist_root)
    bp.data.load_mnist("test", data_dir=mnist_root)
    assert records(d) == [] and len(list((cache / "verified").glob("*.json"))) == 2
    ds = bp.data.load_mnist("test", data_dir=mnist_root)
    assert _how(ds) == ["record", "record"] and len(hashes) == 2
    cached = {json.loads(p.read_text())["path"] for p in (cache / "verified").glob("*.json")}
    assert str(_images(mnist_root).resolve()) in cached
    assert snapshot(mnist_root) == before


def test_nowhere_to_record_still_verifies_every_time(mnist_root, cache, hashes, restore_mode):
    cache.mkdir()
    restore_mode(mnist_root / "mnist")
    restore_mode(cache)
    for _ in range(2):
        assert _how(bp.data.load_mnist("test", data_dir=mnist_root)) == ["hashed", "hashed"]
    assert len(hashes) == 4 and records(mnist_root) == [] and list(cache.iterdir()) == []
    before = snapshot(mnist_root)
    with pytest.raises(ChecksumError):  # and a mismatch is still refused
        integrity.verify_file(_images(mnist_root), "f" * 64)
    assert snapshot(mnist_root) == before


def test_failed_record_write_leaves_no_partial_file(mnist_root, cache, hashes, monkeypatch):
    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(integrity.os, "replace", failing_replace)
    before = snapshot(mnist_root)
    ds = bp.data.load_mnist("test", data_dir=mnist_root)  # verified, just not recorded
    assert _how(ds) == ["hashed", "hashed"]
    leftovers = [p for p in list(mnist_root.rglob("*")) + list(cache.rglob("*")) if p.is_file() and _is_record(p)]
    assert leftovers == [] and snapshot(mnist_root) == before


def test_verify_false_hashes_nothing_and_loads_an_altered_file(mnist_root, hashes):
    p = _images(mnist_root)
    p.write_bytes(_flip_one_pixel(p.read_bytes()))
    with pytest.raises(ChecksumError):
        bp.data.load_mnist("test", data_dir=mnist_root)
    n = len(hashes)
    before = snapshot(mnist_root)
    ds = bp.data.load_mnist("test", data_dir=mnist_root, verify=False)
    assert len(hashes) == n and len(ds) == 4
    assert [(f["sha256"], f["official"], f["verification"]) for f in ds.meta["files"]] == [(None, None, "skipped")] * 2
    assert records(mnist_root) == [] and snapshot(mnist_root) == before


def test_verify_false_on_every_loader_that_reads_pinned_files(tmp_path, monkeypatch, hashes):
    rng = np.random.default_rng(3)
    write_cifar_bin(tmp_path, {f"data_batch_{i}": random_cifar(rng, 2) for i in range(1, 6)})
    py = tmp_path / "py" / "cifar-10" / "cifar-10-batches-py"
    py.mkdir(parents=True)
    (py / "data_batch_1").write_bytes(py2_batch_pickle(*random_cifar(rng, 2)))
    before = snapshot(tmp_path)
    with pytest.raises(ChecksumError, match="bmprune data fetch cifar10"):  # synthetic ≠ the official batches
        bp.data.load_cifar_patches(data_dir=tmp_path)
    with pytest.raises(ChecksumError, match="MD5 mismatch.*bmprune data fetch cifar10-python"):
        bp.data.load_cifar_grey([1], data_dir=tmp_path / "py", format="py")
    n = len(hashes)
    assert len(bp.data.load_cifar_patches(n_patches=None, data_dir=tmp_path, verify=False)) == 10 * 36
    assert bp.data.load_cifar_grey([1], data_dir=tmp_path / "py", format="py", verify=False)[0].shape == (2, 32, 32)
    binf = tmp_path / "cifar-10" / "cifar-10-batches-bin" / "data_batch_1.bin"
    assert bp.data.cifar.read_bin_batch(binf, verify=False)[2]["verification"] == "skipped"
    assert len(hashes) == n and snapshot(tmp_path) == before


def test_verify_file_takes_the_expected_checksum(tmp_path, hashes):
    p = tmp_path / "any.dat"
    p.write_bytes(b"some bytes" * 100)
    good = _sha(p.read_bytes())
    v = integrity.verify_file(p, good)
    assert (v.how, v.official, v.sha256) == ("hashed", True, good) and v.record == tmp_path / ".any.dat.verified.json"
    assert integrity.verify_file(p, store.Checksum(sha256=good)).how == "record"
    md5 = hashlib.md5(p.read_bytes()).hexdigest()
    assert integrity.verify_file(p, store.Checksum(md5=md5)).how == "hashed"  # the record has no md5 yet
    assert integrity.verify_file(p, store.Checksum(md5=md5)).how == "record"
    with pytest.raises(ChecksumError) as e:
        integrity.verify_file(p, "a" * 64)
    assert "a" * 64 in str(e.value) and good in str(e.value) and "bmprune data fetch" in str(e.value)
    assert p.read_bytes() == b"some bytes" * 100


def test_unpinned_files_are_left_unverified_not_refused(tmp_path, hashes):
    rng = np.random.default_rng(4)
    write_cifar_bin(tmp_path, {"test_batch_first1000": random_cifar(rng, 3)})  # like cifar-10/partial/
    before = snapshot(tmp_path)
    grey, _, meta = bp.data.load_cifar_grey(["test_batch_first1000"], data_dir=tmp_path)
    f = meta["files"][0]
    assert grey.shape == (3, 32, 32) and f["official"] is None and f["verification"] == "unpinned"
    assert len(f["sha256"]) == 64 and records(tmp_path) == [] and snapshot(tmp_path) == before


def test_fetch_skips_hashing_files_with_a_valid_record(tmp_path, mnist_root, hashes):
    bp.data.load_mnist("train", data_dir=mnist_root)
    bp.data.load_mnist("test", data_dir=mnist_root)
    n = len(hashes)
    before = snapshot(mnist_root)
    paths = bp.data.fetch("mnist", mnist_root, mirrors=["http://127.0.0.1:1/"])  # all verified: no download
    assert len(paths) == 4 and len(hashes) == n and snapshot(mnist_root) == before
    rows = {r.name: r.status for r in bp.data.info(mnist_root)}  # info always hashes in full
    assert all(rows[n] == "ok" for n in MNIST_GZ) and len(hashes) == n + 4


# ---------------------------------------------------------------------------- damaged official-format files
@pytest.mark.parametrize("cut", [1, 10, 100, "half", -8, -1])
def test_truncated_mnist_gzip(mnist_root, cut):
    p = _images(mnist_root)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2] if cut == "half" else raw[:cut])
    before = snapshot(mnist_root)
    with pytest.raises(ChecksumError, match="truncated"):  # verified first: the re-fetch hint comes with it
        bp.data.load_mnist("test", data_dir=mnist_root)
    with pytest.raises(DataError) as e:  # without verification the parser explains it
        bp.data.load_mnist("test", data_dir=mnist_root, verify=False)
    assert not isinstance(e.value, ChecksumError)
    assert "truncated" in str(e.value) or "corrupt" in str(e.value) or "too short" in str(e.value)
    assert snapshot(mnist_root) == before


@pytest.mark.parametrize("damage", ["crc", "deflate", "magic-only", "idx-truncated", "idx-trailing", "dims-overflow"])
def test_corrupt_mnist_files_are_data_errors(tmp_path, damage):
    images, labels = random_mnist(np.random.default_rng(0), 3)
    ip, _ = write_mnist(tmp_path, "test", images, labels, gz=damage not in ("idx-truncated", "idx-trailing", "dims-overflow"))
    raw = bytearray(ip.read_bytes())
    if damage == "crc":
        raw[-6] ^= 0xFF  # the CRC-32 in the gzip trailer
    elif damage == "deflate":
        raw[20:40] = b"\xff" * 20
    elif damage == "magic-only":
        raw = bytearray(b"\x1f\x8b")
    elif damage == "idx-truncated":
        raw = raw[:-1]
    elif damage == "idx-trailing":
        raw += b"\x00"
    else:
        raw = bytearray(idx_bytes(np.zeros((1,), np.uint8), 2051)[:4] + b"\xff\xff\xff\xff" * 3)
    ip.write_bytes(bytes(raw))
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as e:
        bp.data.load_mnist("test", data_dir=tmp_path, verify=False)
    assert not isinstance(e.value, ChecksumError) and str(ip) in str(e.value)
    with pytest.raises(ChecksumError):
        bp.data.load_mnist("test", data_dir=tmp_path)  # the official names have pinned checksums
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("cut", [0, 1, 3072, 3073 + 5, -1])
def test_truncated_cifar_binary_batch(tmp_path, monkeypatch, cut):
    rng = np.random.default_rng(1)
    d = write_cifar_bin(tmp_path, {f"data_batch_{i}": random_cifar(rng, 2) for i in range(1, 6)})
    for i in range(1, 6):
        _pin(monkeypatch, d / f"data_batch_{i}.bin")
    p = d / "data_batch_3.bin"
    raw = p.read_bytes()
    p.write_bytes(raw[:cut])
    before = snapshot(tmp_path)
    with pytest.raises(ChecksumError, match="data_batch_3.bin.*bmprune data fetch cifar10"):
        bp.data.load_cifar_patches(data_dir=tmp_path)
    with pytest.raises(DataError, match="not a whole number of 3073-byte CIFAR-10 records"):
        bp.data.load_cifar_patches(data_dir=tmp_path, verify=False)
    assert snapshot(tmp_path) == before


def test_damaged_cifar_python_batches_are_data_errors(tmp_path):
    rng = np.random.default_rng(2)
    d = tmp_path / "cifar-10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    good = py2_batch_pickle(*random_cifar(rng, 2))
    variants = [good[:n] for n in (0, 1, 2, 10, 50, len(good) // 2, len(good) - 1)]
    variants += [good[:30] + b"\xff" * 20 + good[50:], b"not a pickle at all", pickle.dumps({b"data": "x" * 10})]
    variants += [pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]})]
    variants += [bytes(np.random.default_rng(k).integers(0, 256, 200, dtype=np.uint8)) for k in range(5)]
    for k, raw in enumerate(variants):
        (d / "data_batch_1").write_bytes(raw)
        before = snapshot(tmp_path)
        with pytest.raises(DataError) as e:
            bp.data.load_cifar_grey([1], data_dir=tmp_path, format="py", verify=False)
        assert not isinstance(e.value, ChecksumError), k
        with pytest.raises(ChecksumError):
            bp.data.load_cifar_grey([1], data_dir=tmp_path, format="py")
        assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------- user files
@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 2, size=(9, 6)).astype(np.uint8)


def _load_fails(p: Path, match: str) -> DataError:
    before = snapshot(p.parent)
    with pytest.raises(DataError, match=match) as e:
        bp.data.load_binary(p)
    assert snapshot(p.parent) == before
    return e.value


@pytest.mark.parametrize("cut", [0, 3, 8, 20, 60, -1])
def test_truncated_npy(tmp_path, x, cut):
    p = tmp_path / "x.npy"
    np.save(p, x)
    raw = p.read_bytes()
    p.write_bytes(raw[:cut])
    _load_fails(p, "cannot read .*(truncated|empty|header)")


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("cut", [0, 4, 30, "half", -22, -1])
def test_truncated_npz(tmp_path, x, compressed, cut):
    p = tmp_path / "d.npz"
    (np.savez_compressed if compressed else np.savez)(p, x=x, y=np.arange(9))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2] if cut == "half" else raw[:cut])
    _load_fails(p, "cannot read .*(truncated|corrupt|not an .npz)")


def test_corrupt_npz_member(tmp_path, x):
    p = tmp_path / "d.npz"
    np.savez_compressed(p, x=np.tile(x, (50, 1)))
    raw = bytearray(p.read_bytes())
    raw[80:90] = b"\x00" * 10  # inside the deflated x.npy
    p.write_bytes(bytes(raw))
    _load_fails(p, "cannot read .*corrupt")


def test_header_promising_a_huge_array_is_refused_without_allocating(tmp_path, x):
    p = tmp_path / "huge.npy"
    np.save(p, x)
    raw = p.read_bytes()
    header_len = int.from_bytes(raw[8:10], "little")  # format 1.0: the header keeps its length
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header = header.ljust(header_len - 1) + "\n"
    p.write_bytes(raw[:10] + header.encode("latin1") + raw[10 + header_len:])
    e = _load_fails(p, "truncated")
    assert "1,000,000,000,000 bytes" in str(e)


@pytest.mark.parametrize("what", ["object .npy", "object y in .npz", "pickle named .npy", "pickle named .npz"])
def test_pickles_are_never_loaded(tmp_path, x, what, monkeypatch):
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a) or None)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append(a) or None)
    if what == "object .npy":
        p = tmp_path / "o.npy"
        np.save(p, x.astype(object), allow_pickle=True)
        match = "Python objects"
    elif what == "object y in .npz":
        p = tmp_path / "o.npz"
        np.savez(p, x=x, y=np.array([None] * 9, dtype=object))
        match = "Python objects"
    else:
        p = tmp_path / ("p.npy" if what.endswith(".npy") else "p.npz")
        p.write_bytes(pickle.dumps(x, protocol=4))
        match = "pickle|not an .npz"
    _load_fails(p, match)
    assert calls == []


@pytest.mark.parametrize("content,match", [
    (b"0,1,2\n1,0,1\n", "binary"),
    (b"0,1,0.5\n1,0,1\n", "binary"),
    (b"0,1,1\n1,0\n", "CSV"),
    (b"0,1,x\n1,0,1\n", "CSV"),
    (b"\x1f\x8b\x08\x00\xff\xfe\x00\x00binary", "UTF-8"),
    (b"", "empty"),
    (b"a,b,c\n", "empty"),
    (b"0,1\n1,nan\n", "NaN"),
    (b"0,1\n1,inf\n", "binary"),
])
def test_invalid_csv(tmp_path, content, match):
    p = tmp_path / "user.csv"
    p.write_bytes(content)
    _load_fails(p, match)


@pytest.mark.parametrize("arr,match", [
    (np.zeros((2, 3), dtype=complex), "numeric"),
    (np.zeros((2, 3), dtype=[("a", "u1")]), "numeric|matrix"),
    (np.zeros((2, 2, 2, 2), np.uint8), "matrix"),
    (np.array(1, np.uint8), "matrix"),
    (np.full((2, 3), 3, np.int16), "binary"),
])
def test_wrong_type_or_shape(tmp_path, arr, match):
    p = tmp_path / "bad.npy"
    np.save(p, arr)
    _load_fails(p, match)


def test_npy_and_npz_swapped(tmp_path, x):
    a, b = tmp_path / "a.npy", tmp_path / "b.npz"
    np.savez(tmp_path / "z.npz", x=x)
    shutil.copy(tmp_path / "z.npz", a)
    np.save(tmp_path / "n.npy", x)
    shutil.copy(tmp_path / "n.npy", b)
    _load_fails(a, "not a .npy array.*zip")
    _load_fails(b, "not an .npz")
