"""kill -9 at any point, then resume: the same numbers as an uninterrupted run (issue 13).

A killed run leaves its lock to the operating system and at most a temporary file of the
write it was doing; resuming removes the temporary file, recomputes the stage that was cut
short and nothing else. The fast test kills at two write points (a stage's metrics written
but not yet renamed into place, a state.json likewise); the slow one at random write points
and at random times, several times on the same directory.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from reliability.runs import MICRO, micro, sorted_metrics

import bmprune as bp
from bmprune.experiments import load_config
from bmprune.experiments.rundir import OWNER_FILE

KILLER = """
import os, signal, sys
import torch
torch.set_num_threads(1)
import bmprune as bp
config, out, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
if at > 0:      # SIGKILL instead of the at-th rename of an atomic write (its temporary file is left)
    real, calls = os.replace, [0]
    def replace(src, dst):
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst)
    os.replace = replace
print("ready", flush=True)
def progress(event, **info):
    if event == "stage":
        print("stage", info["index"], flush=True)
bp.run(config, out, progress=progress)
print("finished", flush=True)
"""
#: Atomic writes of a fresh MICRO run: owner, config, data summary, 5 stages × (checkpoint,
#: metrics, state), the finished state.
MICRO_WRITES = 19


def _toml(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / f"{cfg['name']}.toml"
    p.write_text(tomli_w.dumps(load_config(cfg).model_dump(mode="json", exclude_none=True)))
    return p


def _start(config: Path, out: Path, at: int = 0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", KILLER, str(config), str(out), str(at)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _resume_and_compare(config: Path, out: Path, reference: pd.DataFrame) -> None:
    res = bp.run(str(config), out)
    pd.testing.assert_frame_equal(sorted_metrics(res.metrics), sorted_metrics(reference))
    assert json.loads((out / "state.json").read_text())["finished"]
    assert not list(out.rglob("*.tmp")) and not (out / OWNER_FILE).exists()


def test_kill_at_two_write_points_then_resume_gives_identical_metrics(tmp_path, reference):
    config = _toml(tmp_path, MICRO)
    points = {5: "the trained stage's metrics", 9: "1:pruned's state.json"}
    procs = {at: _start(config, tmp_path / f"killed-{at}", at) for at in points}   # in parallel
    for at, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (points[at], err)
        assert list((tmp_path / f"killed-{at}").rglob("*.tmp")), points[at]    # cut short mid-write
    for at in points:
        _resume_and_compare(config, tmp_path / f"killed-{at}", reference)


@pytest.mark.slow
def test_kill_at_random_points_then_resume_gives_identical_metrics(tmp_path):
    """≥ 5 random kill points: write points in fresh directories, then random times on one
    directory (each kill lands in whatever the resumed run is doing). Seed: $BMPRUNE_KILL_SEED."""
    seed = int(os.environ.get("BMPRUNE_KILL_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    note = f"BMPRUNE_KILL_SEED={seed}"

    config = _toml(tmp_path, MICRO)
    reference = bp.run(MICRO, tmp_path / "reference").metrics
    write_points = rng.sample(range(1, MICRO_WRITES + 1), 4)
    for at in write_points:
        proc = _start(config, tmp_path / f"at-{at}", at)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (note, at, err)
        _resume_and_compare(config, tmp_path / f"at-{at}", reference)

    # a longer study, killed at random times again and again on the same directory
    big = micro(name="longer", **{"data.n_patches": 3000, "model.hidden": [8], "sampling.n_samples": 3000,
                                  "pruning.iterations": 3, "pruning.criteria": ["variance_fi", "heuristic_fi",
                                                                                "random_weights"], "seeds": 2})
    config = _toml(tmp_path, big)
    reference = bp.run(big, tmp_path / "longer-reference").metrics
    out, kills, landed, n_stages = tmp_path / "longer", 0, [], 7
    while kills < 4:
        state = out / "state.json"
        done = len(json.loads(state.read_text())["completed"]) if state.exists() else 0
        if done == n_stages:       # killed while marking the run finished: check it, then start afresh
            _resume_and_compare(config, out, reference)
            shutil.rmtree(out)
            continue
        target, delay = rng.randrange(done, n_stages), rng.uniform(0, 0.2)   # a random moment of a random stage
        proc = _start(config, out)
        for line in proc.stdout:
            if line.split() == ["stage", str(target)]:
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
        _, err = proc.communicate(timeout=300)
        if proc.returncode != -signal.SIGKILL:    # the run ended before the kill: start over afresh
            assert proc.returncode == 0, (note, err)
            shutil.rmtree(out)
            continue
        kills += 1
        landed.append(f"stage {target} + {delay:.2f} s")
    _resume_and_compare(config, out, reference)
    print(f"{note}: write points {write_points}; kills at {', '.join(landed)}")
