"""Saving and loading model populations as safetensors with JSON metadata (never pickle).

A file holds every named tensor of the model (leading replica axis) and the metadata keys
``bmprune_kind``, ``bmprune_config`` (JSON) and ``bmprune_version``, plus any string
metadata the caller adds (e.g. iteration and stage). Writes are atomic.

Loading trusts nothing in the file: :func:`validate_tensors` is the one place that checks a
checkpoint's tensors (names, dtypes, shapes against each other and the metadata, finite
values, exactly zero masked weights, masks consistent with the alive units) and
:func:`load_model` checks the format version and the kind, so a damaged or foreign file is a
:class:`~bmprune.errors.CheckpointError` at load time, never a later ``RuntimeError``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .._io import atomic_write
from ..errors import CheckpointError, ConfigError, ShapeError
from .base import BoltzmannMachine

#: Floating dtypes a checkpoint's parameters may have (DESIGN.md §Devices and dtypes).
PARAMETER_DTYPES = (torch.float32, torch.float64)


def save_model(model: BoltzmannMachine, path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (temp file in the same folder, then rename).

    Parameters
    ----------
    model : RBM or DBM population
    path : path of the ``.safetensors`` file
    metadata : dict of str to str, optional
        Extra entries stored in the file header.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    CheckpointError
        The file cannot be written (disk full, permission denied, …); ``path`` is then left
        as it was (the temporary file is removed).
    """
    from .. import __version__

    path = Path(path)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update(bmprune_kind=model.kind, bmprune_config=json.dumps(model.config),
                bmprune_version=__version__)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.named_tensors().items()}
    try:
        return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc


def read_metadata(path) -> dict[str, str]:
    """The header metadata of a bmprune safetensors file (tensors are not read).

    Raises
    ------
    CheckpointError
        Missing, unreadable or foreign file.
    """
    return _open(path, tensors=False)[1]


def _open(path, *, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            out = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except Exception as exc:  # safetensors raises its own error types for truncated/garbled files
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}") from exc
    if "bmprune_kind" not in meta:
        raise CheckpointError(f"{path} is a safetensors file but not a bmprune checkpoint (no bmprune_kind)")
    return out, meta


def _major(version: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)(\.\d+)*([.+-].*)?\s*", version)
    return int(m.group(1)) if m else None


def check_version(meta: dict[str, str], where: str = "checkpoint") -> None:
    """CheckpointError unless ``meta["bmprune_version"]`` has this bmprune's major version."""
    from .. import __version__

    written = meta.get("bmprune_version")
    if written is None:
        raise CheckpointError(f"{where} has no bmprune_version: not written by bmprune's save_model")
    major, ours = _major(written), _major(__version__)
    if major is None:
        raise CheckpointError(f"{where}: unreadable bmprune_version {written!r}")
    if major != ours:
        hint = "upgrade bmprune to read it" if major > ours else f"read it with bmprune {major}.x"
        raise CheckpointError(f"{where} was written by bmprune {written} (format {major}); this is bmprune "
                              f"{__version__} (format {ours}): {hint}")


