"""Sweeps: grids of pruning studies, one Dask task and one run directory per point (issue 17).

A sweep file (TOML) names a base study, overrides applied to every point, and a grid whose
cartesian product gives the points (DESIGN.md, STYLE.md §18)::

    base = "demo"                      # a preset name, or a config path (relative to this file)
    [set]                              # overrides applied to every point
    seeds = 1
    "pruning.iterations" = 1
    [grid]                             # one point per combination of these values
    "pruning.percent" = [30.0, 50.0]
    seed = [0, 1]

:func:`load_sweep` validates every point's config before anything runs. :func:`run_sweep`
runs each point as one Dask task (a ``distributed.LocalCluster`` of single-threaded worker
processes by default, or any existing cluster) that calls :func:`bmprune.run` on the point's
own run directory, so a retried task resumes instead of starting over. :func:`merge` joins
every point's metrics into one table.

A sweep directory::

    sweep.toml          the resolved sweep (base, set, grid, the points); a re-run checks it
    <point>/            an ordinary run directory per point (config.toml, state.json, ...),
                        named from the point's grid values, e.g. ``pruning.percent=30.0__seed=0``
    metrics.parquet     every point's metrics + a ``point`` column + one column per grid key
    figures/sweep_*.png, report.md   the summary of ``bmprune report DIR`` (bmprune.report.sweep)

Dask (``distributed``) is imported only by :func:`run_sweep`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import os
import queue
import re
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import __version__
from ..errors import ConfigError
from .rundir import completed_rows
from .config import StudyConfig, load_config, set_dotted
from .presets import PRESETS, get_preset

#: The resolved copy of the sweep kept in a sweep directory.
SWEEP_FILE = "sweep.toml"
#: The merged metrics table of a sweep directory.
METRICS_FILE = "metrics.parquet"
#: Columns of a run's metrics table (bmprune.experiments.rundir); the merged table keeps them.
RUN_COLUMNS = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value"]
#: Worker deaths a point survives before it counts as failed (Dask's ``allowed-failures``, set
#: on the scheduler of the local cluster; an existing scheduler keeps its own setting).
ALLOWED_FAILURES = 3
#: Dask settings of the local cluster. Worker deaths a point survives; no glibc trim threshold
#: in the workers' environment (Dask sets ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off
#: glibc's adaptive mmap threshold: torch's many short-lived buffers then cost ~50 % more page
#: faults and ~15 % more CPU time per point); no statistical profiler (nobody reads it, and it
#: samples the point's thread every 10 ms).
LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}
#: Longest point directory name before the readable part is cut and a hash appended.
NAME_MAX = 96
# config text that may be reworded between versions without changing the study (as RunDir)
_PROSE = {"description", "expected_time"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]+")

Progress = Callable[..., None]
log = logging.getLogger(__name__)


# --- the sweep file --------------------------------------------------------------------
def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: TOML's ``pruning.percent = …`` (unquoted) is a nested table."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class _SweepFile(BaseModel):
    """The keys of a sweep file; ``points`` and ``bmprune_version`` appear in a sweep directory's copy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(..., min_length=1, description="a preset name or a config path")
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(..., min_length=1)
    points: list[dict[str, Any]] | None = None
    bmprune_version: str | None = None

    @field_validator("overrides", mode="before")
    @classmethod
    def _flat_set(cls, v):
        return _flatten(v) if isinstance(v, Mapping) else v

    @field_validator("grid", mode="before")
    @classmethod
    def _flat_grid(cls, v):
        return _flatten(v) if isinstance(v, Mapping) else v

    @field_validator("grid")
    @classmethod
    def _values(cls, grid):
        for key, values in grid.items():
            seen: dict[str, Any] = {}
            for v in values:
                c = _canonical(v)
                if c in seen:
                    raise ValueError(f"grid key {key!r} repeats the value {v!r}")
                seen[c] = v
        return dict(sorted(grid.items()))


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep.

    Attributes
    ----------
    name : str
        The point's id and the name of its run directory, built from its grid values
        (``pruning.percent=30.0__seed=0``; see :func:`point_name`).
    values : dict
        Grid key → value of this point (keys in the grid's sorted order).
    config : StudyConfig
        The validated config: base, then ``[set]``, then the grid values.
    fingerprint : str
        A hash of the config without its prose (``description``, ``expected_time``): two
        points, or a point and an existing run directory, are the same study iff it is equal.
    """

    name: str
    values: dict[str, Any]
    config: StudyConfig
    fingerprint: str


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: its base, overrides, grid and every point's config.

    Attributes
    ----------
    base : str
        A preset name, or the absolute path of the base config file.
    overrides : dict
        The ``[set]`` table as dotted keys, applied to every point.
    grid : dict
        Grid key → list of values, keys sorted.
    points : tuple of SweepPoint
        The cartesian product of the grid in scikit-learn ``ParameterGrid`` order: keys
        sorted, the last key varying fastest.
    path : Path or None
        The sweep file it was read from.
    """

    base: str
    overrides: dict[str, Any]
    grid: dict[str, list[Any]]
    points: tuple[SweepPoint, ...]
    path: Path | None = None

    @property
    def keys(self) -> list[str]:
        """The grid keys, sorted (the order of the point names and of the merged table's columns)."""
        return list(self.grid)

    def __len__(self) -> int:
        return len(self.points)

    def point(self, name: str) -> SweepPoint:
        """The point called ``name``. Raises KeyError when there is none."""
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The body of a sweep directory's ``sweep.toml``: loadable again by :func:`load_sweep`."""
        return {"bmprune_version": __version__, "base": self.base, "set": dict(self.overrides),
                "grid": dict(self.grid),
                "points": [{"name": p.name, "config_sha256": p.fingerprint, "values": dict(p.values)}
                           for p in self.points]}


def _format_value(value: Any) -> str:
    """A grid value as text for a name or a table: 30.0, 1e-05, true, 10.0,25.0, photo_patches."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, list):
        return ",".join(_format_value(v) for v in value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_format_value(v)}" for k, v in value.items())
    return str(value)


def point_name(values: Mapping[str, Any], *, force_hash: bool = False) -> str:
    """The directory name of a point: ``key=value`` pairs joined by ``__``, in key order.

    Characters other than letters, digits and ``. _ , = + -`` become ``_``. When that changed
    the text, or it is longer than :data:`NAME_MAX`, the name ends in ``__`` + 8 hex digits of
    a hash of the values, so different points never share a name.

    >>> point_name({"pruning.percent": 30.0, "seed": 0})
    'pruning.percent=30.0__seed=0'
    """
    readable = "__".join(f"{k}={_format_value(v)}" for k, v in values.items())
    safe = _UNSAFE.sub("_", readable).lstrip(".-")
    if safe == readable and len(safe) <= NAME_MAX and not force_hash:
        return safe
    digest = hashlib.sha1(_canonical(dict(values)).encode()).hexdigest()[:8]
    return f"{safe[:NAME_MAX - 10].rstrip('_')}__{digest}"


def _fingerprint(cfg: StudyConfig) -> str:
    body = cfg.model_dump(mode="json", exclude=_PROSE)
    return hashlib.sha256(_canonical(body).encode()).hexdigest()[:16]


def _check_keys(overrides: Mapping[str, Any], grid: Mapping[str, Any]) -> None:
    keys = [("set", k) for k in overrides] + [("grid", k) for k in grid]
    for (ta, a), (tb, b) in itertools.combinations(keys, 2):
        if a == b or b.startswith(a + ".") or a.startswith(b + "."):
            raise ConfigError(f"sweep: [{ta}] {a!r} and [{tb}] {b!r} address the same config field")


def _one_line(message: str) -> str:
    """A multi-line error message (a header ending in ':' and indented items) on one line."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    if not lines:
        return ""
    out = lines[0]
    for ln in lines[1:]:
        out += (" " if out.endswith(":") else "; ") + ln
    return out


def _resolve_base(base: str, root: Path) -> tuple[str, StudyConfig]:
    if base in PRESETS:
        return base, get_preset(base)
    path = Path(base).expanduser()
    if not path.is_absolute():
        path = root / path
    if path.is_dir() and (path / "config.toml").is_file():   # a run directory: its config
        path = path / "config.toml"
    if not path.is_file():
        raise ConfigError(f"sweep base {base!r} is neither a preset ({', '.join(PRESETS)}) nor a config file "
                          f"(looked for {path})")
    path = path.resolve()
    return str(path), load_config(path)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def load_sweep(source: str | os.PathLike | Mapping[str, Any], *, base_dir: str | os.PathLike | None = None) -> Sweep:
    """Read and validate a sweep, every point's config included (issue 17, item 1).

    Parameters
    ----------
    source : path or mapping
        A sweep file (TOML), a sweep directory (its ``sweep.toml`` is read), or the sweep as a
        dict. Keys: ``base`` (a preset name or a config path; a relative path is resolved
        against the sweep file's folder), ``set`` (a table of overrides applied to every
        point) and ``grid`` (a table of lists; the points are their cartesian product). Keys
        of ``set`` and ``grid`` are config fields, dotted for nested ones
        (``"pruning.percent"``, ``seed``, ``seeds``, ``pretrain.0.epochs``); TOML's unquoted
        dotted keys and sub-tables (``[grid.pruning]``) mean the same.
    base_dir : path, optional
        Where a relative ``base`` of a dict is resolved (default: the current directory).

    Returns
    -------
    Sweep
        Points in scikit-learn ``ParameterGrid`` order (grid keys sorted, the last key
        varying fastest), each with its name and validated :class:`StudyConfig`.

    Raises
    ------
    ConfigError
        The file is missing, unreadable, not UTF-8 or not TOML; a top-level key other than
        ``base``/``set``/``grid``; a grid value that is not a non-empty list, or repeats a
        value; ``set`` and ``grid`` addressing the same field; an unknown base; any point
        whose config is invalid (the message names the point and the field); two points with
        the same config.

    Examples
    --------
    >>> sweep = load_sweep({"base": "demo", "set": {"seeds": 1},
    ...                     "grid": {"pruning.percent": [30.0, 50.0], "seed": [0, 1]}})
    >>> [p.name for p in sweep.points]                      # doctest: +NORMALIZE_WHITESPACE
    ['pruning.percent=30.0__seed=0', 'pruning.percent=30.0__seed=1',
     'pruning.percent=50.0__seed=0', 'pruning.percent=50.0__seed=1']
    """
    path: Path | None = None
    if isinstance(source, Mapping):
        body = dict(source)
        root = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        path = Path(source)
        if path.is_dir():
            path = path / SWEEP_FILE
        body = _read_toml(path, "sweep file")
        root = path.parent if base_dir is None else Path(base_dir)
    where = f"sweep {path}" if path is not None else "sweep"
    try:
        spec = _SweepFile.model_validate(body)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"invalid {where}:\n" + "\n".join(lines)) from None
    _check_keys(spec.overrides, spec.grid)
    base, base_cfg = _resolve_base(spec.base, root)
    base_tree = base_cfg.model_dump(mode="json")
    for key, value in spec.overrides.items():
        set_dotted(base_tree, key, value)

    keys = list(spec.grid)
    combos = [dict(zip(keys, combo)) for combo in itertools.product(*(spec.grid[k] for k in keys))]
    names = [point_name(v) for v in combos]
    folded = [n.casefold() for n in names]
    names = [point_name(v, force_hash=True) if folded.count(n.casefold()) > 1 else n for v, n in zip(combos, names)]

    points: list[SweepPoint] = []
    bad: list[str] = []
    for name, values in zip(names, combos):
        tree = copy.deepcopy(base_tree)
        try:
            for key, value in values.items():
                set_dotted(tree, key, value)
            cfg = load_config(tree)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={_format_value(v)}" for k, v in values.items())
            bad.append(f"  point {name} ({shown}): {_one_line(str(exc))}")
            continue
        points.append(SweepPoint(name, values, cfg, _fingerprint(cfg)))
    if bad:
        more = f"\n  … and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ConfigError(f"{where}: {len(bad)} of {len(combos)} points are invalid:\n" + "\n".join(bad[:5]) + more)
    seen: dict[str, str] = {}
    for p in points:
        if p.fingerprint in seen:
            raise ConfigError(f"{where}: points {seen[p.fingerprint]} and {p.name} have the same config")
        seen[p.fingerprint] = p.name
    if spec.points is not None:   # a sweep directory's copy: its point list must be this grid's
        listed = [(q.get("name"), _canonical(q.get("values"))) for q in spec.points]
        if listed != [(p.name, _canonical(p.values)) for p in points]:
            raise ConfigError(f"{where}: its points list does not match its base, set and grid")
    return Sweep(base, dict(spec.overrides), dict(spec.grid), tuple(points), path)


