"""Stages as data: the prune–retrain schedule of a study, generated from its config (SPEC §5).

A study is a list of :class:`Step` s, each recorded as one stage of the run directory
(``"iteration:stage"`` in state.json): ``(0, "trained")`` — train the over-parameterised
population and evaluate it — then per iteration i ``(i, "pruned")`` — estimate importance
from the previous stage's model samples, prune the layers the step names by their percent,
remove stranded units, evaluate — and ``(i, "retrained")`` — retrain, evaluate, draw the
samples the next pruning step uses. The runner executes the steps in order and nothing else;
a different schedule is a different generator, not a different loop.

Per-iteration and per-layer rates come from ``pruning.percent`` (one value, or one per weight
layer) and ``pruning.percent_schedule`` (one such entry per iteration; a shorter list holds
its last entry). A percent of 0 leaves that layer alone in that step. ``pruning.schedule``
"layer1-first" / "layer2-first" (the thesis's §3.3.4) prune one weight layer per step,
alternating, starting with W₁ or W₂ (each step is an iteration); "joint" prunes all layers
from the same samples. ``pruning.minimal_model`` adds a final step ``(I, "minimal")``: the
final pruned architecture trained from scratch (thesis §3.4.3).

>>> from bmprune.experiments import get_preset
>>> [(s.iteration, s.stage, s.percent) for s in build_schedule(get_preset("quick-dbm"))][:3]
[(0, 'trained', ()), (1, 'pruned', (10.0, 25.0)), (1, 'retrained', ())]
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import StudyConfig

#: Stage names in the order of one iteration ("minimal" only after the last).
STAGE_ORDER = ("trained", "pruned", "retrained", "minimal")


@dataclass(frozen=True)
class Step:
    """One stage of a study.

    Attributes
    ----------
    iteration : int
        0 for the trained population, 1 … I for the pruning iterations.
    stage : {"trained", "pruned", "retrained", "minimal"}
    percent : tuple of float
        ``"pruned"`` steps: the percent q of the existing weights pruned in each weight layer
        (0: the layer is not pruned). Empty for the other stages.
    """

    iteration: int
    stage: str
    percent: tuple[float, ...] = ()

    @property
    def key(self) -> str:
        """The step's key in state.json: ``"iteration:stage"``."""
        return f"{self.iteration}:{self.stage}"

    @property
    def samples(self) -> bool:
        """Whether the step draws model samples by default (pruning steps only when asked to)."""
        return self.stage != "pruned"

    @property
    def trains(self) -> bool:
        """Whether the step starts from a freshly initialised population (trained, minimal)."""
        return self.stage in ("trained", "minimal")


def layer_percents(cfg: StudyConfig, iteration: int) -> tuple[float, ...]:
    """The per-weight-layer percent of pruning iteration ``iteration`` (1-based); 0 for a layer
    the schedule leaves alone (unit criteria and fixed thresholds read no percent: 0)."""
    L = len(cfg.model.hidden)
    sched, p = cfg.pruning.percent_schedule, cfg.pruning.percent
    p = p if not sched else sched[min(iteration, len(sched)) - 1]
    q = (0.0,) * L if p is None else tuple(float(x) for x in p) if isinstance(p, list) else (float(p),) * L
    if cfg.pruning.schedule == "joint":
        return q
    first = 0 if cfg.pruning.schedule == "layer1-first" else L - 1          # alternate W₁ and W_L
    layer = first if iteration % 2 == 1 else (L - 1 - first)
    return tuple(x if l == layer else 0.0 for l, x in enumerate(q))


def build_schedule(cfg: StudyConfig) -> list[Step]:
    """The study's steps: trained, then (pruned, retrained) per iteration, then the minimal model (SPEC §5)."""
    steps = [Step(0, "trained")]
    for i in range(1, cfg.pruning.iterations + 1):
        steps += [Step(i, "pruned", layer_percents(cfg, i)), Step(i, "retrained")]
    if cfg.pruning.minimal_model:
        steps.append(Step(cfg.pruning.iterations, "minimal"))
    return steps


__all__ = ["STAGE_ORDER", "Step", "build_schedule", "layer_percents"]
