"""Mean-field stopping rules (issue 18 item 1): per-pattern convergence reaches the population
rule's fixed points within tolerance; a fixed-iteration mode runs without host syncs."""

import numpy as np
import pytest
import torch

import bmprune as bp
from bmprune.models.base import mean_field


@pytest.fixture(scope="module")
def dbm():
    x = (np.random.default_rng(0).random((300, 12)) < 0.3).astype(np.float64)
    d, _ = bp.training.pretrain_dbm(x, [12, 9, 7], epochs=2, batch_size=10, learning_rate=0.1, n_replicas=3,
                                    seed=1, weight_std=1.0, dtype=torch.float64)
    d.alive[2][1, 3] = False
    return d.apply_masks()


def test_pattern_and_population_rules_reach_the_same_fixed_point(dbm):
    v = torch.randint(0, 2, (3, 20, 12), generator=torch.Generator().manual_seed(2)).double()
    W, b, a = dbm.W, dbm.b, dbm.alive
    pop, its_pop = mean_field(v, W, b, a, 1e-10, 2000, "population")
    pat, its_pat = mean_field(v, W, b, a, 1e-10, 2000, "pattern")
    for p, q in zip(pop, pat):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-8)
    # every pattern stops at its own convergence: never later than the whole population
    assert bool((its_pat <= its_pop).all()) and its_pat.float().mean() < its_pop.float().mean()
    assert bool((pat[1][1, :, 3] == 0).all())                       # the dead unit stays off
    # and a fixed point of the update: μ¹ = σ(b₁ + vW₁ + W₂μ²), μ² = σ(b₂ + μ¹W₂)
    mu1 = torch.sigmoid(b[1].unsqueeze(1) + v @ W[0] + pat[1] @ W[1].transpose(1, 2)) * a[1].unsqueeze(1)
    torch.testing.assert_close(mu1, pat[0], rtol=0, atol=1e-8)


def test_iteration_counts_and_the_cap(dbm):
    v = torch.randint(0, 2, (8, 12), generator=torch.Generator().manual_seed(3)).double()
    _, its = mean_field(v.expand(3, -1, -1), dbm.W, dbm.b, dbm.alive, 0.0, 7, "pattern")
    assert its.shape == (3, 8) and bool((its == 7).all())          # tol 0 (floored to rounding): the cap
    _, its = mean_field(v.expand(3, -1, -1), dbm.W, dbm.b, dbm.alive, 1e-7, 7, "fixed")
    assert bool((its == 7).all())
    with pytest.raises(bp.ConfigError, match="mode"):
        mean_field(v.expand(3, -1, -1), dbm.W, dbm.b, dbm.alive, 1e-7, 7, "sometimes")
    mu = dbm.mean_field(v, mode="population")
    torch.testing.assert_close(dbm.mean_field(v)[1], mu[1], rtol=0, atol=1e-5)
