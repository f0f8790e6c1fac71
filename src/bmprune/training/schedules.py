"""Per-epoch schedules of learning rate and momentum (SPEC §2).

Schedules are 0-indexed: epoch e uses entry e. (The original code skipped entry 0.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ConfigError

Schedule = float | Sequence[float] | Callable[[int], float]


def geometric(start: float, stop: float, n: int) -> list[float]:
    """``n`` values from ``start`` to ``stop`` in geometric progression (inclusive).

    The paper's MNIST learning rates, e.g. ``geometric(0.01, 1e-4, 20)``.
    """
    if n < 1 or start <= 0 or stop <= 0:
        raise ConfigError(f"geometric schedule needs n ≥ 1 and positive ends; got {start}, {stop}, {n}")
    return [float(x) for x in np.geomspace(start, stop, n)] if n > 1 else [float(start)]


def step(values: Sequence[float], boundaries: Sequence[int], n: int) -> list[float]:
    """Piecewise-constant: ``values[k]`` from epoch ``boundaries[k-1]`` on (``boundaries`` ascending).

    ``step([0.5, 0.9], [5], 20)`` is the paper's momentum: 0.5 for epochs 0–4, then 0.9.
    """
    if len(values) != len(boundaries) + 1:
        raise ConfigError("step schedule needs one more value than boundaries")
    return [float(values[int(np.searchsorted(boundaries, e, side="right"))]) for e in range(n)]


def resolve(schedule: Schedule, epochs: int, name: str) -> list[float]:
    """Turn a constant, a per-epoch sequence or a callable into a list of ``epochs`` floats.

    Raises ConfigError when a sequence's length differs from ``epochs`` or a value is
    negative or not finite.
    """
    if callable(schedule):
        values = [float(schedule(e)) for e in range(epochs)]
    elif isinstance(schedule, (int, float)):
        values = [float(schedule)] * epochs
    else:
        values = [float(x) for x in schedule]
        if len(values) != epochs:
            raise ConfigError(f"{name} schedule has {len(values)} entries for {epochs} epochs (entry e is used in epoch e)")
    if any(not np.isfinite(x) or x < 0 for x in values):
        raise ConfigError(f"{name} must be finite and ≥ 0; got {values}")
    return values
