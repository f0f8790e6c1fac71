"""Side-by-side speed of this checkout and another one (e.g. the round's starting commit): issue 18.

Times, in one run and on the same machine, for each source tree:

* ``dbm``: joint DBM training of 10 replicas of the paper's 400–400–676 MNIST DBM (5×5
  receptive fields) at batch 10 (the paper's retraining), 100 persistent chains, after a
  brief pre-training; seconds per 60,000-pattern epoch, the updates extrapolated from ``--size``
  patterns and the epoch's fixed cost (the reconstruction error, ≈ 1.4 s) counted once.
* ``retrain``: the same training of 10 clones of one *trained* DBM and its persistent chains at
  learning rate 0.01, as retraining after pruning starts (the workload that runs at batch 10 in
  the paper); the DBM is trained once (``PREPARE``, ≈ 3 min) into ``--trained``.
* ``sample``: independent-chain Gibbs sampling of 10 replicas of a 13 × 70 RBM (the paper's
  CIFAR model, briefly trained on photo patches), 10,000 chains × 200 sweeps.
* ``stage``: the same for 70 replicas (untrained), 10,000 chains × 200 sweeps — one of the nine
  chunks of a sampling stage of ``paper-rbm-cifar --seeds 10``, where each layer's tensors are
  above glibc's 32 MB mmap threshold.
* ``cd``: one CD-1 epoch at batch size 1 of 70 replicas of the 13 × 70 RBM on 20,000 patches.

Each measurement runs in a fresh subprocess with ``PYTHONPATH=<tree>/src``, alternating trees,
``--repeats`` times; the median is reported. Make the baseline tree with
``git worktree add /tmp/bmprune-base <commit>`` (this round started at 9ac8afc).

Run: ``python benchmarks/bench_speed.py --baseline /tmp/bmprune-base [--threads 2] [--only dbm sample]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

WORKER = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    import bmprune as bp
    what, threads, patterns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    out = {"file": bp.__file__}
    if what in ("dbm", "retrain"):
        try:
            x = np.asarray(bp.data.load_mnist("train").x)
        except Exception:
            x = (np.random.default_rng(0).random((60000, 400)) < 0.2).astype(np.uint8)
        if what == "dbm":
            dbm, rbms = bp.training.pretrain_dbm(
                x[:5000], [400, 400, 676], weight_masks=[bp.receptive_field_mask(20, 20, 5), None], epochs=1,
                batch_size=10, learning_rate=[[0.01], [0.1]], momentum=0.5, seed=0, n_replicas=10,
                visible_bias=-1.0, hidden_bias=-2.0)
            chains = bp.training.chains_from_rbms(rbms, x[:100], seed=1)
            bp.training.train_dbm(dbm, x[5000:7000], epochs=1, batch_size=10, learning_rate=0.005, momentum=0.5,
                                  n_chains=100, init_chains_from=chains, seed=2, mf_max_iter=50)
            kw = dict(learning_rate=0.005, n_chains=100)
        else:   # 10 clones of one trained DBM (PREPARE) and its persistent chains, as retraining starts
            from safetensors.torch import load_file
            dbm = bp.load_model(sys.argv[4] + "/dbm.safetensors").replicas([0] * 10)
            saved = load_file(sys.argv[4] + "/chains.safetensors")
            kw = dict(learning_rate=0.01, init_chains_from=[saved[f"chains.{l}"].expand(10, -1, -1).clone()
                                                           for l in range(len(saved))])
        # the epoch's fixed cost (reconstruction error: mean field on 500 patterns) is counted once,
        # not extrapolated with the updates
        mod, fixed = sys.modules["bmprune.training.dbm"], []
        recon = mod._reconstruction_error
        def timed_recon(*a, **k):
            t0 = time.perf_counter()
            r = recon(*a, **k)
            fixed.append(time.perf_counter() - t0)
            return r
        mod._reconstruction_error = timed_recon
        t = time.perf_counter()
        res = bp.training.train_dbm(dbm, x[10000:10000 + patterns], epochs=1, batch_size=10, momentum=0.5,
                                    seed=3, **kw)
        total = time.perf_counter() - t
        out["seconds"] = (total - sum(fixed)) * 60000 / patterns + sum(fixed)
        out["epoch_fixed_seconds"] = sum(fixed)
        out["mean_field_iterations"] = res.history[0]["mean_field_iterations"]
    elif what == "sample":
        photos = bp.data.load_photo_patches(radius=2.1, n_patches=20000, seed=0)
        rbm = bp.RBM(13, 70, n_replicas=10, seed=0, hidden_bias=-2.0).init_visible_bias(photos.x)
        bp.training.train_rbm(rbm, photos.x, epochs=1, batch_size=10, learning_rate=0.05, momentum=0.5, seed=1)
        t = time.perf_counter()
        v, h = bp.sample(rbm, patterns, steps=200, seed=2)
        out["seconds"] = time.perf_counter() - t
        out["mean_v"] = float(v.mean())
    elif what == "stage":
        # one 10,000-chain chunk of the CIFAR sampling stage: all 70 replicas of paper-rbm-cifar
        rbm = bp.RBM(13, 70, n_replicas=70, seed=0, hidden_bias=-2.0)
        t = time.perf_counter()
        v, h = bp.sample(rbm, patterns, steps=200, seed=2)
        out["seconds"] = time.perf_counter() - t
        out["mean_v"] = float(v.mean())
    elif what == "cd":
        photos = bp.data.load_photo_patches(radius=2.1, n_patches=patterns, seed=0)
        rbm = bp.RBM(13, 70, n_replicas=70, seed=0, hidden_bias=-2.0).init_visible_bias(photos.x)
        t = time.perf_counter()
        bp.training.train_rbm(rbm, photos.x, epochs=1, batch_size=1, learning_rate=0.05, momentum=0.9, seed=1)
        out["seconds"] = time.perf_counter() - t
    print(json.dumps(out))
""")

