"""Fixtures of the data tests: the real files (or a skip), a local HTTP server for fetch tests."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

MNIST_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_NAMES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))


@pytest.fixture(scope="session", autouse=True)
def _isolated_verification_cache(tmp_path_factory):
    """Verification records of read-only data directories go to a temporary cache, not ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BMPRUNE_CACHE_DIR", str(tmp_path_factory.mktemp("bmprune-cache")))
        yield


def _real_dir(sub: str, names: tuple[str, ...]) -> Path:
    d = os.environ.get("BMPRUNE_DATA_DIR")
    if not d:
        pytest.skip("real data not available: BMPRUNE_DATA_DIR is not set (see shared/data/README.md)")
    root = Path(d)
    missing = [n for n in names if not (root / sub / n).is_file()]
    if missing:
        pytest.skip(f"real data not available: {root / sub} lacks {', '.join(missing)}")
    return root


@pytest.fixture(scope="session")
def real_mnist_root() -> Path:
    """BMPRUNE_DATA_DIR when it holds the four official MNIST files, else skip."""
    return _real_dir("mnist", MNIST_NAMES)


@pytest.fixture(scope="session")
def real_cifar_root() -> Path:
    """BMPRUNE_DATA_DIR when it holds the five CIFAR-10 binary training batches, else skip."""
    return _real_dir("cifar-10/cifar-10-batches-bin", CIFAR_NAMES)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """Serve a fresh directory on 127.0.0.1; yields (directory, base URL, list of requested paths)."""
    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
