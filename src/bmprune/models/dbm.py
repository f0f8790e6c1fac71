"""Deep Boltzmann machines with binary units, as populations of replicas (SPEC §1).

Layers x⁰ = v, x¹ = h¹, …, x^L = h^L, with weights only between adjacent layers:

    E(x) = −Σ_{l=0..L} b_lᵀ x_l − Σ_{l=0..L−1} x_lᵀ W_l x_{l+1},   p(x) = exp(−E(x)) / Z.

Given its two neighbours a layer is conditionally independent of everything else:
p(x_l,j = 1 | x_{l−1}, x_{l+1}) = σ(b_l,j + (x_{l−1}ᵀ W_{l−1})_j + (W_l x_{l+1})_j). Odd
layers depend only on even ones and vice versa, so a Gibbs sweep samples all odd layers
given the even ones, then all even layers given the odd ones. (In the paper's notation,
with two hidden layers, ``W[0]`` is W₁ and ``W[1]`` is W₂.)

Every tensor carries a leading replica axis R (DESIGN.md §Populations). Masked weights are
exactly zero; a dead (removed) hidden unit is clamped to 0 in every conditional, sample,
mean-field value and exact sum, so it never contributes to any statistic.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .._torch import as_binary, bernoulli, make_generator
from ..errors import ConfigError, DataError, ShapeError
from .base import BoltzmannMachine
from .enumeration import check_enumerable, iter_binary_states
from .rbm import _bias_tensor, _mask_tensor

# Bias given to dead units inside the kernels: σ(−1e4 + x) is exactly 0 in float32 and
# float64 for any input |x| < ~9,000 (a dead unit's weights are masked to 0 anyway), so dead
# units are clamped off without an extra multiply by the alive mask in every hot-loop step.
_DEAD_BIAS = -1e4
# Mean-field changes below this many machine epsilons are rounding noise, not progress: in
# float32 (eps = 1.2e-7) the iterates of a converged μ keep jittering by 1–2 ulps, so the
# SPEC's tol = 1e-7 would never be met and every update would run all 50 iterations.
_MF_ROUNDING_EPS = 4


class DBM(BoltzmannMachine):
    """A population of R deep Boltzmann machines sharing one set of tensors (SPEC §1).

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_visible, n_h1, …, n_hL]`` with L ≥ 1 hidden layers; the paper's MNIST model is
        ``[400, 400, 676]``.
    n_replicas : int, default 1
        Number of independent networks R.
    weight_masks : list of L bool tensors, optional
        ``weight_masks[l]`` of shape (n_l, n_{l+1}) (shared) or (R, n_l, n_{l+1}); an entry
        may be None (all connected). E.g. ``[bp.receptive_field_mask(20, 20, 5), None]``.
    seed : int, default 0
        Seeds the initial weights (drawn on the CPU, so the same seed gives the same network
        on every device). ``W[0]`` is drawn first, so a 1-hidden-layer DBM starts from the
        same weights as ``bp.RBM`` with the same seed.
    weight_std : float, default 0.1
        W_l ~ N(0, weight_std²), then masked (SPEC §2).
    biases : list of L + 1 floats or tensors of shape (n_l,) or (R, n_l), optional
        Initial biases per layer (default 0). Pre-trained DBMs get theirs from stacking
        (:func:`bmprune.training.stack_rbms`).
    device, dtype :
        Where the parameters live; float32 by default (DESIGN.md §Devices and dtypes).

    Attributes
    ----------
    W : list of L Tensors (R, n_l, n_{l+1})
        ``W[l]`` connects layer l (below) to layer l + 1 (above).
    b : list of L + 1 Tensors (R, n_l)
        ``b[0]`` is the visible bias.
    weight_masks : list of L bool Tensors (R, n_l, n_{l+1})
    alive : list of L + 1 bool Tensors (R, n_l)
        Units that take part in the model; ``alive[0]`` (visible) is always all True.

    Notes
    -----
    After changing ``alive`` call :meth:`apply_masks` so that the masks record the removed
    connections. Exact methods (:meth:`log_partition`) enumerate 2^(units in the odd or
    the even layers) states and are meant for tiny models only.

    Examples
    --------
    >>> import torch, bmprune as bp
    >>> dbm = bp.DBM([6, 4, 3], n_replicas=2, seed=1)
    >>> [w.shape for w in dbm.W], dbm.transform(torch.ones(5, 6)).shape
    ([torch.Size([2, 6, 4]), torch.Size([2, 4, 3])], torch.Size([2, 5, 3]))
    """

    kind = "DBM"

    def __init__(
        self,
        layer_sizes,
        n_replicas: int = 1,
        weight_masks=None,
        seed: int = 0,
        *,
        weight_std: float = 0.1,
        biases=None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        sizes = [int(n) for n in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1 or n_replicas < 1:
            raise ShapeError(f"a DBM needs ≥ 2 layers of positive size and n_replicas ≥ 1; got {list(layer_sizes)}, {n_replicas}")
        R, L = int(n_replicas), len(sizes) - 1
        masks = [None] * L if weight_masks is None else list(weight_masks)
        bias = [0.0] * (L + 1) if biases is None else list(biases)
        if len(masks) != L:
            raise ShapeError(f"weight_masks needs one entry per weight matrix ({L}); got {len(masks)}")
        if len(bias) != L + 1:
            raise ShapeError(f"biases needs one entry per layer ({L + 1}); got {len(bias)}")
        g = make_generator(seed, "cpu")  # init on CPU so the same seed gives the same network everywhere
        self.weight_masks = [_mask_tensor(m, (R, sizes[l], sizes[l + 1]), f"weight_masks[{l}]", device)
                             for l, m in enumerate(masks)]
        self.W = []
        for l in range(L):
            w = torch.randn(R, sizes[l], sizes[l + 1], generator=g, dtype=torch.float64) * float(weight_std)
            self.W.append(w.to(device=device, dtype=dtype) * self.weight_masks[l])
        self.b = [_bias_tensor(x, R, n, f"biases[{l}]", dtype, device) for l, (x, n) in enumerate(zip(bias, sizes))]
        self.alive = [torch.ones(R, n, dtype=torch.bool, device=device) for n in sizes]

    # --- description ------------------------------------------------------------------
    @property
    def layer_sizes(self) -> list[int]:
        """``[n_visible, n_h1, …, n_hL]``."""
        return [self.b[0].shape[1]] + [w.shape[2] for w in self.W]

    @property
    def n_layers(self) -> int:
        """Number of hidden layers L (= number of weight matrices; 2 in the paper)."""
        return len(self.W)

    @property
    def n_visible(self) -> int:
        return self.b[0].shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.W[0].dtype

    @property
    def weights(self) -> list[torch.Tensor]:
        """``W``: the weight matrices by layer pair (same list shape as an RBM's ``weights``)."""
        return self.W

    @property
    def biases(self) -> list[torch.Tensor]:
        """``b``: one bias per layer (same list shape as an RBM's ``biases``)."""
        return self.b

    @property
    def config(self) -> dict[str, Any]:
        return {"layer_sizes": self.layer_sizes}

    def named_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for l, (w, m) in enumerate(zip(self.W, self.weight_masks)):
            out[f"W.{l}"], out[f"weight_mask.{l}"] = w, m
        for l, (b, a) in enumerate(zip(self.b, self.alive)):
            out[f"b.{l}"], out[f"alive.{l}"] = b, a
        return out

    @classmethod
    def _from_named_tensors(cls, config, tensors):
        sizes = [int(n) for n in config.get("layer_sizes", [])]
        L = len(sizes) - 1
        try:
            self = cls.__new__(cls)
            self.W = [tensors[f"W.{l}"] for l in range(L)]
            self.weight_masks = [tensors[f"weight_mask.{l}"].bool() for l in range(L)]
            self.b = [tensors[f"b.{l}"] for l in range(L + 1)]
            self.alive = [tensors[f"alive.{l}"].bool() for l in range(L + 1)]
        except KeyError as exc:
            raise ShapeError(f"DBM tensors incomplete: missing {exc}") from None
        if L < 1 or len(tensors) != 4 * L + 2:
            raise ShapeError(f"DBM config {config} does not match the {len(tensors)} tensors given")
        R = self.b[0].shape[0]
        ok = all(self.W[l].shape == (R, sizes[l], sizes[l + 1]) == self.weight_masks[l].shape for l in range(L)) \
            and all(self.b[l].shape == (R, sizes[l]) == self.alive[l].shape for l in range(L + 1))
        if not ok:
            raise ShapeError("DBM tensors do not match each other or the config")
        return self

    def apply_masks(self) -> "DBM":
        """Remove the connections of dead units from the masks and zero masked weights.

        ``weight_masks[l] &= alive[l] ⊗ alive[l+1]``; ``W[l] *= weight_masks[l]``. Returns ``self``.
        """
        for l, (w, m) in enumerate(zip(self.W, self.weight_masks)):
            m &= self.alive[l].unsqueeze(2) & self.alive[l + 1].unsqueeze(1)
            w.mul_(m)
        return self

    def _effective_biases(self) -> list[torch.Tensor]:
        """Biases with dead units at ``_DEAD_BIAS``, so every kernel clamps them to 0."""
        return [b.masked_fill(~a, _DEAD_BIAS) for b, a in zip(self.b, self.alive)]

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
        if l > 0 and l < L and x[l - 1].shape[1] != x[l + 1].shape[1]:
            raise ShapeError(f"states[{l - 1}] and states[{l + 1}] hold different batch sizes")
        return torch.sigmoid(_layer_input(l, x, self.W, self._effective_biases()))

    def sample_layer(self, l: int, states, generator: torch.Generator | None = None) -> torch.Tensor:
        """A binary sample of layer l given its neighbours: (R, B, n_l), model dtype."""
        return bernoulli(self.p_layer(l, states), generator=generator)

    def init_chains(self, n_chains: int, generator: torch.Generator | None = None, v=None):
        """Start states for Gibbs chains: v, then each hidden layer sampled bottom-up.

        v is uniform on {0, 1} (or ``v`` as given, e.g. training images; then ``n_chains`` is
        ignored). Hidden layer l is sampled from σ(b_l + 2·x_{l−1}ᵀW_{l−1}) for l < L, the
        doubled input standing in for the missing top-down input, and from
        σ(b_L + x_{L−1}ᵀW_{L−1}) for the top layer (the mean-field initialisation, sampled).

        Parameters
        ----------
        n_chains : int
        generator : torch.Generator, optional
        v : (C, n_visible) or (R, C, n_visible), binary, optional

        Returns
        -------
        states : tuple of L + 1 Tensors (R, C, n_l), model dtype
        """
        R = self.n_replicas
        if v is None:
            v = bernoulli(torch.full((R, int(n_chains), self.n_visible), 0.5, dtype=self.dtype, device=self.device),
                          generator=generator)
        else:
            v = self._layer_states(v, 0, binary=True, name="v").clone()
        b = self._effective_biases()
        x = [v]
        for l in range(1, self.n_layers + 1):
            alpha = 2.0 if l < self.n_layers else 1.0
            x.append(bernoulli(torch.sigmoid(torch.baddbmm(b[l].unsqueeze(1), x[l - 1], self.W[l - 1], alpha=alpha)),
                               generator=generator))
        return tuple(x)

    def gibbs_step(self, states, generator: torch.Generator | None = None):
        """One Gibbs sweep: every odd layer given the even ones, then every even layer given the odd.

        ``states``: tuple of L + 1 tensors (R, C, n_l). Returns the new tuple; the old odd
        layers are not read, so after the sweep the states are one joint sample of the chain.
        States are trusted (no validation): this is the sampling hot path.
        """
        W, b = self.W, self._effective_biases()
        x = list(states)
        for parity in (1, 0):
            for l in range(parity, self.n_layers + 1, 2):
                x[l] = bernoulli(torch.sigmoid(_layer_input(l, x, W, b)), generator=generator)
        return tuple(x)

    # --- mean-field inference (Salakhutdinov & Larochelle 2010) ---------------------------
    def mean_field(self, v, *, tol: float = 1e-7, max_iter: int = 50) -> list[torch.Tensor]:
        """Mean-field posterior q(h | v) = Π_l Π_j Bernoulli(μ^l_j) with v clamped (SPEC §2).

        Initialised by a bottom-up pass with doubled input, μ^l = σ(b_l + 2·μ^{l−1}ᵀW_{l−1})
        for l < L and μ^L = σ(b_L + μ^{L−1}ᵀW_{L−1}) (μ⁰ = v), then iterated: all odd hidden
        layers μ^l ← σ(b_l + μ^{l−1}ᵀW_{l−1} + W_l μ^{l+1}), then all even ones, until the
        largest change of any μ over the whole batch and population is below ``tol``, or
        ``max_iter`` iterations.

        Parameters
        ----------
        v : (B, n_visible) or (R, B, n_visible), binary
        tol : float, default 1e-7
        max_iter : int, default 50
            0 returns the bottom-up initialisation. With one hidden layer the posterior is
            exact after the (single, undoubled) pass and no iteration is done.

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
        The stopping rule is shared by the batch and the replicas (they are iterated
        together), so a pattern's μ can differ from the one computed alone by about ``tol``.
        The tolerance is floored at 4 machine epsilons of the model dtype (4.8e−7 in
        float32, no change in float64): below that, changes are rounding noise and the
        iteration would otherwise run to ``max_iter`` every time.
        """
        _check_mf(tol, max_iter)
        v = self._layer_states(v, 0, binary=True, name="v")
        return _mean_field(v, self.W, self._effective_biases(), float(tol), int(max_iter))[0]

    def transform(self, v, *, tol: float = 1e-7, max_iter: int = 50) -> torch.Tensor:
        """Top-layer mean-field features μ^L, (R, B, n_L): the encoding of SPEC §6.

        Same arguments and errors as :meth:`mean_field`. Dead units give 0; dropping them
        (their number differs between replicas) is left to the caller.
        """
        return self.mean_field(v, tol=tol, max_iter=max_iter)[-1]

    # --- energies and exact normalisation ---------------------------------------------
    def energy(self, states) -> torch.Tensor:
        """E(x) = −Σ_l b_lᵀx_l − Σ_l x_lᵀW_l x_{l+1} in nats, dead units counted as off.

        ``states``: L + 1 binary tensors (B, n_l) or (R, B, n_l). Returns (R, B), model dtype.
        """
        if len(states) != self.n_layers + 1:
            raise ShapeError(f"energy needs {self.n_layers + 1} layer states, got {len(states)}")
        x = [self._layer_states(s, l, binary=True, name=f"states[{l}]") * a.unsqueeze(1)
             for l, (s, a) in enumerate(zip(states, self.alive))]
        e = -sum((xl * b.unsqueeze(1)).sum(-1) for xl, b in zip(x, self.b))
        for l, w in enumerate(self.W):
            e = e - (torch.bmm(x[l], w) * x[l + 1]).sum(-1)
        return e

    def log_partition(self, max_states: int | None = None) -> torch.Tensor:
        """Exact log Z per replica, float64, in nats.

        Enumerates the joint states of either the odd layers or the even layers (whichever
        has fewer units in total; for v–h¹–h² usually h¹ alone) and sums the other layers
        analytically: given the enumerated layers they are independent Bernoulli units, so
        each contributes Σ_j softplus(input_j) to log Σ exp(−E). Dead units are clamped off.

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
        sizes, L, R = self.layer_sizes, self.n_layers, self.n_replicas
        W = [w.double() for w in self.W]
        b = [x.double() for x in self.b]
        odd, even = list(range(1, L + 1, 2)), list(range(0, L + 1, 2))
        n_odd, n_even = sum(sizes[l] for l in odd), sum(sizes[l] for l in even)
        enum, summed = (odd, even) if n_odd <= n_even else (even, odd)
        n = min(n_odd, n_even)
        check_enumerable(n, max_states, "the exact partition function")
        chunk = max(1, 2**24 // max(1, R * max(sizes)))
        parts = []
        for s in iter_binary_states(n, chunk, dtype=torch.float64, device=self.device):
            x: list[torch.Tensor | None] = [None] * (L + 1)
            val = torch.zeros(R, s.shape[0], dtype=torch.float64, device=self.device)
            dead_on = torch.zeros(R, s.shape[0], dtype=torch.bool, device=self.device)
            start = 0
            for l in enum:
                x[l] = s[:, start:start + sizes[l]].expand(R, -1, -1)                  # (R, S, n_l)
                start += sizes[l]
                val += (x[l] * b[l].unsqueeze(1)).sum(-1)
                dead_on |= (x[l] * (~self.alive[l]).unsqueeze(1)).sum(-1) > 0
            for m in summed:
                inp = _layer_input(m, x, W, b)                                           # (R, S, n_m)
                val += (F.softplus(inp) * self.alive[m].unsqueeze(1)).sum(-1)
            parts.append(torch.logsumexp(val.masked_fill(dead_on, -math.inf), dim=-1))
        return torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)


# --- pure kernels (trusted inputs: states (R, B, n_l), biases with dead units at _DEAD_BIAS) ---
def _layer_input(l: int, x, W, b) -> torch.Tensor:
    """b_l + x_{l−1}ᵀW_{l−1} + W_l x_{l+1}: (R, B, n_l). Reads only x[l−1] and x[l+1]."""
    out = b[l].unsqueeze(1)
    if l > 0:
        out = torch.baddbmm(out, x[l - 1], W[l - 1])
    if l < len(W):
        out = torch.baddbmm(out, x[l + 1], W[l].transpose(1, 2))
    return out


def _check_mf(tol: float, max_iter: int) -> None:
    if not (tol >= 0) or int(max_iter) < 0:
        raise ConfigError(f"mean field needs tol ≥ 0 and max_iter ≥ 0; got {tol}, {max_iter}")


def _mean_field(v, W, b, tol: float, max_iter: int) -> tuple[list[torch.Tensor], int]:
    """Mean-field fixed point; returns ([μ¹, …, μ^L], iterations done). See ``DBM.mean_field``."""
    L = len(W)
    tol = max(tol, _MF_ROUNDING_EPS * torch.finfo(v.dtype).eps)
    vW = torch.bmm(v, W[0])                                                   # (R, B, n_1)
    c1 = vW + b[1].unsqueeze(1)       # layer 1's bottom-up input: the data are clamped, compute once
    if L == 1:
        return [torch.sigmoid(c1)], 0
    mu = [v, torch.sigmoid(c1 + vW)]                                           # doubled input for h¹
    for l in range(2, L + 1):
        mu.append(torch.sigmoid(torch.baddbmm(b[l].unsqueeze(1), mu[l - 1], W[l - 1], alpha=2.0 if l < L else 1.0)))
    order = list(range(1, L + 1, 2)) + list(range(2, L + 1, 2))              # odd layers, then even
    done = 0
    for done in range(1, max_iter + 1):
        change = None
        for l in order:
            inp = c1 if l == 1 else torch.baddbmm(b[l].unsqueeze(1), mu[l - 1], W[l - 1])
            if l < L:
                inp = torch.baddbmm(inp, mu[l + 1], W[l].transpose(1, 2))
            new = torch.sigmoid(inp)
            d = torch.sub(new, mu[l]).abs_().amax()                            # max |Δμ| over (R, B, n_l)
            change = d if change is None else torch.maximum(change, d)
            mu[l] = new
        if change.item() < tol:   # one sync per iteration: the whole population stops together
            break
    return mu[1:], done


__all__ = ["DBM"]
