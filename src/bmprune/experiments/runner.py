"""The study runner: one prune–retrain loop for every criterion, model kind and experiment.

``run(config)`` builds one population of replicas = criteria × seeds: it trains the
over-parameterised model once per seed (a population of ``seeds`` replicas) and clones every
trained network once per criterion, as the paper does. Then it executes the study's steps
(:func:`~bmprune.experiments.schedule.build_schedule`: stages as data):

    estimate importance (model samples) → prune → evaluate ("pruned")
    → retrain → evaluate ("retrained"; its samples feed the next iteration's importance)

Stage ``(0, "trained")`` evaluates the unpruned networks, once per seed (the clones are
identical), and shares the result with every criterion. What is recorded at each stage is
the configured list of the metric registry (:mod:`bmprune.evaluation.metrics`).

Randomness (DESIGN.md §Randomness): replica r of the population is identified by its
(seed, criterion), and every random draw it makes at a stage comes from its own stream keyed
by (seed, criterion, iteration, stage) (:func:`replica_streams`) — the trained network and
its stage-0 samples by (seed, "trained"). A replica's numbers therefore do not depend on the
population it runs in: a criteria subset, fewer seeds or a sweep split across machines give
the same numbers for the same replica, and an interrupted run resumes at the first
incomplete stage with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import data as bpdata
from ..errors import ConfigError, DataError, TrainingDivergedError
from ..evaluation.metrics import MetricContext, as_rows, select
from ..fisher import SampleStatistics
from ..models import RBM, receptive_field_mask
from ..models.io import save_model
from ..pruning import prune
from ..rng import Streams
from ..sampling import iter_samples
from ..training import chains_from_rbms, pretrain_dbm, train_dbm, train_rbm
from .config import StudyConfig, load_config, resolve_schedule
from .presets import PRESETS, get_preset
from .resources import check_memory, check_memory_before_loading
from .rundir import RunDir
from .schedule import Step, build_schedule

Progress = Callable[..., None]
#: The pseudo-criterion of the trained networks, shared by every criterion's clone.
TRAINED = "trained"


@dataclass
class RunResult:
    """What ``run`` returns: where the results are, and the metrics table."""

    out_dir: Path
    config: StudyConfig
    metrics: Any  # pandas.DataFrame
    seconds: float


def resolve_config(config, *, seeds: int | None = None, criteria: list[str] | None = None,
                   iterations: int | None = None) -> StudyConfig:
    """A StudyConfig from a preset name, a TOML path, a dict or a StudyConfig, with overrides.

    Raises ConfigError for an unknown preset, a missing file or an invalid value.
    """
    if isinstance(config, str) and config in PRESETS:
        cfg = get_preset(config)
    elif isinstance(config, (str, Path)) and not Path(config).is_file():
        what = "a directory, not a config file" if Path(config).is_dir() else "neither a preset nor a config file"
        raise ConfigError(f"{str(config)!r} is {what} (presets: {', '.join(PRESETS)})")
    else:
        cfg = load_config(config)
    over: dict[str, Any] = {}
    if seeds is not None:
        over["seeds"] = seeds
    if criteria is not None:
        over["pruning.criteria"] = list(criteria)
    if iterations is not None:
        over["pruning.iterations"] = iterations
    return cfg.with_overrides(**over) if over else cfg


def replica_streams(keys: list[tuple], *labels, device="cpu") -> Streams:
    """One stream per replica keyed by its identity ``keys[r]`` (e.g. (seed, criterion)) plus ``labels``."""
    return Streams.from_keys([(*k, *labels) for k in keys], device)


# --- data ------------------------------------------------------------------------------
def load_study_data(cfg: StudyConfig, *, verify: bool = True):
    """(train, test or None) datasets of the study (SPEC §3); ``verify``: check real files' checksums.

    Raises ConfigError when ``data.n_train`` exceeds the training set, DataError for missing
    or malformed files.
    """
    d = cfg.data
    kw = {} if verify else {"verify": False}
    if d.source == "mnist":
        train, test = bpdata.load_mnist("train", **kw), bpdata.load_mnist("test", **kw)
    elif d.source == "digits":
        train, test = bpdata.load_digits("train"), bpdata.load_digits("test")
    elif d.source == "cifar_patches":
        train = bpdata.load_cifar_patches(radius=d.radius, n_patches=d.n_patches, batches=d.batches, seed=cfg.seed, **kw)
        test = None
    elif d.source == "photo_patches":
        train, test = bpdata.load_photo_patches(radius=d.radius, n_patches=d.n_patches, seed=cfg.seed), None
    else:
        train = bpdata.load_binary(d.path, image_shape=d.image_shape)
        test = bpdata.load_binary(d.test_path, image_shape=d.image_shape) if d.test_path else None
    if d.n_train is not None and d.n_train > len(train):
        raise ConfigError(f"data.n_train = {d.n_train:,} exceeds the {len(train):,} training patterns of {d.source!r}")
    return train.random_subset(d.n_train, cfg.seed), test


def check_against_data(cfg: StudyConfig, train, test) -> None:
    """What the config asks of the data, checked before anything is written or trained.

    Raises
    ------
    ConfigError
        Receptive fields on data without images, larger than the image or with the wrong
        number of first-layer hidden units; eigenvector_fi on a model too large to enumerate;
        an explicitly listed metric that cannot apply (e.g. encoding without labels).
    """
    nv = train.n_visible
    k = cfg.model.receptive_field
    if k is not None:
        if train.image_shape is None or train.pixel_mask is not None:
            raise ConfigError("model.receptive_field needs full-image data (an image_shape)")
        h, w = train.image_shape
        if k > min(h, w):
            raise ConfigError(f"model.receptive_field = {k} is larger than the {h}×{w} image")
        if cfg.model.hidden[0] != h * w:
            raise ConfigError(f"receptive fields give one hidden unit per pixel: model.hidden[0] must be {h * w}")
    if "eigenvector_fi" in cfg.pruning.criteria and 2 ** min(nv, cfg.model.hidden[0]) > 2**24:
        raise ConfigError(f"eigenvector_fi needs the exact FIM of a {nv} × {cfg.model.hidden[0]} RBM, "
                          "too large to enumerate (2^min(n_v, n_h) > 2^24 states)")
    if test is not None and test.n_visible != nv:
        raise DataError(f"the test set has {test.n_visible} visible units, the training set {nv}")
    labelled = train.y is not None and test is not None and test.y is not None
    for name in cfg.evaluation.metrics or []:
        if name in ("encoding_error", "generation") and not labelled:
            raise ConfigError(f"metric {name!r} needs labelled training and test data; {cfg.data.source!r} has none")


# --- models and training ----------------------------------------------------------------
def _first_mask(cfg: StudyConfig, train):
    k = cfg.model.receptive_field
    return None if k is None else receptive_field_mask(*train.image_shape, k)


def _visible_bias(cfg: StudyConfig, x: np.ndarray):
    if cfg.model.visible_bias != "data":
        return cfg.model.visible_bias
    p = np.clip(x.mean(0), 1e-7, 1 - 1e-7)
    return torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)


def _per_epoch(schedule, epochs: int) -> list[float]:
    """A schedule as an explicit per-epoch list: a list of such lists is unambiguously one per RBM."""
    value = resolve_schedule(schedule, epochs)
    return [float(value)] * epochs if isinstance(value, (int, float)) else list(value)


def _diverged(phase: str, section: str, exc: TrainingDivergedError) -> TrainingDivergedError:
    message = str(exc).replace("training diverged", f"{phase} diverged", 1)
    return TrainingDivergedError(f"{message} (settings: {section}.learning_rate, {section}.momentum)",
                                 phase=phase, epoch=exc.epoch)


def train_initial(cfg: StudyConfig, train, device, rng: Streams, on_epoch: Callable | None = None, *,
                  architecture=None):
    """A population, one replica per stream of ``rng``, initialised and trained from scratch (SPEC §2).

    The over-parameterised networks (one per seed), or, given ``architecture`` (a population
    whose weight masks and alive units to keep), minimal models: the same training of exactly
    that architecture (thesis §3.4.3). Raises TrainingDivergedError naming the phase and the
    setting to change.
    """
    x, S, hb = train.x, len(rng), cfg.model.hidden_bias
    nv = x.shape[1]
    masks = [_first_mask(cfg, train)] + [None] * (len(cfg.model.hidden) - 1)
    alive = None
    if architecture is not None:
        masks, alive = list(architecture.weight_masks), list(architecture.alive)
    if cfg.model.kind == "rbm":
        model = RBM(nv, cfg.model.hidden[0], n_replicas=S, weight_mask=masks[0], seed=rng,
                    weight_std=cfg.model.weight_std, visible_bias=_visible_bias(cfg, x),
                    hidden_bias=hb if not isinstance(hb, list) else hb[0], device=device)
        if alive is not None:
            model.alive = [a.clone().to(device) for a in alive]
            model.apply_masks()
        try:
            train_rbm(model, x, seed=rng.child("train"), callback=_epoch_cb(on_epoch, "train"), **cfg.train.kwargs())
        except TrainingDivergedError as exc:
            raise _diverged("training", "train", exc) from None
        return model
    sizes, pre = [nv, *cfg.model.hidden], cfg.pretrain
    try:
        model, rbms = pretrain_dbm(
            x, sizes, weight_masks=masks, alive=alive,
            epochs=[p.epochs for p in pre], batch_size=[p.batch_size for p in pre],
            learning_rate=[_per_epoch(p.learning_rate, p.epochs) for p in pre],
            momentum=[_per_epoch(p.momentum, p.epochs) for p in pre], k=[p.k for p in pre],
            update_rule=[p.update_rule for p in pre],
            # one visible bias per RBM: the data's (or the configured value) for RBM 1; the deeper RBMs'
            # "visible" layers are hidden layers, initialised like the paper's MNIST RBMs (b_v = −1)
            seed=rng, n_replicas=S, visible_bias=[_visible_bias(cfg, x)] + [-1.0] * (len(sizes) - 2),
            hidden_bias=hb if isinstance(hb, list) else [hb] * len(cfg.model.hidden),
            weight_std=cfg.model.weight_std, device=device,
            callback=(lambda layer, epoch, rbm, info: on_epoch(f"pretrain RBM {layer + 1}", epoch, info)) if on_epoch else None)
    except TrainingDivergedError as exc:
        section = exc.phase or "pretrain"
        raise TrainingDivergedError(f"{exc} (settings: {section}.learning_rate, {section}.momentum)",
                                    phase=section, epoch=exc.epoch) from None
    chains = None
    if cfg.train.chains_init == "first_patterns_rbm":
        C = cfg.train.n_chains
        if C > len(train):
            raise ConfigError(f"train.n_chains = {C} exceeds the {len(train)} training patterns (chains_init)")
        chains = chains_from_rbms(rbms, x[:C], seed=rng.child("chains"))
    try:
        train_dbm(model, x, seed=rng.child("train"), callback=_epoch_cb(on_epoch, "train"), init_chains_from=chains,
                  **cfg.train.kwargs())
    except TrainingDivergedError as exc:
        raise _diverged("joint training", "train", exc) from None
    return model


def retrain(cfg: StudyConfig, model, train, rng: Streams, on_epoch: Callable | None = None) -> None:
    """Retrain the pruned population in place (RBM: CD; DBM: joint training only, SPEC §5)."""
    fit = train_rbm if cfg.model.kind == "rbm" else train_dbm
    try:
        fit(model, train.x, seed=rng, callback=_epoch_cb(on_epoch, "retrain"), **cfg.retrain.kwargs())
    except TrainingDivergedError as exc:
        raise _diverged("retraining", "retrain", exc) from None


def _epoch_cb(on_epoch, phase):
    if on_epoch is None:
        return None
    return lambda epoch, model, info: on_epoch(phase, epoch, info)


# --- evaluation of one stage -----------------------------------------------------------
def _rows(values, idents: list[tuple[int, str]], iteration: int, stage: str) -> list[dict]:
    """Metric rows for the replicas ``idents[r] = (seed, criterion)``."""
    out = []
    for metric, layer, v in as_rows(values):
        for r, x in enumerate(v.tolist()):
            seed, crit = idents[r]
            out.append({"criterion": crit, "seed": seed, "replica": r, "iteration": iteration, "stage": stage,
                        "metric": metric, "layer": layer, "value": float(x)})
    return out


class Study:
    """A study in progress: config, data, the selected metrics and the population's identities."""

    def __init__(self, cfg: StudyConfig, train, test, device: str) -> None:
        self.cfg, self.device, self.train, self.test = cfg, device, train, test
        S = cfg.seeds
        self.seed_idents = [(cfg.seed + s, TRAINED) for s in range(S)]
        self.idents = [(cfg.seed + s, c) for c in cfg.pruning.criteria for s in range(S)]
        self.clone_index = [s for _ in cfg.pruning.criteria for s in range(S)]
        self.metrics = select(cfg.evaluation.metrics)
        self.run_cache: dict = {}

    @property
    def criteria(self) -> list[str]:
        """The criterion of each replica."""
        return [c for _, c in self.idents]

    def context(self, model, step: Step, prune_report=None, idents=None) -> MetricContext:
        return MetricContext(model, step.iteration, step.stage, self.train, self.test, settings=self.cfg.evaluation,
                             seed=self.cfg.seed, prune_report=prune_report, run_cache=self.run_cache, idents=idents)

    def evaluate(self, model, step: Step, idents, *, sample: bool, prune_report=None):
        """The metric rows of one stage for the replicas ``idents`` and, if ``sample``, the statistics
        of the stage's model samples (see :meth:`sample`)."""
        ctx = self.context(model, step, prune_report, idents)
        active = [m for m in self.metrics if step.stage in m.stages and m.applies(ctx) is None]
        values: dict[str, Any] = {}
        for m in active:
            if not m.uses_samples:
                values.update(m.compute(ctx))
        stats = None
        if sample:
            accs = [m.accumulate(ctx) for m in active if m.accumulate is not None]
            ctx.samples = stats = self.sample(model, step, idents, accs)
            for m in active:
                if m.needs_samples:
                    values.update(m.compute(ctx))
            for a in accs:
                values.update(a.result())
        return _rows(values, idents, step.iteration, step.stage), stats

    def sample(self, model, step: Step, idents, accumulators=()) -> SampleStatistics:
        """Statistics of the stage's model samples, drawn from the replicas' streams keyed
        (seed, criterion, iteration, stage, "sampled"); every chunk also goes to ``accumulators``."""
        stats = SampleStatistics(check_values=False)     # states come from our own sampler
        rng = replica_streams(idents, step.iteration, step.stage, "sampled", device=model.device)
        for chunk in iter_samples(model, self.cfg.sampling.n_samples, seed=rng, **self.cfg.sampling.kwargs()):
            stats.update(chunk)
            for a in accumulators:
                a.update(chunk)
        return stats

    def baselines(self) -> list[dict]:
        """Rows of the metrics' baselines (raw-pixel encoding, test-digit / random-pattern generation)."""
        ctx = self.context(None, Step(-1, "baseline"))
        rows = []
        for m in self.metrics:
            if m.baseline is None:
                continue
            for name, scores in m.baseline(ctx).items():
                for metric, value in scores.items():
                    rows.append({"criterion": name, "seed": -1, "replica": -1, "iteration": -1, "stage": "baseline",
                                 "metric": metric, "layer": -1, "value": float(value)})
        return rows


