"""Annealed importance sampling (AIS): log Z and log-likelihoods of RBMs and DBMs too large to enumerate.

:func:`ais` estimates log Z of every replica of an RBM or DBM population;
:func:`log_likelihood` turns a log Z (exact, or an AIS estimate) into the mean log p(v) of a
data set: exact for RBMs (free energy), a variational lower bound for DBMs (mean field);
:func:`bound_gap` measures how loose that bound is on models small enough to enumerate.
Exact enumeration (SPEC §6) lives in the models (``log_partition``) and in
:mod:`bmprune.evaluation.likelihood`.

One algorithm serves both model kinds. The layers are split into the even ones (v, h², h⁴,
…), which the chains sample, and the odd ones (h¹, h³, …), which are summed out
analytically: given the even layers the odd units are independent. With one hidden layer
this is Salakhutdinov & Murray (2008) for RBMs, with two it is the scheme of
Salakhutdinov & Hinton (2009) for DBMs. The tempered model at inverse temperature β is

    −F_β(x_even) = (1 − β)·b_Aᵀv + β·Σ_{l even} b_lᵀx_l + Σ_{l odd} Σ_j softplus(β·X_lj),
    X_l = b_l + x_{l−1}ᵀW_{l−1} + W_l x_{l+1}   (the odd layer's input from its even neighbours),

the marginal of the joint p_β(x) ∝ exp((1 − β)·b_Aᵀv − β·E(x)), whose β = 0 end is the
base model (visible units independent with logits b_A, every hidden unit uniform) and whose
β = 1 end is the model. A transition is one Gibbs sweep of that tempered joint: odd layers
given the even ones, then even given odd. Everything is batched over R replicas and
``n_runs`` chains; each layer's chains are held units-major, (R, n_l, n_runs), so that a
mostly masked weight matrix (receptive fields) can act as one sparse block-diagonal matrix
on an (R·n_l, n_runs) view. The only Python loop is over β (and, inside a step, over the
L + 1 layers). The default β schedule is :func:`default_betas`.

Removed ("dead") units are clamped to 0 through the ``alive`` masks: never sampled on, no
term in any free energy, not counted in the base model's log Z.

References
----------
R. Salakhutdinov and I. Murray (2008), "On the quantitative analysis of deep belief
networks", ICML. (AIS for RBMs, the base-rate model, the β schedule.)
R. Salakhutdinov and G. Hinton (2009), "Deep Boltzmann machines", AISTATS. (AIS for DBMs
with h¹ summed out; the mean-field lower bound on log p(v).)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._torch import as_binary
from ..rng import Streams
from ..errors import ConfigError, DataError, EnumerationError, ShapeError
from ..models.enumeration import check_enumerable, iter_binary_states

#: Knots of the default β schedule: Salakhutdinov & Murray (2008) used 500 steps from 0 to
#: 0.5, 4,000 from 0.5 to 0.9 and 10,000 from 0.9 to 1 (14,500 in all).
_SCHEDULE_T = (0.0, 500 / 14_500, 4_500 / 14_500, 1.0)
_SCHEDULE_BETA = (0.0, 0.5, 0.9, 1.0)
#: Largest number of uniforms drawn at once (several β steps' worth for small models).
_BLOCK_ELEMENTS = 2**20
#: A step whose log-weight increment could have |δβ·X| above this is computed in float64.
_FAST_STEP_LIMIT = 1.0
#: Weight matrices at most this dense (and this large) are applied as sparse matrices on the CPU.
_SPARSE_DENSITY = 0.1
_SPARSE_MIN_SIZE = 128 * 128


# --- results -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AISResult:
    """Outcome of :func:`ais` for a population of R models.

    Attributes
    ----------
    log_z : Tensor of shape (R,), float64
        Estimate of log Z in nats: log Z_A + log mean_r exp(log_w[:, r]).
    log_z_std : Tensor of shape (R,), float64
        Standard error of ``log_z`` from the spread of the runs (delta method):
        std(w) / (√n_runs · mean(w)) with w the importance weights (ddof 1). NaN with one run.
    log_w : Tensor of shape (R, n_runs), float64
        Log importance weight of every run: log Z/Z_A ≈ log mean exp(log_w).
    log_z_base : Tensor of shape (R,), float64
        Exact log Z_A of the base model.
    base_bias : Tensor of shape (R, n_visible), float64
        Visible logits b_A of the base model.
    betas : Tensor of shape (K + 1,), float64
        The inverse temperatures used, from 0 to 1.
    """

    log_z: torch.Tensor
    log_z_std: torch.Tensor
    log_w: torch.Tensor
    log_z_base: torch.Tensor
    base_bias: torch.Tensor
    betas: torch.Tensor

    @property
    def n_runs(self) -> int:
        """Number of AIS runs per replica."""
        return self.log_w.shape[1]


@dataclass(frozen=True)
class LogLikelihood:
    """Outcome of :func:`log_likelihood`.

    Attributes
    ----------
    mean : Tensor of shape (R,), float64
        Mean log p(v) over the patterns, nats: exact given ``log_z`` for an RBM, the
        mean-field lower bound for a DBM (``is_bound``).
    per_pattern : Tensor of shape (R, B), float64
        The same per pattern.
    log_z : Tensor of shape (R,), float64
        The log Z used.
    log_z_std : Tensor of shape (R,), float64
        Its standard error: 0 when exact, the AIS standard error when an :class:`AISResult`
        was passed, NaN when a plain estimate was passed. An error δ in log Z shifts every
        log p(v) by −δ.
    is_bound : bool
        True when the values are a lower bound (DBMs), False when exact up to log Z (RBMs).
    """

    mean: torch.Tensor
    per_pattern: torch.Tensor
    log_z: torch.Tensor
    log_z_std: torch.Tensor
    is_bound: bool

    @property
    def sem(self) -> torch.Tensor:
        """Standard error of ``mean`` over the patterns (ddof 1), (R,) float64; log Z's error not included."""
        B = self.per_pattern.shape[1]
        if B < 2:
            return torch.full_like(self.mean, math.nan)
        return self.per_pattern.std(dim=1) / math.sqrt(B)