# --- the sweep directory -----------------------------------------------------------------
def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def read_points(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The point list of a sweep directory's ``sweep.toml``: ``{"name", "values", "config_sha256"}``.

    Read without re-validating the base, so it works after the base config moved.

    Raises
    ------
    ConfigError
        No readable ``sweep.toml`` with a point list.
    """
    path = Path(sweep_dir) / SWEEP_FILE
    body = _read_toml(path, "sweep copy")
    points = body.get("points")
    if not isinstance(points, list) or not all(isinstance(p, dict) and "name" in p for p in points):
        raise ConfigError(f"{path} has no point list; is {Path(sweep_dir)} a sweep directory?")
    return [{"name": str(p["name"]), "values": dict(p.get("values", {})),
             "config_sha256": p.get("config_sha256")} for p in points]


def _prepare(out: Path, sweep: Sweep) -> None:
    """Create the sweep directory or check that it holds this sweep; write ``sweep.toml``."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    copy_path = out / SWEEP_FILE
    if not copy_path.exists():
        if (out / "config.toml").exists() or (out / "state.json").exists():
            raise ConfigError(f"{out} is the run directory of one study, not a sweep directory; use another --out")
        _write_bytes(copy_path, tomli_w.dumps(sweep.to_dict()).encode())
        return
    old = {p["name"]: p["config_sha256"] for p in read_points(out)}
    new = {p.name: p.fingerprint for p in sweep.points}
    if old != new:
        only_old = sorted(set(old) - set(new))
        only_new = sorted(set(new) - set(old))
        changed = sorted(n for n in set(old) & set(new) if old[n] != new[n])
        diff = [f"points only in {out}: {', '.join(only_old[:5])}" if only_old else "",
                f"points only in the requested sweep: {', '.join(only_new[:5])}" if only_new else "",
                f"points whose config differs: {', '.join(changed[:5])}" if changed else ""]
        raise ConfigError(f"{out} holds a different sweep; use another --out or the same sweep to resume. "
                          + "; ".join(d for d in diff if d))


def _point_finished(point_dir: Path, point: SweepPoint) -> bool:
    """Whether the point's run directory records a finished run of the point's config."""
    try:
        state = json.loads((point_dir / "state.json").read_text())
        if not state.get("finished"):
            return False
        return _fingerprint(load_config(point_dir / "config.toml")) == point.fingerprint
    except (OSError, ValueError):   # missing or unreadable: not finished (ConfigError is a ValueError)
        return False


def point_status(sweep_dir: str | os.PathLike) -> dict[str, str]:
    """Point name → ``"finished"``, ``"partial"`` (some stages done) or ``"missing"``, from each
    point's ``state.json``."""
    out = Path(sweep_dir)
    status = {}
    for p in read_points(out):
        try:
            state = json.loads((out / p["name"] / "state.json").read_text())
        except (OSError, ValueError):
            status[p["name"]] = "missing"
            continue
        status[p["name"]] = "finished" if state.get("finished") else ("partial" if state.get("completed") else "missing")
    return status


def _completed_metrics(point_dir: Path) -> pd.DataFrame | None:
    """The rows of a run directory's metrics.parquet whose stage its state.json lists as completed.

    A run killed between writing a stage's metrics and its state leaves rows that do not count
    yet (bmprune.experiments.rundir); the run recomputes that stage when it resumes.
    """
    try:
        state = json.loads((point_dir / "state.json").read_text())
        df = pd.read_parquet(point_dir / "metrics.parquet")
    except (OSError, ValueError):
        return None
    return completed_rows(df, state.get("completed", []))


def _column(values: list[Any]) -> list[Any]:
    """One grid key's values as a parquet-friendly column: numbers, bools, strings, else text."""
    if all(isinstance(v, bool) for v in values) or all(isinstance(v, str) for v in values):
        return values
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values] if any(isinstance(v, float) for v in values) else values
    return [_format_value(v) for v in values]


