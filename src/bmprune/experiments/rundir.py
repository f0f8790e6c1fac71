"""The run directory: resolved config, tidy metrics, checkpoints, resume (DESIGN.md §Run directory).

Layout::

    config.toml              the resolved config and the package version
    state.json               completed stages (written last, atomically)
    metrics.parquet          one row per replica × iteration × stage × metric (× layer)
    data.safetensors         what the run knows of its data: image geometry, sizes, the
                             distinct training patterns and their counts (small layers only)
    checkpoints/*.safetensors  the trained population and the latest completed stage
    figures/, report.md      written by ``bmprune report``

Every write goes to a temporary file first and is renamed into place, so a killed run leaves
either the old or the new file, never half of one. A stage counts as done only once it is in
``state.json``; metrics rows of stages not listed there are dropped on resume.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w
import torch

from .. import __version__
from .._io import atomic_write
from ..errors import ConfigError
from .config import StudyConfig, load_config

_PROSE = {"description", "expected_time"}
METRIC_COLUMNS = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value"]


#: Distinct training patterns are recorded for the report only when the visible layer is this small.
PATTERN_UNITS = 30


def stage_key(iteration: int, stage: str) -> str:
    """The key of a stage in ``state.json``: ``"iteration:stage"``."""
    return f"{iteration}:{stage}"


def completed_rows(metrics: pd.DataFrame, completed) -> pd.DataFrame:
    """The rows of completed stages (``completed``: the "iteration:stage" keys of state.json) and the baselines.

    The one place that decides which metrics rows count: rows of a stage that was being
    computed when a run was interrupted are not in state.json and are dropped.
    """
    keys = metrics["iteration"].astype(str) + ":" + metrics["stage"].astype(str)
    keep = keys.isin(set(completed)) | (metrics["stage"] == "baseline")
    return metrics[keep].reset_index(drop=True)


@dataclass(frozen=True)
class DataSummary:
    """What a run recorded about its data (``data.safetensors``), so the report needs no data files.

    Attributes
    ----------
    source : str
        The config's data source.
    n_train, n_test, n_visible : int
        Sizes (n_test 0 when there is no test set).
    image_shape : tuple (h, w) or None
    pixel_mask : bool array (h, w) or None
        Which pixels of the image box the visible units are (circular patches), row-major.
    pattern_codes, pattern_counts : int64 arrays (K,) or None
        The distinct training patterns (bit i = unit i) and their counts, for small visible
        layers (≤ :data:`PATTERN_UNITS` units).
    """

    source: str
    n_train: int
    n_test: int
    n_visible: int
    image_shape: tuple[int, int] | None = None
    pixel_mask: np.ndarray | None = None
    pattern_codes: np.ndarray | None = None
    pattern_counts: np.ndarray | None = None

    @property
    def image_mask(self) -> np.ndarray | None:
        """The (h, w) bool map of where the visible units lie, or None when the data are not images."""
        if self.image_shape is None:
            return None
        return self.pixel_mask if self.pixel_mask is not None else np.ones(self.image_shape, bool)

    def patterns(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The distinct training patterns (K, n_visible) uint8 and their probabilities (K,), or None."""
        if self.pattern_codes is None:
            return None
        bits = (self.pattern_codes[:, None] >> np.arange(self.n_visible)) & 1
        return bits.astype(np.uint8), self.pattern_counts / self.pattern_counts.sum()


