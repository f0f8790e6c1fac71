"""bp.pruning.prune: populations with mixed criteria, per-layer rates, reports, invariants."""

from __future__ import annotations

import pytest
import torch
from helpers import random_rbm

import bmprune as bp
from bmprune.errors import ConfigError, ShapeError

R, N, NV, NH = 3, 13, 5, 7


def binary(shape, seed, p=0.5):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def test_random_weights_prune_exactly_floor_count_and_are_seeded():
    rbm = random_rbm(NV, NH, R=R, seed=1, mask_density=0.6, dtype=torch.float32)
    n = rbm.weight_mask.sum(dim=(1, 2))
    report = bp.pruning.prune(rbm, "random_weights", 33, seed=7)
    assert report.weights_by_criterion[:, 0].tolist() == [int(k) * 33 // 100 for k in n]
    again = random_rbm(NV, NH, R=R, seed=1, mask_density=0.6, dtype=torch.float32)
    bp.pruning.prune(again, "random_weights", 33, seed=7)
    assert torch.equal(again.weight_mask, rbm.weight_mask)
    other = random_rbm(NV, NH, R=R, seed=1, mask_density=0.6, dtype=torch.float32)
    bp.pruning.prune(other, "random_weights", 33, seed=8)
    assert not torch.equal(other.weight_mask, rbm.weight_mask)


def test_mixed_criteria_equal_per_replica_runs_and_keep_parameters():
    rbm = random_rbm(NV, NH, R=R, seed=2, mask_density=0.9, dtype=torch.float32)
    v, h = binary((R, N, NV), 0), binary((R, N, NH), 1)
    names = ["variance_fi", "weight_magnitude", "heuristic_fi"]
    singles = [rbm.replica(r) for r in range(R)]
    W0 = rbm.W.clone()
    report = bp.pruning.prune(rbm, names, 40, samples=(v, h))
    assert report.criteria == tuple(names)
    for r, single in enumerate(singles):
        rep = bp.pruning.prune(single, names[r], 40, samples=(v[r:r + 1], h[r:r + 1]))
        assert torch.equal(single.weight_mask[0], rbm.weight_mask[r])
        assert torch.equal(single.alive[1][0], rbm.alive[1][r])
        assert rep.weights_after[0].tolist() == report.weights_after[r].tolist()
    m = rbm.weight_mask
    assert torch.equal(rbm.W[m], W0[m]) and (rbm.W[~m] == 0).all()   # kept weights keep their values


def test_pruning_never_revives_and_iterates():
    rbm = random_rbm(NV, NH, R=R, seed=3, mask_density=0.7, dtype=torch.float32)
    masks = [rbm.weight_mask.clone()]
    for it in range(3):
        bp.pruning.prune(rbm, "weight_magnitude", 50)
        assert not (rbm.weight_mask & ~masks[-1]).any()
        masks.append(rbm.weight_mask.clone())
    assert (masks[-1].sum((1, 2)) < masks[0].sum((1, 2))).all()


def test_dbm_per_layer_percent_from_one_sample_set_and_streamed_chunks():
    sizes = [NV, NH, 11]
    dbm = bp.DBM(sizes, n_replicas=R, seed=4)
    chunks = [tuple(binary((R, 6, n), 10 * c + l) for l, n in enumerate(sizes)) for c in range(3)]
    stats = bp.fisher.SampleStatistics.from_samples(chunks)
    expected = [bp.pruning.select_keep(stats.variance_fi(l), dbm.weight_masks[l], q)
                for l, q in enumerate((10, 25))]
    streamed = bp.DBM(sizes, n_replicas=R, seed=4)
    report = bp.pruning.prune(dbm, "variance_fi", (10, 25), samples=stats)
    bp.pruning.prune(streamed, "variance_fi", (10, 25), samples=iter(chunks))
    assert report.percent == (10.0, 25.0)
    for l in range(2):
        assert torch.equal(report.weights_by_criterion[:, l], (~expected[l]).sum((1, 2)))
        assert torch.equal(streamed.weight_masks[l], dbm.weight_masks[l])
    # the stranded-unit pass ran: everything left is connected below
    for k in (1, 2):
        alive_k = dbm.alive[k]
        assert (dbm.weight_masks[k - 1].any(dim=1) == alive_k).all()


def test_dbm_with_real_samples_and_shared_samples_broadcast():
    dbm = bp.DBM([4, 6, 5], n_replicas=2, seed=5)
    samples = bp.sample(dbm, 200, steps=5, seed=0)
    report = bp.pruning.prune(dbm, ["variance_fi", "anti_fi"], 20, samples=samples)
    assert report.weights_after.shape == (2, 2) and report.units_after.shape == (2, 3)
    shared = tuple(s[0] for s in samples)                              # (N, n_l): for every replica
    dbm2 = bp.DBM([4, 6, 5], n_replicas=2, seed=5)
    bp.pruning.prune(dbm2, "heuristic_fi", 20, samples=shared)


def test_report_records_are_tidy():
    rbm = random_rbm(NV, NH, R=2, seed=6, dtype=torch.float32)
    report = bp.pruning.prune(rbm, "weight_magnitude", 50)
    rows = report.to_records()
    assert {tuple(sorted(r)) for r in rows} == {("criterion", "layer", "metric", "replica", "value")}
    after = [r for r in rows if r["metric"] == "weights_after"]
    assert [(r["replica"], r["layer"], r["value"]) for r in after] == [(0, 0, 17), (1, 0, 17)]
    units = [r for r in rows if r["metric"] == "units_after"]
    assert [r["layer"] for r in units] == [0, 1, 0, 1]
    assert report.weights_removed.tolist() == [[18], [18]]


def test_bad_arguments_raise():
    rbm = bp.RBM(NV, NH, n_replicas=2)
    with pytest.raises(ConfigError):
        bp.pruning.prune(rbm, ["variance_fi"], 10)                     # one per replica needed
    with pytest.raises(ConfigError):
        bp.pruning.prune(rbm, "weight_magnitude", (10, 20))            # one per weight layer
    with pytest.raises(ConfigError):
        bp.pruning.prune(rbm, "weight_magnitude", 120)
    with pytest.raises(ShapeError):
        bp.pruning.prune(rbm, "variance_fi", 10, samples=(binary((2, N, NV + 1), 0), binary((2, N, NH), 1)))
    with pytest.raises(ShapeError):
        bp.pruning.prune(rbm, "variance_fi", 10, samples=(binary((3, N, NV), 0), binary((3, N, NH), 1)))
