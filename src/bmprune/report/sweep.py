"""The summary of a sweep directory: a metric against a grid key, per criterion (issue 17, item 3).

``bmprune report DIR`` on a sweep directory (one with ``sweep.toml``, written by ``bmprune
sweep``) calls :func:`write_sweep_report`. From the merged metrics of the finished points
(:func:`bmprune.experiments.sweep.merge`) it draws, for each chosen metric, the mean ± one
sample s.d. over seeds at each point's final retrained iteration against a grid key, one line
per criterion, into ``DIR/figures/sweep_<metric>_vs_<key>.png``, and writes ``DIR/report.md``
with the same numbers as tables and the status of every point.

Seeds are pooled: the replicas of a point (its ``seeds``) and points that differ only by the
grid keys ``seed`` / ``seeds``. Every other grid key with more than one value gets its own
panel, and a metric recorded per layer gets one panel per layer.

Figures are :class:`matplotlib.figure.Figure` objects built without pyplot, saved with Agg.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import BmpruneError
from ..experiments.sweep import SWEEP_FILE, merge, point_status, read_points

#: Metrics drawn by default, those the sweep recorded (in this order).
DEFAULT_METRICS = ("exact_kl", "encoding_error", "generation_quality", "alive_units")
#: Grid keys pooled as seeds rather than drawn.
SEED_KEYS = ("seed", "seeds")
DPI = 110
_COLOURS = ["#0072B2", "#56B4E9", "#009E73", "#D55E00", "#E69F00", "#000000", "#CC79A7", "#999999"]
_MARKERS = ["o", "s", "^", "v", "D", "X", "P", "*"]


class SweepReportError(BmpruneError, ValueError):
    """A sweep directory has nothing to report, or a metric / grid key it does not have."""


def is_sweep_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a sweep directory (it holds ``sweep.toml``)."""
    return (Path(path) / SWEEP_FILE).is_file()


def _style(criterion: str, index: int) -> dict:
    try:   # the run report's fixed colour per criterion, where it has one
        from .figures import criterion_style

        return dict(criterion_style(criterion))
    except (ImportError, AttributeError, KeyError, TypeError):
        return {"color": _COLOURS[index % len(_COLOURS)], "marker": _MARKERS[index % len(_MARKERS)],
                "label": criterion}


def final_rows(metrics: pd.DataFrame, stage: str = "retrained") -> pd.DataFrame:
    """Each point's rows of its last iteration of ``stage`` (``trained``, ``pruned``, ``retrained``)."""
    m = metrics[metrics["stage"] == stage]
    if m.empty:
        return m
    last = m.groupby("point")["iteration"].transform("max")
    return m[m["iteration"] == last]


def sweep_summary(metrics: pd.DataFrame, metric: str, x: str, *, keys: Sequence[str] = (),
                  stage: str = "retrained") -> pd.DataFrame:
    """Mean, sample s.d. and count of ``metric`` per (other grid keys, ``x``, layer, criterion).

    Parameters
    ----------
    metrics : DataFrame
        A merged sweep table (:func:`bmprune.experiments.sweep.merge`).
    metric : str
        A metric name of the table (``exact_kl``, ``alive_units``, …).
    x : str
        The grid key on the x axis (a column of the table).
    keys : sequence of str
        All grid keys; those other than ``x``, ``seed`` and ``seeds`` with more than one value
        become grouping columns (panels). Seeds are pooled.
    stage : str
        Which stage of each point's last iteration (default: the final retrained networks).

    Returns
    -------
    DataFrame with columns ``[*others, x, layer, criterion, mean, sd, n]``.

    Raises
    ------
    SweepReportError
        ``metric`` or ``x`` is not in the table.
    """
    if x not in metrics.columns:
        raise SweepReportError(f"{x!r} is not a grid key of this sweep; grid keys: {', '.join(keys) or '(none)'}")
    present = sorted(set(metrics["metric"].astype(str)))
    if metric not in present:
        raise SweepReportError(f"metric {metric!r} was not recorded; recorded: {', '.join(present)}")
    rows = final_rows(metrics[metrics["metric"] == metric], stage)
    others = [k for k in keys if k not in (x, *SEED_KEYS) and k in rows.columns and rows[k].nunique() > 1]
    by = [*others, x, "layer", "criterion"]
    g = rows.groupby(by, sort=False, dropna=False)["value"]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()}).reset_index()
    return out.sort_values([*others, x, "layer"], kind="stable").reset_index(drop=True)


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in values)


