"""Issue 13, items 2 and 6: run directories are validated, locked, never lose data, and resume.

Every refusal asserts the typed error (RunDirError names the fix) and that no file of the
directory changed (bytes and mtimes, lock files included); every interruption asserts that
the directory resumes to the numbers of an uninterrupted run.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from reliability.runs import DIVERGING, MICRO, STAGES, micro, snapshot, sorted_metrics
from typer.testing import CliRunner

import bmprune as bp
from bmprune.cli import app
from bmprune.errors import (
    BmpruneError,
    CheckpointError,
    ConfigError,
    RunDirError,
    TrainingDivergedError,
)
from bmprune.experiments import RunDir, load_config
from bmprune.experiments.rundir import LOCK_FILE, OWNER_FILE

cli = CliRunner()


def _refused(path, match, error=RunDirError, config=MICRO, locks=True):
    """bp.run on ``path`` raises ``error`` matching ``match`` and changes no file."""
    before = snapshot(path, locks=locks)
    with pytest.raises(error, match=match) as info:
        bp.run(config, path)
    assert snapshot(path, locks=locks) == before
    return info.value


def _edit_state(path, **changes):
    state = json.loads((path / "state.json").read_text())
    state.update(changes)
    (path / "state.json").write_text(json.dumps(state))


# --- state.json -----------------------------------------------------------------------------
@pytest.mark.parametrize("content, what", [
    (b'{"completed": ["0:trained"', "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[1, 2]", "is an array, not a JSON object"),
    (b"null", "is null, not a JSON object"),
    (b'{"completed": "0:trained", "checkpoint": null}', "not a list of stage keys"),
    (b'{"completed": [0], "checkpoint": null}', "not a list of stage keys"),
    (b'{"checkpoint": null}', "not a list of stage keys"),
])
def test_unparsable_state(partial, content, what):
    (partial / "state.json").write_bytes(content)
    err = _refused(partial, what)
    assert "restore state.json" in str(err) and "delete the directory" in str(err)


@pytest.mark.parametrize("changes, what", [
    ({"completed": ["0:trained", "1:pruned", "1:retrained", "7:pruned"]}, r"not in this study's schedule"),
    ({"completed": ["0:trained", "1:bogus"]}, r"not in this study's schedule"),
    ({"completed": ["0:trained", "0:trained"]}, "twice"),
    ({"completed": ["0:trained", "1:retrained"]}, "with a gap"),
    ({"checkpoint": "../../etc/passwd"}, "not a file under checkpoints/"),
    ({"checkpoint": None}, "no checkpoint"),
    ({"checkpoint": 3}, "not a file under checkpoints/"),
    ({"seconds": [1, 2]}, "'seconds'"),
    ({"finished": "yes"}, "'finished'"),
])
def test_state_with_wrong_types_or_unknown_stages(partial, changes, what):
    _edit_state(partial, **changes)
    _refused(partial, what)


def test_state_naming_another_stage_checkpoint(partial):
    _edit_state(partial, checkpoint="checkpoints/iter00-trained.safetensors")
    _refused(partial, "not the last completed stage's")


def test_config_damaged_or_missing(partial):
    cfg = (partial / "config.toml").read_bytes()
    (partial / "config.toml").write_bytes(b"\xff\xfe not toml")
    _refused(partial, "config.toml cannot be read")
    (partial / "config.toml").unlink()
    _refused(partial, "state.json but no config.toml")
    (partial / "config.toml").write_bytes(cfg)
    bp.run(MICRO, partial)                    # restored: resumes


# --- state, metrics and checkpoints cross-checked ----------------------------------------------
def test_deleted_metrics_of_a_partial_run_are_refused_not_dropped(partial, reference):
    """The issue's data loss: deleting metrics.parquet and resuming dropped the earlier rows."""
    table = (partial / "metrics.parquet").read_bytes()
    (partial / "metrics.parquet").unlink()
    err = _refused(partial, "metrics.parquet is missing but state.json lists 3 completed stages")
    assert "restore metrics.parquet" in str(err)
    (partial / "metrics.parquet").write_bytes(table)
    pd.testing.assert_frame_equal(sorted_metrics(bp.run(MICRO, partial).metrics), sorted_metrics(reference))