def validate_tensors(cls: type[BoltzmannMachine], config: Any, tensors: dict[str, torch.Tensor],
                     where: str = "checkpoint") -> None:
    """Check that ``tensors`` form a valid population of ``cls`` with sizes ``config``.

    Parameters
    ----------
    cls : RBM or DBM class
        Provides ``_layout(config)``: the layer sizes and the tensor names by role.
    config : dict
        The constructor sizes stored in the checkpoint (``bmprune_config``).
    tensors : dict of str to Tensor
        Every named tensor of the file.
    where : str
        How the file is named in messages.

    Raises
    ------
    CheckpointError
        A config that gives no valid sizes; missing or unexpected tensors; parameters that are
        not float32/float64 (or of mixed dtypes), masks that are not bool; shapes that disagree
        with each other or the config (R ≥ 1 replicas); NaN or infinite parameters; masked
        weights that are not exactly zero; a removed visible unit or a removed unit that keeps
        weights (``weight_masks[l] ⊄ alive[l] ⊗ alive[l+1]``).
    """
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: bmprune_config must be a JSON object of sizes; got {config!r}")
    try:
        sizes, names = cls._layout(config)
    except (ShapeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: bmprune_config {config!r} gives no valid {cls.kind} sizes ({exc})") from None
    expected = [n for role in names.values() for n in role]
    missing = [n for n in expected if n not in tensors]
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{where}: {cls.kind} tensors do not match: missing {missing}, unexpected {extra}")
    params = [tensors[n] for n in names["weights"] + names["biases"]]
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1 or not dtypes <= set(PARAMETER_DTYPES):
        got = {n: str(tensors[n].dtype).removeprefix("torch.") for n in names["weights"] + names["biases"]}
        raise CheckpointError(f"{where}: parameters must all be float32 or all float64; got {got}")
    for n in names["masks"] + names["alive"]:
        if tensors[n].dtype != torch.bool:
            raise CheckpointError(f"{where}: {n} must be a bool mask; got {str(tensors[n].dtype).removeprefix('torch.')}")
    L = len(sizes) - 1
    b0 = tensors[names["biases"][0]]
    R = b0.shape[0] if b0.dim() == 2 else 0
    if R < 1:
        raise CheckpointError(f"{where}: {names['biases'][0]} must have shape (R ≥ 1, {sizes[0]}); got {tuple(b0.shape)}")
    want = {}
    for l in range(L):
        want[names["weights"][l]] = want[names["masks"][l]] = (R, sizes[l], sizes[l + 1])
    for l in range(L + 1):
        want[names["biases"][l]] = want[names["alive"][l]] = (R, sizes[l])
    bad = {n: tuple(tensors[n].shape) for n, shape in want.items() if tuple(tensors[n].shape) != shape}
    if bad:
        raise CheckpointError(f"{where}: shapes {bad} do not fit sizes {sizes} with R = {R} replicas "
                              f"(expected {{{', '.join(f'{n}: {want[n]}' for n in bad)}}})")
    for n, p in zip(names["weights"] + names["biases"], params):
        if not bool(torch.isfinite(p).all()):
            raise CheckpointError(f"{where}: {n} holds {int((~torch.isfinite(p)).sum())} NaN or infinite values")
    alive = [tensors[n] for n in names["alive"]]
    if not bool(alive[0].all()):
        raise CheckpointError(f"{where}: {names['alive'][0]} marks visible units as removed; visible units are never removed")
    for l in range(L):
        W, m = tensors[names["weights"][l]], tensors[names["masks"][l]]
        if bool((W[~m] != 0).any()):
            raise CheckpointError(f"{where}: {int((W[~m] != 0).sum())} masked weights of {names['weights'][l]} "
                                  "are not zero (masked weights are exactly 0)")
        stray = m & ~(alive[l].unsqueeze(2) & alive[l + 1].unsqueeze(1))
        if bool(stray.any()):
            raise CheckpointError(f"{where}: {names['masks'][l]} keeps {int(stray.sum())} connections of removed "
                                  f"units ({names['alive'][l]} / {names['alive'][l + 1]}): a removed unit has no weights")


def load_model(path, device: torch.device | str | None = None) -> BoltzmannMachine:
    """Load a model saved by :func:`save_model`; returns an RBM or DBM population.

    Parameters
    ----------
    path : path of a ``.safetensors`` file
    device : torch device, optional
        Where to put the population (default: the CPU).

    Returns
    -------
    RBM or DBM

    Raises
    ------
    CheckpointError
        Missing, truncated, corrupt or foreign file; a format version of another major
        release; an unknown model kind; tensors that fail :func:`validate_tensors`.
    ConfigError
        An unknown or unavailable ``device``.
    """
    tensors, meta = _open(path)
    check_version(meta, str(path))
    kind = meta["bmprune_kind"]
    cls = BoltzmannMachine.kinds.get(kind)
    if cls is None:
        raise CheckpointError(f"{path} holds an unknown model kind {kind!r} (known: {', '.join(BoltzmannMachine.kinds)})")
    try:
        config = json.loads(meta.get("bmprune_config", ""))
    except ValueError as exc:
        raise CheckpointError(f"{path}: bmprune_config is not JSON ({exc})") from None
    validate_tensors(cls, config, tensors, str(path))
    try:
        model = cls._from_named_tensors(config, tensors)
    except ShapeError as exc:   # validate_tensors checks more; kept as a last line of defence
        raise CheckpointError(f"{path}: tensors do not form a valid {kind}: {exc}") from exc
    if device is None:
        return model
    try:
        dev = torch.device(device)
        return model.to(dev)
    except (RuntimeError, TypeError, AssertionError) as exc:   # unknown name, no CUDA build, no such GPU
        raise ConfigError(f"cannot load {path} onto device {device!r}: {exc}") from None


__all__ = ["PARAMETER_DTYPES", "check_version", "load_model", "read_metadata", "save_model", "validate_tensors"]