def merge(sweep_dir: str | os.PathLike, *, write: bool = True) -> pd.DataFrame:
    """All points' metrics in one table; callable on a partially finished sweep (issue 17, item 3).

    Parameters
    ----------
    sweep_dir : path
        A sweep directory (it has ``sweep.toml``).
    write : bool
        Also write the table to ``sweep_dir/metrics.parquet`` (atomically: a temporary file
        renamed into place).

    Returns
    -------
    pandas.DataFrame
        Columns ``point`` (the point's directory name), one column per grid key named by the
        key (``pruning.percent``, …) holding the point's value, then the run columns
        ``criterion, seed, replica, iteration, stage, metric, layer, value``. Only stages a
        point's ``state.json`` lists as completed are included; points without results are
        left out. The grid key ``seed`` is the run column ``seed`` (the replica's seed: the
        point's seed plus the replica's index within its criterion), not a second column.
        List or table grid values become text (``10.0,25.0``).

    Raises
    ------
    ConfigError
        ``sweep_dir`` has no readable ``sweep.toml``.
    """
    out = Path(sweep_dir)
    points = read_points(out)
    keys = sorted({k for p in points for k in p["values"]})
    extra = [k for k in keys if k not in RUN_COLUMNS]
    columns = {k: dict(zip((p["name"] for p in points), _column([p["values"].get(k) for p in points]))) for k in extra}
    frames = []
    for p in points:
        df = _completed_metrics(out / p["name"])
        if df is None or not len(df):
            continue
        df = df.copy()
        for i, k in enumerate(extra):
            df.insert(i, k, [columns[k][p["name"]]] * len(df))
        df.insert(0, "point", p["name"])
        frames.append(df)
    if frames:
        merged = pd.concat(frames, ignore_index=True)
    else:
        merged = pd.DataFrame(columns=["point", *extra, *RUN_COLUMNS])
    merged["point"] = merged["point"].astype("string")
    if write:
        _atomic_write(out / METRICS_FILE, lambda tmp: merged.to_parquet(tmp, index=False))
    return merged


