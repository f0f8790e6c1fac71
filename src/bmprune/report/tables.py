"""Tables of a run's metrics (SPEC §6–§7): summaries over seeds, Table 1, markdown output.

Every function takes the tidy metrics table of a run directory (columns ``criterion, seed,
replica, iteration, stage, metric, layer, value``, see :mod:`bmprune.experiments.rundir`)
and returns a :class:`pandas.DataFrame`. Summaries are over the seeds of one criterion:
the mean and the sample standard deviation (ddof = 1; undefined, shown as "–", with one
seed). Nothing here reads files or draws figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError

#: Stage order within one iteration (iteration 0 has only "trained").
STAGE_ORDER = {"trained": 0, "pruned": 1, "retrained": 2, "minimal": 3}
#: Criterion names of the baseline rows (stage "baseline"), never a pruning criterion.
BASELINES = ("raw_pixels", "test_digits", "random_patterns")
_REQUIRED = ("criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value")


def check_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics table with plain dtypes; raises DataError when a column is missing."""
    if not isinstance(metrics, pd.DataFrame):
        raise DataError(f"metrics must be a pandas DataFrame; got {type(metrics).__name__}")
    missing = [c for c in _REQUIRED if c not in metrics.columns]
    if missing:
        raise DataError(f"metrics table lacks the columns {missing}; expected {list(_REQUIRED)}")
    out = metrics.astype({"criterion": object, "stage": object, "metric": object})
    return out.astype({"seed": "int64", "replica": "int64", "iteration": "int64", "layer": "int64",
                       "value": "float64"})


def criteria_order(metrics: pd.DataFrame, criteria: Sequence[str] | None = None) -> list[str]:
    """The pruning criteria of a run in a fixed order: ``criteria`` first, then as they appear."""
    seen = [c for c in pd.unique(metrics.loc[metrics["stage"] != "baseline", "criterion"]) if c not in BASELINES]
    first = [c for c in (criteria or []) if c in seen]
    return first + [c for c in seen if c not in first]


def stage_sequence(metrics: pd.DataFrame) -> list[tuple[int, str]]:
    """The (iteration, stage) pairs present, in the order the runner computes them."""
    df = metrics[metrics["stage"] != "baseline"]
    pairs = {(int(i), str(s)) for i, s in zip(df["iteration"], df["stage"])}
    return sorted(pairs, key=lambda p: (p[0], STAGE_ORDER.get(p[1], 9)))


def has_metric(metrics: pd.DataFrame, metric: str) -> bool:
    """Whether any non-baseline row records ``metric``."""
    return bool(((metrics["metric"] == metric) & (metrics["stage"] != "baseline")).any())


def layers_of(metrics: pd.DataFrame, metric: str) -> list[int]:
    """The layer indices recorded for ``metric`` (sorted)."""
    return sorted(int(x) for x in pd.unique(metrics.loc[metrics["metric"] == metric, "layer"]))


def replica_values(metrics: pd.DataFrame, metric: str, layer: int | str | None = None) -> pd.DataFrame:
    """One value per replica and stage of ``metric``.

    Parameters
    ----------
    metrics : DataFrame
        The tidy metrics table.
    metric : str
    layer : int, "sum" or None
        An int selects that layer; "sum" adds the layers (e.g. weights of all weight layers);
        None takes the metric as recorded when it has one layer, and is an error otherwise.

    Returns
    -------
    DataFrame with columns criterion, seed, replica, iteration, stage, value
        Baseline rows are excluded.
    """
    df = metrics[(metrics["metric"] == metric) & (metrics["stage"] != "baseline")]
    keys = ["criterion", "seed", "replica", "iteration", "stage"]
    if isinstance(layer, (int, np.integer)):
        df = df[df["layer"] == int(layer)]
    elif layer == "sum":
        df = df.groupby(keys, as_index=False, sort=False)["value"].sum()
    elif layer is None:
        if df["layer"].nunique() > 1:
            raise DataError(f"metric {metric!r} has several layers {layers_of(metrics, metric)}: pass layer=")
    else:
        raise DataError(f"layer must be an int, 'sum' or None; got {layer!r}")
    return df[keys + ["value"]].reset_index(drop=True)


