"""The study runner: stages, metrics, resume after SIGKILL, refusal of a different config (issue: runner)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

import bmprune as bp
from bmprune.experiments import PRESETS, get_preset, load_config

TINY = {
    "name": "tiny",
    "data": {"source": "photo_patches", "radius": 1.5, "n_patches": 1500},
    "model": {"kind": "rbm", "hidden": [12], "visible_bias": "data", "hidden_bias": -1.0},
    "train": {"epochs": 2, "batch_size": 10, "learning_rate": 0.05, "momentum": 0.5},
    "retrain": {"epochs": 2, "batch_size": 10, "learning_rate": 0.02, "momentum": 0.5},
    "sampling": {"n_samples": 800, "steps": 10},
    "pruning": {"criteria": ["variance_fi", "heuristic_fi", "random_weights"], "percent": 50.0, "iterations": 3},
    "evaluation": {"exact": True, "sampled_patterns": True},
    "seeds": 2,
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny"
    return bp.run(TINY, out)


def test_run_writes_a_complete_run_directory(tiny_run):
    d = tiny_run.out_dir
    assert (d / "config.toml").exists() and (d / "metrics.parquet").exists()
    assert (d / "checkpoints" / "iter00-trained.safetensors").exists()
    assert (d / "checkpoints" / "iter03-retrained.safetensors").exists()
    # trained + latest only, and the latest stage's sample statistics (a resume does not re-draw them)
    assert sorted(p.name for p in (d / "checkpoints").glob("*.safetensors")) == [
        "iter00-trained.safetensors", "iter03-retrained.safetensors", "iter03-retrained.samples.safetensors"]
    cfg = load_config(d / "config.toml")
    assert cfg == load_config(TINY)
    df = pd.read_parquet(d / "metrics.parquet")
    assert list(df.columns) == ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value"]
    stages = set(zip(df.iteration, df.stage))
    assert stages == {(0, "trained")} | {(i, s) for i in (1, 2, 3) for s in ("pruned", "retrained")}
    assert set(df.criterion) == {"variance_fi", "heuristic_fi", "random_weights"}
    assert df.replica.nunique() == 6


def test_weights_halve_each_iteration_and_retraining_recovers(tiny_run):
    df = tiny_run.metrics
    w = df[(df.metric == "weights") & (df.stage != "retrained")].groupby(["iteration", "criterion"]).value.mean().unstack()
    nv = 9   # radius 1.5 → a 3×3 patch
    n = [nv * 12]
    for _ in range(3):
        n.append(n[-1] - n[-1] // 2)          # ⌊50 % · n⌋ pruned
    # random_weights prunes exactly ⌊q·n⌋; FI criteria prune ties too, so at least as many
    assert list(w["random_weights"]) == [float(x) for x in n]
    assert (w["variance_fi"] <= w["random_weights"]).all()
    kl = df[df.metric == "exact_kl"].groupby(["iteration", "stage"]).value.mean()
    for it in (1, 2, 3):
        assert kl[(it, "retrained")] < kl[(it, "pruned")]          # retraining recovers


def test_alive_units_never_increase_and_masks_match_weights(tiny_run):
    df = tiny_run.metrics
    a = df[(df.metric == "alive_units") & (df.layer == 1)].sort_values(["replica", "iteration"])
    for _, g in a.groupby("replica"):
        assert g.value.is_monotonic_decreasing
    model = bp.load_model(tiny_run.out_dir / "checkpoints" / "iter03-retrained.safetensors")
    assert (model.W[~model.weight_mask] == 0).all()
    last = df[(df.metric == "alive_units") & (df.layer == 1) & (df.iteration == 3) & (df.stage == "retrained")]
    assert sorted(last.value) == sorted(model.alive[1].sum(1).tolist())


def test_same_config_resumes_as_done_and_other_config_is_refused(tiny_run):
    again = bp.run(TINY, tiny_run.out_dir)          # everything done: nothing recomputed
    pd.testing.assert_frame_equal(again.metrics, tiny_run.metrics)
    with pytest.raises(bp.ConfigError, match="different config"):
        bp.run({**TINY, "seeds": 3}, tiny_run.out_dir)
    # reworded prose is not a different study
    bp.run({**TINY, "description": "reworded"}, tiny_run.out_dir)
    with pytest.raises(bp.ConfigError, match="never shortened"):
        bp.run(TINY, tiny_run.out_dir, iterations=2)


def test_finished_run_extended_by_more_iterations_equals_the_longer_run(tmp_path, tiny_run):
    short = bp.run(TINY, tmp_path / "run", iterations=2)
    assert short.metrics["iteration"].max() == 2 and json.loads((tmp_path / "run" / "state.json").read_text())["finished"]
    longer = bp.run(TINY, tmp_path / "run")                  # TINY has 3 iterations
    cols = ["criterion", "seed", "iteration", "stage", "metric", "layer"]
    a = longer.metrics.sort_values(cols).reset_index(drop=True)
    b = tiny_run.metrics.sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert load_config(tmp_path / "run" / "config.toml").pruning.iterations == 3


KILLER = textwrap.dedent("""
    import os, signal, sys
    import bmprune as bp
    state = {"stage": None}
    def progress(event, **info):
        if event == "stage":
            state["stage"] = (info["iteration"], info["stage"])
        # SIGKILL in the middle of iteration 2's retraining: half of that stage is done
        if event == "epoch" and state["stage"] == (2, "retrained") and info["epoch"] == 0:
            os.kill(os.getpid(), signal.SIGKILL)
    bp.run(sys.argv[1], sys.argv[2], progress=progress)
