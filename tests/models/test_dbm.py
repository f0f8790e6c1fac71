"""Deep Boltzmann machines (SPEC §1): exact normalisation, Gibbs sampling, mean field, masks, I/O.

References are brute force over every joint state of tiny models (written here with
itertools, independent of bmprune's enumeration). Dimensions differ per layer so that a
swapped axis cannot pass.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import bmprune as bp
from helpers import brute_log_z, brute_neg_energy, joint_states, random_dbm

R = 2


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second intra-op thread gains nothing and stalls on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def exact_moments(dbm):
    """Exact marginals of every layer [(R, n_l)] and ⟨x_l,i x_{l+1},j⟩ [(R, n_l, n_{l+1})]."""
    xs = joint_states(dbm.layer_sizes)
    p = torch.softmax(brute_neg_energy(dbm, xs), dim=1)                       # (R, S)
    marg = [p @ x for x in xs]
    pair = [torch.einsum("rs,si,sj->rij", p, xs[l], xs[l + 1]) for l in range(len(xs) - 1)]
    return marg, pair


def sigmoid_input(dbm, l, xs):
    """b_l + x_{l−1}ᵀW_{l−1} + W_l x_{l+1}, written out with einsum (R, B, n_l), float64."""
    out = dbm.b[l].double().unsqueeze(1)
    if l > 0:
        out = out + torch.einsum("rbi,rij->rbj", xs[l - 1].double(), dbm.W[l - 1].double())
    if l < dbm.n_layers:
        out = out + torch.einsum("rbj,rij->rbi", xs[l + 1].double(), dbm.W[l].double())
    return out


# --- construction -----------------------------------------------------------------------
def test_shapes_and_attributes():
    dbm = bp.DBM([7, 5, 3], n_replicas=R, seed=1)
    assert [tuple(w.shape) for w in dbm.W] == [(R, 7, 5), (R, 5, 3)]
    assert [tuple(b.shape) for b in dbm.b] == [(R, 7), (R, 5), (R, 3)]
    assert [tuple(m.shape) for m in dbm.weight_masks] == [(R, 7, 5), (R, 5, 3)]
    assert [tuple(a.shape) for a in dbm.alive] == [(R, 7), (R, 5), (R, 3)]
    assert dbm.layer_sizes == [7, 5, 3] and dbm.n_layers == 2 and dbm.n_visible == 7 and dbm.n_replicas == R
    assert dbm.weights is dbm.W and dbm.biases is dbm.b
    assert dbm.kind == "DBM" and "DBM(7-5-3" in repr(dbm)
    assert not torch.equal(dbm.W[0][0], dbm.W[0][1])   # replicas start from different weights


def test_initial_weights_are_normal_with_weight_std():
    w = bp.DBM([70, 50, 30], seed=2, weight_std=0.3).W[1]
    # 1,500 draws: the sample s.d. has standard error ≈ 0.3 / sqrt(2 · 1500) ≈ 0.0055; allow 5
    assert abs(float(w.std()) - 0.3) < 5 * 0.3 / math.sqrt(2 * w.numel())
    assert abs(float(w.mean())) < 5 * 0.3 / math.sqrt(w.numel())


def test_one_hidden_layer_starts_like_rbm():
    dbm, rbm = bp.DBM([6, 4], n_replicas=3, seed=7), bp.RBM(6, 4, n_replicas=3, seed=7)
    assert torch.equal(dbm.W[0], rbm.W)


def test_biases_and_masks_are_applied():
    mask = torch.rand(5, 4, generator=torch.Generator().manual_seed(0)) < 0.5
    dbm = bp.DBM([5, 4, 3], n_replicas=R, weight_masks=[mask, None], biases=[-1.0, torch.arange(4.0), torch.zeros(R, 3)])
    assert bool((dbm.W[0][:, ~mask] == 0).all())
    assert torch.equal(dbm.b[0], torch.full((R, 5), -1.0)) and torch.equal(dbm.b[1][1], torch.arange(4.0))


@pytest.mark.parametrize("kwargs", [
    dict(layer_sizes=[5]), dict(layer_sizes=[5, 0, 3]), dict(layer_sizes=[5, 4], n_replicas=0),
    dict(layer_sizes=[5, 4, 3], weight_masks=[None]), dict(layer_sizes=[5, 4, 3], weight_masks=[torch.ones(4, 5), None]),
    dict(layer_sizes=[5, 4, 3], biases=[0.0, 0.0]), dict(layer_sizes=[5, 4, 3], biases=[0.0, torch.zeros(5), 0.0]),
])
def test_bad_construction_raises(kwargs):
    with pytest.raises(bp.ShapeError):
        bp.DBM(**kwargs)


def test_apply_masks_cuts_dead_units_both_sides():
    dbm = random_dbm([5, 4, 3])
    dbm.alive[1][0, 2] = False
    dbm.alive[2][1, 0] = False
    dbm.apply_masks()
    assert bool((dbm.W[0][0, :, 2] == 0).all()) and bool((dbm.W[1][0, 2, :] == 0).all())
    assert not dbm.weight_masks[0][0, :, 2].any() and not dbm.weight_masks[1][0, 2, :].any()
    assert bool((dbm.W[1][1, :, 0] == 0).all())
    assert int((dbm.W[0] == 0).sum()) == 5 and int((dbm.W[1] == 0).sum()) == 3 + 4   # nothing else touched


# --- exact normalisation (enumeration) ------------------------------------------------------
@pytest.mark.parametrize("sizes", [[3, 3, 2], [2, 5, 2], [2, 3, 2, 2], [4, 3]])
def test_log_partition_matches_brute_force(sizes):
    # [3,3,2] enumerates h¹ (odd layers, 3 units < 5); [2,5,2] enumerates v and h² (4 < 5)
    dbm = random_dbm(sizes)
    torch.testing.assert_close(dbm.log_partition(), brute_log_z(dbm), rtol=0, atol=1e-9)


def test_log_partition_with_dead_units_equals_smaller_model():
    dbm = random_dbm([3, 4, 3])
    dbm.alive[1][:, 1] = False
    dbm.alive[2][1, 2] = False
    dbm.apply_masks()
    torch.testing.assert_close(dbm.log_partition(), brute_log_z(dbm), rtol=0, atol=1e-9)
    # replica 0 without h¹ unit 1 is exactly a 3–3–3 DBM
    keep = [0, 2, 3]
    small = bp.DBM([3, 3, 3], dtype=torch.float64, biases=[dbm.b[0][:1], dbm.b[1][:1, keep], dbm.b[2][:1]])
    small.W = [dbm.W[0][:1, :, keep].clone(), dbm.W[1][:1, keep].clone()]
    torch.testing.assert_close(dbm.log_partition()[:1], small.log_partition(), rtol=0, atol=1e-12)


def test_log_partition_float32_model_is_computed_in_float64():
    dbm = random_dbm([3, 3, 2], dtype=torch.float32)
    z = dbm.log_partition()
    assert z.dtype == torch.float64
    torch.testing.assert_close(z, brute_log_z(dbm), rtol=0, atol=1e-9)


def test_log_partition_refuses_too_many_states():
    dbm = bp.DBM([30, 30, 30])
    with pytest.raises(bp.EnumerationError):
        dbm.log_partition()
    with pytest.raises(bp.EnumerationError):
        random_dbm([3, 3, 2]).log_partition(max_states=4)


def test_energy_matches_brute_force():
    dbm = random_dbm([3, 3, 2])
    xs = joint_states(dbm.layer_sizes)
    torch.testing.assert_close(-dbm.energy(xs), brute_neg_energy(dbm, xs), rtol=0, atol=1e-12)


# --- Gibbs sampling: both modes of bp.sample reproduce the exact distribution -----------------
N_SAMPLES = 100_000


@pytest.mark.parametrize("mode, kwargs, inflation", [
    ("independent", dict(steps=30, chunk_size=25_000), 1.0),
    # snapshots of the same chains 20 sweeps apart are nearly, not exactly, independent:
    # allow √2 on the standard error for the residual autocorrelation
    ("persistent", dict(n_chains=1000, burn_in=50, thin=20), math.sqrt(2)),
])
def test_gibbs_reproduces_exact_marginals_and_pairs(mode, kwargs, inflation):
    dbm = random_dbm([3, 3, 2], seed=3, dtype=torch.float32)
    dbm.alive[1][1, 0] = False   # a dead unit: never on, and the exact reference knows it
    dbm.apply_masks()
    v, h1, h2 = bp.sample(dbm, N_SAMPLES, mode=mode, seed=11, **kwargs)
    assert v.shape == (R, N_SAMPLES, 3) and h1.shape == (R, N_SAMPLES, 3) and h2.shape == (R, N_SAMPLES, 2)
    assert not h1[1, :, 0].any()
    marg, pair = exact_moments(dbm)
    est = [x.double().mean(1) for x in (v, h1, h2)] + [
        torch.einsum("rni,rnj->rij", v.double(), h1.double()) / N_SAMPLES,
        torch.einsum("rni,rnj->rij", h1.double(), h2.double()) / N_SAMPLES]
    for e, p in zip(est, marg + pair):
        # tolerance: 5 standard errors of a Bernoulli mean, sqrt(p(1−p)/N), from the exact p
        tol = 5 * inflation * torch.sqrt(p * (1 - p) / N_SAMPLES) + 1e-12
        assert bool(((e - p).abs() <= tol).all()), f"max |z| = {float(((e - p).abs() / tol * 5).max()):.2f}"


def test_init_chains_and_gibbs_step_shapes():
    dbm = random_dbm([5, 4, 3], dtype=torch.float32)
    rng = bp.rng.Streams.from_seed(0, R)
    states = dbm.init_chains(7, rng)
    assert [tuple(s.shape) for s in states] == [(R, 7, 5), (R, 7, 4), (R, 7, 3)]
    v = torch.randint(0, 2, (6, 5))
    states = dbm.init_chains(99, rng, v=v)
    assert torch.equal(states[0], v.float().expand(R, -1, -1))
    new = dbm.gibbs_step(states, rng)
    assert len(new) == 3 and all(((s == 0) | (s == 1)).all() for s in new)


def test_p_layer_matches_formula():
    dbm = random_dbm([5, 4, 3])
    g = torch.Generator().manual_seed(1)
    xs = [torch.randint(0, 2, (R, 6, n), generator=g).double() for n in dbm.layer_sizes]
    for l in range(3):
        torch.testing.assert_close(dbm.p_layer(l, xs), torch.sigmoid(sigmoid_input(dbm, l, xs)), rtol=0, atol=1e-12)
    with pytest.raises(bp.ShapeError):
        dbm.p_layer(3, xs)
    with pytest.raises(bp.ShapeError):
        dbm.p_layer(1, xs[:2])


# --- mean field ------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[7, 5, 3], [6, 4, 5, 3]])
def test_mean_field_satisfies_fixed_point_equations(sizes):
    dbm = random_dbm(sizes, std=0.5)
    v = torch.randint(0, 2, (9, sizes[0]), generator=torch.Generator().manual_seed(2))
    tol = 1e-10
    mu = dbm.mean_field(v, tol=tol, max_iter=1000)
    xs = [v.double().expand(R, -1, -1)] + mu
    for l in range(1, len(sizes)):
        residual = (torch.sigmoid(sigmoid_input(dbm, l, xs)) - xs[l]).abs().max()
        # the last sweep changed nothing by ≥ tol, and the map contracts: residual < tol
        assert float(residual) < tol, (l, float(residual))


def test_mean_field_float32_default_tolerance():
    dbm = random_dbm([7, 5, 3], std=0.5, dtype=torch.float32)
    v = torch.randint(0, 2, (9, 7), generator=torch.Generator().manual_seed(2))
    mu = dbm.mean_field(v)                           # tol 1e-7, floored at 4 float32 eps
    xs = [v.float().expand(R, -1, -1)] + mu
    for l in (1, 2):
        assert float((torch.sigmoid(sigmoid_input(dbm, l, xs)) - xs[l].double()).abs().max()) < 2e-6


def test_mean_field_initialisation_is_doubled_bottom_up_pass():
    dbm = random_dbm([7, 5, 3])
    v = torch.randint(0, 2, (4, 7), generator=torch.Generator().manual_seed(3)).double()
    mu1, mu2 = dbm.mean_field(v, max_iter=0)
    torch.testing.assert_close(mu1, torch.sigmoid(dbm.b[1].unsqueeze(1) + 2 * v @ dbm.W[0]), rtol=0, atol=1e-12)
    torch.testing.assert_close(mu2, torch.sigmoid(dbm.b[2].unsqueeze(1) + mu1 @ dbm.W[1]), rtol=0, atol=1e-12)


def test_mean_field_one_layer_is_exact_posterior():
    dbm = random_dbm([7, 5])
    v = torch.randint(0, 2, (4, 7), generator=torch.Generator().manual_seed(3)).double()
    (mu,) = dbm.mean_field(v)
    torch.testing.assert_close(mu, torch.sigmoid(dbm.b[1].unsqueeze(1) + v @ dbm.W[0]), rtol=0, atol=1e-12)


def test_transform_is_top_layer_and_dead_units_are_zero():
    dbm = random_dbm([7, 5, 3])
    dbm.alive[2][0, 1] = False
    dbm.alive[1][1, 3] = False
    dbm.apply_masks()
    v = torch.randint(0, 2, (4, 7), generator=torch.Generator().manual_seed(4))
    mu1, mu2 = dbm.mean_field(v, tol=1e-12, max_iter=500)
    assert torch.equal(dbm.transform(v, tol=1e-12, max_iter=500), mu2)
    assert bool((mu2[0, :, 1] == 0).all()) and bool((mu1[1, :, 3] == 0).all())


def test_dead_unit_is_the_same_as_a_removed_unit():
    dbm = random_dbm([6, 4, 3])
    dbm.alive[1][:, 2] = False
    dbm.apply_masks()
    keep = [0, 1, 3]
    small = bp.DBM([6, 3, 3], n_replicas=R, dtype=torch.float64, biases=[dbm.b[0], dbm.b[1][:, keep], dbm.b[2]])
    small.W = [dbm.W[0][:, :, keep].clone(), dbm.W[1][:, keep].clone()]
    v = torch.randint(0, 2, (5, 6), generator=torch.Generator().manual_seed(5))
    big_mu, small_mu = dbm.mean_field(v, tol=0.0, max_iter=200), small.mean_field(v, tol=0.0, max_iter=200)
    torch.testing.assert_close(big_mu[0][:, :, keep], small_mu[0], rtol=0, atol=1e-14)
    torch.testing.assert_close(big_mu[1], small_mu[1], rtol=0, atol=1e-14)
    torch.testing.assert_close(dbm.log_partition(), small.log_partition(), rtol=0, atol=1e-12)


def test_mean_field_rejects_bad_input():
    dbm = random_dbm([7, 5, 3])
    with pytest.raises(bp.ShapeError):
        dbm.mean_field(torch.zeros(3, 6))
    with pytest.raises(bp.DataError):
        dbm.mean_field(torch.full((3, 7), 0.5))
    with pytest.raises(bp.ConfigError):
        dbm.mean_field(torch.zeros(3, 7), max_iter=-1)


# --- a population equals its replicas --------------------------------------------------------
def test_population_equals_per_replica_results():
    dbm = random_dbm([6, 4, 3], R=3, std=0.7)
    dbm.alive[2][2, 1] = False
    dbm.apply_masks()
    v = torch.randint(0, 2, (5, 6), generator=torch.Generator().manual_seed(6))
    xs = [torch.randint(0, 2, (3, 5, n), generator=torch.Generator().manual_seed(7)).double() for n in dbm.layer_sizes]
    pop_mu, z, e = dbm.mean_field(v, tol=1e-13, max_iter=2000), dbm.log_partition(), dbm.energy(xs)
    for r in range(3):
        one = dbm.replica(r)
        assert one.n_replicas == 1
        for a, b in zip(pop_mu, one.mean_field(v, tol=1e-13, max_iter=2000)):
            torch.testing.assert_close(a[r:r + 1], b, rtol=0, atol=1e-12)
        torch.testing.assert_close(z[r:r + 1], one.log_partition(), rtol=0, atol=1e-12)
        torch.testing.assert_close(e[r:r + 1], one.energy([x[r:r + 1] for x in xs]), rtol=0, atol=1e-12)
        torch.testing.assert_close(dbm.p_layer(1, xs)[r:r + 1], one.p_layer(1, [x[r:r + 1] for x in xs]), rtol=0, atol=1e-14)


def test_replicas_clone_and_to():
    dbm = random_dbm([6, 4, 3], R=3)
    two = dbm.replicas([2, 2])
    assert two.n_replicas == 2 and torch.equal(two.W[1][0], dbm.W[1][2]) and torch.equal(two.W[1][1], dbm.W[1][2])
    c = dbm.clone()
    c.W[0].zero_()
    assert bool((dbm.W[0] != 0).any())
    f = dbm.to(dtype=torch.float32)
    assert f.dtype == torch.float32 and f.alive[1].dtype == torch.bool and f.layer_sizes == dbm.layer_sizes


# --- persistence -----------------------------------------------------------------------------
def test_save_load_round_trip_is_exact(tmp_path):
    dbm = random_dbm([6, 4, 3], R=3, dtype=torch.float32)
    dbm.alive[1][1, 2] = False
    dbm.weight_masks[1][0, 0, 0] = False
    dbm.apply_masks()
    path = tmp_path / "dbm.safetensors"
    dbm.save(path, metadata={"stage": "retrained"})
    for loaded in (bp.DBM.load(path), bp.load_model(path)):
        assert isinstance(loaded, bp.DBM) and loaded.layer_sizes == [6, 4, 3]
        for (k, a), (k2, b) in zip(dbm.named_tensors().items(), loaded.named_tensors().items()):
            assert k == k2 and a.dtype == b.dtype and torch.equal(a, b), k
    assert bp.models.io.read_metadata(path)["stage"] == "retrained"
    with pytest.raises(bp.CheckpointError):
        bp.RBM.load(path)
    bp.RBM(3, 2).save(tmp_path / "rbm.safetensors")
    with pytest.raises(bp.CheckpointError):
        bp.DBM.load(tmp_path / "rbm.safetensors")
