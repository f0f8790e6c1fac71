"""The threshold rule (SPEC §5) on crafted scores, against numpy's percentile."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bmprune as bp
from bmprune.errors import ConfigError, DataError

R, NV, NH = 3, 5, 7


def keep_of(scores, percent, prune_highest=False, existing=None):
    s = torch.tensor(scores, dtype=torch.float64).reshape(1, 1, -1)
    ex = torch.ones_like(s, dtype=torch.bool) if existing is None else torch.tensor(existing).reshape(1, 1, -1)
    return bp.pruning.select_keep(s, ex, percent, prune_highest).reshape(-1).tolist()


def test_ties_at_the_threshold_are_pruned():
    # 50th percentile of (1, 2, 2, 2, 3, 4) is 2: every 2 goes, so 4 of 6 are pruned
    assert keep_of([1, 2, 2, 2, 3, 4], 50) == [False, False, False, False, True, True]


def test_more_than_percent_zeros_prunes_all_zeros():
    # 25 % requested, 4 of 6 scores are exactly 0: t = 0 and all zeros go (the paper's h² rule)
    assert keep_of([0, 3, 0, 0, 5, 0], 25) == [False, True, False, False, True, False]


def test_threshold_interpolates_linearly_between_neighbours():
    # 10 distinct scores, 25 %: t at position 2.25 → 3.25, so 1, 2, 3 pruned
    assert sum(keep_of(list(range(1, 11)), 25)) == 7


def test_prune_highest_prunes_above_the_complementary_percentile():
    # anti-FI at 20 %: t = 80th percentile of 1..10 = 8.2 → 9 and 10 pruned
    assert keep_of(list(range(1, 11)), 20, prune_highest=True) == [True] * 8 + [False] * 2
    # ties at its threshold are kept (prune iff score > t)
    assert keep_of([1, 5, 5, 5, 5, 9], 50, prune_highest=True) == [True] * 5 + [False]


def test_zero_and_full_percent_and_empty_layers():
    assert keep_of([0, 0, 1, 2], 0) == [True] * 4                      # q = 0 prunes nothing
    assert keep_of([0, 0, 1, 2], 0, prune_highest=True) == [True] * 4
    assert keep_of([0, 1, 2, 3], 100) == [False] * 4
    assert keep_of([1, 2, 3], 50, existing=[False] * 3) == [False] * 3  # nothing exists: nothing kept


def test_masked_weights_are_neither_counted_nor_revived():
    scores = [100, 1, 2, 3, 4, -50]
    existing = [False, True, True, True, True, False]
    keep = keep_of(scores, 50, existing=existing)
    assert keep == [False, False, False, True, True, False]           # t = 2.5 over the 4 existing
    assert keep_of(scores, 50, prune_highest=True, existing=existing) == [False, True, True, False, False, False]


@pytest.mark.parametrize("percent", [10, 25, 50, 33.3, 90])
def test_equals_numpy_percentile_rule_and_batched_equals_per_replica(percent):
    g = torch.Generator().manual_seed(int(percent * 10))
    scores = torch.randint(0, 6, (R, NV, NH), generator=g).double() / 4   # many ties
    existing = torch.rand(R, NV, NH, generator=g) < 0.7
    for prune_highest in (False, True):
        keep = bp.pruning.select_keep(scores, existing, percent, prune_highest)
        assert not (keep & ~existing).any()
        for r in range(R):
            ex = existing[r].numpy()
            s = scores[r].numpy()
            if prune_highest:
                ref = ex & (s <= np.percentile(s[ex], 100 - percent))
            else:
                ref = ex & (s > np.percentile(s[ex], percent))
            assert (keep[r].numpy() == ref).all()
            single = bp.pruning.select_keep(scores[r:r + 1], existing[r:r + 1], percent, prune_highest)
            assert torch.equal(single[0], keep[r])


def test_per_replica_percent_and_masked_percentile_match_numpy():
    g = torch.Generator().manual_seed(9)
    values = torch.randn(R, 17, generator=g, dtype=torch.float64)
    valid = torch.rand(R, 17, generator=g) < 0.6
    q = torch.tensor([12.5, 50.0, 97.0], dtype=torch.float64)
    t = bp.pruning.masked_percentile(values, valid, q)
    for r in range(R):
        assert t[r].item() == pytest.approx(np.percentile(values[r][valid[r]].numpy(), q[r].item()), abs=1e-15)
    keep = bp.pruning.select_keep(values.reshape(R, 1, 17), valid.reshape(R, 1, 17), q)
    for r in range(R):
        assert torch.equal(keep[r, 0], valid[r] & (values[r] > t[r]))


def test_select_lowest_prunes_exactly_floor_count_even_with_ties():
    scores = torch.zeros(R, NV, NH, dtype=torch.float64)                  # all tied
    existing = torch.ones(R, NV, NH, dtype=torch.bool)
    existing[1, 0] = False                                                # 28 existing in replica 1
    n = existing.sum(dim=(1, 2))
    k = bp.pruning.n_to_prune(n, 50)
    assert k.tolist() == [math.floor(35 * 0.5), 14, 17]
    keep = bp.pruning.select_lowest(scores, existing, k)
    assert (existing.sum(dim=(1, 2)) - keep.sum(dim=(1, 2))).tolist() == k.tolist()
    assert not (keep & ~existing).any()
    assert bp.pruning.n_to_prune(torch.tensor(910), 10).item() == 91   # no float round-down


def test_bad_percent_and_nan_scores_raise():
    s = torch.zeros(1, 2, 2)
    ex = torch.ones(1, 2, 2, dtype=torch.bool)
    with pytest.raises(ConfigError):
        bp.pruning.select_keep(s, ex, 101)
    with pytest.raises(ConfigError):
        bp.pruning.select_keep(s, ex, -1)
    with pytest.raises(DataError):
        bp.pruning.select_keep(torch.full((1, 2, 2), float("nan")), ex, 10)
    # NaN where no weight exists is fine
    nan_masked = torch.tensor([[[float("nan"), 1.0], [2.0, 3.0]]])
    assert bp.pruning.select_keep(nan_masked, torch.tensor([[[False, True], [True, True]]]), 50).sum() == 1