# --- running ------------------------------------------------------------------------------
@dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    out_dir : Path
        The sweep directory.
    sweep : Sweep
    done : list of str
        Points whose run is finished (in this call or an earlier one), in grid order.
    skipped : list of str
        Points that were finished before this call and were not submitted.
    failed : dict of str to str
        Point → its error, one line (``DataError: …``; ``KilledWorker: …`` for a point whose
        worker died more often than :data:`ALLOWED_FAILURES`).
    metrics : pandas.DataFrame
        The merged table (:func:`merge`), also in ``out_dir/metrics.parquet``.
    seconds : float
        Wall time of the call.
    workers : int or None
        Workers of the cluster the points ran on (None when nothing was submitted).
    """

    out_dir: Path
    sweep: Sweep
    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    metrics: pd.DataFrame
    seconds: float
    workers: int | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether no point failed."""
        return not self.failed


def _run_point(config: dict[str, Any], out_dir: str, name: str, *, device: str, threads: int,
               topic: str | None) -> dict[str, Any]:
    """The Dask task of one point: ``bmprune.run`` into the point's run directory.

    Idempotent: ``run`` resumes a run directory at its first incomplete stage, so a retry after
    a worker died repeats only the stage that was cut short. Progress goes to the client as
    Dask events on ``topic`` (``start``, ``resume``, ``stage``, ``done``).
    """
    import torch

    torch.set_num_threads(threads)
    emit = _emitter(topic, name)
    emit("start", pid=os.getpid())

    def progress(event: str, **info: Any) -> None:
        if event == "stage":
            emit("stage", iteration=int(info["iteration"]), stage=str(info["stage"]),
                 index=int(info["index"]), total=int(info["total"]))
        elif event == "resume":
            emit("resume", done=int(info["done"]), total=int(info["total"]))

    # the public entry point, imported here so that this module stays light
    from . import run

    result = run(config, out_dir, device=device, progress=progress)
    emit("done", seconds=float(result.seconds))
    return {"seconds": float(result.seconds), "rows": len(result.metrics)}