def _expand(rows: list[dict], study: Study) -> list[dict]:
    """Per-seed rows of the trained networks, copied to every criterion's clone of that seed."""
    out = []
    for r, (seed, crit) in enumerate(study.idents):
        for row in rows:
            if row["seed"] == seed:
                out.append({**row, "criterion": crit, "replica": r})
    return out


def run(config, out_dir=None, *, seeds: int | None = None, criteria: list[str] | None = None,
        iterations: int | None = None, device: str = "cpu", progress: Progress | None = None,
        keep_checkpoints: bool = False, verify_data: bool = True) -> RunResult:
    """Run (or resume) a whole pruning study; returns where its results are (DESIGN.md).

    Parameters
    ----------
    config : preset name, path to a TOML config, dict, or StudyConfig
    out_dir : run directory; default ``runs/<name>-<timestamp>``. An existing directory of the
        same config is resumed from its first incomplete stage; a different config is refused.
    seeds, criteria, iterations : overrides of the config's values
    device : "cpu" or "cuda" (or "cuda:N")
    progress : callable(event, **info), optional
        Events: ``"stage"`` (iteration, stage, index, total), ``"epoch"`` (phase, epoch,
        info), ``"resume"`` (done, total), ``"done"`` (seconds, out_dir).
    keep_checkpoints : keep a checkpoint of every stage (default: the trained population
        and the latest stage only).
    verify_data : check the real data files against their pinned checksums (default True).

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Invalid config, unknown preset or criterion, a config that does not fit the data, a
        different config in ``out_dir``, an unknown or unavailable device, a study whose
        estimated memory exceeds the machine's (:func:`~bmprune.experiments.resources.check_memory`).
    DataError
        Missing or malformed data files.
    TrainingDivergedError
        Training diverged; the message names the phase, the epoch and the setting to change.
        The run directory stays resumable from the last completed stage.
    RunDirError
        ``out_dir`` is a file or a non-empty directory without a run; a damaged run (state,
        metrics and checkpoints disagree: the message names the fix); in use by another
        process ("in use by PID …"); not writable while stages are left; a write failed
        mid-run (disk full, permission lost: the directory resumes from its last completed
        stage). A finished run with nothing left to do is reopened without writing.
    CheckpointError
        A checkpoint could not be written (disk full, permission lost); resumable as above.
    """
    opened: list[RunDir] = []
    try:
        return _run(config, out_dir, seeds=seeds, criteria=criteria, iterations=iterations, device=device,
                    progress=progress, keep_checkpoints=keep_checkpoints, verify_data=verify_data, opened=opened)
    finally:
        for rd in opened:      # the run directory's lock, also when the run failed
            rd.close()


