"""Encoding quality: what the hidden code still says about the digit (SPEC §6).

Features = the mean-field posterior of the top hidden layer (dead units dropped) for every
training and test image; a multinomial logistic regression (scikit-learn, C = 1) is fitted
on the training features and scored on the test features. Error = 1 − accuracy.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from ..errors import DataError


def top_features(model, x, chunk: int = 10_000, mf_max_iter: int = 50) -> list[np.ndarray]:
    """Top-layer features per replica, dead units dropped: a list of R arrays (N, n_alive_r), float32.

    ``model.transform(v)``: the mean-field posterior of the top layer (for an RBM the exact
    p(h | v)). Computed in chunks of images.
    """
    xt = torch.as_tensor(np.asarray(x), dtype=model.dtype)
    out = []
    for start in range(0, len(xt), chunk):
        xb = xt[start:start + chunk].to(model.device)
        f = model.transform(xb, max_iter=mf_max_iter)
        out.append(f.float().cpu())
    feats = torch.cat(out, dim=1)                                # (R, N, n_top)
    alive = model.alive[-1].cpu()
    return [feats[r][:, alive[r]].numpy() for r in range(feats.shape[0])]


def classification_error(train_x, y_train, test_x, y_test, *, C: float = 1.0, max_iter: int = 200) -> float:
    """1 − test accuracy of a logistic regression fitted on (train_x, y_train).

    An empty feature set (every unit removed) classifies at chance by the majority class.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if train_x.shape[1] == 0:
        majority = np.bincount(y_train).argmax()
        return float(np.mean(y_test != majority))
    clf = LogisticRegression(C=C, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # max_iter is a stated budget
        clf.fit(train_x, y_train)
    return float(1.0 - clf.score(test_x, y_test))


def encoding_error(model, train, test, *, C: float = 1.0, max_iter: int = 200,
                   n_train: int | None = None, seed: int = 0, mf_max_iter: int = 50) -> np.ndarray:
    """Encoding error per replica (R,) (SPEC §6).

    Parameters
    ----------
    model : RBM or DBM population
    train, test : bmprune.data.Dataset with labels
    C : inverse regularisation (paper: 1)
    max_iter : lbfgs iterations
    n_train : fit on a seeded random subset of this many training images (None: all)
    mf_max_iter : mean-field iterations for DBM features (stops earlier at tolerance 1e-7)

    Raises
    ------
    DataError
        A dataset without labels.
    """
    if train.y is None or test.y is None:
        raise DataError("encoding error needs labelled train and test sets")
    train = train.random_subset(n_train, seed)
    f_train = top_features(model, train.x, mf_max_iter=mf_max_iter)
    f_test = top_features(model, test.x, mf_max_iter=mf_max_iter)
    return np.array([classification_error(a, train.y, b, test.y, C=C, max_iter=max_iter)
                     for a, b in zip(f_train, f_test)])


def raw_pixel_error(train, test, *, C: float = 1.0, max_iter: int = 200, n_train: int | None = None,
                    seed: int = 0) -> float:
    """The same classifier on the raw binary pixels: the baseline line of Fig 3 (≈8.5 % on MNIST)."""
    train = train.random_subset(n_train, seed)
    return classification_error(train.x.astype(np.float32), train.y, test.x.astype(np.float32),
                                test.y, C=C, max_iter=max_iter)


__all__ = ["classification_error", "encoding_error", "raw_pixel_error", "top_features"]
