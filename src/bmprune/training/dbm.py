"""Deep Boltzmann machines: greedy pre-training, stacking, joint mean-field + PCD training (SPEC §2).

* :func:`pretrain_dbm` trains a stack of RBMs with CD-k (:func:`~bmprune.training.train_rbm`),
  each on one binary sample of the previous RBM's p(h | input) per training pattern, with
  the double-counting correction of Salakhutdinov & Hinton (2009), and stacks them
  (:func:`stack_rbms`).
* :func:`train_dbm` trains a DBM population jointly as in Salakhutdinov & Larochelle
  (2010): mean-field positive phase, persistent-chain (PCD) negative phase, momentum by
  either update rule (:mod:`bmprune.training.schedules`), max-norm on every hidden unit's
  incoming weights. Removed units are kept at 0 by their ``alive`` masks.

Speed: the joint-training hot loop works on one flat parameter buffer θ (R, P) that holds
every W_l and b_l as views, so the momentum update and the mask are four tensor operations
for the whole population whatever the depth, and a batch-1 update (the paper's online
learning) costs a few dozen operations plus about seven per mean-field iteration. On a CPU
with several threads, large replicas train as groups of replicas, one thread each (views into
θ: :func:`bmprune._torch.run_replica_groups`), 1.2–1.4× faster than sharing every op.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .._torch import as_binary, replica_groups, run_replica_groups
from ..errors import ConfigError, DataError, ShapeError, TrainingDivergedError
from ..models.base import (MF_MODES, alive_factors, check_mean_field, conditional, layer_input, mean_field,
                           sweep_order)
from ..models.dbm import DBM
from ..models.rbm import RBM, _mask_tensor
from ..rng import Streams, UniformPool
from .cd import TrainResult, check_diverged, prepare_training, train_rbm
from .schedules import Schedule, check_update_rule

# Patterns gathered at once into each replica's shuffled order (bounds memory; as in cd.py).
_GATHER_ELEMENTS = 2**24
# Patterns per chunk when sampling an RBM's hidden layer for the next RBM's training data.
_UP_CHUNK = 4096
# Updates the replica groups run on their threads between meetings: enough to even out their
# mean-field iterations, few enough that an interrupt is answered within seconds.
_GROUP_UPDATES = 200
# Patterns used for the per-epoch reconstruction error.
_RECON_PATTERNS = 500


@dataclass
class DBMTrainResult(TrainResult):
    """What :func:`train_dbm` did: per-epoch ``history`` (epoch, learning_rate, momentum,
    reconstruction_error, mean_field_iterations, seconds) and the final
    ``persistent_chains``, a tuple of L + 1 tensors (R, C, n_l) that can be passed back as
    ``init_chains_from`` to continue training (e.g. retraining after pruning)."""

    persistent_chains: tuple[torch.Tensor, ...] | None = None


# --- per-RBM hyperparameters -----------------------------------------------------------
def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _per_rbm_schedule(value, L: int, name: str) -> list:
    """A schedule shared by all L RBMs, or a list of L schedules (one per RBM).

    A list or tuple of plain numbers is a per-epoch schedule shared by every RBM; a list
    whose entries are not all numbers (per-epoch lists, callables) gives one per RBM.
    """
    if isinstance(value, (list, tuple)) and len(value) > 0 and not all(_is_number(x) for x in value):
        if len(value) != L:
            raise ConfigError(f"{name}: per-RBM values need one entry per RBM ({L}); got {len(value)}")
        return list(value)
    return [value] * L


def _per_rbm_value(value, L: int, name: str) -> list:
    """An int/float/tensor shared by all RBMs, or a list/tuple of L values (one per RBM)."""
    if isinstance(value, (list, tuple)):
        if len(value) != L:
            raise ConfigError(f"{name}: per-RBM values need one entry per RBM ({L}); got {len(value)}")
        return list(value)
    return [value] * L


# --- pre-training and stacking -----------------------------------------------------------
def stack_rbms(rbms: Sequence[RBM]) -> DBM:
    """Compose pre-trained RBMs into a DBM (SPEC §2 "DBM construction").

    W_l = RBM_l.W (no halving: the middle RBMs' doubled inputs already account for it),
    b_0 = RBM_1.b_v, b_l = ½(RBM_l.b_h + RBM_{l+1}.b_v) for the layers shared by two RBMs,
    b_L = RBM_L.b_h. Masks are copied; a hidden unit dead in either RBM is dead in the DBM,
    and :meth:`DBM.apply_masks` then removes its connections on both sides.

    Parameters
    ----------
    rbms : sequence of L RBM populations
        ``rbms[l].n_hidden == rbms[l+1].n_visible``, equal replica counts, devices and dtypes.

    Returns
    -------
    DBM
        A new population (tensors copied) with layer sizes
        ``[rbms[0].n_visible, rbms[0].n_hidden, …, rbms[-1].n_hidden]``.

    Raises
    ------
    ShapeError
        The RBMs do not chain (sizes, replicas, dtypes or devices differ).
    """
    rbms = list(rbms)
    if not rbms:
        raise ShapeError("stack_rbms needs at least one RBM")
    R, dt, dev = rbms[0].n_replicas, rbms[0].dtype, rbms[0].device
    for l, (lo, hi) in enumerate(zip(rbms[:-1], rbms[1:])):
        if lo.n_hidden != hi.n_visible:
            raise ShapeError(f"RBM {l} has {lo.n_hidden} hidden units but RBM {l + 1} has {hi.n_visible} visible units")
    if any(r.n_replicas != R or r.dtype != dt or r.device != dev for r in rbms):
        raise ShapeError("the RBMs to stack differ in replica count, dtype or device")
    L = len(rbms)
    sizes = [rbms[0].n_visible] + [r.n_hidden for r in rbms]
    tensors = {}
    for l, r in enumerate(rbms):
        tensors[f"W.{l}"], tensors[f"weight_mask.{l}"] = r.W.clone(), r.weight_mask.clone()
    tensors["b.0"], tensors["alive.0"] = rbms[0].b_v.clone(), rbms[0].alive[0].clone()
    for l in range(1, L):
        tensors[f"b.{l}"] = 0.5 * (rbms[l - 1].b_h + rbms[l].b_v)
        tensors[f"alive.{l}"] = rbms[l - 1].alive[1] & rbms[l].alive[0]
    tensors[f"b.{L}"], tensors[f"alive.{L}"] = rbms[-1].b_h.clone(), rbms[-1].alive[1].clone()
    return DBM._from_named_tensors({"layer_sizes": sizes}, tensors).apply_masks()


def _sample_hidden(rbm: RBM, x: torch.Tensor, alpha: float, rng: Streams) -> torch.Tensor:
    """One binary sample of σ(b_h + alpha·xᵀW) per pattern: x (1|R, N, n_v) → bool (R, N, n_h)."""
    R, N = rbm.n_replicas, x.shape[1]
    out = torch.empty(R, N, rbm.n_hidden, dtype=torch.bool, device=rbm.device)
    W = [rbm.W * alpha] if alpha != 1.0 else rbm.weights
    for start in range(0, N, _UP_CHUNK):
        xc = x[:, start:start + _UP_CHUNK].to(rbm.dtype)
        p = conditional(1, [xc, None], W, rbm.biases, rbm.alive)
        out[:, start:start + _UP_CHUNK] = rng.bernoulli(p).bool()
    return out


def _doubling(l: int, L: int) -> tuple[bool, bool]:
    """(double_bottom_up, double_top_down) for RBM l of L: the first doubles its bottom-up
    input, the last its top-down input, the middle ones both; a lone RBM neither."""
    return (L > 1 and l < L - 1), (L > 1 and l > 0)


def pretrain_dbm(
    data,
    layer_sizes: Sequence[int],
    *,
    weight_masks=None,
    epochs: int | Sequence[int] = 1,
    batch_size: int | Sequence[int] = 1,
    learning_rate: Schedule | Sequence[Schedule] = 0.01,
    momentum: Schedule | Sequence[Schedule] = 0.0,
    k: int | Sequence[int] = 1,
    update_rule: str | Sequence[str] = "classical",
    seed: Streams | int = 0,
    n_replicas: int = 1,
    visible_bias=0.0,
    hidden_bias=0.0,
    weight_std: float | Sequence[float] = 0.1,
    double_transform: bool = True,
    alive=None,
    callback: Callable[[int, int, RBM, dict], None] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[DBM, list[RBM]]:
    """Greedy layer-wise pre-training of a DBM population from RBMs, then stacking (SPEC §2).

    RBM 1 (v → h¹) is trained with CD-k on ``data`` with its bottom-up input doubled when
    computing p(h | v) (the original code's ``dbm_first``); RBM 2 (h¹ → h²) is trained on one
    binary sample of RBM 1's p(h¹ | v) per training pattern (drawn once, fixed for all
    epochs) with its top-down input doubled when computing p(v | h) (``dbm_last``). With more
    than two hidden layers the middle RBMs double both. The RBMs are then stacked by
    :func:`stack_rbms`.

    Parameters
    ----------
    data : array or tensor of shape (N, n_visible) or (R, N, n_visible), binary
        Training patterns, shared by all replicas or one set per replica.
    layer_sizes : sequence of int
        ``[n_visible, n_h1, …, n_hL]``, e.g. ``[400, 400, 676]``.
    weight_masks : list of L masks (or None entries), optional
        Connectivity of each RBM, e.g. ``[bp.receptive_field_mask(20, 20, 5), None]``.
    epochs, batch_size, k : int or list of L ints
        Per RBM when given as a list (the paper: 20 epochs each, batch size 1, CD-1).
    learning_rate, momentum : schedule, or list of L schedules
        A float, a per-epoch list of floats or a callable epoch → value is shared by every
        RBM; a list of L schedules that are not all plain numbers gives one per RBM, e.g. the
        paper's ``[geometric(0.01, 1e-4, 20), geometric(0.1, 1e-4, 20)]``. (A list of plain
        numbers is always read as a per-epoch schedule; for different constants per RBM
        write ``[[0.01] * epochs, [0.1] * epochs]``.)
    update_rule : {"classical", "original"} or list of L of them, default "classical"
        The momentum update and schedule indexing of every RBM (:func:`train_rbm`, SPEC §2).
    seed : int or Streams
        Per-replica random streams (:mod:`bmprune.rng`) or a seed: each RBM's initial
        weights, its training (data order, Gibbs samples) and the hidden samples passed up
        draw from independent children of a replica's stream.
    n_replicas : int
        Population size R; replicas start from different weights.
    visible_bias, hidden_bias, weight_std : value or list of L values
        RBM initialisation (:class:`~bmprune.RBM`); the paper's MNIST RBMs use b_v = −1,
        b_h = −2, std 0.1. A list or tuple gives one value per RBM (pass vector biases as
        tensors or arrays).
    double_transform : bool, default True
        Sample the data passed up from the same doubled-input conditional the lower RBM was
        trained with, σ(b_h + 2·vᵀW), as the original code's ``transform`` of a ``dbm_first``
        RBM does (SPEC §2 leaves it open). False: the undoubled σ(b_h + vᵀW). (Like
        :func:`train_rbm`, only the weight input is doubled; the original code also doubled
        the bias, σ(2·(b_h + vᵀW)).)
    alive : list of L + 1 bool tensors (R, n_l) or (n_l,), optional
        Units that exist (default all): the others are removed from the start, e.g. a minimal
        model with the architecture a pruned network ended with (thesis §3.4.3).
    callback : callable(rbm_index, epoch, rbm, info), optional
        Called after each epoch of each RBM with :func:`train_rbm`'s history entry.
    device, dtype :
        Where the RBMs and the DBM live.

    Returns
    -------
    dbm : DBM
        The stacked population, ready for :func:`train_dbm`.
    rbms : list of L RBM
        The trained RBMs (e.g. for :func:`chains_from_rbms`).

    Raises
    ------
    ShapeError, DataError, ConfigError
        Bad data, masks or hyperparameters.

    References
    ----------
    Salakhutdinov & Hinton (2009), Deep Boltzmann machines, AISTATS; Scholl, Rule & Hennig
    (2021), Methods.
    """
    sizes = [int(n) for n in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ShapeError(f"layer_sizes must hold ≥ 2 positive sizes; got {list(layer_sizes)}")
    L, R = len(sizes) - 1, int(n_replicas)
    masks = [None] * L if weight_masks is None else list(weight_masks)
    if len(masks) != L:
        raise ShapeError(f"weight_masks needs one entry per RBM ({L}); got {len(masks)}")
    per = {
        "epochs": _per_rbm_value(epochs, L, "epochs"), "batch_size": _per_rbm_value(batch_size, L, "batch_size"),
        "k": _per_rbm_value(k, L, "k"), "learning_rate": _per_rbm_schedule(learning_rate, L, "learning_rate"),
        "momentum": _per_rbm_schedule(momentum, L, "momentum"),
        "update_rule": [check_update_rule(r) for r in _per_rbm_value(update_rule, L, "update_rule")],
    }
    init = {"visible_bias": _per_rbm_value(visible_bias, L, "visible_bias"),
            "hidden_bias": _per_rbm_value(hidden_bias, L, "hidden_bias"),
            "weight_std": _per_rbm_value(weight_std, L, "weight_std")}
    if alive is not None and len(alive) != L + 1:
        raise ShapeError(f"alive needs one mask per layer ({L + 1}); got {len(alive)}")
    alive = [None] * (L + 1) if alive is None else [_mask_tensor(a, (R, n), f"alive[{l}]", device)
                                                      for l, (a, n) in enumerate(zip(alive, sizes))]
    x = as_binary(data, sizes[0], name="data", n_replicas=R, dtype=torch.bool, device=device)    # (1|R, N, nv)
    if x.shape[1] == 0:
        raise DataError("training data is empty")
    rng = Streams.coerce(seed, R, device)
    rbms: list[RBM] = []
    for l in range(L):
        rbm = RBM(sizes[l], sizes[l + 1], n_replicas=R, weight_mask=masks[l], seed=rng.child("rbm", l),
                  device=device, dtype=dtype, **{key: v[l] for key, v in init.items()})
        for side, a in ((0, alive[l]), (1, alive[l + 1])):
            if a is not None:
                rbm.alive[side] = a.clone()
        rbm.apply_masks()
        _pretrain_rbm(rbm, x, l, L, {key: v[l] for key, v in per.items()}, rng, callback)
        rbms.append(rbm)
        if l < L - 1:
            alpha = 2.0 if (_doubling(l, L)[0] and double_transform) else 1.0
            x = _sample_hidden(rbm, x, alpha, rng.child("rbm", l, "up"))                              # (R, N, n_{l+1})
    return stack_rbms(rbms), rbms


def _pretrain_rbm(rbm: RBM, x, l: int, L: int, settings: dict, rng: Streams, callback) -> None:
    """CD-k training of RBM l of L with its doubled inputs (SPEC §2), naming it when it diverges."""
    up, down = _doubling(l, L)
    cb = None if callback is None else (lambda epoch, m, info: callback(l, epoch, m, info))
    try:
        train_rbm(rbm, x, seed=rng.child("rbm", l, "train"), callback=cb, double_bottom_up=up, double_top_down=down,
                  **settings)
    except TrainingDivergedError as exc:
        raise TrainingDivergedError(f"pre-training of RBM {l + 1}: {exc}", phase=f"pretrain[{l}]",
                                    epoch=exc.epoch) from None


def chains_from_rbms(rbms: Sequence[RBM], v, *, seed: Streams | int = 0,
                     double_transform: bool = True) -> tuple[torch.Tensor, ...]:
    """Initial persistent chains from pre-trained RBMs: v, then each RBM's hidden sample.

    The paper initialises the DBM's chains "to the training examples and the hidden
    particles to binary hidden unit samples of the respective RBMs" (thesis §3.2.2):
    h¹ ~ RBM_1(h | v), h² ~ RBM_2(h | h¹), …, with each RBM's bottom-up input doubled as in
    its pre-training when ``double_transform`` (see :func:`pretrain_dbm`).

    Parameters
    ----------
    rbms : list of L RBM populations, as returned by :func:`pretrain_dbm`
    v : (C, n_visible) or (R, C, n_visible), binary
        Chain starts, e.g. the first 100 training images.
    seed : int or Streams
        Per-replica random streams (:mod:`bmprune.rng`) or a seed.

    Returns
    -------
    states : tuple of L + 1 Tensors (R, C, n_l), for ``train_dbm(init_chains_from=...)``
    """
    L, R = len(rbms), rbms[0].n_replicas
    rng = Streams.coerce(seed, R, rbms[0].device)
    x = as_binary(v, rbms[0].n_visible, name="v", n_replicas=R, dtype=rbms[0].dtype, device=rbms[0].device)
    states = [x.expand(R, -1, -1).clone()]
    for l, rbm in enumerate(rbms):
        alpha = 2.0 if (_doubling(l, L)[0] and double_transform) else 1.0
        states.append(_sample_hidden(rbm, states[-1], alpha, rng).to(rbm.dtype))
    return tuple(states)


# --- joint training -----------------------------------------------------------------
class _FlatParameters:
    """Every W_l and b_l of a DBM population as views into one buffer θ (R, P).

    Layout per replica: W_0, …, W_{L−1} (row-major), then b_0, …, b_L. ``views(t)`` gives
    the same views into any buffer of θ's shape (gradient, velocity, mask).
    """

    def __init__(self, dbm: DBM) -> None:
        self.sizes = dbm.layer_sizes
        R, L = dbm.n_replicas, dbm.n_layers
        P = sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:])) + sum(self.sizes)
        self.theta = torch.empty(R, P, dtype=dbm.dtype, device=dbm.device)
        self.mask = torch.empty_like(self.theta)
        W, b = self.views(self.theta)
        mW, mb = self.views(self.mask)
        for l in range(L):
            W[l].copy_(dbm.W[l])
            mW[l].copy_(dbm.weight_masks[l])                   # after apply_masks: dead units' weights are off
        for l in range(L + 1):
            b[l].copy_(dbm.b[l])
            mb[l].copy_(dbm.alive[l])                          # dead units' biases are frozen
        self.W, self.b = W, b

    def views(self, t: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n, R = self.sizes, t.shape[0]
        W, b, at = [], [], 0
        for lo, hi in zip(n[:-1], n[1:]):
            W.append(t[:, at:at + lo * hi].view(R, lo, hi))   # (R, n_l, n_{l+1}), batch stride P
            at += lo * hi
        for m in n:
            b.append(t[:, at:at + m])                           # (R, n_l)
            at += m
        return W, b

    def rows(self, lo: int, hi: int) -> "_FlatParameters":
        """The parameters of replicas lo..hi-1: views into this θ and mask (updates write through)."""
        sub = object.__new__(_FlatParameters)
        sub.sizes, sub.theta, sub.mask = self.sizes, self.theta[lo:hi], self.mask[lo:hi]
        sub.W, sub.b = sub.views(sub.theta)
        return sub

    def write_back(self, dbm: DBM) -> None:
        for l in range(dbm.n_layers):
            dbm.W[l].copy_(self.W[l])
        for l in range(dbm.n_layers + 1):
            dbm.b[l].copy_(self.b[l])                          # dead units' biases never moved


def _initial_chains(dbm: DBM, init, C: int, x: torch.Tensor, rng: Streams) -> list[torch.Tensor]:
    R, L = dbm.n_replicas, dbm.n_layers
    if init is None:
        pick = rng.integers(x.shape[1], (C,)).to(x.device)                                  # (R, C)
        v = x.expand(R, -1, -1)[torch.arange(R, device=x.device).unsqueeze(1), pick]        # (R, C, nv)
        return list(dbm.init_chains(C, rng, v=v))
    if len(init) != L + 1:
        raise ShapeError(f"init_chains_from needs {L + 1} layer states (v, h¹, …); got {len(init)}")
    chains = [dbm._layer_states(s, l, binary=True, name=f"init_chains_from[{l}]").clone() * a.unsqueeze(1)
              for l, (s, a) in enumerate(zip(init, dbm.alive))]
    if len({c.shape[1] for c in chains}) != 1:
        raise ShapeError("init_chains_from: every layer needs the same number of chains")
    return chains


def train_dbm(
    dbm: DBM,
    data,
    *,
    epochs: int = 1,
    batch_size: int = 1,
    learning_rate: Schedule = 0.01,
    momentum: Schedule = 0.0,
    n_chains: int = 100,
    k: int = 1,
    max_norm: float | None = 6.0,
    mf_tol: float = 1e-7,
    mf_max_iter: int = 50,
    mf_mode: str = "auto",
    update_rule: str = "classical",
    seed: Streams | int | None = 0,
    callback: Callable[[int, DBM, dict], None] | None = None,
    init_chains_from: Sequence | None = None,
) -> DBMTrainResult:
    """Joint training of a DBM population in place: mean field + PCD (Salakhutdinov & Larochelle 2010).

    For each mini-batch: the positive statistics are the mean-field posterior μ¹…μ^L with
    the batch clamped (:meth:`DBM.mean_field`); the negative statistics come from ``n_chains``
    persistent Gibbs chains after ``k`` sweeps. Then, per parameter (SPEC §2),
    velocity ← μ·velocity + lr·(⟨·⟩_data − ⟨·⟩_model) (μ = lr·μ under the original rule),
    θ += mask ⊙ velocity, and every hidden
    unit's incoming weight vector (column j of ``W[l]``) is rescaled to L2 norm ≤ ``max_norm``.
    Masked weights and the connections and biases of dead units never change.

    Parameters
    ----------
    dbm : DBM
        Population of R replicas, trained in lock-step, each on its own shuffled order of
        the data. :meth:`DBM.apply_masks` is called first.
    data : array or tensor of shape (N, n_visible) or (R, N, n_visible), binary
    epochs : int
    batch_size : int, default 1
        1 is the paper's online learning, 10 its retraining after pruning. The last batch
        of an epoch may be smaller. Gradients are batch means.
    learning_rate, momentum : float, per-epoch sequence or callable entry → value
        Schedules (:mod:`bmprune.training.schedules`); momentum in [0, 1).
    n_chains : int, default 100
        Persistent chains C per replica (the paper's text: 100; its code: 1,000).
    k : int, default 1
        Gibbs sweeps of the chains per update.
    max_norm : float or None, default 6.0
        Largest L2 norm of a hidden unit's incoming weights; None disables it.
    mf_tol, mf_max_iter : float, int
        Mean-field stopping rule (largest change < 1e−7 or 50 iterations).
    mf_mode : {"auto", "pattern", "population", "fixed"}
        Whether each pattern stops at its own convergence (the CPU default), the whole
        batch and population together (the default on a GPU), or after exactly
        ``mf_max_iter`` iterations (no host synchronisation: CUDA graphs); see
        :meth:`~bmprune.DBM.mean_field`.
    update_rule : {"classical", "original"}, default "classical"
        As in :func:`~bmprune.training.train_rbm` (SPEC §2): "original" is classical
        momentum with μ_eff = lr·μ and schedule entry min(e + 1, n − 1) in epoch e.
    seed : int or Streams
        Per-replica random streams (:mod:`bmprune.rng`) or a seed: the data order, the chain
        initialisation and the Gibbs samples; a replica's training does not depend on the
        other replicas of the population.
    callback : callable(epoch, dbm, info), optional
        Called after each epoch with the DBM up to date and ``info`` the history entry.
    init_chains_from : tuple of L + 1 binary tensors (C, n_l) or (R, C, n_l), optional
        Chain starts (``n_chains`` is then ignored), e.g. :func:`chains_from_rbms` or a
        previous result's ``persistent_chains``. Default: C random training patterns per
        replica and hidden samples from the DBM's doubled bottom-up pass
        (:meth:`DBM.init_chains`).

    Returns
    -------
    DBMTrainResult
        Per-epoch history and the final persistent chains.

    Raises
    ------
    ShapeError, DataError
        Data or chains of the wrong shape, not binary, or empty data.
    ConfigError
        Bad schedules or sizes, momentum outside [0, 1), an unknown update rule.
    TrainingDivergedError
        A parameter became non-finite or exceeded
        :data:`~bmprune.training.cd.PARAMETER_BOUND` (learning rate too high).

    Notes
    -----
    Negative statistics are Rao-Blackwellised over the even layers: after a sweep the odd
    layers are binary samples and each even layer is represented by p(x_l | odd layers),
    whose product with the odd samples has the same expectation as the sampled product
    (the even layers are conditionally independent given the odd ones) and less variance.

    References
    ----------
    Salakhutdinov & Larochelle (2010), Efficient learning of deep Boltzmann machines,
    AISTATS; Scholl, Rule & Hennig (2021), Methods.
    """
    R, sizes = dbm.n_replicas, dbm.layer_sizes
    x, lrs, mus, mus_eff = prepare_training(dbm, data, epochs, learning_rate, momentum, update_rule,
                                            batch_size=batch_size, k=k, n_chains=n_chains)
    if max_norm is not None and not max_norm > 0:
        raise ConfigError(f"max_norm must be positive or None; got {max_norm}")
    check_mean_field(mf_tol, mf_max_iter)
    if mf_mode not in MF_MODES:
        raise ConfigError(f"mf_mode must be one of {MF_MODES}; got {mf_mode!r}")
    dev, dt, N = dbm.device, dbm.dtype, x.shape[1]
    rng = Streams.coerce(seed, R, dev)
    dbm.apply_masks()
    flat = _FlatParameters(dbm)
    chains = _initial_chains(dbm, init_chains_from, int(n_chains), x, rng.child("chains"))
    grad = torch.zeros_like(flat.theta)
    vel = torch.zeros_like(flat.theta)
    rows = torch.arange(R, device=dev).unsqueeze(1)
    block = max(batch_size, (_GATHER_ELEMENTS // (R * sizes[0])) // batch_size * batch_size)
    # replicas train independently: each group of them runs 200 updates at a time on its own
    # thread (run_replica_groups), with its own slice of θ, velocity, chains and uniform pool
    # (the pools draw each replica's uniforms in the same order as one pool for all would).
    # "population" mean field ties the replicas' iterations together: one group then.
    order_rng, gibbs_rng = rng.child("order"), rng.child("gibbs")
    work = flat.theta.shape[1] * (batch_size + chains[0].shape[1])             # multiply-adds per replica, roughly
    ranges = [(0, R)] if mf_mode == "population" else replica_groups(R, dev, work)
    groups = [(lo, hi, flat.rows(lo, hi), UniformPool(gibbs_rng.select(slice(lo, hi)), dt)) for lo, hi in ranges]

    def train_block(group, xb, lr, mu):
        lo, hi, flat_g, pool_g = group
        return _epoch_block(flat_g, grad[lo:hi], vel[lo:hi], [c[lo:hi] for c in chains], xb[lo:hi], pool_g, lr, mu,
                            batch_size, k, max_norm, float(mf_tol), int(mf_max_iter), [a[lo:hi] for a in dbm.alive],
                            mf_mode)

    result = DBMTrainResult()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = order_rng.permutation(N).to(dev)                                                # (R, N)
        n_mf, n_updates = 0, 0
        for start in range(0, N, block):
            xb = x.expand(R, -1, -1)[rows, order[:, start:start + block]]                      # (R, n_block, nv)
            for sub in range(0, xb.shape[1], _GROUP_UPDATES * batch_size):   # threads meet every few updates
                xs = xb[:, sub:sub + _GROUP_UPDATES * batch_size]
                done = run_replica_groups(lambda g: train_block(g, xs, lrs[epoch], mus_eff[epoch]), groups)
                chains = [torch.cat([d[2][l] for d in done]) for l in range(len(chains))]
                n_mf += sum(d[0] * (g[1] - g[0]) / R for d, g in zip(done, groups))       # replica-weighted
                n_updates += done[0][1]
        flat.write_back(dbm)
        check_diverged(flat.theta, epoch)
        info = {"epoch": epoch, "learning_rate": lrs[epoch], "momentum": mus[epoch],
                "effective_momentum": mus_eff[epoch],
                "reconstruction_error": _reconstruction_error(flat, x, mf_tol, mf_max_iter, dbm.alive),
                "mean_field_iterations": n_mf / max(1, n_updates),
                "seconds": time.perf_counter() - t0}
        result.history.append(info)
        if callback is not None:
            callback(epoch, dbm, info)
    flat.write_back(dbm)
    result.persistent_chains = tuple(c.clone() for c in chains)   # clone: normal tensors, not inference tensors
    return result


@torch.inference_mode()  # no autograd bookkeeping in the hot loop; only in-place updates leave it
def _epoch_block(flat: _FlatParameters, grad, vel, chains, xb, pool, lr, mu, batch_size, k, max_norm, tol, max_iter,
                 alive, mf_mode="auto"):
    """Train on one gathered block of patterns xb (R, n_block, nv); returns
    (mean-field iterations summed over updates, updates, chains). Updates θ, the velocity and
    the chains in place."""
    alive_f = alive_factors(alive)
    C, sizes = chains[0].shape[1], flat.sizes
    order = sweep_order(len(flat.W))
    n_mf, n_up = torch.zeros((), dtype=torch.float64, device=xb.device), 0
    for s in range(0, xb.shape[1], batch_size):
        v = xb[:, s:s + batch_size]                                                          # (R, B, nv)
        us = [pool.uniform((C, sizes[l])) for _ in range(k) for l in order]                  # the sweeps' uniforms
        chains, its = dbm_update(flat, grad, vel, v, chains, us, alive_f, lr, mu, max_norm, tol, max_iter, mf_mode)
        n_mf += its.double().mean()
        n_up += 1
    return float(n_mf), n_up, chains


def dbm_update(flat: _FlatParameters, grad, vel, v, chains, us, alive_f, lr: float, mu: float,
               max_norm: float | None, tol: float, max_iter: int, mf_mode: str = "auto"):
    """One joint-training update of a DBM population, in place; returns (chains, mean-field iterations (R, B)).

    Mean field with v clamped (positive phase), ``len(us) / (L + 1)`` Gibbs sweeps of the
    persistent chains with the given uniforms ``us`` (one (R, C, n_l) per layer and sweep, in
    :func:`~bmprune.models.base.sweep_order`; negative phase, even layers kept as
    p(x_l | odd layers)), the gradient ⟨·⟩_data − ⟨·⟩_model, momentum (``mu``: the effective
    coefficient), the mask and max-norm. No random draws; with ``mf_mode="fixed"`` no host
    synchronisation either, so it runs under ``torch.compile(fullgraph=True)`` and in CUDA graphs.
    """
    W, b = flat.W, flat.b
    gW, gb = flat.views(grad)
    L, B, C = len(W), v.shape[1], chains[0].shape[1]
    odd, even = range(1, L + 1, 2), range(0, L + 1, 2)
    mf, its = mean_field(v, W, b, alive_f, tol, max_iter, mf_mode)
    pos = [v] + mf
    # negative phase: sweeps of the persistent chains; even layers kept as p(x_l | odd)
    chains, neg = list(chains), list(chains)
    u = iter(us)
    for _ in range(len(us) // (L + 1)):
        for l in odd:
            un = next(u)
            chains[l] = torch.lt(un, _p(l, chains, W, b, alive_f), out=un)      # 0/1 over the uniforms
        for l in even:
            un = next(u)
            neg[l] = _p(l, chains, W, b, alive_f)
            chains[l] = torch.lt(un, neg[l], out=un)
    for l in odd:
        neg[l] = chains[l]
    # gradient = ⟨·⟩_data − ⟨·⟩_model, batch means, written into the flat buffer's views
    for l in range(L):
        gW[l].baddbmm_(pos[l].transpose(1, 2), pos[l + 1], beta=0.0, alpha=1.0 / B)
        gW[l].baddbmm_(neg[l].transpose(1, 2), neg[l + 1], alpha=-1.0 / C)
    for l in range(L + 1):
        gb[l].copy_(pos[l].mean(1) - neg[l].mean(1))
    # momentum; the mask keeps masked weights and dead units' parameters fixed
    # (velocity may build up at masked entries, but it is never applied there)
    vel.mul_(mu).add_(grad, alpha=lr)
    flat.theta.addcmul_(vel, flat.mask)
    if max_norm is not None:
        for w in W:   # column j of W_l: the weights into unit j of layer l+1
            # √Σ w² reduces over the rows of W_l with contiguous loads: 5× faster than vector_norm's strided
            # reduction on the CPU (whose scaling only matters for weights near 1e19, far past divergence)
            norm = w.square().sum(1, keepdim=True).sqrt_()                             # (R, 1, n_{l+1})
            w.mul_(norm.clamp_(min=max_norm).reciprocal_().mul_(max_norm))
    return chains, its


def _p(l, x, W, b, alive_f):
    """p(x_l = 1 | neighbours) with dead units at 0 (factors precomputed: no host sync)."""
    p = torch.sigmoid(layer_input(l, x, W, b))
    return p if alive_f[l] is None else p.mul_(alive_f[l].to(p.dtype))


@torch.inference_mode()
def _reconstruction_error(flat: _FlatParameters, x, tol, max_iter, alive) -> float:
    """Mean squared error of v vs p(v | μ¹) on ≤ 500 patterns, averaged over replicas."""
    R = flat.theta.shape[0]
    v = x[:, :_RECON_PATTERNS].expand(R, -1, -1)
    mu = mean_field(v, flat.W, flat.b, alive, float(tol), int(max_iter))[0]
    pv = conditional(0, [v, *mu], flat.W, flat.b, alive)
    return float(((pv - v) ** 2).mean())


__all__ = ["pretrain_dbm", "stack_rbms", "chains_from_rbms", "train_dbm", "DBMTrainResult"]
