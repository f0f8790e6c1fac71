"""Fisher information of Boltzmann machines (SPEC §4).

* :func:`exact_fim`, :func:`exact_moments`: exact, by enumerating the smaller layer of a
  small RBM (:mod:`bmprune.fisher.exact`).
* :func:`fim_from_samples`, :func:`variance_fi`, :func:`variance_fi_biases`,
  :func:`heuristic_fi`, :func:`eigenvector_importance`: estimates from model samples, or
  from :class:`SampleStatistics` accumulated over chunks (:mod:`bmprune.fisher.estimators`).

Parameter order of every FIM: [b_v (n_visible), b_h (n_hidden), W row-major (i·n_hidden + j)].
"""

from .estimators import (
    FisherScores,
    SampleStatistics,
    eigenvector_importance,
    fim_diagonal,
    fim_from_samples,
    heuristic_fi,
    leading_eigenvalues,
    split_parameters,
    variance_fi,
    variance_fi_biases,
)
from .exact import ExactMoments, exact_fim, exact_moments, n_parameters

__all__ = [
    "ExactMoments", "FisherScores", "SampleStatistics", "eigenvector_importance", "exact_fim",
    "exact_moments", "fim_diagonal", "fim_from_samples", "heuristic_fi", "leading_eigenvalues",
    "n_parameters", "split_parameters", "variance_fi", "variance_fi_biases",
]
