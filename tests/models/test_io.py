"""safetensors checkpoints: exact round trip, clear errors on truncated or foreign files."""

import pytest
import torch
from safetensors.torch import save_file

import bmprune as bp
from bmprune.models.io import read_metadata
from helpers import random_rbm


def test_round_trip_is_exact(tmp_path):
    rbm = random_rbm(6, 4, R=3, seed=1, mask_density=0.5, dtype=torch.float32)
    rbm.alive[1][2, 1] = False
    rbm.apply_masks()
    path = tmp_path / "m.safetensors"
    rbm.save(path, metadata={"iteration": 2})
    back = bp.RBM.load(path)
    for k, t in rbm.named_tensors().items():
        assert torch.equal(t, back.named_tensors()[k]), k
        assert t.dtype == back.named_tensors()[k].dtype
    assert read_metadata(path)["iteration"] == "2"
    assert read_metadata(path)["bmprune_version"] == bp.__version__
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_foreign_and_missing_files(tmp_path):
    path = tmp_path / "m.safetensors"
    random_rbm(5, 3).save(path)
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(bp.CheckpointError, match="truncated or corrupt"):
        bp.load_model(tmp_path / "cut.safetensors")
    save_file({"x": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(bp.CheckpointError, match="not a bmprune checkpoint"):
        bp.load_model(tmp_path / "foreign.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(bp.CheckpointError):
        bp.load_model(tmp_path / "junk.safetensors")
    with pytest.raises(bp.CheckpointError, match="no checkpoint"):
        bp.load_model(tmp_path / "absent.safetensors")
