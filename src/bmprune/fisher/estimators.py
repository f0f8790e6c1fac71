"""Fisher-information estimates from model samples (SPEC §4).

variance_fi and heuristic_fi score each weight; fim_from_samples builds the full FIM;
eigenvector_importance turns a FIM into |u₁| per parameter. Everything is batched over
leading dims (a replica axis R), broadcasting. Nothing here samples: pass states from
:mod:`bmprune.sampling`. Exact enumeration lives in :mod:`bmprune.fisher.exact`.

Streaming. The per-weight estimates need only first moments: the count N and the sums
Σ x, Σ y, Σ x yᵀ over samples of each adjacent layer pair (x, y). :class:`SampleStatistics`
accumulates them over chunks (e.g. from :func:`bmprune.iter_samples`), so a population never
holds all its samples at once; its methods give the same estimates as the free functions on
the raw samples. For a deep Boltzmann machine the estimates are layer-wise: W_l is scored from
the joint samples of layers l and l+1 (the paper's assumption of weakly correlated hidden
units, SPEC §4).

Exactness. Samples are 0/1, so every product and every sum of ≤ 2^24 of them is an integer
that float32 represents exactly: the big products run in float32 per chunk (twice as fast as
float64 on a CPU) and are accumulated in float64, with no rounding at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import DataError, ShapeError

# float32 sums of 0/1 products are exact up to 2^24 terms; chunks never exceed this.
_EXACT_F32_ROWS = 2**24
# Elements of one chunk of the (…, chunk, P) statistics matrix in fim_from_samples (64 MiB f32).
_FIM_BLOCK_ELEMENTS = 2**24


# --- parameter-shaped results ------------------------------------------------------------
@dataclass(frozen=True)
class FisherScores:
    """Per-parameter scores of an RBM (or one layer pair of a DBM), split by parameter kind.

    Attributes
    ----------
    W : Tensor of shape (..., n_visible, n_hidden)
    b_v : Tensor of shape (..., n_visible)
    b_h : Tensor of shape (..., n_hidden)
    """

    W: torch.Tensor
    b_v: torch.Tensor
    b_h: torch.Tensor

    def flat(self) -> torch.Tensor:
        """The scores as one vector per leading index, order [b_v, b_h, W row-major]: (..., P)."""
        return torch.cat([self.b_v, self.b_h, self.W.flatten(-2)], dim=-1)


def split_parameters(x: torch.Tensor, n_visible: int, n_hidden: int) -> FisherScores:
    """Split vectors in the FIM order [b_v, b_h, W row-major (i·n_hidden + j)].

    Parameters
    ----------
    x : Tensor of shape (..., P), P = n_visible + n_hidden + n_visible·n_hidden
    n_visible, n_hidden : int

    Returns
    -------
    FisherScores
        Views of ``x``: W (..., n_visible, n_hidden), b_v (..., n_visible), b_h (..., n_hidden).

    Raises
    ------
    ShapeError
        When the last axis is not P.
    """
    nv, nh = int(n_visible), int(n_hidden)
    P = nv + nh + nv * nh
    if x.shape[-1] != P:
        raise ShapeError(f"expected a last axis of P = {nv} + {nh} + {nv}·{nh} = {P}; got {x.shape[-1]}")
    return FisherScores(W=x[..., nv + nh:].unflatten(-1, (nv, nh)), b_v=x[..., :nv], b_h=x[..., nv:nv + nh])


def fim_diagonal(fim: torch.Tensor, n_visible: int, n_hidden: int) -> FisherScores:
    """The diagonal of a FIM (…, P, P), split into W, b_v, b_h (see :func:`split_parameters`)."""
    return split_parameters(torch.diagonal(fim, dim1=-2, dim2=-1), n_visible, n_hidden)


def eigenvector_importance(fim: torch.Tensor, n_visible: int, n_hidden: int) -> FisherScores:
    """Leading-eigenvector importance |u₁| of a FIM, per parameter (SPEC §4).

    u₁ is the unit eigenvector of the largest eigenvalue (``torch.linalg.eigh``, float64).
    Its sign is arbitrary, so the absolute value is taken (the original code forgot this).

    Parameters
    ----------
    fim : Tensor of shape (..., P, P)
        Symmetric; order [b_v, b_h, W row-major], e.g. from :func:`~bmprune.fisher.exact_fim`.
    n_visible, n_hidden : int

    Returns
    -------
    FisherScores
        |u₁| split into W (..., n_visible, n_hidden), b_v, b_h; float64, Σ u₁² = 1.

    Notes
    -----
    With a degenerate top eigenvalue u₁ is not unique; eigh then returns some vector of the
    eigenspace. Use :func:`leading_eigenvalues` to check the gap.
    """
    _, vecs = torch.linalg.eigh(fim.double())                 # ascending eigenvalues
    return split_parameters(vecs[..., :, -1].abs(), n_visible, n_hidden)


def leading_eigenvalues(fim: torch.Tensor, k: int = 2) -> torch.Tensor:
    """The ``k`` largest eigenvalues of symmetric FIMs (…, P, P), descending: (…, k), float64."""
    return torch.linalg.eigvalsh(fim.double())[..., -k:].flip(-1)


# --- validation --------------------------------------------------------------------------
def _check_states(x, name: str) -> torch.Tensor:
    """A tensor of 0/1 states (…, N, n) as a tensor; bool is accepted."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() < 2:
        raise ShapeError(f"{name} must have shape (..., N, n_units); got {tuple(x.shape)}")
    if x.dtype != torch.bool:
        if x.is_floating_point() and torch.isnan(x).any():
            raise DataError(f"{name} contains NaN")
        if ((x != 0) & (x != 1)).any():
            raise DataError(f"{name} must hold binary (0/1) samples")
    return x


