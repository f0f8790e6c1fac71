"""Per-replica random streams (DESIGN.md §Randomness).

A population of R networks (replicas) draws its randomness from R independent streams, one
per replica, never from one stream shared by the population. Stream r is a numpy SFC64
generator (a fast counter-based chaotic generator that passes BigCrush; about twice as fast
as PCG64 here) seeded by a :class:`numpy.random.SeedSequence` whose key names the replica,
not its position: the study runner keys replica r by (seed, criterion, iteration, stage), so a
replica draws the same numbers whatever population it runs in — all criteria or a subset,
ten seeds or one, a sweep split across machines. (Its float computations agree to rounding
only: a population of another size runs differently shaped kernels, whose vectorised and
scalar tails may round a probability an ulp apart; in rare cases a uniform falls in between
and one sample flips. Every discrete outcome of a study — what is pruned — came out identical
in the split-invariance tests.) Tensors are filled replica by replica
(``out[r] = stream_r.random(...)``), and every consumer draws a replica's numbers in an order
that does not depend on R, so replica r's samples are a function of its own key alone.

Bernoulli draws of float32 probabilities compare the stream's raw 32-bit words with integer
thresholds ⌈p·2²⁴⌉ (:meth:`Streams.bernoulli_below`): the very samples of comparing float32
uniforms with p, without making the floats. Draws are made in chunks (a whole (B, n) layer,
or a block of uniforms for many tiny updates, :class:`UniformPool`), so the per-draw cost stays batched; large draws fill the
replicas' slices on torch's number of CPU threads at once (numpy releases the GIL). On a CUDA device each
replica gets a ``torch.Generator`` on that device seeded from its key: the same key then
gives other numbers than on the CPU (DESIGN: same numbers on the same device).

>>> import bmprune as bp
>>> s = bp.rng.Streams.from_keys([(0, "variance_fi"), (1, "variance_fi")])
>>> s.uniform((3,)).shape
torch.Size([2, 3])
>>> a = bp.rng.Streams.from_keys([(1, "variance_fi")]).uniform((3,))
>>> bool((a[0] == bp.rng.Streams.from_keys([(0, "variance_fi"), (1, "variance_fi")]).uniform((3,))[1]).all())
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from ._torch import thread_pool
from .errors import ConfigError

Key = Sequence[int | str]
_NP_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}
# Draws of at least this many numbers are split over threads (below, thread hand-off costs more).
_PARALLEL_NUMBERS = 2**18


def _parallel_map(fn, n_items: int, total: int) -> None:
    """Call fn(i) for i < n_items, on torch's CPU threads when ``total`` numbers are drawn."""
    threads = min(torch.get_num_threads(), n_items)
    if threads < 2 or total < _PARALLEL_NUMBERS:
        for i in range(n_items):
            fn(i)
        return
    pool = thread_pool("rng", threads)
    for f in [pool.submit(lambda lo=lo: [fn(i) for i in range(lo, n_items, threads)]) for lo in range(threads)]:
        f.result()


#: float32 uniforms carry 24 random bits: u = k·2⁻²⁴ with k < 2²⁴ an integer.
_FLOAT32_SCALE = float(2**24)


