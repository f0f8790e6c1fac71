"""The criterion registry (SPEC §5 table): names, scores, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import random_rbm

import bmprune as bp
from bmprune.errors import ConfigError, EnumerationError, UnknownCriterionError

R, N, NV, NH = 2, 11, 5, 3


def test_registry_holds_the_papers_criteria_with_labels():
    assert set(bp.pruning.CRITERIA) == {
        "variance_fi", "heuristic_fi", "eigenvector_fi", "anti_fi", "weight_magnitude",
        "random_weights", "random_units", "variance_fi_w2", "unit_fi", "unit_anti_fi"}
    c = bp.pruning.CRITERIA
    assert c["anti_fi"].prune_highest and not c["variance_fi"].prune_highest
    assert c["random_weights"].selection == "count" and c["random_units"].selection == "units"
    assert c["eigenvector_fi"].label == "First eigenvector" and c["weight_magnitude"].label == "|w|"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c["variance_fi"].name = "x"


def test_unknown_criterion_lists_the_known_ones():
    with pytest.raises(UnknownCriterionError, match="variance_fi.*heuristic_fi"):
        bp.pruning.get_criterion("fisher")
    with pytest.raises(KeyError):                                 # also a KeyError
        bp.pruning.prune(bp.RBM(NV, NH), "fisher", 10)


@pytest.fixture
def rbm_and_samples():
    rbm = random_rbm(NV, NH, R=R, seed=4, mask_density=0.8, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    v = (torch.rand(R, N, NV, generator=g) < 0.5).float()
    h = (torch.rand(R, N, NH, generator=g) < 0.5).float()
    return rbm, (v, h)


@pytest.mark.parametrize("name, score", [
    ("variance_fi", lambda rbm, v, h: bp.fisher.variance_fi(v, h)),
    ("heuristic_fi", lambda rbm, v, h: bp.fisher.heuristic_fi(v, h, rbm.W)),
    ("variance_fi_w2", lambda rbm, v, h: bp.fisher.variance_fi(v, h) * rbm.W.double() ** 2),
    ("weight_magnitude", lambda rbm, v, h: rbm.W.double().abs()),
])
def test_criterion_scores_and_prune_apply_select_keep(rbm_and_samples, name, score):
    rbm, (v, h) = rbm_and_samples
    crit = bp.pruning.CRITERIA[name]
    stats = bp.fisher.SampleStatistics.from_samples((v, h))
    s = crit.score(rbm, 0, stats, None)
    torch.testing.assert_close(s, score(rbm, v, h), atol=1e-12, rtol=0)
    existing = rbm.weight_mask.clone()
    expected = bp.pruning.select_keep(s, existing, 30)
    report = bp.pruning.prune(rbm, name, 30, samples=(v, h))
    assert torch.equal(rbm.weight_mask, expected)
    assert report.weights_by_criterion[:, 0].tolist() == (existing.sum((1, 2)) - expected.sum((1, 2))).tolist()


def test_anti_fi_prunes_the_highest_variance_fi(rbm_and_samples):
    rbm, (v, h) = rbm_and_samples
    fi = bp.fisher.variance_fi(v, h)
    expected = bp.pruning.select_keep(fi, rbm.weight_mask, 25, prune_highest=True)
    bp.pruning.prune(rbm, "anti_fi", 25, samples=(v, h))
    assert torch.equal(rbm.weight_mask, expected)


def test_eigenvector_fi_is_u1_of_the_fim_of_existing_parameters():
    rbm = random_rbm(4, 3, R=R, seed=8, mask_density=0.75, dtype=torch.float32)
    s = bp.pruning.CRITERIA["eigenvector_fi"].score(rbm, 0, None, None)
    for r in range(R):
        fim = bp.fisher.exact_fim(rbm.replica(r))[0]
        keep = torch.cat([torch.ones(7, dtype=torch.bool), rbm.weight_mask[r].flatten()])
        sub = fim[keep][:, keep]
        _, vecs = torch.linalg.eigh(sub)
        expected = torch.zeros(12, dtype=torch.float64)
        expected[rbm.weight_mask[r].flatten()] = vecs[7:, -1].abs()
        torch.testing.assert_close(s[r].flatten(), expected, atol=1e-10, rtol=0)


def test_eigenvector_fi_refuses_large_rbms_and_dbms():
    with pytest.raises(EnumerationError):
        bp.pruning.prune(bp.RBM(25, 26), "eigenvector_fi", 10)
    with pytest.raises(EnumerationError):
        bp.pruning.prune(bp.DBM([3, 2, 2]), "eigenvector_fi", 10)


def test_criteria_that_need_samples_say_so():
    with pytest.raises(ConfigError, match="samples"):
        bp.pruning.prune(bp.RBM(NV, NH), "variance_fi", 10)
