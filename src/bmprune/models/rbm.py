"""Bernoulli restricted Boltzmann machines, as populations of replicas (SPEC §1).

E(v, h) = −b_vᵀv − b_hᵀh − vᵀWh,  p(v, h) = exp(−E)/Z,
F(v) = −b_vᵀv − Σ_j softplus(b_h,j + (vᵀW)_j),  log p(v) = −F(v) − log Z.

Every tensor carries a leading replica axis R. Masked weights are exactly zero. A removed
("dead") hidden unit is clamped to 0: it is never sampled on, adds nothing to F(v) or Z, and
its weights are masked (SPEC §1 "Unit removal"). Sampling, mean field (exact p(h | v)), the
partition function and everything else generic comes from
:class:`~bmprune.models.base.BoltzmannMachine` with one weight layer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .._torch import as_binary
from ..errors import ShapeError
from ..rng import Streams
from .base import BoltzmannMachine, conditional


def _bias_tensor(value, R: int, n: int, name: str, dtype, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype, device=device)
    if t.dim() == 0:
        return t.expand(R, n).clone()
    if t.shape == (n,):
        return t.expand(R, n).clone()
    if t.shape == (R, n):
        return t.clone()
    raise ShapeError(f"{name} must be a scalar, shape ({n},) or ({R}, {n}); got {tuple(t.shape)}")


def _mask_tensor(mask, shape: tuple[int, ...], name: str, device) -> torch.Tensor:
    """Validate a boolean mask of shape ``shape[1:]`` (shared) or ``shape`` (per replica)."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    m = torch.as_tensor(mask, device=device)
    if m.dtype != torch.bool:
        if ((m != 0) & (m != 1)).any():
            raise ShapeError(f"{name} must be boolean (or 0/1)")
        m = m.bool()
    if tuple(m.shape) == shape[1:]:
        return m.expand(shape).clone()
    if tuple(m.shape) == shape:
        return m.clone()
    raise ShapeError(f"{name} must have shape {shape[1:]} or {shape}; got {tuple(m.shape)}")


def init_weights(sizes: list[int], R: int, seed, weight_std: float) -> list[torch.Tensor]:
    """Initial weights W_l ~ N(0, weight_std²), float64 on the CPU, drawn per replica (SPEC §2).

    ``seed``: an int (replica r draws from key (seed, r)) or per-replica
    :class:`~bmprune.rng.Streams`. W_0 is drawn first, so an RBM and a DBM of the same seed
    start from the same W_0. Drawn on the CPU so the same seed gives the same network on
    every device.
    """
    rng = Streams.coerce(seed, R, "cpu").child("init")
    return [rng.normal((a, b)) * float(weight_std) for a, b in zip(sizes[:-1], sizes[1:])]


