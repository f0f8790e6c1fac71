"""bp.fisher.exact_fim / exact_moments against an independent brute force over all (v, h)."""

from __future__ import annotations

import pytest
import torch
from helpers import brute_force_joint, brute_force_log_z, random_rbm
from helpers import exact_moments as brute_moments

import bmprune as bp
from bmprune.errors import EnumerationError

R = 2


def brute_force_fim(rbm) -> torch.Tensor:
    """Cov of s = (v, h, vec(v hᵀ)) over every joint state, weighted by p(v, h): (R, P, P)."""
    V, H, Pj = brute_force_joint(rbm)                                  # (Sv, nv), (Sh, nh), (R, Sv, Sh)
    Sv, Sh = V.shape[0], H.shape[0]
    v = V[:, None, :].expand(Sv, Sh, -1).reshape(Sv * Sh, -1)
    h = H[None, :, :].expand(Sv, Sh, -1).reshape(Sv * Sh, -1)
    s = torch.cat([v, h, (v[:, :, None] * h[:, None, :]).reshape(Sv * Sh, -1)], dim=1)   # (S, P)
    p = Pj.reshape(Pj.shape[0], -1)                                    # (R, S)
    mean = p @ s                                                        # (R, P)
    centred = s[None] - mean[:, None]                                   # (R, S, P)
    return torch.einsum("rs,rsa,rsb->rab", p, centred, centred)


def with_dead_unit(rbm, r: int, j: int):
    rbm.alive[1][r, j] = False
    rbm.apply_masks()
    return rbm


@pytest.mark.parametrize("nv, nh", [(5, 3), (3, 5), (4, 4)])
def test_exact_fim_equals_brute_force_with_masks_and_dead_unit(nv, nh):
    rbm = with_dead_unit(random_rbm(nv, nh, R=R, seed=nv * 10 + nh, mask_density=0.7), r=1, j=nh - 1)
    fim = bp.fisher.exact_fim(rbm)
    P = nv + nh + nv * nh
    assert fim.shape == (R, P, P) and fim.dtype == torch.float64
    torch.testing.assert_close(fim, brute_force_fim(rbm), atol=1e-10, rtol=0)


def test_exact_fim_dead_unit_rows_are_zero_and_matrix_is_psd():
    nv, nh = 3, 5
    rbm = with_dead_unit(random_rbm(nv, nh, R=R, seed=3), r=0, j=2)
    fim = bp.fisher.exact_fim(rbm)
    scores = bp.fisher.split_parameters(torch.ones(R, nv + nh + nv * nh), nv, nh)
    dead = torch.zeros(nv + nh + nv * nh, dtype=torch.bool)
    dead[nv + 2] = True
    dead[nv + nh + torch.arange(nv) * nh + 2] = True                   # W_i2 for every i
    assert scores.W.shape == (R, nv, nh)
    assert (fim[0][dead] == 0).all() and (fim[0][:, dead] == 0).all()
    assert not (fim[1][dead] == 0).all()                               # the other replica is intact
    assert (torch.linalg.eigvalsh(fim) > -1e-12).all()
    torch.testing.assert_close(fim, fim.transpose(1, 2), atol=0, rtol=0)


def test_exact_fim_of_float32_model_and_batched_equals_per_replica():
    rbm = random_rbm(4, 3, R=3, seed=5, dtype=torch.float32)
    fim = bp.fisher.exact_fim(rbm)
    for r in range(3):
        torch.testing.assert_close(fim[r], bp.fisher.exact_fim(rbm.replica(r))[0], atol=1e-12, rtol=0)


def test_exact_moments_match_brute_force_and_log_partition():
    for nv, nh in [(5, 3), (3, 5)]:
        rbm = with_dead_unit(random_rbm(nv, nh, R=R, seed=7, mask_density=0.8), r=0, j=0)
        m = bp.fisher.exact_moments(rbm)
        mv, mh, mvh = brute_moments(rbm)
        torch.testing.assert_close(m.mean_v, mv, atol=1e-12, rtol=0)
        torch.testing.assert_close(m.mean_h, mh, atol=1e-12, rtol=0)
        torch.testing.assert_close(m.mean_vh, mvh, atol=1e-12, rtol=0)
        torch.testing.assert_close(m.log_partition, brute_force_log_z(rbm), atol=1e-10, rtol=0)
        # the diagonal of the FIM is the exact variance FI
        diag = bp.fisher.fim_diagonal(bp.fisher.exact_fim(rbm), nv, nh)
        torch.testing.assert_close(diag.W, mvh * (1 - mvh), atol=1e-12, rtol=0)
        torch.testing.assert_close(diag.b_h, mh * (1 - mh), atol=1e-12, rtol=0)


def test_exact_fim_refuses_too_large_and_deep_models():
    with pytest.raises(EnumerationError, match="2\\^6"):
        bp.fisher.exact_fim(bp.RBM(6, 7), max_states=32)
    dbm = bp.DBM([3, 2, 2])
    with pytest.raises(EnumerationError, match="RBM"):
        bp.fisher.exact_fim(dbm)
