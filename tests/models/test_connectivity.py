"""Receptive-field masks (SPEC §1 "Masked connectivity")."""

from __future__ import annotations

import itertools

import pytest
import torch

import bmprune as bp


def brute_force_mask(h: int, w: int, field: int) -> torch.Tensor:
    """The rule written out with loops: pixel i ↔ hidden u iff both offsets ≤ field // 2."""
    r = field // 2
    m = torch.zeros(h * w, h * w, dtype=torch.bool)
    for (ri, ci), (ru, cu) in itertools.product(itertools.product(range(h), range(w)), repeat=2):
        if abs(ri - ru) <= r and abs(ci - cu) <= r:
            m[ri * w + ci, ru * w + cu] = True
    return m


def test_paper_count_20x20_field5():
    m = bp.receptive_field_mask(20, 20, 5)
    assert m.shape == (400, 400) and m.dtype == torch.bool
    # a row of 20 positions has 3,4,5,…,5,4,3 neighbours within ±2: sum 94; 94² = 8,836
    assert int(m.sum()) == 8836 == 94**2


def test_4x4_field3_by_hand():
    m = bp.receptive_field_mask(4, 4, 3)
    # per axis, positions 0..3 have 2,3,3,2 neighbours within ±1: 10, so 10² = 100 connections
    assert int(m.sum()) == 100
    # corner pixel 0 (row 0, col 0): itself, its right, lower and diagonal neighbours
    assert torch.nonzero(m[:, 0]).flatten().tolist() == [0, 1, 4, 5]
    # interior hidden unit 5 (row 1, col 1): the full 3×3 window
    assert torch.nonzero(m[:, 5]).flatten().tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10]
    # edge unit 7 (row 1, col 3): window truncated at the right border
    assert torch.nonzero(m[:, 7]).flatten().tolist() == [2, 3, 6, 7, 10, 11]
    assert torch.equal(m, m.T)


@pytest.mark.parametrize("h, w, field", [(3, 5, 3), (5, 3, 3), (4, 6, 5), (2, 7, 1), (3, 4, 4), (3, 3, 9)])
def test_matches_brute_force(h, w, field):
    assert torch.equal(bp.receptive_field_mask(h, w, field), brute_force_mask(h, w, field))


def test_count_is_product_of_axis_counts():
    # 3×5, field 3: axis counts (2+3+2) and (2+3+3+3+2) → 7 · 13 = 91
    assert int(bp.receptive_field_mask(3, 5, 3).sum()) == 91


def test_field1_is_identity_and_huge_field_is_dense():
    assert torch.equal(bp.receptive_field_mask(3, 4, 1), torch.eye(12, dtype=torch.bool))
    assert bool(bp.receptive_field_mask(3, 4, 7).all())


def test_even_field_acts_like_next_odd():
    assert torch.equal(bp.receptive_field_mask(6, 6, 4), bp.receptive_field_mask(6, 6, 5))


@pytest.mark.parametrize("args", [(0, 4, 3), (4, 0, 3), (4, 4, 0), (4, 4, -1)])
def test_bad_sizes_raise(args):
    with pytest.raises(bp.ConfigError):
        bp.receptive_field_mask(*args)


def test_usable_as_dbm_mask():
    m = bp.receptive_field_mask(4, 4, 3)
    dbm = bp.DBM([16, 16, 3], n_replicas=2, weight_masks=[m, None], seed=1)
    assert bool((dbm.W[0][:, ~m] == 0).all()) and bool((dbm.W[0][:, m] != 0).all())
    assert torch.equal(dbm.weight_masks[0], m.expand(2, -1, -1))