def _run(config, out_dir, *, seeds, criteria, iterations, device, progress, keep_checkpoints, verify_data,
         opened: list) -> RunResult:
    """:func:`run`; the RunDir it opens is appended to ``opened`` for ``run`` to release."""
    t_start = time.perf_counter()
    cfg = resolve_config(config, seeds=seeds, criteria=criteria, iterations=iterations)
    device = _check_device(device)
    check_memory_before_loading(cfg, device=device)      # absurd data sizes before the data are loaded
    prog = progress or (lambda *a, **k: None)
    train, test = load_study_data(cfg, verify=verify_data)
    check_against_data(cfg, train, test)
    check_memory(cfg, train.n_visible, len(train), 0 if test is None else len(test), device=device)
    if out_dir is None:
        out_dir = Path("runs") / f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
    rd = RunDir(out_dir, cfg)      # validated, then locked; opened read-only when nothing is left to do
    opened.append(rd)
    if rd.writable and rd.data_summary() is None:
        rd.write_data_summary(cfg.data.source, train, test)
    study = Study(cfg, train, test, device)
    steps = build_schedule(cfg)
    done = [rd.is_done(s.iteration, s.stage) for s in steps]
    if any(done):
        prog("resume", done=sum(done), total=len(steps))
    if rd.writable and not rd.is_done(-1, "baseline"):
        rows = study.baselines()
        if rows:
            rd.complete(-1, "baseline", rows, None, 0.0)

    # Resume: the population of the last completed stage and the statistics of its samples
    # (kept beside its checkpoint; re-drawn from the same streams when that file is gone).
    last = max((k for k, d in enumerate(done) if d), default=None)
    model = rd.resume_model(device) if last is not None else None
    stats = None if last is None else _load_stats(rd, steps[last], study)

    def on_epoch(phase, epoch, info):
        prog("epoch", phase=phase, epoch=epoch, info=info)

    for k, step in enumerate(steps):
        if done[k]:
            continue
        prog("stage", iteration=step.iteration, stage=step.stage, index=k, total=len(steps))
        t0 = time.perf_counter()
        if step.stage == "pruned" and stats is None:   # resumed right after a stage whose samples are gone
            stats = _resample(study, model, steps[k - 1])
        model, rows, new_stats = _run_step(study, step, model, stats, on_epoch)
        if step.stage != "pruned":
            stats = new_stats
        ckpt = rd.checkpoint_path(step.iteration, step.stage)
        save_model(model, ckpt, metadata={"iteration": step.iteration, "stage": step.stage,
                                          "criteria": ",".join(study.criteria),
                                          "seeds": ",".join(str(s) for s, _ in study.idents)})
        if new_stats is not None:     # kept so that a resume does not re-draw them
            rd.save_samples(step.iteration, step.stage, {k: v.cpu() for k, v in new_stats.state_dict().items()})
        rd.complete(step.iteration, step.stage, rows, str(ckpt.relative_to(rd.path)), time.perf_counter() - t0,
                    keep_previous=keep_checkpoints)
    seconds = time.perf_counter() - t_start
    if rd.writable:     # a finished run reopened with nothing to do is left as it was
        rd.mark_finished(seconds_last_session=round(seconds, 3))
    prog("done", seconds=seconds, out_dir=str(rd.path))
    return RunResult(rd.path, cfg, rd.metrics(), seconds)


