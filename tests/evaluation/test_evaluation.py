"""Evaluation metrics against exact or hand-computed values (SPEC §6)."""

import numpy as np
import pytest
import torch

import bmprune as bp
from bmprune.evaluation import (GenerationScorer, PatternCounter, classification_error, encoding_error,
                                exact_kl, exact_log_likelihood, pattern_codes)
from helpers import all_states, brute_force_joint, random_rbm


def test_exact_kl_equals_brute_force():
    rbm = random_rbm(5, 3, R=2, seed=4)
    data = np.array([[1, 0, 1, 0, 0], [1, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=np.uint8)
    V, _, P = brute_force_joint(rbm)
    p_model = P.sum(2)                                                    # (R, 32)
    codes = (torch.tensor(data).double() @ (2.0 ** torch.arange(4, -1, -1).double())).long()
    vcodes = (V @ (2.0 ** torch.arange(4, -1, -1).double())).long()
    p_data = {0: 0.5, 1: 0.25, 2: 0.25}
    kl = torch.zeros(2, dtype=torch.float64)
    for k, p in p_data.items():
        j = int((vcodes == codes[[0, 2, 3][k]]).nonzero())
        kl += p * (np.log(p) - torch.log(p_model[:, j]))
    torch.testing.assert_close(exact_kl(rbm, data), kl, atol=1e-12, rtol=0)
    ll = exact_log_likelihood(rbm, data)
    torch.testing.assert_close(ll, rbm.log_prob(data).mean(1), atol=1e-12, rtol=0)
    # KL of a model equal to the data distribution is 0, and KL ≥ 0 always
    assert (exact_kl(rbm, data) > 0).all()


def test_pattern_counter_on_crafted_samples():
    data = np.array([[0, 0], [0, 0], [1, 0], [1, 1]], dtype=np.uint8)    # p_data 1/2, 1/4, 1/4
    gen = torch.tensor([[[0, 0], [0, 0], [0, 0], [1, 1], [0, 1], [0, 1]]], dtype=torch.float32)
    c = PatternCounter(data)
    c.update(gen[:, :3]).update(gen[:, 3:])                              # streamed in two chunks
    # counts 3, 0, 1 of 6 generated; the unseen pattern gets half a count: q = (3, 0.5, 1) / 6
    q = torch.tensor([[3 / 6, 0.5 / 6, 1 / 6]], dtype=torch.float64)
    torch.testing.assert_close(c.q(), q)
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    torch.testing.assert_close(c.kl(), (p * (p.log() - q.log())).sum(-1))
    torch.testing.assert_close(c.log_frequency_mse(), ((p.log() - q.log()) ** 2).mean(-1))
    assert pattern_codes(torch.tensor([[1, 0, 1]])).item() == 5


def test_sampled_kl_converges_to_exact_kl():
    # exact samples from an enumerable RBM's p(v): the plug-in KL approaches the exact KL
    rbm = random_rbm(6, 4, R=1, seed=2, std=1.0)
    data = (np.random.default_rng(1).random((500, 6)) < 0.4).astype(np.uint8)
    V = all_states(6)
    p = rbm.log_prob(V).exp()[0]
    idx = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    c = PatternCounter(data).update(V[idx].unsqueeze(0))
    exact = exact_kl(rbm, data)
    # the plug-in error is −Σ p_data(x) (log q̂(x) − log q(x)); with Var log q̂ ≈ (1 − q)/(N q) its
    # standard deviation comes from the exact q of the data patterns (delta method)
    q = rbm.log_prob(c.codes.unsqueeze(-1).bitwise_right_shift(torch.arange(6)).bitwise_and(1).double()).exp()[0]
    sd = float(torch.sqrt((c.p_data ** 2 * (1 - q) / (200_000 * q)).sum()))
    assert abs(float(c.kl()[0] - exact[0])) < 4 * sd + 1e-3, (float(c.kl()[0]), float(exact[0]), sd)


def test_generation_scores_digits_high_and_noise_low():
    train, test = bp.data.load_digits("train"), bp.data.load_digits("test")
    scorer = GenerationScorer(train)
    real = scorer.score(test.x)
    noise = scorer.score((np.random.default_rng(0).random((2000, 64)) < 0.5).astype(np.float32))
    assert real["generation_quality"][0] > noise["generation_quality"][0]
    assert real["generation_entropy"][0] > 2.2                           # ten balanced classes: ln 10 = 2.30
    one_class = scorer.score(np.repeat(test.x[:1], 50, axis=0))
    assert one_class["generation_entropy"][0] == 0 and one_class["generation_class_ratio"][0] == 0


def test_encoding_error_of_rbm_features_and_empty_code():
    train, test = bp.data.load_digits("train"), bp.data.load_digits("test")
    rbm = bp.RBM(64, 40, n_replicas=2, seed=0, hidden_bias=-1.0).init_visible_bias(train.x)
    bp.training.train_rbm(rbm, train.x, epochs=10, batch_size=10, learning_rate=0.05, momentum=0.5)
    rbm.alive[1][1] = False                                              # replica 1: every unit removed
    rbm.apply_masks()
    err = encoding_error(rbm, train, test)
    assert err[0] < 0.25                                                  # chance is 0.9
    majority = np.bincount(train.y).argmax()
    assert err[1] == pytest.approx(np.mean(test.y != majority))
    assert classification_error(np.zeros((4, 0)), [0, 1, 1, 2], np.zeros((2, 0)), [1, 2]) == 0.5
