"""Validated study configurations (pydantic), loadable from TOML (DESIGN.md, SPEC §2, §5, §6).

A :class:`StudyConfig` says everything a run computes: the data, the over-parameterised
model and how it is trained, how importance is sampled, the pruning criteria and rates, the
retraining, and the evaluation. Training sections are validated by model kind — an RBM is
trained by CD/PCD (:class:`RBMTrainConfig`), a DBM jointly by mean field + PCD
(:class:`DBMTrainConfig`) after greedy pre-training (:class:`PretrainConfig`) — so a setting
that does not apply to the model is an error, never silently ignored. Unknown keys, bad
values and unreadable files are :class:`ConfigError`s that name the offending field.
Everything is checked here, before a run directory is written or anything is trained;
what needs the data (image size, number of patterns) is checked by the runner right after
loading the data, still before anything is written.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..training import schedules

#: Largest number of seeds (replicas per criterion) and pruning iterations a config may ask for.
MAX_SEEDS = 10_000
MAX_ITERATIONS = 1_000
#: Largest layer size (units) a config may ask for.
MAX_UNITS = 1_000_000

def _scalar_types(annotation) -> set[type]:
    """The types of the scalars a field annotation admits (through unions, lists, Literal)."""
    if get_origin(annotation) is Literal:
        return {type(a) for a in get_args(annotation)}
    args = get_args(annotation)
    if args:
        return set().union(*(_scalar_types(a) for a in args if a is not Ellipsis))
    return {annotation} if isinstance(annotation, type) else set()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data):
        """A number field refuses true/false and quoted numbers (pydantic would read true as 1)."""
        if isinstance(data, dict):
            for name, value in data.items():
                f = cls.model_fields.get(name)
                if f is None:
                    continue
                types = _scalar_types(f.annotation)
                if not types or object in types:      # Any: nothing to say
                    continue
                for v in value if isinstance(value, list) else [value]:
                    if (isinstance(v, bool) and bool not in types) or (isinstance(v, str) and str not in types):
                        raise ValueError(f"{name} must be a number, not {v!r}")
        return data


class Geometric(_Strict):
    """Geometric progression from ``start`` to ``stop`` over the epochs (inclusive)."""
    geometric: tuple[float, float]

    @field_validator("geometric")
    @classmethod
    def _positive(cls, v):
        if min(v) <= 0:
            raise ValueError("a geometric schedule needs positive ends")
        return v


class Step(_Strict):
    """Piecewise constant: ``values[k]`` from epoch ``boundaries[k-1]`` on."""
    values: list[float]
    boundaries: list[int]

    @model_validator(mode="after")
    def _shape(self):
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError("a step schedule needs one more value than boundaries")
        if any(b < 0 for b in self.boundaries) or sorted(self.boundaries) != self.boundaries:
            raise ValueError("step boundaries must be ascending epochs ≥ 0")
        return self


ScheduleConfig = float | list[float] | Geometric | Step


def resolve_schedule(s: ScheduleConfig, epochs: int) -> list[float] | float:
    """A schedule config as a per-epoch list (or a constant); training reads it by its update rule."""
    if isinstance(s, Geometric):
        return schedules.geometric(s.geometric[0], s.geometric[1], epochs)
    if isinstance(s, Step):
        return schedules.step(s.values, s.boundaries, epochs)
    return s


def _schedule_values(s: ScheduleConfig) -> list[float]:
    if isinstance(s, Geometric):
        return list(s.geometric)
    if isinstance(s, Step):
        return list(s.values)
    return list(s) if isinstance(s, list) else [s]


class DataConfig(_Strict):
    """Where the patterns come from (SPEC §3)."""
    source: Literal["mnist", "cifar_patches", "digits", "photo_patches", "file"]
    path: str | None = Field(None, description="file source: .npy/.npz/.csv of 0/1 training patterns")
    test_path: str | None = None
    image_shape: tuple[int, int] | None = None
    radius: float = Field(2.1, gt=0, le=16)
    n_patches: int = Field(90_000, ge=1, le=100_000_000)
    batches: list[int] | None = None
    n_train: int | None = Field(None, ge=1, description="use a seeded subset of the training set (≤ its size)")

    @model_validator(mode="after")
    def _file_needs_path(self):
        if self.source == "file" and not self.path:
            raise ValueError("data.source = 'file' needs data.path")
        if self.source != "file" and (self.path or self.test_path):
            raise ValueError(f"data.path / data.test_path apply to source = 'file', not {self.source!r}")
        if self.source != "file" and self.image_shape is not None:
            raise ValueError(f"data.image_shape applies to source = 'file' (the others know theirs), not {self.source!r}")
        if self.source != "cifar_patches" and self.batches is not None:
            raise ValueError(f"data.batches applies to source = 'cifar_patches', not {self.source!r}")
        if self.image_shape is not None and min(self.image_shape) < 1:
            raise ValueError("image_shape needs positive sides")
        return self


class ModelConfig(_Strict):
    """The over-parameterised network (SPEC §1–§2)."""
    kind: Literal["rbm", "dbm"]
    hidden: list[int] = Field(..., min_length=1, description="hidden layer sizes")
    receptive_field: int | None = Field(None, ge=1, description="k×k fields for the first weight layer (needs image data and n_h1 = n_visible)")
    weight_std: float = Field(0.1, gt=0, le=100)
    visible_bias: float | Literal["data"] = "data"
    hidden_bias: float | list[float] = -2.0

    @model_validator(mode="after")
    def _shape(self):
        if self.kind == "rbm" and len(self.hidden) != 1:
            raise ValueError("an rbm has exactly one hidden layer")
        if any(not 1 <= n <= MAX_UNITS for n in self.hidden):
            raise ValueError(f"hidden layer sizes must lie in [1, {MAX_UNITS:,}]; got {self.hidden}")
        if isinstance(self.hidden_bias, list) and len(self.hidden_bias) != len(self.hidden):
            raise ValueError("hidden_bias needs one value per hidden layer")
        return self


class _Training(_Strict):
    epochs: int = Field(..., ge=0, le=100_000)
    batch_size: int = Field(1, ge=1, le=10_000_000)
    learning_rate: ScheduleConfig
    momentum: ScheduleConfig = 0.0
    k: int = Field(1, ge=1, le=100_000, description="Gibbs steps per update")
    update_rule: Literal["classical", "original"] = Field(
        "classical", description="classical momentum, or the original code's lr·(μ·v + g) with a shifted schedule (SPEC §2)")

    @model_validator(mode="after")
    def _ranges(self):
        if any(not 0 <= x < math.inf for x in _schedule_values(self.learning_rate)):
            raise ValueError("learning_rate must be finite and ≥ 0")
        if any(not 0 <= x < 1 for x in _schedule_values(self.momentum)):
            raise ValueError("momentum must lie in [0, 1)")
        for name in ("learning_rate", "momentum"):
            s = getattr(self, name)
            if isinstance(s, list):
                if not s:
                    raise ValueError(f"{name}: an empty schedule")
                readable = self.epochs + (1 if self.update_rule == "original" else 0)
                if self.epochs > 0 and len(s) > readable:
                    raise ValueError(f"{name} has {len(s)} entries but {self.epochs} epochs read at most {readable} "
                                     f"with the {self.update_rule} rule")
        return self

    def schedule_kwargs(self) -> dict[str, Any]:
        """epochs, batch_size, k, update_rule and the resolved schedules, for the training functions."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "k": self.k, "update_rule": self.update_rule,
                "learning_rate": resolve_schedule(self.learning_rate, self.epochs),
                "momentum": resolve_schedule(self.momentum, self.epochs)}


