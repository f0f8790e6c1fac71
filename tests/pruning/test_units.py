"""Unit removal to a fixed point (SPEC §5): cascades, DBM dead ends, visible units, random units."""

from __future__ import annotations

from types import SimpleNamespace

import torch

import bmprune as bp


def masks_from_edges(sizes, edges_per_layer, R=1):
    """Bool masks (R, n_l, n_{l+1}) holding exactly the listed (i, j) edges of each layer."""
    masks = []
    for l, edges in enumerate(edges_per_layer):
        m = torch.zeros(R, sizes[l], sizes[l + 1], dtype=torch.bool)
        for i, j in edges:
            m[:, i, j] = True
        masks.append(m)
    return masks


class StandIn(SimpleNamespace):
    """A minimal model with the list attributes (for depths no model class offers)."""

    def apply_masks(self):
        for l, (w, m) in enumerate(zip(self.weights, self.weight_masks)):
            m &= self.alive[l].unsqueeze(-1) & self.alive[l + 1].unsqueeze(-2)
            w.mul_(m)
        return self


def stand_in(sizes, masks, R=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(R, sizes[l], sizes[l + 1], generator=g) * masks[l] for l in range(len(masks))]
    return StandIn(weights=weights, weight_masks=masks, biases=[torch.zeros(R, n) for n in sizes],
                   alive=[torch.ones(R, n, dtype=torch.bool) for n in sizes], layer_sizes=list(sizes))


def test_cascade_upwards_and_dead_ends_downwards_in_a_dbm():
    sizes = [4, 3, 2]
    # h1_0 has no weight to v → removed → h2_0, whose only weight below went to h1_0, is
    # stranded → removed. h1_2 reaches v but nothing above → dead end → removed, and v_3,
    # connected only to h1_2, is disconnected (reported, never removed).
    masks = masks_from_edges(sizes, [
        [(0, 1), (1, 1), (2, 1), (3, 2)],                      # v → h1
        [(0, 0), (1, 1)],                                      # h1 → h2
    ])
    alive = [torch.ones(1, n, dtype=torch.bool) for n in sizes]
    new_masks, new_alive = bp.pruning.remove_stranded_units(masks, alive)
    assert new_alive[0].tolist() == [[True] * 4]
    assert new_alive[1].tolist() == [[False, True, False]]
    assert new_alive[2].tolist() == [[False, True]]
    assert bp.pruning.disconnected_visible(new_masks).tolist() == [[False, False, False, True]]
    assert new_masks[0].sum() == 3 and new_masks[1].sum() == 1
    assert masks[0].sum() == 4 and alive[1].all()                # inputs untouched


def test_dead_ends_cascade_down_over_several_passes():
    sizes = [3, 3, 3, 2]                                       # v, h1, h2, h3
    # h3_0 has no weight below → removed. h2_2 has no weight above → dead end → removed;
    # then h1_2, whose only weight above went to h2_2, is a dead end in the next pass → removed,
    # and v_2, connected only to h1_2, is disconnected. (A dead end only strands units below
    # it, so these chains run downwards and take one pass per layer.)
    masks = masks_from_edges(sizes, [
        [(0, 0), (1, 1), (2, 2)],
        [(0, 0), (1, 1), (2, 2)],
        [(0, 1), (1, 1)],
    ])
    model = stand_in(sizes, masks)
    report = bp.pruning.prune(model, "weight_magnitude", 0)    # q = 0: only unit removal acts
    assert [a.tolist() for a in model.alive] == [[[True] * 3], [[True, True, False]], [[True, True, False]],
                                                 [[False, True]]]
    assert report.units_removed.tolist() == [[0, 1, 1, 1]]
    assert report.weights_removed.tolist() == [[1, 1, 0]]
    assert report.disconnected_visible.tolist() == [[False, False, True]]
    assert all((w[~m] == 0).all() for w, m in zip(model.weights, model.weight_masks))


def test_dbm_class_unit_removal_through_prune():
    sizes = [4, 3, 2]
    masks = masks_from_edges(sizes, [[(0, 1), (1, 1), (2, 1), (3, 2)], [(0, 0), (1, 1)]], R=2)
    dbm = bp.DBM(sizes, n_replicas=2, weight_masks=masks, seed=1)
    W_before = [w.clone() for w in dbm.W]
    report = bp.pruning.prune(dbm, ["weight_magnitude", "random_weights"], (0, 0))
    for a in dbm.alive:
        assert a.dtype == torch.bool
    assert dbm.alive[1].tolist() == [[False, True, False]] * 2 and dbm.alive[2].tolist() == [[False, True]] * 2
    assert report.units_after.tolist() == [[4, 1, 1]] * 2
    assert report.n_disconnected_visible.tolist() == [1, 1]
    assert dbm.alive[0].all()                                   # visible units are never removed
    for w, w0, m in zip(dbm.W, W_before, dbm.weight_masks):
        assert torch.equal(w[m], w0[m]) and (w[~m] == 0).all()  # kept values unchanged


def test_rbm_hidden_unit_without_weights_is_removed_and_visible_reported():
    rbm = bp.RBM(3, 4, n_replicas=2, seed=0)
    rbm.weight_mask[0, :, 1] = False                            # hidden 1 of replica 0: no weights
    rbm.weight_mask[1, 2, :] = False                            # visible 2 of replica 1: no weights
    rbm.apply_masks()
    report = bp.pruning.prune(rbm, "weight_magnitude", 0)
    assert rbm.alive[1].tolist() == [[True, False, True, True], [True] * 4]
    assert report.units_removed.tolist() == [[0, 1], [0, 0]]
    assert report.disconnected_visible.tolist() == [[False] * 3, [False, False, True]]
    assert rbm.alive[0].all()


def test_random_unit_removal_best_matches_the_weight_target():
    R, nv, nh = 4, 7, 11
    masks = [torch.ones(R, nv, nh, dtype=torch.bool)]
    alive = [torch.ones(R, nv, dtype=torch.bool), torch.ones(R, nh, dtype=torch.bool)]
    new_masks, new_alive = bp.pruning.random_unit_removal(masks, alive, [50], 0)
    # target ⌊77/2⌋ = 38 weights; units carry 7 each: 5 units (35) beat 6 units (42)
    assert (new_alive[1].sum(-1) == nh - 5).all()
    assert (new_masks[0].sum(dim=(1, 2)) == 77 - 35).all()
    assert not torch.equal(new_alive[1][0], new_alive[1][1])    # each replica draws its own units


def test_random_units_per_layer_in_a_dbm():
    sizes = [6, 5, 8]
    dbm = bp.DBM(sizes, n_replicas=3, seed=2)
    report = bp.pruning.prune(dbm, "random_units", (40, 25), seed=5)
    # layer 0: 30 weights, target 12, 6 per h1 unit → 2 units; their 16 h2 weights count
    # towards layer 1's target ⌊40/4⌋ = 10 — already over it, so no h2 unit goes
    assert report.units_removed.tolist() == [[0, 2, 0]] * 3
    assert report.weights_removed.tolist() == [[12, 16]] * 3
    assert report.weights_by_criterion.tolist() == [[12, 16]] * 3
    again = bp.DBM(sizes, n_replicas=3, seed=2)
    bp.pruning.prune(again, "random_units", (40, 25), seed=5)
    assert all(torch.equal(a, b) for a, b in zip(again.alive, dbm.alive))   # seeded
