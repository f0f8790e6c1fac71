"""Contrastive divergence (CD-k) and persistent CD for RBM populations (SPEC §2).

ΔW = lr·(⟨v hᵀ⟩_data − ⟨v hᵀ⟩_model), likewise for the biases, averaged over the mini-batch;
momentum by one of the two update rules of :mod:`bmprune.training.schedules` ("classical":
velocity ← μ·velocity + lr·gradient; "original": velocity ← lr·(μ·velocity + gradient),
with the original code's schedule shift); param += velocity. Positive
statistics use p(h|v_data); negative statistics use the k-th Gibbs sample of v and
p(h|v_k), from the data (CD) or from persistent chains (PCD). Masked weights and the
connections of dead units receive no update and stay exactly 0.

Speed: the hot loop works on one *augmented* matrix θ of shape (R, n_v+1, n_h+1) that
holds W, b_h (extra visible row) and b_v (extra hidden column); the two extra units are
clamped on by a huge corner entry. Then one batched GEMM gives a layer's input including
its bias, and one outer product gives the gradients of W, b_v and b_h together, so a batch-1
update (the paper's online learning) costs about fifteen tensor operations for the whole
population, whatever R is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .._torch import as_binary
from ..errors import ConfigError, DataError, TrainingDivergedError
from ..rng import Streams, UniformPool
from .schedules import Schedule, check_update_rule, effective_momentum, resolve

# Corner of θ: clamps the two bias units on (σ(1e6 + anything reasonable) == 1 in float32).
_CLAMP_ON = 1e6
# Patterns gathered at once into each replica's shuffled order (bounds memory).
_GATHER_ELEMENTS = 2**24
#: Training stops with TrainingDivergedError when a parameter's magnitude exceeds this (or is
#: not finite): σ saturates long before, so such a network is meaningless (issue 13).
PARAMETER_BOUND = 1e3


@dataclass
class TrainResult:
    """What a training call did: one dict per epoch (epoch, learning_rate, momentum,
    effective_momentum, reconstruction_error, seconds)."""

    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Total training time over the epochs, seconds."""
        return sum(h["seconds"] for h in self.history)


def _augment(rbm) -> tuple[torch.Tensor, torch.Tensor]:
    """θ (R, nv+1, nh+1) and its float update mask, from the RBM's tensors."""
    R, nv, nh = rbm.W.shape
    theta = torch.zeros(R, nv + 1, nh + 1, dtype=rbm.dtype, device=rbm.device)
    theta[:, :nv, :nh] = rbm.W
    theta[:, nv, :nh] = rbm.b_h
    theta[:, :nv, nh] = rbm.b_v
    theta[:, nv, nh] = _CLAMP_ON
    mask = torch.zeros_like(theta)
    mask[:, :nv, :nh] = rbm.weight_mask & rbm.alive[0].unsqueeze(2) & rbm.alive[1].unsqueeze(1)
    mask[:, nv, :nh] = rbm.alive[1]          # a dead unit's bias is frozen
    mask[:, :nv, nh] = 1.0                   # visible biases always learn
    return theta, mask


def _scalings(nv: int, nh: int, double_bottom_up: bool, double_top_down: bool, dtype, device):
    """(1, nv+1, 1) and (1, nh+1, 1) factors of the weight input: 2 where doubled, 1 elsewhere (bias units)."""
    up = torch.ones(1, nv + 1, 1, dtype=dtype, device=device)
    down = torch.ones(1, nh + 1, 1, dtype=dtype, device=device)   # scales the hidden rows of θᵀ
    if double_bottom_up:
        up[:, :nv] = 2.0
    if double_top_down:
        down[:, :nh] = 2.0
    return up, down


def _write_back(rbm, theta: torch.Tensor) -> None:
    nv, nh = rbm.n_visible, rbm.n_hidden
    rbm.W.copy_(theta[:, :nv, :nh])
    rbm.b_h.copy_(theta[:, nv, :nh])
    rbm.b_v.copy_(theta[:, :nv, nh])


