"""The run directory: resolved config, tidy metrics, checkpoints, resume (DESIGN.md §Run directory).

Layout::

    config.toml              the resolved config and the package version
    state.json               completed stages (written last, atomically)
    metrics.parquet          one row per replica × iteration × stage × metric (× layer)
    data.safetensors         what the run knows of its data: image geometry, sizes, the
                             distinct training patterns and their counts (small layers only)
    checkpoints/*.safetensors  the trained population and the latest completed stage
    figures/, report.md      written by ``bmprune report``

    .bmprune.lock, .bmprune.owner   the lock of a run in progress and its holder (PID, host)

Every write goes to a temporary file first and is renamed into place, so a killed run leaves
either the old or the new file, never half of one. A stage counts as done only once it is in
``state.json``; metrics rows of stages not listed there are dropped on resume. Rows of stages
that *are* listed are never dropped: :class:`RunDir` cross-checks state, metrics and the latest
checkpoint before it writes anything and refuses a directory where they disagree, with a
:class:`~bmprune.errors.RunDirError` that names the fix. A failed write (disk full, permission
lost) is a RunDirError too, and leaves the directory resumable from its last completed stage.
"""

from __future__ import annotations

import json
import os
import re
import socket
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w
import torch

from .. import __version__
from .._io import atomic_write
from ..errors import CheckpointError, ConfigError, RunDirError
from .config import StudyConfig, load_config
from .schedule import build_schedule

_PROSE = {"description", "expected_time"}
METRIC_COLUMNS = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value"]


#: Distinct training patterns are recorded for the report only when the visible layer is this small.
PATTERN_UNITS = 30


def stage_key(iteration: int, stage: str) -> str:
    """The key of a stage in ``state.json``: ``"iteration:stage"``."""
    return f"{iteration}:{stage}"


def completed_rows(metrics: pd.DataFrame, completed) -> pd.DataFrame:
    """The rows of completed stages (``completed``: the "iteration:stage" keys of state.json) and the baselines.

    The one place that decides which metrics rows count: rows of a stage that was being
    computed when a run was interrupted are not in state.json and are dropped.
    """
    keys = metrics["iteration"].astype(str) + ":" + metrics["stage"].astype(str)
    keep = keys.isin(set(completed)) | (metrics["stage"] == "baseline")
    return metrics[keep].reset_index(drop=True)