def _run_step(study: Study, step: Step, model, stats, on_epoch):
    """Execute one step of the schedule: returns (population, metric rows, statistics of its
    samples or None). Every random draw comes from the replicas' streams of this step."""
    cfg = study.cfg
    if step.stage == "trained":
        return _trained_stage(study, step, on_epoch)
    rng = replica_streams(study.idents, step.iteration, step.stage, device=model.device)
    report = None
    if step.stage == "pruned":
        report = prune(model, criterion=study.criteria, percent=list(step.percent), samples=stats, seed=rng,
                       options=cfg.pruning.options(len(cfg.model.hidden)))
    elif step.stage == "retrained":
        retrain(cfg, model, study.train, rng, on_epoch)
    else:                                   # "minimal": the final architecture trained from scratch
        model = train_initial(cfg, study.train, study.device, rng, on_epoch, architecture=model)
    sample = step.samples or cfg.evaluation.sample_after_pruning
    rows, new_stats = study.evaluate(model, step, study.idents, sample=sample, prune_report=report)
    return model, rows, new_stats


def _trained_stage(study: Study, step: Step, on_epoch):
    """Train one network per seed, evaluate it once, and clone it per criterion (with its samples)."""
    rng = replica_streams(study.seed_idents, device=study.device)
    trained = train_initial(study.cfg, study.train, study.device, rng, on_epoch)
    rows, stats = study.evaluate(trained, step, study.seed_idents, sample=True)
    return trained.replicas(study.clone_index), _expand(rows, study), stats.select(study.clone_index)


