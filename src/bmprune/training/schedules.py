"""Per-epoch schedules of learning rate and momentum, and the two update rules (SPEC §2).

Two update rules are selectable (``update_rule``):

* ``"classical"`` (the default for a user's own study): velocity ← μ·velocity + lr·gradient,
  param += velocity; epoch e uses schedule entry e.
* ``"original"`` (what produced the paper's published numbers): velocity ←
  lr·(μ·velocity + gradient), i.e. classical momentum with coefficient μ_eff = lr·μ (≈ 0.009
  for lr 0.01, μ 0.9: practically none), and epoch e uses entry min(e + 1, n − 1) — the
  original code's off-by-one.

A schedule shorter than the epochs holds its last entry; one with entries that can never be
read is refused.
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


UPDATE_RULES = ("classical", "original")


def check_update_rule(update_rule: str) -> str:
    """``update_rule`` if it is "classical" or "original", else ConfigError."""
    if update_rule not in UPDATE_RULES:
        raise ConfigError(f"update_rule must be one of {UPDATE_RULES}; got {update_rule!r}")
    return update_rule


def entry(epoch: int, n: int, update_rule: str = "classical") -> int:
    """The schedule entry epoch ``epoch`` reads from ``n`` entries: min(e, n−1), or min(e+1, n−1) "original"."""
    return min(epoch + (1 if update_rule == "original" else 0), n - 1)


def resolve(schedule: Schedule, epochs: int, name: str, update_rule: str = "classical") -> list[float]:
    """The value of ``schedule`` in each of ``epochs`` epochs under ``update_rule``.

    A constant applies to every epoch; a callable is called with the entry index; a sequence
    of n ≥ 1 entries is read at :func:`entry` (its last value holds beyond its end).

    Raises
    ------
    ConfigError
        An empty sequence, one with entries that are never read (more than ``epochs``
        entries, ``epochs + 1`` with the original rule), a negative or non-finite value, or
        an unknown rule.
    """
    check_update_rule(update_rule)
    if callable(schedule):
        values = [float(schedule(entry(e, epochs + 1, update_rule))) for e in range(epochs)]
    elif isinstance(schedule, (int, float)):
        values = [float(schedule)] * epochs
    else:
        given = [float(x) for x in schedule]
        readable = epochs + (1 if update_rule == "original" else 0)
        if not given or (epochs > 0 and len(given) > readable):
            raise ConfigError(
                f"{name} schedule has {len(given)} entries for {epochs} epochs; with the {update_rule} rule "
                f"epoch e reads entry {'min(e+1, n-1)' if update_rule == 'original' else 'min(e, n-1)'}, "
                f"so at most {readable} entries are used")
        values = [given[entry(e, len(given), update_rule)] for e in range(epochs)]
    if any(not np.isfinite(x) or x < 0 for x in values):
        raise ConfigError(f"{name} must be finite and ≥ 0; got {values}")
    return values


def effective_momentum(learning_rates: list[float], momenta: list[float], update_rule: str) -> list[float]:
    """The classical-momentum coefficient of each epoch: μ, or lr·μ under the original rule."""
    if update_rule == "original":
        return [lr * mu for lr, mu in zip(learning_rates, momenta)]
    return list(momenta)
