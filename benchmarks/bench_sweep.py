"""Time a sweep of 4 demo-sized points on Dask workers against running them serially (issue 17).

The points are the ``demo`` preset with 5 seeds (about 30 s per point on one free core;
``--seeds``) over a grid of 2 pruning rates × 2 seeds (``pruning.percent`` = 30, 50; ``seed`` =
0, 1). Serial: the 4 runs one after the other in this process with one torch thread. Sweep: :func:`bmprune.experiments.sweep.run_sweep` on a local cluster of
``--workers`` single-threaded worker processes, its wall time including starting the cluster
and merging the metrics, i.e. everything a user waits for. Both write ordinary run directories
in a temporary folder; the script checks that the two give the same numbers.

Target (issue 17): sweep ≤ 0.65 × serial on a 2-core CPU with 2 workers. Other jobs on the
same cores slow the parallel run more than the serial one; the load average is printed, and so
are the CPU times, from which the ratio on otherwise idle cores is estimated.

Run:  python benchmarks/bench_sweep.py [--workers 2] [--seeds 5] [--iterations 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import bmprune as bp
from bmprune.experiments.sweep import load_sweep, run_sweep


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5,
                    help="replicas per criterion in each point (demo: 3; 5 makes a point ≈ 30 s on one free core)")
    ap.add_argument("--iterations", type=int, default=3, help="pruning iterations of each point (demo: 3)")
    ap.add_argument("--order", choices=["serial-first", "sweep-first"], default="serial-first")
    args = ap.parse_args()

    sweep = load_sweep({"base": "demo", "set": {"seeds": args.seeds, "pruning.iterations": args.iterations},
                        "grid": {"pruning.percent": [30.0, 50.0], "seed": [0, 1]}})
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{len(sweep)} points of demo (seeds={args.seeds}, iterations={args.iterations})")

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)

        cpu: dict[str, float] = {}

        def serial() -> float:
            torch.set_num_threads(1)
            t, c = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
            for p in sweep.points:
                r = bp.run(p.config, root / "serial" / p.name)
                print(f"  serial {p.name}: {r.seconds:.1f} s", flush=True)
            cpu["serial"] = _cpu(resource.RUSAGE_SELF) - c
            return time.perf_counter() - t

        def swept() -> float:
            t, c, cc = time.perf_counter(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            seen: dict[str, float] = {}

            def progress(event, **info):
                if event == "point_start" and "first task" not in seen:
                    seen["first task"] = time.perf_counter() - t
                elif event == "point_done":
                    print(f"  sweep {info['point']}: {info['seconds']:.1f} s in its worker", flush=True)

            res = run_sweep(sweep, root / "sweep", workers=args.workers, threads_per_worker=1, progress=progress)
            assert res.ok, res.failed
            print(f"  sweep: first point started {seen.get('first task', float('nan')):.1f} s after the call "
                  "(cluster start, worker imports)")
            # the worker processes are children of this one, reaped when the cluster closes
            cpu["workers"] = _cpu(resource.RUSAGE_CHILDREN) - cc
            cpu["client"] = _cpu(resource.RUSAGE_SELF) - c
            return time.perf_counter() - t

        if args.order == "serial-first":
            t_serial, t_sweep = serial(), swept()
        else:
            t_sweep, t_serial = swept(), serial()

        worst = 0.0
        keys = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer"]
        for p in sweep.points:
            x = pd.read_parquet(root / "serial" / p.name / "metrics.parquet").sort_values(keys)
            y = pd.read_parquet(root / "sweep" / p.name / "metrics.parquet").sort_values(keys)
            worst = max(worst, float(np.max(np.abs(x["value"].to_numpy() - y["value"].to_numpy()))))

    print(f"serial (1 process, 1 thread): {t_serial:.1f} s")
    print(f"sweep ({args.workers} workers × 1 thread, incl. cluster start): {t_sweep:.1f} s")
    print(f"CPU time (user + sys): serial {cpu['serial']:.1f} s; sweep workers {cpu['workers']:.1f} s "
          f"(imports and Dask included) + {cpu['client']:.1f} s in this process (scheduler, client)")
    print(f"ratio sweep / serial: {t_sweep / t_serial:.2f} (target ≤ 0.65); largest |difference| of a metric "
          f"value between the two: {worst:.3g}; load average now {os.getloadavg()[0]:.2f}")
    # With other jobs on the cores the wall times say more about them than about the sweep. CPU
    # times do not depend on the load: the sweep's CPU spread over its workers, against the serial CPU,
    # is the ratio on otherwise idle cores (assuming the points balance over the workers).
    share = cpu["serial"] / t_serial
    print(f"this process got {share:.0%} of a core while running serially; CPU-bound estimate on idle cores: "
          f"ratio ≈ {(cpu['workers'] / args.workers) / cpu['serial']:.2f}")


if __name__ == "__main__":   # a local Dask cluster spawns its workers: the guard is required
    main()
