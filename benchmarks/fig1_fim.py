"""Fig 1 evidence on real data: the FIM of the paper's 13 × 70 CIFAR RBM (SPEC §7, Fig 1).

Trains the paper's RBM on 90,000 binary 13-pixel circular CIFAR-10 patches (CD-1, 2 epochs,
batch 1, learning rate 0.1 then 0.01, momentum 0.9, W ~ N(0, 0.1²), b_h = −2,
b_v = logit(data mean); SPEC §2–§3), then reports

* λ₁, λ₂ of the exact FIM (enumeration, SPEC §4) and of the sampled FIM (90,000 samples,
  independent chains of 200 Gibbs sweeps; paper: λ₁ = 23.97, λ₂ = 1.60);
* the correlation between diagonal (variance FI) and leading-eigenvector importance of the
  weights, from the exact FIM (Pearson and Spearman), and how concentrated the importance
  is on a few hidden units.

Usage::

    BMPRUNE_DATA_DIR=../shared/data python benchmarks/fig1_fim.py [--seeds 0 1 2] [--n-samples 90000]

Observed (3 seeds each): with SPEC §2's schedule λ₁ ≈ 2.8–3.6, λ₂ ≈ 1.4–1.7 (no rank-1
dominance); with ``--variant original`` λ₁ ≈ 10–25, λ₂ ≈ 1.2–1.8 (seed 0: 24.8 / 1.58), as
in the paper. The sampled FIM reproduces the exact eigenvalues in both cases.

The patches come from ``bp.data.load_cifar_patches``; a minimal reader of the binary batches
stands in where that loader is unavailable.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import bmprune as bp


def _fallback_patches(data_dir: Path, n_patches: int, seed: int, radius: float = 2.1) -> np.ndarray:
    """SPEC §3 from the raw binary batches: grey = R+G+B, ≥ global median → 1, 13-pixel circles."""
    files = sorted((data_dir / "cifar-10" / "cifar-10-batches-bin").glob("data_batch_*.bin"))
    raw = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 3073) for f in files])
    grey = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.int32).sum(1)             # (n_img, 32, 32)
    binary = (grey >= np.median(grey)).astype(np.uint8)
    d = np.arange(-3, 4)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    sel = dy ** 2 + dx ** 2 <= radius ** 2
    offy, offx = dy[sel], dx[sel]                                                   # 13 offsets, row-major
    centers = np.array([3, 8, 13, 18, 23, 28])
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(binary) * 36, size=n_patches, replace=False)
    img, c = pick // 36, pick % 36
    cy, cx = centers[c // 6], centers[c % 6]
    return binary[img[:, None], cy[:, None] + offy, cx[:, None] + offx]


def load_patches(n_patches: int, seed: int) -> np.ndarray:
    try:
        return np.asarray(bp.data.load_cifar_patches(radius=2.1, n_patches=n_patches, seed=seed).x)
    except (AttributeError, ImportError) as exc:  # loader not there yet: read the batches ourselves
        print(f"(bp.data.load_cifar_patches unavailable: {exc}; using the fallback reader)")
        return _fallback_patches(Path(os.environ.get("BMPRUNE_DATA_DIR", "../shared/data")), n_patches, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-samples", type=int, default=90_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 is fastest for batch-1 CD)")
    ap.add_argument("--variant", choices=["spec", "original"], default="spec",
                    help="the update rule (SPEC §2): 'spec' = classical momentum with the text's schedule; "
                         "'original' = update_rule 'original' (v ← lr(μv + g), schedule entry min(e+1, n−1))")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rule = "classical" if args.variant == "spec" else "original"
    lr, mom = [0.1, 0.01], 0.9
    print(f"variant {args.variant}: learning rate {lr}, momentum {mom}, update_rule {rule!r}")
    x = load_patches(90_000, seed=0)
    print(f"patches: {x.shape}, mean activity {x.mean():.3f}")
    for seed in args.seeds:
        rbm = bp.RBM(13, 70, seed=seed, hidden_bias=-2.0).init_visible_bias(x)
        t0 = time.perf_counter()
        bp.training.train_rbm(rbm, x, epochs=2, batch_size=1, learning_rate=lr, momentum=mom, k=1, seed=seed,
                              update_rule=rule)
        t_train = time.perf_counter() - t0

        t0 = time.perf_counter()
        fim = bp.fisher.exact_fim(rbm)[0]                                          # (993, 993)
        t_exact = time.perf_counter() - t0
        lam = bp.fisher.leading_eigenvalues(fim, 2)
        u1 = bp.fisher.eigenvector_importance(fim, 13, 70)
        diag = bp.fisher.fim_diagonal(fim, 13, 70)

        t0 = time.perf_counter()
        v, h = bp.sample(rbm, args.n_samples, steps=args.steps, seed=seed + 1000)
        t_sample = time.perf_counter() - t0
        t0 = time.perf_counter()
        fim_s = bp.fisher.fim_from_samples(v, h)[0]
        t_sfim = time.perf_counter() - t0
        lam_s = bp.fisher.leading_eigenvalues(fim_s, 2)
        u1_s = bp.fisher.eigenvector_importance(fim_s, 13, 70)

        d, e = diag.W.flatten().numpy(), u1.W.flatten().numpy()
        pearson = np.corrcoef(d, e)[0, 1]
        rank = lambda a: np.argsort(np.argsort(a))
        spearman = np.corrcoef(rank(d), rank(e))[0, 1]
        # concentration: share of Σ diag FI (and of Σ u1²) carried by the top 10 % hidden units
        per_unit_d = np.sort(diag.W.sum(0).numpy())[::-1]
        per_unit_e = np.sort((u1.W ** 2).sum(0).numpy())[::-1]
        top = max(1, len(per_unit_d) // 10)
        u_dot = float((u1.flat() * u1_s.flat()).sum())  # |⟨|u1_exact|, |u1_sampled|⟩|
        off = fim - torch.diag(torch.diagonal(fim))
        print(f"\nseed {seed}: trained in {t_train:.1f}s; exact FIM {t_exact:.2f}s; "
              f"{args.n_samples} samples × {args.steps} sweeps {t_sample:.1f}s; sampled FIM {t_sfim:.1f}s")
        print(f"  exact   λ1 = {lam[0]:.2f}, λ2 = {lam[1]:.2f}, ratio {lam[0] / lam[1]:.1f}   (paper 23.97, 1.60)")
        print(f"  sampled λ1 = {lam_s[0]:.2f}, λ2 = {lam_s[1]:.2f}, ratio {lam_s[0] / lam_s[1]:.1f}")
        print(f"  |u1| exact vs sampled overlap {u_dot:.4f}")
        print(f"  corr(diag FI, |u1|) over the 910 weights: Pearson {pearson:.3f}, Spearman {spearman:.3f}")
        print(f"  top {top} of 70 hidden units carry {per_unit_d[:top].sum() / per_unit_d.sum():.0%} of Σ diag FI "
              f"and {per_unit_e[:top].sum() / per_unit_e.sum():.0%} of Σ u1²")
        print(f"  sparsity: {float((off.abs() > 1e-3 * fim.abs().max()).double().mean()):.1%} of off-diagonal "
              f"entries above 1e-3 of the largest entry; mean hidden rate {float(h.mean()):.3f}")


if __name__ == "__main__":
    main()
