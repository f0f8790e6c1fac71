"""Deep Boltzmann machines with binary units, as populations of replicas (SPEC §1).

Layers x⁰ = v, x¹ = h¹, …, x^L = h^L, with weights only between adjacent layers:

    E(x) = −Σ_{l=0..L} b_lᵀ x_l − Σ_{l=0..L−1} x_lᵀ W_l x_{l+1},   p(x) = exp(−E(x)) / Z.

Given its two neighbours a layer is conditionally independent of everything else:
p(x_l,j = 1 | x_{l−1}, x_{l+1}) = σ(b_l,j + (x_{l−1}ᵀ W_{l−1})_j + (W_l x_{l+1})_j). Odd
layers depend only on even ones and vice versa, so a Gibbs sweep samples all odd layers
given the even ones, then all even layers given the odd ones. (In the paper's notation,
with two hidden layers, ``W[0]`` is W₁ and ``W[1]`` is W₂.)

Every tensor carries a leading replica axis R (DESIGN.md §Populations). Masked weights are
exactly zero; a dead (removed) hidden unit is clamped to 0 by its ``alive`` mask in every
conditional, sample, mean-field value and exact sum, so it never contributes to any
statistic. Conditionals, Gibbs sweeps, mean field and the exact partition function are the
generic layered ones of :class:`~bmprune.models.base.BoltzmannMachine`.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ShapeError
from ..rng import Streams
from .base import BoltzmannMachine
from .rbm import _bias_tensor, _mask_tensor, init_weights


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
    seed : int or Streams, default 0
        Seeds the initial weights, per replica (drawn on the CPU, so the same seed gives the
        same network on every device). ``W[0]`` is drawn first, so a 1-hidden-layer DBM
        starts from the same weights as ``bp.RBM`` with the same seed.
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
        seed: int | Streams = 0,
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
        self._masks = [_mask_tensor(m, (R, sizes[l], sizes[l + 1]), f"weight_masks[{l}]", device)
                       for l, m in enumerate(masks)]
        self.W = [w.to(device=device, dtype=dtype) * m
                  for w, m in zip(init_weights(sizes, R, seed, weight_std), self._masks)]
        self.b = [_bias_tensor(x, R, n, f"biases[{l}]", dtype, device) for l, (x, n) in enumerate(zip(bias, sizes))]
        self.alive = [torch.ones(R, n, dtype=torch.bool, device=device) for n in sizes]

    # --- description ------------------------------------------------------------------
    @property
    def weights(self) -> list[torch.Tensor]:
        """``W``: the weight matrices by layer pair (same list shape as an RBM's ``weights``)."""
        return self.W

    @property
    def biases(self) -> list[torch.Tensor]:
        """``b``: one bias per layer (same list shape as an RBM's ``biases``)."""
        return self.b

    @property
    def weight_masks(self) -> list[torch.Tensor]:
        """The L bool masks of ``W``, (R, n_l, n_{l+1})."""
        return self._masks

    @property
    def config(self) -> dict[str, Any]:
        """Constructor sizes, stored in checkpoints (JSON)."""
        return {"layer_sizes": self.layer_sizes}

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor by name, each with leading replica axis R (what a checkpoint holds)."""
        out: dict[str, torch.Tensor] = {}
        for l, (w, m) in enumerate(zip(self.W, self.weight_masks)):
            out[f"W.{l}"], out[f"weight_mask.{l}"] = w, m
        for l, (b, a) in enumerate(zip(self.b, self.alive)):
            out[f"b.{l}"], out[f"alive.{l}"] = b, a
        return out

    @classmethod
    def _layout(cls, config) -> tuple[list[int], dict[str, list[str]]]:
        """Layer sizes from :attr:`config` and the tensor names by role (weights, biases, masks,
        alive), for :func:`bmprune.models.io.validate_tensors`.

        Raises ShapeError unless ``layer_sizes`` lists ≥ 2 positive integers.
        """
        sizes = config.get("layer_sizes")
        if not isinstance(sizes, list) or len(sizes) < 2 or not all(type(n) is int and n >= 1 for n in sizes):
            raise ShapeError(f"layer_sizes must list at least two positive integers; got {sizes!r}")
        L = len(sizes) - 1
        return sizes, {"weights": [f"W.{l}" for l in range(L)], "biases": [f"b.{l}" for l in range(L + 1)],
                       "masks": [f"weight_mask.{l}" for l in range(L)], "alive": [f"alive.{l}" for l in range(L + 1)]}

    @classmethod
    def _from_named_tensors(cls, config, tensors):
        sizes = [int(n) for n in config.get("layer_sizes", [])]
        L = len(sizes) - 1
        try:
            self = cls.__new__(cls)
            self.W = [tensors[f"W.{l}"] for l in range(L)]
            self._masks = [tensors[f"weight_mask.{l}"].bool() for l in range(L)]
            self.b = [tensors[f"b.{l}"] for l in range(L + 1)]
            self.alive = [tensors[f"alive.{l}"].bool() for l in range(L + 1)]
        except KeyError as exc:
            raise ShapeError(f"DBM tensors incomplete: missing {exc}") from None
        if L < 1 or len(tensors) != 4 * L + 2:
            raise ShapeError(f"DBM config {config} does not match the {len(tensors)} tensors given")
        R = self.b[0].shape[0]
        ok = all(self.W[l].shape == (R, sizes[l], sizes[l + 1]) == self._masks[l].shape for l in range(L)) \
            and all(self.b[l].shape == (R, sizes[l]) == self.alive[l].shape for l in range(L + 1))
        if not ok:
            raise ShapeError("DBM tensors do not match each other or the config")
        return self

    # --- energies ---------------------------------------------
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


__all__ = ["DBM"]
