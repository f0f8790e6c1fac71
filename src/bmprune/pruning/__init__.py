"""Pruning of Boltzmann machines by importance criteria (SPEC §5).

* :data:`CRITERIA`: the registry (``variance_fi``, ``heuristic_fi``, ``eigenvector_fi``,
  ``anti_fi``, ``weight_magnitude``, ``random_weights``, ``random_units``,
  ``variance_fi_w2``), :class:`Criterion`, :func:`get_criterion`.
* :func:`select_keep`: the paper's threshold rule; :func:`select_lowest`: the exact-count
  rule of the random control.
* :func:`prune`: one pruning step of a population, with unit removal to a fixed point
  (:mod:`bmprune.pruning.units`), returning a :class:`PruneReport`.
"""

from .criteria import CRITERIA, Criterion, get_criterion
from .prune import PruneOptions, PruneReport, masked_percentile, prune, select_keep, select_lowest
from .units import (
    disconnected_visible,
    n_to_prune,
    random_unit_removal,
    remove_stranded_units,
)

__all__ = [
    "CRITERIA", "Criterion", "PruneOptions", "PruneReport", "disconnected_visible", "get_criterion", "masked_percentile",
    "n_to_prune", "prune", "random_unit_removal", "remove_stranded_units", "select_keep", "select_lowest",
]
