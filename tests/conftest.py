"""Shared fixtures. Brute-force references live in tests/helpers.py (``from helpers import ...``).

Dimensions are distinct small numbers so that a swapped axis cannot pass (STYLE.md §14).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def data_dir() -> Path:
    """The real data directory (BMPRUNE_DATA_DIR), or skip."""
    d = os.environ.get("BMPRUNE_DATA_DIR")
    if not d or not Path(d).is_dir():
        pytest.skip("real data not available: set BMPRUNE_DATA_DIR to the folder holding mnist/ and cifar-10/")
    return Path(d)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Checksum records of real data files go to a per-session cache, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BMPRUNE_CACHE_DIR", str(tmp_path_factory.mktemp("bmprune-cache")))
    yield
    mp.undo()