def thresholds(p: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """int32 ⌈p·2²⁴⌉ (clamped to [−1, 2²⁴]): for a float32 uniform u = k·2⁻²⁴, u < p ⟺ k < ⌈p·2²⁴⌉.

    Exact for float32 ``p`` (scaling by a power of two is exact; integers up to 2²⁴ are
    representable); :meth:`Streams.bernoulli_below` draws with these thresholds (the model
    samples of SPEC §4). ``p``: float32 (R, ...); returns int32 of the same shape. ``out``: a
    contiguous float32 tensor of p's shape whose memory receives them (returned as its int32
    view: no allocation). No gradient flows, whatever ``p`` carries.
    """
    with torch.no_grad():
        scaled = torch.mul(p, _FLOAT32_SCALE, out=out).ceil_().clamp_(-1.0, _FLOAT32_SCALE)
        return scaled.to(torch.int32) if out is None else out.view(torch.int32).copy_(scaled)


def _out_buffer(out: torch.Tensor | None, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """``out`` checked to be a contiguous ``dtype`` tensor of ``shape``, or a new one when None."""
    if out is None:
        return torch.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype or not out.is_contiguous():
        raise ConfigError(f"out must be a contiguous {dtype} tensor of shape {shape}; "
                          f"got {out.dtype} {tuple(out.shape)}")
    return out


def _float32_words(gen: np.random.Generator, n: int) -> np.ndarray:
    """The next ``n`` 32-bit words (uint32) that ``gen.random(n, dtype=float32)`` would consume.

    numpy's 32-bit draws split each 64-bit output, low half first, and keep the high half
    for the next draw (``has_uint32``); this takes the outputs raw and keeps that state, so
    float32 draws and these words can be interleaved on one stream.
    """
    bg = gen.bit_generator
    state = bg.state
    lead = state["has_uint32"]
    if lead:                                        # a high half left over from a previous draw
        bg.state = {**state, "has_uint32": 0}
    m = n - lead
    raw = bg.random_raw((m + 1) // 2)
    words = raw.view(np.uint32)
    if m % 2:                                       # the last high half stays for the next draw
        bg.state = {**bg.state, "has_uint32": 1, "uinteger": int(words[-1])}
        words = words[:-1]
    if lead:
        words = np.concatenate([np.array([state["uinteger"]], dtype=np.uint32), words])
    return words


def key_word(x: int | str) -> int:
    """A stable 32-bit word for a key element: ints as they are (≥ 0), strings hashed (SHA-256).

    Python's ``hash`` of a string changes between processes; this does not, so keys made on
    different machines name the same stream.
    """
    if isinstance(x, (bool, np.bool_)):
        raise ConfigError(f"a random-stream key element must be an int or a str; got {x!r}")
    if isinstance(x, (int, np.integer)):
        if x < 0:
            raise ConfigError(f"random-stream key elements must be ≥ 0; got {x}")
        return int(x)
    if isinstance(x, str):
        return int.from_bytes(hashlib.sha256(x.encode()).digest()[:4], "little")
    raise ConfigError(f"a random-stream key element must be an int or a str; got {type(x).__name__}")


def seed_sequence(key: Key) -> np.random.SeedSequence:
    """The SeedSequence of a key: entropy = its first element (the seed), spawn key = the rest."""
    words = [key_word(x) for x in key]
    if not words:
        raise ConfigError("a random-stream key needs at least a seed")
    return np.random.SeedSequence(words[0], spawn_key=tuple(words[1:]))


class Streams:
    """R independent random streams, one per replica, on one device.

    Build with :meth:`from_seed` (replica r of a population gets key (seed, r)) or
    :meth:`from_keys` (one key per replica, e.g. (seed, criterion, iteration, stage)).
    :meth:`child` derives independent streams for a sub-task (same replicas, a longer key),
    :meth:`select` the streams of some replicas (sharing their state with this object).

    Every draw returns a tensor with a leading replica axis R on :attr:`device`.

    Parameters
    ----------
    sequences : sequence of numpy.random.SeedSequence
        One per replica.
    device : torch.device or str, default "cpu"
    """

    def __init__(self, sequences: Sequence[np.random.SeedSequence], device: torch.device | str = "cpu",
                 _generators=None) -> None:
        self.sequences = list(sequences)
        if not self.sequences:
            raise ConfigError("Streams need at least one replica")
        self.device = torch.device(device)
        # numpy generators on the CPU (their draws do not depend on torch's version), torch's elsewhere
        self._numpy = self.device.type == "cpu"
        if _generators is not None:
            self._gens = _generators
        elif self.device.type == "cpu":
            self._gens = [np.random.Generator(np.random.SFC64(s)) for s in self.sequences]
        else:
            self._gens = []
            for s in self.sequences:
                g = torch.Generator(device=self.device)
                g.manual_seed(int(s.generate_state(2, np.uint64)[0] >> np.uint64(1)))
                self._gens.append(g)

    # --- construction --------------------------------------------------------------------
    @classmethod
    def from_keys(cls, keys: Sequence[Key], device: torch.device | str = "cpu") -> "Streams":
        """One stream per key; a key is a sequence of ints ≥ 0 and strings, its first element the seed."""
        return cls([seed_sequence(k) for k in keys], device)

    @classmethod
    def from_seed(cls, seed: int, n_replicas: int, device: torch.device | str = "cpu") -> "Streams":
        """Replica r draws from key (seed, r): a plain seed for a whole population."""
        if int(n_replicas) < 1:
            raise ConfigError(f"n_replicas must be ≥ 1; got {n_replicas}")
        return cls.from_keys([(int(seed), r) for r in range(int(n_replicas))], device)

    @classmethod
    def coerce(cls, rng: "Streams | int | None", n_replicas: int, device: torch.device | str = "cpu") -> "Streams":
        """``rng`` as Streams for ``n_replicas`` replicas: a seed (None → 0) or Streams of that size.

        Raises
        ------
        ConfigError
            Streams of another number of replicas, or a negative seed.
        """
        if isinstance(rng, Streams):
            if len(rng) != int(n_replicas):
                raise ConfigError(f"random streams for {len(rng)} replicas given to a population of {n_replicas}")
            if rng.device != torch.device(device):
                return rng.to(device)
            return rng
        seed = 0 if rng is None else rng
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be an int ≥ 0 or bmprune.rng.Streams; got {rng!r}")
        return cls.from_seed(int(seed), n_replicas, device)

    def child(self, *labels: int | str) -> "Streams":
        """Independent streams for a sub-task: each replica's key extended by ``labels``.

        Deterministic (a function of the keys and labels, not of how much was drawn), so
        e.g. the data order and the Gibbs draws of one training run never share a stream.
        """
        extra = tuple(key_word(x) for x in labels)
        seqs = [np.random.SeedSequence(s.entropy, spawn_key=tuple(s.spawn_key) + extra) for s in self.sequences]
        return Streams(seqs, self.device)

    def select(self, index) -> "Streams":
        """The streams of replicas ``index`` (ints, a slice, a bool mask or an int tensor).

        The selection shares generator state with this object: drawing from it advances
        the parent's streams of those replicas.
        """
        if isinstance(index, slice):
            idx = list(range(len(self)))[index]
        else:
            t = torch.as_tensor(index)
            if t.dtype == torch.bool:
                t = t.nonzero().flatten()
            idx = [int(i) for i in t.flatten().tolist()]
        return Streams([self.sequences[i] for i in idx], self.device, _generators=[self._gens[i] for i in idx])

    def to(self, device: torch.device | str) -> "Streams":
        """Fresh streams of the same keys on another device (their draws start anew)."""
        return Streams(self.sequences, device)

    def __len__(self) -> int:
        return len(self.sequences)

    def __repr__(self) -> str:
        return f"Streams(n_replicas={len(self)}, device={self.device})"

    # --- draws ---------------------------------------------------------------------------
    def uniform(self, shape: Sequence[int], dtype: torch.dtype = torch.float32,
                out: torch.Tensor | None = None) -> torch.Tensor:
        """Uniform draws on [0, 1): a tensor (R, *shape) of ``dtype`` (float32 or float64).

        ``out``: a contiguous (R, *shape) tensor of ``dtype`` to fill instead of a new one. Hot
        loops pass the same buffer every step: a fresh tensor above glibc's mmap threshold
        (32 MB) is mapped anew each time and page-faulted in, which cost a sampling stage of
        70 × 10,000 chains more system time than the draws themselves.
        """
        shape = tuple(int(n) for n in shape)
        if not self._numpy:
            u = torch.stack([torch.rand(shape, generator=g, dtype=dtype, device=self.device) for g in self._gens])
            return u if out is None else out.copy_(u)
        if dtype not in _NP_DTYPE:
            raise ConfigError(f"uniform draws are float32 or float64; got {dtype}")
        out = _out_buffer(out, (len(self), *shape), dtype)
        a, npdt, gens = out.numpy().reshape(len(self), -1), _NP_DTYPE[dtype], self._gens
        _parallel_map(lambda r: gens[r].random(dtype=npdt, out=a[r]), len(gens), a.size)
        return out

    def bernoulli(self, p: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """0/1 samples with probabilities ``p`` (R, ...): ``u < p``, same shape and dtype as ``p``.

        ``out``: a buffer for the uniforms, overwritten with the samples (see :meth:`uniform`).
        float32 ``p`` on the CPU takes :meth:`bernoulli_below` with ``thresholds(p)``: the
        same samples as comparing :meth:`uniform`'s draws with ``p``, about twice as fast.
        """
        if p.dtype == torch.float32 and self._numpy:
            out = _out_buffer(out, tuple(p.shape), torch.float32)   # the thresholds live in out's memory
            return self.bernoulli_below(thresholds(p, out=out), out=out)
        u = self.uniform(p.shape[1:], p.dtype if p.dtype in _NP_DTYPE else torch.float32, out=out)
        return torch.lt(u, p, out=u) if u.dtype == p.dtype else torch.lt(u, p).to(p.dtype)

    def bernoulli_below(self, t: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """0/1 float32 samples (R, ...) that are 1 where a float32 uniform u has u·2²⁴ < ``t``.

        ``t``: int32 (R, ...), e.g. :func:`thresholds` of probabilities p, for which the samples
        are exactly those of ``uniform(p.shape[1:]) < p`` (the same draws, the same order). A
        float32 uniform is (w >> 8)·2⁻²⁴ of the stream's next 32-bit word w, so on the CPU the
        words are taken raw (numpy's ``random_raw``, 64 bits per call, low half first, as
        numpy's own float32 draws consume them) and compared as integers: no float
        conversion, and a third of the generator's per-number cost.

        ``out``: a contiguous float32 (R, ...) buffer to write the samples into; it may be
        ``t``'s own memory (``buf.view(torch.int32)``), as the table sweep of
        :mod:`bmprune.sampling` does.

        Raises
        ------
        ConfigError
            ``t`` not int32, or ``out`` not a contiguous float32 tensor of t's shape.
        """
        if t.dtype != torch.int32:
            raise ConfigError(f"bernoulli_below needs int32 thresholds; got {t.dtype}")
        shape = tuple(t.shape[1:])
        if not self._numpy:     # torch's generators: float uniforms (out may hold t: not drawn into)
            u = self.uniform(shape, torch.float32).mul_(_FLOAT32_SCALE)
            return torch.lt(u, t, out=u if out is None else out)
        out = _out_buffer(out, tuple(t.shape), torch.float32)
        a, th, gens = out.numpy().reshape(len(self), -1), t.contiguous().numpy().reshape(len(self), -1), self._gens

        def fill(r):
            w = _float32_words(gens[r], a.shape[1])
            np.right_shift(w, 8, out=w)                                  # the 24 bits a float32 uniform keeps
            np.less(w.view(np.int32), th[r], out=a[r])
        _parallel_map(fill, len(gens), a.size)
        return out

    def normal(self, shape: Sequence[int], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Standard normal draws (R, *shape)."""
        shape = tuple(int(n) for n in shape)
        if not self._numpy:
            return torch.stack([torch.randn(shape, generator=g, dtype=dtype, device=self.device) for g in self._gens])
        out = torch.empty((len(self), *shape), dtype=dtype)
        a, npdt = out.numpy().reshape(len(self), -1), _NP_DTYPE[dtype]
        for r, g in enumerate(self._gens):
            g.standard_normal(dtype=npdt, out=a[r])
        return out

    def integers(self, high: int, shape: Sequence[int]) -> torch.Tensor:
        """Uniform integers in [0, high): int64 (R, *shape)."""
        shape = tuple(int(n) for n in shape)
        if not self._numpy:
            return torch.stack([torch.randint(0, int(high), shape, generator=g, device=self.device) for g in self._gens])
        return torch.from_numpy(np.stack([g.integers(0, int(high), size=shape, dtype=np.int64) for g in self._gens]))

    def permutation(self, n: int) -> torch.Tensor:
        """A uniformly random permutation of range(n) per replica: int64 (R, n)."""
        if not self._numpy:
            return torch.stack([torch.randperm(int(n), generator=g, device=self.device) for g in self._gens])
        return torch.from_numpy(np.stack([g.permutation(int(n)) for g in self._gens]))


class UniformPool:
    """Uniforms drawn in large blocks per replica and served in slices, for loops of tiny draws.

    Batch-1 training needs two small Bernoulli draws per update; one RNG call per draw would
    dominate its cost. The pool draws ``block`` uniforms per replica at a time (lazily) and
    hands out consecutive slices, so replica r's draws are a function of its stream alone.

    Parameters
    ----------
    streams : Streams
        One stream per replica (R).
    dtype : torch.dtype, default float32
    block : int, default 2**14
        Uniforms per replica per refill.
    """

    def __init__(self, streams: Streams, dtype=torch.float32, block: int = 2**14) -> None:
        self.streams, self.dtype, self.block = streams, dtype, int(block)
        self.buf: torch.Tensor | None = None
        self.pos = 0

    def uniform(self, shape: Sequence[int]) -> torch.Tensor:
        """A view of (R, *shape) fresh uniforms (valid until the next call)."""
        m = 1
        for n in shape:
            m *= int(n)
        if self.buf is None or self.pos + m > self.buf.shape[1]:
            self.buf = self.streams.uniform((max(self.block, m),), self.dtype).to(self.streams.device)
            self.pos = 0
        u = self.buf[:, self.pos:self.pos + m].view(self.buf.shape[0], *shape)
        self.pos += m
        return u

    def bernoulli(self, p: torch.Tensor) -> torch.Tensor:
        """0/1 samples with probabilities ``p`` (R, ...), dtype of the pool, written over the uniforms."""
        u = self.uniform(p.shape[1:])
        return torch.lt(u, p, out=u)


__all__ = ["Streams", "UniformPool", "key_word", "seed_sequence", "thresholds"]