def _reconstruction_error(rbm, x: torch.Tensor, rng: Streams) -> float:
    """Mean squared error of v vs p(v | h ~ p(h|v)) on ≤ 1000 patterns, averaged over replicas."""
    v = x[:, :1000]
    h = rng.bernoulli(rbm.p_h_given_v(v))
    return float(((rbm.p_v_given_h(h) - v) ** 2).mean())


def check_diverged(parameters: torch.Tensor, epoch: int, what: str = "training") -> None:
    """Raise TrainingDivergedError when ``parameters`` hold a non-finite value or one beyond
    :data:`PARAMETER_BOUND` (one reduction; called once per epoch)."""
    peak = float(parameters.abs().amax()) if parameters.numel() else 0.0
    if not peak <= PARAMETER_BOUND:      # also catches NaN
        state = "non-finite parameters" if not torch.isfinite(parameters).all() else \
            f"a parameter of magnitude {peak:.3g} > {PARAMETER_BOUND:g}"
        raise TrainingDivergedError(
            f"{what} diverged in epoch {epoch} ({state}); lower the learning rate (or the momentum)", epoch=epoch)


def prepare_training(model, data, epochs, learning_rate, momentum, update_rule, **counts):
    """What every trainer checks and resolves first, before touching the model (SPEC §2).

    Returns ``(x, lrs, mus, mus_eff)``: the data as (1|R, N, n_visible) in the model's dtype
    and device, and per epoch the learning rate, the momentum entry read and the effective
    classical-momentum coefficient. Raises ConfigError (schedules, counts, momentum, rule),
    ShapeError / DataError (data of the wrong width, not binary, or empty).
    """
    check_update_rule(update_rule)
    lrs = resolve(learning_rate, epochs, "learning_rate", update_rule)
    mus = resolve(momentum, epochs, "momentum", update_rule)
    check_training_arguments(epochs, mus, **counts)
    x = as_binary(data, model.n_visible, name="data", n_replicas=model.n_replicas, dtype=model.dtype,
                  device=model.device)                                                   # (1|R, N, nv)
    if x.shape[1] == 0:
        raise DataError("training data is empty")
    return x, lrs, mus, effective_momentum(lrs, mus, update_rule)


def check_training_arguments(epochs, momenta, **counts) -> None:
    """ConfigError unless epochs ≥ 0, every count (batch_size, k, …) ≥ 1 and momentum in [0, 1)."""
    def is_int(v):
        return isinstance(v, (int,)) and not isinstance(v, bool)
    if not is_int(epochs) or epochs < 0:
        raise ConfigError(f"epochs must be an int ≥ 0; got {epochs!r}")
    for name, v in counts.items():
        if v is not None and (not is_int(v) or v < 1):
            raise ConfigError(f"{name} must be an int ≥ 1; got {v!r}")
    if any(not 0 <= m < 1 for m in momenta):
        raise ConfigError(f"momentum must lie in [0, 1); got {momenta}")