""")


def test_sigkill_mid_iteration_then_resume_gives_identical_metrics(tmp_path, tiny_run):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(tomli_w.dumps(load_config(TINY).model_dump(mode="json", exclude_none=True)))
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(cfg), str(out)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    state = (out / "state.json").read_text()
    assert '"2:pruned"' in state and '"2:retrained"' not in state
    resumed = bp.run(str(cfg), out)
    cols = ["replica", "iteration", "stage", "metric", "layer"]
    a = resumed.metrics.sort_values(cols).reset_index(drop=True)
    b = tiny_run.metrics.sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_presets_validate_and_describe_their_cost():
    for name in PRESETS:
        cfg = get_preset(name)
        assert cfg.description and "CPU" in cfg.expected_time
    assert get_preset("paper-rbm-cifar").train.batch_size == 1
    assert get_preset("paper-dbm-mnist").pruning.percent == [10.0, 25.0]
    with pytest.raises(bp.ConfigError, match="unknown preset"):
        get_preset("paper")


def test_reduced_cpu_variant_keeps_the_papers_data_architecture_and_rates():
    """examples/paper-dbm-mnist-cpu.toml (docs/reproduction.md) may only cut cost, not change the study."""
    path = Path(__file__).parents[2] / "examples" / "paper-dbm-mnist-cpu.toml"
    cpu, paper = load_config(path), get_preset("paper-dbm-mnist")
    assert cpu.model == paper.model and cpu.data == paper.data
    assert cpu.pruning.percent == paper.pruning.percent and cpu.pruning.iterations == paper.pruning.iterations
    assert set(cpu.pruning.criteria) == set(paper.pruning.criteria)
    assert set(cpu.evaluation.metrics) >= set(paper.evaluation.metrics)       # the paper's metrics, and AIS
    # trained as the paper preset: the original update rule everywhere, chains started from the RBMs
    assert {p.update_rule for p in cpu.pretrain} == {cpu.train.update_rule, cpu.retrain.update_rule} == {"original"}
    assert cpu.train.chains_init == paper.train.chains_init == "first_patterns_rbm"
    assert cpu.seeds >= 3 and "CPU" in cpu.expected_time


@pytest.mark.parametrize("change, message", [
    ({"colour": "red"}, "colour"),
    ({"seeds": 0}, "seeds"),
    ({"pruning": {**TINY["pruning"], "criteria": ["variance_fi", "magic"]}}, "unknown criteria"),
    ({"pruning": {**TINY["pruning"], "percent": 120}}, "percent"),
    ({"model": {**TINY["model"], "hidden": [12, 5]}}, "exactly one hidden layer"),
    ({"train": {**TINY["train"], "epochs": -1}}, "train.epochs"),
])
def test_bad_configs_are_explained(change, message):
    with pytest.raises(bp.ConfigError, match=message):
        load_config({**TINY, **change})


def test_toml_round_trip_and_unknown_preset_or_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(tomli_w.dumps(load_config(TINY).model_dump(mode="json", exclude_none=True)))
    assert load_config(p) == load_config(TINY)
    p.write_text("name = [")
    with pytest.raises(bp.ConfigError, match="cannot read"):
        load_config(p)
    with pytest.raises(bp.ConfigError, match="neither a preset"):
        bp.run("no-such-preset", tmp_path / "x")
