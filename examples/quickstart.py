"""Train a population of small RBMs on binarised scikit-learn digits and report exact log-likelihoods.

Run: python examples/quickstart.py   (seconds on a laptop CPU)
"""

import time

import numpy as np
from sklearn.datasets import load_digits

import bmprune as bp


def main() -> None:
    digits = load_digits()
    # 8×8 digits, grey levels 0–16: binarise at 8 and keep the central 4×4 block (16 pixels)
    # so that the model is small enough for exact enumeration of log Z.
    x = (digits.images[:, 2:6, 2:6] >= 8).reshape(len(digits.images), -1).astype(np.uint8)
    rbm = bp.RBM(16, 12, n_replicas=4, seed=0, hidden_bias=-2.0).init_visible_bias(x)
    before = rbm.log_prob(x).mean(1)
    t = time.perf_counter()
    bp.training.train_rbm(rbm, x, epochs=10, batch_size=1, learning_rate=0.05, momentum=0.5, seed=0)
    print(f"trained 4 replicas of a 16x12 RBM on {len(x)} patterns in {time.perf_counter() - t:.1f} s")
    after = rbm.log_prob(x).mean(1)
    for r in range(rbm.n_replicas):
        print(f"replica {r}: mean log p(v) {before[r]:.3f} -> {after[r]:.3f} nats")


if __name__ == "__main__":
    main()
