"""The metric registry: every number a study records, defined once (SPEC §6; DESIGN.md).

A :class:`Metric` is a name, the models and stages it applies to, how it is computed from a
:class:`MetricContext` (directly, from the stage's sample statistics, or by streaming the
model samples through an accumulator), optional baselines computed once per run, and how the
report shows each of its outputs (:class:`Display`). The study runner loops over the metrics
a config selects and the report over the metrics a run recorded; neither spells a metric
out, so adding a metric means adding one :func:`register` call here (or in a module that
imports this one).

>>> from bmprune.evaluation.metrics import METRICS
>>> sorted(m for m in METRICS if METRICS[m].always)
['mean_activity', 'pruning', 'structure']

Values returned by a metric are per replica: a tensor or array of shape (R,) (recorded with
layer −1), or a dict layer → (R,) for per-layer metrics. Units: nats for likelihoods and KL,
fractions (0–1) for errors, activities and probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from ..errors import ConfigError

#: The stages of a study at which metrics are recorded (SPEC §6; "minimal": the thesis's minimal model).
STAGES = ("trained", "pruned", "retrained", "minimal")

Values = Any  # Tensor/array (R,) or dict[int, Tensor/array (R,)]


@dataclass(frozen=True)
class Display:
    """How the report shows one recorded output.

    Attributes
    ----------
    title : str
        Table caption, with units.
    section : str
        Where it goes: "table1", "fig1" … "fig4", "figS1", "other", or "hidden" (recorded, not
        tabulated on its own).
    digits, scale : int, float
        Decimals and a factor (e.g. 100 for %).
    stages : tuple of str, optional
        Stages shown (default: all recorded).
    layers : {"single", "each", "hidden", "sum"}
        "single": the value as recorded; "each"/"hidden": one table per (hidden) layer;
        "sum": layers added.
    """

    title: str
    section: str = "other"
    digits: int = 4
    scale: float = 1.0
    stages: tuple[str, ...] | None = None
    layers: str = "single"


class Accumulator(Protocol):
    """Streams model samples: ``update(states)`` per chunk, then ``result()``."""

    def update(self, states: Sequence[torch.Tensor]) -> None: ...

    def result(self) -> Mapping[str, Values]: ...


@dataclass
class MetricContext:
    """What a metric may read at one stage of a study.

    Attributes
    ----------
    model : BoltzmannMachine
        The population being evaluated (R replicas).
    iteration : int
    stage : str
        "trained", "pruned" or "retrained".
    train, test : bmprune.data.Dataset (test may be None)
    settings : EvaluationConfig-like
        The study's evaluation settings (classifier C, iterations, subset sizes, …).
    seed : int
        The study's seed (for seeded classifier subsets).
    samples : SampleStatistics or None
        Statistics of this stage's model samples, when drawn.
    prune_report : PruneReport or None
        What the pruning step of this stage removed (stage "pruned").
    cache : dict
        Shared by the metrics of one stage (e.g. log Z, computed once).
    run_cache : dict
        Shared by every stage of a run (e.g. a classifier fitted once).
    idents : list of (seed, criterion), optional
        Who each replica is; a metric that draws random numbers uses :meth:`streams`.
    """

    model: Any
    iteration: int
    stage: str
    train: Any
    test: Any = None
    settings: Any = None
    seed: int = 0
    samples: Any = None
    prune_report: Any = None
    cache: dict = field(default_factory=dict)
    run_cache: dict = field(default_factory=dict)
    idents: list | None = None

    def streams(self, label: str):
        """Per-replica random streams keyed (seed, criterion, iteration, stage, ``label``)
        (DESIGN §Randomness): a replica's draws do not depend on its population."""
        from ..rng import Streams
        idents = self.idents or [(self.seed, r) for r in range(self.model.n_replicas)]
        return Streams.from_keys([(*k, self.iteration, self.stage, label) for k in idents], self.model.device)

    def log_partition(self) -> torch.Tensor:
        """Exact log Z of the model (R,), float64, computed once per stage."""
        if "log_z" not in self.cache:
            self.cache["log_z"] = self.model.log_partition()
        return self.cache["log_z"]

    def setting(self, name: str, default=None):
        """An evaluation setting by name (``default`` when the settings lack it)."""
        return getattr(self.settings, name, default) if self.settings is not None else default

    def option(self, metric: str, key: str):
        """A metric's option: ``evaluation.options.<metric>.<key>`` of the config, else the metric's default."""
        given = (self.setting("options") or {}).get(metric, {})
        return given[key] if key in given else METRICS[metric].options[key]


