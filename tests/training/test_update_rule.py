"""The two update rules (issue 12 item 1, SPEC §2) in every trainer: "original" is classical
momentum with μ_eff = lr·μ and the schedule read at min(e + 1, n − 1)."""

import numpy as np
import pytest
import torch

import bmprune as bp

LRS, MUS = [0.05, 0.02, 0.01], [0.5, 0.9]


def _shifted(values, n_epochs=3):
    return [values[min(e + 1, len(values) - 1)] for e in range(n_epochs)]


def _data(n=40, nv=6, seed=0):
    return (np.random.default_rng(seed).random((n, nv)) < 0.4).astype(np.float64)


def test_train_dbm_original_rule_equals_classical_with_effective_momentum():
    x = _data()
    make = lambda: bp.DBM([6, 5, 4], n_replicas=2, seed=3, dtype=torch.float64)   # noqa: E731
    a, b = make(), make()
    ra = bp.training.train_dbm(a, x, epochs=3, batch_size=7, learning_rate=LRS, momentum=MUS, seed=5,
                               update_rule="original", n_chains=9)
    lr = _shifted(LRS)
    mu_eff = [l * m for l, m in zip(lr, _shifted(MUS))]
    bp.training.train_dbm(b, x, epochs=3, batch_size=7, learning_rate=lr, momentum=mu_eff, seed=5, n_chains=9)
    for p, q in zip(a.named_tensors().values(), b.named_tensors().values()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    assert [h["learning_rate"] for h in ra.history] == lr
    assert [h["effective_momentum"] for h in ra.history] == pytest.approx(mu_eff)


def test_pretrain_dbm_passes_the_rule_to_every_rbm():
    x = _data()
    kw = dict(epochs=3, batch_size=5, seed=2, dtype=torch.float64)
    a, _ = bp.training.pretrain_dbm(x, [6, 5, 4], learning_rate=LRS, momentum=MUS, update_rule="original", **kw)
    lr = _shifted(LRS)
    b, _ = bp.training.pretrain_dbm(x, [6, 5, 4], learning_rate=lr, momentum=[l * m for l, m in zip(lr, _shifted(MUS))],
                                    update_rule="classical", **kw)
    for p, q in zip(a.named_tensors().values(), b.named_tensors().values()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    c, _ = bp.training.pretrain_dbm(x, [6, 5, 4], learning_rate=LRS, momentum=MUS, update_rule=["original", "classical"], **kw)
    torch.testing.assert_close(c.W[0], a.W[0], rtol=1e-12, atol=1e-12)          # RBM 1 by the original rule
    assert not torch.allclose(c.W[1], a.W[1])                                    # RBM 2 by the classical one


@pytest.mark.parametrize("kw, message", [
    (dict(update_rule="adam"), "update_rule"),
    (dict(momentum=1.0), "momentum"),
    (dict(learning_rate=[0.1, 0.1, 0.1, 0.1]), "entries"),
])
def test_bad_rules_and_schedules_are_refused_before_training(kw, message):
    rbm = bp.RBM(6, 4)
    before = rbm.W.clone()
    with pytest.raises(bp.ConfigError, match=message):
        bp.training.train_rbm(rbm, _data(), epochs=3, **{"learning_rate": 0.1, **kw})
    assert torch.equal(rbm.W, before)


def test_divergence_is_a_typed_error_naming_the_epoch():
    rbm = bp.RBM(6, 4, seed=1)
    with pytest.raises(bp.errors.TrainingDivergedError, match="epoch 0.*learning rate") as info:
        bp.training.train_rbm(rbm, _data(200), epochs=2, learning_rate=1e6, batch_size=1)
    assert info.value.epoch == 0
    dbm = bp.DBM([6, 5, 4], seed=1)
    with pytest.raises(bp.errors.TrainingDivergedError):
        bp.training.train_dbm(dbm, _data(200), epochs=1, learning_rate=1e6, max_norm=None, batch_size=1)
