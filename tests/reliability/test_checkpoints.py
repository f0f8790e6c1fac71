"""Issue 13, item 5: a checkpoint is validated when it is loaded, never failing later.

Each case writes a damaged or foreign safetensors file and asserts a CheckpointError from
``load_model`` (not a RuntimeError from the first matmul) and that loading left the file as
it was.
"""

from __future__ import annotations

import json

import pytest
import torch
from reliability.runs import snapshot, write_checkpoint
from safetensors.torch import save_file

import bmprune as bp
from bmprune.errors import CheckpointError, ConfigError


def _rbm():
    rbm = bp.RBM(5, 3, n_replicas=2, seed=1)
    rbm.alive[1][1, 2] = False            # replica 1 lost hidden unit 2 (and its weights)
    rbm.weight_mask[0, 0, 0] = False      # and replica 0 one synapse
    return rbm.apply_masks()


def _dbm():
    return bp.DBM([5, 4, 3], n_replicas=2, seed=2).apply_masks()


def _W(f):
    rbm = _rbm()
    W = rbm.W.clone()
    f(W, rbm)
    return W


RBM_CASES = {
    "nan weight": ({"W": _W(lambda W, m: W.__setitem__((0, 1, 1), float("nan")))}, {}, "NaN or infinite"),
    "inf bias": ({"b_h": torch.tensor([[0.0, float("inf"), 0.0]] * 2)}, {}, "NaN or infinite"),
    "int32 weights": ({"W": torch.zeros(2, 5, 3, dtype=torch.int32)}, {}, "float32 or all float64"),
    "float16 weights": ({"W": _rbm().W.half()}, {}, "float32 or all float64"),
    "mixed float32/float64": ({"b_v": torch.zeros(2, 5, dtype=torch.float64)}, {}, "float32 or all float64"),
    "0/1 float mask": ({"weight_mask": _rbm().weight_mask.float()}, {}, "bool mask"),
    "uint8 alive mask": ({"alive.1": _rbm().alive[1].to(torch.uint8)}, {}, "bool mask"),
    "wrongly shaped alive mask": ({"alive.1": torch.ones(2, 4, dtype=torch.bool)}, {}, "do not fit sizes"),
    "wrongly shaped mask": ({"weight_mask": torch.ones(2, 3, 5, dtype=torch.bool)}, {}, "do not fit sizes"),
    "replicas disagree": ({"b_v": torch.zeros(3, 5)}, {}, "do not fit sizes"),
    "no replica axis": ({"b_v": torch.zeros(5)}, {}, "must have shape"),
    "weights against the config": ({}, {"bmprune_config": json.dumps({"n_visible": 6, "n_hidden": 3})}, "do not fit"),
    "masked weight not zero": ({"W": _W(lambda W, m: W.__setitem__((0, 0, 0), 0.5))}, {}, "not zero"),
    "dead unit keeps weights": ({"weight_mask": torch.ones(2, 5, 3, dtype=torch.bool),
                                 "W": _W(lambda W, m: W.fill_(0.1))}, {}, "removed units"),
    "removed visible unit": ({"alive.0": torch.tensor([[True] * 4 + [False]] * 2)}, {}, "visible units"),
    "future major version": ({}, {"bmprune_version": "99.0.0"}, "upgrade bmprune"),
    "garbled version": ({}, {"bmprune_version": "next"}, "unreadable bmprune_version"),
    "no version": ({}, {"bmprune_version": None}, "no bmprune_version"),
    "unknown kind": ({}, {"bmprune_kind": "GAN"}, "unknown model kind"),
    "config not JSON": ({}, {"bmprune_config": "{n_visible: 5"}, "not JSON"),
    "config not an object": ({}, {"bmprune_config": "[5, 3]"}, "JSON object"),
    "config sizes not integers": ({}, {"bmprune_config": json.dumps({"n_visible": "5", "n_hidden": 3})}, "valid RBM sizes"),
    "unexpected tensor": ({"extra": torch.zeros(1)}, {}, "unexpected"),
}


@pytest.mark.parametrize("name", list(RBM_CASES))
def test_damaged_rbm_checkpoint(tmp_path, name):
    tensors, meta, message = RBM_CASES[name]
    p = write_checkpoint(tmp_path / "m.safetensors", _rbm(), tensors=tensors, meta=meta)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        bp.load_model(p)
    assert snapshot(tmp_path) == before


def test_missing_tensor(tmp_path):
    p = write_checkpoint(tmp_path / "m.safetensors", _rbm(), drop=["alive.1"])
    with pytest.raises(CheckpointError, match=r"missing \['alive.1'\]"):
        bp.load_model(p)


@pytest.mark.parametrize("tensors, meta, message", [
    ({}, {"bmprune_config": json.dumps({"layer_sizes": [5, 4, 4]})}, "do not fit"),
    ({}, {"bmprune_config": json.dumps({"layer_sizes": [5]})}, "valid DBM sizes"),
    ({"W.1": torch.zeros(2, 4, 3, dtype=torch.float64)}, {}, "float32 or all float64"),
    ({"weight_mask.1": torch.ones(2, 4, 3, dtype=torch.int64)}, {}, "bool mask"),
])
def test_damaged_dbm_checkpoint(tmp_path, tensors, meta, message):
    p = write_checkpoint(tmp_path / "m.safetensors", _dbm(), tensors=tensors, meta=meta)
    with pytest.raises(CheckpointError, match=message):
        bp.load_model(p)


@pytest.mark.parametrize("content", [b"", b"\0" * 64, b"not a checkpoint at all", b"\xff" * 9])
def test_unreadable_files(tmp_path, content):
    p = tmp_path / "m.safetensors"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        bp.load_model(p)
    assert p.read_bytes() == content


def test_truncated_foreign_missing_and_directory(tmp_path):
    good = write_checkpoint(tmp_path / "good.safetensors", _rbm()).read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        bp.load_model(tmp_path / "cut.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a bmprune checkpoint"):
        bp.load_model(tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        bp.load_model(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        bp.load_model(tmp_path)


def test_valid_checkpoints_load_and_other_minor_versions_too(tmp_path):
    rbm = _rbm()
    p = write_checkpoint(tmp_path / "m.safetensors", rbm, meta={"bmprune_version": "0.9.3"})
    back = bp.load_model(p)
    assert torch.equal(back.W, rbm.W) and torch.equal(back.alive[1], rbm.alive[1])
    dbm = bp.load_model(write_checkpoint(tmp_path / "d.safetensors", _dbm()))
    assert dbm.layer_sizes == [5, 4, 3]
    f64 = bp.load_model(write_checkpoint(tmp_path / "f.safetensors", rbm.to(dtype=torch.float64)))
    assert f64.dtype == torch.float64


def test_wrong_class_and_device(tmp_path):
    p = write_checkpoint(tmp_path / "d.safetensors", _dbm())
    with pytest.raises(CheckpointError, match="not a RBM"):
        bp.RBM.load(p)
    with pytest.raises(ConfigError, match="device"):
        bp.load_model(p, device="tpu")


def test_a_failed_write_is_a_checkpoint_error_and_leaves_the_old_file(tmp_path, monkeypatch):
    import os

    p = write_checkpoint(tmp_path / "m.safetensors", _rbm())
    before = snapshot(tmp_path)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        bp.save_model(_dbm(), p)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before          # the temporary file is gone, the old one intact