class RBMTrainConfig(_Training):
    """CD-k or PCD-k training of an RBM (SPEC §2)."""
    model_kind: Literal["rbm"] = Field("rbm", exclude=True, repr=False)
    persistent: bool = False
    n_chains: int | None = Field(None, ge=1, le=10_000_000, description="PCD chains (default: the batch size)")

    @model_validator(mode="after")
    def _chains(self):
        if self.n_chains is not None and not self.persistent:
            raise ValueError("n_chains applies to persistent (PCD) training only: set persistent = true")
        return self

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`bmprune.training.train_rbm`."""
        return {**self.schedule_kwargs(), "persistent": self.persistent, "n_chains": self.n_chains}


class PretrainConfig(_Training):
    """CD-k training of one RBM of a DBM's greedy pre-training (SPEC §2)."""


class DBMTrainConfig(_Training):
    """Joint mean-field + PCD training of a DBM (SPEC §2, Salakhutdinov & Larochelle 2010)."""
    model_kind: Literal["dbm"] = Field("dbm", exclude=True, repr=False)
    n_chains: int = Field(100, ge=1, le=10_000_000, description="persistent chains (paper text 100, code 1,000)")
    max_norm: float | None = Field(6.0, gt=0, description="largest L2 norm of a hidden unit's incoming weights")
    mf_max_iter: int = Field(50, ge=1, le=100_000, description="mean-field iterations per positive phase (SPEC §2: 50)")
    chains_init: Literal["random_patterns", "first_patterns_rbm"] = Field(
        "random_patterns", description=(
            "where the persistent chains start: random training patterns with hidden states from the DBM's "
            "bottom-up pass, or (as the original code) the first n_chains training images with their "
            "pre-trained RBMs' hidden samples; initial training only"))

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`bmprune.training.train_dbm` (besides the chains' start)."""
        return {**self.schedule_kwargs(), "n_chains": self.n_chains, "max_norm": self.max_norm,
                "mf_max_iter": self.mf_max_iter}


class SamplingConfig(_Strict):
    """Model samples for importance estimates and evaluation (SPEC §4)."""
    n_samples: int = Field(..., ge=1, le=1_000_000_000)
    mode: Literal["independent", "persistent"] = "independent"
    steps: int = Field(200, ge=1, le=1_000_000)
    n_chains: int | None = Field(None, ge=1, le=100_000_000)
    burn_in: int | None = Field(None, ge=0, le=1_000_000)
    thin: int | None = Field(None, ge=1, le=1_000_000)
    chunk_size: int | None = Field(None, ge=1, le=100_000_000)

    @model_validator(mode="after")
    def _mode(self):
        if self.mode == "independent" and any(x is not None for x in (self.n_chains, self.burn_in, self.thin)):
            raise ValueError("n_chains, burn_in and thin apply to mode = 'persistent' only")
        if self.mode == "persistent" and self.chunk_size is not None:
            raise ValueError("chunk_size applies to mode = 'independent' only")
        return self

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`bmprune.iter_samples` besides n_samples."""
        return self.model_dump(exclude={"n_samples"})


def _registered(names: list[str], registry: dict, what: str) -> list[str]:
    """``names`` if each is a key of ``registry`` and none repeats (else ValueError listing the known ones)."""
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {list(registry)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} must not repeat")
    return names


PercentConfig = float | list[float]


def _check_percent(p: PercentConfig, where: str) -> None:
    for q in (p if isinstance(p, list) else [p]):
        if not 0 < q <= 100:
            raise ValueError(f"{where}: percent must lie in (0, 100]; got {q}")


class PruningConfig(_Strict):
    """Criteria, per-layer and per-iteration rates, iterations, and the thesis's options (SPEC §5; thesis §3.3).

    ``percent`` is one value for every weight layer or one per weight layer;
    ``percent_schedule`` (optional) gives one such entry per iteration (a shorter list holds
    its last entry). The schedule of steps is generated from these by
    :func:`bmprune.experiments.schedule.build_schedule`.
    """
    criteria: list[str] = Field(..., min_length=1)
    percent: PercentConfig | None = Field(None, description="per iteration, one value or one per weight layer")
    percent_schedule: list[PercentConfig] | None = Field(
        None, min_length=1, description="per-iteration rates (each one value or one per weight layer)")
    iterations: int = Field(..., ge=1, le=MAX_ITERATIONS, description="pruning steps")
    threshold: float | None = Field(None, gt=0, description="prune every weight whose score is below it (thesis §4.1.3)")
    keep_units: int | list[int] | None = Field(None, description="unit criteria: hidden units kept per hidden layer")
    remove_units: bool = Field(True, description="remove hidden units left without weights (False: keep them)")
    remove_dead_ends: bool = Field(True, description="also remove intermediate units without weights above")
    rescale_weights: bool = Field(False, description="after unit removal: incoming weights × n_before/n_after")
    reset_hidden_bias: bool = Field(False, description="hidden biases ← mean activation before pruning (thesis §4.2.2.1)")
    schedule: Literal["joint", "layer1-first", "layer2-first"] = Field(
        "joint", description="prune every weight layer at each step, or alternate the layers (thesis §3.3.4)")
    minimal_model: bool = Field(False, description="finally train the pruned architecture from scratch (thesis §3.4.3)")

    @field_validator("criteria")
    @classmethod
    def _known(cls, v):
        from ..pruning import CRITERIA
        return _registered(v, CRITERIA, "criteria")

    @model_validator(mode="after")
    def _range(self):
        from ..pruning import CRITERIA
        if self.percent is not None:
            _check_percent(self.percent, "pruning.percent")
        for i, p in enumerate(self.percent_schedule or []):
            _check_percent(p, f"pruning.percent_schedule[{i}]")
        if self.percent_schedule is not None and len(self.percent_schedule) > self.iterations:
            raise ValueError(f"pruning.percent_schedule has {len(self.percent_schedule)} entries for "
                             f"{self.iterations} iterations")
        kinds = {CRITERIA[c].selection for c in self.criteria}
        unit_criteria = [c for c in self.criteria if CRITERIA[c].selection == "unit_scores"]
        if unit_criteria and self.keep_units is None:
            raise ValueError(f"criteria {unit_criteria} remove whole units: give pruning.keep_units")
        needs_percent = "count" in kinds or ("threshold" in kinds and self.threshold is None) or \
            ("units" in kinds and self.keep_units is None)
        if needs_percent and self.percent is None and self.percent_schedule is None:
            raise ValueError("pruning.percent (or percent_schedule) is needed by the criteria "
                             f"{[c for c in self.criteria if CRITERIA[c].selection != 'unit_scores']}")
        if self.threshold is not None and kinds & {"count", "units"}:
            raise ValueError("pruning.threshold applies to importance criteria, not random_weights / random_units")
        for k in (self.keep_units if isinstance(self.keep_units, list) else [self.keep_units or 1]):
            if not 0 <= k <= MAX_UNITS:
                raise ValueError(f"pruning.keep_units must lie in [0, {MAX_UNITS:,}]; got {k}")
        return self

    def options(self, n_hidden_layers: int):
        """The :class:`~bmprune.pruning.PruneOptions` of every pruning step."""
        from ..pruning import PruneOptions
        keep = self.keep_units
        if keep is not None:
            keep = tuple(keep) if isinstance(keep, list) else (keep,) * n_hidden_layers
        return PruneOptions(threshold=self.threshold, keep_units=keep, remove_units=self.remove_units,
                            remove_dead_ends=self.remove_dead_ends, rescale_weights=self.rescale_weights,
                            reset_hidden_bias=self.reset_hidden_bias)


class EvaluationConfig(_Strict):
    """Which metrics each stage records and their settings (SPEC §6).

    ``metrics`` lists names of :data:`bmprune.evaluation.metrics.METRICS` (None: the
    registry's defaults); the structural metrics (weights, alive units, mean activity, what
    pruning removed) are always recorded.
    """
    metrics: list[str] | None = Field(None, description="metrics to record (see bmprune.evaluation.metrics)")
    sample_after_pruning: bool = Field(False, description="also draw model samples right after pruning")
    encoding_after_pruning: bool = Field(True, description="also measure the encoding error right after pruning")
    mf_max_iter: int = Field(50, ge=1, le=100_000, description="DBM: mean-field iterations for the encoding features")
    encoding_C: float = Field(1.0, gt=0)
    generation_C: float = Field(0.1, gt=0)
    classifier_max_iter: int = Field(200, ge=1, le=1_000_000)
    classifier_n_train: int | None = Field(None, ge=1, description="fit classifiers on a seeded subset")
    options: dict[str, dict[str, int | float | str | bool | None]] = Field(
        default_factory=dict, description="per-metric settings, e.g. {encoding_error_svm = {n_train = 2000}}")

    @field_validator("options")
    @classmethod
    def _known_options(cls, v):
        from ..evaluation.metrics import METRICS
        for name, opts in v.items():
            if name not in METRICS:
                raise ValueError(f"options for an unknown metric {name!r}")
            unknown = sorted(set(opts) - set(METRICS[name].options))
            if unknown:
                raise ValueError(f"metric {name!r} has no options {unknown}; its options: {sorted(METRICS[name].options)}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _legacy_flags(cls, data):
        """Configs of bmprune 0.1 switched metrics on with flags: map them to ``metrics``."""
        if not isinstance(data, dict) or not {"exact", "sampled_patterns", "encoding", "generation"} & set(data):
            return data
        data = dict(data)
        if "metrics" in data:
            raise ValueError("give either evaluation.metrics or the old flags (exact, sampled_patterns, …), not both")
        names = []
        for flag, outputs, default in (("exact", ["exact_kl", "exact_log_likelihood"], True),
                                       ("sampled_patterns", ["sampled_patterns"], False),
                                       ("encoding", ["encoding_error"], False), ("generation", ["generation"], False)):
            if data.pop(flag, default):
                names += outputs
        data["metrics"] = names
        return data

    @field_validator("metrics")
    @classmethod
    def _known(cls, v):
        if v is None:
            return v
        from ..evaluation.metrics import METRICS
        return _registered(v, METRICS, "metrics")


#: Training of the model kind: :class:`RBMTrainConfig` or :class:`DBMTrainConfig`.
TrainConfig = Annotated[RBMTrainConfig | DBMTrainConfig, Field(discriminator="model_kind")]


class StudyConfig(_Strict):
    """A whole pruning study: one population of replicas = criteria × seeds."""
    name: str = Field(..., min_length=1, max_length=100)
    description: str = ""
    expected_time: str = ""
    data: DataConfig
    model: ModelConfig
    pretrain: list[PretrainConfig] | None = Field(None, description="dbm: greedy pre-training, one entry per RBM")
    train: TrainConfig
    retrain: TrainConfig
    sampling: SamplingConfig
    pruning: PruningConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    seeds: int = Field(10, ge=1, le=MAX_SEEDS)
    seed: int = Field(0, ge=0, lt=2**32)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v):
        if v in (".", "..") or any(c in v for c in '/\\:*?"<>|\0') or v != v.strip() or not v.isprintable():
            raise ValueError(f"name must be a plain file name (no path separators or special characters); got {v!r}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _training_by_kind(cls, data):
        """Validate train/retrain with the model kind's training config (settings that don't apply are errors)."""
        if not isinstance(data, dict):
            return data
        kind = (data.get("model") or {}).get("kind") if isinstance(data.get("model"), dict) else \
            getattr(data.get("model"), "kind", None)
        section = {"rbm": RBMTrainConfig, "dbm": DBMTrainConfig}.get(kind)
        if section is None:
            return data
        data = dict(data)
        for key in ("train", "retrain"):
            value = data.get(key)
            if isinstance(value, BaseModel):
                value = value.model_dump(exclude_unset=True)
            if isinstance(value, dict):
                _no_foreign_keys(value, section, kind, key)
                data[key] = {**value, "model_kind": kind}
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if self.model.kind == "dbm" and (self.pretrain is None or len(self.pretrain) != len(self.model.hidden)):
            raise ValueError("a dbm needs one pretrain entry per hidden layer")
        if self.model.kind == "rbm" and self.pretrain is not None:
            raise ValueError("pretrain applies to a dbm only")
        n_layers = len(self.model.hidden)
        for p in [self.pruning.percent, *(self.pruning.percent_schedule or [])]:
            if isinstance(p, list) and len(p) != n_layers:
                raise ValueError(f"pruning.percent has {len(p)} values for {n_layers} weight layers")
        keep = self.pruning.keep_units
        if isinstance(keep, list) and len(keep) != n_layers:
            raise ValueError(f"pruning.keep_units has {len(keep)} values for {n_layers} hidden layers")
        if self.pruning.schedule != "joint" and n_layers < 2:
            raise ValueError(f"pruning.schedule = {self.pruning.schedule!r} alternates weight layers: a dbm only")
        if "eigenvector_fi" in self.pruning.criteria and self.model.kind != "rbm":
            raise ValueError("criterion eigenvector_fi needs the exact FIM: an rbm small enough to enumerate")
        return self

    def with_overrides(self, **changes: Any) -> "StudyConfig":
        """A validated copy with top-level or dotted keys replaced, e.g. ``{"pruning.iterations": 2}``
        (list entries by index: ``"pretrain.0.epochs"``; see :func:`set_dotted`).

        Raises ConfigError for a key that names no field or an invalid value.
        """
        data = self.model_dump(mode="json", exclude_unset=False)
        for key, value in changes.items():
            set_dotted(data, key, value)
        return load_config(data)


def set_dotted(tree: dict, key: str, value: Any) -> None:
    """Set a dotted key (``pruning.percent``, ``pretrain.0.epochs``) in a config dict.

    A missing table or a non-table value on the way is replaced by a table, so that
    ``train.learning_rate.geometric`` turns a constant rate into a geometric schedule; a
    misspelt field then fails validation with its name.
    """
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"{key!r} is not a dotted config key")
    node: Any = tree
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                where = ".".join(parts[:depth])
                raise ConfigError(f"{key}: {where} is a list of {len(node)}; {part!r} is not an index into it")
            slot: Any = int(part)
        else:
            slot = part
        if last:
            node[slot] = copy.deepcopy(value)
            return
        child = node[slot] if isinstance(node, list) else node.get(slot)
        if not isinstance(child, (dict, list)):
            child = node[slot] = {}
        node = child


def _no_foreign_keys(value: dict, section: type[BaseModel], kind: str, key: str) -> bool:
    """Whether ``value`` only uses the section's fields; raises a clear error naming the others."""
    fields = [f for f in section.model_fields if f != "model_kind"]
    foreign = sorted(set(value) - set(fields))
    if foreign:
        raise ValueError(f"{key}: {', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not "
                         f"{'a setting' if len(foreign) == 1 else 'settings'} of {kind} training "
                         f"(settings: {', '.join(fields)})")
    return True


