"""Writers of small synthetic MNIST / CIFAR-10 files in the official formats (for tests).

Imported by the tests in this folder as ``from data.data_synth import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    """IDX encoding of a uint8 array: big-endian magic, big-endian dims, raw bytes."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = int(magic).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def write_mnist(root: Path, split: str, images: np.ndarray, labels: np.ndarray, *, gz: bool = True,
                dotted: bool = False) -> tuple[Path, Path]:
    """Write ``root/mnist/{train,t10k}-{images,labels}`` files; return their paths."""
    d = root / "mnist"
    d.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    out = []
    for kind, arr, magic, nd in (("images", images, IMAGES_MAGIC, 3), ("labels", labels, LABELS_MAGIC, 1)):
        name = f"{prefix}-{kind}-idx{nd}-ubyte"
        if dotted:
            name = f"{prefix}-{kind}.idx{nd}-ubyte"
        data = idx_bytes(arr, magic)
        if gz:
            p = d / (name + ".gz")
            p.write_bytes(gzip.compress(data))
        else:
            p = d / name
            p.write_bytes(data)
        out.append(p)
    return out[0], out[1]


def random_mnist(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n random 28×28 uint8 images (skewed to dark, like digits) and labels 0..9."""
    images = (rng.random((n, 28, 28)) ** 3 * 256).astype(np.uint8)
    return images, rng.integers(0, 10, size=n).astype(np.uint8)


def cifar_records(rgb: np.ndarray, labels: np.ndarray) -> bytes:
    """Binary CIFAR-10 records: label byte + R, G, B planes of each (3, 32, 32) image."""
    n = rgb.shape[0]
    rec = np.empty((n, 3073), dtype=np.uint8)
    rec[:, 0] = labels
    rec[:, 1:] = rgb.reshape(n, 3072)
    return rec.tobytes()


def random_cifar(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n random RGB images (n, 3, 32, 32) uint8 and labels 0..9."""
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


def write_cifar_bin(root: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write ``root/cifar-10/cifar-10-batches-bin/<name>.bin`` for each batch."""
    d = root / "cifar-10" / "cifar-10-batches-bin"
    d.mkdir(parents=True, exist_ok=True)
    for name, (rgb, lab) in batches.items():
        (d / f"{name}.bin").write_bytes(cifar_records(rgb, lab))
    return d


def write_cifar_py(root: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]], *, protocol: int = 2) -> Path:
    """Write python batches as the official ones are laid out (dict with bytes keys)."""
    d = root / "cifar-10" / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    for name, (rgb, lab) in batches.items():
        obj = {
            b"batch_label": f"synthetic {name}".encode(),
            b"labels": [int(v) for v in lab],
            b"data": rgb.reshape(rgb.shape[0], 3072).copy(),
            b"filenames": [f"img_{i}.png".encode() for i in range(rgb.shape[0])],
        }
        (d / name).write_bytes(pickle.dumps(obj, protocol=protocol))
    return d


def patch_reference(grey: np.ndarray, threshold: float, image: int, cy: int, cx: int, radius: float) -> np.ndarray:
    """A patch computed pixel by pixel, independently of bmprune (row-major over the box)."""
    h = int(np.floor(radius))
    out = []
    for dy in range(-h, h + 1):
        for dx in range(-h, h + 1):
            if dy * dy + dx * dx <= radius * radius:
                out.append(1 if grey[image, cy + dy, cx + dx] >= threshold else 0)
    return np.array(out, dtype=np.uint8)


def py2_batch_pickle(rgb: np.ndarray, labels: np.ndarray) -> bytes:
    """A batch pickled as Python 2's cPickle (protocol 2) wrote the official python batches.

    Built opcode by opcode: str keys and the array's raw data are Python 2 byte strings
    (SHORT_BINSTRING / BINSTRING, decoded as latin1 on load), and the array is rebuilt through
    ``numpy.core.multiarray._reconstruct`` — the module path NumPy 2 renamed.
    """
    import struct

    def s(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    def i(v: int) -> bytes:  # BININT1 / BININT
        return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)

    data = np.ascontiguousarray(rgb.reshape(rgb.shape[0], 3072), dtype=np.uint8)
    dtype = b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R"  # dtype('u1', 0, 1)
    dtype += b"(" + i(3) + s(b"|") + b"NNN" + i(-1) + i(-1) + i(0) + b"tb"  # BUILD its state
    array = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R"
    array += b"(" + i(1) + i(data.shape[0]) + i(3072) + b"\x86" + dtype + b"\x89" + s(data.tobytes()) + b"tb"
    labels_list = b"](" + b"".join(i(int(v)) for v in labels) + b"e"
    body = s(b"batch_label") + s(b"training batch 1 of 5") + s(b"data") + array + s(b"labels") + labels_list
    return b"\x80\x02}(" + body + b"u."
