"""Generative quality: does the model dream digits? (SPEC §6, the paper's Fig 4).

A logistic regression (C = 0.1) trained on raw binarised training digits classifies generated
visible samples. Quality = mean probability of the winning class; diversity = entropy (nats)
of the distribution of assigned classes (max ln 10 ≈ 2.30) and the thesis's min/max
class-count ratio. Baselines: the test digits and uniformly random binary patterns.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from ..errors import DataError


class GenerationScorer:
    """Streaming scorer of generated samples under a raw-pixel classifier.

    Parameters
    ----------
    train : bmprune.data.Dataset with labels (the raw binarised training digits)
    C : float, default 0.1
    n_train : optional subset size for fitting the classifier (seeded)
    """

    def __init__(self, train, *, C: float = 0.1, max_iter: int = 300, n_train: int | None = None, seed: int = 0):
        if train.y is None:
            raise DataError("the generation classifier needs labelled training data")
        train = train.random_subset(n_train, seed)
        self.clf = LogisticRegression(C=C, max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.fit(train.x.astype(np.float32), train.y)

    def score(self, v) -> dict[str, np.ndarray]:
        """Scores of visible samples ``v`` (R, N, n_visible) or (N, n_visible): dict of (R,) arrays."""
        acc = self.accumulator()
        acc.update(v)
        return acc.result()

    def accumulator(self) -> "_GenerationAccumulator":
        """A streaming accumulator: ``update(v_chunk)`` repeatedly, then ``result()``."""
        return _GenerationAccumulator(self)


class _GenerationAccumulator:
    def __init__(self, scorer: GenerationScorer) -> None:
        self.s = scorer
        self.prob_sum = None
        self.counts = None
        self.n = 0

    def update(self, v) -> None:
        """Classify a chunk of visible samples (R, n, n_visible) and add its counts."""
        v = v.cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        if v.ndim == 2:
            v = v[None]
        R, n, d = v.shape
        proba = self.s.clf.predict_proba(v.reshape(R * n, d).astype(np.float32)).reshape(R, n, -1)
        win = proba.argmax(-1)
        counts = np.stack([np.bincount(win[r], minlength=proba.shape[-1]) for r in range(R)])
        ps = proba.max(-1).sum(-1)
        self.prob_sum = ps if self.prob_sum is None else self.prob_sum + ps
        self.counts = counts if self.counts is None else self.counts + counts
        self.n += n

    def result(self) -> dict[str, np.ndarray]:
        """``generation_quality``, ``generation_entropy`` (nats), ``generation_class_ratio``: (R,) arrays."""
        freq = self.counts / self.counts.sum(-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.where(freq > 0, freq * np.log(freq), 0.0).sum(-1)
        ratio = self.counts.min(-1) / np.maximum(self.counts.max(-1), 1)
        return {"generation_quality": self.prob_sum / self.n, "generation_entropy": entropy,
                "generation_class_ratio": ratio}


def generation_baselines(scorer: GenerationScorer, test, *, n_random: int = 10_000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Scores of the test digits and of uniformly random binary patterns (Fig 4 baselines)."""
    rng = np.random.default_rng(seed)
    rand = (rng.random((n_random, test.x.shape[1])) < 0.5).astype(np.float32)
    return {
        "test_digits": {k: float(v[0]) for k, v in scorer.score(test.x.astype(np.float32)).items()},
        "random_patterns": {k: float(v[0]) for k, v in scorer.score(rand).items()},
    }


__all__ = ["GenerationScorer", "generation_baselines"]
