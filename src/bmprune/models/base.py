"""The contract every algorithm uses: a population of layered Boltzmann machines (SPEC §1).

A :class:`BoltzmannMachine` is a chain of binary unit layers x⁰ = v, x¹, …, x^L with weights
only between adjacent layers,

    E(x) = −Σ_{l=0..L} b_lᵀ x_l − Σ_{l=0..L−1} x_lᵀ W_l x_{l+1},   p(x) = exp(−E(x)) / Z,

held for R independent networks ("replicas") in one set of tensors whose first axis is the
replica (DESIGN.md §Populations). An RBM is the case L = 1, the paper's DBM L = 2. The
sampler, the training loops, the Fisher estimates, pruning, evaluation and the report use
only what is defined here:

* description: ``layer_sizes``, ``n_layers`` (L), ``n_visible``, ``n_replicas``, ``dtype``,
  ``device``; per layer the lists ``weights`` (L tensors (R, n_l, n_{l+1})), ``biases``
  (L + 1 tensors (R, n_l)), ``weight_masks`` (L bool) and ``alive`` (L + 1 bool);
* conditionals: :meth:`p_layer`, :meth:`sample_layer`; chains: :meth:`init_chains`,
  :meth:`gibbs_step`; inference: :meth:`mean_field`, :meth:`transform`;
* exact normalisation where enumerable: :meth:`log_partition`, :meth:`enumerated_units`,
  :meth:`is_enumerable`;
* populations: :meth:`replicas`, :meth:`replica`, :meth:`clone`, :meth:`to`; persistence:
  :meth:`save`, :meth:`load`; masks: :meth:`apply_masks`.

Removed ("dead") units are masks, never artificial biases: every conditional, sample,
mean-field value and exact sum multiplies by ``alive``, so a dead unit is exactly 0 and a
tempered model (β × every parameter) is still the same model with the same units removed.

Concrete classes store their tensors under the field's names (``RBM.W``, ``DBM.b``, …) and
provide ``weights``/``biases``/``weight_masks`` as lists of those same tensors (updates in
place are seen by both), ``config`` and ``named_tensors`` for checkpoints, and
``_from_named_tensors`` to rebuild.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .._torch import as_binary
from ..errors import ConfigError, DataError, ShapeError
from ..rng import Streams
from .enumeration import MAX_STATES, check_enumerable, iter_binary_states

#: Largest number of enumerated states for exact metrics computed routinely (exact KL, Fig 2):
#: 2^20 states per replica. :meth:`BoltzmannMachine.log_partition` itself allows up to 2^24.
EXACT_LIMIT = 2**20
# Mean-field changes below this many machine epsilons are rounding noise, not progress: in
# float32 (eps = 1.2e-7) the iterates of a converged μ keep jittering by 1–2 ulps, so the
# SPEC's tol = 1e-7 would never be met and every update would run all 50 iterations.
MF_ROUNDING_EPS = 4


class BoltzmannMachine(ABC):
    """Base class of :class:`~bmprune.RBM` and :class:`~bmprune.DBM` populations (see module doc).

    Attributes
    ----------
    alive : list of L + 1 bool Tensors (R, n_l)
        Units that take part in the model; ``alive[0]`` (visible) is always all True.
    """

    #: Registry used by :func:`bmprune.models.io.load_model` to rebuild a saved model.
    kinds: ClassVar[dict[str, type["BoltzmannMachine"]]] = {}
    kind: ClassVar[str] = ""
    alive: list[torch.Tensor]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            BoltzmannMachine.kinds[cls.kind] = cls

    # --- provided by subclasses ---------------------------------------------------------
    @property
    @abstractmethod
    def weights(self) -> list[torch.Tensor]:
        """The L weight matrices, ``weights[l]`` (R, n_l, n_{l+1}) between layers l and l + 1."""

    @property
    @abstractmethod
    def biases(self) -> list[torch.Tensor]:
        """The L + 1 bias vectors, ``biases[l]`` (R, n_l); ``biases[0]`` is the visible bias."""

    @property
    @abstractmethod
    def weight_masks(self) -> list[torch.Tensor]:
        """The L bool masks of ``weights`` (True = the connection exists)."""

    @property
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor sizes, stored in checkpoints (JSON)."""

    @abstractmethod
    def named_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor by name, each with leading replica axis R (what a checkpoint holds)."""

    @classmethod
    @abstractmethod
    def _from_named_tensors(cls, config: dict[str, Any], tensors: dict[str, torch.Tensor]):
        """Rebuild from :attr:`config` and :meth:`named_tensors`; raises ShapeError on a mismatch."""

    # --- description ------------------------------------------------------------------
    @property
    def layer_sizes(self) -> list[int]:
        """``[n_visible, n_h1, …, n_hL]``."""
        return [self.biases[0].shape[1]] + [w.shape[2] for w in self.weights]

    @property
    def n_layers(self) -> int:
        """Number of weight layers L (= hidden layers; 1 for an RBM, 2 in the paper's DBM)."""
        return len(self.weights)

    @property
    def n_visible(self) -> int:
        """Number of visible units (int)."""
        return self.biases[0].shape[1]

    @property
    def n_replicas(self) -> int:
        """Number of replicas R in the population."""
        return self.biases[0].shape[0]

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.biases[0].device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters (float32 by default)."""
        return self.weights[0].dtype

    # --- masks ------------------------------------------------------------------------
    def apply_masks(self):
        """Remove the connections of dead units from the masks and zero masked weights.

        ``weight_masks[l] &= alive[l] ⊗ alive[l+1]``; ``weights[l] *= weight_masks[l]``.
        Returns ``self``.
        """
        for l, (w, m) in enumerate(zip(self.weights, self.weight_masks)):
            m &= self.alive[l].unsqueeze(2) & self.alive[l + 1].unsqueeze(1)
            w.mul_(m)
        return self

    # --- validation -------------------------------------------------------------------
    def _layer_states(self, x, l: int, *, binary: bool, name: str) -> torch.Tensor:
        """Validate states (or mean-field values) of layer l → (R, B, n_l) in the model dtype."""
        x = as_binary(x, self.layer_sizes[l], name=name, n_replicas=self.n_replicas, dtype=self.dtype,
                      device=self.device, check_values=binary)
        if not binary and x.is_floating_point() and (torch.isnan(x).any() or (x < 0).any() or (x > 1).any()):
            raise DataError(f"{name} must hold values in [0, 1]")
        return x.expand(self.n_replicas, -1, -1)

    # --- conditionals and sampling (SPEC §1) --------------------------------------------
    def p_layer(self, l: int, states) -> torch.Tensor:
        """p(x_l,j = 1 | x_{l−1}, x_{l+1}) = σ(b_l,j + (x_{l−1}ᵀW_{l−1})_j + (W_l x_{l+1})_j).

        Parameters
        ----------
        l : int
            Layer index, 0 (visible) … L.
        states : sequence of L + 1 entries
            Layer states (or mean-field values in [0, 1]), each (B, n_k) or (R, B, n_k); only
            the neighbours ``states[l−1]`` and ``states[l+1]`` are read (others may be None).

        Returns
        -------
        p : Tensor of shape (R, B, n_l), model dtype
            0 for dead units.

        Raises
        ------
        ShapeError, DataError
            A wrong layer index, wrong shapes or values outside [0, 1].
        """
        L = self.n_layers
        if not 0 <= l <= L or len(states) != L + 1:
            raise ShapeError(f"need a layer index in 0…{L} and {L + 1} layer states; got l={l}, {len(states)} states")
        x = [None] * (L + 1)
        for k in (l - 1, l + 1):
            if 0 <= k <= L:
                x[k] = self._layer_states(states[k], k, binary=False, name=f"states[{k}]")
        if 0 < l < L and x[l - 1].shape[1] != x[l + 1].shape[1]:
            raise ShapeError(f"states[{l - 1}] and states[{l + 1}] hold different batch sizes")
        return conditional(l, x, self.weights, self.biases, self.alive)

    def sample_layer(self, l: int, states, rng: Streams | int | None = None) -> torch.Tensor:
        """A binary sample of layer l given its neighbours: (R, B, n_l), model dtype.

        ``rng``: per-replica random streams (:class:`bmprune.rng.Streams`) or a seed.
        """
        return self._rng(rng).bernoulli(self.p_layer(l, states))

    def _rng(self, rng) -> Streams:
        return Streams.coerce(rng, self.n_replicas, self.device)

    def init_chains(self, n_chains: int, rng: Streams | int | None = None, v=None) -> tuple[torch.Tensor, ...]:
        """Start states for Gibbs chains: v, then each hidden layer sampled bottom-up.

        v is uniform on {0, 1} (or ``v`` as given, e.g. training images; then ``n_chains``
        is ignored). Hidden layer l is sampled from σ(b_l + 2·x_{l−1}ᵀW_{l−1}) for l < L, the
        doubled input standing in for the missing top-down input, and from
        σ(b_L + x_{L−1}ᵀW_{L−1}) for the top layer (the mean-field initialisation, sampled;
        for an RBM simply h ~ p(h | v)).

        Parameters
        ----------
        n_chains : int
        rng : Streams or int, optional
            Per-replica random streams, or a seed (default 0).
        v : (C, n_visible) or (R, C, n_visible), binary, optional

        Returns
        -------
        states : tuple of L + 1 Tensors (R, C, n_l), model dtype
        """
        rng = self._rng(rng)
        R = self.n_replicas
        if v is None:
            v = rng.bernoulli(torch.full((R, int(n_chains), self.n_visible), 0.5, dtype=self.dtype, device=self.device))
        else:
            v = self._layer_states(v, 0, binary=True, name="v").clone()
        x = [v]
        W, b = self.weights, self.biases
        for l in range(1, self.n_layers + 1):
            alpha = 2.0 if l < self.n_layers else 1.0
            p = torch.sigmoid(torch.baddbmm(b[l].unsqueeze(1), x[l - 1], W[l - 1], alpha=alpha))
            x.append(rng.bernoulli(_mask_dead(p, self.alive[l])))
        return tuple(x)

    def gibbs_step(self, states, rng: Streams | int | None = None) -> tuple[torch.Tensor, ...]:
        """One Gibbs sweep: every odd layer given the even ones, then every even layer given the odd.

        ``states``: tuple of L + 1 tensors (R, C, n_l). Returns the new tuple; the old odd
        layers are not read, so after the sweep the states are one joint sample of the chain
        (for an RBM: h ~ p(h | v), then v ~ p(v | h), and (v, h) is a joint sample).
        States are trusted (no validation): this is the sampling hot path. The uniforms are
        drawn first (one (C, n_l) block per layer and replica, in sweep order), then the pure
        kernel :func:`gibbs_sweep` runs.
        """
        rng = rng if isinstance(rng, Streams) else self._rng(rng)
        C, sizes = states[0].shape[1], self.layer_sizes
        us = [rng.uniform((C, sizes[l]), self.dtype).to(self.device) for l in sweep_order(self.n_layers)]
        return gibbs_sweep(states, self.weights, self.biases, alive_factors(self.alive), us)

    # --- mean-field inference (Salakhutdinov & Larochelle 2010) ---------------------------
    def mean_field(self, v, *, tol: float = 1e-7, max_iter: int = 50, mode: str = "auto") -> list[torch.Tensor]:
        """Mean-field posterior q(h | v) = Π_l Π_j Bernoulli(μ^l_j) with v clamped (SPEC §2).

        Initialised by a bottom-up pass with doubled input, μ^l = σ(b_l + 2·μ^{l−1}ᵀW_{l−1})
        for l < L and μ^L = σ(b_L + μ^{L−1}ᵀW_{L−1}) (μ⁰ = v), then iterated: all odd hidden
        layers μ^l ← σ(b_l + μ^{l−1}ᵀW_{l−1} + W_l μ^{l+1}), then all even ones, until the
        largest change of a pattern's μ is below ``tol`` (that pattern stops), or ``max_iter``
        iterations. With one hidden layer (an RBM) the posterior p(h | v) is exact after the
        single, undoubled pass and no iteration is done.

        Parameters
        ----------
        v : (B, n_visible) or (R, B, n_visible), binary
        tol : float, default 1e-7
        max_iter : int, default 50
            0 returns the bottom-up initialisation.
        mode : {"auto", "pattern", "population", "fixed"}
            The stopping rule (:data:`MF_MODES`): each pattern stops at its own convergence
            ("pattern", the CPU default), the batch and population stop together
            ("population", the default elsewhere), or exactly ``max_iter`` iterations with no
            host synchronisation ("fixed", for CUDA graphs).

        Returns
        -------
        mu : list of L Tensors (R, B, n_l), model dtype
            ``mu[l−1]`` is μ^l; dead units are exactly 0.

        Raises
        ------
        ShapeError, DataError
            ``v`` of the wrong width, replica count or not binary. ``ConfigError``: negative
            ``tol`` or ``max_iter``.

        Notes
        -----
        The stopping rules reach the same fixed point within the tolerance: a pattern stopped
        at its own convergence differs from one iterated on with its batch by about ``tol``.
        The tolerance is floored at 4 machine epsilons of the model dtype (4.8e−7 in
        float32, no change in float64): below that, changes are rounding noise and the
        iteration would otherwise run to ``max_iter`` every time.
        """
        check_mean_field(tol, max_iter)
        v = self._layer_states(v, 0, binary=True, name="v")
        return mean_field(v, self.weights, self.biases, self.alive, float(tol), int(max_iter), mode)[0]

    def transform(self, v, *, tol: float = 1e-7, max_iter: int = 50, mode: str = "auto") -> torch.Tensor:
        """Top-layer features μ^L, (R, B, n_L): the encoding of SPEC §6 (p(h | v) for an RBM).

        Same arguments and errors as :meth:`mean_field`. Dead units give 0; dropping them
        (their number differs between replicas) is left to the caller.
        """
        return self.mean_field(v, tol=tol, max_iter=max_iter, mode=mode)[-1]

    # --- exact normalisation ----------------------------------------------------------
    def enumerated_units(self) -> int:
        """Units :meth:`log_partition` enumerates: the smaller of the odd and the even layers' totals."""
        sizes = self.layer_sizes
        return min(sum(sizes[1::2]), sum(sizes[0::2]))

    def free_energy_units(self) -> int:
        """Units :meth:`free_energy` enumerates per pattern: the even hidden layers h², h⁴, … (0 for an RBM)."""
        return sum(self.layer_sizes[2::2])

    def is_enumerable(self, limit: int = EXACT_LIMIT) -> bool:
        """Whether exact log Z and log p(v) need at most ``limit`` enumerated states per replica."""
        return 2 ** max(self.enumerated_units(), self.free_energy_units()) <= int(limit)

    def log_partition(self, max_states: int | None = None) -> torch.Tensor:
        """Exact log Z per replica, float64, in nats.

        Enumerates the joint states of either the odd layers or the even layers (whichever
        has fewer units in total: for an RBM the smaller layer, for v–h¹–h² usually h¹ alone)
        and sums the other layers analytically: given the enumerated layers they are
        independent Bernoulli units, so each contributes Σ_j softplus(input_j) to
        log Σ exp(−E). Dead units are clamped off (SPEC §4).

        Parameters
        ----------
        max_states : int, optional
            Largest number of enumerated states allowed (default 2^24).

        Returns
        -------
        log_Z : Tensor of shape (R,), float64

        Raises
        ------
        EnumerationError
            2^(enumerated units) exceeds ``max_states``.
        """
        return log_partition(self.weights, self.biases, self.alive, max_states)

    def free_energy(self, v, max_states: int | None = None) -> torch.Tensor:
        """F(v) = −log Σ_h exp(−E(v, h)) in nats, per replica and pattern: (R, B), float64.

        The odd layers are summed analytically given the even ones; the even hidden layers
        (h², h⁴, …) are enumerated (an RBM has none: F is closed-form). Dead units are off.

        Raises
        ------
        EnumerationError
            2^(units of the even hidden layers) exceeds ``max_states`` (default 2^24).
        ShapeError, DataError
            ``v`` of the wrong width or not binary.
        """
        v = self._layer_states(v, 0, binary=True, name="v").double()
        return free_energy(v, self.weights, self.biases, self.alive, max_states)

    def log_prob(self, v, max_states: int | None = None, log_z: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(v) = −F(v) − log Z per replica, float64, in nats: (R, B).

        Pass ``log_z`` (R,) to reuse a partition function. Raises ``EnumerationError`` like
        :meth:`log_partition` and :meth:`free_energy`.
        """
        if log_z is None:
            log_z = self.log_partition(max_states)
        return -self.free_energy(v, max_states) - log_z.unsqueeze(-1)

    # --- populations --------------------------------------------------------------------
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy on ``device`` (and with floating tensors in ``dtype``); masks stay bool."""
        def move(t: torch.Tensor) -> torch.Tensor:
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)

        return type(self)._from_named_tensors(
            dict(self.config), {k: move(v) for k, v in self.named_tensors().items()}
        )

    def clone(self):
        """A deep copy of the whole population."""
        return self.replicas(torch.arange(self.n_replicas))

    def replicas(self, index) -> "BoltzmannMachine":
        """A new population made of the replicas ``index`` (ints, a slice or a bool mask).

        Repeating an index clones that replica, which is how the study runner turns one
        trained network per seed into one replica per (criterion, seed).
        """
        if isinstance(index, int):
            index = [index]
        if not isinstance(index, slice):
            index = torch.as_tensor(index, device=self.device)
        return type(self)._from_named_tensors(
            dict(self.config), {k: v[index].clone() for k, v in self.named_tensors().items()}
        )

    def replica(self, r: int) -> "BoltzmannMachine":
        """Replica ``r`` as a standalone model with R = 1."""
        if not -self.n_replicas <= r < self.n_replicas:
            raise IndexError(f"replica {r} out of range for a population of {self.n_replicas}")
        return self.replicas([r])

    # --- persistence ------------------------------------------------------------------
    def save(self, path, metadata: dict[str, str] | None = None) -> None:
        """Save to a safetensors file with JSON metadata (see :func:`bmprune.models.io.save_model`)."""
        from .io import save_model
        save_model(self, path, metadata)

    @classmethod
    def load(cls, path, device=None):
        """Load a model saved by :meth:`save`.

        Raises ``CheckpointError`` for a missing, corrupt or foreign file, or one holding
        another kind of model (e.g. a DBM asked of ``RBM.load``).
        """
        from ..errors import CheckpointError
        from .io import load_model
        model = load_model(path, device=device)
        if not isinstance(model, cls):
            raise CheckpointError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def __repr__(self) -> str:
        sizes = "-".join(str(n) for n in self.layer_sizes)
        return f"{type(self).__name__}({sizes}, n_replicas={self.n_replicas}, device={self.device})"


# --- pure kernels (trusted inputs: states (R|1, B, n_l), W (R, n_l, n_{l+1}), b (R, n_l)) ---
def layer_input(l: int, x, W, b) -> torch.Tensor:
    """b_l + x_{l−1}ᵀW_{l−1} + W_l x_{l+1}: (R, B, n_l). Reads only x[l−1] and x[l+1]."""
    out = b[l].unsqueeze(1)
    if l > 0:
        out = _affine(x[l - 1], W[l - 1], out)
    if l < len(W):
        out = _affine(x[l + 1], W[l].transpose(1, 2), out)
    return out


def _affine(x, W, acc) -> torch.Tensor:
    """acc + x W: x (R|1, B, n), W (R, n, m), acc (R, 1|B, m) → (R, B, m)."""
    if x.shape[0] == W.shape[0]:
        return torch.baddbmm(acc, x, W)          # the add fused into the GEMM
    return torch.matmul(x, W) + acc


def _mask_dead(p: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """p with dead units set to exactly 0, in place (skipped when no unit is dead)."""
    if not bool(alive.all()):
        p.mul_(alive.unsqueeze(1))
    return p


def conditional(l: int, x, W, b, alive) -> torch.Tensor:
    """p(x_l = 1 | neighbours) = σ(layer input) with dead units at 0: (R, B, n_l)."""
    return _mask_dead(torch.sigmoid(layer_input(l, x, W, b)), alive[l])


def sweep_order(L: int) -> list[int]:
    """The layers of a Gibbs sweep in update order: the odd ones, then the even ones."""
    return list(range(1, L + 1, 2)) + list(range(0, L + 1, 2))


def alive_factors(alive) -> list[torch.Tensor | None]:
    """Per layer the (R, 1, n_l) 0/1 factor that switches dead units off, or None when none is dead."""
    return [None if bool(a.all()) else a.unsqueeze(1).float() for a in alive]


def gibbs_sweep(x, W, b, alive_f, us) -> tuple[torch.Tensor, ...]:
    """One Gibbs sweep with given uniforms: a pure tensor function (no draws, no host sync).

    ``x``: L + 1 layer states (R, C, n_l); ``alive_f`` from :func:`alive_factors`; ``us``: one
    uniform tensor (R, C, n_l) per layer in :func:`sweep_order` (overwritten with the new
    states). Runs under ``torch.compile(fullgraph=True)`` and in CUDA graphs.
    """
    x = list(x)
    for u, l in zip(us, sweep_order(len(W))):
        p = torch.sigmoid(layer_input(l, x, W, b))
        if alive_f[l] is not None:
            p = p * alive_f[l].to(p.dtype)
        x[l] = torch.lt(u, p, out=u)                    # 0/1 written over the uniforms
    return tuple(x)


def check_mean_field(tol: float, max_iter: int) -> None:
    """ConfigError unless tol ≥ 0 and max_iter ≥ 0."""
    if not (tol >= 0) or int(max_iter) < 0:
        raise ConfigError(f"mean field needs tol ≥ 0 and max_iter ≥ 0; got {tol}, {max_iter}")


#: Mean-field stopping rules: "pattern" (each pattern of each replica stops at its own
#: convergence; on the CPU the unconverged rows are iterated replica by replica), "population"
#: (everything iterates until the largest change over the batch and population is below tol)
#: and "fixed" (exactly max_iter iterations, no host synchronisation: for CUDA graphs).
MF_MODES = ("auto", "pattern", "population", "fixed")


def mean_field(v, W, b, alive, tol: float, max_iter: int, mode: str = "auto") -> tuple[list[torch.Tensor], torch.Tensor]:
    """Mean-field fixed point (see ``BoltzmannMachine.mean_field``).

    Returns ``([μ¹, …, μ^L], iterations)`` with ``iterations`` (R, B) int64: the iterations
    each pattern of each replica was updated. ``alive``: the bool alive masks, or their
    :func:`alive_factors` (then the "fixed" mode runs without any host synchronisation, e.g.
    under ``torch.compile(fullgraph=True)``). ``mode`` is one of :data:`MF_MODES`; "auto" is
    "pattern" on the CPU (where skipping converged rows pays: a pattern converges in ~25
    iterations, the slowest of a batch in 50+) and "population" elsewhere.
    """
    if mode not in MF_MODES:
        raise ConfigError(f"mean-field mode must be one of {MF_MODES}; got {mode!r}")
    L, (R, B, _) = len(W), (W[0].shape[0], v.shape[1], None)
    tol = max(tol, MF_ROUNDING_EPS * torch.finfo(v.dtype).eps)
    # ``alive``: bool masks (R, n_l), or already the factors of alive_factors (no host sync then)
    factors = alive if any(a is None or a.dim() == 3 for a in alive) else alive_factors(alive)
    masks = [None if a is None else a.to(v.dtype) for a in factors]

    def sig(inp, l):
        out = torch.sigmoid(inp)
        return out if masks[l] is None else out.mul_(masks[l])

    vW = torch.bmm(v, W[0]) if v.shape[0] == W[0].shape[0] else torch.matmul(v, W[0])   # (R, B, n_1)
    c1 = vW + b[1].unsqueeze(1)       # layer 1's bottom-up input: the data are clamped, compute once
    its = torch.zeros(R, B, dtype=torch.int64, device=v.device)
    if L == 1:
        return [sig(c1, 1)], its
    mu = [v.expand(R, -1, -1), sig(c1 + vW, 1)]                                 # doubled input for h¹
    for l in range(2, L + 1):
        mu.append(sig(torch.baddbmm(b[l].unsqueeze(1), mu[l - 1], W[l - 1], alpha=2.0 if l < L else 1.0), l))
    if mode == "auto":
        mode = "pattern" if v.device.type == "cpu" else "population"
    if mode == "pattern" and max_iter > 0:
        masks_r = [None if m is None else m[:, 0] for m in masks]
        for r in range(R):
            its[r] = _rows_to_convergence([m[r] for m in mu], c1[r], [w[r] for w in W], [x[r] for x in b],
                                          [None if m is None else m[r] for m in masks_r], tol, max_iter)
        return mu[1:], its
    order = list(range(1, L + 1, 2)) + list(range(2, L + 1, 2))              # odd layers, then even
    for done in range(1, max_iter + 1):
        change = None
        for l in order:
            inp = c1 if l == 1 else torch.baddbmm(b[l].unsqueeze(1), mu[l - 1], W[l - 1])
            if l < L:
                inp = torch.baddbmm(inp, mu[l + 1], W[l].transpose(1, 2))
            new = sig(inp, l)
            if mode == "population":
                d = torch.sub(new, mu[l]).abs_().amax()                        # max |Δμ| over (R, B, n_l)
                change = d if change is None else torch.maximum(change, d)
            mu[l] = new
        its += 1
        if mode == "population" and change.item() < tol:   # one sync per iteration
            break
    return mu[1:], its


def _rows_to_convergence(mu, c1, W, b, masks, tol: float, max_iter: int) -> torch.Tensor:
    """Iterate one replica's rows until each converges (largest change < tol) or max_iter.

    ``mu``: [v, μ¹, …, μ^L] of (B, n_l), updated in place; ``c1`` (B, n_1) the clamped input
    of layer 1; ``W``, ``b``, ``masks`` that replica's weights, biases and alive masks (or
    None). Converged rows are written back and dropped, so later iterations cost only the
    rows still moving. Returns the iterations of each row, (B,) int64.
    """
    L, B = len(W), c1.shape[0]
    order = list(range(1, L + 1, 2)) + list(range(2, L + 1, 2))
    its = torch.zeros(B, dtype=torch.int64, device=c1.device)
    rows = torch.arange(B, device=c1.device)
    cur = list(mu)
    for it in range(1, max_iter + 1):
        change = None
        for l in order:
            inp = c1 if l == 1 else torch.addmm(b[l], cur[l - 1], W[l - 1])
            if l < L:
                inp = torch.addmm(inp, cur[l + 1], W[l].T)
            new = torch.sigmoid(inp)
            if masks[l] is not None:
                new.mul_(masks[l])
            d = torch.sub(new, cur[l]).abs_().amax(1)                             # (b,) per row
            change = d if change is None else torch.maximum(change, d)
            cur[l] = new
        done = change < tol
        n_done = int(done.sum())
        if n_done == 0 and it < max_iter:
            continue
        if it == max_iter:
            done = torch.ones_like(done)
        idx = rows[done]
        its[idx] = it
        for l in range(1, L + 1):
            mu[l][idx] = cur[l][done]
        if bool(done.all()):
            break
        keep = ~done
        rows, c1 = rows[keep], c1[keep]
        cur = [cur[0]] + [x[keep] for x in cur[1:]]
    return its


def log_partition(W, b, alive, max_states: int | None = None) -> torch.Tensor:
    """Exact log Z (R,) float64 of the layered model (W, b, alive); see ``BoltzmannMachine.log_partition``."""
    W = [w.double() for w in W]
    b = [x.double() for x in b]
    sizes = [b[0].shape[1]] + [w.shape[2] for w in W]
    L, R, device = len(W), b[0].shape[0], b[0].device
    odd, even = list(range(1, L + 1, 2)), list(range(0, L + 1, 2))
    n_odd, n_even = sum(sizes[l] for l in odd), sum(sizes[l] for l in even)
    enum, summed = (odd, even) if n_odd <= n_even else (even, odd)
    n = min(n_odd, n_even)
    check_enumerable(n, MAX_STATES if max_states is None else max_states, "the exact partition function")
    chunk = max(1, 2**24 // max(1, R * max(sizes)))
    parts = []
    for s in iter_binary_states(n, chunk, dtype=torch.float64, device=device):
        x: list[torch.Tensor | None] = [None] * (L + 1)
        val = torch.zeros(R, s.shape[0], dtype=torch.float64, device=device)
        dead_on = torch.zeros(R, s.shape[0], dtype=torch.bool, device=device)
        start = 0
        for l in enum:
            x[l] = s[:, start:start + sizes[l]].expand(R, -1, -1)                  # (R, S, n_l)
            start += sizes[l]
            val += (x[l] * b[l].unsqueeze(1)).sum(-1)
            dead_on |= (x[l] * (~alive[l]).unsqueeze(1)).sum(-1) > 0
        for m in summed:
            val += (F.softplus(layer_input(m, x, W, b)) * alive[m].unsqueeze(1)).sum(-1)
        parts.append(torch.logsumexp(val.masked_fill(dead_on, -math.inf), dim=-1))
    return torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)


def free_energy(v, W, b, alive, max_states: int | None = None) -> torch.Tensor:
    """F(v) (R, B) float64 of visible states v (R, B, n_v); see ``BoltzmannMachine.free_energy``."""
    W = [w.double() for w in W]
    b = [x.double() for x in b]
    sizes = [b[0].shape[1]] + [w.shape[2] for w in W]
    L, (R, B, _) = len(W), v.shape
    even = list(range(2, L + 1, 2))
    n = sum(sizes[l] for l in even)
    check_enumerable(n, MAX_STATES if max_states is None else max_states, "the exact free energy")
    chunk = max(1, 2**24 // max(1, R * B * max(sizes)))
    parts = []
    for s in iter_binary_states(n, chunk, dtype=torch.float64, device=v.device):      # (S, n)
        S = s.shape[0]
        x: list[torch.Tensor | None] = [v.repeat_interleave(S, dim=1)] + [None] * L     # (R, B·S, n_v)
        val = (v * b[0].unsqueeze(1)).sum(-1).repeat_interleave(S, dim=1)               # (R, B·S)
        dead_on = torch.zeros(R, S, dtype=torch.bool, device=v.device)
        start = 0
        for l in even:
            xs = s[:, start:start + sizes[l]].expand(R, -1, -1)                         # (R, S, n_l)
            start += sizes[l]
            val += (xs * b[l].unsqueeze(1)).sum(-1).repeat(1, B)
            dead_on |= (xs * (~alive[l]).unsqueeze(1)).sum(-1) > 0
            x[l] = xs.repeat(1, B, 1)                                                   # (R, B·S, n_l)
        for m in range(1, L + 1, 2):
            val += (F.softplus(layer_input(m, x, W, b)) * alive[m].unsqueeze(1)).sum(-1)
        val = val.masked_fill(dead_on.repeat(1, B), -math.inf).view(R, B, S)
        parts.append(torch.logsumexp(val, dim=-1))
    return -torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)


__all__ = ["BoltzmannMachine", "EXACT_LIMIT", "conditional", "free_energy", "layer_input", "log_partition",
           "mean_field"]
