"""The run directory: resolved config, tidy metrics, checkpoints, resume (DESIGN.md §Run directory).

Layout::

    config.toml              the resolved config and the package version
    state.json               completed stages (written last, atomically)
    metrics.parquet          one row per replica × iteration × stage × metric (× layer)
    checkpoints/*.safetensors  the trained population and the latest completed stage
    figures/, report.md      written by ``bmprune report``

Every write goes to a temporary file first and is renamed into place, so a killed run leaves
either the old or the new file, never half of one. A stage counts as done only once it is in
``state.json``; metrics rows of stages not listed there are dropped on resume.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from .. import __version__
from ..errors import ConfigError
from .config import StudyConfig, load_config

_PROSE = {"description", "expected_time"}
METRIC_COLUMNS = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def stage_key(iteration: int, stage: str) -> str:
    """The key of a stage in ``state.json``: ``"iteration:stage"``."""
    return f"{iteration}:{stage}"


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
            atomic_write_bytes(cfg_path, tomli_w.dumps(body).encode())
        self.state = self._read_state()
        if extended and self.state.get("finished"):
            # more iterations to run: the run is no longer finished (stages done stay done)
            self.state["finished"] = False
            atomic_write_bytes(self.path / "state.json", json.dumps(self.state, indent=1).encode())

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
        atomic_write_bytes(self.path / "state.json", json.dumps(self.state, indent=1).encode())

    def mark_finished(self, **info) -> None:
        """Record that the run completed (plus ``info``), atomically."""
        self.state["finished"] = True
        self.state.update(info)
        atomic_write_bytes(self.path / "state.json", json.dumps(self.state, indent=1).encode())

    # --- metrics ----------------------------------------------------------------------
    def metrics(self, completed_only: bool = True) -> pd.DataFrame:
        """The metrics table (empty with the right columns when none yet)."""
        p = self.path / "metrics.parquet"
        if not p.exists():
            return pd.DataFrame(columns=METRIC_COLUMNS)
        df = pd.read_parquet(p)
        if completed_only:
            keys = df["iteration"].astype(str) + ":" + df["stage"].astype(str)
            done = set(self.state["completed"]) | {stage_key(-1, "baseline")}
            df = df[keys.isin(done) | (df["stage"] == "baseline")].reset_index(drop=True)
        return df

    def _write_metrics(self, df: pd.DataFrame) -> None:
        df = df.astype({"seed": "int64", "replica": "int64", "iteration": "int64", "layer": "int64",
                        "value": "float64", "criterion": "string", "stage": "string", "metric": "string"})
        fd, tmp = tempfile.mkstemp(prefix="metrics.", suffix=".tmp", dir=self.path)
        os.close(fd)
        try:
            df.to_parquet(tmp, index=False)
            os.replace(tmp, self.path / "metrics.parquet")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def checkpoint_path(self, iteration: int, stage: str) -> Path:
        """Where the checkpoint of a stage is written."""
        return self.path / "checkpoints" / f"iter{iteration:02d}-{stage}.safetensors"


def _extends(old: dict, new: dict) -> bool:
    """Whether ``new`` only raises the number of pruning iterations of ``old``.

    Safe to continue: every stage's random stream depends on (seed, iteration, stage) alone
    (:func:`bmprune.experiments.runner.stage_seed`), so iterations 1…n of a run extended to
    m > n are the same as those of a run configured with m from the start.
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


__all__ = ["RunDir", "METRIC_COLUMNS", "atomic_write_bytes", "stage_key"]