# --- the β schedule ----------------------------------------------------------------------
def default_betas(n_betas: int = 10_000) -> torch.Tensor:
    """The default AIS schedule: Salakhutdinov & Murray's (2008) shape scaled to ``n_betas`` values.

    β_k = f(k / K), k = 0 … K = n_betas − 1, with f piecewise linear through
    (0, 0), (1/29, 0.5), (9/29, 0.9), (1, 1): the first 500/14,500 of the steps go linearly
    to β = 0.5, the next 4,000/14,500 to 0.9, the remaining 10,000/14,500 to 1. With
    ``n_betas = 14,501`` this is exactly their 500 + 4,000 + 10,000 steps; for other sizes a
    knot can fall between two grid points (the schedule is still strictly increasing).

    Parameters
    ----------
    n_betas : int, default 10,000
        Number of inverse temperatures including both ends, ≥ 2.

    Returns
    -------
    betas : Tensor of shape (n_betas,), float64
        ``betas[0] == 0``, ``betas[-1] == 1``, strictly increasing.

    Raises
    ------
    ConfigError
        ``n_betas`` < 2.
    """
    n = _check_count(n_betas, 2, "n_betas")
    t = np.linspace(0.0, 1.0, n)
    b = np.interp(t, _SCHEDULE_T, _SCHEDULE_BETA)
    b[0], b[-1] = 0.0, 1.0
    return torch.from_numpy(b)


