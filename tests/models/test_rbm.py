"""RBM core: exact partition function, probabilities, gradient, replicas, errors (SPEC §1, §4)."""

import numpy as np
import pytest
import torch

import bmprune as bp
from helpers import all_states, brute_force_joint, brute_force_log_z, random_rbm


@pytest.mark.parametrize("nv, nh", [(3, 5), (5, 3), (4, 4), (7, 2)])
@pytest.mark.parametrize("density", [None, 0.6])
def test_log_partition_equals_brute_force(nv, nh, density):
    # both enumeration branches (visible smaller / hidden smaller), with and without masks
    rbm = random_rbm(nv, nh, R=3, seed=nv * 10 + nh, mask_density=density)
    torch.testing.assert_close(rbm.log_partition(), brute_force_log_z(rbm), atol=1e-9, rtol=0)


@pytest.mark.parametrize("nv, nh", [(3, 5), (5, 3)])
def test_dead_hidden_unit_is_clamped_off(nv, nh):
    rbm = random_rbm(nv, nh, R=2, seed=3)
    rbm.alive[1][0, 1] = False
    rbm.apply_masks()
    assert (rbm.W[0, :, 1] == 0).all() and not rbm.weight_mask[0, :, 1].any()
    torch.testing.assert_close(rbm.log_partition(), brute_force_log_z(rbm), atol=1e-9, rtol=0)
    assert (rbm.p_h_given_v(torch.ones(4, nv))[0, :, 1] == 0).all()
    v, h = bp.sample(rbm, 200, steps=3)
    assert (h[0, :, 1] == 0).all() and h[1, :, 1].any()


def test_log_prob_normalised_and_matches_joint_marginal():
    rbm = random_rbm(5, 3, R=2, seed=1)
    V = all_states(5)
    lp = rbm.log_prob(V)
    assert lp.shape == (2, 32) and lp.dtype == torch.float64
    torch.testing.assert_close(lp.exp().sum(1), torch.ones(2, dtype=torch.float64), atol=1e-12, rtol=0)
    _, _, P = brute_force_joint(rbm)
    torch.testing.assert_close(lp.exp(), P.sum(2), atol=1e-12, rtol=0)


def test_free_energy_and_energy_consistent():
    # F(v) = -log Σ_h exp(-E(v,h)) by brute force over h
    rbm = random_rbm(4, 3, R=2, seed=2)
    V, H = all_states(4), all_states(3)
    E = torch.stack([rbm.energy(V, h.expand(16, 3)) for h in H], dim=-1)  # (R, 16, 8)
    torch.testing.assert_close(rbm.free_energy(V), -torch.logsumexp(-E, dim=-1), atol=1e-10, rtol=0)


def test_exact_gradient_equals_data_minus_model_statistics():
    # ∂/∂W mean_data log p(v) = <v hᵀ>_data − <v hᵀ>_model: the form the CD update follows
    rbm = random_rbm(4, 3, R=2, seed=5)
    data = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1]], dtype=torch.float64)
    for t in (rbm.W, rbm.b_v, rbm.b_h):
        t.requires_grad_(True)
    rbm.log_prob(data).mean(1).sum().backward()
    with torch.no_grad():
        ph_data = torch.sigmoid(data @ rbm.W + rbm.b_h[:, None, :])           # (R, B, nh)
        pos_W = torch.einsum("bi,rbj->rij", data, ph_data) / len(data)
        V, H, P = brute_force_joint(rbm)
        neg_W = torch.einsum("rst,si,tj->rij", P, V, H)
        torch.testing.assert_close(rbm.W.grad, pos_W - neg_W, atol=1e-10, rtol=0)
        torch.testing.assert_close(rbm.b_v.grad, data.mean(0) - P.sum(2) @ V, atol=1e-10, rtol=0)
        torch.testing.assert_close(rbm.b_h.grad, ph_data.mean(1) - P.sum(1) @ H, atol=1e-10, rtol=0)


def test_population_replica_matches_standalone():
    rbm = random_rbm(6, 4, R=3, seed=7, mask_density=0.7)
    v = torch.bernoulli(torch.full((9, 6), 0.5), generator=torch.Generator().manual_seed(0))
    lp = rbm.log_prob(v)
    for r in range(3):
        single = rbm.replica(r)
        assert single.n_replicas == 1
        # a population and a standalone replica run differently shaped kernels: float64 rounding
        torch.testing.assert_close(single.log_prob(v)[0], lp[r], atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(single.free_energy(v)[0], rbm.free_energy(v)[r], atol=1e-12, rtol=1e-12)


def test_replicas_can_repeat_and_are_independent_copies():
    rbm = random_rbm(3, 2, R=2, seed=0)
    rep = rbm.replicas([1, 1, 0])
    assert rep.n_replicas == 3
    torch.testing.assert_close(rep.W[0], rbm.W[1])
    rep.W[0].zero_()
    assert rbm.W[1].abs().sum() > 0


def test_init_is_seeded_masked_and_paper_scaled():
    mask = torch.rand(50, 40, generator=torch.Generator().manual_seed(1)) < 0.5
    a = bp.RBM(50, 40, n_replicas=2, weight_mask=mask, seed=4)
    b = bp.RBM(50, 40, n_replicas=2, weight_mask=mask, seed=4)
    torch.testing.assert_close(a.W, b.W)
    assert (a.W[:, ~mask] == 0).all()
    assert abs(float(a.W[:, mask].std()) - 0.1) < 0.01
    assert not torch.equal(a.W[0], a.W[1])          # replicas differ


def test_init_visible_bias_is_clipped_logit():
    data = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 0]], dtype=np.uint8)
    rbm = bp.RBM(3, 2).init_visible_bias(data)
    expected = torch.logit(torch.tensor([1 - 1e-7, 0.5, 1e-7], dtype=torch.float64)).float()
    torch.testing.assert_close(rbm.b_v[0], expected, atol=1e-3, rtol=1e-6)


def test_errors_are_typed_and_explained():
    rbm = bp.RBM(4, 3)
    with pytest.raises(bp.ShapeError, match="units"):
        rbm.free_energy(torch.ones(2, 5))
    with pytest.raises(bp.DataError, match="binary"):
        rbm.free_energy(torch.full((2, 4), 0.5))
    with pytest.raises(bp.DataError, match="NaN"):
        rbm.free_energy(torch.full((2, 4), float("nan")))
    with pytest.raises(bp.ShapeError, match="weight_mask"):
        bp.RBM(4, 3, weight_mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(bp.EnumerationError, match="2\\^30"):
        bp.RBM(30, 40).log_partition()
    with pytest.raises(bp.EnumerationError):
        bp.RBM(12, 12).log_partition(max_states=2**10)
    with pytest.raises(bp.ShapeError, match="replicas"):
        bp.RBM(4, 3, n_replicas=2).free_energy(torch.ones(3, 5, 4))


def test_accepts_bool_and_numpy_inputs():
    rbm = random_rbm(4, 3, R=2, seed=0)
    v = np.array([[1, 0, 1, 0]], dtype=np.uint8)
    torch.testing.assert_close(rbm.free_energy(v), rbm.free_energy(torch.tensor(v).bool()))
