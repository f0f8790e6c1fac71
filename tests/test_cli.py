"""The bmprune command line: presets, run (and resume), errors."""

import re

import tomli_w
from typer.testing import CliRunner

from bmprune.cli import app
from bmprune.experiments import load_config

runner = CliRunner()

TINY = {
    "name": "tiny-cli",
    "data": {"source": "photo_patches", "radius": 1.5, "n_patches": 1000},
    "model": {"kind": "rbm", "hidden": [10]},
    "train": {"epochs": 1, "batch_size": 10, "learning_rate": 0.05},
    "retrain": {"epochs": 1, "batch_size": 10, "learning_rate": 0.02},
    "sampling": {"n_samples": 500, "steps": 5},
    "pruning": {"criteria": ["variance_fi", "weight_magnitude"], "percent": 50.0, "iterations": 2},
    "seeds": 2,
}


def test_presets_lists_every_preset():
    res = runner.invoke(app, ["presets"], terminal_width=200)
    assert res.exit_code == 0
    for name in ("paper-rbm-cifar", "paper-dbm-mnist", "quick-rbm", "quick-dbm", "demo"):
        assert name in res.output


def test_run_a_config_file_then_resume(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(tomli_w.dumps(load_config(TINY).model_dump(mode="json", exclude_none=True)))
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--iterations", "1", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert (out / "metrics.parquet").exists()
    assert "results in" in res.output
    # not a terminal (a redirected log): one timestamped line per stage instead of a progress bar
    assert re.search(r"\d\d:\d\d:\d\d stage 1/\d+: iteration", res.output), res.output
    # a different config in the same directory is refused with exit code 2 and an explanation
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet", "--iterations", "1", "--seeds", "3"])
    assert res.exit_code == 2 and "different config" in res.output


def test_unknown_preset_and_criterion_are_explained(tmp_path):
    res = runner.invoke(app, ["run", "nope", "--out", str(tmp_path / "x"), "--quiet"])
    assert res.exit_code == 2 and "neither a preset" in res.output
    res = runner.invoke(app, ["run", "demo", "--criteria", "variance_fi,magic", "--out", str(tmp_path / "y"), "--quiet"])
    assert res.exit_code == 2 and "unknown criteria" in res.output