# --- public entry points -----------------------------------------------------------------
def ais(
    model,
    n_runs: int = 100,
    n_betas: int = 10_000,
    seed=0,
    base="data",
    data=None,
    betas=None,
    *,
    base_eps: float = 1e-3,
    dtype: torch.dtype | None = None,
    mf_subset: int = 5000,
) -> AISResult:
    """Estimate log Z of every replica by annealed importance sampling.

    For each replica, ``n_runs`` independent chains start from exact samples of a base model
    A and are moved through tempered models p_β, β = β_0 = 0 < β_1 < … < β_K = 1, by one
    Gibbs sweep each; each run's log importance weight is
    log w = Σ_k [log p*_{β_k}(x_{k−1}) − log p*_{β_{k−1}}(x_{k−1})], and
    log Z ≈ log Z_A + log mean(w). The odd layers are summed out analytically (module
    docstring): for an RBM the chains hold v only (Salakhutdinov & Murray 2008), for a
    v–h¹–h² DBM they hold (v, h²) (Salakhutdinov & Hinton 2009).

    Parameters
    ----------
    model : RBM or DBM population
        R replicas; read through ``weights``, ``biases``, ``weight_masks`` and ``alive``.
    n_runs : int, default 100
        Independent AIS runs (chains) per replica, ≥ 1.
    n_betas : int, default 10,000
        Number of inverse temperatures of the default schedule (:func:`default_betas`),
        ≥ 2; ignored when ``betas`` is given.
    seed : int or Streams, default 0
        Per-replica random streams (:mod:`bmprune.rng`) or a seed (replica r: key (seed, r)):
        every uniform of replica r (its base samples and all its Gibbs sweeps) comes from its
        own stream, so its estimate does not depend on the population it runs in. Same
        seed, model and arguments → same numbers on the same device.
    base : {"data", "uniform"} or array of shape (n_visible,) or (R, n_visible), default "data"
        The base model's visible logits b_A: ``"data"`` the logits of the data's marginals
        (the base-rate model of Salakhutdinov & Murray), clipped to
        [``base_eps``, 1 − ``base_eps``]; falls back to uniform (b_A = 0) when ``data`` is
        None. ``"uniform"``: b_A = 0. An array: the logits as given. Hidden units of the
        base model are uniform (bias 0, no weights), except, for ``base="data"`` with data, the
        even hidden layers of a DBM (h², …; the sampled ones): their base rates are the mean
        of the mean-field posterior over (up to ``mf_subset``) data patterns, clipped like
        b_A. A base close to the model shortens the annealing a lot: the top layer of a
        trained DBM is sparse, and annealing it from uniform needs many more β.
    data : array or tensor of shape (N, n_visible) or (R, N, n_visible), binary, optional
        Patterns for the base rates (e.g. the training set); only read when ``base="data"``.
    betas : array of shape (K + 1,), optional
        An explicit schedule: strictly increasing, from exactly 0 to exactly 1, K ≥ 1.
    base_eps : float, default 1e-3
        Clipping of the data's marginals for ``base="data"``; keeps b_A finite for pixels
        that are always off (or on) in the data.
    dtype : torch.dtype, optional
        Sampling dtype; default the model's (float32). Log weights are always accumulated in
        float64.
    mf_subset : int, default 5000
        Data patterns whose mean-field posterior gives the even hidden layers' base rates.

    Returns
    -------
    AISResult
        ``log_z`` (R,), ``log_z_std`` (R,), ``log_w`` (R, n_runs), all float64, in nats.

    Raises
    ------
    ConfigError
        ``n_runs`` < 1, ``n_betas`` < 2, a schedule that is not strictly increasing from 0
        to 1, an unknown ``base``, ``base_eps`` outside (0, 0.5), a ``dtype`` other than
        float32 or float64, or a model that is neither an RBM nor a DBM population.
    DataError
        ``data`` empty, not binary or with NaN; a ``base`` array with non-finite values.
    ShapeError
        ``data`` or ``base`` of the wrong width or replica count.

    Notes
    -----
    AIS's log Z is unbiased in Z, so on the log scale it is biased low (Jensen) and its
    error bar is only as good as the spread of the runs: too few β steps give an estimate
    that is confidently too low. More β helps more than more runs. The tempered marginal
    p*_β is the marginal of the tempered *joint* (as in both papers), not the geometric
    average p*_A(v)^{1−β} p*_B(v)^β of the two marginals, which could not be Gibbs sampled.

    Cost: per β step two GEMMs of shape (n_runs, n_even) × (n_even, n_odd) per replica,
    where n_even, n_odd count the units of the even and odd layers (for 400–400–676:
    1,076 × 400), plus n_runs · (n_even + n_odd) uniforms.

    The log-weight increment of the odd layers at step k is written
    softplus(β_k X) − softplus(β_{k−1} X) = −log1p(σ(β_k X) · expm1(−(β_k − β_{k−1}) X)),
    which reuses the sampling probabilities σ(β_k X) and is accurate to float32 rounding of
    the (small) increment itself, so the sampling dtype can stay float32. Steps where
    |β_k − β_{k−1}| · max|X| could exceed 1 (coarse schedules, large weights; bounded a
    priori from the parameters) use the direct difference in float64.

    References
    ----------
    R. Salakhutdinov and I. Murray (2008), "On the quantitative analysis of deep belief
    networks", ICML. R. Salakhutdinov and G. Hinton (2009), "Deep Boltzmann machines",
    AISTATS.

    Examples
    --------
    >>> import bmprune as bp
    >>> from bmprune.evaluation.ais import ais
    >>> rbm = bp.RBM(6, 4, n_replicas=2, seed=1, weight_std=1.0)
    >>> res = ais(rbm, n_runs=100, n_betas=1_000)
    >>> res.log_z.shape, res.log_w.shape
    (torch.Size([2]), torch.Size([2, 100]))
    >>> bool(((res.log_z - rbm.log_partition()).abs() < 0.05).all())
    True
    """
    n_runs = _check_count(n_runs, 1, "n_runs")
    sched = default_betas(n_betas) if betas is None else _check_betas(betas)
    if dtype not in (None, torch.float32, torch.float64):
        raise ConfigError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    net = _Network.of(model, dtype)
    R, n_visible = net.R, net.sizes[0]
    if not (0.0 < float(base_eps) < 0.5):
        raise ConfigError(f"base_eps must lie in (0, 0.5); got {base_eps}")
    b_a = _base_bias(base, data, R, n_visible, float(base_eps), model.device)           # (R, nv) float64
    hidden_a = _hidden_base(model, base, data, float(base_eps), mf_subset)             # even hidden layers' logits
    # log Z_A: independent visible units with logits b_A, every alive hidden unit uniform
    log_z_base = (F.softplus(b_a) * net.alive[0]).sum(-1) + sum(
        (F.softplus(c) * net.alive[l]).sum(-1) - math.log(2.0) * net.alive[l].sum(-1).double()
        for l, c in hidden_a.items()) \
        + math.log(2.0) * sum(a.sum(-1).double() for a in net.alive[1:])
    rng = Streams.coerce(seed, R, model.device)
    log_w = _ais_runs(net, b_a.to(net.dtype), sched.tolist(), n_runs, rng,
                      {l: c.to(net.dtype) for l, c in hidden_a.items()})
    log_z, log_z_std = _log_mean_exp(log_w)
    return AISResult(log_z=log_z_base + log_z, log_z_std=log_z_std, log_w=log_w,
                     log_z_base=log_z_base, base_bias=b_a, betas=sched)


