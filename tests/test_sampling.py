"""Both sampling modes reproduce the exact marginals of a tiny RBM (SPEC §4, last bullet)."""

import pytest
import torch

import bmprune as bp
from helpers import exact_moments, random_rbm


@pytest.fixture(scope="module")
def tiny():
    # strong weights so the marginals are far from 1/2 and from each other
    return random_rbm(4, 3, R=2, seed=11, std=1.5, dtype=torch.float32)


@pytest.mark.parametrize("mode, kw", [
    ("independent", dict(steps=30)),
    ("persistent", dict(n_chains=400, burn_in=100, thin=5)),
])
def test_samples_match_exact_marginals(tiny, mode, kw):
    N = 20_000
    v, h = bp.sample(tiny, N, mode=mode, seed=3, **kw)
    assert v.shape == (2, N, 4) and h.shape == (2, N, 3)
    ev, eh, evh = exact_moments(tiny.to(dtype=torch.float64))
    # tolerance: 5 standard errors of a Bernoulli mean, sd ≤ 1/2 (persistent snapshots 5 sweeps
    # apart in a 7-unit RBM are close to independent; 5 SE leaves room for what correlation remains)
    tol = 5 * 0.5 / N**0.5
    torch.testing.assert_close(v.double().mean(1), ev, atol=tol, rtol=0)
    torch.testing.assert_close(h.double().mean(1), eh, atol=tol, rtol=0)
    torch.testing.assert_close(torch.einsum("rni,rnj->rij", v.double(), h.double()) / N, evh, atol=tol, rtol=0)


def test_chunks_cover_n_samples_and_are_seeded(tiny):
    chunks = list(bp.iter_samples(tiny, 25, steps=2, chunk_size=10, seed=1))
    assert [c[0].shape[1] for c in chunks] == [10, 10, 5]
    chunks = list(bp.iter_samples(tiny, 25, mode="persistent", n_chains=10, thin=2, seed=1))
    assert [c[0].shape[1] for c in chunks] == [10, 10, 5]
    a = bp.sample(tiny, 50, steps=3, seed=9)
    b = bp.sample(tiny, 50, steps=3, seed=9)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_bad_sampling_arguments(tiny):
    with pytest.raises(bp.ConfigError, match="mode"):
        bp.sample(tiny, 10, mode="parallel")
    with pytest.raises(bp.ConfigError):
        bp.sample(tiny, 0)


def test_the_table_sweep_of_small_rbms_equals_the_plain_gibbs_sweep():
    """Issue 18: the p(h | v) table (small visible layers) changes the cost, not the chain: from
    the same states and streams, float64 sweeps give the same samples (the probabilities agree
    to rounding, so no uniform falls between them); and it serves a population whole."""
    from bmprune.sampling import sweep_function

    rbm = random_rbm(5, 7, R=3, seed=2, std=1.5, dtype=torch.float64)
    rbm.alive[1][1, 4] = False
    rbm.apply_masks()
    table = sweep_function(rbm)
    assert table != rbm.gibbs_step                                      # the table path is taken
    a = b = rbm.init_chains(300, 1)
    ra, rb = bp.rng.Streams.from_seed(5, 3), bp.rng.Streams.from_seed(5, 3)
    for _ in range(4):
        a, b = table(a, ra), rbm.gibbs_step(b, rb)
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=0, atol=0)             # identical 0/1 states
    assert bool((a[1][1, :, 4] == 0).all())                             # the dead unit stays off
    dbm, wide = bp.DBM([5, 4, 3]), random_rbm(20, 3)                   # no table: a DBM, a wide visible layer
    assert sweep_function(dbm) == dbm.gibbs_step and sweep_function(wide) == wide.gibbs_step


@pytest.mark.parametrize("mode, kw", [("independent", dict(steps=3, chunk_size=10)),
                                      ("persistent", dict(n_chains=10, burn_in=2, thin=2))])
def test_chunks_kept_by_the_caller_stay_intact(tiny, mode, kw):
    """The table sweep reuses its buffers from sweep to sweep: the sampler hands out copies, so
    chunks kept in a list are not overwritten by the chains' later states."""
    kept = list(bp.iter_samples(tiny, 30, mode=mode, seed=4, **kw))
    copied = [tuple(s.clone() for s in c) for c in bp.iter_samples(tiny, 30, mode=mode, seed=4, **kw)]
    assert len(kept) == 3
    for a, b in zip(kept, copied):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(kept[0][0], kept[-1][0])


def test_uniform_draws_into_a_buffer_are_the_same_draws():
    s, t = bp.rng.Streams.from_seed(3, 2), bp.rng.Streams.from_seed(3, 2)
    buf = torch.empty(2, 5, 4)
    out = s.uniform((5, 4), out=buf)
    assert out.data_ptr() == buf.data_ptr() and torch.equal(out, t.uniform((5, 4)))
    p = torch.full((2, 5, 4), 0.5)
    assert torch.equal(s.bernoulli(p, out=buf), t.bernoulli(p)) and buf.data_ptr() == out.data_ptr()
    with pytest.raises(bp.ConfigError, match="out must be"):
        s.uniform((5, 3), out=buf)
    with pytest.raises(bp.ConfigError, match="out must be"):
        s.uniform((5, 4), torch.float64, out=buf)


