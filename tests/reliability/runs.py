"""Shared pieces of the run-directory reliability tests (issue 13, items 2, 3, 5–7).

MICRO is the smallest study that still has every kind of stage: 13-pixel photo patches,
4 hidden units, 2 criteria × 1 seed, 2 pruning iterations, exact KL (≈ 0.1 s).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
from safetensors.torch import save_file

import bmprune as bp
from bmprune.experiments.rundir import LOCK_FILE, OWNER_FILE

MICRO = {
    "name": "micro",
    "data": {"source": "photo_patches", "radius": 1.5, "n_patches": 300},
    "model": {"kind": "rbm", "hidden": [4], "hidden_bias": -1.0},
    "train": {"epochs": 1, "batch_size": 10, "learning_rate": 0.05, "momentum": 0.5},
    "retrain": {"epochs": 1, "batch_size": 10, "learning_rate": 0.02, "momentum": 0.5},
    "sampling": {"n_samples": 200, "steps": 5},
    "pruning": {"criteria": ["variance_fi", "random_weights"], "percent": 50.0, "iterations": 2},
    "evaluation": {"metrics": ["exact_kl"]},
    "seeds": 1,
}
#: The stages of MICRO in order.
STAGES = ["0:trained", "1:pruned", "1:retrained", "2:pruned", "2:retrained"]
#: MICRO with a retraining learning rate that diverges in the first retraining epoch.
DIVERGING = {**MICRO, "retrain": {**MICRO["retrain"], "learning_rate": 1e6}}


def micro(**changes) -> dict:
    """A deep copy of MICRO with top-level or dotted keys replaced (``**{"pruning.iterations": 1}``)."""
    cfg = copy.deepcopy(MICRO)
    for key, value in changes.items():
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return cfg


def snapshot(root: Path, *, locks: bool = True) -> dict[str, tuple[str, int]]:
    """SHA-256 and mtime of every file under ``root`` (lock and owner files too unless ``locks=False``)."""
    out = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_file() and (locks or p.name not in (LOCK_FILE, OWNER_FILE)):
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a run directory with the same bytes and mtimes."""
    shutil.copytree(src, dst, copy_function=shutil.copy2)
    return dst


def sorted_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order, for comparing two runs of the same study."""
    cols = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer"]
    return df.sort_values(cols).reset_index(drop=True)


def stop_at(stage: tuple[int, str]):
    """A progress callback that interrupts the run when ``stage`` begins (KeyboardInterrupt)."""
    def progress(event, **info):
        if event == "stage" and (info["iteration"], info["stage"]) == stage:
            raise KeyboardInterrupt
    return progress


def chmod_tree(root: Path, writable: bool) -> None:
    """Make every file and folder under ``root`` read-only (or writable again)."""
    for p in [root, *root.rglob("*")]:
        mode = (0o755 if p.is_dir() else 0o644) if writable else (0o555 if p.is_dir() else 0o444)
        os.chmod(p, mode)


def write_checkpoint(path, model, *, tensors=None, meta=None, drop=()):
    """Save ``model`` as save_model does, with tensors / metadata replaced or dropped."""
    t = {k: v.contiguous() for k, v in model.named_tensors().items()}
    t.update(tensors or {})
    m = {"bmprune_kind": model.kind, "bmprune_config": json.dumps(model.config), "bmprune_version": bp.__version__}
    m.update(meta or {})
    for k in drop:
        t.pop(k, None)
        m.pop(k, None)
    save_file(t, str(path), metadata={k: v for k, v in m.items() if v is not None})
    return path