def log_likelihood(model, v, log_z=None, *, mf_tol: float = 1e-7, mf_max_iter: int = 50,
                   max_states: int | None = None) -> LogLikelihood:
    """Mean log p(v) per replica, in nats: exact for an RBM, the mean-field lower bound for a DBM.

    RBM: log p(v) = −F(v) − log Z. DBM: the variational lower bound of Salakhutdinov &
    Hinton (2009), log p(v) ≥ Σ_h q(h) log p*(v, h) + H(q) − log Z with the factorised
    q = Π Bernoulli(μ) from ``model.mean_field(v)``; E_q[log p*(v, h)] = −E(v, μ) since the
    energy is linear in each layer. The gap to the exact value is KL(q ‖ p(h | v)) ≥ 0
    (:func:`bound_gap`). Dead units are clamped to 0.

    Parameters
    ----------
    model : RBM or DBM population
    v : array or tensor of shape (B, n_visible) or (R, B, n_visible), binary
        Patterns, shared by all replicas or one set per replica.
    log_z : AISResult, or tensor or array of shape (R,), optional
        log Z per replica in nats, e.g. ``ais(model, data=train)``. Default: the exact
        log Z by enumeration (:meth:`log_partition`), for small models only.
    mf_tol, mf_max_iter : float, int
        Mean-field stopping rule (DBMs; see :meth:`bmprune.DBM.mean_field`).
    max_states : int, optional
        Enumeration limit for the exact log Z (default 2^24 states).

    Returns
    -------
    LogLikelihood
        ``mean`` (R,) and ``per_pattern`` (R, B), float64, nats; ``is_bound`` for DBMs.

    Raises
    ------
    EnumerationError
        ``log_z`` is None and the model is too large to enumerate: pass an AIS estimate.
    ShapeError, DataError
        ``v`` of the wrong width or replica count, empty, or not binary; ``log_z`` of the
        wrong shape.

    References
    ----------
    SPEC §6 (exact likelihoods of small RBMs). R. Salakhutdinov and G. Hinton (2009),
    "Deep Boltzmann machines", AISTATS (the variational lower bound).
    """
    W, b, alive = _parameters(model)
    x = _check_patterns(model, v)                                                      # (R, B, nv) float64
    lz, lz_std = _resolve_log_z(model, log_z, max_states)
    if len(W) == 1:
        per = -_free_energy(x, W[0].double(), b[0].double(), b[1].double(), alive[1]) - lz.unsqueeze(1)
        bound = False
    else:
        per = _mean_field_bound(model, x, W, b, alive, mf_tol, mf_max_iter) - lz.unsqueeze(1)
        bound = True
    return LogLikelihood(mean=per.mean(dim=1), per_pattern=per, log_z=lz, log_z_std=lz_std, is_bound=bound)


def bound_gap(model, v, *, mf_tol: float = 1e-7, mf_max_iter: int = 50,
              max_states: int | None = None) -> torch.Tensor:
    """Exact log p(v) minus the mean-field lower bound of :func:`log_likelihood`, per pattern.

    Equals KL(q ‖ p(h | v)) ≥ 0 and does not involve Z: the unnormalised log p*(v) is
    computed by enumerating the hidden layers given v (the odd or the even hidden layers,
    whichever has fewer units, the others summed analytically). Zero for RBMs, whose
    log-likelihood is exact.

    Parameters
    ----------
    model : RBM or DBM population
    v : array or tensor of shape (B, n_visible) or (R, B, n_visible), binary
    mf_tol, mf_max_iter : float, int
        Mean-field stopping rule, as for :func:`log_likelihood`.
    max_states : int, optional
        Largest number of enumerated hidden states (default 2^24).

    Returns
    -------
    gap : Tensor of shape (R, B), float64, nats, ≥ 0 up to rounding

    Raises
    ------
    EnumerationError
        Too many hidden units to enumerate.
    ShapeError, DataError
        ``v`` of the wrong width or replica count, empty, or not binary.
    """
    W, b, alive = _parameters(model)
    x = _check_patterns(model, v)
    if len(W) == 1:
        return torch.zeros(x.shape[:2], dtype=torch.float64, device=x.device)
    exact = _log_marginal_unnormalised(x, [w.double() for w in W], [c.double() for c in b], alive, max_states)
    return exact - _mean_field_bound(model, x, W, b, alive, mf_tol, mf_max_iter)


# --- validation and set-up ---------------------------------------------------------------
def _check_count(n, minimum: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}; got {n!r}")
    return int(n)


def _check_betas(betas) -> torch.Tensor:
    b = torch.as_tensor(np.asarray(betas, dtype=np.float64))
    if b.dim() != 1 or b.numel() < 2:
        raise ConfigError(f"betas must be a 1-D schedule of ≥ 2 values; got shape {tuple(b.shape)}")
    if not torch.isfinite(b).all() or b[0] != 0.0 or b[-1] != 1.0 or not (b[1:] > b[:-1]).all():
        raise ConfigError("betas must increase strictly from exactly 0 to exactly 1")
    return b.clone()


