"""DBM pre-training, stacking and joint mean-field + PCD training (SPEC §2).

Salakhutdinov & Larochelle (2010); the paper's Methods. Exact references: the expected
update of one full-batch step against the exact model expectation of a tiny DBM, and the
stacking arithmetic. Integration: features of a DBM trained on scikit-learn's digits.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import bmprune as bp
import bmprune.training.dbm as tdbm
from bmprune.training import schedules

R = 2


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: a second intra-op thread gains nothing, and on a CPU shared with
    other jobs multi-threaded kernels stall waiting for each other (tests ran 3× slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_rbm(nv, nh, seed, R=R, mask=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed + 50)
    return bp.RBM(nv, nh, n_replicas=R, weight_mask=mask, seed=seed, weight_std=1.0, dtype=dtype,
                  visible_bias=torch.randn(R, nv, generator=g, dtype=torch.float64),
                  hidden_bias=torch.randn(R, nh, generator=g, dtype=torch.float64))


def binary_data(n, nv, seed=0, p=0.3):
    return (torch.rand(n, nv, generator=torch.Generator().manual_seed(seed)) < p).to(torch.uint8)


# --- stacking ---------------------------------------------------------------------------------
def test_stacking_arithmetic():
    m1 = torch.rand(R, 6, 5, generator=torch.Generator().manual_seed(1)) < 0.6
    r1, r2 = random_rbm(6, 5, 1, mask=m1), random_rbm(5, 4, 2)
    r1.alive[1][1, 3] = False          # dead in RBM 1 → dead in the DBM, connections cut above too
    r1.apply_masks()
    dbm = bp.training.stack_rbms([r1, r2])
    assert dbm.layer_sizes == [6, 5, 4]
    assert torch.equal(dbm.W[0], r1.W) and torch.equal(dbm.weight_masks[0], r1.weight_mask)
    assert torch.equal(dbm.b[0], r1.b_v) and torch.equal(dbm.b[2], r2.b_h)
    torch.testing.assert_close(dbm.b[1], (r1.b_h + r2.b_v) / 2, rtol=0, atol=0)
    assert not dbm.alive[1][1, 3] and int((~dbm.alive[1]).sum()) == 1
    expected_w2 = r2.W.clone()
    expected_w2[1, 3] = 0
    assert torch.equal(dbm.W[1], expected_w2) and not dbm.weight_masks[1][1, 3].any()
    # copies, not views
    dbm.W[0].zero_()
    assert bool((r1.W != 0).any())


def test_stacking_three_rbms():
    rbms = [random_rbm(6, 5, 1), random_rbm(5, 4, 2), random_rbm(4, 3, 3)]
    dbm = bp.training.stack_rbms(rbms)
    assert dbm.layer_sizes == [6, 5, 4, 3]
    for l in range(3):
        assert torch.equal(dbm.W[l], rbms[l].W)
    torch.testing.assert_close(dbm.b[1], (rbms[0].b_h + rbms[1].b_v) / 2, rtol=0, atol=0)
    torch.testing.assert_close(dbm.b[2], (rbms[1].b_h + rbms[2].b_v) / 2, rtol=0, atol=0)
    assert torch.equal(dbm.b[3], rbms[2].b_h)


def test_stacking_rejects_mismatched_rbms():
    with pytest.raises(bp.ShapeError):
        bp.training.stack_rbms([random_rbm(6, 5, 1), random_rbm(4, 3, 2)])
    with pytest.raises(bp.ShapeError):
        bp.training.stack_rbms([random_rbm(6, 5, 1), random_rbm(5, 3, 2, R=3)])
    with pytest.raises(bp.ShapeError):
        bp.training.stack_rbms([])


# --- pre-training -------------------------------------------------------------------------------
@pytest.fixture
def record_train_rbm(monkeypatch):
    """Wrap train_rbm as called by pretrain_dbm; record its data and keyword arguments."""
    calls = []
    real = tdbm.train_rbm

    def spy(rbm, data, **kw):
        calls.append(dict(data=torch.as_tensor(data).clone(), rbm_init=rbm.clone(), **kw))
        return real(rbm, data, **kw)

    monkeypatch.setattr(tdbm, "train_rbm", spy)
    return calls


def test_pretraining_doubles_inputs_and_passes_up_doubled_samples(record_train_rbm):
    x = binary_data(4000, 8, seed=1, p=0.5)
    # RBM 1 is not trained (0 epochs) and has large weights, so doubling matters a lot
    dbm, rbms = bp.training.pretrain_dbm(x, [8, 6, 4], epochs=[0, 1], batch_size=10, learning_rate=0.01,
                                         weight_std=[1.0, 0.1], seed=3, n_replicas=R)
    c1, c2 = record_train_rbm
    assert (c1["double_bottom_up"], c1["double_top_down"]) == (True, False)
    assert (c2["double_bottom_up"], c2["double_top_down"]) == (False, True)
    h = c2["data"]
    assert h.shape == (R, 4000, 6) and h.dtype == torch.bool      # one sample per training pattern, per replica
    r1 = rbms[0]
    xv = x.double()
    p_doubled = torch.sigmoid(2 * xv @ r1.W.double() + r1.b_h.double().unsqueeze(1))   # (R, N, 6)
    p_single = torch.sigmoid(xv @ r1.W.double() + r1.b_h.double().unsqueeze(1))
    # the mean over patterns of a sample is within 5 standard errors of the mean probability
    se = torch.sqrt((p_doubled * (1 - p_doubled)).sum(1)) / 4000
    assert bool(((h.double().mean(1) - p_doubled.mean(1)).abs() < 5 * se).all())
    # and pattern by pattern: T = Σ (h − p₂)(p₂ − p₁) is N(0, Σ p₂(1−p₂)(p₂−p₁)²) if h ~ p₂ (doubled),
    # while samples of the undoubled p₁ would shift it by −Σ (p₂ − p₁)², over 20 standard deviations
    d = p_doubled - p_single
    sd = torch.sqrt((p_doubled * (1 - p_doubled) * d**2).sum())
    assert abs(float(((h.double() - p_doubled) * d).sum() / sd)) < 5
    assert float((d**2).sum() / sd) > 20
    # the DBM is the stack of the returned RBMs
    ref = bp.training.stack_rbms(rbms)
    for k, t in ref.named_tensors().items():
        assert torch.equal(t, dbm.named_tensors()[k]), k


def test_pretraining_three_hidden_layers_doubles_middle_both_ways(record_train_rbm):
    bp.training.pretrain_dbm(binary_data(50, 5), [5, 4, 3, 2], epochs=1, batch_size=5, seed=0)
    flags = [(c["double_bottom_up"], c["double_top_down"]) for c in record_train_rbm]
    assert flags == [(True, False), (True, True), (False, True)]


def test_pretraining_single_layer_is_a_plain_rbm(record_train_rbm):
    dbm, (rbm,) = bp.training.pretrain_dbm(binary_data(50, 5), [5, 4], epochs=1, batch_size=5, seed=0)
    assert (record_train_rbm[0]["double_bottom_up"], record_train_rbm[0]["double_top_down"]) == (False, False)
    assert torch.equal(dbm.W[0], rbm.W) and torch.equal(dbm.b[1], rbm.b_h)


def test_per_rbm_hyperparameters():
    seen = []
    lr1, lr2 = schedules.geometric(0.01, 0.001, 2), schedules.geometric(0.1, 0.01, 3)
    _, rbms = bp.training.pretrain_dbm(
        binary_data(60, 9), [9, 5, 4], epochs=[2, 3], batch_size=[1, 10], learning_rate=[lr1, lr2],
        momentum=[[0.5, 0.9], lambda e: 0.5], visible_bias=[-1.0, torch.zeros(5)], hidden_bias=-2.0, seed=1,
        callback=lambda i, epoch, rbm, info: seen.append((i, epoch, info["learning_rate"], info["momentum"])))
    assert seen == [(0, 0, lr1[0], 0.5), (0, 1, lr1[1], 0.9), (1, 0, lr2[0], 0.5), (1, 1, lr2[1], 0.5), (1, 2, lr2[2], 0.5)]
    # a list of plain numbers is a per-epoch schedule shared by both RBMs
    seen.clear()
    bp.training.pretrain_dbm(binary_data(20, 9), [9, 5, 4], epochs=2, learning_rate=[0.2, 0.1], seed=1,
                             callback=lambda i, epoch, rbm, info: seen.append((i, info["learning_rate"])))
    assert seen == [(0, 0.2), (0, 0.1), (1, 0.2), (1, 0.1)]
    with pytest.raises(bp.ConfigError):
        bp.training.pretrain_dbm(binary_data(20, 9), [9, 5, 4], epochs=[1, 1, 1])
    with pytest.raises(bp.ConfigError):
        bp.training.pretrain_dbm(binary_data(20, 9), [9, 5, 4], learning_rate=[[0.1], [0.1], [0.1]])


def test_pretraining_rejects_bad_input():
    with pytest.raises(bp.ShapeError):
        bp.training.pretrain_dbm(binary_data(20, 9), [8, 5, 4])
    with pytest.raises(bp.DataError):
        bp.training.pretrain_dbm(np.full((20, 9), 0.5), [9, 5, 4])
    with pytest.raises(bp.ShapeError):
        bp.training.pretrain_dbm(binary_data(20, 9), [9, 5, 4], weight_masks=[None])


def test_chains_from_rbms():
    rbms = [random_rbm(6, 5, 1), random_rbm(5, 4, 2)]
    v = binary_data(7, 6)
    states = bp.training.chains_from_rbms(rbms, v, seed=0)
    assert [tuple(s.shape) for s in states] == [(R, 7, 6), (R, 7, 5), (R, 7, 4)]
    assert torch.equal(states[0], v.double().expand(R, -1, -1))
    assert all(((s == 0) | (s == 1)).all() for s in states)


# --- joint training: the update is the exact gradient ------------------------------------------
def exact_model_moments(dbm):
    sizes = dbm.layer_sizes
    s = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(sizes))), dtype=torch.float64)
    xs = list(torch.split(s, sizes, dim=1))
    neg = sum((x @ b.double().T).T for x, b in zip(xs, dbm.b))
    for l, w in enumerate(dbm.W):
        neg = neg + torch.einsum("si,rij,sj->rs", xs[l], w.double(), xs[l + 1])
    p = torch.softmax(neg, dim=1)
    return [p @ x for x in xs], [torch.einsum("rs,si,sj->rij", p, xs[l], xs[l + 1]) for l in range(len(sizes) - 1)]


def test_one_full_batch_update_equals_exact_gradient():
    """ΔW/lr = ⟨·⟩_mean-field(data) − ⟨·⟩_model: the positive part is deterministic, the
    negative part is estimated from C chains that start in equilibrium (long Gibbs runs)."""
    g = torch.Generator().manual_seed(0)
    sizes = [4, 3, 2]
    dbm = bp.DBM(sizes, n_replicas=R, seed=3, weight_std=1.0, dtype=torch.float64,
                 biases=[torch.randn(R, n, generator=g, dtype=torch.float64) * 0.5 for n in sizes])
    data = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)
    mu = dbm.mean_field(data, tol=1e-13, max_iter=1000)
    pos = [data.expand(R, -1, -1)] + mu
    marg, pair = exact_model_moments(dbm)
    C = 200_000
    chains = bp.sample(dbm, C, steps=20, seed=5)
    before = dbm.clone()
    lr = 0.01
    bp.training.train_dbm(dbm, data, epochs=1, batch_size=3, learning_rate=lr, momentum=0.0, max_norm=None,
                          mf_tol=1e-13, mf_max_iter=1000, init_chains_from=chains, seed=1)
    # each chain contributes a value in [0, 1] (variance ≤ 1/4): standard error ≤ 0.5/√C; allow 5
    tol = 5 * 0.5 / math.sqrt(C)
    for l in range(2):
        step = (dbm.W[l] - before.W[l]) / lr
        expected = torch.einsum("rbi,rbj->rij", pos[l], pos[l + 1]) / 3 - pair[l]
        assert float((step - expected).abs().max()) < tol, l
    for l in range(3):
        step = (dbm.b[l] - before.b[l]) / lr
        assert float((step - (pos[l].mean(1) - marg[l])).abs().max()) < tol, l


# --- joint training: constraints -------------------------------------------------------------
def test_masks_and_dead_units_stay_inert_through_pretraining_and_joint_training():
    x = binary_data(300, 16, seed=2)
    m0 = bp.receptive_field_mask(4, 4, 3)
    m1 = torch.rand(R, 16, 7, generator=torch.Generator().manual_seed(3)) < 0.5
    dbm, rbms = bp.training.pretrain_dbm(x, [16, 16, 7], weight_masks=[m0, m1], epochs=2, batch_size=5,
                                         learning_rate=0.05, seed=0, n_replicas=R, visible_bias=-1.0, hidden_bias=-2.0)
    assert bool((rbms[0].W[:, ~m0] == 0).all()) and bool((rbms[1].W[~m1] == 0).all())
    assert bool((dbm.W[0][:, ~m0] == 0).all()) and bool((dbm.W[1][~m1] == 0).all())
    assert torch.equal(dbm.weight_masks[0], m0.expand(R, -1, -1)) and torch.equal(dbm.weight_masks[1], m1)
    # remove units: h¹ 2 and 5 in replica 0, h² 3 in replica 1
    dbm.alive[1][0, [2, 5]] = False
    dbm.alive[2][1, 3] = False
    dbm.apply_masks()
    masks = [m.clone() for m in dbm.weight_masks]
    dead_b1, dead_b2 = dbm.b[1][0, [2, 5]].clone(), dbm.b[2][1, 3].clone()
    w_before = [w.clone() for w in dbm.W]
    res = bp.training.train_dbm(dbm, x, epochs=2, batch_size=4, learning_rate=0.05, momentum=0.9, n_chains=20, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(masks, dbm.weight_masks))
    for w, wb, m in zip(dbm.W, w_before, masks):
        assert bool((w[~m] == 0).all())
        assert bool((w[m] != wb[m]).any())                                  # ... while the rest learned
    assert bool((dbm.W[0][0, :, [2, 5]] == 0).all()) and bool((dbm.W[1][0, [2, 5]] == 0).all())
    assert bool((dbm.W[1][1, :, 3] == 0).all())
    assert torch.equal(dbm.b[1][0, [2, 5]], dead_b1) and torch.equal(dbm.b[2][1, 3], dead_b2)
    mu1, mu2 = dbm.mean_field(x[:50])
    assert bool((mu1[0, :, [2, 5]] == 0).all()) and bool((mu2[1, :, 3] == 0).all())
    chains = res.persistent_chains
    assert bool((chains[1][0, :, [2, 5]] == 0).all()) and bool((chains[2][1, :, 3] == 0).all())
    _, h1, h2 = bp.sample(dbm, 200, steps=5, seed=2)
    assert not h1[0, :, [2, 5]].any() and not h2[1, :, 3].any()


def test_max_norm_bounds_incoming_weights():
    x = binary_data(200, 9, seed=4, p=0.5)
    free = bp.DBM([9, 6, 5], n_replicas=R, seed=0)
    bp.training.train_dbm(free, x, epochs=2, batch_size=2, learning_rate=0.5, momentum=0.5, max_norm=None, seed=0)
    assert max(float(w.norm(dim=1).max()) for w in free.W) > 1.0          # unconstrained, the norms grow
    dbm = bp.DBM([9, 6, 5], n_replicas=R, seed=0)
    bp.training.train_dbm(dbm, x, epochs=2, batch_size=2, learning_rate=0.5, momentum=0.5, max_norm=1.0, seed=0)
    for w in dbm.W:
        assert float(w.norm(dim=1).max()) <= 1.0 + 1e-6                       # column j: weights into unit j


def test_replicas_learn_from_their_own_data():
    # replica 0 sees only all-off patterns, replica 1 only all-on: their visible biases part ways
    data = torch.stack([torch.zeros(40, 6), torch.ones(40, 6)])
    dbm = bp.DBM([6, 4, 3], n_replicas=2, seed=0)
    bp.training.train_dbm(dbm, data, epochs=3, batch_size=4, learning_rate=0.1, momentum=0.5, n_chains=10, seed=0)
    assert bool((dbm.b[0][0] < -0.5).all()) and bool((dbm.b[0][1] > 0.5).all())


def test_history_chains_and_continuation():
    x = binary_data(23, 6)
    dbm = bp.DBM([6, 4, 3], n_replicas=R, seed=0)
    seen = []
    res = bp.training.train_dbm(dbm, x, epochs=2, batch_size=1, learning_rate=[0.05, 0.01], momentum=0.5,
                                n_chains=7, seed=0, callback=lambda e, m, info: seen.append((e, m is dbm)))
    assert isinstance(res, bp.training.TrainResult) and seen == [(0, True), (1, True)]
    h = res.history
    assert [e["learning_rate"] for e in h] == [0.05, 0.01] and res.seconds > 0
    assert all(1 <= e["mean_field_iterations"] <= 50 and 0 <= e["reconstruction_error"] <= 1 for e in h)
    assert [tuple(c.shape) for c in res.persistent_chains] == [(R, 7, 6), (R, 7, 4), (R, 7, 3)]
    res2 = bp.training.train_dbm(dbm, x, epochs=1, batch_size=5, learning_rate=0.01, init_chains_from=res.persistent_chains)
    assert res2.persistent_chains[0].shape == (R, 7, 6)


def test_same_seed_same_result():
    x = binary_data(30, 6)
    a, b = bp.DBM([6, 4, 3], n_replicas=R, seed=0), bp.DBM([6, 4, 3], n_replicas=R, seed=0)
    for m in (a, b):
        bp.training.train_dbm(m, x, epochs=1, batch_size=3, learning_rate=0.05, momentum=0.5, n_chains=8, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.named_tensors().values(), b.named_tensors().values()))


@pytest.mark.parametrize("kwargs, error", [
    (dict(epochs=-1), bp.ConfigError), (dict(batch_size=0), bp.ConfigError), (dict(k=0), bp.ConfigError),
    (dict(n_chains=0), bp.ConfigError), (dict(max_norm=0.0), bp.ConfigError), (dict(mf_tol=-1.0), bp.ConfigError),
    (dict(learning_rate=[0.1, 0.1], epochs=1), bp.ConfigError),
    (dict(init_chains_from=(torch.zeros(3, 6), torch.zeros(3, 4))), bp.ShapeError),
    (dict(init_chains_from=(torch.zeros(3, 6), torch.zeros(3, 4), torch.zeros(2, 3))), bp.ShapeError),
])
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        bp.training.train_dbm(bp.DBM([6, 4, 3]), binary_data(10, 6), **kwargs)


def test_bad_data_raises():
    with pytest.raises(bp.DataError):
        bp.training.train_dbm(bp.DBM([6, 4, 3]), torch.full((10, 6), 0.5))
    with pytest.raises(bp.ShapeError):
        bp.training.train_dbm(bp.DBM([6, 4, 3]), torch.zeros(10, 5))
    with pytest.raises(bp.DataError):
        bp.training.train_dbm(bp.DBM([6, 4, 3]), torch.zeros(0, 6))


# --- integration: digits ------------------------------------------------------------------------
def test_digits_features_classify_far_above_chance():
    """Pre-train + joint-train an 8×8 digits DBM (3×3 fields, 64–64–100, two replicas); a
    logistic regression on its top-layer mean-field features must beat 80 % on held-out
    digits (chance: 10 %). The raw binarised pixels are printed as the baseline."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X > 7).astype(np.uint8)                                   # grey levels 0..16 → binary
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    dbm, _ = bp.training.pretrain_dbm(
        Xtr, [64, 64, 100], weight_masks=[bp.receptive_field_mask(8, 8, 3), None], epochs=10, batch_size=10,
        learning_rate=0.05, momentum=schedules.step([0.5, 0.9], [3], 10), seed=0, n_replicas=2,
        visible_bias=-1.0, hidden_bias=-2.0)
    bp.training.train_dbm(dbm, Xtr, epochs=5, batch_size=10, learning_rate=0.01, momentum=0.5, n_chains=100, seed=1)
    ftr, fte = dbm.transform(Xtr).numpy(), dbm.transform(Xte).numpy()
    acc = [LogisticRegression(C=1.0, max_iter=3000).fit(ftr[r], ytr).score(fte[r], yte) for r in range(2)]
    raw = LogisticRegression(C=1.0, max_iter=3000).fit(Xtr, ytr).score(Xte, yte)
    print(f"\ndigits held-out accuracy: DBM top-layer features {acc}, raw binarised pixels {raw:.3f}")
    assert min(acc) > 0.8


