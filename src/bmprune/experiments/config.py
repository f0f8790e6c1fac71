"""Validated study configurations (pydantic), loadable from TOML (DESIGN.md, SPEC §2, §5, §6).

A :class:`StudyConfig` says everything a run computes: the data, the over-parameterised
model and how it is trained, how importance is sampled, the pruning criteria and rates, the
retraining, and the evaluation. Unknown keys and bad values are :class:`ConfigError`s that
name the offending field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..training import schedules


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Geometric(_Strict):
    """Geometric progression from ``start`` to ``stop`` over the epochs (inclusive)."""
    geometric: tuple[float, float]


class Step(_Strict):
    """Piecewise constant: ``values[k]`` from epoch ``boundaries[k-1]`` on."""
    values: list[float]
    boundaries: list[int]


ScheduleConfig = float | list[float] | Geometric | Step


def resolve_schedule(s: ScheduleConfig, epochs: int) -> list[float] | float:
    """A schedule config as a per-epoch list (or a constant)."""
    if isinstance(s, Geometric):
        return schedules.geometric(s.geometric[0], s.geometric[1], epochs)
    if isinstance(s, Step):
        return schedules.step(s.values, s.boundaries, epochs)
    return s


class DataConfig(_Strict):
    """Where the patterns come from (SPEC §3)."""
    source: Literal["mnist", "cifar_patches", "digits", "photo_patches", "file"]
    path: str | None = Field(None, description="file source: .npy/.npz/.csv of 0/1 training patterns")
    test_path: str | None = None
    image_shape: tuple[int, int] | None = None
    radius: float = 2.1
    n_patches: int = Field(90_000, ge=1)
    batches: list[int] | None = None
    n_train: int | None = Field(None, ge=1, description="use a seeded subset of the training set")

    @model_validator(mode="after")
    def _file_needs_path(self):
        if self.source == "file" and not self.path:
            raise ValueError("data.source = 'file' needs data.path")
        return self


class ModelConfig(_Strict):
    """The over-parameterised network (SPEC §1–§2)."""
    kind: Literal["rbm", "dbm"]
    hidden: list[int] = Field(..., min_length=1, description="hidden layer sizes")
    receptive_field: int | None = Field(None, ge=1, description="k×k fields for the first weight layer (needs image data and n_h1 = n_visible)")
    weight_std: float = Field(0.1, gt=0)
    visible_bias: float | Literal["data"] = "data"
    hidden_bias: float | list[float] = -2.0

    @model_validator(mode="after")
    def _shape(self):
        if self.kind == "rbm" and len(self.hidden) != 1:
            raise ValueError("an rbm has exactly one hidden layer")
        if isinstance(self.hidden_bias, list) and len(self.hidden_bias) != len(self.hidden):
            raise ValueError("hidden_bias needs one value per hidden layer")
        return self


class TrainConfig(_Strict):
    """One training phase: CD/PCD for an RBM, mean-field + PCD for a DBM (SPEC §2)."""
    epochs: int = Field(..., ge=0)
    batch_size: int = Field(1, ge=1)
    learning_rate: ScheduleConfig
    momentum: ScheduleConfig = 0.0
    k: int = Field(1, ge=1, description="Gibbs steps per update")
    persistent: bool = False
    n_chains: int | None = Field(None, ge=1)
    max_norm: float | None = Field(6.0, gt=0, description="DBM joint training only")
    mf_max_iter: int = Field(50, ge=1, description="DBM: mean-field iterations per positive phase (SPEC §2: 50)")

    def kwargs(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "batch_size": self.batch_size,
                "learning_rate": resolve_schedule(self.learning_rate, self.epochs),
                "momentum": resolve_schedule(self.momentum, self.epochs)}


class SamplingConfig(_Strict):
    """Model samples for importance estimates and evaluation (SPEC §4)."""
    n_samples: int = Field(..., ge=1)
    mode: Literal["independent", "persistent"] = "independent"
    steps: int = Field(200, ge=1)
    n_chains: int | None = Field(None, ge=1)
    burn_in: int | None = Field(None, ge=0)
    thin: int | None = Field(None, ge=1)
    chunk_size: int | None = Field(None, ge=1)

    def kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"n_samples"})


class PruningConfig(_Strict):
    """Criteria, per-layer rates and iterations (SPEC §5)."""
    criteria: list[str] = Field(..., min_length=1)
    percent: float | list[float] = Field(..., description="per iteration, one value or one per weight layer")
    iterations: int = Field(..., ge=1)

    @field_validator("criteria")
    @classmethod
    def _known(cls, v):
        from ..pruning import CRITERIA
        unknown = [c for c in v if c not in CRITERIA]
        if unknown:
            raise ValueError(f"unknown criteria {unknown}; known: {sorted(CRITERIA)}")
        if len(set(v)) != len(v):
            raise ValueError("criteria must not repeat")
        return v

    @field_validator("percent")
    @classmethod
    def _range(cls, v):
        for p in (v if isinstance(v, list) else [v]):
            if not 0 <= p < 100:
                raise ValueError(f"percent must be in [0, 100), got {p}")
        return v


class EvaluationConfig(_Strict):
    """Which metrics each stage records (SPEC §6)."""
    exact: bool = Field(True, description="exact KL and log-likelihood (enumerable RBMs)")
    sampled_patterns: bool = Field(False, description="log-frequency MSE and KL(data‖generated) (Fig 2)")
    encoding: bool = False
    generation: bool = False
    sample_after_pruning: bool = Field(False, description="also draw model samples right after pruning")
    encoding_after_pruning: bool = Field(True, description="also measure the encoding error right after pruning")
    mf_max_iter: int = Field(50, ge=1, description="DBM: mean-field iterations for the encoding features")
    encoding_C: float = 1.0
    generation_C: float = 0.1
    classifier_max_iter: int = 200
    classifier_n_train: int | None = Field(None, ge=1, description="fit classifiers on a seeded subset")


class StudyConfig(_Strict):
    """A whole pruning study: one population of replicas = criteria × seeds."""
    name: str
    description: str = ""
    expected_time: str = ""
    data: DataConfig
    model: ModelConfig
    pretrain: list[TrainConfig] | None = Field(None, description="dbm: greedy pre-training, one entry per RBM")
    train: TrainConfig
    retrain: TrainConfig
    sampling: SamplingConfig
    pruning: PruningConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    seeds: int = Field(10, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self):
        if self.model.kind == "dbm" and (self.pretrain is None or len(self.pretrain) != len(self.model.hidden)):
            raise ValueError("a dbm needs one pretrain entry per hidden layer")
        n_layers = len(self.model.hidden)
        if isinstance(self.pruning.percent, list) and len(self.pruning.percent) != n_layers:
            raise ValueError(f"pruning.percent has {len(self.pruning.percent)} values for {n_layers} weight layers")
        return self

    def with_overrides(self, **changes: Any) -> "StudyConfig":
        """A validated copy with top-level or dotted keys replaced, e.g. ``{"pruning.iterations": 2}``."""
        data = self.model_dump(mode="json")
        for key, value in changes.items():
            node = data
            *parents, last = key.split(".")
            for p in parents:
                node = node[p]
            node[last] = value
        return load_config(data)


def load_config(source: StudyConfig | dict | str | Path) -> StudyConfig:
    """Validate a config from a dict, a TOML file path, or pass a StudyConfig through.

    Raises
    ------
    ConfigError
        Unknown keys, bad values, unreadable TOML; the message names each offending field.
    """
    if isinstance(source, StudyConfig):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            source = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        source.pop("bmprune_version", None)
    try:
        return StudyConfig.model_validate(source)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid study config:\n" + "\n".join(lines)) from None


__all__ = ["StudyConfig", "DataConfig", "ModelConfig", "TrainConfig", "SamplingConfig",
           "PruningConfig", "EvaluationConfig", "Geometric", "Step", "load_config"]
