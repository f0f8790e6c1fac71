"""Time one epoch of joint DBM training: the paper's 400–400–676 MNIST DBM (issue 3, SPEC §2).

W₁ has 5×5 receptive fields on the 20×20 crop (8,836 connections), W₂ is dense 400×676.
Joint training = mean-field positive phase (tol 1e−7, ≤ 50 iterations) + PCD with 100
persistent chains, one Gibbs sweep per update, mini-batches of 10 (the paper's retraining),
max-norm 6. Populations of 1 and 10 replicas are timed.

The DBM is first pre-trained briefly (1 epoch per RBM, batch 10, on ``--pretrain-patterns``
patterns; timed separately) so that the weights, and with them the number of mean-field
iterations, are realistic; a DBM fresh from N(0, 0.01) converges in a few iterations and
would time too fast. Patterns are the binarised MNIST training crops from
``bp.data.load_mnist`` (BMPRUNE_DATA_DIR), or random binary patterns (p = 0.2) where MNIST
is unavailable or ``--data random``.

Run:  python benchmarks/bench_dbm_epoch.py [--replicas 1 10] [--patterns 60000] [--epochs 1]
With ``--patterns`` below 60,000 the epoch time is extrapolated linearly to 60,000 patterns
(the cost per update does not depend on the epoch length) and labelled so.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import bmprune as bp

FULL = 60_000


def load_patterns(kind: str, n: int) -> tuple[np.ndarray, str]:
    if kind == "mnist":
        try:
            x = np.asarray(bp.data.load_mnist("train").x)
            return x[:n], "MNIST train (20×20 crop, mean-binarised)"
        except Exception as exc:  # data or loader missing: fall back, and say so
            print(f"(MNIST unavailable: {exc}; using random patterns)")
    return (np.random.default_rng(0).random((n, 400)) < 0.2).astype(np.uint8), "random binary, p = 0.2"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--patterns", type=int, default=FULL, help="patterns per epoch (extrapolated to 60,000)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--chains", type=int, default=100)
    ap.add_argument("--pretrain-patterns", type=int, default=10_000)
    ap.add_argument("--data", choices=["mnist", "random"], default="mnist")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice; on a CPU shared with other jobs "
                         "1 thread avoids the collapse of multi-threaded GEMMs under contention)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    x, source = load_patterns(args.data, max(args.patterns, args.pretrain_patterns))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.dtype}; "
          f"data: {source}")
    sched = bp.training.schedules
    for R in args.replicas:
        t = time.perf_counter()
        dbm, rbms = bp.training.pretrain_dbm(
            x[: args.pretrain_patterns], [400, 400, 676], weight_masks=[bp.receptive_field_mask(20, 20, 5), None],
            epochs=1, batch_size=10, learning_rate=[[0.01], [0.1]], momentum=0.5, seed=0, n_replicas=R,
            visible_bias=-1.0, hidden_bias=-2.0, device=args.device, dtype=dtype)
        t_pre = time.perf_counter() - t
        chains = bp.training.chains_from_rbms(rbms, x[: args.chains], seed=1)
        data = x[: args.patterns]
        res = bp.training.train_dbm(
            dbm, data, epochs=args.epochs, batch_size=args.batch_size, learning_rate=sched.geometric(0.01, 0.001, args.epochs),
            momentum=0.5, n_chains=args.chains, init_chains_from=chains, seed=2)
        if args.device != "cpu":
            torch.cuda.synchronize()
        for h in res.history:
            per_epoch = h["seconds"] * FULL / len(data)
            label = "measured" if len(data) == FULL else f"extrapolated from {len(data):,} patterns"
            print(f"R={R:3d}  epoch {h['epoch']}: {per_epoch:8.1f} s per 60,000-pattern epoch ({label}); "
                  f"{per_epoch / R:7.1f} s per replica-epoch; {h['mean_field_iterations']:.1f} mean-field "
                  f"iterations per update; {1e3 * h['seconds'] / (len(data) / args.batch_size):.2f} ms per update "
                  f"(recon. error {h['reconstruction_error']:.4f})")
        print(f"        (pre-training, 2 RBMs × 1 epoch on {args.pretrain_patterns:,} patterns: {t_pre:.1f} s)")


if __name__ == "__main__":
    main()
