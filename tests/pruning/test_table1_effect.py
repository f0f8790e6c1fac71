"""The paper's Table 1 effect on a small trained RBM: FI pruning disconnects hidden units.

Three seeds of a 13 × 30 RBM trained like the paper's CIFAR RBM (CD-1, batch 1) on circular
patches of scikit-learn's photographs, pruned 50 % per iteration for three iterations
from fresh model samples. At every iteration, the random control removes exactly as many
weights per replica as the FI criterion did; FI criteria still leave far fewer hidden units
alive, because they remove all weights of rarely active units first (SPEC §7, Table 1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bmprune as bp

SEEDS = 3
FI = ["variance_fi", "heuristic_fi"]


@pytest.fixture
def one_thread():
    # these tensors are tiny: intra-op threads only add synchronisation (and on a shared,
    # oversubscribed CPU they slow batch-1 training down by 10–60×)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_fi_criteria_disconnect_more_hidden_units_than_random_weights(one_thread):
    x = np.asarray(bp.data.load_photo_patches(n_patches=5000, seed=0).x)
    rbm = bp.RBM(13, 30, n_replicas=SEEDS, seed=0, hidden_bias=-2.0).init_visible_bias(x)
    bp.training.train_rbm(rbm, x, epochs=2, batch_size=1, learning_rate=[0.1, 0.01], momentum=0.9, seed=0)

    order = [s for _ in FI for s in range(SEEDS)]                 # replica = (criterion, seed)
    fi_pop = rbm.replicas(order)
    random_pop = [rbm.replica(s) for s in order]                  # one R = 1 model per FI replica
    for it in range(3):
        samples = bp.sample(fi_pop, 5000, steps=30, seed=it)
        rep = bp.pruning.prune(fi_pop, [c for c in FI for _ in range(SEEDS)], 50, samples=samples)
        removed = rep.weights_removed[:, 0]
        for r, model in enumerate(random_pop):
            # the percent that makes ⌊q/100 · n⌋ exactly the FI replica's count
            n = int(model.weight_mask.sum())
            assert n == int(rep.weights_before[r, 0])
            bp.pruning.prune(model, "random_weights", 100 * int(removed[r]) / n, seed=100 * it + r)
            assert int(model.weight_mask.sum()) == int(rep.weights_after[r, 0])
        units_fi = rep.units_after[:, 1].double()
        units_random = torch.tensor([float(m.alive[1].sum()) for m in random_pop])
        assert (units_fi <= units_random).all(), (it, units_fi.tolist(), units_random.tolist())
    # after three iterations (≈ 48 of 390 weights left) the gap is large on average
    assert units_fi.mean() < units_random.mean() - 6, (units_fi.tolist(), units_random.tolist())
