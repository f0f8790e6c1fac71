"""Issue 13, item 3: configs validated before anything is written or trained.

Every case asserts the ConfigError (with what it names) and that the run directory was not
created; the extension cases assert that an existing run's files are left as they were.
"""

from __future__ import annotations

import math

import pytest
from reliability.runs import MICRO, micro, snapshot

import bmprune as bp
from bmprune.errors import ConfigError, RunDirError
from bmprune.experiments import resources


@pytest.mark.parametrize("changes, message", [
    ({"pruning.percent": 0.0}, "percent must lie in"),
    ({"pruning.percent": 100.5}, "percent must lie in"),
    ({"pruning.percent": math.nan}, "pruning.percent"),
    ({"pruning.percent": math.inf}, "pruning.percent"),
    ({"train.momentum": 1.0}, "momentum must lie in"),
    ({"retrain.momentum": -0.1}, "momentum must lie in"),
    ({"train.learning_rate": -1.0}, "learning_rate"),
    ({"train.learning_rate": math.inf}, "learning_rate"),
    ({"seed": -1}, "seed"),
    ({"seeds": 0}, "seeds"),
    ({"seeds": 10**9}, "seeds"),
    ({"pruning.iterations": 0}, "iterations"),
    ({"pruning.iterations": 99999999999999999999999}, "iterations"),
    ({"model.hidden": [0]}, "hidden"),
    ({"pruning.criteria": []}, "criteria"),
    ({"pruning.criteria": [""]}, "unknown criteria"),
    ({"name": "../../escape"}, "plain file name"),
    ({"name": "runs/x"}, "plain file name"),
    ({"train.n_chains": 5}, "persistent"),
    ({"sampling.chunk_size": 0}, "chunk_size"),
])
def test_bad_values_are_refused_before_the_directory_exists(tmp_path, changes, message):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        bp.run(micro(**changes), out)
    assert not out.exists()


@pytest.mark.parametrize("changes, message", [
    ({"data.n_train": 301}, "exceeds the 300 training patterns"),
    ({"model.receptive_field": 3}, "needs full-image data"),
    ({"data": {"source": "digits"}, "model": {"kind": "rbm", "hidden": [64], "receptive_field": 9}},
     "larger than the 8×8 image"),
    ({"data": {"source": "digits"}, "model": {"kind": "rbm", "hidden": [30]},
      "pruning.criteria": ["eigenvector_fi"]}, "too large to enumerate"),
    ({"evaluation.metrics": ["encoding_error"]}, "needs labelled"),
])
def test_config_that_does_not_fit_the_data_is_refused_before_the_directory_exists(tmp_path, changes, message):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        bp.run(micro(**changes), out)
    assert not out.exists()


@pytest.mark.parametrize("device", ["tpu", "cuda:99", "", "cpu:x"])
def test_unknown_or_unavailable_device_is_refused(tmp_path, device):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="device"):
        bp.run(MICRO, out, device=device)
    assert not out.exists()


@pytest.mark.timeout(60)    # a failure would start the study: stop it
@pytest.mark.parametrize("changes", [
    {"seeds": 10_000, "sampling.n_samples": 10**7, "sampling.chunk_size": 10**7},      # 21 TB of chains
    {"seeds": 100, "sampling.chunk_size": 10**8, "sampling.n_samples": 10**9},         # 2 TB
    {"data.n_patches": 100_000_000, "data.radius": 16.0},                              # 0.7 TB of data
])
def test_a_study_larger_than_the_machine_is_refused_with_the_estimate(tmp_path, changes):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"needs about .* more than the .* available: reduce seeds"):
        bp.run(micro(**changes), out)           # before the data (10⁸ patches) are loaded
    assert not out.exists()


def test_memory_limit_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(resources.MEMORY_ENV_VAR, "1M")
    with pytest.raises(ConfigError, match=r"more than the 1.05 MB available"):
        bp.run(MICRO, tmp_path / "run")
    monkeypatch.setenv(resources.MEMORY_ENV_VAR, "lots")
    with pytest.raises(ConfigError, match="not a size"):
        bp.run(MICRO, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_memory_estimate_counts_replicas_chunks_and_data():
    cfg = bp.experiments.load_config(micro(seeds=3))
    est = resources.estimate_memory(cfg, 13, 300)
    R, units, weights = 2 * 3, 13 + 4, 13 * 4
    assert est.parts["population"] == R * (weights + units) * resources.BYTES_PER_PARAMETER
    assert est.parts["sampling chunk"] == 2 * R * 200 * units * 4            # n_samples < DEFAULT_CHUNK
    assert est.parts["training data"] == 2 * 300 * 14 * 4 + R * 300 * 8
    big = resources.estimate_memory(bp.experiments.load_config(micro(**{"sampling.n_samples": 10**6})), 13, 300)
    assert big.parts["sampling chunk"] == 2 * R // 3 * 10_000 * units * 4     # one chunk of DEFAULT_CHUNK


@pytest.mark.parametrize("content, message", [
    (b"name = [", "cannot read config"),
    (b"name = \"x\xff\xfe\"", "not UTF-8"),
    (b"", "invalid study config"),
    (b"[data]\nsource = 'photo_patches'\n", "invalid study config"),
])
def test_unreadable_config_files(tmp_path, content, message):
    p = tmp_path / "c.toml"
    p.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        bp.run(str(p), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_directory_or_missing_file_as_config(tmp_path):
    with pytest.raises(ConfigError, match="a directory, not a config file"):
        bp.run(str(tmp_path), tmp_path / "run")
    with pytest.raises(ConfigError, match="neither a preset nor a config file"):
        bp.run(str(tmp_path / "nope.toml"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# --- extending a finished run: config.toml is rewritten only after everything validates ------
def test_extension_by_an_invalid_iteration_count_leaves_the_run_as_it_was(finished):
    before = snapshot(finished)
    with pytest.raises(ConfigError, match="iterations"):
        bp.run(MICRO, finished, iterations=10**20)
    with pytest.raises(ConfigError, match="never shortened"):
        bp.run(MICRO, finished, iterations=1)
    assert snapshot(finished) == before
    bp.run(MICRO, finished)                        # the original config is still accepted


def test_extension_that_does_not_fit_in_memory_leaves_the_run_as_it_was(finished, monkeypatch):
    before = snapshot(finished)
    monkeypatch.setenv(resources.MEMORY_ENV_VAR, "1M")
    with pytest.raises(ConfigError, match="memory"):
        bp.run(MICRO, finished, iterations=3)
    assert snapshot(finished) == before


def test_extension_from_a_damaged_checkpoint_leaves_the_config_as_it_was(finished):
    """The issue's case: config.toml was rewritten, then the resume failed, and the original
    config was refused afterwards."""
    (finished / "checkpoints" / "iter02-retrained.safetensors").write_bytes(b"\0" * 100)
    before = snapshot(finished)
    with pytest.raises(RunDirError, match="checkpoint of stage 2:retrained"):
        bp.run(MICRO, finished, iterations=3)
    assert snapshot(finished) == before
    bp.run(MICRO, finished)                        # nothing to do: the original config still fits