@pytest.mark.parametrize("stage", ["0:trained", "1:pruned", "1:retrained"])
def test_rows_missing_for_a_completed_stage(partial, stage):
    df = pd.read_parquet(partial / "metrics.parquet")
    keys = df["iteration"].astype(str) + ":" + df["stage"].astype(str)
    df[keys != stage].to_parquet(partial / "metrics.parquet", index=False)
    _refused(partial, f"lacks the rows of completed stages {stage}")


def test_rows_missing_for_one_replica(finished):
    df = pd.read_parquet(finished / "metrics.parquet")
    df[~((df.replica == 1) & (df.iteration == 2))].to_parquet(finished / "metrics.parquet", index=False)
    _refused(finished, "lacks the rows of completed stages 2:pruned, 2:retrained")


@pytest.mark.parametrize("damage", ["truncate", "columns"])
def test_unreadable_metrics(partial, damage):
    p = partial / "metrics.parquet"
    if damage == "truncate":
        p.write_bytes(p.read_bytes()[:100])
    else:
        pd.read_parquet(p).rename(columns={"value": "v"}).to_parquet(p, index=False)
    _refused(partial, "metrics.parquet")


@pytest.mark.parametrize("damage, what", [
    ("delete", "no checkpoint"),
    ("truncate", "truncated or corrupt"),
    ("nan", "NaN or infinite"),
    ("other stage", "not that of stage 1:retrained"),
])
def test_latest_checkpoint_damaged(partial, damage, what):
    ckpt = partial / "checkpoints" / "iter01-retrained.safetensors"
    if damage == "delete":
        ckpt.unlink()
    elif damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[:200])
    elif damage == "nan":
        m = bp.load_model(ckpt)
        m.b_v[0, 0] = float("nan")
        bp.save_model(m, ckpt, metadata={"iteration": 1, "stage": "retrained",
                                         "criteria": "variance_fi,random_weights", "seeds": "0,0"})
    else:
        bp.save_model(bp.load_model(ckpt), ckpt, metadata={"iteration": 0, "stage": "trained"})
    err = _refused(partial, what)
    assert "checkpoint of stage 1:retrained" in str(err)


# --- where a run may go -------------------------------------------------------------------------
def test_out_naming_a_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    _refused(f, "is a file, not a run directory")
    assert f.read_text() == "mine"


def test_out_inside_a_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    with pytest.raises(RunDirError, match="Not a directory|not a directory"):
        bp.run(MICRO, f / "run")
    assert f.read_text() == "mine"


@pytest.mark.parametrize("entries", [["thesis.tex"], ["checkpoints/x.safetensors"], ["metrics.parquet"], [".git/HEAD"]])
def test_out_a_non_empty_directory_without_a_run(tmp_path, entries):
    d = tmp_path / "d"
    for e in entries:
        (d / e).parent.mkdir(parents=True, exist_ok=True)
        (d / e).write_text("precious")
    _refused(d, "non-empty directory without a bmprune run")


def test_out_left_by_a_run_killed_before_its_first_file_is_accepted(tmp_path, reference):
    d = tmp_path / "d"
    (d / "checkpoints").mkdir(parents=True)
    (d / LOCK_FILE).touch()
    (d / "config.toml.abc123.tmp").write_bytes(b"half")
    res = bp.run(MICRO, d)
    pd.testing.assert_frame_equal(sorted_metrics(res.metrics), sorted_metrics(reference))
    assert not (d / "config.toml.abc123.tmp").exists() and not (d / OWNER_FILE).exists()


