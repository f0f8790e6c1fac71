"""Time the paper's workloads on a CUDA device and extrapolate the full paper (issue 18 item 5).

Measures, each bounded to well under a minute (``--budget`` seconds of work per item):

* the CIFAR importance-sampling stage of 70 replicas: 90,000 independent chains × 200 sweeps of
  13 × 70 RBMs (one 10,000-chain chunk timed, scaled to 9);
* a CD-1 epoch at batch size 1 of 70 replicas on 90,000 patterns (updates timed, scaled);
* one epoch of joint DBM training (400–400–676, 5×5 fields, 100 chains) at batch 1 and at
  batch 10 for 10 and 60 replicas (updates timed, scaled to 60,000 patterns);
* a DBM sampling stage (1,000 persistent chains, 60 snapshots × 200 sweeps) of 60 replicas;
* the encoding features (mean field on 70,000 images) of 60 replicas;

then prints the extrapolated time of ``paper-rbm-cifar --seeds 10`` and ``paper-dbm-mnist``
(classifier fits on the CPU not included). MNIST is read from BMPRUNE_DATA_DIR when present
(random patterns otherwise: the timings barely depend on the data).

Run: ``bash benchmarks/device_check.sh`` (on the device machine; about 5–8 min).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

import bmprune as bp


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t, out


def mnist(n):
    try:
        return np.asarray(bp.data.load_mnist("train", verify=False).x[:n])
    except Exception:
        return (np.random.default_rng(0).random((n, 400)) < 0.15).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--updates", type=int, default=2000, help="updates timed per training measurement")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check that the script runs (e.g. on a CPU)")
    args = ap.parse_args()
    dev = args.device
    res: dict[str, float] = {}
    print(f"torch {torch.__version__}, device {dev}: {torch.cuda.get_device_name() if dev.startswith('cuda') else 'cpu'}",
          flush=True)

    # --- CIFAR RBM ---------------------------------------------------------------------
    small = args.smoke
    x13 = (np.random.default_rng(1).random((90_000, 13)) < 0.45).astype(np.uint8)
    rbm = bp.RBM(13, 70, n_replicas=2 if small else 70, seed=0, hidden_bias=-2.0, device=dev).init_visible_bias(x13)
    t, _ = timed(lambda: bp.sample(rbm, 100 if small else 10_000, steps=200, seed=1))
    res["cifar_sampling_stage_R70"] = 9 * t
    n = args.updates
    t, _ = timed(lambda: bp.training.train_rbm(rbm, x13[:n], epochs=1, batch_size=1, learning_rate=0.01, momentum=0.9))
    res["cifar_cd_epoch_R70_b1"] = t * 90_000 / n
    print({k: round(v, 1) for k, v in res.items()}, flush=True)

    # --- MNIST DBM ---------------------------------------------------------------------
    x = mnist(70_000)
    mask = bp.receptive_field_mask(20, 20, 5)
    for label, R in ((10, 2), (60, 3)) if small else ((10, 10), (60, 60)):
        dbm = bp.DBM([400, 400, 676], n_replicas=R, weight_masks=[mask, None], seed=0, device=dev,
                     biases=[-1.0, -2.0, -2.0])
        bp.training.train_dbm(dbm, x[:500], epochs=1, batch_size=10, learning_rate=0.01, n_chains=100, seed=0)  # warm-up
        for B, m in ((1, n), (10, max(200, n // 4))):
            t, r = timed(lambda: bp.training.train_dbm(dbm, x[: m * B], epochs=1, batch_size=B, learning_rate=0.001,
                                                       momentum=0.5, n_chains=100, seed=1))
            res[f"dbm_epoch_R{label}_b{B}"] = t * 60_000 / (m * B)
            res[f"dbm_mf_iterations_R{label}_b{B}"] = r.history[0]["mean_field_iterations"]
        print({k: round(v, 1) for k, v in res.items() if k.startswith("dbm")}, flush=True)
    n_snap = 2 if small else 10_000
    t, _ = timed(lambda: [None for _ in bp.iter_samples(dbm, n_snap, mode="persistent", n_chains=min(1000, n_snap),
                                                        steps=200, burn_in=200, seed=2)])
    res["dbm_sampling_stage_R60"] = t * 60_000 / max(n_snap, 1000)
    n_img = 200 if small else 20_000
    t, _ = timed(lambda: [dbm.transform(torch.as_tensor(x[s:s + 10_000], device=dev).float())
                          for s in range(0, n_img, 10_000)])
    res["dbm_encoding_features_R60"] = t * 70_000 / n_img

    # --- the full paper ----------------------------------------------------------------
    cifar = (res["cifar_sampling_stage_R70"] * (3 + 10 / 70)                  # 3 stages of 70, stage 0 per seed
             + res["cifar_cd_epoch_R70_b1"] * (2 * 10 / 70 + 3 * 2))          # training (10 nets), 3 retrainings
    # paper-dbm-mnist: 7 criteria × 10 seeds = 70 replicas; joint training of the 10 trained networks
    # (20 epochs, batch 1); 10 iterations of 10 retraining epochs at batch 10 (70 replicas);
    # 11 sampling stages and 21 encodings (per replica: scaled from 60 to 70). Pre-training ≈ 2 RBMs
    # × 20 epochs at batch 1, bounded here by the DBM epoch of 10 replicas.
    dbm_total = (res["dbm_epoch_R10_b1"] * (20 + 2 * 20)
                 + res["dbm_epoch_R60_b10"] * 70 / 60 * 10 * 10
                 + res["dbm_sampling_stage_R60"] * 70 / 60 * 11
                 + res["dbm_encoding_features_R60"] * 70 / 60 * 21)
    res["paper_rbm_cifar_seeds10"] = cifar
    res["paper_dbm_mnist"] = dbm_total
    for k, v in res.items():
        print(f"{k:34s} {v:10.1f} {'s' if 'iterations' not in k else ''}")
    print(f"extrapolated: paper-rbm-cifar --seeds 10 ≈ {cifar / 60:.1f} min; paper-dbm-mnist ≈ {dbm_total / 3600:.2f} h "
          "(+ scikit-learn classifiers on the CPU)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
