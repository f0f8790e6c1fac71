"""Gibbs chains for any Boltzmann machine population (SPEC §4, "Model samples").

Two modes, which give the same statistics within sampling error:

* ``"independent"``: N chains from random states, each run for ``steps`` Gibbs sweeps; the
  final state of each chain is one sample (the original CIFAR code: 90,000 chains × 200).
* ``"persistent"``: C chains, ``burn_in`` sweeps, then one snapshot of all C chains every
  ``thin`` sweeps until N samples (the original DBM code: 1,000 chains, thinning 200).

Samples are produced in chunks (:func:`iter_samples`) so that estimators can accumulate
sufficient statistics without holding every sample of a large population at once;
:func:`sample` concatenates them. Any :class:`~bmprune.models.BoltzmannMachine` works: the
sampler uses only ``init_chains(n, rng)`` and ``gibbs_step(states, rng)``, which return
tuples of layer states (R, n, n_l).

Randomness: one stream per replica (:mod:`bmprune.rng`), consumed chunk by chunk in the same
order whatever the population, so a replica's samples depend on its own key only.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ._torch import replica_groups, run_replica_groups
from .errors import ConfigError
from .models.base import conditional
from .models.enumeration import binary_states
from .rng import Streams, thresholds

#: Default number of chains simulated at once in independent mode (bounds memory).
DEFAULT_CHUNK = 10_000
#: An RBM whose visible layer has at most this many units is sampled with a table of p(h | v)
#: for all 2^n_v visible patterns (built once per call, at most TABLE_BYTES): the sweep then
#: looks p(h | v) up instead of a K = n_v GEMM and a sigmoid, the bulk of a small RBM's sweep.
TABLE_UNITS = 16
TABLE_BYTES = 2**28


def sweep_function(model):
    """The Gibbs sweep the sampler runs: ``model.gibbs_step``, or its table form for a small RBM.

    Both draw h ~ p(h | v) then v ~ p(v | h) from the same streams in the same order; the
    table holds p(h | v) of every visible pattern, computed by the same conditional, so the
    chains have the same law (the probabilities agree to float rounding).
    """
    sizes, R = model.layer_sizes, model.n_replicas
    if model.n_layers != 1 or sizes[0] > TABLE_UNITS or 2 ** sizes[0] * sizes[1] * R * 4 > TABLE_BYTES:
        return model.gibbs_step
    W, b, alive = model.weights, model.biases, model.alive
    n_v, n_h = sizes
    # one GEMM per replica of the same shape whatever R (a broadcast matmul would block the
    # replicas' columns together and round a replica differently in another population)
    states = binary_states(n_v, dtype=model.dtype, device=model.device).expand(R, -1, -1)   # (R, 2^n_v, n_v)
    table = conditional(1, [states, None], W, b, alive).reshape(R * 2**n_v, n_h)         # p(h | v) per pattern
    powers = (2 ** torch.arange(n_v, device=model.device)).to(model.dtype)               # bit i = unit i
    offset = (torch.arange(R, device=model.device) * 2**n_v).unsqueeze(1)               # (R, 1)

    bv = b[0].unsqueeze(2)                                                               # (R, n_v, 1)
    dead_v = None if bool(alive[0].all()) else alive[0].unsqueeze(2).to(model.dtype)
    table_t = thresholds(table) if table.dtype == torch.float32 else None              # int32 ⌈p·2²⁴⌉
    bufs: dict[str, torch.Tensor] = {}

    def sweep_rows(v, rng, lo, hi):
        # replicas lo..hi-1: their slices of the buffers (the hidden and visible draws, reused
        # from sweep to sweep; the chains' states live in them: callers copy what they keep)
        C, uh, uv = v.shape[1], bufs["uh"][lo:hi], bufs["uv"][lo:hi]
        code = torch.matmul(v, powers).long().add_(offset[lo:hi]).flatten()             # (r·C,)
        if table_t is not None:   # float32: integer thresholds of p(h | v), gathered into the hidden buffer
            t = torch.index_select(table_t, 0, code, out=uh.view(torch.int32).view(-1, n_h))
            h = rng.bernoulli_below(t.view(hi - lo, C, n_h), out=uh)
        else:
            h = rng.bernoulli(torch.index_select(table, 0, code).view(hi - lo, C, n_h), out=uh)
        # p(v | h) as (r, n_v, C) = W·hᵀ: with n_v small, this GEMM is ~1.5× faster than h·Wᵀ
        pv = torch.baddbmm(bv[lo:hi], W[0][lo:hi], h.transpose(1, 2)).sigmoid_()
        if dead_v is not None:
            pv.mul_(dead_v[lo:hi])
        return rng.bernoulli(pv.transpose(1, 2), out=uv)

    def step(x, rng):
        v = x[0]
        C = v.shape[1]
        if bufs.get("uh") is None or bufs["uh"].shape[1] != C:
            bufs.update(uh=torch.empty(R, C, n_h, dtype=v.dtype, device=v.device),
                        uv=torch.empty(R, C, n_v, dtype=v.dtype, device=v.device))
        # replicas split over threads, each running its ops single-threaded (1.5× faster here)
        groups = replica_groups(R, v.device, work=C * n_h * (n_v + 1))                     # GEMM + draws
        if len(groups) == 1:
            return sweep_rows(v, rng, 0, R), bufs["uh"]
        run_replica_groups(lambda g: sweep_rows(v[g[0]:g[1]], rng.select(slice(*g)), *g), groups)
        return bufs["uv"], bufs["uh"]
    return step


def iter_samples(
    model,
    n_samples: int,
    *,
    mode: str = "independent",
    steps: int = 200,
    n_chains: int | None = None,
    burn_in: int | None = None,
    thin: int | None = None,
    chunk_size: int | None = None,
    seed: Streams | int | None = 0,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield model samples in chunks: tuples of layer states, each (R, n_chunk, n_layer).

    Parameters
    ----------
    model : RBM or DBM population
    n_samples : int
        Samples per replica in total (N).
    mode : {"independent", "persistent"}
    steps : int, default 200
        Independent mode: Gibbs sweeps per chain. Persistent mode: the default of ``thin``
        and ``burn_in``.
    n_chains : int, optional
        Persistent mode: number of chains C (default min(1000, N)).
    burn_in, thin : int, optional
        Persistent mode: sweeps before the first snapshot and between snapshots.
    chunk_size : int, optional
        Independent mode: chains simulated at once (default 10,000).
    seed : int or Streams, default 0
        Randomness: per-replica streams (:class:`bmprune.rng.Streams`, e.g. keyed by the
        study runner), or a seed (replica r draws from key (seed, r)). Pass the same
        Streams again to continue them.

    Raises
    ------
    ConfigError
        Unknown mode or non-positive counts.
    """
    if n_samples < 1:
        raise ConfigError(f"n_samples must be ≥ 1, got {n_samples}")
    if steps < 0:
        raise ConfigError(f"steps must be ≥ 0, got {steps}")
    g = Streams.coerce(seed, model.n_replicas, model.device)
    sweep = sweep_function(model)
    if mode == "independent":
        chunk = int(chunk_size or DEFAULT_CHUNK)
        if chunk < 1:
            raise ConfigError(f"chunk_size must be ≥ 1, got {chunk_size}")
        done = 0
        while done < n_samples:
            n = min(chunk, n_samples - done)
            states = model.init_chains(n, g)
            for _ in range(steps):
                states = sweep(states, g)
            done += n
            yield tuple(s.clone() for s in states)      # the sweep may reuse its buffers
    elif mode == "persistent":
        C = int(n_chains or min(1000, n_samples))
        thin_ = steps if thin is None else int(thin)
        burn = thin_ if burn_in is None else int(burn_in)
        if C < 1 or thin_ < 1 or burn < 0:
            raise ConfigError(f"persistent sampling needs n_chains ≥ 1, thin ≥ 1, burn_in ≥ 0; got {C}, {thin_}, {burn}")
        states = model.init_chains(C, g)
        for _ in range(burn):
            states = sweep(states, g)
        done = 0
        while True:
            n = min(C, n_samples - done)
            yield tuple(s[:, :n].clone() for s in states)
            done += n
            if done >= n_samples:
                break
            for _ in range(thin_):
                states = sweep(states, g)
    else:
        raise ConfigError(f"unknown sampling mode {mode!r}; use 'independent' or 'persistent'")


def sample(model, n_samples: int, *, mode: str = "independent", steps: int = 200, **kwargs) -> tuple[torch.Tensor, ...]:
    """Draw ``n_samples`` samples per replica; returns one tensor per layer, (R, N, n_layer).

    Same arguments as :func:`iter_samples`. For an RBM the tuple is ``(v, h)`` and each
    (v, h) pair is a joint sample. Holds all samples in memory: for large populations
    prefer :func:`iter_samples`.

    Examples
    --------
    >>> import bmprune as bp
    >>> v, h = bp.sample(bp.RBM(5, 3, n_replicas=2), 100, steps=10)
    >>> v.shape, h.shape
    (torch.Size([2, 100, 5]), torch.Size([2, 100, 3]))
    """
    chunks = list(iter_samples(model, n_samples, mode=mode, steps=steps, **kwargs))
    return tuple(torch.cat([c[i] for c in chunks], dim=1) for i in range(len(chunks[0])))
