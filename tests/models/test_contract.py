"""The BoltzmannMachine contract (issue 14 items 1–2): RBM and DBM are the same layered model,
removed units are masks (no artificial biases), a tempered model stays exact."""

from __future__ import annotations

import math

import pytest
import torch

import bmprune as bp
from bmprune.models import BoltzmannMachine
from helpers import brute_log_z, brute_neg_energy, joint_states, random_dbm

R = 3


def test_rbm_and_dbm_share_the_contract():
    rbm, dbm = bp.RBM(5, 4, n_replicas=R, seed=2), bp.DBM([5, 4, 3], n_replicas=R, seed=2)
    for m, sizes in ((rbm, [5, 4]), (dbm, [5, 4, 3])):
        assert isinstance(m, BoltzmannMachine)
        assert m.layer_sizes == sizes and m.n_layers == len(sizes) - 1 and m.n_visible == 5 and m.n_replicas == R
        assert [w.shape for w in m.weights] == [(R, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        assert [b.shape for b in m.biases] == [(R, n) for n in sizes] == [a.shape for a in m.alive]
    # the same seed gives the same first weight matrix, drawn per replica
    torch.testing.assert_close(rbm.W, dbm.W[0], rtol=0, atol=0)
    torch.testing.assert_close(bp.RBM(5, 4, n_replicas=1, seed=2).W[0], rbm.W[0], rtol=0, atol=0)
    # an RBM's mean field is its exact p(h | v); its transform the same
    v = torch.randint(0, 2, (6, 5))
    torch.testing.assert_close(rbm.mean_field(v)[0], rbm.p_h_given_v(v))
    torch.testing.assert_close(rbm.transform(v), rbm.p_h_given_v(v))


def _dead(dbm):
    dbm.alive[1][0, 1] = False
    dbm.alive[2][1, 0] = False
    dbm.alive[1][2, 2] = False
    return dbm.apply_masks()


def test_dead_units_are_masks_not_biases():
    dbm = _dead(random_dbm([4, 5, 3], R=R, seed=3))
    b_before = [b.clone() for b in dbm.b]
    states = dbm.init_chains(200, 0)
    for _ in range(3):
        states = dbm.gibbs_step(states, 1)
    mu = dbm.mean_field(torch.randint(0, 2, (7, 4)), tol=1e-12, max_iter=200)
    for l, a in enumerate(dbm.alive):
        dead = ~a
        assert bool((states[l][dead.unsqueeze(1).expand_as(states[l])] == 0).all())   # never sampled on
        if l:
            assert bool((mu[l - 1][dead.unsqueeze(1).expand_as(mu[l - 1])] == 0).all())
        torch.testing.assert_close(dbm.b[l], b_before[l], rtol=0, atol=0)            # biases untouched
        assert bool((dbm.b[l].abs() < 100).all())                                     # no −1e4 trick


@pytest.mark.parametrize("beta", [1.0, 0.3, 0.01, 0.0])
def test_a_tempered_model_stays_exact(beta):
    """β × every parameter with dead units: log Z by enumeration equals brute force (AIS's
    intermediate models); with biases standing in for masks, β → 0 would revive dead units."""
    dbm = _dead(random_dbm([4, 5, 3], R=R, seed=4))
    for t in dbm.W + dbm.b:
        t.mul_(beta)
    alive = [int(a.sum()) for a in dbm.alive[1]]
    ref = brute_log_z(dbm)
    torch.testing.assert_close(dbm.log_partition(), ref, rtol=1e-12, atol=1e-12)
    if beta == 0.0:   # every alive configuration equally likely: log Z = (#alive units) log 2
        n_alive = sum(a.sum(1) for a in dbm.alive).double()
        torch.testing.assert_close(dbm.log_partition(), n_alive * math.log(2), rtol=1e-12, atol=1e-12)
    assert alive  # fixture sanity


def test_free_energy_and_log_prob_of_a_dbm_against_brute_force():
    dbm = _dead(random_dbm([4, 3, 5], R=R, seed=5))
    xs = joint_states(dbm.layer_sizes)
    neg = brute_neg_energy(dbm, xs)                                             # (R, S)
    v_all = xs[0]
    codes = (v_all * 2 ** torch.arange(4, dtype=torch.float64)).sum(1).long()   # group states by v
    log_pv = torch.stack([torch.logsumexp(neg[:, codes == c], dim=1) for c in range(16)], dim=1)
    V = torch.tensor([[(c >> i) & 1 for i in range(4)] for c in range(16)], dtype=torch.float64)
    torch.testing.assert_close(-dbm.free_energy(V), log_pv, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dbm.log_prob(V), log_pv - brute_log_z(dbm).unsqueeze(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dbm.log_prob(V).exp().sum(1), torch.ones(R, dtype=torch.float64))
    assert dbm.is_enumerable() and not bp.DBM([4, 3, 40]).is_enumerable(2**20)
    with pytest.raises(bp.EnumerationError):
        bp.DBM([4, 3, 30]).free_energy(V, max_states=2**10)


def test_replicas_draw_the_same_numbers_in_any_population():
    """Per-replica streams: replica r of a seed draws the same numbers alone or among others."""
    big, keys = bp.rng.Streams.from_keys([(7, "a"), (9, "b"), (7, "c")]), [(9, "b")]
    small = bp.rng.Streams.from_keys(keys)
    torch.testing.assert_close(big.uniform((4, 3))[1], small.uniform((4, 3))[0], rtol=0, atol=0)
    torch.testing.assert_close(big.child("x").permutation(10)[1], small.child("x").permutation(10)[0])
    rbm = bp.RBM(6, 5, n_replicas=3, seed=bp.rng.Streams.from_keys([(1,), (2,), (3,)]))
    one = bp.RBM(6, 5, n_replicas=1, seed=bp.rng.Streams.from_keys([(2,)]))
    torch.testing.assert_close(rbm.W[1], one.W[0], rtol=0, atol=0)
    with pytest.raises(bp.ConfigError):
        bp.rng.Streams.coerce(bp.rng.Streams.from_seed(0, 2), 3)
    with pytest.raises(bp.ConfigError):
        bp.rng.Streams.coerce(-1, 3)
