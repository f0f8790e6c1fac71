"""AIS log Z and log-likelihoods against exact enumeration (issue 16; SPEC §6).

Dimensions differ from each other (R = 3, nv = 7, nh = 5, …) so that a swapped axis fails.
AIS estimates are checked twice: within 3 of their own standard errors and within 0.05 nats
of the exact log Z, replica by replica.
"""

import importlib
import itertools
import math

import numpy as np
import pytest
import torch
from helpers import all_states, bars_and_stripes, brute_force_log_z, random_rbm

import bmprune as bp
from bmprune.evaluation import AISResult, ais, bound_gap, default_betas, log_likelihood

ais_module = importlib.import_module("bmprune.evaluation.ais")   # the name `ais` is the function


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids multi-threading overhead on a shared 2-core CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def assert_close_to_exact(res: AISResult, exact: torch.Tensor, tol: float = 0.05):
    err = (res.log_z - exact).abs()
    assert torch.isfinite(res.log_z_std).all() and (res.log_z_std > 0).all()
    assert (err <= 3 * res.log_z_std).all(), f"errors {err} vs 3σ {3 * res.log_z_std}"
    assert (err <= tol).all(), f"errors {err} exceed {tol} nats"


def random_dbm(sizes, R=3, seed=0, std=1.0, density=None, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    masks = None if density is None else [torch.rand(R, a, b, generator=g) < density for a, b in itertools.pairwise(sizes)]
    biases = [torch.randn(R, n, generator=g) * 0.5 for n in sizes]
    return bp.DBM(sizes, n_replicas=R, weight_masks=masks, seed=seed, weight_std=std, biases=biases, dtype=dtype)


def kill(model, layer: int, units):
    """Remove hidden units (per replica: {replica: [units]}) and mask their weights."""
    for r, js in units.items():
        model.alive[layer][r, js] = False
    model.apply_masks()
    return model


def brute_force_dbm_log_marginal(dbm) -> tuple[torch.Tensor, torch.Tensor]:
    """log p*(v) for every v (R, 2^nv) and log Z (R,) by enumerating every joint state (float64)."""
    sizes = dbm.layer_sizes
    X = all_states(sum(sizes))                                            # (S, n_total)
    parts, start = [], 0
    for n in sizes:
        parts.append(X[:, start:start + n])
        start += n
    W, b = [w.double() for w in dbm.W], [c.double() for c in dbm.b]
    neg_e = sum(p @ c.T for p, c in zip(parts, b)).T                     # (R, S)
    for l, w in enumerate(W):
        neg_e = neg_e + torch.einsum("si,rij,sj->rs", parts[l], w, parts[l + 1])
    dead_on = sum(p @ (~a).double().T for p, a in zip(parts, dbm.alive)).T > 0
    neg_e = neg_e.masked_fill(dead_on, -math.inf)
    v_code = (parts[0] * 2.0 ** torch.arange(sizes[0])).sum(1).long()    # bit i = unit i
    log_pv = torch.stack([torch.logsumexp(neg_e[:, v_code == c], dim=1) for c in range(2 ** sizes[0])], dim=1)
    return log_pv, torch.logsumexp(neg_e, dim=1)


# --- the schedule ------------------------------------------------------------------------
def test_default_schedule_is_salakhutdinov_murray_scaled():
    b = default_betas(14_501)                  # their 500 + 4,000 + 10,000 steps exactly
    assert b.dtype == torch.float64 and b.shape == (14_501,)
    assert b[0] == 0 and b[-1] == 1 and (b.diff() > 0).all()
    torch.testing.assert_close(b[[250, 500, 2_500, 4_500, 9_500]],
                               torch.tensor([0.25, 0.5, 0.7, 0.9, 0.95], dtype=torch.float64), atol=1e-12, rtol=0)
    for n in (2, 3, 10, 1_000, 10_000):
        b = default_betas(n)
        assert b.shape == (n,) and b[0] == 0 and b[-1] == 1 and (b.diff() > 0).all()
    res = ais(bp.RBM(5, 3), n_runs=2, n_betas=37)
    torch.testing.assert_close(res.betas, default_betas(37))


# --- AIS against exact log Z ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ais_random_rbm_population(dtype):
    rbm = random_rbm(7, 5, R=3, seed=1, mask_density=0.7, dtype=dtype)
    kill(rbm, 1, {1: [2], 2: [0, 4]})
    data = (np.random.default_rng(0).random((40, 7)) < 0.3).astype(np.uint8)
    res = ais(rbm, n_runs=200, n_betas=2_000, data=data, seed=2)
    assert res.log_z.dtype == torch.float64 and res.log_z.shape == (3,) and res.log_w.shape == (3, 200)
    assert res.n_runs == 200 and res.log_w.dtype == torch.float64
    assert_close_to_exact(res, brute_force_log_z(rbm))


def test_ais_random_dbm_population():
    dbm = kill(random_dbm([6, 5, 4], R=3, seed=2, density=0.7), 1, {0: [3]})
    kill(dbm, 2, {1: [0], 2: [1, 2]})
    res = ais(dbm, n_runs=200, n_betas=2_000, seed=3)                     # no data: uniform base
    assert_close_to_exact(res, dbm.log_partition())


def test_ais_three_hidden_layers():
    dbm = random_dbm([5, 4, 3, 4], R=2, seed=3)
    res = ais(dbm, n_runs=200, n_betas=2_000, seed=4)
    assert_close_to_exact(res, dbm.log_partition())


def test_ais_trained_rbm():
    x = bars_and_stripes(3)                                               # 14 patterns of 9 pixels
    rbm = bp.RBM(9, 8, n_replicas=2, seed=0)
    bp.training.train_rbm(rbm, np.repeat(x, 20, axis=0), epochs=30, batch_size=10, learning_rate=0.1,
                          momentum=0.5, seed=0)
    assert rbm.W.abs().max() > 2                                          # trained: a peaked distribution
    res = ais(rbm, n_runs=200, n_betas=2_000, data=x, seed=5)
    assert_close_to_exact(res, rbm.log_partition())


def test_ais_trained_dbm():
    x = np.repeat(bars_and_stripes(3), 20, axis=0)
    dbm, _ = bp.training.pretrain_dbm(x, [9, 8, 6], epochs=20, batch_size=10, learning_rate=0.1, momentum=0.5,
                                      seed=0, n_replicas=2)
    bp.training.train_dbm(dbm, x, epochs=20, batch_size=10, learning_rate=0.05, momentum=0.5, n_chains=50, seed=1)
    assert dbm.W[0].abs().max() > 2
    res = ais(dbm, n_runs=300, n_betas=3_000, data=x, seed=6)
    assert_close_to_exact(res, dbm.log_partition())


def test_base_model():
    rbm = random_rbm(7, 5, R=3, seed=4)
    kill(rbm, 1, {0: [1, 3]})
    data = np.zeros((20, 7), dtype=np.uint8)
    data[:5, 0] = 1                                                       # p = 0.25; pixel 1 always off
    data[:, 2] = 1                                                        # always on
    res = ais(rbm, n_runs=3, n_betas=10, data=data)
    p = torch.tensor([0.25, 1e-3, 1 - 1e-3, 1e-3, 1e-3, 1e-3, 1e-3], dtype=torch.float64)
    torch.testing.assert_close(res.base_bias, torch.log(p / (1 - p)).expand(3, 7))
    n_alive = torch.tensor([3.0, 5.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(res.log_z_base, torch.log1p(p / (1 - p)).sum() + n_alive * math.log(2))
    uni = ais(rbm, n_runs=3, n_betas=10, data=data, base="uniform")
    assert (uni.base_bias == 0).all()
    torch.testing.assert_close(uni.log_z_base, 7 * math.log(2) + n_alive * math.log(2))
    assert (ais(rbm, n_runs=3, n_betas=10).base_bias == 0).all()          # no data → uniform
    given = ais(rbm, n_runs=3, n_betas=10, base=torch.full((7,), -1.0))
    torch.testing.assert_close(given.base_bias, torch.full((3, 7), -1.0, dtype=torch.float64))


def test_ais_is_plain_importance_sampling_with_two_betas():
    # β = (0, 1): log w = log p*(v) − log p*_A(v) for v from the base, so mean w → Z/Z_A
    rbm = random_rbm(5, 3, R=2, seed=6, std=0.5)
    res = ais(rbm, n_runs=20_000, betas=[0.0, 1.0])
    assert_close_to_exact(res, brute_force_log_z(rbm), tol=0.02)


# --- dead units ----------------------------------------------------------------------------
def test_dead_units_change_nothing():
    """A DBM with dead units equals the smaller DBM without them: exact log Z, base log Z, AIS."""
    big = random_dbm([6, 5, 4], R=2, seed=7, dtype=torch.float64)
    keep1, keep2 = [0, 2, 3], [1, 3]
    kill(big, 1, {0: [1, 4], 1: [1, 4]})
    kill(big, 2, {0: [0, 2], 1: [0, 2]})
    big.b[1][:, [1, 4]] = 5.0                                             # a dead unit's bias is irrelevant
    big.b[2][:, [0, 2]] = -3.0
    small = bp.DBM([6, 3, 2], n_replicas=2, dtype=torch.float64)
    small.W = [big.W[0][:, :, keep1].clone(), big.W[1][:, keep1][:, :, keep2].clone()]
    small.b = [big.b[0].clone(), big.b[1][:, keep1].clone(), big.b[2][:, keep2].clone()]
    exact = small.log_partition()
    torch.testing.assert_close(big.log_partition(), exact, atol=1e-10, rtol=0)
    r_big, r_small = ais(big, n_runs=200, n_betas=2_000, seed=8), ais(small, n_runs=200, n_betas=2_000, seed=8)
    torch.testing.assert_close(r_big.log_z_base, r_small.log_z_base, atol=1e-12, rtol=0)
    assert_close_to_exact(r_big, exact)
    assert_close_to_exact(r_small, exact)


def test_dead_rbm_units_with_stale_weights_are_ignored():
    # alive says dead but the weights were not masked (apply_masks not called): still clamped
    rbm = random_rbm(7, 5, R=1, seed=9, dtype=torch.float64)
    rbm.alive[1][0, [0, 3]] = False
    small = bp.RBM(7, 3, dtype=torch.float64)
    small.W, small.b_v, small.b_h = rbm.W[:, :, [1, 2, 4]].clone(), rbm.b_v.clone(), rbm.b_h[:, [1, 2, 4]].clone()
    a, b = ais(rbm, n_runs=10, n_betas=50, seed=1), ais(small, n_runs=10, n_betas=50, seed=1)
    torch.testing.assert_close(a.log_z_base, b.log_z_base)
    assert_close_to_exact(ais(rbm, n_runs=200, n_betas=2_000), small.log_partition())


# --- implementation paths ---------------------------------------------------------------------
def test_sparse_and_dense_weights_give_the_same_runs(monkeypatch):
    dbm = random_dbm([12, 10, 8], R=2, seed=10, density=0.2, dtype=torch.float64)
    dense = ais(dbm, n_runs=50, n_betas=300, seed=1)
    monkeypatch.setattr(ais_module, "_SPARSE_MIN_SIZE", 1)
    monkeypatch.setattr(ais_module, "_SPARSE_DENSITY", 1.0)
    sparse = ais(dbm, n_runs=50, n_betas=300, seed=1)
    torch.testing.assert_close(sparse.log_w, dense.log_w, atol=1e-9, rtol=0)


def test_fast_log_weight_increment_equals_float64_softplus(monkeypatch):
    # the expm1/log1p form of softplus(β_k X) − softplus(β_{k−1} X) against the plain difference
    rbm = random_rbm(7, 5, R=2, seed=11, dtype=torch.float64)
    fast = ais(rbm, n_runs=30, n_betas=200, seed=2)
    monkeypatch.setattr(ais_module, "_FAST_STEP_LIMIT", -1.0)
    slow = ais(rbm, n_runs=30, n_betas=200, seed=2)
    torch.testing.assert_close(fast.log_w, slow.log_w, atol=1e-10, rtol=0)


def test_same_seed_same_numbers():
    dbm = random_dbm([6, 5, 4], R=2, seed=12)
    a, b = ais(dbm, n_runs=20, n_betas=100, seed=3), ais(dbm, n_runs=20, n_betas=100, seed=3)
    assert torch.equal(a.log_w, b.log_w)
    assert not torch.equal(a.log_w, ais(dbm, n_runs=20, n_betas=100, seed=4).log_w)


def test_standard_error_is_the_delta_method():
    res = ais(random_rbm(5, 3, R=2, seed=13), n_runs=40, n_betas=50)
    w = torch.exp(res.log_w - res.log_w.amax(1, keepdim=True))
    torch.testing.assert_close(res.log_z_std, w.std(1) / w.mean(1) / math.sqrt(40))
    torch.testing.assert_close(res.log_z, res.log_z_base + torch.logsumexp(res.log_w, 1) - math.log(40))
    assert torch.isnan(ais(random_rbm(5, 3, R=2), n_runs=1, n_betas=50).log_z_std).all()


# --- log-likelihood ---------------------------------------------------------------------------
def test_rbm_log_likelihood_is_exact():
    rbm = kill(random_rbm(7, 5, R=3, seed=14), 1, {2: [1]})
    v = (np.random.default_rng(1).random((11, 7)) < 0.4).astype(np.uint8)
    ll = log_likelihood(rbm, v)
    assert not ll.is_bound and ll.mean.shape == (3,) and ll.per_pattern.shape == (3, 11)
    torch.testing.assert_close(ll.mean, rbm.log_prob(v).mean(1), atol=1e-10, rtol=0)
    torch.testing.assert_close(ll.per_pattern, rbm.log_prob(v), atol=1e-10, rtol=0)
    assert (ll.log_z_std == 0).all()
    assert (bound_gap(rbm, v) == 0).all()
    # with an AIS estimate: shifted by the log Z error, which is carried along
    res = ais(rbm, n_runs=100, n_betas=1_000)
    est = log_likelihood(rbm, v, log_z=res)
    torch.testing.assert_close(est.mean, ll.mean - (res.log_z - ll.log_z), atol=1e-10, rtol=0)
    torch.testing.assert_close(est.log_z_std, res.log_z_std)
    assert torch.isnan(log_likelihood(rbm, v, log_z=res.log_z).log_z_std).all()
    torch.testing.assert_close(ll.sem, ll.per_pattern.std(1) / math.sqrt(11))


def test_dbm_bound_is_below_exact_and_gap_matches():
    dbm = kill(random_dbm([5, 4, 3], R=2, seed=15, std=1.5, dtype=torch.float64), 1, {1: [2]})
    log_pv, log_z = brute_force_dbm_log_marginal(dbm)
    v = all_states(5)[:, :]                                               # every pattern, row order ≠ code order
    code = (v * 2.0 ** torch.arange(5)).sum(1).long()
    exact = log_pv[:, code] - log_z.unsqueeze(1)                          # (R, 32)
    torch.testing.assert_close(dbm.log_partition(), log_z, atol=1e-10, rtol=0)
    ll = log_likelihood(dbm, v)
    assert ll.is_bound and ll.per_pattern.shape == (2, 32)
    assert (ll.per_pattern <= exact + 1e-9).all()
    gap = bound_gap(dbm, v)
    assert gap.shape == (2, 32) and (gap >= -1e-9).all() and (gap.amax() > 1e-3)
    torch.testing.assert_close(gap, exact - ll.per_pattern, atol=1e-8, rtol=0)


def test_dbm_gap_enumerating_the_even_hidden_layers():
    # [4, 6, 2, 5]: odd hidden layers hold 11 units, even ones 2: the h² states are enumerated
    dbm = random_dbm([4, 6, 2, 5], R=2, seed=16, dtype=torch.float64)
    log_pv, log_z = brute_force_dbm_log_marginal(dbm)
    v = all_states(4)
    code = (v * 2.0 ** torch.arange(4)).sum(1).long()
    exact = log_pv[:, code] - log_z.unsqueeze(1)
    ll = log_likelihood(dbm, v)
    torch.testing.assert_close(bound_gap(dbm, v), exact - ll.per_pattern, atol=1e-8, rtol=0)


# --- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error", [
    ({"n_runs": 0}, bp.ConfigError),
    ({"n_runs": 2.5}, bp.ConfigError),
    ({"n_betas": 1}, bp.ConfigError),
    ({"betas": [0.0, 0.5, 0.5, 1.0]}, bp.ConfigError),
    ({"betas": [0.1, 0.5, 1.0]}, bp.ConfigError),
    ({"betas": [0.0, 0.5, 0.9]}, bp.ConfigError),
    ({"betas": [[0.0, 1.0]]}, bp.ConfigError),
    ({"betas": [0.0, float("nan"), 1.0]}, bp.ConfigError),
    ({"base": "model"}, bp.ConfigError),
    ({"base_eps": 0.0}, bp.ConfigError),
    ({"data": np.full((4, 7), 0.5)}, bp.DataError),
    ({"data": np.zeros((0, 7))}, bp.DataError),
    ({"data": np.zeros((4, 6))}, bp.ShapeError),
    ({"data": np.zeros((2, 4, 7))}, bp.ShapeError),
    ({"base": np.zeros(6)}, bp.ShapeError),
    ({"base": np.full(7, np.inf)}, bp.DataError),
])
def test_ais_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        ais(random_rbm(7, 5, R=3), **{"n_runs": 2, "n_betas": 10, **kwargs})


def test_ais_rejects_what_is_not_a_model():
    with pytest.raises(bp.ConfigError):
        ais(object(), n_runs=2, n_betas=10)


def test_log_likelihood_errors():
    rbm = random_rbm(7, 5, R=3)
    with pytest.raises(bp.DataError):
        log_likelihood(rbm, np.full((2, 7), 0.5))
    with pytest.raises(bp.DataError):
        log_likelihood(rbm, np.zeros((0, 7)))
    with pytest.raises(bp.ShapeError):
        log_likelihood(rbm, np.zeros((2, 6)))
    with pytest.raises(bp.ShapeError):
        log_likelihood(rbm, np.zeros((2, 7)), log_z=torch.zeros(2))
    big = bp.DBM([30, 30, 30])
    with pytest.raises(bp.EnumerationError, match="ais"):
        log_likelihood(big, np.zeros((2, 30)))
    with pytest.raises(bp.EnumerationError):
        bound_gap(big, np.zeros((2, 30)))


# --- real data -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.data
def test_ais_on_mnist_rbm_matches_enumeration(data_dir):
    """A 400 × 20 RBM trained briefly on binarised MNIST: AIS from the data's base rates vs exact log Z."""
    x = bp.data.load_mnist("train", data_dir=data_dir).x[:10_000]
    rbm = bp.RBM(400, 20, n_replicas=2, seed=0, visible_bias=-1.0, hidden_bias=-2.0)
    bp.training.train_rbm(rbm, x, epochs=2, batch_size=10, learning_rate=0.05, momentum=0.5, seed=0)
    exact = rbm.log_partition()                                           # 2^20 hidden states
    res = ais(rbm, n_runs=2_000, n_betas=10_000, data=x, seed=1)
    assert_close_to_exact(res, exact)
    test = bp.data.load_mnist("test", data_dir=data_dir).x[:2_000]
    ll = log_likelihood(rbm, test, log_z=res)
    torch.testing.assert_close(ll.mean, log_likelihood(rbm, test).mean, atol=0.05, rtol=0)


def test_a_replicas_ais_estimate_does_not_depend_on_its_population():
    """Per-replica streams (DESIGN §Randomness): the same replica, keyed the same, gives the same runs."""
    import bmprune as bp
    from bmprune.evaluation.ais import ais
    from bmprune.rng import Streams

    rbm = bp.RBM(6, 5, n_replicas=3, seed=4, weight_std=1.0, dtype=torch.float64)
    keys = [(0, "a"), (1, "b"), (2, "c")]
    full = ais(rbm, n_runs=20, n_betas=200, seed=Streams.from_keys(keys))
    one = ais(rbm.replica(1), n_runs=20, n_betas=200, seed=Streams.from_keys(keys[1:2]))
    torch.testing.assert_close(one.log_w[0], full.log_w[1], rtol=1e-9, atol=1e-9)