def _always(ctx: MetricContext) -> str | None:
    return None


@dataclass(frozen=True)
class Metric:
    """One entry of the registry.

    Attributes
    ----------
    name : str
        Registry key; what a config lists under ``evaluation.metrics``.
    description : str
    outputs : dict of str → Display
        The metric names it records and how the report shows each.
    compute : callable(ctx) → dict of output → values, optional
        Direct computation (may read ``ctx.samples`` when ``needs_samples``).
    accumulate : callable(ctx) → Accumulator, optional
        Streaming computation over the stage's model samples.
    baseline : callable(ctx) → dict of baseline name → dict of output → float, optional
        Reference values computed once per run (recorded with stage "baseline"; ``ctx.model``
        is None). Returns {} when the data do not allow them.
    applies : callable(ctx) → None or str
        None when the metric applies to this model/data; else the reason it does not.
    stages : frozenset of str
    needs_samples : bool
        ``compute`` reads ``ctx.samples``; only recorded at stages that drew samples.
    default : bool
        Recorded when a config does not list its metrics.
    always : bool
        Recorded in every study, whatever the config lists.
    options : dict
        The metric's settings and their defaults; a config overrides them under
        ``evaluation.options.<name>`` (read with :meth:`MetricContext.option`).
    """

    name: str
    description: str
    outputs: dict[str, Display]
    compute: Callable[[MetricContext], Mapping[str, Values]] | None = None
    accumulate: Callable[[MetricContext], Accumulator] | None = None
    baseline: Callable[[MetricContext], Mapping[str, Mapping[str, float]]] | None = None
    applies: Callable[[MetricContext], str | None] = _always
    stages: frozenset = frozenset(STAGES)
    needs_samples: bool = False
    default: bool = False
    always: bool = False
    options: dict = field(default_factory=dict)

    @property
    def uses_samples(self) -> bool:
        """Whether it can only be recorded at a stage that drew model samples."""
        return self.needs_samples or self.accumulate is not None


