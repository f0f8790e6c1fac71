"""Small tensor helpers shared by every module: validation and broadcasting of binary states.

Randomness lives in :mod:`bmprune.rng` (per-replica streams).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import DataError, ShapeError


def as_binary(
    x: Any,
    n_units: int,
    *,
    name: str = "v",
    n_replicas: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    check_values: bool = True,
) -> torch.Tensor:
    """Validate a batch of binary states and bring it to shape ``(R or 1, B, n_units)``.

    Accepts float/int/bool tensors or arrays of shape ``(B, n)`` (shared by all replicas,
    returned with a leading axis of 1 so it broadcasts) or ``(R, B, n)``.

    Raises
    ------
    ShapeError
        Wrong number of units, wrong replica count or wrong rank.
    DataError
        NaN, or values other than 0 and 1 (when ``check_values``).
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() == 1:
        raise ShapeError(f"{name} must have shape (B, {n_units}) or (R, B, {n_units}); got a vector of shape {tuple(x.shape)}")
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ShapeError(f"{name} must have shape (B, {n_units}) or (R, B, {n_units}); got {tuple(x.shape)}")
    if x.shape[-1] != n_units:
        raise ShapeError(f"{name} has {x.shape[-1]} units per pattern, the model expects {n_units}")
    if n_replicas is not None and x.shape[0] not in (1, n_replicas):
        raise ShapeError(f"{name} has {x.shape[0]} replicas, the model has {n_replicas}")
    if check_values and x.dtype != torch.bool:
        if x.is_floating_point() and torch.isnan(x).any():
            raise DataError(f"{name} contains NaN")
        if ((x != 0) & (x != 1)).any():
            raise DataError(f"{name} must be binary (0/1); found other values")
    return x.to(device=device if device is not None else x.device, dtype=dtype)