# --- the lock -----------------------------------------------------------------------------------
def test_a_second_process_gets_in_use_by_pid(partial):
    holder = RunDir(partial, load_config(MICRO))      # what a running `bmprune run` holds
    try:
        owner = (partial / OWNER_FILE).read_bytes()
        assert holder.writable and json.loads(owner)["pid"] == os.getpid()
        err = _refused(partial, f"in use by PID {os.getpid()}", locks=False)
        assert (partial / OWNER_FILE).read_bytes() == owner
        assert isinstance(err, OSError) and "wait for it to finish" in str(err)
    finally:
        holder.close()
    assert not (partial / OWNER_FILE).exists()
    bp.run(MICRO, partial)                            # released: resumes


# --- read-only directories ----------------------------------------------------------------------
def test_reopening_a_finished_run_writes_nothing(finished, reference):
    before = snapshot(finished)
    res = bp.run(MICRO, finished)
    assert snapshot(finished) == before               # not even a lock file
    pd.testing.assert_frame_equal(res.metrics, reference)


def test_a_finished_run_in_a_read_only_directory_reopens_and_reports_elsewhere(finished, reference, tmp_path,
                                                                               monkeypatch):
    """Read-only simulated for root (which may write anyway): every write and the lock fail."""
    import tempfile

    import filelock

    from bmprune.experiments import rundir
    from bmprune.report import report

    def denied(*a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(rundir, "atomic_write", denied)
    monkeypatch.setattr(filelock.FileLock, "acquire", denied)
    real = tempfile.TemporaryFile
    monkeypatch.setattr(tempfile, "TemporaryFile",
                        lambda *a, dir=None, **k: denied() if str(dir) == str(finished) else real(*a, dir=dir, **k))
    before = snapshot(finished)
    pd.testing.assert_frame_equal(bp.run(MICRO, finished).metrics, reference)
    res = cli.invoke(app, ["report", str(finished)])
    assert res.exit_code == 2 and "read-only" in res.stderr and "--out" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = cli.invoke(app, ["report", str(finished), "--out", str(tmp_path / "elsewhere")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "elsewhere" / "report.md").is_file() and (tmp_path / "elsewhere" / "figures").is_dir()
    assert snapshot(finished) == before
    _ = report


def test_a_run_with_stages_left_in_a_read_only_directory(partial, monkeypatch):
    import filelock

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(filelock.FileLock, "acquire", denied)
    err = _refused(partial, "not writable")
    assert "copy the directory elsewhere" in str(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories; simulated above")
def test_really_read_only_directory(finished, reference, tmp_path):
    from reliability.runs import chmod_tree

    before = snapshot(finished)
    chmod_tree(finished, writable=False)
    try:
        pd.testing.assert_frame_equal(bp.run(MICRO, finished).metrics, reference)
        res = cli.invoke(app, ["report", str(finished)])
        assert res.exit_code == 2 and "read-only" in res.stderr
        assert cli.invoke(app, ["report", str(finished), "--out", str(tmp_path / "r")]).exit_code == 0
    finally:
        chmod_tree(finished, writable=True)
    assert snapshot(finished) == before


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_really_read_only_directory_as_an_unprivileged_user(finished, reference):
    """As root, the read-only checks run as user nobody on a copy root owns and nobody cannot write."""
    import subprocess
    import sys
    import tempfile

    from reliability.runs import chmod_tree, copy_run

    top = Path(tempfile.mkdtemp(prefix="bmprune-ro-"))
    try:
        top.chmod(0o755)
        run = copy_run(finished, top / "run")
        home = top / "home"
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        config = top / "micro.toml"
        config.write_text(tomli_w.dumps(load_config(MICRO).model_dump(mode="json", exclude_none=True)))
        config.chmod(0o644)
        chmod_tree(run, writable=False)
        before = snapshot(run)
        env = {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home / "mpl"), "BMPRUNE_CACHE_DIR": str(home / "c")}

        def as_nobody(*args):
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "bmprune.cli", *args]
            return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=top, timeout=300)

        res = as_nobody("run", str(config), "--out", str(run), "--quiet")
        assert res.returncode == 0 and "not rewritten" in res.stderr, res.stderr
        res = as_nobody("report", str(run))
        assert res.returncode == 2 and "read-only" in res.stderr and len(res.stderr.strip().splitlines()) == 1
        res = as_nobody("report", str(run), "--out", str(home / "report"))
        assert res.returncode == 0 and (home / "report" / "report.md").is_file(), res.stderr
        res = as_nobody("run", str(config), "--out", str(run), "--iterations", "3", "--quiet")
        assert res.returncode == 2 and "is not writable" in res.stderr, res.stderr
        assert snapshot(run) == before
    finally:
        chmod_tree(top, writable=True)
        shutil.rmtree(top)


