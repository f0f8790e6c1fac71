"""The thesis's pruning options (issue 15 items 1, 2, 6), each against a hand computation on a
tiny model: unit pruning with rescaling, the fixed FI threshold, keeping unconnected units,
the homeostatic bias reset."""

import torch

import bmprune as bp
from bmprune.fisher import SampleStatistics
from bmprune.pruning import PruneOptions

R, NV, NH, N = 2, 3, 5, 7


def _samples():
    g = torch.Generator().manual_seed(0)
    v = (torch.rand(R, N, NV, generator=g) < 0.6).double()
    h = (torch.rand(R, N, NH, generator=g) < torch.linspace(0.05, 0.9, NH)).double()
    return SampleStatistics.from_samples((v, h))


def _rbm():
    return bp.RBM(NV, NH, n_replicas=R, seed=3, dtype=torch.float64, hidden_bias=-1.0)


def _unit_importance(stats):
    """By hand: max(Σ_i Var[v_i h_j], Var[h_j]) with p the sample means."""
    p_vh, p_h = stats.pair_mean(0), stats.mean(1)
    return torch.maximum((p_vh * (1 - p_vh)).sum(1), p_h * (1 - p_h))          # (R, NH)


def test_unit_fi_keeps_the_most_important_units_and_rescales_weights():
    stats, rbm = _samples(), _rbm()
    W0 = rbm.W.clone()
    keep = _unit_importance(stats).argsort(dim=1, descending=True)[:, :2]      # the 2 most important per replica
    bp.pruning.prune(rbm, "unit_fi", 0, stats, options=PruneOptions(keep_units=(2,), rescale_weights=True))
    for r in range(R):
        assert set(torch.nonzero(rbm.alive[1][r]).flatten().tolist()) == set(keep[r].tolist())
        kept = rbm.alive[1][r]
        torch.testing.assert_close(rbm.W[r][:, kept], W0[r][:, kept] * NH / 2)   # × n_before / n_after
        assert bool((rbm.W[r][:, ~kept] == 0).all())


def test_unit_anti_fi_and_random_units_keep_the_target_count():
    stats = _samples()
    rbm = _rbm()
    least = _unit_importance(stats).argsort(dim=1)[:, :3]
    bp.pruning.prune(rbm, "unit_anti_fi", 0, stats, options=PruneOptions(keep_units=(3,)))
    for r in range(R):
        assert set(torch.nonzero(rbm.alive[1][r]).flatten().tolist()) == set(least[r].tolist())
    rbm = _rbm()
    report = bp.pruning.prune(rbm, "random_units", 0, options=PruneOptions(keep_units=(4,)), seed=1)
    assert report.units_after[:, 1].tolist() == [4, 4]


def test_fixed_threshold_prunes_every_weight_below_it_and_may_keep_unconnected_units():
    stats, rbm = _samples(), _rbm()
    fi = stats.variance_fi(0)
    t = float(fi.median())
    report = bp.pruning.prune(rbm, "variance_fi", 0, stats, options=PruneOptions(threshold=t, remove_units=False))
    torch.testing.assert_close(rbm.weight_mask, fi >= t, rtol=0, atol=0)
    assert bool(rbm.alive[1].all())                                           # unconnected units kept
    assert report.weights_after.sum() == int((fi >= t).sum())
    rbm2 = _rbm()
    bp.pruning.prune(rbm2, "variance_fi", 0, stats, options=PruneOptions(threshold=t))
    torch.testing.assert_close(rbm2.alive[1], (fi >= t).any(1), rtol=0, atol=0)   # … or removed


def test_homeostatic_bias_reset_uses_the_mean_activation_before_pruning():
    stats, rbm = _samples(), _rbm()
    b_v = rbm.b_v.clone()
    bp.pruning.prune(rbm, "variance_fi", 50, stats, options=PruneOptions(reset_hidden_bias=True))
    alive = rbm.alive[1]
    torch.testing.assert_close(rbm.b_h[alive], stats.mean(1)[alive])
    torch.testing.assert_close(rbm.b_v, b_v)                                   # visible biases untouched


def test_layer_wise_pruning_can_keep_unconnected_intermediate_units():
    dbm = bp.DBM([4, 3, 2], n_replicas=1, seed=0)
    dbm.weight_masks[1][0, 2, :] = False                                     # h1_2 has no weight above
    dbm.apply_masks()
    bp.pruning.prune(dbm, "weight_magnitude", [0, 0], options=PruneOptions(remove_dead_ends=False))
    assert bool(dbm.alive[1][0, 2])
    bp.pruning.prune(dbm, "weight_magnitude", [0, 0])
    assert not bool(dbm.alive[1][0, 2])
