"""Sampled FI estimators: convergence to the exact values, closed forms, streaming, shapes."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import brute_force_joint, random_rbm

import bmprune as bp
from bmprune.errors import DataError, ShapeError

R, N, NV, NH = 2, 11, 5, 3


def exact_samples(rbm, n: int, seed: int = 0):
    """n i.i.d. joint samples per replica drawn from the enumerated p(v, h): (R, n, nv), (R, n, nh)."""
    V, H, P = brute_force_joint(rbm)
    g = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(P.reshape(P.shape[0], -1).float(), n, replacement=True, generator=g)  # (R, n)
    return V[idx // H.shape[0]].float(), H[idx % H.shape[0]].float()


@pytest.fixture(scope="module")
def tiny_rbm():
    rbm = random_rbm(NV, NH, R=R, seed=11, mask_density=0.8)
    rbm.alive[1][1, 0] = False                                           # a dead unit in replica 1
    return rbm.apply_masks()


@pytest.fixture(scope="module")
def tiny_exact(tiny_rbm):
    fim = bp.fisher.exact_fim(tiny_rbm)
    return fim, bp.fisher.fim_diagonal(fim, NV, NH)


def test_sampled_estimates_converge_to_exact(tiny_rbm, tiny_exact):
    fim, diag = tiny_exact
    errors = []
    for n in (2_000, 200_000):
        v, h = exact_samples(tiny_rbm, n, seed=n)
        # every entry is a mean of n bounded terms with s.d. ≤ 1/2: 2/√n is > 4 standard errors
        tol = 2 / math.sqrt(n)
        err_fim = (bp.fisher.fim_from_samples(v, h) - fim).abs().max().item()
        err_w = (bp.fisher.variance_fi(v, h) - diag.W).abs().max().item()
        fb_v, fb_h = bp.fisher.variance_fi_biases(v, h)
        err_b = max((fb_v - diag.b_v).abs().max().item(), (fb_h - diag.b_h).abs().max().item())
        assert max(err_fim, err_w, err_b) < tol, (n, err_fim, err_w, err_b)
        errors.append(err_fim)
    assert errors[1] < errors[0] / 3                                     # √100 = 10 in expectation


def test_variance_fi_from_gibbs_samples_matches_exact(tiny_rbm, tiny_exact):
    _, diag = tiny_exact
    v, h = bp.sample(tiny_rbm.to(dtype=torch.float32), 10_000, steps=10, seed=3)
    assert (h[1, :, 0] == 0).all()                                       # the dead unit never fires
    fi = bp.fisher.variance_fi(v, h)
    torch.testing.assert_close(fi, diag.W, atol=0.02, rtol=0)            # ≈ 4 standard errors
    assert (fi[1, :, 0] == 0).all()


def test_fim_from_samples_equals_plain_covariance_and_ddof():
    g = torch.Generator().manual_seed(0)
    v = (torch.rand(R, N, NV, generator=g) < 0.4).float()
    h = (torch.rand(R, N, NH, generator=g) < 0.6).float()
    s = torch.cat([v, h, (v[..., :, None] * h[..., None, :]).flatten(-2)], dim=-1).double()  # (R, N, P)
    for ddof in (0, 1):
        ref = torch.stack([torch.cov(s[r].T, correction=ddof) for r in range(R)])
        torch.testing.assert_close(bp.fisher.fim_from_samples(v, h, ddof=ddof), ref, atol=1e-12, rtol=0)
        torch.testing.assert_close(bp.fisher.fim_from_samples(v, h, ddof=ddof, chunk_size=3), ref, atol=1e-12, rtol=0)
        p = torch.einsum("rni,rnj->rij", v.double(), h.double()) / N
        torch.testing.assert_close(bp.fisher.variance_fi(v, h, ddof=ddof), p * (1 - p) * N / (N - ddof), atol=1e-14, rtol=0)
        d = bp.fisher.fim_diagonal(ref, NV, NH)
        torch.testing.assert_close(bp.fisher.variance_fi(v, h, ddof=ddof), d.W, atol=1e-12, rtol=0)
        fb_v, fb_h = bp.fisher.variance_fi_biases(v, h, ddof=ddof)
        torch.testing.assert_close(fb_v, d.b_v, atol=1e-12, rtol=0)
        torch.testing.assert_close(fb_h, d.b_h, atol=1e-12, rtol=0)


def test_estimators_broadcast_leading_dims_and_batch_equals_per_replica():
    g = torch.Generator().manual_seed(1)
    v = (torch.rand(R, N, NV, generator=g) < 0.5).float()
    h_shared = (torch.rand(N, NH, generator=g) < 0.5).bool()              # no replica axis: broadcast
    W = torch.randn(R, NV, NH, generator=g)
    fi = bp.fisher.variance_fi(v, h_shared)
    hf = bp.fisher.heuristic_fi(v, h_shared, W)
    fim = bp.fisher.fim_from_samples(v, h_shared)
    assert fi.shape == hf.shape == (R, NV, NH) and fim.shape == (R, 23, 23)
    # batched vs per-replica kernels round differently (vectorised vs scalar tails): float64 rounding
    for r in range(R):
        torch.testing.assert_close(fi[r], bp.fisher.variance_fi(v[r], h_shared), atol=1e-15, rtol=1e-12)
        torch.testing.assert_close(hf[r], bp.fisher.heuristic_fi(v[r], h_shared, W[r]), atol=1e-15, rtol=1e-12)
        torch.testing.assert_close(fim[r], bp.fisher.fim_from_samples(v[r], h_shared), atol=1e-15, rtol=1e-12)


def test_heuristic_fi_closed_form_including_zero_and_full_rates():
    # 4 samples: rates ⟨v⟩ = (0, 1/4, 1), ⟨h⟩ = (0, 1/2)
    v = torch.tensor([[0, 1, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=torch.float32)
    h = torch.tensor([[0, 1], [0, 1], [0, 0], [0, 0]], dtype=torch.float32)
    W = torch.tensor([[5.0, -3.0], [0.7, -1.2], [2.0, 0.4]])
    sig = lambda x: 1 / (1 + math.exp(-x))
    mv, mh = [0.0, 0.25, 1.0], [0.0, 0.5]
    expected = torch.zeros(3, 2, dtype=torch.float64)
    for i in range(3):
        for j in range(2):
            if mv[i] == 0 or mh[j] == 0:
                q = 0.0                                                  # logit(0) = −∞ → q = 0
            elif mv[i] == 1:
                q = mh[j]                                                # logit(1) = +∞ → σ = 1
            else:
                q = mh[j] * sig(math.log(mv[i] / (1 - mv[i])) + W[i, j].item() * (1 - mh[j]))
            expected[i, j] = q * (1 - q)
    fi = bp.fisher.heuristic_fi(v, h, W)
    assert not torch.isnan(fi).any()
    torch.testing.assert_close(fi, expected, atol=1e-15, rtol=0)
    assert (fi[0] == 0).all() and (fi[:, 0] == 0).all()                  # zero rates give exactly 0
    assert fi[2, 1].item() == 0.25                                       # q = ⟨h⟩ = 1/2


def test_sample_statistics_stream_equals_raw_samples_for_three_layers():
    g = torch.Generator().manual_seed(2)
    sizes = (NV, NH, 7)
    states = tuple((torch.rand(R, N, n, generator=g) < 0.5).float() for n in sizes)
    W = [torch.randn(R, sizes[l], sizes[l + 1], generator=g) for l in range(2)]
    stats = bp.fisher.SampleStatistics()
    for s in range(0, N, 4):                                             # chunks of 4, 4, 3
        stats.update(tuple(x[:, s:s + 4] for x in states))
    assert stats.n_samples == N and stats.layer_sizes == list(sizes) and stats.n_replicas == R
    for l in range(2):
        x, y = states[l], states[l + 1]
        torch.testing.assert_close(stats.variance_fi(l), bp.fisher.variance_fi(x, y), atol=1e-15, rtol=0)
        torch.testing.assert_close(bp.fisher.variance_fi(stats, layer=l, ddof=1),
                                   bp.fisher.variance_fi(x, y, ddof=1), atol=1e-15, rtol=0)
        torch.testing.assert_close(bp.fisher.heuristic_fi(stats, W=W[l], layer=l),
                                   bp.fisher.heuristic_fi(x, y, W[l]), atol=1e-15, rtol=0)
    fb = bp.fisher.variance_fi_biases(stats)
    assert len(fb) == 3
    torch.testing.assert_close(fb[2], bp.fisher.variance_fi_biases(states[1], states[2])[1], atol=1e-15, rtol=0)
    # from an iterable of chunks, from bool states, and a selection of replicas
    again = bp.fisher.SampleStatistics.from_samples(iter([tuple(x.bool() for x in states)]))
    torch.testing.assert_close(again.pair_sums[1], stats.pair_sums[1], atol=0, rtol=0)
    torch.testing.assert_close(stats.select([1]).variance_fi(1)[0], stats.variance_fi(1)[1], atol=0, rtol=0)


def test_sample_statistics_accumulates_over_iter_samples_chunks(tiny_rbm):
    chunks = list(bp.iter_samples(tiny_rbm, 300, steps=3, chunk_size=70, seed=4))
    stats = bp.fisher.SampleStatistics.from_samples(chunks)
    v, h = (torch.cat([c[i] for c in chunks], dim=1) for i in range(2))
    assert stats.n_samples == 300
    torch.testing.assert_close(stats.variance_fi(0), bp.fisher.variance_fi(v, h), atol=1e-15, rtol=0)


def test_eigenvector_importance_is_sign_invariant_and_split_in_fim_order():
    P = NV + NH + NV * NH
    g = torch.Generator().manual_seed(3)
    u = torch.randn(R, P, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    fim = 10 * u[:, :, None] * u[:, None, :] + torch.eye(P, dtype=torch.float64) * 0.1   # λ1 = 10.1
    imp = bp.fisher.eigenvector_importance(fim, NV, NH)
    neg = bp.fisher.eigenvector_importance(fim * 1.0, NV, NH)
    torch.testing.assert_close(imp.flat(), u.abs(), atol=1e-12, rtol=0)
    torch.testing.assert_close(neg.flat(), (-u).abs(), atol=1e-12, rtol=0)
    torch.testing.assert_close(imp.W[:, 1, 2], u[:, NV + NH + 1 * NH + 2].abs(), atol=1e-12, rtol=0)
    torch.testing.assert_close(imp.b_h, u[:, NV:NV + NH].abs(), atol=1e-12, rtol=0)
    lam = bp.fisher.leading_eigenvalues(fim, 2)
    torch.testing.assert_close(lam, torch.tensor([[10.1, 0.1]] * R, dtype=torch.float64), atol=1e-12, rtol=0)


def test_bad_samples_raise_typed_errors():
    v = torch.zeros(N, NV)
    with pytest.raises(ShapeError):
        bp.fisher.variance_fi(v, torch.zeros(N + 1, NH))
    with pytest.raises(DataError):
        bp.fisher.variance_fi(v + 0.5, torch.zeros(N, NH))
    with pytest.raises(DataError):
        bp.fisher.variance_fi(v, torch.full((N, NH), float("nan")))
    with pytest.raises(ShapeError):
        bp.fisher.split_parameters(torch.zeros(7), NV, NH)
    stats = bp.fisher.SampleStatistics().update((v, torch.zeros(N, NH)))
    with pytest.raises(ShapeError):
        stats.update((torch.zeros(N, NV + 1), torch.zeros(N, NH)))
    with pytest.raises(DataError):
        bp.fisher.SampleStatistics().variance_fi(0)
