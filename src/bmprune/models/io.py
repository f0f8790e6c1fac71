"""Saving and loading model populations as safetensors with JSON metadata (never pickle).

A file holds every named tensor of the model (leading replica axis) and the metadata keys
``bmprune_kind``, ``bmprune_config`` (JSON) and ``bmprune_version``, plus any string
metadata the caller adds (e.g. iteration and stage). Writes are atomic.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .._io import atomic_write
from ..errors import CheckpointError
from .base import BoltzmannMachine


def save_model(model: BoltzmannMachine, path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (temp file in the same folder, then rename).

    ``metadata``: extra string → string entries stored in the file header.
    Returns the path written.
    """
    from .. import __version__

    path = Path(path)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update(bmprune_kind=model.kind, bmprune_config=json.dumps(model.config),
                bmprune_version=__version__)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.named_tensors().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_metadata(path) -> dict[str, str]:
    """The header metadata of a bmprune safetensors file. Raises CheckpointError."""
    return _open(path)[1]


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated/garbled files
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}") from exc
    if "bmprune_kind" not in meta:
        raise CheckpointError(f"{path} is a safetensors file but not a bmprune checkpoint (no bmprune_kind)")
    return tensors, meta


def load_model(path, device: torch.device | str | None = None) -> BoltzmannMachine:
    """Load a model saved by :func:`save_model`; returns an RBM or DBM population.

    Raises
    ------
    CheckpointError
        Missing, truncated, corrupt or foreign file, or unknown model kind.
    """
    tensors, meta = _open(path)
    kind = meta["bmprune_kind"]
    cls = BoltzmannMachine.kinds.get(kind)
    if cls is None:
        raise CheckpointError(f"{path} holds an unknown model kind {kind!r}")
    try:
        config = json.loads(meta["bmprune_config"])
        model = cls._from_named_tensors(config, tensors)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path}: tensors do not form a valid {kind}: {exc}") from exc
    return model.to(device) if device is not None else model