def summarise(metrics: pd.DataFrame, metric: str, layer: int | str | None = None) -> pd.DataFrame:
    """Mean and s.d. over seeds of ``metric`` per criterion, iteration and stage.

    Returns
    -------
    DataFrame with columns criterion, iteration, stage, mean, sd, n
        ``sd`` is the sample standard deviation (ddof = 1), NaN with a single seed.
    """
    vals = replica_values(metrics, metric, layer)
    out = vals.groupby(["criterion", "iteration", "stage"], sort=False)["value"].agg(
        mean="mean", sd=lambda x: x.std(ddof=1), n="count").reset_index()
    out["_o"] = out["stage"].map(STAGE_ORDER).fillna(9)
    return out.sort_values(["criterion", "iteration", "_o"]).drop(columns="_o").reset_index(drop=True)


def versus_weights(metrics: pd.DataFrame, metric: str, layer: int | str | None = None,
                   stages: Iterable[str] = ("trained", "retrained")) -> pd.DataFrame:
    """``metric`` against the remaining weights (all layers), mean and s.d. over seeds.

    Returns
    -------
    DataFrame with columns criterion, iteration, stage, weights, mean, sd, n
        ``weights`` is the mean number of remaining weights of the criterion's replicas.
    """
    stages = tuple(stages)
    keys = ["criterion", "seed", "replica", "iteration", "stage"]
    w = replica_values(metrics, "weights", "sum").rename(columns={"value": "weights"})
    v = replica_values(metrics, metric, layer)
    df = v.merge(w, on=keys, how="left")
    df = df[df["stage"].isin(stages)]
    out = df.groupby(["criterion", "iteration", "stage"], sort=False).agg(
        weights=("weights", "mean"), mean=("value", "mean"), sd=("value", lambda x: x.std(ddof=1)),
        n=("value", "count")).reset_index()
    return out.sort_values(["criterion", "iteration"]).reset_index(drop=True)


def baselines(metrics: pd.DataFrame) -> pd.DataFrame:
    """The baseline rows as a table: rows baselines, columns metrics (NaN where absent)."""
    df = metrics[metrics["stage"] == "baseline"]
    if df.empty:
        return pd.DataFrame()
    return df.pivot_table(index="criterion", columns="metric", values="value", aggfunc="mean")


