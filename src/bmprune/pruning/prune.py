"""The pruning engine: the threshold rule, one pruning step, and its report (SPEC §5).

One step: every weight layer is scored by its criterion from the same model samples, the
rule :func:`select_keep` (or the exact-count rule of the random control) picks the weights to
keep among those that still exist, stranded units are removed to a fixed point
(:func:`~bmprune.pruning.units.remove_stranded_units`), and the masks are written into the
model in place. Remaining parameters keep their values; retraining is the caller's next step.

Works on any population with the list attributes ``weights`` (L tensors (R, n_l, n_{l+1})),
``biases``, ``weight_masks``, ``alive`` (L + 1 tensors (R, n_k)) and ``apply_masks()``: an
:class:`~bmprune.RBM` (L = 1) or a DBM.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from ..errors import ConfigError, DataError, ShapeError
from ..fisher.estimators import SampleStatistics
from ..rng import Streams
from .criteria import Criterion, get_criterion
from .units import (
    disconnected_visible,
    n_to_prune,
    random_unit_removal,
    remove_stranded_units,
)


# --- selection rules ---------------------------------------------------------------------
def _check_percent(percent, lead: torch.Size, device) -> torch.Tensor:
    q = torch.as_tensor(percent, dtype=torch.float64, device=device)
    if torch.isnan(q).any() or (q < 0).any() or (q > 100).any():
        raise ConfigError(f"percent must lie in [0, 100]; got {percent}")
    try:
        return q.expand(lead)
    except RuntimeError as exc:
        raise ShapeError(f"percent of shape {tuple(q.shape)} does not broadcast to the leading dims {tuple(lead)}") from exc


def _scores_and_existing(scores, existing) -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.as_tensor(scores)
    existing = torch.as_tensor(existing, device=scores.device)
    if scores.dim() < 2:
        raise ShapeError(f"scores must have shape (..., n_in, n_out); got {tuple(scores.shape)}")
    if existing.dtype != torch.bool:
        raise ShapeError(f"existing must be a bool mask; got {existing.dtype}")
    try:
        existing = existing.expand_as(scores)
    except RuntimeError as exc:
        raise ShapeError(f"existing {tuple(existing.shape)} does not match scores {tuple(scores.shape)}") from exc
    scores = scores.double()
    if torch.isnan(scores[existing]).any():
        raise DataError("scores of existing weights contain NaN")
    return scores, existing


def masked_percentile(values: torch.Tensor, valid: torch.Tensor, percent: torch.Tensor) -> torch.Tensor:
    """The q-th percentile of the valid entries of each row, numpy's default ("linear") method.

    Position (n − 1)·q/100 in the sorted valid values, linear interpolation between its two
    neighbours in numpy's and torch's symmetric form (b − (b − a)(1 − f) for f ≥ ½), so it
    equals ``np.percentile(values[valid], q)`` and ``torch.quantile(…, q/100)``. Written with a
    sort because ``torch.quantile`` takes no mask (and refuses inputs over 16M elements).

    Parameters
    ----------
    values : Tensor of shape (..., n), float64
    valid : bool Tensor of shape (..., n)
    percent : Tensor of shape (...), float64 in [0, 100]

    Returns
    -------
    Tensor of shape (...), float64; NaN where a row has no valid entry.
    """
    filled = values.masked_fill(~valid, torch.inf)
    ordered = filled.sort(dim=-1).values                        # valid values first, ascending
    n = valid.sum(dim=-1)                                        # (...)
    pos = (n - 1).clamp(min=0).double() * percent / 100          # (...)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, (n - 1).clamp(min=0))
    f = pos - lo.double()
    a = ordered.gather(-1, lo.unsqueeze(-1)).squeeze(-1)
    b = ordered.gather(-1, hi.unsqueeze(-1)).squeeze(-1)
    d = torch.where(a == b, torch.zeros_like(a), b - a)          # inf − inf guard, exact ties
    t = torch.where(f >= 0.5, b - d * (1 - f), a + d * f)
    return t.masked_fill(n == 0, torch.nan)


def select_keep(scores, existing, percent, prune_highest: bool = False) -> torch.Tensor:
    """The paper's threshold rule: which existing weights survive one pruning step (SPEC §5).

    Per leading index (replica), over the weights that still exist: t = the q-th percentile
    of their scores (numpy's default linear interpolation, see :func:`masked_percentile`);
    keep a weight iff its score > t. So ties at the threshold are pruned, and when more than
    q % of the scores are exactly 0 *every* zero-score weight goes (the paper's rule for h²).
    With ``prune_highest`` (anti-FI): t = the (100 − q)-th percentile and a weight is pruned
    iff its score > t. q = 0 prunes nothing.

    Parameters
    ----------
    scores : Tensor of shape (..., n_in, n_out)
        Importance; high = important. Scores of non-existing weights are ignored.
    existing : bool Tensor broadcastable to ``scores``
        Weights that still exist. They alone are counted; the others are never revived.
    percent : float or Tensor broadcastable to the leading dims (...)
        q in [0, 100], e.g. one per replica.
    prune_highest : bool, default False

    Returns
    -------
    keep : bool Tensor of shape (..., n_in, n_out)
        A subset of ``existing``.

    Raises
    ------
    ConfigError
        ``percent`` outside [0, 100].
    ShapeError, DataError
        Shapes that do not fit; NaN scores of existing weights.

    Examples
    --------
    >>> import torch, bmprune as bp
    >>> s = torch.tensor([[[0., 0., 0., 1., 2., 3.]]])   # 50 % → t = 0.5: every 0 goes
    >>> bp.pruning.select_keep(s, torch.ones_like(s, dtype=torch.bool), 50).int()
    tensor([[[0, 0, 0, 1, 1, 1]]], dtype=torch.int32)
    """
    scores, existing = _scores_and_existing(scores, existing)
    lead = scores.shape[:-2]
    q = _check_percent(percent, lead, scores.device)
    flat, valid = scores.flatten(-2), existing.flatten(-2)       # (..., n_in·n_out)
    if prune_highest:
        t = masked_percentile(flat, valid, 100 - q)
        keep = valid & (flat <= t.unsqueeze(-1))
    else:
        t = masked_percentile(flat, valid, q)
        keep = valid & (flat > t.unsqueeze(-1))
    keep = torch.where((q == 0).unsqueeze(-1), valid, keep)     # q = 0: nothing is pruned
    return keep.unflatten(-1, scores.shape[-2:])


def select_lowest(scores, existing, n_prune) -> torch.Tensor:
    """Prune exactly ``n_prune`` existing weights, those of lowest score, per leading index.

    Used by the random control (SPEC §5: "random criteria prune exactly ⌊q/100 · n⌋"). Ties
    are broken by position (stable sort).

    Parameters
    ----------
    scores : Tensor of shape (..., n_in, n_out)
    existing : bool Tensor broadcastable to ``scores``
    n_prune : int or int Tensor broadcastable to the leading dims (...)
        Clipped to the number of existing weights.

    Returns
    -------
    keep : bool Tensor of shape (..., n_in, n_out), a subset of ``existing``
    """
    scores, existing = _scores_and_existing(scores, existing)
    flat, valid = scores.flatten(-2), existing.flatten(-2)
    k = torch.as_tensor(n_prune, device=flat.device).long().expand(flat.shape[:-1])
    order = flat.masked_fill(~valid, torch.inf).argsort(dim=-1, stable=True)
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order))
    keep = valid & (rank >= k.unsqueeze(-1))                     # non-existing rank after all existing
    return keep.unflatten(-1, scores.shape[-2:])


# --- the report --------------------------------------------------------------------------
@dataclass(frozen=True)
class PruneReport:
    """What one pruning step did, per replica and layer.

    Attributes
    ----------
    criteria : tuple of str, length R
        The criterion of each replica.
    percent : tuple of float, length L
        q per weight layer.
    weights_before, weights_after : int64 Tensors of shape (R, L)
        Existing weights per weight layer before and after the step (unit removal included).
    weights_by_criterion : int64 Tensor of shape (R, L)
        Weights the criterion itself removed (the rest of ``weights_removed`` went with
        removed units).
    units_before, units_after : int64 Tensors of shape (R, L + 1)
        Alive units per unit layer (layer 0 = visible, never removed).
    disconnected_visible : bool Tensor of shape (R, n_visible)
        Visible units left without any weight (reported, not removed).
    """

    criteria: tuple[str, ...]
    percent: tuple[float, ...]
    weights_before: torch.Tensor
    weights_after: torch.Tensor
    weights_by_criterion: torch.Tensor
    units_before: torch.Tensor
    units_after: torch.Tensor
    disconnected_visible: torch.Tensor

    @property
    def weights_removed(self) -> torch.Tensor:
        """(R, L) int64."""
        return self.weights_before - self.weights_after

    @property
    def units_removed(self) -> torch.Tensor:
        """(R, L + 1) int64; column 0 (visible) is always 0."""
        return self.units_before - self.units_after

    @property
    def n_disconnected_visible(self) -> torch.Tensor:
        """(R,) int64."""
        return self.disconnected_visible.sum(dim=-1)

    def to_records(self) -> list[dict[str, Any]]:
        """Tidy rows ``{replica, criterion, metric, layer, value}`` (e.g. for ``pd.DataFrame``).

        Weight metrics (``weights_before``/``_after``/``_removed``/``_by_criterion``) use the
        weight-layer index l (0 … L−1); unit metrics (``units_before``/``_after``/``_removed``)
        the unit-layer index k (0 = visible … L); ``disconnected_visible`` has layer 0.
        """
        rows = []
        tables = {
            "weights_before": self.weights_before, "weights_after": self.weights_after,
            "weights_removed": self.weights_removed, "weights_by_criterion": self.weights_by_criterion,
            "units_before": self.units_before, "units_after": self.units_after, "units_removed": self.units_removed,
        }
        for r, name in enumerate(self.criteria):
            for metric, table in tables.items():
                for layer, value in enumerate(table[r].tolist()):
                    rows.append({"replica": r, "criterion": name, "metric": metric, "layer": layer, "value": value})
            rows.append({"replica": r, "criterion": name, "metric": "disconnected_visible", "layer": 0,
                         "value": int(self.n_disconnected_visible[r])})
        return rows


# --- one pruning step --------------------------------------------------------------------
def _resolve_criteria(criterion, R: int) -> list[Criterion]:
    if isinstance(criterion, (str, Criterion)):
        return [get_criterion(criterion)] * R
    names = list(criterion)
    if len(names) != R:
        raise ConfigError(f"give one criterion or one per replica; got {len(names)} for {R} replicas")
    return [get_criterion(c) for c in names]


def _resolve_percent(percent, L: int) -> list[float]:
    if isinstance(percent, (int, float)):
        qs = [float(percent)] * L
    else:
        qs = [float(q) for q in percent]
        if len(qs) != L:
            raise ConfigError(f"give one percent or one per weight layer ({L}); got {len(qs)}")
    for q in qs:
        if not 0 <= q <= 100:
            raise ConfigError(f"percent must lie in [0, 100]; got {q}")
    return qs


def _as_statistics(samples, model) -> SampleStatistics | None:
    """Samples → statistics: a SampleStatistics, a tuple of layer states, or an iterable of chunks."""
    if samples is None or isinstance(samples, SampleStatistics):
        stats = samples
    elif isinstance(samples, Iterable):  # a tuple of layer states, or chunks of them
        stats = SampleStatistics.from_samples(samples)
    else:
        raise ShapeError(f"samples must be a tuple of layer states, an iterable of them or SampleStatistics; got {type(samples).__name__}")
    if stats is not None:
        sizes = [int(n) for n in model.layer_sizes]
        if stats.layer_sizes != sizes:
            raise ShapeError(f"samples have layer sizes {stats.layer_sizes}, the model {sizes}")
        R = model.weights[0].shape[0]
        if stats.n_replicas not in (1, R):
            raise ShapeError(f"samples have {stats.n_replicas} replicas, the model {R}")
    return stats


def _view(model, index: torch.Tensor | None):
    """The replicas ``index`` of a model as a plain namespace of the list attributes a score needs."""
    if index is None:
        return model
    return SimpleNamespace(
        weights=[w[index] for w in model.weights], biases=[b[index] for b in model.biases],
        weight_masks=[m[index] for m in model.weight_masks], alive=[a[index] for a in model.alive],
        layer_sizes=list(model.layer_sizes))


@dataclass(frozen=True)
class PruneOptions:
    """How one pruning step selects and what it does around the selection (SPEC §5; thesis §3.3).

    Attributes
    ----------
    threshold : float, optional
        Prune every existing weight whose score is below it (above it for ``prune_highest``),
        instead of a percentile: the thesis's fixed FI threshold (§4.1.3, t = 0.05).
    keep_units : tuple of int, optional
        Hidden units to keep per hidden layer, for the unit criteria (``unit_fi``,
        ``unit_anti_fi``) and for ``random_units`` (then random units are removed down to
        it instead of matching a weight count).
    remove_units : bool, default True
        Remove hidden units left without a weight to the layer below (SPEC §5). False keeps
        them (thesis Table 4.1).
    remove_dead_ends : bool, default True
        Also remove intermediate units without a weight to the layer above (False: the
        thesis's layer-wise schedules).
    rescale_weights : bool, default False
        After whole units were removed from a hidden layer, multiply its incoming weights by
        n_before / n_after (thesis §3.3.2).
    reset_hidden_bias : bool, default False
        Set each remaining hidden unit's bias to its mean activation in the samples the step
        was scored on (thesis §4.2.2.1, the homeostatic reset).
    """

    threshold: float | None = None
    keep_units: tuple[int, ...] | None = None
    remove_units: bool = True
    remove_dead_ends: bool = True
    rescale_weights: bool = False
    reset_hidden_bias: bool = False


def prune(
    model,
    criterion: str | Criterion | Sequence[str | Criterion] = "variance_fi",
    percent: float | Sequence[float] = 50.0,
    samples=None,
    *,
    seed: Streams | int | None = 0,
    options: PruneOptions | None = None,
) -> PruneReport:
    """One pruning step of a population, in place (SPEC §5).

    For every weight layer, each replica's criterion scores the existing weights and the
    selection rule removes q % of them: :func:`select_keep` for the importance criteria (or
    every weight below ``options.threshold``), exactly ⌊q/100 · n⌋ for ``random_weights``,
    whole hidden units for ``random_units`` and the unit criteria. All layers are scored from
    the same model state and samples. Then hidden units without a weight to the layer below,
    and intermediate units without a weight to the layer above, are removed to a fixed point;
    ``model.weight_masks`` and ``model.alive`` are updated in place and
    ``model.apply_masks()`` zeroes the removed weights. Remaining parameters keep their
    values unless ``options`` rescale weights or reset biases.

    Parameters
    ----------
    model : RBM or DBM population (R replicas, L weight layers)
    criterion : str, Criterion, or a sequence of R of them, default "variance_fi"
        A name from :data:`~bmprune.pruning.CRITERIA`, or one per replica.
    percent : float or sequence of L floats, default 50
        q per weight layer, in [0, 100] (e.g. ``(10, 25)`` for the paper's DBM; 0 leaves a
        layer alone).
    samples : tuple of layer states, iterable of such chunks, or SampleStatistics, optional
        Model samples (each (R | 1, N, n_l), 0/1) for the criteria that need them; e.g.
        ``bp.sample(model, N)`` or ``bp.iter_samples(model, N)`` (streamed).
    seed : int or Streams, default 0
        Per-replica random streams (:mod:`bmprune.rng`) or a seed, for the random criteria:
        replica r's draws come from its own stream, so they do not depend on the population
        it is pruned in.
    options : PruneOptions, optional
        Fixed threshold, unit targets, unit removal, rescaling, bias reset (thesis §3.3).

    Returns
    -------
    PruneReport

    Raises
    ------
    UnknownCriterionError
        An unknown criterion name.
    ConfigError
        Wrong number of criteria or percentages, percent outside [0, 100], a criterion that
        needs samples without samples, a unit criterion without ``keep_units``, a bias reset
        without samples.
    ShapeError
        Samples that do not fit the model.
    EnumerationError
        ``eigenvector_fi`` on a model too large to enumerate, or on a DBM.

    Examples
    --------
    >>> import bmprune as bp
    >>> rbm = bp.RBM(6, 4, n_replicas=2)
    >>> report = bp.pruning.prune(rbm, "weight_magnitude", 50)
    >>> report.weights_after.tolist()
    [[12], [12]]
    """
    opts = options or PruneOptions()
    weight_masks, alive = list(model.weight_masks), list(model.alive)
    L, R = len(weight_masks), weight_masks[0].shape[0]
    crits = _resolve_criteria(criterion, R)
    qs = _resolve_percent(percent, L)
    needs_samples = opts.reset_hidden_bias or any(c.needs_samples for c in crits)
    stats = _as_statistics(samples, model) if needs_samples else None
    if opts.reset_hidden_bias and stats is None:
        raise ConfigError("reset_hidden_bias needs the model samples the step is scored on: pass samples=")
    rng = Streams.coerce(seed, R, weight_masks[0].device)

    existing = [m & alive[l].unsqueeze(-1) & alive[l + 1].unsqueeze(-2) for l, m in enumerate(weight_masks)]
    weights_before = torch.stack([m.sum(dim=(-2, -1)) for m in existing], dim=-1)   # (R, L)
    units_before = torch.stack([a.sum(dim=-1) for a in alive], dim=-1)              # (R, L+1)
    new_masks, new_alive = [m.clone() for m in existing], [a.clone() for a in alive]
    for members in _groups(crits).values():
        _select_group(model, crits[members[0]], members, R, existing, alive, new_masks, new_alive, qs, stats, rng, opts)

    by_criterion = weights_before - torch.stack([m.sum(dim=(-2, -1)) for m in new_masks], dim=-1)
    if opts.remove_units:
        new_masks, new_alive = remove_stranded_units(new_masks, new_alive, dead_ends=opts.remove_dead_ends)
    for l in range(L):
        weight_masks[l].copy_(new_masks[l])
    for k in range(L + 1):
        alive[k].copy_(new_alive[k])
    model.apply_masks()
    _adjust_parameters(model, units_before, stats, opts)
    return PruneReport(
        criteria=tuple(c.name for c in crits), percent=tuple(qs),
        weights_before=weights_before,
        weights_after=torch.stack([m.sum(dim=(-2, -1)) for m in new_masks], dim=-1),
        weights_by_criterion=by_criterion,
        units_before=units_before,
        units_after=torch.stack([a.sum(dim=-1) for a in new_alive], dim=-1),
        disconnected_visible=disconnected_visible(new_masks),
    )


def _groups(crits: list[Criterion]) -> dict[str, list[int]]:
    """Replica indices by criterion name, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for r, c in enumerate(crits):
        groups.setdefault(c.name, []).append(r)
    return groups


def _select_group(model, c: Criterion, members, R, existing, alive, new_masks, new_alive, qs, stats, rng, opts):
    """Apply criterion ``c`` to its replicas ``members``: writes into new_masks / new_alive."""
    L = len(existing)
    idx = None if len(members) == R else torch.tensor(members, device=existing[0].device)
    sel = slice(None) if idx is None else idx
    sub_rng = rng if idx is None else rng.select(idx)
    sub_stats = None if stats is None else (stats if idx is None else stats.select(idx))
    if c.selection in ("units", "unit_scores"):
        sub = _view(model, idx) if c.selection == "unit_scores" else None
        if c.selection == "units" and opts.keep_units is None:
            m2, a2 = random_unit_removal([m[sel] for m in existing], [a[sel] for a in alive], qs, sub_rng)
        else:
            m2, a2 = _keep_units(c, sub, sub_stats, sub_rng, [m[sel] for m in existing], [a[sel] for a in alive], opts)
        for l in range(L):
            new_masks[l][sel] = m2[l]
        for k in range(L + 1):
            new_alive[k][sel] = a2[k]
        return
    sub_model = _view(model, idx)
    for l in range(L):
        if qs[l] == 0 and opts.threshold is None:
            continue                                                              # layer left alone this step
        scores = c.score(sub_model, l, sub_stats, sub_rng)                        # (R_c, n_l, n_{l+1})
        ex = existing[l][sel]
        if c.selection == "count":
            keep = select_lowest(scores, ex, n_to_prune(ex.sum(dim=(-2, -1)), qs[l]))
        elif opts.threshold is not None:       # the thesis's fixed threshold: no percentile
            keep = ex & ((scores <= opts.threshold) if c.prune_highest else (scores >= opts.threshold))
        else:
            keep = select_keep(scores, ex, qs[l], prune_highest=c.prune_highest)
        new_masks[l][sel] = keep


def _keep_units(c: Criterion, model, stats, rng, masks, alive, opts):
    """Keep ``opts.keep_units[k−1]`` alive units of each hidden layer k: the most important by
    ``c.unit_score`` (the least for prune_highest), or random ones (random_units)."""
    if opts.keep_units is None:
        raise ConfigError(f"criterion {c.name!r} removes whole units: give the units to keep (keep_units)")
    masks, alive = [m.clone() for m in masks], [a.clone() for a in alive]
    for k in range(1, len(alive)):
        units = alive[k]                                                          # (R, n_k)
        if c.unit_score is None:
            score = rng.uniform(units.shape[1:], torch.float64).to(units.device)
        else:
            score = c.unit_score(model, k, stats)
            score = -score if c.prune_highest else score
        score = score.masked_fill(~units, -math.inf)                              # dead units are never kept
        order = score.argsort(dim=-1, descending=True, stable=True)
        rank = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order))
        alive[k] = units & (rank < int(opts.keep_units[k - 1]))
    return _existing_masks(masks, alive), alive


def _existing_masks(masks, alive):
    return [m & alive[l].unsqueeze(-1) & alive[l + 1].unsqueeze(-2) for l, m in enumerate(masks)]


def _adjust_parameters(model, units_before: torch.Tensor, stats, opts: PruneOptions) -> None:
    """Thesis §3.3.2 rescaling of incoming weights and §4.2.2.1 homeostatic bias reset, in place."""
    if not (opts.rescale_weights or opts.reset_hidden_bias):
        return
    for k in range(1, len(model.weights) + 1):
        if opts.rescale_weights:
            n_after = model.alive[k].sum(-1).double()                             # (R,)
            factor = (units_before[:, k].double() / n_after.clamp(min=1)).to(model.dtype)
            model.weights[k - 1].mul_(factor.view(-1, 1, 1))
        if opts.reset_hidden_bias:
            mean = stats.mean(k).to(model.biases[k].device, model.biases[k].dtype).expand_as(model.biases[k])
            model.biases[k].copy_(torch.where(model.alive[k], mean, model.biases[k]))


__all__ = ["PruneOptions", "PruneReport", "masked_percentile", "prune", "select_keep", "select_lowest"]