@pytest.mark.parametrize("shape", [(7,), (5, 3), (64, 70), (1,), (9, 13)])
def test_integer_bernoulli_draws_are_the_float_comparison(shape):
    """Issue 18: float32 Bernoulli draws compare the streams' raw 32-bit words with ⌈p·2²⁴⌉ —
    exactly the samples of ``uniform < p`` (same words, same order), also with float32 uniforms
    of odd length drawn in between (numpy keeps half a 64-bit output for the next draw)."""
    s, t = bp.rng.Streams.from_seed(3, 4), bp.rng.Streams.from_seed(3, 4)
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        p = torch.rand(4, *shape, generator=g)
        p[0] = 0.0                                                     # never
        p[1].view(-1)[0] = 1.0                                         # always
        grid = torch.tensor([5, 2**23, 2**24 - 1]) / 2**24               # exactly on the uniforms' grid
        p[2].view(-1)[:3] = grid[:p[2].numel()]
        p[3].view(-1)[0] = 1e-9                                        # below the grid's first step
        x = s.bernoulli(p) if step % 2 else s.bernoulli(p, out=torch.empty_like(p))
        assert torch.equal(x, (t.uniform(shape) < p).float())
        assert bool((x[0] == 0).all()) and float(x[1].view(-1)[0]) == 1.0
        assert torch.equal(s.uniform((3,)), t.uniform((3,)))           # odd: a half word stays buffered
    q = torch.full((4, *shape), 0.5, requires_grad=True)                # a probability with a gradient
    assert torch.equal(s.bernoulli(q), (t.uniform(shape) < q).float())
    t64 = bp.rng.Streams.from_seed(3, 4)
    p64 = torch.full((4, 5), 0.3, dtype=torch.float64)                 # float64: the float path, unchanged
    assert torch.equal(bp.rng.Streams.from_seed(3, 4).bernoulli(p64), (t64.uniform((5,), torch.float64) < p64).double())


def test_bernoulli_below_checks_its_arguments():
    s = bp.rng.Streams.from_seed(0, 2)
    with pytest.raises(bp.ConfigError, match="int32"):
        s.bernoulli_below(torch.zeros(2, 3))
    with pytest.raises(bp.ConfigError, match="out must be"):
        s.bernoulli_below(torch.zeros(2, 3, dtype=torch.int32), out=torch.empty(2, 4))
    with pytest.raises(bp.ConfigError, match="out must be"):
        s.bernoulli(torch.zeros(2, 3), out=torch.empty(3, 2).T)
    assert torch.equal(bp.rng.thresholds(torch.tensor([0.0, 1.0, 0.5, 2.0**-30, 7.0, -1.0])),
                       torch.tensor([0, 2**24, 2**23, 1, 2**24, -1], dtype=torch.int32))


def test_the_float32_table_sweep_on_threads_equals_the_plain_gibbs_sweep(monkeypatch):
    """Issue 18: the float32 table sweep (integer thresholds; replicas split over threads, each
    running its ops on one thread) draws the chain of the plain Gibbs sweep from the same
    streams, and leaves torch's thread count as it was. (Groups are for many chains: forced here.)"""
    from bmprune.sampling import sweep_function

    monkeypatch.setattr(bp._torch, "GROUP_MIN_WORK", 0)

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rbm = random_rbm(6, 9, R=5, seed=4, std=1.5, dtype=torch.float32)
        rbm.alive[0][2, 1] = False
        rbm.apply_masks()
        table = sweep_function(rbm)
        a = b = rbm.init_chains(301, 1)
        ra, rb = bp.rng.Streams.from_seed(6, 5), bp.rng.Streams.from_seed(6, 5)
        for _ in range(3):
            a, b = table(a, ra), rbm.gibbs_step(b, rb)
            assert torch.get_num_threads() == 2
            # float32 probabilities of two kernels may differ by an ulp, so a uniform may fall
            # between them: allow a handful of the 5 × 301 × 15 states per sweep to differ
            assert sum(int((x != y).sum()) for x, y in zip(a, b)) <= 5
        assert bool((a[0][2, :, 1] == 0).all())                         # the dead visible unit stays off
    finally:
        torch.set_num_threads(threads)


def test_integer_draws_on_torch_generators_keep_the_thresholds_they_overwrite():
    """The path of a CUDA device (torch generators, float uniforms), run on the CPU: the table
    sweep gathers thresholds into the very buffer the samples go to; the uniforms must not be
    drawn into it first."""
    def torch_streams():
        s = bp.rng.Streams.from_seed(0, 2)
        s._numpy, s._gens = False, [torch.Generator().manual_seed(i) for i in range(2)]
        return s

    s, t = torch_streams(), torch_streams()
    p = torch.rand(2, 50, 7, generator=torch.Generator().manual_seed(1))
    buf = torch.empty(2, 50, 7)
    buf.view(torch.int32).copy_(bp.rng.thresholds(p))
    x = s.bernoulli_below(buf.view(torch.int32), out=buf)
    assert x.data_ptr() == buf.data_ptr()
    assert torch.equal(x, (t.uniform((50, 7)) < p).float())
    assert torch.equal(s.bernoulli(p), (t.uniform((50, 7)) < p).float())


def test_replica_groups_only_for_enough_work():
    """Threads per replica group pay only for large steps (else they take turns at the GIL)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        big, small = bp._torch.GROUP_MIN_WORK, bp._torch.GROUP_MIN_WORK - 1
        assert bp._torch.replica_groups(5, "cpu", big) == [(0, 2), (2, 5)]
        assert bp._torch.replica_groups(5, "cpu", small) == [(0, 5)]
        assert bp._torch.replica_groups(1, "cpu", big) == [(0, 1)]
        assert bp._torch.replica_groups(5, "cuda", big) == [(0, 5)]
    finally:
        torch.set_num_threads(threads)
