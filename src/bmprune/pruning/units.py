"""Unit removal after pruning, and the random-unit control (SPEC §5).

Masks are lists, as on the models: ``weight_masks[l]`` bool (R, n_l, n_{l+1}) between unit
layers l and l+1, ``alive[k]`` bool (R, n_k) for unit layers k = 0 (visible) … L. Functions
here are pure: they return new lists and leave their inputs alone;
:func:`~bmprune.pruning.prune` writes the result into the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import ShapeError
from ..rng import Streams


def n_to_prune(n_existing: torch.Tensor, percent) -> torch.Tensor:
    """⌊percent/100 · n_existing⌋ as int64, elementwise (SPEC §5, random criteria).

    Computed in float64 with a 1e-9 guard so that products that are integers in exact
    arithmetic (e.g. 10 % of 910) never round down to the integer below.
    """
    q = torch.as_tensor(percent, dtype=torch.float64, device=n_existing.device)
    return torch.floor(n_existing.double() * q / 100 + 1e-9).long()


def _existing(weight_masks, alive) -> list[torch.Tensor]:
    """Masks with the connections of dead units removed (copies)."""
    if len(alive) != len(weight_masks) + 1:
        raise ShapeError(f"need one alive mask per unit layer: {len(weight_masks)} weight layers, {len(alive)} alive masks")
    return [m & alive[l].unsqueeze(-1) & alive[l + 1].unsqueeze(-2) for l, m in enumerate(weight_masks)]


def remove_stranded_units(
    weight_masks: Sequence[torch.Tensor], alive: Sequence[torch.Tensor], *, dead_ends: bool = True
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Remove hidden units left without connections, to a fixed point (SPEC §5).

    A hidden unit with no remaining weight to the layer below is removed. A unit of an
    intermediate hidden layer (a DBM's h¹ of v–h¹–h²) with no remaining weight to the layer
    above is removed too ("dead end"). Removing a unit removes its other weights, which can
    strand further units, so this repeats until nothing changes. Visible units are never
    removed (see :func:`disconnected_visible` for the ones that lost every connection).

    Parameters
    ----------
    weight_masks : list of L bool Tensors of shape (R, n_l, n_{l+1})
    alive : list of L + 1 bool Tensors of shape (R, n_k)
    dead_ends : bool, default True
        Also remove intermediate units without a weight to the layer above (False keeps
        them, as the thesis's layer-wise schedules did).

    Returns
    -------
    weight_masks, alive : new lists of the same shapes
        Every weight of a dead unit is masked.

    Raises
    ------
    ShapeError
        When the number of alive masks is not L + 1.
    """
    masks = _existing(weight_masks, alive)
    alive = [a.clone() for a in alive]
    L = len(masks)
    changed = True
    while changed:  # at most one pass per removed unit; in practice a handful
        changed = False
        for k in range(1, L + 1):
            keep = alive[k] & masks[k - 1].any(dim=-2)          # a weight to the layer below
            if k < L and dead_ends:
                keep &= masks[k].any(dim=-1)                    # intermediate: a weight to the layer above
            if torch.equal(keep, alive[k]):
                continue
            changed = True
            alive[k] = keep
            masks[k - 1] &= keep.unsqueeze(-2)
            if k < L:
                masks[k] &= keep.unsqueeze(-1)
    return masks, alive


def disconnected_visible(weight_masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Visible units without any remaining weight (the paper's Fig 3D map): bool (R, n_visible)."""
    return ~weight_masks[0].any(dim=-1)


def random_unit_removal(
    weight_masks: Sequence[torch.Tensor],
    alive: Sequence[torch.Tensor],
    percent: Sequence[float],
    rng=None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The random-unit control: remove random whole hidden units per hidden layer (SPEC §5).

    For weight layer l (bottom-up) the target is ⌊q_l/100 · n_l⌋ weights, n_l counted
    before any removal. Weights of layer l already gone because units of layer l were removed
    at the previous step count towards it. The alive units of layer l+1 are put in a random
    order and the first m are removed, m chosen so that the number of their remaining
    incoming weights (from layer l) is closest to what is left of the target (the smallest m
    on a tie). Vectorised over replicas; no loop over units.

    Parameters
    ----------
    weight_masks : list of L bool Tensors of shape (R, n_l, n_{l+1})
    alive : list of L + 1 bool Tensors of shape (R, n_k)
    percent : sequence of L floats in [0, 100]
        Per weight layer.
    rng : Streams or int, optional
        Per-replica random streams (:mod:`bmprune.rng`) or a seed (default 0): the unit
        orders (one uniform key per unit and replica).

    Returns
    -------
    weight_masks, alive : new lists
        Stranded units are *not* removed here; :func:`remove_stranded_units` does that.
    """
    masks = _existing(weight_masks, alive)
    alive = [a.clone() for a in alive]
    rng = Streams.coerce(rng, alive[0].shape[0], alive[0].device)
    before = [m.sum(dim=(-2, -1)) for m in masks]                # (R,) per layer
    for l in range(len(masks)):
        target = n_to_prune(before[l], float(percent[l]))         # (R,)
        already = before[l] - masks[l].sum(dim=(-2, -1))
        need = (target - already).clamp(min=0)                   # (R,)
        units = alive[l + 1]                                     # (R, n)
        in_degree = masks[l].sum(dim=-2)                         # (R, n)
        keys = rng.uniform(units.shape[1:], torch.float64).to(units.device)          # (R, n)
        keys = keys.masked_fill(~units, math.inf)                # dead units sort last, never chosen
        order = keys.argsort(dim=-1)                             # (R, n)
        cum = torch.cumsum(in_degree.gather(-1, order), dim=-1)  # weights gone after removing m units
        cum = torch.cat([torch.zeros_like(cum[..., :1]), cum], dim=-1)           # (R, n+1), m = 0 … n
        # first minimum: dead units add 0 weights, so ties never pick them
        m = (cum - need.unsqueeze(-1)).abs().argmin(dim=-1)      # (R,)
        rank = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order))
        remove = units & (rank < m.unsqueeze(-1))                # (R, n)
        alive[l + 1] = units & ~remove
        masks[l] &= alive[l + 1].unsqueeze(-2)
        if l + 1 < len(masks):
            masks[l + 1] &= alive[l + 1].unsqueeze(-1)
    return masks, alive


__all__ = ["disconnected_visible", "n_to_prune", "random_unit_removal", "remove_stranded_units"]