def sweep_figure(summary: pd.DataFrame, metric: str, x: str, *, title: str | None = None) -> Figure:
    """Mean ± s.d. of ``metric`` against ``x``, one line per criterion; a panel per other
    grid-key combination and per layer (from :func:`sweep_summary`)."""
    others = [c for c in summary.columns if c not in (x, "layer", "criterion", "mean", "sd", "n")]
    panels = [(key, part) for key, part in summary.groupby([*others, "layer"], sort=False, dropna=False)]
    n = max(1, len(panels))
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.4 * ncols + 1.8, 3.3 * nrows), layout="constrained")
    axs = fig.subplots(nrows, ncols, squeeze=False).ravel()
    criteria = list(pd.unique(summary["criterion"])) if len(summary) else []
    xs_all = list(pd.unique(summary[x])) if len(summary) else []
    numeric = _numeric(xs_all)
    order = sorted(xs_all) if numeric else xs_all
    position = {v: (float(v) if numeric else i) for i, v in enumerate(order)}
    n_layers = summary["layer"].nunique() if len(summary) else 0
    # criteria side by side around each x value, so that their error bars do not hide each other
    span = (max(position.values()) - min(position.values())) if numeric and len(order) > 1 else 1.0
    dodge = (0.012 if numeric else 0.06) * span
    for ax, (panel, part) in zip(axs, panels):
        panel = panel if isinstance(panel, tuple) else (panel,)
        for i, crit in enumerate(criteria):
            s = part[part["criterion"] == crit]
            if s.empty:
                continue
            shift = dodge * (i - (len(criteria) - 1) / 2)
            s = s.assign(_pos=s[x].map(position) + shift).sort_values("_pos")
            st = _style(str(crit), i)
            ax.errorbar(s["_pos"].to_numpy(float), s["mean"].to_numpy(float),
                        yerr=np.nan_to_num(s["sd"].to_numpy(float)), color=st["color"], marker=st["marker"],
                        label=st["label"], capsize=3, lw=1.3, ms=5)
        bits = [f"{c}={v}" for c, v in zip(others, panel[:-1])]
        if n_layers > 1 or panel[-1] not in (-1,):
            bits.append(f"layer {panel[-1]}")
        ax.set_title(" · ".join(bits), fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        if not numeric:
            ax.set_xticks(range(len(order)), [str(v) for v in order])
        elif len(order) <= 8:
            ax.set_xticks([float(v) for v in order], [f"{v:g}" for v in order])
        ax.grid(alpha=0.3)
    for ax in axs[len(panels):]:
        ax.set_visible(False)
    handles, labels = axs[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", title="mean ± s.d.\nover seeds", fontsize=8,
                   title_fontsize=8)
    fig.suptitle(title or f"{metric} against {x}", fontsize=11)
    return fig


def _fmt(mean: float, sd: float, n: int) -> str:
    if n < 2 or not np.isfinite(sd):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {sd:.2g}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def row(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([row(header), "|" + "---|" * len(header), *(row(r) for r in rows)])


def _summary_table(summary: pd.DataFrame, x: str) -> str:
    others = [c for c in summary.columns if c not in (x, "layer", "criterion", "mean", "sd", "n")]
    criteria = list(pd.unique(summary["criterion"]))
    show_layer = summary["layer"].nunique() > 1 or (summary["layer"] != -1).any()
    lead = [*others, *(["layer"] if show_layer else []), x]
    rows = []
    for key, g in summary.groupby(lead, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        cells = {r.criterion: _fmt(r.mean, r.sd, r.n) for r in g.itertuples()}
        rows.append([str(k) for k in key] + [cells.get(c, "") for c in criteria])
    return _md_table([*lead, *map(str, criteria)], rows)


def _file_part(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-=" else "_" for ch in text)


def _save(fig: Figure, path: Path, dpi: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def default_x(metrics: pd.DataFrame, keys: Sequence[str]) -> str:
    """The first grid key (sorted) other than seed/seeds with more than one value, else the first."""
    for k in keys:
        if k not in SEED_KEYS and k in metrics.columns and metrics[k].nunique() > 1:
            return k
    if not keys:
        raise SweepReportError("the sweep has no grid keys")
    return keys[0]


def write_sweep_report(sweep_dir: str | os.PathLike, *, metric: str | Sequence[str] | None = None,
                       x: str | None = None, stage: str = "retrained", dpi: int = DPI) -> Path:
    """Draw a sweep's summary figures and write its ``report.md``; returns the report's path.

    Parameters
    ----------
    sweep_dir : path
        A sweep directory written by ``bmprune sweep`` / :func:`bmprune.experiments.sweep.run_sweep`.
        Its merged ``metrics.parquet`` is refreshed from the points first (so a partially
        finished sweep reports what it has); only finished points are drawn.
    metric : str or sequence of str, optional
        Metric(s) to draw, one figure each. Default: those of :data:`DEFAULT_METRICS` the sweep
        recorded, else its first metric.
    x : str, optional
        The grid key on the x axis. Default: :func:`default_x`.
    stage : str
        The stage of each point's last iteration that is drawn (default ``"retrained"``).
    dpi : int
        Resolution of the PNG files.

    Returns
    -------
    Path of ``report.md``; figures are ``figures/sweep_<metric>_vs_<x>.png`` beside it.

    Raises
    ------
    SweepReportError
        No point has finished, or ``metric`` / ``x`` is not in the sweep.
    ConfigError
        ``sweep_dir`` is not a sweep directory.
    """
    out = Path(sweep_dir)
    points = read_points(out)
    status = point_status(out)
    merged = merge(out)
    finished = [p["name"] for p in points if status.get(p["name"]) == "finished"]
    metrics = merged[merged["point"].isin(finished)]
    if metrics.empty:
        raise SweepReportError(f"no point of {out} has finished yet ({len(points)} points); nothing to draw")
    keys = sorted({k for p in points for k in p["values"]})
    x = x or default_x(metrics, keys)
    if x not in keys:
        raise SweepReportError(f"{x!r} is not a grid key of this sweep; grid keys: {', '.join(keys)}")
    recorded = list(pd.unique(metrics["metric"].astype(str)))
    if metric is None:
        chosen = [m for m in DEFAULT_METRICS if m in recorded] or recorded[:1]
    else:
        chosen = [metric] if isinstance(metric, str) else list(metric)

    sections = []
    for m in chosen:
        summary = sweep_summary(metrics, m, x, keys=keys, stage=stage)
        if summary.empty:
            raise SweepReportError(f"metric {m!r} has no rows at the {stage!r} stage")
        fig = sweep_figure(summary, m, x, title=f"{m} against {x} — sweep “{out.name}”")
        rel = Path("figures") / f"sweep_{_file_part(m)}_vs_{_file_part(x)}.png"
        _save(fig, out / rel, dpi)
        sections.append(f"## {m} against {x}\n\n![{m} against {x}]({rel.as_posix()})\n\n{_summary_table(summary, x)}\n")

    body = _markdown(out, points, status, keys, stage, sections)
    path = out / "report.md"
    tmp = path.with_name(f".report.md.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _markdown(out: Path, points: list[dict], status: dict[str, str], keys: list[str], stage: str,
              sections: list[str]) -> str:
    grid = {k: [] for k in keys}
    for p in points:
        for k in keys:
            v = p["values"].get(k)
            if v not in grid[k]:
                grid[k].append(v)
    n_fin = sum(s == "finished" for s in status.values())
    lines = [f"# Sweep report: {out.name}", "",
             f"{len(points)} points ({n_fin} finished), grid "
             + ", ".join(f"`{k}` ∈ {grid[k]}" for k in keys) + ".",
             "",
             (f"Values are mean ± sample s.d. over seeds (each point's replicas, pooled over the "
              f"`seed`/`seeds` grid keys) at each point's last `{stage}` iteration; finished points only. "
              "Each point is a run directory of its own (`bmprune report DIR/<point>` draws its full report)."),
             "", *sections, "## Points", ""]
    rows = [[p["name"], status.get(p["name"], "missing"), *(str(p["values"].get(k)) for k in keys)] for p in points]
    lines.append(_md_table(["point", "status", *keys], rows))
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_METRICS", "SweepReportError", "default_x", "final_rows", "is_sweep_dir", "sweep_figure",
           "sweep_summary", "write_sweep_report"]
