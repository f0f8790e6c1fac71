"""Exact likelihoods of enumerable RBMs (SPEC §6, "Small RBMs").

KL(data ‖ model) = Σ_x p_data(x) log(p_data(x) / p_model(x)) over the distinct data patterns,
with the model exactly normalised over all 2^n_visible patterns (the original code's unused
helper renormalised over the observed patterns; we don't).
"""

from __future__ import annotations

import numpy as np
import torch



def unique_patterns(data) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows of ``data`` (N, n) and their empirical probabilities.

    Returns
    -------
    patterns : Tensor (K, n) float64
    p_data : Tensor (K,) float64, sums to 1
    """
    x = np.asarray(data.cpu() if isinstance(data, torch.Tensor) else data)
    if x.ndim != 2 or len(x) == 0:
        from ..errors import DataError
        raise DataError(f"data must be a non-empty (N, n) array; got shape {x.shape}")
    uniq, counts = np.unique(x.astype(np.uint8), axis=0, return_counts=True)
    return torch.from_numpy(uniq).double(), torch.from_numpy(counts / counts.sum())


def exact_log_likelihood(rbm, data, log_z: torch.Tensor | None = None) -> torch.Tensor:
    """Mean exact log p(v) over ``data`` per replica, nats, float64 (R,).

    ``data``: (N, n_visible) binary. Raises ``EnumerationError`` for models too large.
    """
    patterns, p = unique_patterns(data)
    lp = rbm.log_prob(patterns.to(rbm.device), log_z=log_z)          # (R, K)
    return (lp * p.to(lp.device)).sum(-1)


def exact_kl(rbm, data, log_z: torch.Tensor | None = None) -> torch.Tensor:
    """Exact KL(data ‖ model) per replica in nats, float64 (R,) (SPEC §6).

    ``data``: (N, n_visible) binary. Raises ``EnumerationError`` for models too large.
    """
    patterns, p = unique_patterns(data)
    lp = rbm.log_prob(patterns.to(rbm.device), log_z=log_z)          # (R, K)
    p = p.to(lp.device)
    return (p * torch.log(p)).sum() - (lp * p).sum(-1)


__all__ = ["exact_kl", "exact_log_likelihood", "unique_patterns"]