class RunDir:
    """A run directory, created fresh or reopened for resuming.

    A directory of the same config is reopened to resume; one whose config differs only by
    fewer pruning iterations is extended (its config is rewritten with the new count and it
    is no longer marked finished), so ``bmprune run … --iterations 10`` continues a finished
    5-iteration run.

    Raises
    ------
    ConfigError
        The directory holds a run of a different config, or of more iterations than asked
        for (the message lists the differences).
    """

    def __init__(self, path: str | os.PathLike, config: StudyConfig) -> None:
        self.path = Path(path)
        self.config = config
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "checkpoints").mkdir(exist_ok=True)
        cfg_path = self.path / "config.toml"
        extended = False
        if cfg_path.exists():
            old = load_config(cfg_path)
            # prose (description, expected time) may be reworded between versions; numbers may not
            a, b = (c.model_dump(mode="json", exclude=_PROSE) for c in (old, config))
            extended = _extends(a, b)
            if a != b and not extended:
                diff = _differences(a, b)
                raise ConfigError(
                    f"{self.path} holds a run of a different config; use another --out or the same "
                    "config to resume (a run may be extended by more pruning iterations, never "
                    "shortened). Differences:\n" + "\n".join(f"  {d}" for d in diff[:20]))
        if not cfg_path.exists() or extended:
            body = {"bmprune_version": __version__, **config.model_dump(mode="json", exclude_none=True)}
            atomic_write(cfg_path, tomli_w.dumps(body).encode())
        self.state = self._read_state()
        if extended and self.state.get("finished"):
            # more iterations to run: the run is no longer finished (stages done stay done)
            self.state["finished"] = False
            atomic_write(self.path / "state.json", json.dumps(self.state, indent=1).encode())

    # --- state ------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any]:
        p = self.path / "state.json"
        if p.exists():
            return json.loads(p.read_text())
        return {"completed": [], "checkpoint": None, "seconds": {}}

    def is_done(self, iteration: int, stage: str) -> bool:
        """Whether the stage is recorded as completed in ``state.json``."""
        return stage_key(iteration, stage) in self.state["completed"]

    @property
    def finished(self) -> bool:
        """Whether every stage of the run completed."""
        return bool(self.state.get("finished"))

    def complete(self, iteration: int, stage: str, rows: list[dict], checkpoint: str | None,
                 seconds: float, extra: dict | None = None) -> None:
        """Record a finished stage: metrics first, then the state that makes it count."""
        key = stage_key(iteration, stage)
        metrics = self.metrics(completed_only=True)
        new = pd.DataFrame(rows, columns=METRIC_COLUMNS)
        metrics = pd.concat([metrics, new], ignore_index=True) if len(metrics) else new
        self._write_metrics(metrics)
        self.state["completed"].append(key)
        self.state["seconds"][key] = round(seconds, 3)
        if checkpoint is not None:
            self.state["checkpoint"] = checkpoint
        self.state.update(extra or {})
        atomic_write(self.path / "state.json", json.dumps(self.state, indent=1).encode())

    def mark_finished(self, **info) -> None:
        """Record that the run completed (plus ``info``), atomically."""
        self.state["finished"] = True
        self.state.update(info)
        atomic_write(self.path / "state.json", json.dumps(self.state, indent=1).encode())

    # --- metrics ----------------------------------------------------------------------
    def metrics(self, completed_only: bool = True) -> pd.DataFrame:
        """The metrics table (empty with the right columns when none yet)."""
        p = self.path / "metrics.parquet"
        if not p.exists():
            return pd.DataFrame(columns=METRIC_COLUMNS)
        df = pd.read_parquet(p)
        return completed_rows(df, self.state["completed"]) if completed_only else df

    def _write_metrics(self, df: pd.DataFrame) -> None:
        df = df.astype({"seed": "int64", "replica": "int64", "iteration": "int64", "layer": "int64",
                        "value": "float64", "criterion": "string", "stage": "string", "metric": "string"})
        atomic_write(self.path / "metrics.parquet", lambda tmp: df.to_parquet(tmp, index=False))

    # --- data summary -------------------------------------------------------------------
    def write_data_summary(self, source: str, train, test) -> None:
        """Record the data's geometry, sizes and (small layers) distinct patterns in data.safetensors."""
        from safetensors.numpy import save_file
        from ..evaluation.patterns import pattern_codes

        tensors: dict[str, np.ndarray] = {}
        if train.pixel_mask is not None:
            tensors["pixel_mask"] = np.ascontiguousarray(train.pixel_mask, dtype=bool)
        if train.n_visible <= PATTERN_UNITS:
            codes = pattern_codes(torch.from_numpy(train.x)).numpy()
            uniq, counts = np.unique(codes, return_counts=True)
            tensors["pattern_codes"], tensors["pattern_counts"] = uniq.astype(np.int64), counts.astype(np.int64)
        meta = {"source": source, "n_train": str(len(train)), "n_test": str(0 if test is None else len(test)),
                "n_visible": str(train.n_visible),
                "image_shape": json.dumps(list(train.image_shape) if train.image_shape else None)}
        atomic_write(self.path / "data.safetensors", lambda tmp: save_file(tensors, tmp, metadata=meta))

    def data_summary(self) -> DataSummary | None:
        """The recorded :class:`DataSummary`, or None for a run written before it was recorded."""
        return read_data_summary(self.path)

    def checkpoint_path(self, iteration: int, stage: str) -> Path:
        """Where the checkpoint of a stage is written."""
        return self.path / "checkpoints" / f"iter{iteration:02d}-{stage}.safetensors"


def _extends(old: dict, new: dict) -> bool:
    """Whether ``new`` only raises the number of pruning iterations of ``old``.

    Safe to continue: every replica's random stream at a stage is keyed by (seed, criterion,
    iteration, stage) alone (:func:`bmprune.experiments.runner.replica_streams`), so
    iterations 1…n of a run extended to m > n are the same as those of a run configured with
    m from the start.
    """
    po, pn = old.get("pruning", {}), new.get("pruning", {})
    if pn.get("iterations", 0) <= po.get("iterations", 0):
        return False
    strip = lambda c: {**c, "pruning": {k: v for k, v in c["pruning"].items() if k != "iterations"}}  # noqa: E731
    return strip(old) == strip(new)


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} (existing) vs {vb!r} (requested)")
    return out


def read_data_summary(run_dir) -> DataSummary | None:
    """The :class:`DataSummary` in ``run_dir/data.safetensors`` (None when absent or unreadable)."""
    from safetensors import safe_open

    p = Path(run_dir) / "data.safetensors"
    if not p.is_file():
        return None
    try:
        with safe_open(str(p), framework="numpy") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in f.keys()}
        shape = json.loads(meta.get("image_shape", "null"))
        return DataSummary(source=meta["source"], n_train=int(meta["n_train"]), n_test=int(meta["n_test"]),
                           n_visible=int(meta["n_visible"]), image_shape=tuple(shape) if shape else None,
                           pixel_mask=t.get("pixel_mask"), pattern_codes=t.get("pattern_codes"),
                           pattern_counts=t.get("pattern_counts"))
    except Exception:  # a damaged summary only costs the report its data-dependent panels
        return None


__all__ = ["DataSummary", "RunDir", "METRIC_COLUMNS", "completed_rows", "read_data_summary", "stage_key"]
