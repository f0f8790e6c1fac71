"""Run directories shared by the reliability tests: built once per session, copied per test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reliability.runs import MICRO, copy_run, stop_at

import bmprune as bp


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny studies: more threads only add contention on shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def finished_src(tmp_path_factory) -> Path:
    """A finished MICRO run (do not modify: copy it with ``finished``)."""
    out = tmp_path_factory.mktemp("src") / "finished"
    bp.run(MICRO, out)
    return out


@pytest.fixture(scope="session")
def reference(finished_src):
    """The metrics of the uninterrupted MICRO run."""
    return bp.experiments.RunDir(finished_src, bp.experiments.load_config(MICRO)).metrics()


@pytest.fixture(scope="session")
def partial_src(tmp_path_factory) -> Path:
    """A MICRO run interrupted when iteration 2's pruning began: 0:trained, 1:pruned, 1:retrained done."""
    out = tmp_path_factory.mktemp("src") / "partial"
    with pytest.raises(KeyboardInterrupt):
        bp.run(MICRO, out, progress=stop_at((2, "pruned")))
    return out


@pytest.fixture
def finished(finished_src, tmp_path) -> Path:
    """A private copy of the finished run (same bytes and mtimes)."""
    return copy_run(finished_src, tmp_path / "finished")


@pytest.fixture
def partial(partial_src, tmp_path) -> Path:
    """A private copy of the partial run."""
    return copy_run(partial_src, tmp_path / "partial")
