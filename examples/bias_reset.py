"""The thesis's homeostatic bias reset (§4.2.2.1) on a finished DBM run: encoding error right after
one pruning step, with and without resetting the hidden biases to the units' mean activations.

Takes the trained population of a run directory (e.g. ``examples/paper-dbm-mnist-cpu.toml``),
one network per seed, draws model samples as the run did (its sampling settings), prunes each
network once by a criterion at the run's first-iteration rates — once keeping the biases, once
with ``reset_hidden_bias`` — and measures the encoding error of both before any retraining,
with the run's classifier settings. Same samples and same pruned weights in both arms: only
the biases differ.

Run: ``python examples/bias_reset.py runs/dbm-cpu-original [--criterion variance_fi]``
(about 5 minutes on a 2-core CPU for 3 seeds). Needs the real MNIST files (BMPRUNE_DATA_DIR).
"""

from __future__ import annotations

import argparse

import numpy as np

import bmprune as bp
from bmprune.experiments import load_config
from bmprune.experiments.runner import load_study_data, replica_streams
from bmprune.experiments.schedule import build_schedule
from bmprune.models import load_model
from bmprune.pruning import PruneOptions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--criterion", default="variance_fi")
    args = ap.parse_args()
    cfg = load_config(f"{args.run_dir}/config.toml")
    train, test = load_study_data(cfg)
    model = load_model(f"{args.run_dir}/checkpoints/iter00-trained.safetensors")
    trained = model.replicas(list(range(cfg.seeds)))              # the clones of a seed are identical
    keys = [(cfg.seed + s, args.criterion) for s in range(cfg.seeds)]
    samples = bp.sample(trained, cfg.sampling.n_samples, seed=replica_streams(keys, 1, "sampled"),
                        **cfg.sampling.kwargs())
    step = build_schedule(cfg)[1]
    ev = cfg.evaluation
    results = {}
    for reset in (False, True):
        pruned = trained.clone()
        bp.pruning.prune(pruned, args.criterion, list(step.percent), samples, seed=replica_streams(keys, 1, "pruned"),
                         options=PruneOptions(reset_hidden_bias=reset))
        results[reset] = bp.evaluation.encoding_error(pruned, train, test, C=ev.encoding_C, max_iter=ev.classifier_max_iter,
                                                      n_train=ev.classifier_n_train, seed=cfg.seed,
                                                      mf_max_iter=ev.mf_max_iter)
    before = bp.evaluation.encoding_error(trained, train, test, C=ev.encoding_C, max_iter=ev.classifier_max_iter,
                                          n_train=ev.classifier_n_train, seed=cfg.seed, mf_max_iter=ev.mf_max_iter)
    print(f"encoding error (%, {cfg.seeds} seeds, {args.criterion}, rates {step.percent}, right after pruning):")
    for name, v in (("unpruned", before), ("pruned, biases kept", results[False]), ("pruned, biases reset", results[True])):
        print(f"  {name:22s} {100 * np.mean(v):6.2f} ({100 * np.std(v, ddof=1) if len(v) > 1 else float('nan'):.2f})"
              f"   per seed: {', '.join(f'{100 * x:.2f}' for x in v)}")


if __name__ == "__main__":
    main()