@dataclass(frozen=True)
class DataSummary:
    """What a run recorded about its data (``data.safetensors``), so the report needs no data files.

    Attributes
    ----------
    source : str
        The config's data source.
    n_train, n_test, n_visible : int
        Sizes (n_test 0 when there is no test set).
    image_shape : tuple (h, w) or None
    pixel_mask : bool array (h, w) or None
        Which pixels of the image box the visible units are (circular patches), row-major.
    pattern_codes, pattern_counts : int64 arrays (K,) or None
        The distinct training patterns (bit i = unit i) and their counts, for small visible
        layers (≤ :data:`PATTERN_UNITS` units).
    """

    source: str
    n_train: int
    n_test: int
    n_visible: int
    image_shape: tuple[int, int] | None = None
    pixel_mask: np.ndarray | None = None
    pattern_codes: np.ndarray | None = None
    pattern_counts: np.ndarray | None = None

    @property
    def image_mask(self) -> np.ndarray | None:
        """The (h, w) bool map of where the visible units lie, or None when the data are not images."""
        if self.image_shape is None:
            return None
        return self.pixel_mask if self.pixel_mask is not None else np.ones(self.image_shape, bool)

    def patterns(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The distinct training patterns (K, n_visible) uint8 and their probabilities (K,), or None."""
        if self.pattern_codes is None:
            return None
        bits = (self.pattern_codes[:, None] >> np.arange(self.n_visible)) & 1
        return bits.astype(np.uint8), self.pattern_counts / self.pattern_counts.sum()


class RunDir:
    """A run directory, created fresh or reopened for resuming.

    Opening validates everything before anything is written: the location (a new or empty
    directory, or a run), ``config.toml`` against ``config``, ``state.json`` (valid JSON of
    the right types, stage keys of this study's schedule, completed stages a prefix of the
    schedule), and, when there is work left, that ``metrics.parquet`` holds rows of every
    replica for every completed stage and that the latest checkpoint is the last completed
    stage's, of this population, and loads (:func:`~bmprune.models.io.load_model`). Rows of a
    completed stage are never silently dropped: a run missing them is refused (they cannot be
    recomputed once the stage's checkpoint has been replaced by later ones).

    A run with work left is then locked (``.bmprune.lock``, a :mod:`filelock` lock that the
    operating system releases when the process ends, and ``.bmprune.owner`` with the holder's
    PID), so a second process gets a :class:`~bmprune.errors.RunDirError` naming it; the lock
    is held until :meth:`close`. A finished run with nothing left to do is opened without a
    lock and without writing (it may be read-only).

    A directory of the same config is reopened to resume; one whose config differs only by
    fewer pruning iterations is extended (its config is rewritten with the new count and it
    is no longer marked finished), so ``bmprune run … --iterations 10`` continues a finished
    5-iteration run.

    Parameters
    ----------
    path : path
        The run directory (created when missing).
    config : StudyConfig
        The study (already validated).

    Attributes
    ----------
    writable : bool
        Whether this process holds the lock and may write (False: nothing left to do).

    Raises
    ------
    ConfigError
        The directory holds a run of a different config, or of more iterations than asked
        for (the message lists the differences).
    RunDirError
        ``path`` is a file, a non-empty directory without a run, a run with a damaged
        config.toml, state.json, metrics.parquet or latest checkpoint (the message names the
        fix), in use by another process, or not writable while work is left.
    """

    def __init__(self, path: str | os.PathLike, config: StudyConfig) -> None:
        self.path = Path(path)
        self.config = config
        self.steps = [s.key for s in build_schedule(config)]
        self.writable = False
        self._lock = None
        self._model = None
        existing = self._inspect_location()
        extended = existing and self._compare_config()
        self.state = self._read_state() if existing else _new_state()
        pending = extended or not (self.state.get("finished") and all(k in self.state["completed"] for k in self.steps))
        # a resume also loads its checkpoint (every tensor validated) before anything is written
        self._check_consistent(self.state, load=pending)
        if not pending:
            return
        try:
            self._acquire()
            if existing:       # another process may have completed stages between the checks and the lock
                state = self._read_state()
                if state != self.state:
                    self._model = None
                    self._check_consistent(state, load=True)
                    self.state = state
            self._remove_stale_temporaries()
            if not existing or extended:
                body = {"bmprune_version": __version__, **config.model_dump(mode="json", exclude_none=True)}
                self._write("config.toml", tomli_w.dumps(body).encode())
            try:
                (self.path / "checkpoints").mkdir(exist_ok=True)
            except OSError as exc:
                raise self._write_error(self.path / "checkpoints", exc) from exc
            if extended and self.state.get("finished"):
                # more iterations to run: the run is no longer finished (stages done stay done)
                self.state["finished"] = False
                self._write_state()
        except BaseException:
            self.close()
            raise

    # --- opening ------------------------------------------------------------------------
    def _damaged(self, what: str, fix: str | None = None) -> RunDirError:
        return RunDirError(f"{self.path} is a damaged run directory: {what}; "
                           f"{fix or 'restore it from a backup, or delete the directory to start over'}")

    def _inspect_location(self) -> bool:
        """Whether ``path`` holds a run; RunDirError for a file or a directory that is not a run."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunDirError(f"{p} is a file, not a run directory: choose another --out")
        if not p.exists():
            return False
        try:
            entries = list(p.iterdir())
        except OSError as exc:
            raise RunDirError(f"cannot read {p}: {exc.strerror or exc}") from exc
        names = {e.name for e in entries}
        if "config.toml" in names:
            return True
        if "state.json" in names:
            raise self._damaged("it has state.json but no config.toml", "restore config.toml from a backup, "
                                "or delete the directory to start over")
        foreign = [e.name for e in entries if not _ignorable(e)]
        if foreign:
            shown = ", ".join(sorted(foreign)[:5]) + (", …" if len(foreign) > 5 else "")
            raise RunDirError(f"{p} is a non-empty directory without a bmprune run (it holds {shown}): choose a new "
                              "or empty directory for --out")
        return False

    def _compare_config(self) -> bool:
        """Whether the run's config is extended by ``self.config``; ConfigError for a different one."""
        cfg_path = self.path / "config.toml"
        try:
            old = load_config(cfg_path)
        except ConfigError as exc:
            raise self._damaged(f"config.toml cannot be read as a study config ({_one_line(str(exc))})",
                                "restore config.toml from a backup, or delete the directory to start over") from None
        # prose (description, expected time) may be reworded between versions; numbers may not
        a, b = (c.model_dump(mode="json", exclude=_PROSE) for c in (old, self.config))
        extended = _extends(a, b)
        if a != b and not extended:
            diff = _differences(a, b)
            raise ConfigError(
                f"{self.path} holds a run of a different config; use another --out or the same "
                "config to resume (a run may be extended by more pruning iterations, never "
                "shortened). Differences:\n" + "\n".join(f"  {d}" for d in diff[:20]))
        return extended

    def _read_state(self) -> dict[str, Any]:
        """``state.json`` validated against the schedule (a fresh state when there is none)."""
        p = self.path / "state.json"
        if not p.exists():
            return _new_state()
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise RunDirError(f"cannot read {p}: {exc.strerror or exc}") from exc
        fix = (f"restore state.json from a backup, or delete the directory {self.path} to start over")
        try:
            state = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise self._damaged(f"state.json is not valid JSON ({exc})", fix) from None
        problem = _state_problem(state, self.steps)
        if problem:
            raise self._damaged(f"state.json {problem}", fix)
        state.setdefault("seconds", {})
        return state

    def _check_consistent(self, state: dict, *, load: bool) -> None:
        """The completed stages' metrics rows and (``load``) the latest checkpoint, cross-checked."""
        completed = state["completed"]
        stages = [k for k in self.steps if k in completed]
        if not completed:
            return
        metrics = self._read_metrics()
        fix = ("restore metrics.parquet from a backup, or delete the directory to start over (metrics of "
               "completed stages cannot be recomputed once later stages replaced their checkpoints)")
        if metrics is None:
            raise self._damaged(f"metrics.parquet is missing but state.json lists {len(completed)} completed "
                                f"stages ({', '.join(completed[:4])}{', …' if len(completed) > 4 else ''})", fix)
        R = len(self.config.pruning.criteria) * self.config.seeds
        keys = metrics["iteration"].astype(str) + ":" + metrics["stage"].astype(str)
        present = metrics.groupby(keys)["replica"].agg(lambda r: set(r.tolist()))
        missing = [k for k in stages if present.get(k, set()) != set(range(R))]
        if BASELINE in completed and BASELINE not in present:
            missing.insert(0, BASELINE)
        if missing:
            raise self._damaged(f"metrics.parquet lacks the rows of completed stages {', '.join(missing)} "
                                f"(every stage has rows for replicas 0…{R - 1})", fix)
        if not stages or not load:
            return
        last = stages[-1]
        rel = state.get("checkpoint")
        want = str(self.checkpoint_path(*_split_key(last)).relative_to(self.path))
        ckpt_fix = ("restore it from a backup, or delete the directory to start over (or remove the stages "
                    "after the one whose checkpoint is kept, with their rows, from state.json)")
        if rel != want:
            raise self._damaged(f"state.json names the checkpoint {rel!r}, not the last completed stage's {want!r}",
                                "restore state.json from a backup, or delete the directory to start over")
        from ..models.io import load_model, read_metadata

        try:
            meta = read_metadata(self.path / rel)
            _check_checkpoint_meta(meta, last, self.config)
            self._model = load_model(self.path / rel)
        except CheckpointError as exc:
            raise self._damaged(f"the checkpoint of stage {last} cannot be resumed from: {_one_line(str(exc))}",
                                ckpt_fix) from None

    def _acquire(self) -> None:
        """Create the directory, take the lock and record the owner; RunDirError when held or unwritable."""
        from filelock import FileLock, Timeout

        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create the run directory {self.path}: {exc.strerror or exc}") from exc
        try:
            lock = FileLock(str(self.path / LOCK_FILE), timeout=0)
            lock.acquire()
        except Timeout:
            raise RunDirError(f"{self.path} is in use by {_owner(self.path)}: wait for it to finish, or stop it "
                              "(the lock is released when that process ends)") from None
        except OSError as exc:
            raise RunDirError(f"{self.path} is not writable ({exc.strerror or exc}) and the run has stages left "
                              "to compute: copy the directory elsewhere and resume there") from exc
        self._lock = lock
        self.writable = True
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now().isoformat(timespec="seconds")}
        self._write(OWNER_FILE, json.dumps(owner).encode())

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of writes cut short (a killed run) are removed; finished files are untouched."""
        for folder in (self.path, self.path / "checkpoints"):
            for p in folder.glob("*.tmp") if folder.is_dir() else ():
                if _TEMPORARY.fullmatch(p.name):
                    p.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the lock (nothing else to do for a directory opened without one). Idempotent."""
        lock, self._lock = self._lock, None
        self.writable = False
        self._model = None
        if lock is not None:
            try:
                (self.path / OWNER_FILE).unlink(missing_ok=True)
            except OSError:
                pass
            lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def resume_model(self, device=None):
        """The population of the last completed stage (validated when the directory was opened), on
        ``device``; None when no stage is completed. Handed out once."""
        model, self._model = self._model, None
        if model is None:
            return None
        return model if device is None else model.to(device)

    # --- writing --------------------------------------------------------------------------
    def _write_error(self, path: Path, exc: OSError) -> RunDirError:
        return RunDirError(f"cannot write {path}: {exc.strerror or exc} (disk full or permissions?); the run "
                           "directory keeps its completed stages and resumes once the cause is fixed")

    def _write(self, name: str, data) -> None:
        if not self.writable:
            raise RunDirError(f"{self.path} was opened without a lock (nothing left to do): cannot write {name}")
        try:
            atomic_write(self.path / name, data)
        except OSError as exc:
            raise self._write_error(self.path / name, exc) from exc

    def _write_state(self) -> None:
        self._write("state.json", json.dumps(self.state, indent=1).encode())

    # --- state ------------------------------------------------------------------------
    def is_done(self, iteration: int, stage: str) -> bool:
        """Whether the stage is recorded as completed in ``state.json``."""
        return stage_key(iteration, stage) in self.state["completed"]

    @property
    def finished(self) -> bool:
        """Whether every stage of the run completed."""
        return bool(self.state.get("finished"))

    def complete(self, iteration: int, stage: str, rows: list[dict], checkpoint: str | None,
                 seconds: float, extra: dict | None = None, *, keep_previous: bool = True) -> None:
        """Record a finished stage: metrics first, then the state that makes it count.

        ``keep_previous=False`` deletes the previous stage's checkpoint afterwards (never the
        trained population's). Raises RunDirError when a file cannot be written; the stage
        then does not count and the directory resumes at it.
        """
        key = stage_key(iteration, stage)
        metrics = self.metrics(completed_only=True)
        new = pd.DataFrame(rows, columns=METRIC_COLUMNS)
        metrics = pd.concat([metrics, new], ignore_index=True) if len(metrics) else new
        self._write_metrics(metrics)
        previous = self.state.get("checkpoint")
        state = {**self.state, "completed": [*self.state["completed"], key],
                 "seconds": {**self.state["seconds"], key: round(seconds, 3)}}
        if checkpoint is not None:
            state["checkpoint"] = checkpoint
        state.update(extra or {})
        self._write("state.json", json.dumps(state, indent=1).encode())
        self.state = state
        if previous and previous != checkpoint:
            # only the latest stage's sample statistics serve a resume; older checkpoints go unless kept
            old = [self.samples_path(self.path / previous)]
            if not keep_previous and not previous.endswith("iter00-trained.safetensors"):
                old.append(self.path / previous)
            for path in old:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:   # the stage is recorded; an old file left behind costs only disk
                    warnings.warn(f"could not delete {path}: {exc}", stacklevel=2)

    def mark_finished(self, **info) -> None:
        """Record that the run completed (plus ``info``), atomically. Raises RunDirError."""
        state = {**self.state, "finished": True, **info}
        self._write("state.json", json.dumps(state, indent=1).encode())
        self.state = state

    # --- metrics ----------------------------------------------------------------------
    def _read_metrics(self) -> pd.DataFrame | None:
        p = self.path / "metrics.parquet"
        if not p.exists():
            return None
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises its own types for truncated or garbled files
            raise self._damaged(f"metrics.parquet is unreadable ({_one_line(str(exc))})",
                                "restore metrics.parquet from a backup, or delete the directory to start over") from None
        if list(df.columns) != METRIC_COLUMNS:
            raise self._damaged(f"metrics.parquet has columns {list(df.columns)}, not {METRIC_COLUMNS}",
                                "restore metrics.parquet from a backup, or delete the directory to start over")
        return df

    def metrics(self, completed_only: bool = True) -> pd.DataFrame:
        """The metrics table (empty with the right columns when none yet).

        Raises RunDirError for an unreadable table.
        """
        df = self._read_metrics()
        if df is None:
            return pd.DataFrame(columns=METRIC_COLUMNS)
        return completed_rows(df, self.state["completed"]) if completed_only else df

    def _write_metrics(self, df: pd.DataFrame) -> None:
        df = df.astype({"seed": "int64", "replica": "int64", "iteration": "int64", "layer": "int64",
                        "value": "float64", "criterion": "string", "stage": "string", "metric": "string"})
        self._write("metrics.parquet", lambda tmp: df.to_parquet(tmp, index=False))

    # --- data summary -------------------------------------------------------------------
    def write_data_summary(self, source: str, train, test) -> None:
        """Record the data's geometry, sizes and (small layers) distinct patterns in data.safetensors."""
        from safetensors.numpy import save_file
        from ..evaluation.patterns import pattern_codes

        tensors: dict[str, np.ndarray] = {}
        if train.pixel_mask is not None:
            tensors["pixel_mask"] = np.ascontiguousarray(train.pixel_mask, dtype=bool)
        if train.n_visible <= PATTERN_UNITS:
            codes = pattern_codes(torch.from_numpy(train.x)).numpy()
            uniq, counts = np.unique(codes, return_counts=True)
            tensors["pattern_codes"], tensors["pattern_counts"] = uniq.astype(np.int64), counts.astype(np.int64)
        meta = {"source": source, "n_train": str(len(train)), "n_test": str(0 if test is None else len(test)),
                "n_visible": str(train.n_visible),
                "image_shape": json.dumps(list(train.image_shape) if train.image_shape else None)}
        self._write("data.safetensors", lambda tmp: save_file(tensors, tmp, metadata=meta))

    def data_summary(self) -> DataSummary | None:
        """The recorded :class:`DataSummary`, or None for a run written before it was recorded."""
        return read_data_summary(self.path)

    @staticmethod
    def samples_path(checkpoint: Path) -> Path:
        """Where the statistics of a stage's model samples are kept, beside its checkpoint."""
        return checkpoint.with_name(checkpoint.name.replace(".safetensors", ".samples.safetensors"))

    def save_samples(self, iteration: int, stage: str, tensors: dict) -> None:
        """Keep a stage's sample statistics (named tensors) beside its checkpoint. Raises RunDirError."""
        from safetensors.torch import save_file
        path = self.samples_path(self.checkpoint_path(iteration, stage))
        self._write(str(path.relative_to(self.path)), lambda tmp: save_file(tensors, tmp))

    def checkpoint_path(self, iteration: int, stage: str) -> Path:
        """Where the checkpoint of a stage is written."""
        return self.path / "checkpoints" / f"iter{iteration:02d}-{stage}.safetensors"


#: The lock file of a run directory and the file naming its holder (PID, host, since when).
LOCK_FILE = ".bmprune.lock"
OWNER_FILE = ".bmprune.owner"
#: The key of the metrics' baselines in state.json.
BASELINE = stage_key(-1, "baseline")
#: Temporary files of bmprune's atomic writes (``<name>.<random>.tmp``).
_TEMPORARY = re.compile(r"(config\.toml|state\.json|metrics\.parquet|data\.safetensors|\.bmprune\.owner|"
                        r"iter\d+-\w+(\.samples)?\.safetensors)\.[^/]+\.tmp")


def _new_state() -> dict[str, Any]:
    return {"completed": [], "checkpoint": None, "seconds": {}}


def _split_key(key: str) -> tuple[int, str]:
    it, stage = key.split(":", 1)
    return int(it), stage


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _ignorable(entry: Path) -> bool:
    """Entries a run leaves before its first file (lock, owner, temporaries, empty checkpoints/)."""
    if entry.name in (LOCK_FILE, OWNER_FILE) or _TEMPORARY.fullmatch(entry.name):
        return True
    return entry.name == "checkpoints" and entry.is_dir() and not any(entry.iterdir())


def _state_problem(state: Any, steps: list[str]) -> str | None:
    """What is wrong with a parsed state.json (None: nothing)."""
    if not isinstance(state, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
                type(None): "null"}.get(type(state), type(state).__name__)
        return f"is {kind}, not a JSON object"
    completed = state.get("completed")
    if not isinstance(completed, list) or not all(isinstance(k, str) for k in completed):
        return f"has 'completed' = {completed!r}, not a list of stage keys"
    if len(set(completed)) != len(completed):
        return "lists a completed stage twice"
    unknown = [k for k in completed if k not in steps and k != BASELINE]
    if unknown:
        return f"lists stages {unknown} that are not in this study's schedule ({steps[0]} … {steps[-1]})"
    done = [k for k in completed if k != BASELINE]
    if set(done) != set(steps[:len(done)]):
        return f"lists completed stages {done} with a gap (stages complete in schedule order: {steps[:len(done)]})"
    ckpt = state.get("checkpoint")
    if ckpt is not None and (not isinstance(ckpt, str) or not re.fullmatch(r"checkpoints/iter\d+-\w+\.safetensors", ckpt)):
        return f"has 'checkpoint' = {ckpt!r}, not a file under checkpoints/"
    if done and ckpt is None:
        return "lists completed stages but no checkpoint"
    seconds = state.get("seconds", {})
    if not isinstance(seconds, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                for v in seconds.values()):
        return f"has 'seconds' = {seconds!r}, not a map of stage keys to numbers"
    if "finished" in state and not isinstance(state["finished"], bool):
        return f"has 'finished' = {state['finished']!r}, not true or false"
    return None


def _check_checkpoint_meta(meta: dict[str, str], key: str, config: StudyConfig) -> None:
    """CheckpointError unless the checkpoint's metadata is stage ``key`` of this study's population."""
    S, crit = config.seeds, config.pruning.criteria
    want = {"iteration": str(_split_key(key)[0]), "stage": _split_key(key)[1],
            "criteria": ",".join(c for c in crit for _ in range(S)),
            "seeds": ",".join(str(config.seed + s) for _ in crit for s in range(S))}
    wrong = {k: meta.get(k) for k, v in want.items() if meta.get(k) != v}
    if wrong:
        raise CheckpointError(f"its metadata {wrong} is not that of stage {key} of this study")


def _owner(path: Path) -> str:
    """"PID 123 on host (since …)" from the owner file, or "another process"."""
    try:
        o = json.loads((path / OWNER_FILE).read_text())
        return f"PID {int(o['pid'])} on {o.get('host', '?')} (since {o.get('since', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def run_dir_writable(path: str | os.PathLike) -> bool:
    """Whether a file can be created in ``path`` (tried, then removed)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _extends(old: dict, new: dict) -> bool:
    """Whether ``new`` only raises the number of pruning iterations of ``old``.

    Safe to continue: every replica's random stream at a stage is keyed by (seed, criterion,
    iteration, stage) alone (:func:`bmprune.experiments.runner.replica_streams`), so
    iterations 1…n of a run extended to m > n are the same as those of a run configured with
    m from the start.
    """
    po, pn = old.get("pruning", {}), new.get("pruning", {})
    if pn.get("iterations", 0) <= po.get("iterations", 0):
        return False
    strip = lambda c: {**c, "pruning": {k: v for k, v in c["pruning"].items() if k != "iterations"}}  # noqa: E731
    return strip(old) == strip(new)


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} (existing) vs {vb!r} (requested)")
    return out


def read_data_summary(run_dir) -> DataSummary | None:
    """The :class:`DataSummary` in ``run_dir/data.safetensors`` (None when absent or unreadable)."""
    from safetensors import safe_open

    p = Path(run_dir) / "data.safetensors"
    if not p.is_file():
        return None
    try:
        with safe_open(str(p), framework="numpy") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in f.keys()}
        shape = json.loads(meta.get("image_shape", "null"))
        return DataSummary(source=meta["source"], n_train=int(meta["n_train"]), n_test=int(meta["n_test"]),
                           n_visible=int(meta["n_visible"]), image_shape=tuple(shape) if shape else None,
                           pixel_mask=t.get("pixel_mask"), pattern_codes=t.get("pattern_codes"),
                           pattern_counts=t.get("pattern_counts"))
    except Exception:  # a damaged summary only costs the report its data-dependent panels
        return None


__all__ = ["DataSummary", "LOCK_FILE", "OWNER_FILE", "RunDir", "METRIC_COLUMNS", "completed_rows", "read_data_summary",
           "run_dir_writable", "stage_key"]
