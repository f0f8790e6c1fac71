"""Time one CD-1 epoch of bmprune against scikit-learn's BernoulliRBM (issue: foundation).

(a) 784×500, batch 100, 60,000 binary patterns (one network).
(b) 70 replicas of 13×70, batch 1, 90,000 patterns (the paper's CIFAR RBM, a 7 criteria ×
    10 seeds population); scikit-learn is timed on one network and multiplied by 70.

Run:  python benchmarks/bench_rbm_epoch.py [--skip-sklearn] [--sklearn-patterns N]
Patterns are random binary (p = 0.3); speed does not depend on their content.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import bmprune as bp


def time_bmprune(nv, nh, R, N, batch, device="cpu"):
    x = (np.random.default_rng(0).random((N, nv)) < 0.3).astype(np.uint8)
    rbm = bp.RBM(nv, nh, n_replicas=R, seed=0, device=device)
    bp.training.train_rbm(rbm, x[: min(N, 2000)], epochs=1, batch_size=batch, learning_rate=0.01, momentum=0.9)  # warm-up
    t = time.perf_counter()
    bp.training.train_rbm(rbm, x, epochs=1, batch_size=batch, learning_rate=0.01, momentum=0.9)
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def time_sklearn(nv, nh, N, batch):
    from sklearn.neural_network import BernoulliRBM

    x = (np.random.default_rng(0).random((N, nv)) < 0.3).astype(np.float64)
    m = BernoulliRBM(n_components=nh, batch_size=batch, n_iter=1, learning_rate=0.01, random_state=0)
    t = time.perf_counter()
    m.fit(x)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--sklearn-patterns", type=int, default=90_000,
                    help="patterns for the sklearn side of (b); its time is scaled to 90,000")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")

    a = time_bmprune(784, 500, 1, 60_000, 100, args.device)
    print(f"(a) 784x500 batch 100, 60,000 patterns: bmprune {a:.2f} s/epoch (target ≤ 2.0 s)")
    if not args.skip_sklearn:
        s = time_sklearn(784, 500, 60_000, 100)
        print(f"    scikit-learn {s:.2f} s/epoch  → ratio {s / a:.1f}×")

    b = time_bmprune(13, 70, 70, 90_000, 1, args.device)
    print(f"(b) 70 replicas of 13x70 batch 1, 90,000 patterns: bmprune {b:.2f} s/epoch for the population (target ≤ 15 s)")
    if not args.skip_sklearn:
        n = args.sklearn_patterns
        s1 = time_sklearn(13, 70, n, 1) * 90_000 / n
        print(f"    scikit-learn {s1:.2f} s per network → {70 * s1:.1f} s for 70  → ratio {70 * s1 / b:.1f}×")


if __name__ == "__main__":
    main()