def load_config(source: StudyConfig | dict | str | Path) -> StudyConfig:
    """Validate a config from a dict, a TOML file path, or pass a StudyConfig through.

    Raises
    ------
    ConfigError
        Unknown keys, bad values, settings that do not apply to the model kind, an
        unreadable, non-UTF-8 or invalid TOML file; the message names each offending field.
    """
    if isinstance(source, StudyConfig):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            source = tomllib.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"cannot read config {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        source.pop("bmprune_version", None)
    if not isinstance(source, dict):
        raise ConfigError(f"a config is a TOML file, a dict or a StudyConfig; got {type(source).__name__}")
    try:
        return StudyConfig.model_validate(source)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = [str(p) for i, p in enumerate(e["loc"])
                   if not (i == 1 and e["loc"][0] in ("train", "retrain") and p in ("rbm", "dbm"))]
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"  {'.'.join(loc) or '(config)'}: {msg}")
        raise ConfigError("invalid study config:\n" + "\n".join(dict.fromkeys(lines))) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"invalid study config: {exc}") from None


__all__ = ["StudyConfig", "DataConfig", "ModelConfig", "RBMTrainConfig", "DBMTrainConfig", "PretrainConfig", "TrainConfig",
           "SamplingConfig", "PruningConfig", "EvaluationConfig", "Geometric", "Step", "load_config",
           "resolve_schedule", "MAX_SEEDS", "MAX_ITERATIONS"]
