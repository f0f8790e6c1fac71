"""The registry of pruning criteria (SPEC §5).

A criterion only produces importance scores per weight layer; one shared rule
(:func:`~bmprune.pruning.select_keep`) turns scores into a mask. Low scores are pruned first,
except for ``anti_fi`` (``prune_highest``). Two controls do not fit the threshold rule and
say so in ``selection``: ``random_weights`` prunes exactly ⌊q/100 · n_existing⌋ weights
("count") and ``random_units`` removes whole hidden units ("units", see
:func:`~bmprune.pruning.units.random_unit_removal`).

A score function has the signature ``score(model, layer, stats, rng) -> Tensor`` of
shape (R, n_layer, n_{layer+1}) (float64, high = important), where ``model`` offers the list
attributes ``weights``, ``biases``, ``weight_masks``, ``alive``; ``stats`` is a
:class:`~bmprune.fisher.SampleStatistics` of model samples (or None when the criterion does
not need samples) and ``rng`` the replicas' :class:`~bmprune.rng.Streams` for the random
controls. Scores of weights that do not exist are ignored by the selection rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import EnumerationError, UnknownCriterionError
from ..fisher.estimators import eigenvector_importance
from ..fisher.exact import exact_fim

ScoreFn = Callable[[Any, int, Any, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Criterion:
    """A pruning criterion: how to score weights, and which selection rule applies.

    Attributes
    ----------
    name : str
        Registry name (``CRITERIA`` key).
    score : callable (model, layer, stats, rng) -> Tensor (R, n_in, n_out), or None
        Importance of each weight of weight layer ``layer``; high = important. None for
        ``random_units``, which removes units rather than scoring weights.
    label : str
        The paper's label (for figures and tables).
    prune_highest : bool, default False
        Prune the highest scores instead of the lowest (anti-FI).
    selection : {"threshold", "count", "units", "unit_scores"}
        "threshold": :func:`~bmprune.pruning.select_keep` (percentile rule, ties pruned; or a
        fixed threshold); "count": exactly ⌊q/100 · n_existing⌋ lowest scores pruned
        (:func:`~bmprune.pruning.select_lowest`); "units": random whole hidden units;
        "unit_scores": whole hidden units by ``unit_score`` (the thesis's unit pruning).
    unit_score : callable (model, layer, stats) -> Tensor (R, n_layer), optional
        Importance of each unit of hidden layer ``layer`` (≥ 1), for "unit_scores".
    needs : frozenset of {"samples", "exact", "random"}
        "samples": model samples are required; "exact": the model is enumerated (small RBMs
        only); "random": draws from the random streams.
    description : str
        One line for listings.
    """

    name: str
    score: ScoreFn | None
    label: str
    prune_highest: bool = False
    selection: str = "threshold"
    needs: frozenset = field(default_factory=frozenset)
    description: str = ""
    unit_score: Callable | None = None

    @property
    def needs_samples(self) -> bool:
        return "samples" in self.needs


def _need_stats(stats, name: str):
    if stats is None:
        from ..errors import ConfigError
        raise ConfigError(f"criterion {name!r} needs model samples: pass samples= to prune()")
    return stats


def _variance_fi(model, layer, stats, rng):
    return _need_stats(stats, "variance_fi").variance_fi(layer)


def _heuristic_fi(model, layer, stats, rng):
    return _need_stats(stats, "heuristic_fi").heuristic_fi(layer, model.weights[layer])


def _variance_fi_w2(model, layer, stats, rng):
    W = model.weights[layer].double()
    return _need_stats(stats, "variance_fi_w2").variance_fi(layer) * W * W


def _weight_magnitude(model, layer, stats, rng):
    return model.weights[layer].double().abs()


def _random_scores(model, layer, stats, rng):
    W = model.weights[layer]
    return rng.uniform(W.shape[1:], torch.float64).to(W.device)                 # (R, n_in, n_out), per replica


def _eigenvector_fi(model, layer, stats, rng):
    """|u₁| of the exact FIM restricted to the parameters that exist (SPEC §4).

    The FIM is over all of the RBM's parameters; rows and columns of masked weights are
    zeroed first, so u₁ is the leading eigenvector of the FIM of the model as it now is
    (the submatrix of existing parameters; the zero rows only add zero eigenvalues).
    """
    if len(model.weights) != 1:
        raise EnumerationError("eigenvector_fi needs the exact FIM, available for RBMs (one weight layer) only")
    fim = exact_fim(model)                                       # raises EnumerationError when too large
    W = model.weights[0]
    _, nv, nh = W.shape
    exists = model.weight_masks[0] & model.alive[0].unsqueeze(-1) & model.alive[1].unsqueeze(-2)
    keep = torch.cat([model.alive[0], model.alive[1], exists.flatten(-2)], dim=-1).double()  # (R, P)
    fim = fim * keep.unsqueeze(-1) * keep.unsqueeze(-2)
    return eigenvector_importance(fim, nv, nh).W


def _unit_fi(model, layer, stats):
    """Thesis §3.3.2: a hidden unit's importance = max(Σ_i F_ij over its incoming weights, F of its bias).

    F from the FIM-diagonal (variance) estimates; only existing weights count. (R, n_layer) float64.
    """
    stats = _need_stats(stats, "unit_fi")
    exists = model.weight_masks[layer - 1] & model.alive[layer - 1].unsqueeze(-1) & model.alive[layer].unsqueeze(-2)
    weights = (stats.variance_fi(layer - 1) * exists).sum(-2)                   # (R, n_layer)
    return torch.maximum(weights, stats.bias_variance_fi(layer))


VARIANCE_FI = Criterion(
    "variance_fi", _variance_fi, "Variance FI", needs=frozenset({"samples"}),
    description="Var[v_i h_j] of the weight's statistic from model samples")
HEURISTIC_FI = Criterion(
    "heuristic_fi", _heuristic_fi, "Heuristic FI", needs=frozenset({"samples"}),
    description="mean-field FI q(1-q) from mean rates and the weight")
EIGENVECTOR_FI = Criterion(
    "eigenvector_fi", _eigenvector_fi, "First eigenvector", needs=frozenset({"exact"}),
    description="|u1| of the exact FIM (small RBMs only)")
ANTI_FI = Criterion(
    "anti_fi", _variance_fi, "Anti-FI", prune_highest=True, needs=frozenset({"samples"}),
    description="variance FI; the most important weights are pruned")
WEIGHT_MAGNITUDE = Criterion(
    "weight_magnitude", _weight_magnitude, "|w|", description="absolute weight |W_ij|")
RANDOM_WEIGHTS = Criterion(
    "random_weights", _random_scores, "Random", selection="count", needs=frozenset({"random"}),
    description="exactly floor(q/100 n) existing weights chosen uniformly at random")
RANDOM_UNITS = Criterion(
    "random_units", None, "Random units (control)", selection="units", needs=frozenset({"random"}),
    description="random whole hidden units, until about the target number of weights is gone")
VARIANCE_FI_W2 = Criterion(
    "variance_fi_w2", _variance_fi_w2, "Variance FI × w²", needs=frozenset({"samples"}),
    description="variance FI times W^2 (what the original DBM 'variance FI' script ran)")

UNIT_FI = Criterion(
    "unit_fi", None, "Unit FI", selection="unit_scores", needs=frozenset({"samples"}), unit_score=_unit_fi,
    description="whole hidden units: keep the most important, max(sum_i F_ij, F_bj) (thesis 3.3.2)")
UNIT_ANTI_FI = Criterion(
    "unit_anti_fi", None, "Unit anti-FI", selection="unit_scores", needs=frozenset({"samples"}), unit_score=_unit_fi,
    prune_highest=True, description="whole hidden units: remove the most important (thesis 4.1.2)")

#: Registry: criterion name → :class:`Criterion` (SPEC §5 table; the thesis's unit criteria).
CRITERIA: dict[str, Criterion] = {c.name: c for c in (
    VARIANCE_FI, HEURISTIC_FI, EIGENVECTOR_FI, ANTI_FI, WEIGHT_MAGNITUDE, RANDOM_WEIGHTS,
    RANDOM_UNITS, VARIANCE_FI_W2, UNIT_FI, UNIT_ANTI_FI)}


def get_criterion(criterion: str | Criterion) -> Criterion:
    """The registered criterion of that name (a :class:`Criterion` is returned as is).

    Raises
    ------
    UnknownCriterionError
        For a name not in :data:`CRITERIA`; the message lists the known names.
    """
    if isinstance(criterion, Criterion):
        return criterion
    try:
        return CRITERIA[criterion]
    except (KeyError, TypeError):
        raise UnknownCriterionError(
            f"unknown pruning criterion {criterion!r}; known criteria: {', '.join(CRITERIA)}") from None


__all__ = ["CRITERIA", "Criterion", "get_criterion"]
