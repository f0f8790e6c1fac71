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
