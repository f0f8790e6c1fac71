"""Data directory, pinned checksums, fetch through a local HTTP server, inventory, CLI.

Downloads cannot reach the internet here: the files are served from a temporary directory on
127.0.0.1, so pooch's real download and checksum code runs; only the URL differs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from data.data_synth import cifar_records, idx_bytes, random_cifar, random_mnist
from typer.testing import CliRunner

import bmprune as bp
from bmprune.cli import app
from bmprune.data import store
from bmprune.errors import ChecksumError, ConfigError, DataError

MNIST_GZ = list(store.MNIST_FILES.values())


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _pin(monkeypatch, name: str, content: bytes) -> None:
    monkeypatch.setitem(store._PINNED, name, store.Checksum(sha256=_sha(content), size=len(content)))


@pytest.fixture
def synth_mnist_served(http_dir, monkeypatch):
    """Four synthetic MNIST gz files served over HTTP, with their checksums pinned."""
    served, url, requests = http_dir
    rng = np.random.default_rng(5)
    contents = {}
    for split, n in (("train", 6), ("test", 4)):
        images, labels = random_mnist(rng, n)
        prefix = "train" if split == "train" else "t10k"
        for name, data in ((f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images, 2051)),
                           (f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels, 2049))):
            contents[name] = gzip.compress(data)
            (served / name).write_bytes(contents[name])
            _pin(monkeypatch, name, contents[name])
    return served, url, requests, contents


# ---------------------------------------------------------------------------- locations
def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("BMPRUNE_DATA_DIR", str(tmp_path / "env"))
    assert store.data_dir() == tmp_path / "env"
    assert store.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("BMPRUNE_DATA_DIR")
    import platformdirs

    assert store.data_dir() == Path(platformdirs.user_cache_dir("bmprune", appauthor=False))


# ---------------------------------------------------------------------------- fetch
def test_fetch_mnist_downloads_verifies_and_skips_when_present(tmp_path, synth_mnist_served):
    _, url, requests, contents = synth_mnist_served
    dest = tmp_path / "dest"
    paths = bp.data.fetch("mnist", dest, mirrors=[url])
    assert [p.name for p in paths] == MNIST_GZ
    for p in paths:
        assert p.parent == dest / "mnist" and p.read_bytes() == contents[p.name]
    assert sorted(requests) == sorted(f"/{n}" for n in MNIST_GZ)
    bp.data.fetch("mnist", dest, mirrors=[url])  # all present and verified: no new request
    assert len(requests) == 4
    assert len(bp.data.load_mnist("test", data_dir=dest)) == 4


def test_fetch_corrupted_download_raises_checksum_error(tmp_path, synth_mnist_served):
    served, url, _, contents = synth_mnist_served
    bad = bytearray(contents["t10k-labels-idx1-ubyte.gz"])
    bad[-1] ^= 0xFF
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(bad))
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        bp.data.fetch("mnist", dest, mirrors=[url])
    assert not (dest / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()  # deleted, never used


def test_fetch_replaces_a_corrupt_local_file(tmp_path, synth_mnist_served):
    _, url, requests, contents = synth_mnist_served
    dest = tmp_path / "dest"
    bp.data.fetch("mnist", dest, mirrors=[url])
    (dest / "mnist" / MNIST_GZ[0]).write_bytes(b"garbage")
    bp.data.fetch("mnist", dest, mirrors=[url])
    assert (dest / "mnist" / MNIST_GZ[0]).read_bytes() == contents[MNIST_GZ[0]]
    assert len(requests) == 5


def test_fetch_falls_back_to_the_next_mirror_and_reports_unreachable(tmp_path, synth_mnist_served):
    _, url, _, _ = synth_mnist_served
    dest = tmp_path / "dest"
    paths = bp.data.fetch("mnist", dest, mirrors=[url + "missing/", url])  # 404 first, then OK
    assert len(paths) == 4
    with pytest.raises(DataError, match="could not download") as e:
        bp.data.fetch("mnist", tmp_path / "other", mirrors=["http://127.0.0.1:1/"])
    assert not isinstance(e.value, ChecksumError)


def test_fetch_unknown_dataset(tmp_path):
    with pytest.raises(ConfigError, match="mnist"):
        bp.data.fetch("imagenet", tmp_path)


def _cifar_tarball(rng) -> tuple[bytes, dict[str, bytes]]:
    members = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        members[f"cifar-10-batches-bin/{name}.bin"] = cifar_records(*random_cifar(rng, 2))
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\nautomobile\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), members


def test_fetch_cifar10_extracts_and_verifies_members(tmp_path, http_dir, monkeypatch):
    served, url, requests = http_dir
    archive, members = _cifar_tarball(np.random.default_rng(0))
    (served / "cifar-10-binary.tar.gz").write_bytes(archive)
    _pin(monkeypatch, "cifar-10-binary.tar.gz", archive)
    for name, data in members.items():
        if name.endswith(".bin"):
            _pin(monkeypatch, Path(name).name, data)
    dest = tmp_path / "dest"
    paths = bp.data.fetch("cifar10", dest, mirrors=[url])
    assert len(paths) == 7 and not (dest / "cifar-10" / "cifar-10-binary.tar.gz").exists()
    for name, data in members.items():
        assert (dest / "cifar-10" / name).read_bytes() == data
    ds = bp.data.load_cifar_patches(n_patches=None, data_dir=dest)
    assert len(ds) == 10 * 36 and all(f["official"] for f in ds.meta["files"])  # "official" = pinned here
    bp.data.fetch("cifar10", dest, mirrors=[url])
    assert len(requests) == 1  # already extracted and verified


def test_fetch_cifar10_with_a_bad_member(tmp_path, http_dir, monkeypatch):
    served, url, _ = http_dir
    archive, members = _cifar_tarball(np.random.default_rng(1))
    (served / "cifar-10-binary.tar.gz").write_bytes(archive)
    _pin(monkeypatch, "cifar-10-binary.tar.gz", archive)  # the archive matches, a member does not
    for name, data in members.items():
        if name.endswith(".bin"):
            _pin(monkeypatch, Path(name).name, data)
    monkeypatch.setitem(store._PINNED, "data_batch_3.bin", store.Checksum(sha256="0" * 64))
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match="data_batch_3.bin") as e:
        bp.data.fetch("cifar10", dest, mirrors=[url], keep_archive=True)
    assert "data_batch_2" not in str(e.value)
    batches = dest / "cifar-10" / "cifar-10-batches-bin"
    assert not (batches / "data_batch_3.bin").exists() and (batches / "data_batch_2.bin").exists()


@pytest.mark.data
def test_fetch_the_real_mnist_files_against_the_real_pins(tmp_path, http_dir, real_mnist_root):
    served, url, _ = http_dir
    for name in MNIST_GZ:
        shutil.copy(real_mnist_root / "mnist" / name, served / name)
    paths = bp.data.fetch("mnist", tmp_path / "dest", mirrors=[url])
    assert [store.file_digest(p) for p in paths] == [store._PINNED[n].sha256 for n in MNIST_GZ]


# ---------------------------------------------------------------------------- info
def test_info_statuses(tmp_path, synth_mnist_served, monkeypatch):
    _, url, _, contents = synth_mnist_served
    bp.data.fetch("mnist", tmp_path, mirrors=[url])
    (tmp_path / "mnist" / MNIST_GZ[1]).write_bytes(b"not it")
    monkeypatch.setenv("BMPRUNE_DATA_DIR", str(tmp_path))
    rows = {r.name: r for r in bp.data.info()}
    assert rows[MNIST_GZ[0]].status == "ok" and rows[MNIST_GZ[0]].size == len(contents[MNIST_GZ[0]])
    assert rows[MNIST_GZ[1]].status == "mismatch" and rows[MNIST_GZ[1]].actual == "sha256:" + _sha(b"not it")
    assert rows["cifar-10-batches-bin/data_batch_1.bin"].status == "missing"
    assert {r.status for r in bp.data.info(verify=False) if r.dataset == "mnist"} == {"unverified"}


@pytest.mark.data
def test_info_on_the_real_data(real_cifar_root):
    rows = {r.name: r.status for r in bp.data.info(real_cifar_root)}
    for name in MNIST_GZ + [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)]:
        if name in MNIST_GZ and not (real_cifar_root / "mnist" / name).exists():
            continue
        assert rows[name] == "ok"


# ---------------------------------------------------------------------------- CLI
def test_cli_info_and_fetch(tmp_path, synth_mnist_served):
    _, url, _, _ = synth_mnist_served
    runner = CliRunner()
    res = runner.invoke(app, ["data", "info", "--data-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "missing" in res.output and "mnist" in res.output
    res = runner.invoke(app, ["data", "fetch", "mnist", "--data-dir", str(tmp_path), "--mirror", url])
    assert res.exit_code == 0, res.output
    assert "4 file(s) verified" in res.output
    res = runner.invoke(app, ["data", "info", "--data-dir", str(tmp_path)])
    assert res.exit_code == 0 and res.output.count(" ok ") >= 4
    (tmp_path / "mnist" / MNIST_GZ[2]).write_bytes(b"x")
    res = runner.invoke(app, ["data", "info", "--data-dir", str(tmp_path)])
    assert res.exit_code == 1 and "mismatch" in res.output


def test_cli_fetch_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["data", "fetch", "imagenet", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "unknown dataset" in res.output        # a typed error: exit 2 (issue 13)
    res = runner.invoke(app, ["data", "fetch", "mnist", "--data-dir", str(tmp_path), "--mirror",
                              "http://127.0.0.1:1/", "--quiet"])
    assert res.exit_code == 2 and "could not download" in res.output


def test_fetch_cifar10_with_a_corrupt_archive(tmp_path, http_dir, monkeypatch):
    served, url, _ = http_dir
    archive, _ = _cifar_tarball(np.random.default_rng(2))
    broken = archive[: len(archive) // 2]  # pinned as is: the checksum passes, extraction fails
    (served / "cifar-10-binary.tar.gz").write_bytes(broken)
    _pin(monkeypatch, "cifar-10-binary.tar.gz", broken)
    with pytest.raises(DataError, match="could not extract|lacks the expected"):
        bp.data.fetch("cifar10", tmp_path / "dest", mirrors=[url])
