"""Sweeps on Dask (issue 17): the sweep file, point order and names, running and resuming,
a worker killed mid-point, the merged table, the summary report, the CLI, the SLURM recipe."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import torch
from typer.testing import CliRunner

import bmprune as bp
from bmprune.cli import app
from bmprune.errors import ConfigError
from bmprune.experiments.sweep import SWEEP_FILE, load_sweep, merge, point_name, point_status, run_sweep
from bmprune.report.sweep import SweepReportError, write_sweep_report

distributed = pytest.importorskip("distributed")

# A study of a second or two: 9×12 RBMs, 3 criteria × 1 seed, one prune–retrain iteration.
TINY = {
    "name": "tiny",
    "data": {"source": "photo_patches", "radius": 1.5, "n_patches": 1000},
    "model": {"kind": "rbm", "hidden": [12], "visible_bias": "data", "hidden_bias": -1.0},
    "train": {"epochs": 2, "batch_size": 10, "learning_rate": 0.05, "momentum": 0.5},
    "retrain": {"epochs": 1, "batch_size": 10, "learning_rate": 0.02, "momentum": 0.5},
    "sampling": {"n_samples": 500, "steps": 10},
    "pruning": {"criteria": ["variance_fi", "heuristic_fi", "random_weights"], "percent": 50.0, "iterations": 1},
    "evaluation": {"exact": True},
    "seeds": 1,
}
KEYS = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer"]


def write_sweep(folder: Path, text: str) -> Path:
    """A sweep file beside a copy of TINY (``base = "tiny.toml"`` finds it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(tomli_w.dumps(TINY))
    path = folder / "sweep.toml"
    path.write_text(text)
    return path


def sorted_metrics(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEYS).reset_index(drop=True)


def direct_run(config, out) -> pd.DataFrame:
    """``bmprune run`` of a config in this process, single-threaded like a sweep worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return bp.run(config, out).metrics
    finally:
        torch.set_num_threads(threads)


# --- the sweep file ---------------------------------------------------------------------------
def test_points_follow_parameter_grid_order_and_are_named_by_their_values(tmp_path):
    from sklearn.model_selection import ParameterGrid

    path = write_sweep(tmp_path / "conf", """
        base = "tiny.toml"
        [set]
        pruning.iterations = 2            # unquoted dotted keys are nested tables in TOML: same thing
        [grid]
        seed = [0, 1]
        "pruning.percent" = [30.0, 50.0]
        "model.hidden" = [[12], [7]]
    """.replace("\n        ", "\n"))
    sweep = load_sweep(path)
    grid = {"seed": [0, 1], "pruning.percent": [30.0, 50.0], "model.hidden": [[12], [7]]}
    assert [p.values for p in sweep.points] == list(ParameterGrid(grid))
    assert sweep.keys == ["model.hidden", "pruning.percent", "seed"]
    assert sweep.points[0].name == "model.hidden=12__pruning.percent=30.0__seed=0"
    assert sweep.points[-1].name == "model.hidden=7__pruning.percent=50.0__seed=1"
    assert sweep.overrides == {"pruning.iterations": 2}
    assert sweep.base == str((tmp_path / "conf" / "tiny.toml").resolve())   # relative to the sweep file
    p = sweep.points[-1].config
    assert (p.seed, p.pruning.percent, p.model.hidden, p.pruning.iterations) == (1, 50.0, [7], 2)
    assert p.data == bp.experiments.load_config(TINY).data          # the rest is the base's
    # names are plain file names; unsafe or long values get a short hash and stay distinct
    odd = point_name({"data.path": "a b/c.npy"})
    assert "/" not in odd and " " not in odd and odd.startswith("data.path=a_b_c.npy__")
    assert odd != point_name({"data.path": "a_b_c.npy"}) == "data.path=a_b_c.npy"
    long = point_name({"model.hidden": list(range(60))})
    assert len(long) <= 96 and long != point_name({"model.hidden": list(range(61))})


def test_a_preset_base_and_a_dict_sweep():
    sweep = load_sweep({"base": "demo", "set": {"seeds": 1, "pruning.iterations": 1},
                        "grid": {"pruning.percent": [30.0, 50.0], "seed": [0, 1]}})
    assert [p.name for p in sweep.points] == ["pruning.percent=30.0__seed=0", "pruning.percent=30.0__seed=1",
                                              "pruning.percent=50.0__seed=0", "pruning.percent=50.0__seed=1"]
    assert all(p.config.seeds == 1 and p.config.model.hidden == [70] for p in sweep.points)
    assert len({p.fingerprint for p in sweep.points}) == 4


def test_an_invalid_point_is_refused_before_anything_runs_naming_point_and_field(tmp_path):
    path = write_sweep(tmp_path, 'base = "tiny.toml"\n[grid]\n"pruning.percent" = [30.0, 120.0]\n')
    with pytest.raises(ConfigError, match=r"point pruning\.percent=120\.0 .*pruning\.percent.*120") as e:
        load_sweep(path)
    assert "1 of 2 points" in str(e.value)
    with pytest.raises(ConfigError, match="different sweep|invalid"):
        run_sweep(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ('base = "tiny.toml"\ncolour = "red"\n[grid]\nseed = [0]\n', r"colour: Extra inputs are not permitted"),
    ('base = "tiny.toml"\n[grid]\nseed = []\n', r"grid\.seed: .*at least 1"),
    ('base = "tiny.toml"\n[grid]\nseed = 3\n', r"grid\.seed: .*valid list"),
    ('base = "tiny.toml"\n[grid]\n', r"grid: .*at least 1"),
    ('base = "tiny.toml"\n[grid]\nseed = [0, 0]\n', "repeats the value 0"),
    ('base = "nope.toml"\n[grid]\nseed = [0]\n', "neither a preset"),
    ('base = "tiny.toml"\n[set]\nseed = 1\n[grid]\nseed = [0]\n', r"\[set\] 'seed' and \[grid\] 'seed'"),
    ('base = "tiny.toml"\n[grid]\n"pruning.colour" = [1]\n', r"pruning\.colour: Extra inputs"),
    ('base = "tiny.toml"\n[grid]\n"pruning.percent" = [30, 30.0]\n', "same config"),
    ('base = "tiny.toml"\n[grid\n', "not valid TOML"),
])
def test_bad_sweep_files_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_sweep(write_sweep(tmp_path, text))


def test_unreadable_and_non_utf8_sweep_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_sweep(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('base = "d\xe9mo"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_sweep(bad)


# --- running -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_points(tmp_path_factory):
    """A 2-point sweep run the default way: a local cluster of 2 single-threaded worker processes."""
    root = tmp_path_factory.mktemp("sweep")
    path = write_sweep(root / "conf", 'base = "tiny.toml"\n[grid]\n"pruning.percent" = [30.0, 50.0]\n')
    events = []
    result = run_sweep(path, root / "out", workers=2, progress=lambda e, **i: events.append((e, i)))
    return result, events, path


def test_every_point_is_a_run_directory_equal_to_a_direct_run(two_points, tmp_path):
    result, events, _ = two_points
    assert result.ok and result.done == ["pruning.percent=30.0", "pruning.percent=50.0"] and not result.skipped
    assert result.workers == 2
    for name in result.done:
        point_dir = result.out_dir / name
        assert json.loads((point_dir / "state.json").read_text())["finished"]
        direct = direct_run(point_dir / "config.toml", tmp_path / name)
        swept = pd.read_parquet(point_dir / "metrics.parquet")
        a, b = sorted_metrics(swept), sorted_metrics(direct)
        pd.testing.assert_frame_equal(a[KEYS], b[KEYS])
        np.testing.assert_allclose(a["value"], b["value"], rtol=1e-6, atol=1e-9)
    kinds = [e for e, _ in events]
    assert kinds[0] == "sweep" and kinds[-1] == "done" and kinds.count("point_done") == 2
    assert {i["point"] for e, i in events if e == "point_stage"} == set(result.done)


def test_merged_table_has_a_point_and_a_grid_key_column(two_points):
    result, _, _ = two_points
    m = pd.read_parquet(result.out_dir / "metrics.parquet")
    assert list(m.columns[:2]) == ["point", "pruning.percent"]
    assert list(m.columns[2:]) == ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value"]
    assert set(zip(m["point"], m["pruning.percent"])) == {("pruning.percent=30.0", 30.0), ("pruning.percent=50.0", 50.0)}
    for name in result.done:
        own = pd.read_parquet(result.out_dir / name / "metrics.parquet")
        part = m[m["point"] == name].drop(columns=["point", "pruning.percent"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(part, own, check_dtype=False)
    pd.testing.assert_frame_equal(result.metrics, m)
    copy = load_sweep(result.out_dir / SWEEP_FILE)       # the directory's copy is a sweep file again
    assert [p.name for p in copy.points] == result.done


def test_rerun_skips_finished_points_and_a_different_sweep_is_refused(two_points, tmp_path):
    result, _, path = two_points
    events = []
    t = time.perf_counter()
    again = run_sweep(path, result.out_dir, progress=lambda e, **i: events.append(e))   # no cluster is started
    assert time.perf_counter() - t < 5
    assert again.skipped == again.done == result.done and "point_start" not in events and "cluster" not in events
    pd.testing.assert_frame_equal(again.metrics, result.metrics)
    other = write_sweep(tmp_path / "other", 'base = "tiny.toml"\n[grid]\n"pruning.percent" = [30.0, 70.0]\n')
    with pytest.raises(ConfigError, match="different sweep.*only in the requested sweep: pruning.percent=70.0"):
        run_sweep(other, result.out_dir)
    changed = write_sweep(tmp_path / "changed", 'base = "tiny.toml"\n[set]\nseeds = 2\n'
                                                 '[grid]\n"pruning.percent" = [30.0, 50.0]\n')
    with pytest.raises(ConfigError, match="config differs"):
        run_sweep(changed, result.out_dir)
    with pytest.raises(ConfigError, match="run directory of one study"):
        run_sweep(path, result.out_dir / "pruning.percent=30.0")
    # merge works on a partially finished sweep: a point without results is left out
    partial = tmp_path / "partial"
    shutil.copytree(result.out_dir, partial)
    shutil.rmtree(partial / "pruning.percent=50.0")
    (partial / "metrics.parquet").unlink()
    m = merge(partial)
    assert set(m["point"]) == {"pruning.percent=30.0"} and (partial / "metrics.parquet").exists()
    assert point_status(partial) == {"pruning.percent=30.0": "finished", "pruning.percent=50.0": "missing"}


def test_sweep_report_draws_a_metric_against_a_grid_key(two_points):
    result, _, _ = two_points
    path = write_sweep_report(result.out_dir, metric=["exact_kl", "alive_units"])
    figures = sorted(p.name for p in (result.out_dir / "figures").glob("sweep_*.png"))
    assert figures == ["sweep_alive_units_vs_pruning.percent.png", "sweep_exact_kl_vs_pruning.percent.png"]
    text = path.read_text()
    assert "| pruning.percent | variance_fi | heuristic_fi | random_weights |" in text
    assert "| pruning.percent=30.0 | finished | 30.0 |" in text
    with pytest.raises(SweepReportError, match="not recorded"):
        write_sweep_report(result.out_dir, metric="no_such_metric")
    with pytest.raises(SweepReportError, match="not a grid key"):
        write_sweep_report(result.out_dir, x="model.hidden")


class KillOnceAfterAStage(distributed.WorkerPlugin):
    """Kills (SIGKILL) the worker running ``point`` once, when its run directory has a completed
    stage but is not finished; a marker file makes it once across the restarted workers."""

    name = "bmprune-test-kill-once"

    def __init__(self, point: str, point_dir: str, marker: str) -> None:
        self.point, self.point_dir, self.marker = point, point_dir, marker
        self.executing = False

    def setup(self, worker) -> None:
        threading.Thread(target=self._watch, daemon=True).start()

    def transition(self, key, start, finish, **kwargs) -> None:
        if self.point in str(key):
            self.executing = finish == "executing"

    def _watch(self) -> None:
        state = Path(self.point_dir) / "state.json"
        while not os.path.exists(self.marker):
            time.sleep(0.005)
            try:
                s = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            if self.executing and s["completed"] and not s.get("finished"):
                Path(self.marker).write_text(f"{os.getpid()} {s['completed']}")
                os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.CRITICAL)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_a_worker_killed_mid_point_is_rescheduled_and_resumes(client, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the workers cannot import this test module
    path = write_sweep(tmp_path / "conf", 'base = "tiny.toml"\n[set]\n"pruning.iterations" = 2\n'
                                          '[grid]\n"pruning.percent" = [40.0]\n')
    name = "pruning.percent=40.0"
    out, marker = tmp_path / "out", tmp_path / "killed"
    client.register_plugin(KillOnceAfterAStage(name, str(out / name), str(marker)))
    events = []
    try:
        result = run_sweep(path, out, client=client, progress=lambda e, **i: events.append((e, i)))
    finally:
        client.unregister_worker_plugin(KillOnceAfterAStage.name)
    assert marker.exists(), "the worker was not killed"
    assert result.ok and result.done == [name]
    starts = [i["attempt"] for e, i in events if e == "point_start"]
    resumed = [i["done"] for e, i in events if e == "point_resume"]
    assert starts == [1, 2] and resumed and resumed[0] >= 1       # the retry resumed after a completed stage
    direct = direct_run(load_sweep(path).points[0].config, tmp_path / "direct")
    a, b = sorted_metrics(result.metrics.drop(columns=["point", "pruning.percent"])), sorted_metrics(direct)
    pd.testing.assert_frame_equal(a[KEYS], b[KEYS], check_dtype=False)
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-6, atol=1e-9)


# --- the command line --------------------------------------------------------------------------
def test_cli_sweep_a_failing_point_does_not_stop_the_others(client, tmp_path):
    good = (np.random.default_rng(0).random((300, 9)) < 0.3).astype(np.uint8)
    bad = good.copy()
    bad[0, 0] = 2                                    # valid config, but the data are not binary: a DataError
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "bad.npy", bad)
    path = write_sweep(tmp_path / "conf", f'base = "tiny.toml"\n[set]\n"data.source" = "file"\n[grid]\n'
                                          f'"data.path" = ["{tmp_path / "bad.npy"}", "{tmp_path / "good.npy"}"]\n')
    bad_point, good_point = (p.name for p in load_sweep(path).points)
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--scheduler", client.scheduler.address])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    failed = [ln for ln in res.output.splitlines() if ln.strip().startswith("failed")]
    assert len(failed) == 1 and bad_point in failed[0] and "DataError" in failed[0] and "binary" in failed[0]
    assert "1 done (0 already finished), 1 failed" in res.output
    assert f"{good_point}: finished" in res.output                       # plain lines: stderr is not a terminal
    assert (out / "report.md").exists() and (out / "metrics.parquet").exists()
    assert set(pd.read_parquet(out / "metrics.parquet")["point"]) == {good_point}
    rep = runner.invoke(app, ["report", str(out)])                       # a sweep directory: its summary
    assert rep.exit_code == 0 and rep.output.strip().endswith("report.md")
    assert "Sweep report" in (out / "report.md").read_text()


def test_cli_sweep_errors_are_one_line_and_exit_2(tmp_path):
    runner = CliRunner()
    path = write_sweep(tmp_path, 'base = "tiny.toml"\n[grid]\n"pruning.percent" = [30.0, 120.0]\nseed = [0]\n')
    res = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pruning.percent=120.0" in lines[0]
    res = runner.invoke(app, ["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and res.output.startswith("error: cannot read sweep file")


# --- SLURM -----------------------------------------------------------------------------------
def test_slurm_recipe_builds_a_job_script():
    """The docs/sweeps.md recipe: one single-threaded worker per job; nothing is submitted."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    with jobqueue.SLURMCluster(cores=1, processes=1, job_cpu=2, memory="4GB", walltime="02:00:00",
                               job_extra_directives=["--gres=gpu:1"], worker_extra_args=["--lifetime", "115m"],
                               job_script_prologue=["source ~/venvs/bmprune/bin/activate"],
                               scheduler_options={"dashboard_address": ":0"}) as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
    for directive in ("#SBATCH --cpus-per-task=2", "#SBATCH --mem=4G", "#SBATCH -t 02:00:00",
                      "#SBATCH --gres=gpu:1"):
        assert directive in script
    assert "distributed.cli.dask_worker" in script and address in script
    assert "--nthreads 1" in script and "--lifetime 115m" in script