def _parameters(model):
    """(weights, biases, alive) lists of an RBM or DBM population, checked for consistency."""
    try:
        W, b, alive = list(model.weights), list(model.biases), list(model.alive)
    except AttributeError:
        raise ConfigError(f"expected an RBM or DBM population, got {type(model).__name__}") from None
    if len(W) < 1 or len(b) != len(W) + 1 or len(alive) != len(b):
        raise ConfigError(f"expected L weight matrices and L + 1 biases and alive masks; got {len(W)}, {len(b)}, {len(alive)}")
    return W, b, alive


class _Operator:
    """``out += alpha · (A @ x)`` for one weight matrix A (R, n_out, n_in), dense or sparse.

    Dense: a batched GEMM. Sparse (a mostly masked matrix on the CPU, e.g. 5×5 receptive
    fields, 5.5 % dense): one CSR block-diagonal matrix (R·n_out, R·n_in) applied to the
    states viewed as (R·n_in, C), which the units-major layout of the chains makes free.
    """

    def __init__(self, A: torch.Tensor, sparse: bool) -> None:
        self.R, self.n_out, self.n_in = A.shape
        self.sparse = sparse
        if sparse:
            r, i, j = A.nonzero(as_tuple=True)                                   # row-major order
            idx = torch.stack([r * self.n_out + i, r * self.n_in + j])
            with warnings.catch_warnings():      # "sparse CSR support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                coo = torch.sparse_coo_tensor(idx, A[r, i, j], (self.R * self.n_out, self.R * self.n_in),
                                              check_invariants=False)
                self.A = coo.coalesce().to_sparse_csr()
        else:
            self.A = A.contiguous()

    def addmm_(self, out: torch.Tensor, x: torch.Tensor, alpha: float) -> None:
        """out (R, n_out, C) += alpha · A @ x, x (R, n_in, C); both contiguous."""
        if self.sparse:
            C = x.shape[2]
            out.view(self.R * self.n_out, C).addmm_(self.A, x.view(self.R * self.n_in, C), alpha=alpha)
        else:
            out.baddbmm_(self.A, x, alpha=alpha)


@dataclass(frozen=True)
class _Network:
    """An RBM or DBM population in the form the AIS kernel uses (trusted, sampling dtype).

    Dead units have zero weights and biases and are clamped by ``alive``; ``up[l]`` maps
    layer l's states to layer l + 1's input (W_lᵀ), ``down[l]`` maps layer l + 1's states to
    layer l's input (W_l); both are :class:`_Operator`.
    """

    b: list                       # L + 1 Tensors (R, n_l)
    alive: list                   # L + 1 Tensors (R, n_l), 0/1 in the sampling dtype
    up: list                      # L _Operators
    down: list                    # L _Operators
    x_max: list                   # L + 1 floats: a bound on |input| of each layer's units

    @property
    def R(self) -> int:
        return self.b[0].shape[0]

    @property
    def sizes(self) -> list[int]:
        return [x.shape[1] for x in self.b]

    @property
    def dtype(self) -> torch.dtype:
        return self.b[0].dtype

    @classmethod
    def of(cls, model, dtype=None) -> _Network:
        W, b, alive = _parameters(model)
        masks = list(getattr(model, "weight_masks", [None] * len(W)))
        dt = dtype or W[0].dtype
        L = len(W)
        a = [x.to(dt) for x in alive]
        bb = [x.to(dt) * ax for x, ax in zip(b, a)]
        ws = []
        for l in range(L):
            w = W[l].to(dt) * (a[l].unsqueeze(2) * a[l + 1].unsqueeze(1))                # (R, n_l, n_l+1)
            if masks[l] is not None:
                w = w * masks[l]
            ws.append(w)
        sparse = [w.device.type == "cpu" and w.shape[1] * w.shape[2] >= _SPARSE_MIN_SIZE
                  and float((w != 0).double().mean()) <= _SPARSE_DENSITY for w in ws]
        up = [_Operator(w.transpose(1, 2), s) for w, s in zip(ws, sparse)]
        down = [_Operator(w, s) for w, s in zip(ws, sparse)]
        # |input_j| ≤ |b_j| + Σ_i |W_ij| for binary neighbours: bounds every pre-activation
        bound = [x.abs() for x in bb]
        for l, w in enumerate(ws):
            bound[l + 1] = bound[l + 1] + w.abs().sum(1)
            bound[l] = bound[l] + w.abs().sum(2)
        return cls(bb, a, up, down, [float(x.amax()) for x in bound])