#: The registry: metric name → :class:`Metric`, in report order.
METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` (its outputs must not clash with another's)."""
    taken = {o: m.name for m in METRICS.values() for o in m.outputs if m.name != metric.name}
    clash = [o for o in metric.outputs if o in taken]
    if clash:
        raise ValueError(f"metric {metric.name!r}: outputs {clash} already recorded by {[taken[o] for o in clash]}")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; ConfigError listing the known ones otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}") from None


def select(names: Sequence[str] | None) -> list[Metric]:
    """The metrics a study records: every ``always`` one, plus ``names`` (None: the defaults)."""
    chosen = [n for n, m in METRICS.items() if m.default] if names is None else list(names)
    for n in chosen:
        get_metric(n)
    return [m for n, m in METRICS.items() if m.always or n in chosen]


def display_of(output: str) -> Display | None:
    """How the report shows a recorded output (None when no registered metric records it)."""
    for m in METRICS.values():
        if output in m.outputs:
            return m.outputs[output]
    return None


# --- helpers -----------------------------------------------------------------------------
def _layers(values: Sequence) -> dict[int, Values]:
    return dict(enumerate(values))


def _per_replica_sum(masks: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
    return {l: m.sum(tuple(range(1, m.dim()))) for l, m in enumerate(masks)}


# --- structure: recorded everywhere (SPEC §6 "always recorded") ---------------------------
def _connected(model) -> list[torch.Tensor]:
    """Per layer, units (alive) with at least one weight to a neighbouring layer: (R, n_l) bool."""
    out = []
    for k, a in enumerate(model.alive):
        any_w = torch.zeros_like(a)
        if k > 0:
            any_w |= model.weight_masks[k - 1].any(1)
        if k < model.n_layers:
            any_w |= model.weight_masks[k].any(2)
        out.append(a & any_w)
    return out


def _structure(ctx: MetricContext) -> dict[str, Values]:
    m = ctx.model
    return {"weights": _per_replica_sum(m.weight_masks), "alive_units": _per_replica_sum(m.alive),
            "connected_units": _per_replica_sum(_connected(m)),
            "disconnected_visible": (~m.weight_masks[0].any(2)).sum(1)}


register(Metric(
    "structure", "remaining weights and alive units per layer; visible units with no weight left",
    outputs={"weights": Display("Remaining weights", "table1", digits=0, stages=("trained", "pruned"), layers="sum"),
             "alive_units": Display("Alive units", "table1", digits=1, layers="hidden"),
             "connected_units": Display("Units with at least one weight", "hidden", digits=1, layers="each"),
             "disconnected_visible": Display("Visible units with no weight left", "table1", digits=1,
                                             stages=("trained", "pruned"))},
    compute=_structure, always=True))


def _pruning(ctx: MetricContext) -> dict[str, Values]:
    rep = ctx.prune_report
    finished = torch.stack([m.sum((1, 2)) == 0 for m in ctx.model.weight_masks]).any(0)
    return {"weights_removed": _layers(rep.weights_removed.T), "weights_by_criterion": _layers(rep.weights_by_criterion.T),
            "units_removed": _layers(rep.units_removed.T), "finished": finished}


register(Metric(
    "pruning", "what one pruning step removed: weights by the criterion, by unit removal, units",
    outputs={"weights_removed": Display("Weights removed", "hidden"),
             "weights_by_criterion": Display("Weights removed by the criterion", "hidden"),
             "units_removed": Display("Units removed", "hidden"),
             "finished": Display("A weight layer is empty", "hidden")},
    compute=_pruning, stages=frozenset({"pruned"}), always=True,
    applies=lambda ctx: None if ctx.prune_report is not None else "no pruning step"))


def _mean_activity(ctx: MetricContext) -> dict[str, Values]:
    out = {}
    for k, alive in enumerate(ctx.model.alive):
        a = alive.to(torch.float64).to(ctx.samples.mean(k).device)
        out[k] = (ctx.samples.mean(k) * a).sum(1) / a.sum(1).clamp(min=1)
    return {"mean_activity": out}


def _fim_trace(ctx: MetricContext) -> dict[str, Values]:
    """Σ of the FIM diagonal (variance estimates) over the existing weights and alive units' biases."""
    m, st = ctx.model, ctx.samples
    total = 0
    for l, mask in enumerate(m.weight_masks):
        total = total + (st.variance_fi(l) * mask.to(torch.float64).to(st.pair_sums[l].device)).sum((1, 2))
    for k, a in enumerate(m.alive):
        total = total + (st.bias_variance_fi(k) * a.to(torch.float64).to(st.sums[k].device)).sum(1)
    return {"fim_trace": total}


register(Metric(
    "fim_trace", "trace of the FIM diagonal over existing parameters, from model samples (thesis Table 4.1)",
    outputs={"fim_trace": Display("Trace of the FIM (sum of its diagonal over existing parameters; sampled)",
                                  "other", digits=2, stages=("trained", "retrained", "minimal"))},
    compute=_fim_trace, needs_samples=True, always=True))


register(Metric(
    "mean_activity", "mean firing rate of the alive units of each layer in model samples (the paper's Fig S1)",
    outputs={"mean_activity": Display("Mean activity of the alive units (fraction on, model samples)", "figS1",
                                      digits=4, stages=("trained", "retrained", "minimal"), layers="hidden")},
    compute=_mean_activity, needs_samples=True, always=True))


# --- exact likelihoods of enumerable models (SPEC §6 "Small RBMs") -------------------------
def _enumerable(ctx: MetricContext) -> str | None:
    from ..models.base import EXACT_LIMIT
    if ctx.model.is_enumerable(EXACT_LIMIT):
        return None
    return f"the model is too large to enumerate (more than {EXACT_LIMIT:,} states)"


def _exact_kl(ctx: MetricContext) -> dict[str, Values]:
    from .likelihood import exact_kl
    return {"exact_kl": exact_kl(ctx.model, ctx.train.x, ctx.log_partition())}


def _exact_ll(ctx: MetricContext) -> dict[str, Values]:
    from .likelihood import exact_log_likelihood
    return {"exact_log_likelihood": exact_log_likelihood(ctx.model, ctx.train.x, ctx.log_partition())}


register(Metric(
    "exact_kl", "KL(data ‖ model) in nats, the model exactly normalised over all states",
    outputs={"exact_kl": Display("Exact KL(data‖model), nats", "fig2", digits=4)},
    compute=_exact_kl, applies=_enumerable, default=True))
register(Metric(
    "exact_log_likelihood", "mean exact log p(v) of the training data, nats",
    outputs={"exact_log_likelihood": Display("Exact mean log-likelihood of the training data, nats", "fig2", digits=4)},
    compute=_exact_ll, applies=_enumerable, default=True))


# --- pattern frequencies of generated samples (the paper's Fig 2) ---------------------------
class _Patterns:
    def __init__(self, ctx: MetricContext) -> None:
        from .patterns import PatternCounter
        self.counter = PatternCounter(ctx.train.x)

    def update(self, states) -> None:
        self.counter.update(states[0])

    def result(self) -> dict[str, Values]:
        return {"log_frequency_mse": self.counter.log_frequency_mse(), "sampled_kl": self.counter.kl()}


register(Metric(
    "sampled_patterns", "log-frequency MSE and KL(data ‖ generated) of the data patterns among model samples",
    outputs={"sampled_kl": Display("Sampled KL(data‖generated), nats", "fig2", digits=4),
             "log_frequency_mse": Display("MSE of log-frequencies (data vs generated), nats²", "fig2", digits=4)},
    accumulate=_Patterns,
    applies=lambda ctx: None if ctx.model.n_visible <= 62 else "pattern codes need ≤ 62 visible units"))


# --- encoding and generation with the paper's classifiers (SPEC §6) --------------------------
def _labelled(ctx: MetricContext) -> str | None:
    if ctx.train.y is None or ctx.test is None or ctx.test.y is None:
        return "needs labelled training and test data"
    return None


def _classifier_kw(ctx: MetricContext) -> dict[str, Any]:
    return {"max_iter": ctx.setting("classifier_max_iter", 200), "n_train": ctx.setting("classifier_n_train"),
            "seed": ctx.seed}


def _encoding(ctx: MetricContext) -> dict[str, Values]:
    from .encoding import encoding_error
    return {"encoding_error": encoding_error(ctx.model, ctx.train, ctx.test, C=ctx.setting("encoding_C", 1.0),
                                             mf_max_iter=ctx.setting("mf_max_iter", 50), **_classifier_kw(ctx))}


def _encoding_baseline(ctx: MetricContext) -> dict[str, dict[str, float]]:
    from .encoding import raw_pixel_error
    if _labelled(ctx):
        return {}
    return {"raw_pixels": {"encoding_error": raw_pixel_error(ctx.train, ctx.test, C=ctx.setting("encoding_C", 1.0),
                                                              **_classifier_kw(ctx))}}


def _encoding_applies(ctx: MetricContext) -> str | None:
    """Labelled data; at the pruned stage only when evaluation.encoding_after_pruning."""
    if ctx.stage == "pruned" and not ctx.setting("encoding_after_pruning", True):
        return "evaluation.encoding_after_pruning = false"
    return _labelled(ctx)


register(Metric(
    "encoding_error", "test error of a logistic regression (C = 1) on the top layer's mean-field code",
    outputs={"encoding_error": Display("Encoding error (%, test set, classifier on the top hidden layer)", "fig3",
                                       digits=2, scale=100, stages=("trained", "retrained", "minimal"))},
    compute=_encoding, baseline=_encoding_baseline, applies=_encoding_applies))


def _svm(ctx: MetricContext, train_x, train_y, test_x, test_y) -> float:
    from sklearn.svm import SVC
    if train_x.shape[1] == 0:
        return float(np.mean(test_y != np.bincount(train_y).argmax()))
    clf = SVC(kernel="rbf", C=float(ctx.option("encoding_error_svm", "C")), gamma="scale")
    return float(1.0 - clf.fit(train_x, train_y).score(test_x, test_y))


def _svm_data(ctx: MetricContext):
    n_train, n_test = ctx.option("encoding_error_svm", "n_train"), ctx.option("encoding_error_svm", "n_test")
    return ctx.train.random_subset(n_train, ctx.seed), ctx.test.random_subset(n_test, ctx.seed)


def _encoding_svm(ctx: MetricContext) -> dict[str, Values]:
    from .encoding import top_features
    train, test = _svm_data(ctx)
    mf = ctx.setting("mf_max_iter", 50)
    f_train, f_test = top_features(ctx.model, train.x, mf_max_iter=mf), top_features(ctx.model, test.x, mf_max_iter=mf)
    return {"encoding_error_svm": np.array([_svm(ctx, a, train.y, b, test.y) for a, b in zip(f_train, f_test)])}


def _encoding_svm_baseline(ctx: MetricContext) -> dict[str, dict[str, float]]:
    if _labelled(ctx):
        return {}
    train, test = _svm_data(ctx)
    err = _svm(ctx, train.x.astype(np.float32), train.y, test.x.astype(np.float32), test.y)
    return {"raw_pixels": {"encoding_error_svm": err}}


register(Metric(
    "encoding_error_svm", "test error of an RBF support-vector machine (C = 1000) on the top layer's code "
    "(thesis Table 4.2), fitted on a seeded subset",
    outputs={"encoding_error_svm": Display("Encoding error with an RBF SVM (%, test subset)", "fig3", digits=2,
                                           scale=100, stages=("trained", "pruned", "retrained", "minimal"))},
    compute=_encoding_svm, baseline=_encoding_svm_baseline, applies=_encoding_applies,
    options={"n_train": 5000, "n_test": 2000, "C": 1000.0}))


def _scorer(ctx: MetricContext):
    if "generation_scorer" not in ctx.run_cache:
        from .generation import GenerationScorer
        ctx.run_cache["generation_scorer"] = GenerationScorer(
            ctx.train, C=ctx.setting("generation_C", 0.1), max_iter=ctx.setting("classifier_max_iter", 200),
            n_train=ctx.setting("classifier_n_train"), seed=ctx.seed)
    return ctx.run_cache["generation_scorer"]


class _Generation:
    def __init__(self, ctx: MetricContext) -> None:
        self.acc = _scorer(ctx).accumulator()

    def update(self, states) -> None:
        self.acc.update(states[0])

    def result(self) -> dict[str, Values]:
        return dict(self.acc.result())


def _generation_baseline(ctx: MetricContext) -> dict[str, dict[str, float]]:
    from .generation import generation_baselines
    if _labelled(ctx):
        return {}
    return generation_baselines(_scorer(ctx), ctx.test, seed=ctx.seed)


def _ais_log_likelihood(ctx: MetricContext) -> dict[str, Values]:
    from .ais import ais, log_likelihood
    opt = lambda key: ctx.option("ais_log_likelihood", key)  # noqa: E731
    res = ais(ctx.model, n_runs=int(opt("n_runs")), n_betas=int(opt("n_betas")), seed=ctx.streams("ais"),
              data=ctx.train.x)
    patterns = ctx.test if ctx.test is not None else ctx.train
    patterns = patterns.random_subset(opt("n_patterns"), ctx.seed)
    ll = log_likelihood(ctx.model, patterns.x, log_z=res, mf_max_iter=ctx.setting("mf_max_iter", 50))
    # the standard error of the mean: over the patterns, and of the AIS log Z, added in quadrature
    return {"ais_log_likelihood": ll.mean, "ais_log_likelihood_sem": (ll.sem ** 2 + res.log_z_std ** 2).sqrt(),
            "ais_log_z": res.log_z}


register(Metric(
    "ais_log_likelihood", "mean log-likelihood of the test patterns (training patterns when there is no test set), "
    "nats, with log Z from annealed importance sampling (a mean-field lower bound for a DBM)",
    outputs={"ais_log_likelihood": Display("AIS log-likelihood of the test data (nats; DBM: mean-field lower bound)",
                                           "figLL", digits=2, stages=("trained", "retrained", "minimal")),
             "ais_log_likelihood_sem": Display("its standard error (patterns and AIS), nats", "hidden"),
             "ais_log_z": Display("AIS log Z, nats", "figLL", digits=2, stages=("trained", "retrained", "minimal"))},
    compute=_ais_log_likelihood, stages=frozenset({"trained", "retrained", "minimal"}),
    options={"n_runs": 100, "n_betas": 10_000, "n_patterns": 10_000}))


register(Metric(
    "generation", "a raw-pixel classifier (C = 0.1) on generated samples: quality, diversity, class balance",
    outputs={"generation_quality": Display("Quality (%, mean winning-class probability)", "fig4", digits=2,
                                           scale=100, stages=("trained", "retrained", "minimal")),
             "generation_entropy": Display("Diversity (nats, entropy of assigned classes; max ln 10 = 2.303)", "fig4",
                                           digits=3, stages=("trained", "retrained", "minimal")),
             "generation_class_ratio": Display("Min/max class-count ratio", "fig4", digits=3,
                                               stages=("trained", "retrained", "minimal"))},
    accumulate=_Generation, baseline=_generation_baseline, applies=_labelled))


def as_rows(values: Mapping[str, Values]) -> list[tuple[str, int, np.ndarray]]:
    """A metric's result as (output, layer, values (R,) float64) triples; layer −1 for single values."""
    out = []
    for name, v in values.items():
        items = v.items() if isinstance(v, Mapping) else [(-1, v)]
        for layer, x in items:
            x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
            out.append((name, int(layer), np.atleast_1d(x)))
    return out


__all__ = ["Accumulator", "Display", "METRICS", "Metric", "MetricContext", "STAGES", "as_rows", "display_of",
           "get_metric", "register", "select"]