def test_replica_groups_on_threads_train_as_one_population(monkeypatch):
    """Issue 18: with 2 CPU threads the population trains as groups of replicas, each on its own
    thread (its slice of θ, velocity, chains, uniform pool); the result equals training on one
    thread to float64 rounding, dead units included, and torch's thread count is restored.
    (Groups are for large replicas: here forced for a tiny one.)"""
    monkeypatch.setattr(bp._torch, "GROUP_MIN_WORK", 0)
    x = binary_data(40, 6)

    def trained(threads):
        torch.set_num_threads(threads)
        dbm = bp.DBM([6, 4, 3], n_replicas=3, seed=1, dtype=torch.float64)
        dbm.alive[1][2, 0] = False
        res = bp.training.train_dbm(dbm, x, epochs=2, batch_size=4, learning_rate=0.05, momentum=0.5, n_chains=9, seed=5)
        assert torch.get_num_threads() == threads
        return dbm, res

    assert bp._torch.replica_groups(3, "cpu", 1) == [(0, 3)]              # the fixture's single thread
    (one, r1), (two, r2) = trained(1), trained(2)
    assert bp._torch.replica_groups(3, "cpu", 1) == [(0, 2), (2, 3)]
    assert bp._torch.replica_groups(3, "cuda", 1) == [(0, 3)]
    for name, t in one.named_tensors().items():
        torch.testing.assert_close(two.named_tensors()[name], t, rtol=1e-12, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(r1.persistent_chains, r2.persistent_chains))
    assert r1.history[1]["mean_field_iterations"] == pytest.approx(r2.history[1]["mean_field_iterations"])
    assert bool((two.W[0][2, :, 0] == 0).all())                          # the dead unit's weights stay off


def test_population_mean_field_keeps_one_replica_group(monkeypatch):
    """"population" mean field stops when the whole population has converged: its replicas are
    not split over threads (the other modes are)."""
    monkeypatch.setattr(bp._torch, "GROUP_MIN_WORK", 0)
    seen = []
    real = tdbm.run_replica_groups
    monkeypatch.setattr(tdbm, "run_replica_groups", lambda fn, groups: seen.append(len(groups)) or real(fn, groups))
    torch.set_num_threads(2)
    for mode in ("population", "pattern"):
        dbm = bp.DBM([6, 4, 3], n_replicas=3, seed=1)
        bp.training.train_dbm(dbm, binary_data(8, 6), batch_size=4, n_chains=5, seed=2, mf_mode=mode)
    assert seen == [1, 2]
