"""CD-k / PCD training (SPEC §2): direction of the update, likelihood gains, masks, schedules."""

import numpy as np
import pytest
import torch

import bmprune as bp
from bmprune.training import schedules
from helpers import bars_and_stripes, brute_force_joint, random_rbm


def mean_log_lik(rbm, data):
    return rbm.log_prob(data).mean(1)  # (R,)


def test_pcd_update_follows_exact_gradient():
    # With many equilibrated chains, one full-batch PCD update divided by lr is the exact
    # log-likelihood gradient <v hᵀ>_data − <v hᵀ>_model (sign and form of the update).
    rbm = random_rbm(4, 3, R=1, seed=5, dtype=torch.float32)
    data = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0], [0, 1, 0, 0]] * 5, dtype=torch.float32)
    W0 = rbm.W.double().clone()
    ph = torch.sigmoid(data.double() @ W0 + rbm.b_h.double()[:, None])
    pos = torch.einsum("bi,rbj->rij", data.double(), ph) / len(data)
    V, H, P = brute_force_joint(rbm.to(dtype=torch.float64))
    neg = torch.einsum("rst,si,tj->rij", P, V, H)
    lr = 1e-3
    bp.training.train_rbm(rbm, data, epochs=1, batch_size=len(data), learning_rate=lr, persistent=True,
                          n_chains=40_000, k=30, seed=0)
    step = (rbm.W.double() - W0) / lr
    # MC error of a mean over 40,000 chains: sd ≤ 1/2 → SE ≤ 0.0025; 6 SE
    torch.testing.assert_close(step, pos - neg, atol=0.015, rtol=0)


@pytest.mark.parametrize("persistent", [False, True])
def test_training_raises_exact_log_likelihood_on_bars_and_stripes(persistent):
    data = bars_and_stripes(4)                     # 30 patterns of 16 pixels
    rbm = bp.RBM(16, 10, n_replicas=2, seed=1, hidden_bias=-1.0)
    before = mean_log_lik(rbm, data)
    # PCD needs the smaller rate: at 0.1 its persistent chains lag the fast-moving model
    bp.training.train_rbm(rbm, data, epochs=300, batch_size=5, learning_rate=0.05 if persistent else 0.1,
                          momentum=0.5, persistent=persistent, n_chains=20, seed=2)
    after = mean_log_lik(rbm, data)
    # uniform model: −16 ln 2 = −11.1 nats; a trained 16×10 RBM gets within a few nats of −ln 30 = −3.4
    assert (after > before + 3.0).all(), (before, after)


def test_masked_weights_stay_exactly_zero_and_dead_units_inert():
    rng = np.random.default_rng(0)
    data = (rng.random((200, 7)) < 0.4).astype(np.uint8)
    mask = torch.tensor(rng.random((2, 7, 5)) < 0.5)
    rbm = bp.RBM(7, 5, n_replicas=2, weight_mask=mask, seed=0)
    rbm.alive[1][1, 2] = False
    rbm.apply_masks()
    b_dead = rbm.b_h[1, 2].clone()
    bp.training.train_rbm(rbm, data, epochs=3, batch_size=1, learning_rate=0.1, momentum=0.9, seed=1)
    assert (rbm.W[~rbm.weight_mask] == 0).all()
    assert (rbm.W[~mask] == 0).all() and (rbm.W[1, :, 2] == 0).all()
    assert rbm.b_h[1, 2] == b_dead
    assert (rbm.W[rbm.weight_mask] != 0).all()


def test_replicas_see_their_own_data_order():
    data = bars_and_stripes(3)
    rbm = bp.RBM(9, 4, n_replicas=2, seed=0).replicas([0, 0])   # identical start
    bp.training.train_rbm(rbm, data, epochs=1, batch_size=1, learning_rate=0.1, seed=3)
    assert not torch.equal(rbm.W[0], rbm.W[1])


def test_training_is_deterministic_given_seed():
    data = bars_and_stripes(3)
    a, b = bp.RBM(9, 4, seed=0), bp.RBM(9, 4, seed=0)
    for m in (a, b):
        bp.training.train_rbm(m, data, epochs=2, batch_size=3, learning_rate=0.1, momentum=0.5, seed=3)
    assert torch.equal(a.W, b.W) and torch.equal(a.b_v, b.b_v)


def test_callback_and_schedule_indexing():
    seen = []
    res = bp.training.train_rbm(bp.RBM(9, 4), bars_and_stripes(3), epochs=3, learning_rate=[0.3, 0.2, 0.1],
                                momentum=schedules.step([0.5, 0.9], [1], 3),
                                callback=lambda e, m, info: seen.append((e, info["learning_rate"], info["momentum"])))
    assert seen == [(0, 0.3, 0.5), (1, 0.2, 0.9), (2, 0.1, 0.9)]
    assert len(res.history) == 3 and res.seconds > 0


def test_doubled_input_changes_the_conditional_used():
    data = bars_and_stripes(3)
    a, b = bp.RBM(9, 4, seed=0), bp.RBM(9, 4, seed=0)
    bp.training.train_rbm(a, data, epochs=1, learning_rate=0.1, seed=3)
    bp.training.train_rbm(b, data, epochs=1, learning_rate=0.1, seed=3, double_bottom_up=True)
    assert not torch.allclose(a.W, b.W)