def _emitter(topic: str | None, name: str) -> Callable[..., None]:
    def nothing(kind: str, **info: Any) -> None:
        return None

    if topic is None:
        return nothing
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):    # not inside a Dask worker
        return nothing

    def emit(kind: str, **info: Any) -> None:
        try:
            worker.log_event(topic, {"point": name, "kind": kind, "worker": worker.address, **info})
        except Exception:   # progress is best effort; never fail a point over it
            log.debug("cannot send a progress event", exc_info=True)

    return emit


@contextmanager
def _dask_client(client, scheduler: str | None, workers: int, silence_logs: int) -> Iterator[tuple[Any, str]]:
    """A ``distributed.Client``: the one given, one connected to ``scheduler``, or a local cluster's."""
    if client is not None:
        yield client, f"Dask scheduler {getattr(client.scheduler, 'address', None) or client}"
        return
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as c:   # closes the connection only; the cluster stays up
            yield c, f"Dask scheduler {scheduler}"
        return
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=silence_logs)
        with cluster, Client(cluster) as c:
            yield c, f"local Dask cluster of {workers} worker process{'es' if workers > 1 else ''}"


def _cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _error_line(exc: BaseException) -> str:
    text = _one_line(str(exc)) or repr(exc)
    return f"{type(exc).__name__}: {text}"