# --- disk full or permission lost mid-run ---------------------------------------------------------
# the run's atomic writes in order: 1 owner, 2 config.toml, 3 data.safetensors, then per stage
# checkpoint, metrics.parquet, state.json (4–6 trained, 7–9 1:pruned, …)
@pytest.mark.parametrize("fail_at, error", [
    (1, errno.ENOSPC),     # the owner file, right after the lock
    (2, errno.ENOSPC),     # config.toml
    (3, errno.EACCES),     # data.safetensors
    (4, errno.ENOSPC),     # the trained checkpoint
    (8, errno.ENOSPC),     # 1:pruned's metrics
    (12, errno.EACCES),    # 1:retrained's state.json
])
def test_a_failed_write_mid_run_is_typed_and_resumes_identically(tmp_path, reference, monkeypatch, fail_at, error):
    calls = {"n": 0}
    real = os.replace

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(error, os.strerror(error))
        return real(src, dst)

    out = tmp_path / "run"
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(BmpruneError) as info:
        bp.run(MICRO, out)
    monkeypatch.undo()
    assert isinstance(info.value, (RunDirError, CheckpointError)) and isinstance(info.value, OSError)
    assert os.strerror(error) in str(info.value)
    assert not list(out.rglob("*.tmp")) and not (out / OWNER_FILE).exists()
    res = bp.run(MICRO, out)
    pd.testing.assert_frame_equal(sorted_metrics(res.metrics), sorted_metrics(reference))


# --- item 2: divergence -------------------------------------------------------------------------
def test_diverging_retraining_stops_typed_and_leaves_the_run_resumable(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError) as info:
        bp.run(DIVERGING, out)
    msg = str(info.value)
    assert "retraining" in msg and "epoch 0" in msg and "retrain.learning_rate" in msg
    assert info.value.phase == "retraining" and info.value.epoch == 0
    state = json.loads((out / "state.json").read_text())
    assert state["completed"] == STAGES[:2] and not state.get("finished")
    assert state["checkpoint"] == "checkpoints/iter01-pruned.safetensors"
    bp.load_model(out / state["checkpoint"])                 # the completed stages are intact
    rows = pd.read_parquet(out / "metrics.parquet")
    assert set(rows.iteration.astype(str) + ":" + rows.stage) == set(STAGES[:2])

    # the same diverging config resumes at the failed stage and fails there again, changing nothing
    before = snapshot(out, locks=False)
    events = []
    with pytest.raises(TrainingDivergedError, match="^retraining diverged in epoch 0"):
        bp.run(DIVERGING, out, progress=lambda e, **i: events.append((e, i)))
    assert events[0] == ("resume", {"done": 2, "total": 5})
    assert [(i["iteration"], i["stage"]) for e, i in events if e == "stage"] == [(1, "retrained")]
    assert snapshot(out, locks=False) == before

    # a fixed learning rate is a different config: refused, nothing changed; the report works
    with pytest.raises(ConfigError, match="different config"):
        bp.run(MICRO, out)
    assert snapshot(out, locks=False) == before
    res = cli.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.md").is_file()


def test_diverging_initial_training_names_the_train_section(tmp_path):
    out = tmp_path / "run"
    cfg = micro(**{"train.learning_rate": 1e6})
    for _ in range(2):       # nothing completed: the retry starts over and fails the same way
        with pytest.raises(TrainingDivergedError, match=r"^training diverged in epoch 0 .*train\.learning_rate"):
            bp.run(cfg, out)
        assert not (out / "state.json").exists() and not list((out / "checkpoints").iterdir())
