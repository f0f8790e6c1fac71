"""Brute-force references for exact-math tests (independent of bmprune's own enumeration)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

import bmprune as bp


def all_states(n: int) -> torch.Tensor:
    """All 2^n binary vectors (2^n, n) float64, via itertools: independent of bmprune's enumeration."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64).reshape(-1, n)


def brute_force_joint(rbm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact joint distribution of a tiny RBM by enumerating every (v, h).

    Returns V (Sv, nv), H (Sh, nh) and P (R, Sv, Sh) float64 with P summing to 1 per replica.
    Dead hidden units are clamped off: joint states with a dead unit on get probability 0.
    """
    V, H = all_states(rbm.n_visible), all_states(rbm.n_hidden)
    W, b_v, b_h = rbm.W.double(), rbm.b_v.double(), rbm.b_h.double()
    neg_e = (V @ b_v.T).T[:, :, None] + (H @ b_h.T).T[:, None, :] + torch.einsum("si,rij,tj->rst", V, W, H)
    dead_on = (H @ (~rbm.alive[1]).double().T).T > 0                  # (R, Sh)
    neg_e = neg_e.masked_fill(dead_on[:, None, :], -np.inf)
    log_z = torch.logsumexp(neg_e.reshape(neg_e.shape[0], -1), dim=1)
    return V, H, torch.exp(neg_e - log_z[:, None, None])


def brute_force_log_z(rbm) -> torch.Tensor:
    V, H = all_states(rbm.n_visible), all_states(rbm.n_hidden)
    W, b_v, b_h = rbm.W.double(), rbm.b_v.double(), rbm.b_h.double()
    neg_e = (V @ b_v.T).T[:, :, None] + (H @ b_h.T).T[:, None, :] + torch.einsum("si,rij,tj->rst", V, W, H)
    dead_on = (H @ (~rbm.alive[1]).double().T).T > 0
    neg_e = neg_e.masked_fill(dead_on[:, None, :], -np.inf)
    return torch.logsumexp(neg_e.reshape(neg_e.shape[0], -1), dim=1)


def exact_moments(rbm):
    """Exact ⟨v_i⟩ (R,nv), ⟨h_j⟩ (R,nh), ⟨v_i h_j⟩ (R,nv,nh) from the brute-force joint."""
    V, H, P = brute_force_joint(rbm)
    pv, ph = P.sum(2), P.sum(1)
    return pv @ V, ph @ H, torch.einsum("rst,si,tj->rij", P, V, H)


def random_rbm(nv, nh, R=2, seed=0, std=1.0, mask_density=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mask = None
    if mask_density is not None:
        mask = torch.rand(R, nv, nh, generator=g) < mask_density
    rbm = bp.RBM(nv, nh, n_replicas=R, weight_mask=mask, seed=seed, weight_std=std, dtype=dtype,
                 visible_bias=torch.randn(R, nv, generator=g) * 0.5, hidden_bias=torch.randn(R, nh, generator=g) * 0.5)
    return rbm


def bars_and_stripes(n: int = 4) -> np.ndarray:
    """All n×n bars-and-stripes patterns, (2^(n+1) − 2, n²) uint8."""
    pats = set()
    for bits in itertools.product([0, 1], repeat=n):
        rows = np.repeat(np.array(bits)[:, None], n, axis=1)
        pats.add(tuple(rows.ravel()))
        pats.add(tuple(rows.T.ravel()))
    return np.array(sorted(pats), dtype=np.uint8)


# --- deep Boltzmann machines ------------------------------------------------------------
R_DBM = 2


def joint_states(sizes):
    """Every joint binary state of all layers, split per layer: list of (S, n_l) float64."""
    s = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(sizes))), dtype=torch.float64)
    return list(torch.split(s, list(sizes), dim=1))


def brute_neg_energy(dbm, xs):
    """−E for every state and replica, (R, S) float64; states with a dead unit on get −inf."""
    neg = sum((xl @ b.double().T).T for xl, b in zip(xs, dbm.b))
    for l, w in enumerate(dbm.W):
        neg = neg + torch.einsum("si,rij,sj->rs", xs[l], w.double(), xs[l + 1])
    dead_on = sum((xl @ (~a).double().T).T for xl, a in zip(xs, dbm.alive)) > 0
    return neg.masked_fill(dead_on, -math.inf)


def brute_log_z(dbm):
    return torch.logsumexp(brute_neg_energy(dbm, joint_states(dbm.layer_sizes)), dim=1)


def random_dbm(sizes, R=R_DBM, seed=0, std=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed + 100)
    biases = [torch.randn(R, n, generator=g, dtype=torch.float64) * 0.5 for n in sizes]
    return bp.DBM(sizes, n_replicas=R, seed=seed, weight_std=std, biases=biases, dtype=dtype)