def run_sweep(sweep: Sweep | str | os.PathLike | Mapping[str, Any], out_dir: str | os.PathLike, *,
              workers: int | None = None, scheduler: str | None = None, client=None,
              threads_per_worker: int = 1, device: str = "cpu", progress: Progress | None = None,
              retries: int = 1, silence_logs: int = logging.CRITICAL) -> SweepResult:
    """Run (or resume) every point of a sweep as a Dask task; merge their metrics (issue 17).

    Every point is an ordinary run directory ``out_dir/<point name>`` written by
    :func:`bmprune.run`, with its own ``config.toml``. Points whose run directory is finished
    are skipped without being submitted; interrupted ones resume at their first incomplete
    stage, because ``run`` resumes a run directory by itself (DESIGN.md §Run directory). A
    task whose worker dies (killed, out of memory, a SLURM job reaching its walltime) is
    rescheduled by Dask on another worker and resumes the same way. A point that raises does
    not stop the others: it is listed in :attr:`SweepResult.failed`.

    Parameters
    ----------
    sweep : Sweep, path or mapping
        A :class:`Sweep` or anything :func:`load_sweep` reads.
    out_dir : path
        The sweep directory. Created with ``sweep.toml`` (the resolved sweep and its point
        list); an existing one must hold the same sweep.
    workers : int, optional
        Worker processes of the local cluster. Default: one per CPU core divided by
        ``threads_per_worker``, at most one per point to run. Ignored with ``scheduler`` or
        ``client``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead of a local
        cluster; start its workers with ``--nthreads 1`` (one point per worker process).
    client : distributed.Client, optional
        A client to submit to, e.g. ``Client(SLURMCluster(...))`` (docs/sweeps.md); it is
        left open.
    threads_per_worker : int
        torch threads of each point (``torch.set_num_threads`` inside the task). Each local
        worker process runs one point at a time (one Dask thread).
    device : str
        ``"cpu"`` or ``"cuda"`` (``"cuda:1"``), for every point; with a GPU run one worker per
        device.
    progress : callable(event, **info), optional
        Called in this process. Events: ``"sweep"`` (total, skipped, todo, out_dir),
        ``"cluster"`` (where, workers), ``"point_start"`` (point, worker, attempt),
        ``"point_resume"`` (point, done, total: stages already done), ``"point_stage"``
        (point, iteration, stage, index, total), ``"point_done"`` (point, seconds),
        ``"point_failed"`` (point, error), ``"done"`` (seconds, done, failed, skipped).
    retries : int
        How often Dask re-runs a point that raised (it resumes; deterministic errors fail
        again quickly). Worker deaths are counted separately (:data:`ALLOWED_FAILURES`).
    silence_logs : int
        Log level of the local cluster's Dask loggers (default: critical only; a point's error
        is reported through the result and ``progress``, not as a worker log).

    Returns
    -------
    SweepResult

    Raises
    ------
    ConfigError
        An invalid sweep or point (before anything runs), a different sweep in ``out_dir``,
        an ``out_dir`` that is a single run's directory, bad ``workers`` / ``threads_per_worker``
        / ``device``, or both ``client`` and ``scheduler``.
    OSError
        ``out_dir`` cannot be written, or the scheduler cannot be reached.
    """
    t_start = time.perf_counter()
    sw = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    if client is not None and scheduler is not None:
        raise ConfigError("pass either a Dask client or a scheduler address, not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if threads_per_worker < 1:
        raise ConfigError(f"threads_per_worker must be at least 1, got {threads_per_worker}")
    if retries < 0:
        raise ConfigError(f"retries must be at least 0, got {retries}")
    try:
        import torch

        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a torch device: {exc}") from None
    out = Path(out_dir).expanduser().resolve()
    prog = progress or (lambda event, **info: None)

    _prepare(out, sw)
    skipped = [p.name for p in sw.points if _point_finished(out / p.name, p)]
    finished: set[str] = set(skipped)
    todo = [p for p in sw.points if p.name not in finished]
    prog("sweep", total=len(sw.points), skipped=len(skipped), todo=len(todo), out_dir=str(out))

    failed: dict[str, str] = {}
    n_workers = None
    if todo:
        n_workers = workers or max(1, min(len(todo), _cores() // threads_per_worker))
        with _dask_client(client, scheduler, n_workers, silence_logs) as (cl, where):
            if client is not None or scheduler is not None:
                n_workers = len(cl.nthreads()) or None   # an adaptive cluster may start empty
            prog("cluster", where=where, workers=n_workers)
            _execute(cl, todo, out, device, threads_per_worker, retries, prog, finished, failed)

    done = [p.name for p in sw.points if p.name in finished]
    metrics = merge(out)
    seconds = time.perf_counter() - t_start
    prog("done", seconds=seconds, done=len(done), failed=len(failed), skipped=len(skipped))
    return SweepResult(out, sw, done, skipped, {p.name: failed[p.name] for p in sw.points if p.name in failed},
                       metrics, seconds, n_workers)


def _execute(client, todo: list[SweepPoint], out: Path, device: str, threads: int, retries: int,
             prog: Progress, finished: set[str], failed: dict[str, str]) -> None:
    """Submit one task per point, report progress while they run, record each outcome."""
    token = uuid.uuid4().hex[:8]
    topic = f"bmprune-sweep-{token}"
    events: queue.SimpleQueue = queue.SimpleQueue()
    attempts: dict[str, int] = {}
    try:
        client.subscribe_topic(topic, lambda event: events.put(event[1]))
    except Exception:  # noqa: BLE001  (a scheduler without events: no per-point detail, outcomes still come)
        topic_used = None
    else:
        topic_used = topic

    def drain() -> None:
        while True:
            try:
                msg = events.get_nowait()
            except queue.Empty:
                return
            name, kind = msg.get("point"), msg.get("kind")
            if name in finished or name in failed:
                continue
            if kind == "start":
                attempts[name] = attempts.get(name, 0) + 1
                prog("point_start", point=name, worker=msg.get("worker"), attempt=attempts[name])
            elif kind == "resume":
                prog("point_resume", point=name, done=msg.get("done"), total=msg.get("total"))
            elif kind == "stage":
                prog("point_stage", point=name, iteration=msg.get("iteration"), stage=msg.get("stage"),
                     index=msg.get("index"), total=msg.get("total"))

    futures = {}
    for p in todo:
        # the config travels as plain JSON data; the task validates it again in bmprune.run
        fut = client.submit(_run_point, p.config.model_dump(mode="json"), str(out / p.name), p.name,
                            device=device, threads=threads, topic=topic_used,
                            key=f"bmprune-sweep-{p.name}-{token}", retries=retries, pure=False)
        futures[fut] = p.name
    pending = dict(futures)
    try:
        while pending:
            drain()
            ready = [f for f in pending if f.done()]
            for fut in ready:
                name = pending.pop(fut)
                try:
                    info = fut.result()
                except BaseException as exc:   # the point's own error, KilledWorker, a cancelled future
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        raise
                    drain()
                    failed[name] = _error_line(exc)
                    prog("point_failed", point=name, error=failed[name])
                else:
                    drain()
                    finished.add(name)
                    prog("point_done", point=name, seconds=info.get("seconds"))
                fut.release()
            if not ready:
                time.sleep(0.1)
    finally:
        for fut in pending:
            fut.cancel()
        if topic_used is not None:
            try:
                client.unsubscribe_topic(topic)
            except Exception:
                log.debug("cannot unsubscribe from %s", topic, exc_info=True)


__all__ = ["ALLOWED_FAILURES", "METRICS_FILE", "SWEEP_FILE", "Sweep", "SweepPoint", "SweepResult", "load_sweep",
           "merge", "point_name", "point_status", "read_points", "run_sweep"]
