"""Lower bound on a DBM joint-training epoch on this machine: issue 18's DBM target, checked.

Counts the multiply-adds of one update of ``bench_speed.py``'s DBM benchmark (10 replicas of the
paper's 400–400–676 MNIST DBM, batch 10, 100 persistent chains, SPEC §2) and divides them by the
fastest rate this machine's BLAS reaches at each product's shape, with every core busy and no
other cost (no sigmoid, no random numbers, no momentum update, no Python, perfect scaling over
cores). No implementation of SPEC §2's algorithm can train faster on this machine.

* mean field: per pattern and iteration two products with W₂ (400 × 676), one in each
  direction; each replica has only its own batch of ≤ 10 patterns to multiply by its W₂, so
  the rate is the one of a 10-row product (the best of 1–10 rows). The iterations per pattern
  are those of ``bench_speed.py``'s timed run (its ``dbm``, or ``retrain`` with ``--trained``).
* PCD sweep: four products of the 100 chains (v ↔ h¹ with W₁ 400 × 400, h¹ ↔ h² with W₂).
* gradient: ⟨v h¹⟩ and ⟨h¹ h²⟩ over the 10 patterns and the 100 chains (110 rows).
* momentum update: at least one pass over the parameters that reads θ, velocity, gradient and
  mask and writes θ and velocity (24 bytes per float32 parameter), at the memory bandwidth a
  fused multiply-add over tensors of that size reaches with every core.
* elementwise: the logistic function of every unit updated (mean field and sweep) and one
  uniform per unit of the sweep, at the best one-core rates of ``torch.sigmoid`` and of numpy's
  float32 draws from the SFC64 generator the replica streams use (SPEC §4), over large arrays.
* ``--sparse-w1``: count W₁'s products (5 × 5 receptive fields, 5.5 % dense) as free and only
  its 8,836 connections as parameters.

Run: ``python benchmarks/dbm_floor.py [--threads 2] [--baseline-seconds 471] [--trained runs/bench-trained-dbm]``
(``--baseline-seconds``: the starting commit's epoch time from ``bench_speed.py --only dbm``;
the script then prints the speed-up that the bound allows.)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import bench_speed     # this script's folder is on sys.path
import bmprune as bp

ROOT = Path(__file__).resolve().parents[1]

UPDATES = 6000                      # 60,000 patterns at batch 10
REPLICAS, BATCH, CHAINS = 10, 10, 100
N_V, N_1, N_2 = 400, 400, 676


def gemm_rate(rows: int, k: int, n: int, repeats: int = 400) -> float:
    """Best multiply-adds per second of (rows × k) @ (k × n) on one thread, over 5 runs."""
    a, w = torch.rand(rows, k), torch.randn(k, n)
    best = float("inf")
    for _ in range(5):
        for _ in range(10):
            torch.mm(a, w)
        t = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, w)
        best = min(best, (time.perf_counter() - t) / repeats)
    return rows * k * n / best


def bandwidth(n_floats: int, threads: int) -> float:
    """Best bytes per second of ``a += b ⊙ c`` over float32 tensors of ``n_floats`` (16 bytes per element)."""
    torch.set_num_threads(threads)
    a, b, c = torch.rand(n_floats), torch.rand(n_floats), torch.rand(n_floats)
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        a.addcmul_(b, c)
        best = min(best, time.perf_counter() - t)
    torch.set_num_threads(1)
    return 16 * n_floats / best


def elementwise_rates(n: int = 2**22) -> tuple[float, float]:
    """Best one-core (logistic functions per second, float32 uniforms per second) over arrays of ``n``."""
    x = torch.randn(n)
    gen = np.random.Generator(np.random.SFC64(0))
    out = np.empty(n, dtype=np.float32)
    t_sig = t_uni = float("inf")
    for _ in range(10):
        t = time.perf_counter()
        torch.sigmoid(x, out=x)
        t_sig = min(t_sig, time.perf_counter() - t)
        t = time.perf_counter()
        gen.random(n, dtype=np.float32, out=out)
        t_uni = min(t_uni, time.perf_counter() - t)
    return n / t_sig, n / t_uni


def mean_field_iterations(threads: int, trained: Path | None) -> float:
    """Mean-field iterations per pattern in ``bench_speed.py``'s timed training with this checkout:
    its ``dbm`` state, or ``retrain`` on the trained DBM in the folder ``trained``."""
    what = "dbm" if trained is None else "retrain"
    return bench_speed.measure(ROOT, what, threads, bench_speed.DEFAULT_SIZE[what],
                               (trained or ROOT).resolve())["mean_field_iterations"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="cores, all busy (default: all)")
    ap.add_argument("--iterations", type=float, default=None,
                    help="mean-field iterations per pattern (default: measured in bench_speed.py's run, ≈ 1 min)")
    ap.add_argument("--trained", type=Path, default=None,
                    help="measure them in bench_speed.py's retrain on this trained DBM (its --trained folder)")
    ap.add_argument("--sparse-w1", action="store_true", help="count the receptive-field W₁ products as free")
    ap.add_argument("--baseline-seconds", type=float, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    its = args.iterations if args.iterations is not None else mean_field_iterations(args.threads, args.trained)
    r_mf = max(gemm_rate(rows, N_1, N_2) for rows in range(1, BATCH + 1))
    r_mfT = max(gemm_rate(rows, N_2, N_1) for rows in range(1, BATCH + 1))
    r_12, r_21 = gemm_rate(CHAINS, N_1, N_2), gemm_rate(CHAINS, N_2, N_1)
    r_01 = gemm_rate(CHAINS, N_V, N_1)
    r_g, r_g1 = gemm_rate(N_1, BATCH + CHAINS, N_2), gemm_rate(N_V, BATCH + CHAINS, N_1)
    w1 = 0.0 if args.sparse_w1 else 1.0
    n_w1 = int(bp.receptive_field_mask(20, 20, 5).sum()) if args.sparse_w1 else N_V * N_1
    params = REPLICAS * (n_w1 + N_1 * N_2 + N_V + N_1 + N_2)
    bw = bandwidth(params, args.threads)
    per_replica = {   # seconds per update and replica on one core
        "mean field": BATCH * its * N_1 * N_2 * (1 / r_mf + 1 / r_mfT),
        "PCD sweep": CHAINS * N_1 * N_2 * (1 / r_12 + 1 / r_21) + w1 * 2 * CHAINS * N_V * N_1 / r_01,
        "gradient": (BATCH + CHAINS) * (N_1 * N_2 / r_g + w1 * N_V * N_1 / r_g1),
    }
    print(f"{args.threads} cores; mean field {its:.1f} iterations per pattern; best one-core GEMM rates "
          f"(G multiply-adds/s): mean field {r_mf / 1e9:.0f} / {r_mfT / 1e9:.0f} (≤ {BATCH} rows), "
          f"sweep {r_12 / 1e9:.0f} / {r_21 / 1e9:.0f} / {r_01 / 1e9:.0f}, gradient {r_g / 1e9:.0f}")
    r_sig, r_uni = elementwise_rates()
    sweep_units = CHAINS * (N_V + N_1 + N_2)
    per_replica["elementwise"] = (BATCH * its * (N_1 + N_2) + sweep_units) / r_sig + sweep_units / r_uni
    epochs = {name: sec * REPLICAS * UPDATES / args.threads for name, sec in per_replica.items()}
    epochs["update"] = 24 * params * UPDATES / bw
    total = sum(epochs.values())
    for name, sec in epochs.items():
        print(f"  {name:10s} ≥ {sec:6.1f} s per epoch")
    print(f"  (memory bandwidth {bw / 1e9:.0f} GB/s over {params / 1e6:.1f} M parameters; one core: "
          f"{r_sig / 1e9:.2f} G logistic functions/s, {r_uni / 1e9:.2f} G uniforms/s)")
    print(f"  {'all':10s} ≥ {total:6.1f} s per 60,000-pattern epoch ({REPLICAS} replicas, batch {BATCH})"
          + (" with W₁ free" if args.sparse_w1 else ""))
    if args.baseline_seconds:
        print(f"  largest possible speed-up over {args.baseline_seconds:.0f} s: {args.baseline_seconds / total:.2f}×")


if __name__ == "__main__":
    main()
