"""Speed and memory of the Fisher-information estimators (issue 5 targets).

Targets, on the project's 2-core CPU:

1. exact FIM of a 13 × 70 RBM (P = 993) ≤ 5 s;
2. the paper's FI sampling budget for that RBM, 90,000 samples × 200 Gibbs sweeps
   (``bp.sample``, independent chains) ≤ 10 s;
3. variance and heuristic FI of both layers of a 400–400–676 network from 60,000 samples
   ≤ 10 s (random 0/1 samples in layer-shaped chunks: the estimators' cost does not depend
   on where the samples come from);
4. a population of 70 replicas of 400–400–676 at 60,000 samples each, streamed through
   :class:`bmprune.fisher.SampleStatistics` in chunks, under 4 GiB peak memory (peak RSS of
   a fresh process, from ``resource.getrusage``).

Usage::

    python benchmarks/bench_fisher.py [--threads N] [--only exact,sampling,dbm,population]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

import bmprune as bp

SIZES = (400, 400, 676)


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _paper_rbm() -> bp.RBM:
    return bp.RBM(13, 70, seed=0, hidden_bias=-2.0, visible_bias=0.0)


def bench_exact() -> None:
    rbm = _paper_rbm()
    t = _best(lambda: bp.fisher.exact_fim(rbm), 3)
    print(f"exact FIM 13×70 (P = 993), R = 1: {t:.2f} s   (target ≤ 5 s)")
    rbm4 = bp.RBM(13, 70, n_replicas=4, seed=0, hidden_bias=-2.0)
    t4 = _best(lambda: bp.fisher.exact_fim(rbm4), 1)
    print(f"exact FIM 13×70, R = 4: {t4:.2f} s ({t4 / 4:.2f} s per replica)")


def bench_sampling() -> None:
    rbm = _paper_rbm()
    t = _best(lambda: bp.sample(rbm, 90_000, steps=200, seed=0), 1)
    print(f"FI sampling budget 13×70: 90,000 samples × 200 sweeps: {t:.2f} s   (target ≤ 10 s)")
    v, h = bp.sample(rbm, 90_000, steps=1, seed=0)
    t = _best(lambda: bp.fisher.fim_from_samples(v, h), 1)
    print(f"sampled FIM from those 90,000 samples: {t:.2f} s")


def _random_chunk(R: int, n: int, g: torch.Generator, rates=(0.3, 0.2, 0.1)):
    return tuple((torch.rand(R, n, k, generator=g) < p).float() for k, p in zip(SIZES, rates))


def bench_dbm(n_samples: int = 60_000, chunk: int = 10_000) -> None:
    g = torch.Generator().manual_seed(0)
    chunks = [_random_chunk(1, min(chunk, n_samples - s), g) for s in range(0, n_samples, chunk)]
    W = [torch.randn(1, SIZES[l], SIZES[l + 1], generator=g) * 0.1 for l in range(2)]

    def run():
        stats = bp.fisher.SampleStatistics()
        for c in chunks:
            stats.update(c)
        return [(stats.variance_fi(l), stats.heuristic_fi(l, W[l])) for l in range(2)]

    t = _best(run, 2)
    print(f"variance + heuristic FI, 400–400–676, {n_samples:,} samples (streamed, both layers): {t:.2f} s   "
          f"(target ≤ 10 s)")
    full = tuple(torch.cat([c[i] for c in chunks], dim=1) for i in range(3))

    def raw():
        for l in range(2):
            bp.fisher.variance_fi(full[l], full[l + 1])
            bp.fisher.heuristic_fi(full[l], full[l + 1], W[l])

    print(f"  same from raw samples held in memory (free functions): {_best(raw, 1):.2f} s")


def bench_population(R: int = 70, n_samples: int = 60_000, chunk: int = 500) -> dict:
    """Run in a fresh process: ru_maxrss is the peak of the whole process."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g = torch.Generator().manual_seed(0)
    W = [torch.randn(R, SIZES[l], SIZES[l + 1], generator=g) * 0.1 for l in range(2)]
    stats = bp.fisher.SampleStatistics()
    t0 = time.perf_counter()
    t_gen = 0.0
    for s in range(0, n_samples, chunk):
        tg = time.perf_counter()
        c = _random_chunk(R, min(chunk, n_samples - s), g)
        t_gen += time.perf_counter() - tg
        stats.update(c)
    del c
    peak_accumulate = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fis = [(stats.variance_fi(l), stats.heuristic_fi(l, W[l])) for l in range(2)]
    t = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"R": R, "n_samples": n_samples, "chunk": chunk, "seconds": t, "generation_seconds": t_gen,
            "peak_rss_mib": peak / 1024, "peak_accumulate_mib": peak_accumulate / 1024, "baseline_rss_mib": rss0 / 1024,
            "fi_shapes": [list(f[0].shape) for f in fis]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--only", default="exact,sampling,dbm,population")
    ap.add_argument("--population-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--replicas", type=int, default=70)
    ap.add_argument("--n-samples", type=int, default=60_000)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.population_worker:
        print(json.dumps(bench_population(args.replicas, args.n_samples)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    parts = args.only.split(",")
    if "exact" in parts:
        bench_exact()
    if "sampling" in parts:
        bench_sampling()
    if "dbm" in parts:
        bench_dbm()
    if "population" in parts:
        cmd = [sys.executable, __file__, "--population-worker", "--replicas", str(args.replicas),
               "--n-samples", str(args.n_samples)] + (["--threads", str(args.threads)] if args.threads else [])
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"population R = {out['R']} × 400–400–676 × {out['n_samples']:,} samples, chunks of {out['chunk']}: "
              f"{out['seconds']:.0f} s ({out['generation_seconds']:.0f} s of it generating random samples); "
              f"peak RSS {out['peak_rss_mib']:.0f} MiB (after streaming the samples {out['peak_accumulate_mib']:.0f} MiB; "
              f"baseline {out['baseline_rss_mib']:.0f} MiB)   (target < 4096 MiB)")


if __name__ == "__main__":
    main()
