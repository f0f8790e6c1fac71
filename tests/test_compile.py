"""GPU readiness without a GPU (issue 18 item 5): the Gibbs sweep, the CD update and the DBM update
are pure tensor functions that torch.compile traces whole (fullgraph=True, no graph breaks) and
that give the eager results."""

import pytest
import torch

import bmprune as bp
from bmprune.models.base import alive_factors, gibbs_sweep, sweep_order
from bmprune.training.cd import _augment, cd_update
from bmprune.training.dbm import _FlatParameters, dbm_update

R, C = 2, 5


def _compiled(fn):
    torch._dynamo.reset()
    return torch.compile(fn, fullgraph=True, backend="aot_eager")


def test_gibbs_sweep_compiles_whole_and_matches_eager():
    dbm = bp.DBM([6, 4, 3], n_replicas=R, seed=1, weight_std=1.0)
    dbm.alive[1][0, 2] = False
    dbm.apply_masks()
    x = dbm.init_chains(C, 0)
    draw = lambda: [bp.rng.Streams.from_seed(3, R).uniform((C, dbm.layer_sizes[l])) for l in sweep_order(2)]  # noqa: E731
    args = (dbm.weights, dbm.biases, alive_factors(dbm.alive))
    eager = gibbs_sweep(x, *args, draw())
    comp = _compiled(gibbs_sweep)(x, *args, draw())
    for a, b in zip(eager, comp):
        torch.testing.assert_close(a, b, rtol=0, atol=0)     # 0/1 states of the same uniforms


def test_cd_update_compiles_whole_and_matches_eager():
    rbm = bp.RBM(6, 4, n_replicas=R, seed=2)
    v0 = torch.cat([(torch.rand(R, 3, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float(),
                    torch.ones(R, 3, 1)], 2)
    up, down = torch.ones(1, 7, 1), torch.ones(1, 5, 1)
    us = lambda: [torch.rand(R, 3, n, generator=torch.Generator().manual_seed(n)) for n in (5, 7, 5, 7)]  # noqa: E731
    results = []
    for fn in (cd_update, _compiled(cd_update)):
        theta, mask = _augment(rbm)
        vel = torch.zeros_like(theta)
        fn(theta, theta.transpose(1, 2), vel, mask, up, down, v0, None, us(), 0.1, 0.5)   # CD-2: h0, v1, h1, v2
        results.append((theta, vel))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_dbm_update_with_fixed_mean_field_compiles_whole_and_matches_eager():
    results = []
    for compile_it in (False, True):
        dbm = bp.DBM([6, 4, 3], n_replicas=R, seed=4, weight_std=0.5)
        flat = _FlatParameters(dbm)
        grad, vel = torch.zeros_like(flat.theta), torch.zeros_like(flat.theta)
        v = (torch.rand(R, 3, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
        chains = list(dbm.init_chains(C, 5))
        us = [torch.rand(R, C, dbm.layer_sizes[l], generator=torch.Generator().manual_seed(l)) for l in sweep_order(2)]
        fn = _compiled(dbm_update) if compile_it else dbm_update
        chains, its = fn(flat, grad, vel, v, chains, us, alive_factors(dbm.alive), 0.05, 0.5, 6.0, 1e-7, 3, "fixed")
        assert bool((its == 3).all())
        results.append((flat.theta.clone(), *chains))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
