"""Time annealed importance sampling on the paper's 400–400–676 MNIST DBM (issue 16).

A population of ``--replicas`` DBMs (default 10) with W₁ masked by 5×5 receptive fields on
the 20×20 crop (``bp.receptive_field_mask(20, 20, 5)``: 8,836 of 160,000 connections, 5.5 %)
and a dense W₂. AIS as ``bp.evaluation.ais`` runs it by default: ``--runs`` chains per replica
(100) through ``--betas`` inverse temperatures (10,000; the Salakhutdinov & Murray schedule
scaled), h¹ summed out, base rates from the data. Target: ≤ 5 min on a 2-core CPU.

Weights (``--weights``):
* ``pretrained`` (default): greedy CD-1 pre-training of the two RBMs, 1 epoch each, batch 10,
  on ``--pretrain-patterns`` patterns (binarised MNIST training crops from
  ``bp.data.load_mnist`` when BMPRUNE_DATA_DIR holds them, else random binary patterns with
  p = 0.2), then stacking. Not a good model, but weights of a realistic size. Timed apart.
* ``random``: the DBM's initialisation, N(0, 0.1²) then masked.
The cost per β step does not depend on the weights, except that steps where |Δβ|·max|input|
may exceed 1 fall back to float64 (see ``ais``'s Notes); the script prints how many.

With ``--betas`` below ``--target-betas`` the time is also extrapolated linearly to
``--target-betas`` (the cost per step is constant) and labelled so.

Run:  python benchmarks/bench_ais.py [--replicas 10] [--runs 100] [--betas 10000] [--threads 2]
      [--weights pretrained|random] [--dense] [--dtype float32|float64]
"""

from __future__ import annotations

import argparse
import importlib
import time

import numpy as np
import torch

import bmprune as bp

ais_module = importlib.import_module("bmprune.evaluation.ais")   # `bp.evaluation.ais` is the function


def load_patterns(n: int) -> tuple[np.ndarray, str]:
    try:
        x = np.asarray(bp.data.load_mnist("train").x)
        return x[:n], "MNIST train (20×20 crop, mean-binarised)"
    except (bp.BmpruneError, OSError) as exc:  # data missing: fall back, and say so
        print(f"(MNIST unavailable: {exc}; using random patterns)")
    return (np.random.default_rng(0).random((n, 400)) < 0.2).astype(np.uint8), "random binary, p = 0.2"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--betas", type=int, default=10_000)
    ap.add_argument("--target-betas", type=int, default=10_000, help="extrapolate the time to this many β")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice; on a CPU shared with other jobs "
                         "fewer threads avoid the collapse of multi-threaded kernels under contention)")
    ap.add_argument("--weights", choices=["pretrained", "random"], default="pretrained")
    ap.add_argument("--pretrain-patterns", type=int, default=5_000)
    ap.add_argument("--dense", action="store_true", help="apply W₁ as a dense matrix (no sparse kernel)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    x, source = load_patterns(max(args.pretrain_patterns, 1_000))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}; data: {source}")
    R, mask = args.replicas, bp.receptive_field_mask(20, 20, 5)
    t = time.perf_counter()
    if args.weights == "pretrained":
        dbm, _ = bp.training.pretrain_dbm(
            x[: args.pretrain_patterns], [400, 400, 676], weight_masks=[mask, None], epochs=1, batch_size=10,
            learning_rate=[[0.01], [0.1]], momentum=0.5, seed=args.seed, n_replicas=R,
            visible_bias=-1.0, hidden_bias=-2.0, dtype=dtype)
        print(f"pre-training ({args.pretrain_patterns} patterns, 1 epoch per RBM, R = {R}): "
              f"{time.perf_counter() - t:.1f} s")
    else:
        dbm = bp.DBM([400, 400, 676], n_replicas=R, weight_masks=[mask, None], seed=args.seed, dtype=dtype)
    if args.dense:
        ais_module._SPARSE_DENSITY = -1.0
    net = ais_module._Network.of(dbm)
    betas = bp.evaluation.default_betas(args.betas)
    x_max = max(net.x_max[1::2])
    slow = int(((betas.diff() * x_max) > ais_module._FAST_STEP_LIMIT).sum())
    print(f"DBM 400–400–676, W₁ {'dense' if args.dense else 'sparse' if net.up[0].sparse else 'dense'} "
          f"({int(mask.sum())} connections), R = {R}, {args.runs} runs × {args.betas} β; "
          f"bound on |h¹ input| {x_max:.1f}: {slow} float64 steps")
    t, cpu = time.perf_counter(), time.process_time()
    res = bp.evaluation.ais(dbm, n_runs=args.runs, n_betas=args.betas, data=x, seed=args.seed)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    per_step = wall / (args.betas - 1)
    print(f"AIS wall time: {wall:.1f} s ({per_step * 1e3:.2f} ms per β step); process CPU time {cpu:.1f} s "
          f"(CPU/wall {cpu / wall:.2f}: below the thread count means the cores were shared)")
    if args.betas < args.target_betas:
        est = per_step * (args.target_betas - 1)
        print(f"extrapolated to {args.target_betas} β: {est:.0f} s ({est / 60:.1f} min)")
    print("log Z per replica: " + ", ".join(f"{z:.2f} ± {s:.2f}" for z, s in zip(res.log_z.tolist(), res.log_z_std.tolist())))


if __name__ == "__main__":
    main()