def train_rbm(
    rbm,
    data,
    *,
    epochs: int = 1,
    batch_size: int = 1,
    learning_rate: Schedule = 0.01,
    momentum: Schedule = 0.0,
    k: int = 1,
    persistent: bool = False,
    n_chains: int | None = None,
    update_rule: str = "classical",
    seed: Streams | int | None = 0,
    callback: Callable[[int, Any, dict], None] | None = None,
    double_bottom_up: bool = False,
    double_top_down: bool = False,
) -> TrainResult:
    """Train an RBM population in place with CD-k or PCD-k (SPEC §2).

    Parameters
    ----------
    rbm : RBM
        Population of R replicas; trained in lock-step, each on its own shuffled order of
        the data.
    data : array or tensor of shape (N, n_visible) or (R, N, n_visible), binary
        Training patterns, shared by all replicas or one set per replica.
    epochs : int
    batch_size : int, default 1
        Mini-batch size; 1 is the paper's online learning. The last batch of an epoch may be
        smaller. Gradients are batch means.
    learning_rate, momentum : float, per-epoch sequence or callable entry → value
        Schedules (:mod:`bmprune.training.schedules`); a sequence shorter than the epochs
        holds its last value. Momentum in [0, 1).
    k : int, default 1
        Gibbs steps for the negative phase.
    persistent : bool, default False
        PCD: negative statistics from ``n_chains`` persistent chains (default: batch size),
        initialised from random training patterns.
    update_rule : {"classical", "original"}, default "classical"
        "classical": velocity ← μ·velocity + lr·gradient, epoch e reads schedule entry e.
        "original" (what produced the paper's numbers, SPEC §2): velocity ←
        lr·(μ·velocity + gradient) — classical momentum with μ_eff = lr·μ — and epoch e reads
        entry min(e + 1, n − 1).
    seed : int or Streams, default 0
        Per-replica random streams (:mod:`bmprune.rng`), or a seed (replica r: key (seed, r)).
        Controls the data order, the Gibbs samples and the chain initialisation; a replica's
        training does not depend on the other replicas of the population.
    callback : callable(epoch, rbm, info), optional
        Called after each epoch with the RBM's parameters up to date and ``info`` the
        epoch's history entry.
    double_bottom_up, double_top_down : bool
        Double the weight input when computing p(h|v) (resp. p(v|h)), for the first (resp.
        last) RBM of a DBM's greedy pre-training (SPEC §2, the original ``dbm_first`` /
        ``dbm_last``).

    Returns
    -------
    TrainResult
        Per-epoch history.

    Raises
    ------
    ShapeError, DataError
        Data of the wrong width, not binary, or empty.
    ConfigError
        Bad schedules, sizes, momentum outside [0, 1) or an unknown update rule.
    TrainingDivergedError
        A parameter became non-finite or exceeded :data:`PARAMETER_BOUND` (checked after
        every epoch; the RBM then holds the diverged parameters).
    """
    R, nv, nh = rbm.W.shape
    x, lrs, mus, mus_eff = prepare_training(rbm, data, epochs, learning_rate, momentum, update_rule,
                                            batch_size=batch_size, k=k, n_chains=n_chains)
    dev, dt, N = rbm.device, rbm.dtype, x.shape[1]
    rng = Streams.coerce(seed, R, dev)
    x_aug = torch.cat([x, torch.ones(x.shape[0], N, 1, dtype=dt, device=dev)], dim=2)  # (1|R, N, nv+1)

    theta, mask = _augment(rbm)
    thetaT = theta.transpose(1, 2)                       # view: follows in-place updates
    vel = torch.zeros_like(theta)
    up, down = _scalings(nv, nh, double_bottom_up, double_top_down, dt, dev)

    chains = None
    rows = torch.arange(R, device=dev).unsqueeze(1)
    if persistent:
        C = int(n_chains or batch_size)
        pick = rng.child("chains").integers(N, (C,)).to(dev)                      # (R, C)
        chains = x_aug.expand(R, -1, -1)[rows, pick].clone()                       # (R, C, nv+1)

    result = TrainResult()
    order_rng, recon_rng = rng.child("order"), rng.child("reconstruction")
    pool = UniformPool(rng.child("gibbs"), dt)      # the update loop's Bernoulli draws
    block = max(batch_size, (_GATHER_ELEMENTS // (R * (nv + 1))) // batch_size * batch_size)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = order_rng.permutation(N).to(dev)                                   # (R, N)
        chains = _epoch(theta, thetaT, vel, mask, up, down, chains, x_aug, order, rows, block, pool, lrs[epoch],
                        mus_eff[epoch], batch_size, k, persistent, double_bottom_up, double_top_down)
        _write_back(rbm, theta)
        check_diverged(torch.cat([rbm.W.flatten(1), rbm.b_v, rbm.b_h], dim=1), epoch)
        info = {"epoch": epoch, "learning_rate": lrs[epoch], "momentum": mus[epoch],
                "effective_momentum": mus_eff[epoch],
                "reconstruction_error": _reconstruction_error(rbm, x, recon_rng),
                "seconds": time.perf_counter() - t0}
        result.history.append(info)
        if callback is not None:
            callback(epoch, rbm, info)
    if epochs == 0:
        _write_back(rbm, theta)
    return result


@torch.inference_mode()  # no autograd bookkeeping in the hot loop; only in-place updates leave it
def _epoch(theta, thetaT, vel, mask, up, down, chains, x_aug, order, rows, block, pool, lr, mu,
           batch_size, k, persistent, double_bottom_up, double_top_down):
    """One pass over every replica's shuffled data; updates θ and the velocity in place."""
    R, N = order.shape
    nv, nh = theta.shape[1] - 1, theta.shape[2] - 1
    for start in range(0, N, block):
        idx = order[:, start:start + block]
        xb = x_aug.expand(R, -1, -1)[rows, idx]                               # (R, n_block, nv+1)
        for b in range(0, xb.shape[1], batch_size):
            v0 = xb[:, b:b + batch_size]                                      # (R, B, nv+1)
            C = chains.shape[1] if persistent else v0.shape[1]
            # the update's uniforms, in the order it consumes them: h₀, then v₁, h₁, v₂, …
            us = [pool.uniform((C, nh + 1))]
            for step in range(k):
                us.append(pool.uniform((C, nv + 1)))
                if step + 1 < k:
                    us.append(pool.uniform((C, nh + 1)))
            vk = cd_update(theta, thetaT, vel, mask, up, down, v0, chains if persistent else None, us, lr, mu,
                           double_bottom_up, double_top_down)
            if persistent:
                chains = vk
    return chains


def cd_update(theta, thetaT, vel, mask, up, down, v0, chains, us, lr: float, mu: float,
              double_bottom_up: bool = False, double_top_down: bool = False):
    """One CD-k / PCD-k update of the augmented parameters θ, in place; returns the last v_k.

    A pure tensor function (no random draws, no host synchronisation): ``us`` are the
    update's uniforms in the order they are consumed (h₀, then v₁, h₁, …, v_k; k from their
    number), so it runs under ``torch.compile(fullgraph=True)`` and in CUDA graphs.

    Parameters
    ----------
    theta, thetaT : (R, nv+1, nh+1) and its transposed view
        W with b_h as an extra visible row and b_v as an extra hidden column (module doc).
    vel, mask : like theta
        Velocity (updated) and the update mask.
    up, down : (1, nv+1, 1), (1, nh+1, 1)
        Input scalings (2 for doubled inputs).
    v0 : (R, B, nv+1)
        The batch, with the clamped bias unit.
    chains : (R, C, nv+1) or None
        Persistent chains (PCD) or None (CD: chains start at the batch).
    us : list of 2k tensors (R, C, nh+1) / (R, C, nv+1)
    lr, mu : float
        Learning rate and the effective momentum coefficient of this epoch.
    """
    B, k = v0.shape[1], (len(us) + 1) // 2
    th_up = theta * up if double_bottom_up else theta
    th_down = thetaT * down if double_top_down else thetaT
    ph0 = torch.sigmoid(torch.bmm(v0, th_up))                                  # (R, B, nh+1)
    p = ph0 if chains is None else torch.sigmoid(torch.bmm(chains, th_up))
    h = torch.lt(us[0], p, out=us[0])                  # 0/1 written over the uniforms
    for step in range(k):
        vk = torch.lt(us[2 * step + 1], torch.sigmoid(torch.bmm(h, th_down)), out=us[2 * step + 1])
        phk = torch.sigmoid(torch.bmm(vk, th_up))
        if step + 1 < k:
            h = torch.lt(us[2 * step + 2], phk, out=us[2 * step + 2])
    # velocity ← μ·velocity + lr·(⟨v hᵀ⟩_data − ⟨v hᵀ⟩_model); θ += mask ⊙ velocity
    # (μ is the effective coefficient: lr·μ under the original rule).
    # (Velocity may build up at masked entries, but it is never applied there.)
    vel.baddbmm_(v0.transpose(1, 2), ph0, beta=mu, alpha=lr / B)
    vel.baddbmm_(vk.transpose(1, 2), phk, alpha=-lr / vk.shape[1])
    theta.addcmul_(vel, mask)
    return vk


__all__ = ["train_rbm", "TrainResult", "cd_update"]