def _load_stats(rd: RunDir, step: Step, study: Study) -> SampleStatistics | None:
    """The saved sample statistics of a completed stage, or None (then they are re-drawn)."""
    from safetensors.torch import load_file
    path = rd.samples_path(rd.checkpoint_path(step.iteration, step.stage))
    if step.stage == "pruned" or not path.is_file():
        return None
    try:
        stats = SampleStatistics.from_state_dict(load_file(str(path), device=study.device))
    except Exception:        # a damaged file only costs a re-draw from the same streams
        return None
    return stats if stats.n_replicas == len(study.idents) else None


def _resample(study: Study, model, previous: Step) -> SampleStatistics:
    """The samples of a completed stage, re-drawn from its streams after a resume."""
    if previous.stage == "trained":      # the clones of seed s are replicas s of the first criterion
        per_seed = model.replicas(list(range(study.cfg.seeds)))
        return study.sample(per_seed, previous, study.seed_idents).select(study.clone_index)
    return study.sample(model, previous, study.idents)


def _check_device(device: str) -> str:
    """``device`` if torch can use it; ConfigError otherwise (an unknown name, or no CUDA)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: use 'cpu' or 'cuda' ({exc})") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}: use 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but torch sees no CUDA device")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: torch sees only {torch.cuda.device_count()} CUDA device(s)")
    return str(dev)


__all__ = ["RunResult", "Study", "check_against_data", "load_study_data", "replica_streams", "resolve_config",
           "retrain", "run", "train_initial"]
