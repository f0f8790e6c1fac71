"""Atomic file writes, the one implementation every writer of bmprune uses (DESIGN.md §Run directory).

A file is written to a temporary file in the same folder and renamed into place, so a
reader (or a run killed mid-write) sees either the old or the new file, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[str], object]) -> Path:
    """Write ``data`` (bytes, or a callable that writes the temporary path it is given) to ``path``.

    The folder is created when missing. Returns the path written. Raises ``OSError`` (disk
    full, permission denied, …) after removing the temporary file; ``path`` is then untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


__all__ = ["atomic_write"]