def _base_bias(base, data, R: int, nv: int, eps: float, device) -> torch.Tensor:
    """Visible logits b_A of the base model, (R, nv) float64."""
    if isinstance(base, str):
        if base not in ("data", "uniform"):
            raise ConfigError(f"base must be 'data', 'uniform' or an array of visible logits; got {base!r}")
        if base == "uniform" or data is None:
            return torch.zeros(R, nv, dtype=torch.float64, device=device)
        x = as_binary(data, nv, name="data", n_replicas=R, dtype=torch.uint8, device=device)     # (1|R, N, nv)
        if x.shape[1] == 0:
            raise DataError("data for the base rates is empty")
        p = (x.sum(dim=1).double() / x.shape[1]).clamp(eps, 1.0 - eps)                          # int64 counts
        return torch.log(p / (1.0 - p)).expand(R, nv).clone()
    t = torch.as_tensor(base, dtype=torch.float64, device=device)
    if t.shape not in ((nv,), (R, nv)):
        raise ShapeError(f"base logits must have shape ({nv},) or ({R}, {nv}); got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise DataError("base logits must be finite")
    return t.expand(R, nv).clone()


def _hidden_base(model, base, data, eps: float, mf_subset: int) -> dict[int, torch.Tensor]:
    """Base logits (R, n_l) float64 of the even hidden layers l ≥ 2: logit of their mean-field
    activity on the data (``base="data"`` with data and L ≥ 2), else {} (uniform)."""
    L = len(model.weights)
    if L < 2 or not (isinstance(base, str) and base == "data") or data is None:
        return {}
    x = as_binary(data, model.biases[0].shape[1], name="data", n_replicas=model.n_replicas, dtype=model.dtype,
                  device=model.device)[:, : int(mf_subset)]
    mu = model.mean_field(x)                                                              # [μ¹, …, μ^L]
    out = {}
    for l in range(2, L + 1, 2):
        p = mu[l - 1].double().mean(dim=1).clamp(eps, 1.0 - eps)                           # (R, n_l)
        out[l] = torch.log(p / (1.0 - p)) * model.alive[l]
    return out


def _check_patterns(model, v) -> torch.Tensor:
    """Validated patterns (R, B, n_visible) float64."""
    R, nv = model.n_replicas, model.biases[0].shape[1]
    x = as_binary(v, nv, name="v", n_replicas=R, dtype=torch.float64, device=model.device)
    if x.shape[1] == 0:
        raise DataError("v holds no patterns")
    return x.expand(R, -1, -1)


def _resolve_log_z(model, log_z, max_states) -> tuple[torch.Tensor, torch.Tensor]:
    """(log Z, its standard error), both (R,) float64, from ``log_z`` or by enumeration."""
    R = model.n_replicas
    if log_z is None:
        try:
            lz = model.log_partition(max_states)
        except EnumerationError as exc:
            raise EnumerationError(
                f"{exc}. This model is too large for an exact log Z: estimate it by annealed importance "
                "sampling and pass it, e.g. log_likelihood(model, v, log_z=bp.evaluation.ais(model, data=train))"
            ) from None
        return lz.double(), torch.zeros(R, dtype=torch.float64, device=lz.device)
    if isinstance(log_z, AISResult):
        lz, std = log_z.log_z, log_z.log_z_std
    else:
        lz = torch.as_tensor(log_z, dtype=torch.float64, device=model.device)
        std = torch.full((R,), math.nan, dtype=torch.float64, device=model.device)
    lz = lz.to(dtype=torch.float64, device=model.device)
    if lz.shape != (R,):
        raise ShapeError(f"log_z must have shape ({R},), one value per replica; got {tuple(lz.shape)}")
    return lz, std.to(dtype=torch.float64, device=model.device)


# --- randomness --------------------------------------------------------------------------
def _uniform(shape, rng: Streams, dtype: torch.dtype, device) -> torch.Tensor:
    """Uniform [0, 1) draws (R, *shape), one block per replica from its own stream: the single
    source of randomness of this module."""
    return rng.uniform(shape, dtype).to(device)


class _Uniforms:
    """Uniforms for the chains' sweeps, several sweeps' worth per draw for small models (fewer calls)."""

    def __init__(self, g, R: int, C: int, n_odd: int, n_even: int, n_steps: int, dtype, device) -> None:
        self.g, self.dtype, self.device = g, dtype, device
        self.shape_odd, self.shape_even = (n_odd, C), (n_even, C)
        self.per_block = max(1, min(n_steps, _BLOCK_ELEMENTS // max(1, R * C * (n_odd + n_even))))
        self.left = n_steps
        self.pos = self.per_block
        self.odd = self.even = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniforms for one sweep: (R, n_odd, C), (R, n_even, C)."""
        if self.pos == self.per_block:
            t = min(self.per_block, self.left)
            self.odd = _uniform((t, *self.shape_odd), self.g, self.dtype, self.device)      # (R, t, n_odd, C)
            self.even = _uniform((t, *self.shape_even), self.g, self.dtype, self.device)
            self.pos = 0
        u = self.odd[:, self.pos], self.even[:, self.pos]
        self.pos += 1
        self.left -= 1
        return u


# --- the AIS kernel ----------------------------------------------------------------------
def _ais_runs(net: _Network, b_a: torch.Tensor, betas: list[float], C: int, g, hidden_a=None) -> torch.Tensor:
    """Log importance weights (R, C) float64 of C AIS runs per replica (trusted inputs).

    Chains hold the even layers, each (R, n_l, C) (units-major, so that sparse weights act
    on (R·n_l, C) views). Per step k = 1 … K, for every odd layer l the scaled input
    A_l = β_k X_l = β_k (b_l + W_{l−1}ᵀ x_{l−1} + W_l x_{l+1}) is computed once and serves both
    the log-weight increment (β_k − β_{k−1})·c(x) + Σ_j softplus(β_k X_lj) − softplus(β_{k−1} X_lj),
    c(x) = Σ_{l even} b_lᵀx_l − b_Aᵀv, and, for k < K, the sweep: x_l ~ σ(A_l) for odd l, then
    x_l ~ σ(β_k (b_l + …) + (1 − β_k) b_A[l = 0]) for even l.
    """
    dt, dev, R = net.dtype, net.b[0].device, net.R
    sizes, L, K = net.sizes, len(net.sizes) - 1, len(betas) - 1
    odd, even = list(range(1, L + 1, 2)), list(range(0, L + 1, 2))
    n_odd, n_even = sum(sizes[l] for l in odd), sum(sizes[l] for l in even)
    col = [x.unsqueeze(2) for x in net.b]                                        # (R, n_l, 1)
    # base logits: b_A for v, the even hidden layers' base rates where given, else 0 (uniform)
    base = [b_a.unsqueeze(2)] + [None if (hidden_a or {}).get(l) is None else hidden_a[l].unsqueeze(2)
                                 for l in range(1, L + 1)]
    alive = [x.unsqueeze(2) for x in net.alive]
    dead = [bool((x == 0).any()) for x in net.alive]
    d = [(net.b[l] - (0.0 if base[l] is None else base[l].squeeze(2))).mul(net.alive[l]).unsqueeze(1)
         for l in even]                                                          # (R, 1, n_l)
    x_max = max(net.x_max[l] for l in odd)
    x: list = [None] * (L + 1)                                                   # layer states (R, n_l, C)
    # exact sample of the base model: v ~ σ(b_A), even hidden layers uniform, dead units 0
    u = _uniform((n_even, C), g, dt, dev)                                      # (R, n_even, C)
    pos = 0
    for l in even:
        p0 = torch.full_like(col[l], 0.5) if base[l] is None else torch.sigmoid(base[l])
        x[l] = torch.lt(u[:, pos:pos + sizes[l]], p0 * alive[l]).to(dt)
        pos += sizes[l]
    A = {l: torch.empty(R, sizes[l], C, dtype=dt, device=dev) for l in range(L + 1)}   # inputs, then p
    P = {l: torch.empty(R, sizes[l], C, dtype=dt, device=dev) for l in odd}
    T = {l: torch.empty(R, sizes[l], C, dtype=dt, device=dev) for l in odd}
    for l in odd:
        x[l] = torch.empty(R, sizes[l], C, dtype=dt, device=dev)
    lin = torch.empty(R, 1, C, dtype=dt, device=dev)
    log_w = torch.zeros(R, C, dtype=torch.float64, device=dev)
    uniforms = _Uniforms(g, R, C, n_odd, n_even, K - 1, dt, dev)

    def layer_input(l: int, beta: float, bias: torch.Tensor) -> torch.Tensor:
        out = A[l].copy_(bias.expand(R, sizes[l], C))                            # (R, n_l, C)
        if l > 0:
            net.up[l - 1].addmm_(out, x[l - 1], beta)
        if l < L:
            net.down[l].addmm_(out, x[l + 1], beta)
        return out

    for k in range(1, K + 1):
        bk, delta = betas[k], betas[k] - betas[k - 1]
        for i, l in enumerate(even):                                             # c(x) of the even layers
            torch.bmm(d[i], x[l], out=lin)
            log_w.add_(lin.squeeze(1), alpha=delta)
        fast = delta * x_max <= _FAST_STEP_LIMIT
        for l in odd:
            a_l = layer_input(l, bk, col[l] * bk)                                # β_k X_l
            p_l = torch.sigmoid(a_l, out=P[l])                                   # σ(β_k X_l)
            if dead[l]:
                p_l.mul_(alive[l])
            if fast:   # softplus(β_k X) − softplus(β_{k−1} X) = −log1p(σ(β_k X)·expm1(−δ X))
                torch.mul(a_l, -delta / bk, out=T[l]).expm1_().mul_(p_l).log1p_()
                log_w.sub_(T[l].sum(dim=1))
            else:
                X = a_l.double().div_(bk)
                inc = F.softplus(bk * X) - F.softplus(betas[k - 1] * X)
                log_w.add_((inc * alive[l]).sum(dim=1))
        if k == K:
            break
        u_odd, u_even = uniforms.next()
        pos = 0
        for l in odd:
            torch.lt(u_odd[:, pos:pos + sizes[l]], P[l], out=x[l])
            pos += sizes[l]
        pos = 0
        for l in even:
            bias = col[l] * bk if base[l] is None else col[l] * bk + base[l] * (1.0 - bk)
            p_l = layer_input(l, bk, bias).sigmoid_()
            if dead[l]:
                p_l.mul_(alive[l])
            torch.lt(u_even[:, pos:pos + sizes[l]], p_l, out=x[l])
            pos += sizes[l]
    return log_w


def _log_mean_exp(log_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log mean exp over runs and its delta-method standard error: (R,), (R,) float64."""
    C = log_w.shape[1]
    lme = torch.logsumexp(log_w, dim=1) - math.log(C)
    if C < 2:
        return lme, torch.full_like(lme, math.nan)
    w = torch.exp(log_w - lme.unsqueeze(1))                                      # normalised weights, mean 1
    return lme, w.std(dim=1) / math.sqrt(C)


# --- likelihood kernels (float64, trusted inputs) ------------------------------------------
def _free_energy(v, W, b_v, b_h, alive_h) -> torch.Tensor:
    """F(v) = −b_vᵀv − Σ_j alive_j softplus(b_h,j + (vᵀW)_j): v (R, B, nv) → (R, B)."""
    pre = torch.baddbmm(b_h.unsqueeze(1), v, W)
    return -(v * b_v.unsqueeze(1)).sum(-1) - (F.softplus(pre) * alive_h.unsqueeze(1)).sum(-1)


def _mean_field_bound(model, x, W, b, alive, tol, max_iter) -> torch.Tensor:
    """Σ_h q(h) log p*(v, h) + H(q) with q from ``model.mean_field``: (R, B) float64 (unnormalised)."""
    mu = [m.double() * a.unsqueeze(1) for m, a in zip(model.mean_field(x.to(model.dtype), tol=tol, max_iter=max_iter),
                                                       alive[1:])]
    s = [x] + mu                                                                 # (R, B, n_l)
    bound = sum((sl * bl.double().unsqueeze(1)).sum(-1) for sl, bl in zip(s, b))
    for l, w in enumerate(W):
        bound = bound + (torch.bmm(s[l], w.double()) * s[l + 1]).sum(-1)
    for m in mu:                                                                 # entropy of q
        bound = bound - (torch.xlogy(m, m) + torch.xlogy(1.0 - m, 1.0 - m)).sum(-1)
    return bound


def _log_marginal_unnormalised(x, W, b, alive, max_states) -> torch.Tensor:
    """log Σ_h exp(−E(v, h)) for each pattern by enumeration: x (R, B, nv) → (R, B) float64.

    Enumerates the odd or the even hidden layers (the smaller set); every other hidden
    layer then has only clamped or enumerated neighbours and is summed analytically.
    """
    L, R, B = len(W), x.shape[0], x.shape[1]
    sizes = [c.shape[1] for c in b]
    odd, even_h = list(range(1, L + 1, 2)), list(range(2, L + 1, 2))
    enum = odd if sum(sizes[l] for l in odd) <= sum(sizes[l] for l in even_h) else even_h
    summed = [l for l in range(1, L + 1) if l not in enum]
    n = sum(sizes[l] for l in enum)
    check_enumerable(n, max_states, "the exact log p(v) of a DBM")
    chunk = max(1, 2**22 // max(1, R * B * max(sizes)))
    Wb = [w.unsqueeze(1) for w in W]                                             # (R, 1, n_l, n_l+1)
    parts = []
    for st in iter_binary_states(n, chunk, dtype=torch.float64, device=x.device):
        S = st.shape[0]
        s: list[torch.Tensor | None] = [None] * (L + 1)
        s[0] = x.unsqueeze(2)                                                    # (R, B, 1, nv)
        val = (x * b[0].unsqueeze(1)).sum(-1).unsqueeze(2).expand(R, B, S).clone()
        dead_on = torch.zeros(R, 1, S, dtype=torch.bool, device=x.device)
        pos = 0
        for l in enum:
            xl = st[:, pos:pos + sizes[l]].expand(R, 1, S, sizes[l])               # (R, 1, S, n_l)
            pos += sizes[l]
            s[l] = xl
            val = val + (xl * b[l].view(R, 1, 1, -1)).sum(-1)
            dead_on |= (xl * (~alive[l]).double().view(R, 1, 1, -1)).sum(-1) > 0
        for l in range(L):                                                       # clamped/enumerated pairs
            if s[l] is not None and s[l + 1] is not None:
                val = val + (torch.matmul(s[l], Wb[l]) * s[l + 1]).sum(-1)
        for m in summed:
            pre = b[m].view(R, 1, 1, -1) + torch.matmul(s[m - 1], Wb[m - 1])
            if m < L:
                pre = pre + torch.matmul(s[m + 1], Wb[m].transpose(-1, -2))
            val = val + (F.softplus(pre) * alive[m].double().view(R, 1, 1, -1)).sum(-1)
        parts.append(torch.logsumexp(val.masked_fill(dead_on, -math.inf), dim=-1))
    return torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)


__all__ = ["AISResult", "LogLikelihood", "ais", "bound_gap", "default_betas", "log_likelihood"]