def test_schedules():
    g = schedules.geometric(0.01, 1e-4, 20)
    assert len(g) == 20 and g[0] == pytest.approx(0.01) and g[-1] == pytest.approx(1e-4)
    assert g[1] / g[0] == pytest.approx(g[19] / g[18])
    assert schedules.step([0.5, 0.9], [5], 20) == [0.5] * 5 + [0.9] * 15
    # a short schedule holds its last entry; the original rule reads entry min(e + 1, n − 1)
    assert schedules.resolve([0.1, 0.2], 3, "learning_rate") == [0.1, 0.2, 0.2]
    assert schedules.resolve([0.1, 0.2], 3, "learning_rate", "original") == [0.2, 0.2, 0.2]
    assert schedules.resolve([0.1, 0.2, 0.3, 0.4], 3, "learning_rate", "original") == [0.2, 0.3, 0.4]
    with pytest.raises(bp.ConfigError, match="entries"):     # entries that are never read
        schedules.resolve([0.1, 0.2, 0.3, 0.4], 3, "learning_rate")
    with pytest.raises(bp.ConfigError, match="entries"):
        schedules.resolve([], 3, "learning_rate")
    with pytest.raises(bp.ConfigError):
        schedules.resolve(-1.0, 3, "learning_rate")
    with pytest.raises(bp.ConfigError, match="update_rule"):
        schedules.resolve(0.1, 3, "learning_rate", "nesterov")
    assert schedules.effective_momentum([0.1, 0.01], [0.9, 0.9], "original") == pytest.approx([0.09, 0.009])


def test_bad_training_input():
    rbm = bp.RBM(4, 3)
    with pytest.raises(bp.DataError):
        bp.training.train_rbm(rbm, np.full((5, 4), 2))
    with pytest.raises(bp.ShapeError):
        bp.training.train_rbm(rbm, np.ones((5, 3)))
    with pytest.raises(bp.DataError, match="empty"):
        bp.training.train_rbm(rbm, np.ones((0, 4)))
    with pytest.raises(bp.ConfigError):
        bp.training.train_rbm(rbm, np.ones((5, 4)), batch_size=0)


@pytest.mark.parametrize("rule", ["classical", "original"])
@pytest.mark.parametrize("up, down", [(False, False), (True, False), (False, True), (True, True)])
def test_cd1_epochs_equal_manual_update_under_both_rules(rule, up, down):
    # Replays train_rbm's per-replica random streams by hand (data order, then Bernoulli draws
    # on the augmented shapes) over 3 epochs of two batches, with a 3-entry learning-rate and
    # a 2-entry momentum schedule (SPEC §2): the CD-1 gradient, the doubled inputs, and the
    # update rule written literally — classical: v ← μ v + lr g, entry e; original:
    # v ← lr (μ v + g), entry min(e + 1, n − 1). n_visible ≠ n_hidden so a transposed
    # scaling cannot pass.
    from bmprune.rng import Streams, UniformPool

    rng = np.random.default_rng(0)
    R, N, nv, nh, B = 2, 6, 5, 3, 3
    data = torch.tensor((rng.random((N, nv)) < 0.5).astype(np.float64))
    rbm = random_rbm(nv, nh, R=R, seed=1, dtype=torch.float64)
    W, b_v, b_h = rbm.W.clone(), rbm.b_v.clone(), rbm.b_h.clone()
    lrs, mus = [0.1, 0.05, 0.02], [0.5, 0.9]
    su, sd = (2.0 if up else 1.0), (2.0 if down else 1.0)

    streams = Streams.from_seed(7, R)
    order_rng, pool = streams.child("order"), UniformPool(streams.child("gibbs"), torch.float64)
    vel = [torch.zeros_like(W), torch.zeros_like(b_v), torch.zeros_like(b_h)]
    shift = 1 if rule == "original" else 0
    for epoch in range(3):
        lr, mu = lrs[min(epoch + shift, 2)], mus[min(epoch + shift, 1)]
        order = order_rng.permutation(N)
        for start in (0, B):
            v0 = data[order[:, start:start + B]]                                     # (R, B, nv)
            ph0 = torch.sigmoid(b_h[:, None] + su * v0 @ W)
            h0 = pool.bernoulli(torch.cat([ph0, torch.ones(R, B, 1, dtype=torch.float64)], 2))[..., :nh]
            pv1 = torch.sigmoid(b_v[:, None] + sd * h0 @ W.transpose(1, 2))
            v1 = pool.bernoulli(torch.cat([pv1, torch.ones(R, B, 1, dtype=torch.float64)], 2))[..., :nv]
            ph1 = torch.sigmoid(b_h[:, None] + su * v1 @ W)
            grads = [(v0.transpose(1, 2) @ ph0 - v1.transpose(1, 2) @ ph1) / B,
                     (v0 - v1).mean(1), (ph0 - ph1).mean(1)]
            for i, (p, gr) in enumerate(zip((W, b_v, b_h), grads)):
                vel[i] = mu * vel[i] + lr * gr if rule == "classical" else lr * (mu * vel[i] + gr)
                p += vel[i]

    res = bp.training.train_rbm(rbm, data, epochs=3, batch_size=B, learning_rate=lrs, momentum=mus, seed=7,
                                update_rule=rule, double_bottom_up=up, double_top_down=down)
    torch.testing.assert_close(rbm.W, W, atol=1e-12, rtol=0)
    torch.testing.assert_close(rbm.b_v, b_v, atol=1e-12, rtol=0)
    torch.testing.assert_close(rbm.b_h, b_h, atol=1e-12, rtol=0)
    expected_lr = [lrs[min(e + shift, 2)] for e in range(3)]
    assert [h["learning_rate"] for h in res.history] == expected_lr