DEFAULT_SIZE = {"dbm": 1000, "retrain": 1000, "sample": 10000, "stage": 10000, "cd": 20000}

# The trained DBM of ``retrain``: one replica of the paper's MNIST DBM trained as the reduced CPU
# variant of paper-dbm-mnist does (examples/paper-dbm-mnist-cpu.toml: 2 pre-training epochs per
# RBM at batch 1, 4 joint epochs at batch 10, the original update rule), ≈ 3 min on 2 cores.
PREPARE = textwrap.dedent("""
    import sys, numpy as np, torch
    import bmprune as bp
    from safetensors.torch import save_file
    torch.set_num_threads(int(sys.argv[2]))
    x = np.asarray(bp.data.load_mnist("train").x)
    dbm, rbms = bp.training.pretrain_dbm(
        x, [400, 400, 676], weight_masks=[bp.receptive_field_mask(20, 20, 5), None], epochs=2, batch_size=1,
        learning_rate=[[0.01, 0.01, 0.001], [0.1, 0.1, 0.01]], momentum=0.5, update_rule="original", seed=0,
        n_replicas=1, visible_bias=-1.0, hidden_bias=-2.0)
    chains = bp.training.chains_from_rbms(rbms, x[:100], seed=1)
    res = bp.training.train_dbm(dbm, x, epochs=4, batch_size=10,
                                learning_rate=[0.01, 0.01, 0.004641588833612777, 0.002154434690031884, 0.001],
                                momentum=0.5, update_rule="original", n_chains=100, init_chains_from=chains, seed=2)
    bp.save_model(dbm, sys.argv[1] + "/dbm.safetensors")
    save_file({f"chains.{l}": c.contiguous() for l, c in enumerate(res.persistent_chains)},
              sys.argv[1] + "/chains.safetensors")
""")


def measure(tree: Path, what: str, threads: int, size: int, trained: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    res = subprocess.run([sys.executable, "-c", WORKER, what, str(threads), str(size), str(trained)], env=env,
                         cwd="/", capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="another checkout (its src/ is imported)")
    ap.add_argument("--current", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="+", choices=list(DEFAULT_SIZE), default=list(DEFAULT_SIZE))
    ap.add_argument("--size", type=int, default=None, help="patterns (dbm, retrain, cd) or chains (sample, stage)")
    ap.add_argument("--trained", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "bench-trained-dbm",
                    help="folder of retrain's trained DBM (made there with the current tree when missing)")
    args = ap.parse_args()
    if "retrain" in args.only and not (args.trained / "chains.safetensors").exists():
        print(f"training retrain's DBM into {args.trained} (≈ 3 min on 2 cores) …", flush=True)
        args.trained.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-c", PREPARE, str(args.trained.resolve()), str(args.threads)], check=True,
                       env={**os.environ, "PYTHONPATH": str(args.current / "src")})
    print(f"threads {args.threads}, {args.repeats} repeats (median); baseline {args.baseline}, current {args.current}")
    for what in args.only:
        size = args.size or DEFAULT_SIZE[what]
        times = {"baseline": [], "current": []}
        for _ in range(args.repeats):
            for name in ("baseline", "current"):
                r = measure(getattr(args, name), what, args.threads, size, args.trained.resolve())
                times[name].append(r["seconds"])
        b, c = statistics.median(times["baseline"]), statistics.median(times["current"])
        unit = "s per 60,000-pattern epoch" if what in ("dbm", "retrain") else "s"
        print(f"{what:7s} baseline {b:8.1f}  current {c:8.1f}  {unit};  speed-up {b / c:4.2f}×   "
              f"(runs: {', '.join(f'{x:.1f}' for x in times['baseline'])} | {', '.join(f'{x:.1f}' for x in times['current'])})")


if __name__ == "__main__":
    main()
