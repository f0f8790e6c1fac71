"""Small tensor helpers shared by every module: validation, broadcasting, generators."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from .errors import DataError, ShapeError


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """One explicit ``torch.Generator`` per run (DESIGN.md §Randomness); ``None`` → seed 0."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(0 if seed is None else int(seed))
    return g


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


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary samples with probabilities ``p``, same shape and dtype as ``p``.

    ``u < p`` with ``u`` uniform on [0, 1). Gibbs sampling spends most of its time drawing
    ``u``, so on the CPU the uniforms come from a numpy PCG64 stream tied to ``generator``
    (seeded once from it, see :func:`uniform`), 2–3× faster than ``torch.rand`` (torch
    2.13, 2 cores) and itself 2–3× faster than ``torch.bernoulli``. Same generator state →
    same samples.
    """
    u = uniform(p.shape, generator, p.dtype, p.device)
    return torch.lt(u, p, out=u)      # 0/1 written over the uniforms: no second allocation


class UniformPool:
    """Uniforms drawn in large blocks and served in slices, for loops of many tiny draws.

    Batch-1 training needs two small Bernoulli draws per update; one RNG call per draw would
    dominate its cost. The pool draws ``(n_rows, block)`` uniforms at a time from
    :func:`uniform` (lazily, on the first :meth:`bernoulli`) and hands out consecutive slices,
    so the stream is a pure function of the generator's state at the first draw.
    """

    def __init__(self, generator: torch.Generator | None, n_rows: int, dtype=torch.float32,
                 device="cpu", block: int = 2**14) -> None:
        self.g, self.rows, self.dtype, self.device, self.block = generator, n_rows, dtype, device, block
        self.buf: torch.Tensor | None = None
        self.pos = 0

    def bernoulli(self, p: torch.Tensor) -> torch.Tensor:
        """Binary samples with probabilities ``p`` of shape (n_rows, B, n), dtype of the pool."""
        R, B, n = p.shape
        m = B * n
        if self.buf is None or self.pos + m > self.buf.shape[1]:
            self.buf = uniform((self.rows, max(self.block, m)), self.g, self.dtype, self.device)
            self.pos = 0
        u = self.buf[:, self.pos:self.pos + m].view(R, B, n)
        self.pos += m
        return torch.lt(u, p, out=u)


_NUMPY_STREAMS: "weakref.WeakKeyDictionary[torch.Generator, np.random.Generator]" = weakref.WeakKeyDictionary()


def uniform(shape, generator: torch.Generator | None, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Uniform [0, 1) draws of ``shape``.

    On a CPU with an explicit generator: from a numpy PCG64 generator created on first use
    with a seed drawn from ``generator`` (so the stream is a pure function of the torch
    generator's state at that moment) and cached for the generator's lifetime. Elsewhere:
    ``torch.rand``.
    """
    device = torch.device(device)
    if generator is None or device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        return torch.rand(shape, generator=generator, dtype=dtype, device=device)
    rng = _NUMPY_STREAMS.get(generator)
    if rng is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        rng = _NUMPY_STREAMS[generator] = np.random.default_rng(seed)
    return torch.from_numpy(rng.random(tuple(shape), dtype=np.float32 if dtype == torch.float32 else np.float64))