def _check_pair(v, h) -> tuple[torch.Tensor, torch.Tensor]:
    v, h = _check_states(v, "v"), _check_states(h, "h")
    if v.shape[-2] != h.shape[-2]:
        raise ShapeError(f"v and h must hold the same number of samples; got {v.shape[-2]} and {h.shape[-2]}")
    if v.shape[-2] == 0:
        raise DataError("no samples")
    try:
        torch.broadcast_shapes(v.shape[:-2], h.shape[:-2])
    except RuntimeError as exc:
        raise ShapeError(f"leading dims of v {tuple(v.shape[:-2])} and h {tuple(h.shape[:-2])} do not broadcast") from exc
    return v, h


def _f32(x: torch.Tensor) -> torch.Tensor:
    """0/1 states as float32 (exact), keeping float64 inputs as they are."""
    return x if x.dtype == torch.float64 else x.to(torch.float32)


def _accumulate_cross(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """out += Σ_n x_ni y_nj, in place; x (…, N, n_x), y (…, N, n_y), out float64 (…, n_x, n_y).

    Each float32 product of ≤ 2^24 rows of 0/1 states is an exact integer, so adding it to
    the float64 ``out`` loses nothing; in place, so that no float64 copy of the chunk's
    product is ever made (what keeps a 70-replica population's peak memory low).
    """
    dt = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    x, y = x.to(dt), y.to(dt)
    N = x.shape[-2]
    for s in range(0, N, _EXACT_F32_ROWS):
        out.add_(torch.matmul(x[..., s:s + _EXACT_F32_ROWS, :].transpose(-1, -2), y[..., s:s + _EXACT_F32_ROWS, :]))
    return out


def _cross_sum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ_n x_ni y_nj (…, n_x, n_y) in float64, exact for 0/1 states."""
    lead = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    out = torch.zeros(*lead, x.shape[-1], y.shape[-1], dtype=torch.float64, device=x.device)
    return _accumulate_cross(out, x, y)


# --- kernels on moments (trusted inputs) -------------------------------------------------
def _variance(p: torch.Tensor, n: int, ddof: int) -> torch.Tensor:
    """Var of a 0/1 variable with mean p from n samples: p(1−p)·n/(n−ddof)."""
    if not 0 <= ddof < n:
        raise DataError(f"ddof={ddof} needs more than {ddof} samples; got {n}")
    out = torch.sub(1, p).mul_(p)                               # in place: one (R, n_x, n_y) buffer
    return out.mul_(n / (n - ddof)) if ddof else out


def _heuristic(mean_x: torch.Tensor, mean_y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """q_ij = ⟨y_j⟩ σ(logit⟨x_i⟩ + W_ij (1 − ⟨y_j⟩)), F̂ = q(1 − q): (…, n_x, n_y) float64.

    A rate of exactly 0 gives logit = −∞, σ = 0, q = 0 (and a rate of 1 gives σ = 1); no NaN
    arises because W is finite. This is what prunes the never-active border pixels (SPEC §4).
    """
    mx = mean_x.double().clamp(0, 1).unsqueeze(-1)             # (…, n_x, 1)
    my = mean_y.double().clamp(0, 1).unsqueeze(-2)             # (…, 1, n_y)
    # in place on one fresh float64 copy of W (broadcast to the full shape): a population's
    # weight-sized temporaries dominate memory otherwise
    shape = torch.broadcast_shapes(mx.shape[:-2], my.shape[:-2], W.shape[:-2]) + W.shape[-2:]
    q = W.to(torch.float64).expand(shape).clone()              # (…, n_x, n_y)
    q.mul_(1 - my).add_(torch.logit(mx)).sigmoid_().mul_(my)
    return torch.sub(1, q).mul_(q)


# --- streaming sufficient statistics -----------------------------------------------------
class SampleStatistics:
    """Sufficient statistics of samples of a layered binary model, accumulated over chunks.

    Holds, per replica, the sample count N, the sums Σ s_l of every layer and the sums
    Σ s_l s_{l+1}ᵀ of every adjacent layer pair (float64, exact for 0/1 states). That is all
    the per-weight estimators need, so samples can be streamed from
    :func:`bmprune.iter_samples` and dropped (SPEC §4; memory: R·Σ n_l n_{l+1} floats).

    Parameters
    ----------
    check_values : bool, default True
        Validate that every chunk is 0/1 (one cheap pass; turn off only for trusted states).

    Attributes
    ----------
    n_samples : int
        Samples per replica accumulated so far (N).
    sums : list of Tensor of shape (R, n_l), float64
        Σ s_l per layer (R = 1 when the samples were shared by all replicas).
    pair_sums : list of Tensor of shape (R, n_l, n_{l+1}), float64
        Σ s_l s_{l+1}ᵀ per adjacent pair.

    Examples
    --------
    >>> import bmprune as bp
    >>> rbm = bp.RBM(5, 3, n_replicas=2)
    >>> stats = bp.fisher.SampleStatistics()
    >>> for chunk in bp.iter_samples(rbm, 300, steps=5, chunk_size=100):
    ...     _ = stats.update(chunk)
    >>> stats.n_samples, stats.variance_fi(0).shape
    (300, torch.Size([2, 5, 3]))
    """

    def __init__(self, *, check_values: bool = True) -> None:
        self.check_values = bool(check_values)
        self.n_samples = 0
        self.sums: list[torch.Tensor] = []
        self.pair_sums: list[torch.Tensor] = []

    @classmethod
    def from_samples(cls, samples, **kwargs) -> SampleStatistics:
        """Statistics of one tuple of layer states, or of an iterable of such chunks."""
        stats = cls(**kwargs)
        if isinstance(samples, (tuple, list)) and len(samples) > 0 and isinstance(samples[0], torch.Tensor):
            return stats.update(samples)
        for chunk in samples:
            stats.update(chunk)
        if stats.n_samples == 0:
            raise DataError("no samples were given")
        return stats

    # --- accumulation --------------------------------------------------------------------
    def update(self, states) -> SampleStatistics:
        """Add a chunk of joint samples.

        Parameters
        ----------
        states : tuple of Tensor, each (R, n_chunk, n_l), (1, n_chunk, n_l) or (n_chunk, n_l)
            One tensor per layer (v, h¹, h², …), 0/1 float or bool; row k of every layer is
            the same joint sample. Without an R axis the chunk is shared by all replicas.

        Returns
        -------
        self

        Raises
        ------
        ShapeError
            Fewer than two layers, layers that disagree on the sample count or the replica
            count, or layer sizes that differ from earlier chunks.
        DataError
            Non-binary values or NaN (when ``check_values``).
        """
        states = list(states)
        if len(states) < 2:
            raise ShapeError(f"need the states of at least two layers; got {len(states)}")
        xs = []
        for l, s in enumerate(states):
            if not isinstance(s, torch.Tensor):
                s = torch.as_tensor(s)
            if s.dim() == 2:
                s = s.unsqueeze(0)
            if s.dim() != 3:
                raise ShapeError(f"layer {l} states must have shape (R, N, n_{l}) or (N, n_{l}); got {tuple(s.shape)}")
            if self.check_values:
                s = _check_states(s, f"layer {l} states")
            xs.append(_f32(s) if s.dtype != torch.float64 else s)
        N = xs[0].shape[1]
        if any(x.shape[1] != N for x in xs):
            raise ShapeError(f"all layers need the same number of samples; got {[x.shape[1] for x in xs]}")
        try:
            torch.broadcast_shapes(*(x.shape[:1] for x in xs))
        except RuntimeError as exc:
            raise ShapeError(f"layers disagree on the replica count: {[x.shape[0] for x in xs]}") from exc
        if self.sums and [x.shape[-1] for x in xs] != self.layer_sizes:
            raise ShapeError(f"chunk layer sizes {[x.shape[-1] for x in xs]} differ from earlier chunks {self.layer_sizes}")
        if N == 0:
            return self
        R = max(x.shape[0] for x in xs)
        if self.sums and R not in (1, self.sums[0].shape[0]) and self.sums[0].shape[0] != 1:
            raise ShapeError(f"chunk has {R} replicas, earlier chunks {self.sums[0].shape[0]}")
        if not self.sums:
            self.sums = [torch.zeros(R, x.shape[-1], dtype=torch.float64, device=x.device) for x in xs]
            self.pair_sums = [torch.zeros(R, xs[l].shape[-1], xs[l + 1].shape[-1], dtype=torch.float64,
                                          device=xs[l].device) for l in range(len(xs) - 1)]
        elif R > self.sums[0].shape[0]:
            # a shared (R = 1) accumulator grows to R when a chunk has a replica axis
            self.sums = [a.expand(R, -1).clone() for a in self.sums]
            self.pair_sums = [a.expand(R, -1, -1).clone() for a in self.pair_sums]
        for acc, x in zip(self.sums, xs):
            acc.add_(x.sum(dim=1, dtype=torch.float64))                                  # (R|1, n_l)
        for l, acc in enumerate(self.pair_sums):
            _accumulate_cross(acc, xs[l], xs[l + 1])                                     # (R, n_l, n_{l+1})
        self.n_samples += N
        return self

    # --- description ---------------------------------------------------------------------
    def _require(self) -> None:
        if self.n_samples == 0:
            raise DataError("no samples have been accumulated yet")

    @property
    def layer_sizes(self) -> list[int]:
        return [s.shape[-1] for s in self.sums]

    @property
    def n_layers(self) -> int:
        """Number of unit layers (L + 1 for L weight matrices)."""
        return len(self.sums)

    @property
    def n_replicas(self) -> int:
        """R of the accumulated sums (1 when every chunk was shared by all replicas)."""
        self._require()
        return max(s.shape[0] for s in self.sums + self.pair_sums)

    def _layer(self, layer: int) -> int:
        self._require()
        if not 0 <= layer < len(self.pair_sums):
            raise ShapeError(f"layer pair {layer} out of range: the samples have {len(self.pair_sums)} weight layers")
        return layer

    def mean(self, layer: int) -> torch.Tensor:
        """⟨s_l⟩, the mean rate of every unit of unit layer ``layer``: (R, n_l), float64."""
        self._require()
        return self.sums[layer] / self.n_samples

    def pair_mean(self, layer: int) -> torch.Tensor:
        """⟨s_l s_{l+1}ᵀ⟩ for weight layer ``layer``: (R, n_l, n_{l+1}), float64."""
        return self.pair_sums[self._layer(layer)] / self.n_samples

    def select(self, index) -> SampleStatistics:
        """The statistics of replicas ``index`` (shared R = 1 statistics are returned as is)."""
        if self.n_replicas == 1:
            return self
        out = SampleStatistics(check_values=self.check_values)
        out.n_samples = self.n_samples
        out.sums = [s.expand(self.n_replicas, -1)[index] for s in self.sums]
        out.pair_sums = [s.expand(self.n_replicas, -1, -1)[index] for s in self.pair_sums]
        return out

    # --- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The accumulated statistics as named tensors (for a safetensors file): ``n_samples``
        (1,) int64, ``sums.l`` and ``pair_sums.l`` float64."""
        self._require()
        out = {"n_samples": torch.tensor([self.n_samples], dtype=torch.int64)}
        out.update({f"sums.{l}": s.contiguous() for l, s in enumerate(self.sums)})
        out.update({f"pair_sums.{l}": s.contiguous() for l, s in enumerate(self.pair_sums)})
        return out

    @classmethod
    def from_state_dict(cls, tensors: dict[str, torch.Tensor]) -> SampleStatistics:
        """Statistics saved by :meth:`state_dict`. Raises ShapeError when the tensors do not fit together."""
        try:
            L = sum(1 for k in tensors if k.startswith("pair_sums."))
            out = cls(check_values=False)
            out.n_samples = int(tensors["n_samples"][0])
            out.sums = [tensors[f"sums.{l}"].double() for l in range(L + 1)]
            out.pair_sums = [tensors[f"pair_sums.{l}"].double() for l in range(L)]
        except (KeyError, IndexError, ValueError) as exc:
            raise ShapeError(f"sample statistics incomplete: {exc}") from None
        ok = L >= 1 and out.n_samples > 0 and all(
            p.shape == (s.shape[0], s.shape[1], t.shape[1]) for p, s, t in zip(out.pair_sums, out.sums, out.sums[1:]))
        if not ok:
            raise ShapeError("sample statistics do not fit together")
        return out

    # --- estimators ----------------------------------------------------------------------
    def variance_fi(self, layer: int = 0, *, ddof: int = 0) -> torch.Tensor:
        """Variance FI of weight layer ``layer``: Var[x_i y_j] = p(1−p), p = ⟨x_i y_j⟩.

        Returns (R, n_l, n_{l+1}) float64; see :func:`variance_fi`.
        """
        return _variance(self.pair_mean(layer), self.n_samples, ddof)

    def bias_variance_fi(self, layer: int, *, ddof: int = 0) -> torch.Tensor:
        """Variance FI of the biases of unit layer ``layer``: Var[s_l] (R, n_l), float64."""
        return _variance(self.mean(layer), self.n_samples, ddof)

    def heuristic_fi(self, layer: int, W: torch.Tensor) -> torch.Tensor:
        """Heuristic FI of weight layer ``layer`` from the mean rates and W (R, n_l, n_{l+1}).

        Returns (R, n_l, n_{l+1}) float64; see :func:`heuristic_fi`.
        """
        self._layer(layer)
        return _heuristic(self.mean(layer), self.mean(layer + 1), W)


# --- estimators on raw samples (or on accumulated statistics) ----------------------------
def variance_fi(v, h=None, *, layer: int = 0, ddof: int = 0) -> torch.Tensor:
    """Variance FI of every weight: F_{W_ij} = Var[v_i h_j] (SPEC §4).

    For 0/1 units this is p(1 − p) with p = ⟨v_i h_j⟩ the sample mean of the product (the
    variance of the product, not Cov(v_i, h_j)).

    Parameters
    ----------
    v : Tensor of shape (..., N, n_visible), or a :class:`SampleStatistics`
        Model samples in {0, 1} (float or bool). Given statistics, ``h`` must be None and
        ``layer`` picks the weight layer (the pair of unit layers ``layer``, ``layer + 1``).
    h : Tensor of shape (..., N, n_hidden)
        The hidden states of the same joint samples. Leading dims of v and h broadcast.
    layer : int, default 0
        Only with statistics.
    ddof : int, default 0
        1 gives the unbiased estimate p(1 − p)·N/(N − 1).

    Returns
    -------
    fi : Tensor of shape (..., n_visible, n_hidden), float64
        Zero for dead units (their states are always 0).

    Raises
    ------
    ShapeError, DataError
        Mismatched sample counts or shapes, non-binary samples, too few samples for ``ddof``.

    Examples
    --------
    >>> import torch, bmprune as bp
    >>> v = torch.tensor([[1., 0.], [1., 1.]]); h = torch.tensor([[1.], [0.]])
    >>> bp.fisher.variance_fi(v, h)      # p = (0.5, 0) → (0.25, 0)
    tensor([[0.2500],
            [0.0000]], dtype=torch.float64)
    """
    if isinstance(v, SampleStatistics):
        return v.variance_fi(layer, ddof=ddof)
    v, h = _check_pair(v, h)
    N = v.shape[-2]
    p = _cross_sum(v, h) / N                                     # (..., nv, nh)  ⟨v_i h_j⟩
    return _variance(p, N, ddof)


def variance_fi_biases(v, h=None, *, ddof: int = 0) -> tuple[torch.Tensor, ...]:
    """Variance FI of the biases: F_{b_i} = Var[v_i], F_{b_j} = Var[h_j] (SPEC §4).

    Parameters
    ----------
    v, h : Tensor of shape (..., N, n_visible) and (..., N, n_hidden), or a SampleStatistics
        As in :func:`variance_fi`. Given statistics (``h`` None), one tensor per unit layer
        is returned (for a DBM: b_v, b₁, b₂, …).
    ddof : int, default 0

    Returns
    -------
    (fi_b_v, fi_b_h) : Tensors of shape (..., n_visible) and (..., n_hidden), float64
    """
    if isinstance(v, SampleStatistics):
        return tuple(v.bias_variance_fi(l, ddof=ddof) for l in range(v.n_layers))
    v, h = _check_pair(v, h)
    N = v.shape[-2]
    return (_variance(v.sum(-2, dtype=torch.float64) / N, N, ddof),
            _variance(h.sum(-2, dtype=torch.float64) / N, N, ddof))


def heuristic_fi(v, h=None, W=None, *, layer: int = 0) -> torch.Tensor:
    """Mean-field heuristic FI of every weight (SPEC §4).

    q_ij = ⟨h_j⟩ · σ(logit⟨v_i⟩ + W_ij (1 − ⟨h_j⟩)),  F̂_ij = q_ij (1 − q_ij),

    from the mean rates and the weight alone. A unit whose mean rate is exactly 0 gives
    q = 0 and F̂ = 0 (logit(0) = −∞); no NaN is produced.

    Parameters
    ----------
    v : Tensor of shape (..., N, n_visible), or a :class:`SampleStatistics`
        Model samples in {0, 1}. Given statistics, call ``heuristic_fi(stats, W=W, layer=l)``.
    h : Tensor of shape (..., N, n_hidden)
    W : Tensor of shape (..., n_visible, n_hidden)
        The weights (any float dtype); leading dims broadcast with the samples'.
    layer : int, default 0
        Only with statistics.

    Returns
    -------
    fi : Tensor of shape (..., n_visible, n_hidden), float64, in [0, 1/4]
    """
    if W is None:
        raise ShapeError("heuristic_fi needs the weights W")
    if isinstance(v, SampleStatistics):
        return v.heuristic_fi(layer, W)
    v, h = _check_pair(v, h)
    N = v.shape[-2]
    return _heuristic(v.sum(-2, dtype=torch.float64) / N, h.sum(-2, dtype=torch.float64) / N, W)


def fim_from_samples(v, h, *, ddof: int = 0, chunk_size: int | None = None) -> torch.Tensor:
    """Sampled FIM: the sample covariance of s = (v, h, vec(v hᵀ)) (SPEC §4).

    Parameters
    ----------
    v : Tensor of shape (..., N, n_visible)
    h : Tensor of shape (..., N, n_hidden)
        Joint model samples in {0, 1}; leading dims broadcast.
    ddof : int, default 0
        Divide by N − ddof.
    chunk_size : int, optional
        Samples turned into statistics at once (default: a 64 MiB block); the result does not
        depend on it.

    Returns
    -------
    fim : Tensor of shape (..., P, P), float64
        Order [b_v, b_h, W row-major (i·n_hidden + j)] as :func:`~bmprune.fisher.exact_fim`.

    Notes
    -----
    Cost O(N·P²): 90,000 samples of a 13 × 70 RBM take a few seconds. Σ s and Σ s sᵀ are
    integer-valued and accumulated exactly, and the covariance is formed as
    (N·Σ s sᵀ − Σ s Σ sᵀ) / (N (N − ddof)), whose numerator is exact in float64.
    """
    v, h = _check_pair(v, h)
    lead = torch.broadcast_shapes(v.shape[:-2], h.shape[:-2])
    N, nv, nh = v.shape[-2], v.shape[-1], h.shape[-1]
    if not 0 <= ddof < N:
        raise DataError(f"ddof={ddof} needs more than {ddof} samples; got {N}")
    v = _f32(v).expand(*lead, N, nv)
    h = _f32(h).expand(*lead, N, nh)
    P = nv + nh + nv * nh
    n_lead = 1
    for d in lead:
        n_lead *= d
    chunk = int(chunk_size or max(1, _FIM_BLOCK_ELEMENTS // max(1, n_lead * P)))
    chunk = min(chunk, _EXACT_F32_ROWS)
    s1 = torch.zeros(*lead, P, dtype=torch.float64, device=v.device)
    s2 = torch.zeros(*lead, P, P, dtype=torch.float64, device=v.device)
    for start in range(0, N, chunk):
        vc, hc = v[..., start:start + chunk, :], h[..., start:start + chunk, :]
        s = torch.cat([vc, hc, (vc.unsqueeze(-1) * hc.unsqueeze(-2)).flatten(-2)], dim=-1)  # (..., c, P)
        s1 += s.sum(-2, dtype=torch.float64)
        s2 += torch.matmul(s.transpose(-1, -2), s).double()                      # exact: 0/1 products
    fim = (N * s2 - s1.unsqueeze(-1) * s1.unsqueeze(-2)) / (N * (N - ddof))
    return fim


__all__ = [
    "FisherScores", "SampleStatistics", "eigenvector_importance", "fim_diagonal", "fim_from_samples",
    "heuristic_fi", "leading_eigenvalues", "split_parameters", "variance_fi", "variance_fi_biases",
]
