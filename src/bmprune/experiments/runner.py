"""The study runner: one prune–retrain loop for every criterion, model kind and experiment.

``run(config)`` builds one population of replicas = criteria × seeds: it trains the
over-parameterised model once per seed (a population of ``seeds`` replicas) and clones every
trained network once per criterion, as the paper does. Then, per iteration:

    estimate importance (model samples) → prune → evaluate ("pruned")
    → retrain → evaluate ("retrained"; its samples feed the next iteration's importance)

Stage ``(0, "trained")`` evaluates the unpruned networks. Every completed stage is written to
the run directory (metrics, a checkpoint, then the state), so an interrupted run resumes at
the first incomplete stage and gives the same numbers (CPU, same seeds): every stage draws
its randomness from a seed derived from (config seed, iteration, stage), never from a stream
carried over from earlier stages.
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
from ..errors import ConfigError
from ..evaluation import (GenerationScorer, PatternCounter, encoding_error, exact_kl, exact_log_likelihood,
                          generation_baselines, raw_pixel_error)
from ..fisher import SampleStatistics
from ..models import RBM
from ..models.io import load_model, save_model
from ..pruning import prune
from ..sampling import iter_samples
from ..training import train_rbm
from .config import StudyConfig, TrainConfig, load_config, resolve_schedule
from .presets import PRESETS, get_preset
from .rundir import RunDir

Progress = Callable[..., None]
_STAGE_CODE = {"trained": 0, "pruned": 1, "retrained": 2, "sampled": 3}
#: Exact metrics only for RBMs with at most this many states in the smaller layer.
EXACT_LIMIT = 2**20


def stage_seed(seed: int, iteration: int, stage: str) -> int:
    """The seed of one stage: a pure function of (config seed, iteration, stage)."""
    return int(np.random.SeedSequence([seed, iteration, _STAGE_CODE[stage]]).generate_state(1)[0])


@dataclass
class RunResult:
    """What ``run`` returns: where the results are, and the metrics table."""

    out_dir: Path
    config: StudyConfig
    metrics: Any  # pandas.DataFrame
    seconds: float


def resolve_config(config, *, seeds: int | None = None, criteria: list[str] | None = None,
                   iterations: int | None = None) -> StudyConfig:
    """A StudyConfig from a preset name, a TOML path, a dict or a StudyConfig, with overrides."""
    if isinstance(config, str) and config in PRESETS:
        cfg = get_preset(config)
    elif isinstance(config, (str, Path)) and not Path(config).exists():
        raise ConfigError(f"{config!r} is neither a preset ({', '.join(PRESETS)}) nor a config file")
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


# --- data ------------------------------------------------------------------------------
def load_study_data(cfg: StudyConfig):
    """(train, test or None) datasets of the study (SPEC §3)."""
    d = cfg.data
    if d.source == "mnist":
        train, test = bpdata.load_mnist("train"), bpdata.load_mnist("test")
    elif d.source == "digits":
        train, test = bpdata.load_digits("train"), bpdata.load_digits("test")
    elif d.source == "cifar_patches":
        train, test = bpdata.load_cifar_patches(radius=d.radius, n_patches=d.n_patches, batches=d.batches, seed=cfg.seed), None
    elif d.source == "photo_patches":
        train, test = bpdata.load_photo_patches(radius=d.radius, n_patches=d.n_patches, seed=cfg.seed), None
    else:
        train = bpdata.load_binary(d.path, image_shape=d.image_shape)
        test = bpdata.load_binary(d.test_path, image_shape=d.image_shape) if d.test_path else None
    return train.random_subset(d.n_train, cfg.seed), test


# --- models ----------------------------------------------------------------------------
def _first_mask(cfg: StudyConfig, train):
    k = cfg.model.receptive_field
    if k is None:
        return None
    from ..models import receptive_field_mask
    if train.image_shape is None:
        raise ConfigError("model.receptive_field needs image data (an image_shape)")
    h, w = train.image_shape
    if cfg.model.hidden[0] != h * w:
        raise ConfigError(f"receptive fields give one hidden unit per pixel: hidden[0] must be {h * w}")
    return receptive_field_mask(h, w, k)


def _visible_bias(cfg: StudyConfig, x: np.ndarray):
    if cfg.model.visible_bias != "data":
        return cfg.model.visible_bias
    p = np.clip(x.mean(0), 1e-7, 1 - 1e-7)
    return torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)


def _per_epoch(schedule, epochs: int) -> list[float]:
    """A schedule as an explicit per-epoch list: a list of such lists is unambiguously one per RBM."""
    value = resolve_schedule(schedule, epochs)
    return [float(value)] * epochs if isinstance(value, (int, float)) else list(value)


def _rbm_train_kwargs(t: TrainConfig) -> dict[str, Any]:
    return {**t.kwargs(), "k": t.k, "persistent": t.persistent, "n_chains": t.n_chains}


def _dbm_train_kwargs(t: TrainConfig) -> dict[str, Any]:
    kw = {**t.kwargs(), "k": t.k, "max_norm": t.max_norm, "mf_max_iter": t.mf_max_iter}
    if t.n_chains is not None:
        kw["n_chains"] = t.n_chains
    return kw


def train_initial(cfg: StudyConfig, train, device, seed: int, on_epoch: Callable | None = None):
    """The over-parameterised population, one replica per seed, trained (SPEC §2)."""
    x = train.x
    S = cfg.seeds
    nv = x.shape[1]
    hb = cfg.model.hidden_bias
    if cfg.model.kind == "rbm":
        model = RBM(nv, cfg.model.hidden[0], n_replicas=S, weight_mask=_first_mask(cfg, train), seed=seed,
                    weight_std=cfg.model.weight_std, visible_bias=_visible_bias(cfg, x),
                    hidden_bias=hb if not isinstance(hb, list) else hb[0], device=device)
        train_rbm(model, x, seed=seed, callback=_epoch_cb(on_epoch, "train"), **_rbm_train_kwargs(cfg.train))
        return model
    from ..training import pretrain_dbm, train_dbm
    sizes = [nv, *cfg.model.hidden]
    pre = cfg.pretrain
    hbs = hb if isinstance(hb, list) else [hb] * len(cfg.model.hidden)
    model, _ = pretrain_dbm(
        x, sizes, weight_masks=[_first_mask(cfg, train)] + [None] * (len(sizes) - 2),
        epochs=[p.epochs for p in pre], batch_size=[p.batch_size for p in pre],
        learning_rate=[_per_epoch(p.learning_rate, p.epochs) for p in pre],
        momentum=[_per_epoch(p.momentum, p.epochs) for p in pre], k=[p.k for p in pre],
        # one visible bias per RBM: the data's (or the configured value) for RBM 1; the deeper RBMs'
        # "visible" layers are hidden layers, initialised like the paper's MNIST RBMs (b_v = −1)
        seed=seed, n_replicas=S, visible_bias=[_visible_bias(cfg, x)] + [-1.0] * (len(sizes) - 2), hidden_bias=hbs,
        weight_std=cfg.model.weight_std, device=device,
        callback=(lambda layer, epoch, rbm, info: on_epoch(f"pretrain RBM {layer + 1}", epoch, info)) if on_epoch else None)
    train_dbm(model, x, seed=seed, callback=_epoch_cb(on_epoch, "train"), **_dbm_train_kwargs(cfg.train))
    return model


def retrain(cfg: StudyConfig, model, train, seed: int, on_epoch: Callable | None = None) -> None:
    """Retrain the pruned population in place (RBM: CD; DBM: joint training only, SPEC §5)."""
    if cfg.model.kind == "rbm":
        train_rbm(model, train.x, seed=seed, callback=_epoch_cb(on_epoch, "retrain"), **_rbm_train_kwargs(cfg.retrain))
    else:
        from ..training import train_dbm
        train_dbm(model, train.x, seed=seed, callback=_epoch_cb(on_epoch, "retrain"), **_dbm_train_kwargs(cfg.retrain))


def _epoch_cb(on_epoch, phase):
    if on_epoch is None:
        return None
    return lambda epoch, model, info: on_epoch(phase, epoch, info)


# --- evaluation of one stage -----------------------------------------------------------
class _Rows:
    def __init__(self, criteria: list[str], seeds: list[int], iteration: int, stage: str):
        self.criteria, self.seeds, self.iteration, self.stage = criteria, seeds, iteration, stage
        self.rows: list[dict] = []

    def add(self, metric: str, values, layer: int = -1) -> None:
        values = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        for r, v in enumerate(values.tolist()):
            self.rows.append({"criterion": self.criteria[r], "seed": self.seeds[r], "replica": r,
                              "iteration": self.iteration, "stage": self.stage, "metric": metric,
                              "layer": layer, "value": float(v)})


def _enumerable(model) -> bool:
    return isinstance(model, RBM) and 2 ** min(model.n_visible, model.n_hidden) <= EXACT_LIMIT


class Study:
    """A study in progress: config, data, run directory and the population."""

    def __init__(self, cfg: StudyConfig, out_dir: Path, device: str, progress: Progress | None):
        self.cfg, self.device, self.progress = cfg, device, progress or (lambda *a, **k: None)
        self.rundir = RunDir(out_dir, cfg)
        self.train, self.test = load_study_data(cfg)
        S = cfg.seeds
        self.criteria = [c for c in cfg.pruning.criteria for _ in range(S)]
        self.seeds = [cfg.seed + s for _ in cfg.pruning.criteria for s in range(S)]
        ev = cfg.evaluation
        needs_test = ev.encoding or ev.generation
        if needs_test and (self.train.y is None or self.test is None):
            raise ConfigError("encoding/generation metrics need labelled train and test data")
        self.scorer = None
        if ev.generation:
            self.scorer = GenerationScorer(self.train, C=ev.generation_C, max_iter=ev.classifier_max_iter,
                                           n_train=ev.classifier_n_train, seed=cfg.seed)

    # samples of the current population, streamed into every consumer at once
    def _sample(self, model, rows: _Rows, seed: int) -> SampleStatistics:
        ev, sc = self.cfg.evaluation, self.cfg.sampling
        stats = SampleStatistics()
        counter = PatternCounter(self.train.x) if ev.sampled_patterns and isinstance(model, RBM) else None
        gen = self.scorer.accumulator() if self.scorer is not None else None
        for chunk in iter_samples(model, sc.n_samples, seed=seed, **sc.kwargs()):
            stats.update(chunk)
            if counter is not None:
                counter.update(chunk[0])
            if gen is not None:
                gen.update(chunk[0])
        for k, alive in enumerate(model.alive):
            mean = (stats.mean(k).cpu() * alive.cpu()).sum(1) / alive.cpu().sum(1).clamp(min=1)
            rows.add("mean_activity", mean, layer=k)
        if counter is not None:
            rows.add("log_frequency_mse", counter.log_frequency_mse())
            rows.add("sampled_kl", counter.kl())
        if gen is not None:
            for name, values in gen.result().items():
                rows.add(name, values)
        return stats

    def evaluate(self, model, iteration: int, stage: str, sample: bool) -> tuple[list[dict], SampleStatistics | None]:
        """Metrics rows of one stage (SPEC §6) and, if ``sample``, the model samples' statistics (for the next pruning)."""
        rows = _Rows(self.criteria, self.seeds, iteration, stage)
        for l, m in enumerate(model.weight_masks):
            rows.add("weights", m.sum((1, 2)), layer=l)
        for k, a in enumerate(model.alive):
            rows.add("alive_units", a.sum(1), layer=k)
        rows.add("disconnected_visible", (~model.weight_masks[0].any(2)).sum(1))
        ev = self.cfg.evaluation
        if ev.exact and _enumerable(model):
            log_z = model.log_partition()
            rows.add("exact_kl", exact_kl(model, self.train.x, log_z))
            rows.add("exact_log_likelihood", exact_log_likelihood(model, self.train.x, log_z))
        if ev.encoding and (stage != "pruned" or ev.encoding_after_pruning):
            rows.add("encoding_error", encoding_error(model, self.train, self.test, C=ev.encoding_C,
                                                      max_iter=ev.classifier_max_iter,
                                                      n_train=ev.classifier_n_train, seed=self.cfg.seed,
                                                      mf_max_iter=ev.mf_max_iter))
        stats = self._sample(model, rows, stage_seed(self.cfg.seed, iteration, "sampled")) if sample else None
        return rows.rows, stats

    def baselines(self) -> list[dict]:
        """Rows of the raw-pixel encoding and test-digit / random-pattern generation baselines."""
        ev = self.cfg.evaluation
        rows = []

        def add(criterion, metric, value):
            rows.append({"criterion": criterion, "seed": -1, "replica": -1, "iteration": -1, "stage": "baseline",
                         "metric": metric, "layer": -1, "value": float(value)})
        if ev.encoding:
            add("raw_pixels", "encoding_error", raw_pixel_error(self.train, self.test, C=ev.encoding_C,
                                                                max_iter=ev.classifier_max_iter,
                                                                n_train=ev.classifier_n_train, seed=self.cfg.seed))
        if self.scorer is not None:
            for name, scores in generation_baselines(self.scorer, self.test, seed=self.cfg.seed).items():
                for metric, value in scores.items():
                    add(name, metric, value)
        return rows