class RBM(BoltzmannMachine):
    """A population of R Bernoulli–Bernoulli RBMs sharing one set of tensors (SPEC §1).

    Parameters
    ----------
    n_visible, n_hidden : int
        Layer sizes.
    n_replicas : int, default 1
        Number of independent networks R.
    weight_mask : bool tensor of shape (n_visible, n_hidden) or (R, n_visible, n_hidden), optional
        Allowed connections (e.g. :func:`bmprune.receptive_field_mask`). Default: all.
    seed : int or Streams, default 0
        Seeds the initial weights, per replica (:mod:`bmprune.rng`): replica r of a seed-s
        population starts from the same weights whatever R.
    weight_std : float, default 0.1
        W ~ N(0, weight_std²), then masked (the paper's initialisation, SPEC §2).
    visible_bias, hidden_bias : float or tensor of shape (n,) or (R, n), default 0.0
        Initial biases. The paper uses b_v = −1, b_h = −2 for MNIST, and for CIFAR
        b_h = −2 with b_v = logit(data mean): see :meth:`init_visible_bias`.
    device, dtype :
        Where the parameters live; float32 by default (DESIGN.md §Devices and dtypes).

    Attributes
    ----------
    W : Tensor (R, n_visible, n_hidden)
    b_v : Tensor (R, n_visible)
    b_h : Tensor (R, n_hidden)
    weight_mask : bool Tensor (R, n_visible, n_hidden)
    alive : list of two bool Tensors, (R, n_visible) and (R, n_hidden)
        Units that take part in the model. Visible units are never removed.

    Examples
    --------
    >>> import bmprune as bp
    >>> rbm = bp.RBM(6, 4, n_replicas=3, seed=1)
    >>> rbm.W.shape, rbm.log_partition().shape
    (torch.Size([3, 6, 4]), torch.Size([3]))
    """

    kind = "RBM"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        n_replicas: int = 1,
        weight_mask=None,
        seed: int | Streams = 0,
        *,
        weight_std: float = 0.1,
        visible_bias=0.0,
        hidden_bias=0.0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if n_visible < 1 or n_hidden < 1 or n_replicas < 1:
            raise ShapeError(f"RBM sizes must be positive; got n_visible={n_visible}, n_hidden={n_hidden}, n_replicas={n_replicas}")
        R, nv, nh = int(n_replicas), int(n_visible), int(n_hidden)
        self.weight_mask = _mask_tensor(weight_mask, (R, nv, nh), "weight_mask", device)
        (W,) = init_weights([nv, nh], R, seed, weight_std)
        self.W = W.to(device=device, dtype=dtype) * self.weight_mask
        self.b_v = _bias_tensor(visible_bias, R, nv, "visible_bias", dtype, device)
        self.b_h = _bias_tensor(hidden_bias, R, nh, "hidden_bias", dtype, device)
        self.alive = [
            torch.ones(R, nv, dtype=torch.bool, device=device),
            torch.ones(R, nh, dtype=torch.bool, device=device),
        ]

    # --- description ------------------------------------------------------------------
    @property
    def n_hidden(self) -> int:
        """Number of hidden units (int)."""
        return self.W.shape[2]

    @property
    def weights(self) -> list[torch.Tensor]:
        """The weight matrices by layer pair: ``[W]`` (same list shape as a DBM's)."""
        return [self.W]

    @property
    def weight_masks(self) -> list[torch.Tensor]:
        """``[weight_mask]`` (same list shape as a DBM's)."""
        return [self.weight_mask]

    @property
    def biases(self) -> list[torch.Tensor]:
        """``[b_v, b_h]``: one bias per layer (same list shape as a DBM's ``b``)."""
        return [self.b_v, self.b_h]

    @property
    def config(self) -> dict[str, Any]:
        """Constructor sizes, stored in checkpoints (JSON)."""
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden}

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor by name, each with leading replica axis R (what a checkpoint holds)."""
        return {
            "W": self.W, "b_v": self.b_v, "b_h": self.b_h, "weight_mask": self.weight_mask,
            "alive.0": self.alive[0], "alive.1": self.alive[1],
        }

    @classmethod
    def _layout(cls, config) -> tuple[list[int], dict[str, list[str]]]:
        """Layer sizes ``[n_visible, n_hidden]`` from :attr:`config` and the tensor names by role
        (weights, biases, masks, alive), for :func:`bmprune.models.io.validate_tensors`.

        Raises ShapeError for sizes that are not positive integers.
        """
        sizes = [config.get("n_visible"), config.get("n_hidden")]
        if not all(type(n) is int and n >= 1 for n in sizes):
            raise ShapeError(f"n_visible and n_hidden must be positive integers; got {sizes}")
        return sizes, {"weights": ["W"], "biases": ["b_v", "b_h"], "masks": ["weight_mask"],
                       "alive": ["alive.0", "alive.1"]}

    @classmethod
    def _from_named_tensors(cls, config, tensors):
        self = cls.__new__(cls)
        try:
            self.W, self.b_v, self.b_h = tensors["W"], tensors["b_v"], tensors["b_h"]
            self.weight_mask = tensors["weight_mask"].bool()
            self.alive = [tensors["alive.0"].bool(), tensors["alive.1"].bool()]
        except KeyError as exc:
            raise ShapeError(f"RBM tensors incomplete: missing {exc}") from None
        R, nv, nh = self.W.shape
        if (config.get("n_visible"), config.get("n_hidden")) != (nv, nh) or self.b_v.shape != (R, nv) \
                or self.b_h.shape != (R, nh) or self.weight_mask.shape != self.W.shape:
            raise ShapeError("RBM tensors do not match each other or the config")
        return self

    def init_visible_bias(self, data, eps: float = 1e-7) -> "RBM":
        """Set b_v,i = logit(fraction of patterns with v_i = 1), clipped to [eps, 1−eps] (SPEC §2).

        ``data``: (N, n_visible) or (R, N, n_visible) binary. Returns ``self``.
        """
        x = as_binary(data, self.n_visible, name="data", n_replicas=self.n_replicas, dtype=torch.float64, device=self.device)
        p = x.mean(dim=1).clamp(eps, 1 - eps)
        self.b_v = torch.log(p / (1 - p)).to(self.dtype).expand_as(self.b_v).clone()
        return self

    # --- conditionals (SPEC §1) -----------------------------------------------------------
    def _v(self, v, dtype=None) -> torch.Tensor:
        return as_binary(v, self.n_visible, name="v", n_replicas=self.n_replicas,
                         dtype=dtype or self.dtype, device=self.device)

    def _h(self, h, dtype=None) -> torch.Tensor:
        return as_binary(h, self.n_hidden, name="h", n_replicas=self.n_replicas,
                         dtype=dtype or self.dtype, device=self.device)

    def p_h_given_v(self, v) -> torch.Tensor:
        """p(h_j = 1 | v) = σ(b_h,j + Σ_i v_i W_ij), 0 for dead units.

        v: (B, n_visible) or (R, B, n_visible), binary. Returns (R, B, n_hidden), model dtype.
        """
        return conditional(1, [self._v(v), None], self.weights, self.biases, self.alive)

    def p_v_given_h(self, h) -> torch.Tensor:
        """p(v_i = 1 | h) = σ(b_v,i + Σ_j W_ij h_j). h: (B|R,B, n_hidden) → (R, B, n_visible)."""
        return conditional(0, [None, self._h(h)], self.weights, self.biases, self.alive)

    def sample_h(self, v, rng: Streams | int | None = None) -> torch.Tensor:
        """A binary sample of h ~ p(h | v): (R, B, n_hidden), model dtype. ``rng``: Streams or a seed."""
        return self._rng(rng).bernoulli(self.p_h_given_v(v))

    def sample_v(self, h, rng: Streams | int | None = None) -> torch.Tensor:
        """A binary sample of v ~ p(v | h): (R, B, n_visible), model dtype. ``rng``: Streams or a seed."""
        return self._rng(rng).bernoulli(self.p_v_given_h(h))

    # --- energies (SPEC §1) ------------------------------------------------------------
    def energy(self, v, h) -> torch.Tensor:
        """E(v, h) = −b_vᵀv − b_hᵀh − vᵀWh in nats. v, h: (B|R,B, n) → (R, B)."""
        v, h = self._v(v), self._h(h) * self.alive[1].unsqueeze(1)
        vW = torch.matmul(v, self.W)
        return -(v * self.b_v.unsqueeze(1)).sum(-1) - (h * (self.b_h.unsqueeze(1) + vW)).sum(-1)

    def free_energy(self, v) -> torch.Tensor:
        """F(v) = −b_vᵀv − Σ_j softplus(b_h,j + (vᵀW)_j) in nats (dead units excluded).

        v: (B, n_visible) or (R, B, n_visible), binary. Returns (R, B) in the model dtype.
        """
        return free_energy(self._v(v), self.W, self.b_v, self.b_h, self.alive[1])

    def log_prob(self, v, max_states: int | None = None, log_z: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(v) = −F(v) − log Z per replica, float64, in nats.

        v: (B, n_visible) or (R, B, n_visible), binary → (R, B). Pass ``log_z`` (R,) to reuse
        a partition function. Raises ``EnumerationError`` like :meth:`log_partition`.
        """
        v = self._v(v, torch.float64)
        if log_z is None:
            log_z = self.log_partition(max_states)
        f = free_energy(v, self.W.double(), self.b_v.double(), self.b_h.double(), self.alive[1])
        return -f - log_z.unsqueeze(-1)


def free_energy(v, W, b_v, b_h, alive_h):
    """F(v) (R, B) of visible states v (R|1, B, nv): −b_vᵀv − Σ_j alive_j softplus(b_h + vᵀW)_j."""
    pre = torch.matmul(v, W) + b_h.unsqueeze(1)
    return -(v * b_v.unsqueeze(1)).sum(-1) - (F.softplus(pre) * alive_h.unsqueeze(1)).sum(-1)


__all__ = ["RBM", "free_energy", "init_weights"]