# --- formatting ------------------------------------------------------------------------------
def format_mean_sd(mean: float, sd: float, digits: int = 1, scale: float = 1.0) -> str:
    """``"mean (s.d.)"`` with ``digits`` decimals; "mean (–)" when the s.d. is undefined."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    m = f"{mean * scale:.{digits}f}"
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{m} (–)"
    return f"{m} ({sd * scale:.{digits}f})"


def _stage_label(iteration: int, stage: str) -> str:
    return {"trained": "unpruned", "minimal": "minimal model"}.get(stage, f"{iteration} {stage}")


def metric_table(metrics: pd.DataFrame, metric: str, layer: int | str | None = None, *,
                 stages: Iterable[str] = ("trained", "pruned", "retrained", "minimal"), digits: int = 3,
                 scale: float = 1.0, criteria: Sequence[str] | None = None) -> pd.DataFrame:
    """``metric`` as "mean (s.d.)" strings: rows criteria, columns stages in run order.

    Columns are labelled "unpruned", "1 pruned", "1 retrained", … ; ``scale`` multiplies
    the values (e.g. 100 for percentages).
    """
    s = summarise(metrics, metric, layer)
    s = s[s["stage"].isin(tuple(stages))]
    order = [p for p in stage_sequence(metrics) if p[1] in tuple(stages)]
    rows = criteria_order(metrics, criteria)
    table = pd.DataFrame(index=pd.Index(rows, name="criterion"),
                         columns=[_stage_label(i, st) for i, st in order], dtype=object)
    for r in s.itertuples():
        if r.criterion in table.index:
            table.loc[r.criterion, _stage_label(r.iteration, r.stage)] = format_mean_sd(r.mean, r.sd, digits, scale)
    table = table.dropna(axis=1, how="all").fillna("")
    return table


def table1_hidden_units(metrics: pd.DataFrame, layer: int = 1, criteria: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 1: units of unit layer ``layer`` left after each iteration, mean (s.d.) over seeds.

    Pruning removes units, retraining never does, so the count after iteration i is read at
    the stage "pruned" of iteration i (at "retrained" when a run recorded no pruned stage);
    iteration 0 is the unpruned network.

    Parameters
    ----------
    metrics : DataFrame
        The tidy metrics table of a run.
    layer : int, default 1
        Unit layer (1 = the first hidden layer; a DBM's second hidden layer is 2).
    criteria : sequence of str, optional
        Row order (default: as they appear in the metrics).

    Returns
    -------
    DataFrame
        Rows: the criteria, then "n_w" (remaining weights, all weight layers: an integer when
        every replica has the same count, else "mean (s.d.)"). Columns: iterations 0 … I
        (index name "iteration"). Cells are "mean (s.d.)" strings with one decimal.

    Raises
    ------
    DataError
        The metrics record no alive units of that layer.
    """
    units = replica_values(metrics, "alive_units", layer=int(layer))
    if units.empty:
        raise DataError(f"the metrics record no alive units of layer {layer}")
    weights = replica_values(metrics, "weights", "sum")

    def at_iteration(df: pd.DataFrame) -> pd.DataFrame:
        # one stage per iteration: trained (0), pruned (i ≥ 1), else retrained
        prefer = {"trained": 0, "pruned": 1, "retrained": 2}
        df = df.assign(_p=df["stage"].map(prefer))
        best = df.groupby("iteration")["_p"].transform("min")
        return df[df["_p"] == best]

    units, weights = at_iteration(units), at_iteration(weights)
    its = sorted(int(i) for i in units["iteration"].unique())
    rows = criteria_order(metrics, criteria)
    table = pd.DataFrame(index=pd.Index(rows + ["n_w"], name="criterion"),
                         columns=pd.Index(its, name="iteration"), dtype=object)
    g = units.groupby(["criterion", "iteration"])["value"].agg(["mean", lambda x: x.std(ddof=1)])
    g.columns = ["mean", "sd"]
    for (crit, it), r in g.iterrows():
        if crit in table.index:
            table.loc[crit, int(it)] = format_mean_sd(r["mean"], r["sd"], 1)
    for it, w in weights.groupby("iteration")["value"]:
        if int(it) in table.columns:
            table.loc["n_w", int(it)] = (f"{int(w.iloc[0])}" if w.nunique() == 1
                                         else format_mean_sd(w.mean(), w.std(ddof=1), 1))
    return table.fillna("")


# --- markdown --------------------------------------------------------------------------------
def to_markdown(df: pd.DataFrame, index: bool = True, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured markdown table of ``df`` (no dependency on ``tabulate``)."""
    def cell(x) -> str:
        if isinstance(x, (float, np.floating)):
            return "" if math.isnan(x) else format(float(x), floatfmt)
        return str(x).replace("|", "\\|").replace("\n", " ")

    cols = [str(c) for c in df.columns]
    head = ([str(df.index.name or "")] if index else []) + cols
    body = [([cell(i)] if index else []) + [cell(v) for v in row] for i, row in zip(df.index, df.itertuples(index=False))]
    right = [False] * len(head)
    for k in range(len(head)):
        col = [r[k] for r in body]
        right[k] = bool(col) and all(_numeric(c) for c in col if c)
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _numeric(s: str) -> bool:
    head = s.split(" (")[0]
    try:
        float(head)
        return True
    except ValueError:
        return False


__all__ = [
    "BASELINES",
    "STAGE_ORDER",
    "baselines",
    "check_metrics",
    "criteria_order",
    "format_mean_sd",
    "has_metric",
    "layers_of",
    "metric_table",
    "replica_values",
    "stage_sequence",
    "summarise",
    "table1_hidden_units",
    "to_markdown",
    "versus_weights",
]