def run(config, out_dir=None, *, seeds: int | None = None, criteria: list[str] | None = None,
        iterations: int | None = None, device: str = "cpu", progress: Progress | None = None,
        keep_checkpoints: bool = False) -> RunResult:
    """Run (or resume) a whole pruning study; returns where its results are (DESIGN.md).

    Parameters
    ----------
    config : preset name, path to a TOML config, dict, or StudyConfig
    out_dir : run directory; default ``runs/<name>-<timestamp>``. An existing directory of the
        same config is resumed from its first incomplete stage; a different config is refused.
    seeds, criteria, iterations : overrides of the config's values
    device : "cpu" or "cuda"
    progress : callable(event, **info), optional
        Events: ``"stage"`` (iteration, stage, index, total), ``"epoch"`` (phase, epoch,
        epochs, info), ``"resume"`` (done), ``"done"`` (seconds).
    keep_checkpoints : keep a checkpoint of every stage (default: the trained population
        and the latest stage only).

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Invalid config, unknown preset or criterion, a different config in ``out_dir``.
    DataError
        Missing or malformed data files.
    """
    t_start = time.perf_counter()
    cfg = resolve_config(config, seeds=seeds, criteria=criteria, iterations=iterations)
    if out_dir is None:
        out_dir = Path("runs") / f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    study = Study(cfg, Path(out_dir), device, progress)
    rd, prog = study.rundir, study.progress
    I = cfg.pruning.iterations
    stages = [(0, "trained")] + [(i, s) for i in range(1, I + 1) for s in ("pruned", "retrained")]
    total = len(stages)
    done = [rd.is_done(i, s) for i, s in stages]
    if any(done):
        prog("resume", done=sum(done), total=total)

    if not rd.is_done(-1, "baseline") and (cfg.evaluation.encoding or cfg.evaluation.generation):
        rd.complete(-1, "baseline", study.baselines(), None, 0.0)

    # Resume: the population of the last completed stage; its samples are re-drawn (same seed).
    model, stats = None, None
    last = max((k for k, d in enumerate(done) if d), default=None)
    if last is not None:
        model = load_model(rd.path / rd.state["checkpoint"], device=device)

    def on_epoch(phase, epoch, info):
        prog("epoch", phase=phase, epoch=epoch, info=info)

    for k, (it, stage) in enumerate(stages):
        if done[k]:
            continue
        prog("stage", iteration=it, stage=stage, index=k, total=total)
        t0 = time.perf_counter()
        extra_rows: list[dict] = []
        if stage == "trained":
            trained = train_initial(cfg, study.train, device, stage_seed(cfg.seed, 0, "trained"), on_epoch)
            model = trained.replicas([s for _ in cfg.pruning.criteria for s in range(cfg.seeds)])
        elif stage == "pruned":
            if stats is None:   # resumed right after a completed "trained"/"retrained" stage
                stats = study._sample(model, _Rows(study.criteria, study.seeds, it - 1, "retrained"),
                                      stage_seed(cfg.seed, it - 1, "sampled"))
            report = prune(model, criterion=study.criteria, percent=cfg.pruning.percent, samples=stats,
                           seed=stage_seed(cfg.seed, it, "pruned"))
            rows = _Rows(study.criteria, study.seeds, it, stage)
            for l in range(report.weights_removed.shape[1]):
                rows.add("weights_removed", report.weights_removed[:, l], layer=l)
                rows.add("weights_by_criterion", report.weights_by_criterion[:, l], layer=l)
            for l in range(report.units_removed.shape[1]):
                rows.add("units_removed", report.units_removed[:, l], layer=l)
            finished = torch.stack([m.sum((1, 2)) == 0 for m in model.weight_masks]).any(0)
            rows.add("finished", finished)
            extra_rows = rows.rows
        else:
            retrain(cfg, model, study.train, stage_seed(cfg.seed, it, "retrained"), on_epoch)
        sample = stage != "pruned" or cfg.evaluation.sample_after_pruning
        rows, new_stats = study.evaluate(model, it, stage, sample=sample)
        if stage != "pruned":
            stats = new_stats
        ckpt = rd.checkpoint_path(it, stage)
        save_model(model, ckpt, metadata={"iteration": it, "stage": stage, "criteria": ",".join(study.criteria),
                                          "seeds": ",".join(map(str, study.seeds))})
        previous = rd.state.get("checkpoint")
        rd.complete(it, stage, extra_rows + rows, str(ckpt.relative_to(rd.path)), time.perf_counter() - t0)
        if previous and not keep_checkpoints and "iter00-trained" not in previous:
            (rd.path / previous).unlink(missing_ok=True)
    seconds = time.perf_counter() - t_start
    rd.mark_finished(seconds_last_session=round(seconds, 3))
    prog("done", seconds=seconds, out_dir=str(rd.path))
    return RunResult(rd.path, cfg, rd.metrics(), seconds)


__all__ = ["run", "RunResult", "resolve_config", "stage_seed", "load_study_data", "train_initial", "retrain"]
