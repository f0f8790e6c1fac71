"""The paper's figures from a run's metrics and checkpoints (SPEC §6–§7, issue 7).

Each ``fig*`` function returns a :class:`matplotlib.figure.Figure` built without pyplot (so
nothing depends on, or changes, the interactive backend; saving uses Agg). Inputs are the
tidy metrics table of a run directory, optionally its :class:`~bmprune.experiments.StudyConfig`
(for the criteria order and the title), and for the panels that need more than metrics,
arrays computed from checkpoints by :mod:`bmprune.report.report`:

=================  ==========================================================================
:func:`fig1_fim`     FIM of one RBM replica: heat map, eigenvalue spectrum, leading-eigenvector
                     and diagonal importance on the weight grid with bias strips
:func:`fig2_likelihood`  per-pattern log p_model vs log p_data; KL(data‖model) per stage
:func:`fig3_pruning` encoding error and alive units vs remaining weights; P(pixel disconnected)
:func:`fig4_generation`  generated-digit quality and diversity vs remaining weights; samples
:func:`figS1_activity`   mean activity of the hidden layers per iteration
=================  ==========================================================================

Every criterion keeps one colour and marker in every figure (:data:`CRITERION_STYLE`, the
Okabe–Ito colour-blind-safe palette); error bars are ± one sample s.d. over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import ticker as mticker
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..errors import DataError
from .tables import (
    criteria_order,
    has_metric,
    layers_of,
    stage_sequence,
    summarise,
    versus_weights,
)

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
             "grey": "#999999"}
#: One colour and marker per criterion, the same in every figure.
CRITERION_STYLE: dict[str, tuple[str, str]] = {
    "variance_fi": (OKABE_ITO["blue"], "o"),
    "heuristic_fi": (OKABE_ITO["sky_blue"], "s"),
    "eigenvector_fi": (OKABE_ITO["green"], "^"),
    "anti_fi": (OKABE_ITO["vermillion"], "v"),
    "weight_magnitude": (OKABE_ITO["orange"], "D"),
    "random_weights": (OKABE_ITO["black"], "X"),
    "random_units": (OKABE_ITO["purple"], "P"),
    "variance_fi_w2": (OKABE_ITO["grey"], "*"),
    "unpruned": ("#555555", "."),
}
_EXTRA = ["#882255", "#44AA99", "#117733", "#AA4499", "#DDCC77"]   # Tol's muted, for unknown names
DPI = 110
IMAGE_CMAP = "viridis"     # perceptually uniform and colour-blind safe


def criterion_label(name: str) -> str:
    """The paper's label of a criterion ("Variance FI", "|w|", …), or the name itself."""
    if name == "unpruned":
        return "unpruned"
    try:
        from ..pruning import CRITERIA
        return CRITERIA[name].label
    except (ImportError, KeyError):
        return name


def criterion_style(name: str) -> dict:
    """Matplotlib keywords (color, marker, label) of a criterion."""
    if name in CRITERION_STYLE:
        colour, marker = CRITERION_STYLE[name]
    else:
        colour, marker = _EXTRA[sum(map(ord, name)) % len(_EXTRA)], "h"
    return {"color": colour, "marker": marker, "label": criterion_label(name)}


def _criteria(metrics: pd.DataFrame, config) -> list[str]:
    return criteria_order(metrics, list(config.pruning.criteria) if config is not None else None)


def _title(fig: Figure, text: str, config) -> None:
    name = f" — run “{config.name}”" if config is not None else ""
    fig.suptitle(text + name, fontsize=11)


def _nan0(x) -> np.ndarray:
    return np.nan_to_num(np.asarray(x, dtype=float), nan=0.0)


def _plot_criteria(ax, v, crits, scale: float = 1.0) -> None:
    """Mean ± s.d. against remaining weights, one line per criterion (in the fixed colours)."""
    for c in crits:
        vc = v[v["criterion"] == c].copy()
        if vc.empty:
            continue
        vc["mean"] *= scale
        vc["sd"] *= scale
        _errorbar(ax, vc["weights"].to_numpy(), vc, c)


def _errorbar(ax, x, s: pd.DataFrame, crit: str, **kw) -> None:
    st = criterion_style(crit)
    ax.errorbar(x, s["mean"].to_numpy(), yerr=_nan0(s["sd"]), color=st["color"], marker=st["marker"],
                label=st["label"], ms=4.5, lw=1.3, capsize=2.5, elinewidth=0.9, **kw)


def _weights_axis(ax, xs: Sequence[float]) -> None:
    """Remaining weights on x, decreasing to the right (pruning progresses left to right)."""
    xs = [x for x in xs if x > 0]
    if xs and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
        # ticks written out (2k, 50k, 200k): matplotlib's default labels its minor ticks as
        # 3×10⁴, 4×10⁴ … which overlap on a short axis; 1-2-5 ticks (0.3 decades apart at
        # closest) would collide too on a panel spanning many decades, so those get 1-3 ticks
        decades = np.log10(max(xs) / min(xs))
        subs = (1.0, 2.0, 5.0) if decades <= 1.5 else (1.0, 3.0)
        ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=subs))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(_compact_count))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel("remaining weights (all layers)")


def _compact_count(x: float, _pos=None) -> str:
    """Tick label of a count: 500, 2k, 50k, 1.2M."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:g}{suffix}"
    return f"{x:g}"


def _legend_outside(fig, axs, title: str = "mean ± s.d. over seeds") -> None:
    """One legend for all panels, to the right of the (sub)figure, outside the data."""
    handles, labels = [], []
    for ax in np.atleast_1d(axs):
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, title=title, title_fontsize=8,
                   frameon=False)


# --- Fig 1 -----------------------------------------------------------------------------------
def fig1_fim(model, replica: int = 0, *, fim=None, max_parameters: int = 3000) -> Figure:
    """Fig 1: the exact Fisher information matrix of one RBM replica.

    Panels: (a) |F| as a heat map (log colour scale) in the order [b_v, b_h, W row-major];
    (b) the eigenvalue spectrum (log scale); (c) importance from the leading eigenvector
    |u₁| and (d) the diagonal F_ii, both on the n_visible × n_hidden weight grid with the
    visible biases as a strip on the left and the hidden biases as a strip on top. Hidden
    units are sorted by their summed diagonal importance (the same order in c and d).

    Parameters
    ----------
    model : RBM
        A population; replica ``replica`` is used.
    replica : int, default 0
    fim : Tensor of shape (P, P), optional
        The exact FIM of that replica when already computed (see ``exact_fim``).
    max_parameters : int, default 3000
        Refuse larger FIMs (P × P float64 and an eigendecomposition).

    Raises
    ------
    DataError
        Not an RBM, or too many parameters.
    EnumerationError
        2^min(n_visible, n_hidden) too large to enumerate.
    """
    from ..fisher import eigenvector_importance, exact_fim, fim_diagonal

    if model.n_layers != 1:
        raise DataError("Fig 1 needs an RBM (the exact FIM enumerates a two-layer model)")
    one = model.replica(replica)
    nv, nh = one.layer_sizes
    P = nv + nh + nv * nh
    if P > max_parameters:
        raise DataError(f"the FIM has {P} parameters (> {max_parameters}); Fig 1 is for small RBMs")
    fim = (exact_fim(one)[0] if fim is None else fim).double()   # (P, P)
    eig = np.sort(np.linalg.eigvalsh(fim.cpu().numpy()))[::-1]   # descending
    vec = eigenvector_importance(fim, nv, nh)
    diag = fim_diagonal(fim, nv, nh)
    order = np.argsort(-diag.W.sum(0).cpu().numpy(), kind="stable")   # hidden units by Σ_i F_ij

    fig = Figure(figsize=(11, 7.6), dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=[1, 1.6])
    # (a) heat map
    ax = fig.add_subplot(gs[0, 0])
    # display order: b_v, b_h, then W grouped by hidden unit (W_0j … W_{nv-1,j}), hidden units
    # sorted as in (c)/(d), so the structure per hidden unit shows as blocks
    perm = np.concatenate([np.arange(nv), nv + order,
                           (nv + nh + np.arange(nv)[None, :] * nh + order[:, None]).ravel()])
    a, block = _mean_pool(np.abs(fim.cpu().numpy())[np.ix_(perm, perm)], 330)   # small PNG, no aliasing
    vmax = a.max() if a.max() > 0 else 1.0
    im = ax.imshow(np.where(a > 0, a, np.nan), cmap=IMAGE_CMAP, norm=LogNorm(vmin=vmax * 1e-4, vmax=vmax),
                   interpolation="nearest", extent=(-0.5, block * a.shape[1] - 0.5, block * a.shape[0] - 0.5, -0.5))
    ax.set_xlim(-0.5, P - 0.5)
    ax.set_ylim(P - 0.5, -0.5)
    ax.set_facecolor("white")
    for b in (nv, nv + nh):
        ax.axhline(b - 0.5, color="#E69F00", lw=0.6)
        ax.axvline(b - 0.5, color="#E69F00", lw=0.6)
    pooled = f", mean over {block}×{block} blocks" if block > 1 else ""
    ax.set_title(f"(a) |F|, replica {replica} (P = {P}{pooled})", fontsize=10)
    ax.set_xlabel("parameter [b_v | b_h | W by hidden unit, sorted]")
    ax.set_ylabel("parameter")
    fig.colorbar(im, ax=ax, shrink=0.85, label="|F_kl| (nats / param²)")
    # (b) spectrum
    ax = fig.add_subplot(gs[1, 0])
    pos = eig[eig > eig[0] * 1e-12] if eig[0] > 0 else eig[:1]
    ax.semilogy(np.arange(1, len(pos) + 1), pos, ".", ms=3, color=OKABE_ITO["blue"], rasterized=True)
    ax.set_xlabel("eigenvalue rank")
    ax.set_ylabel("eigenvalue (nats / param²)")
    ratio = f", λ₁/λ₂ = {eig[0] / eig[1]:.1f}" if len(eig) > 1 and eig[1] > 0 else ""
    ax.set_title(f"(b) spectrum: λ₁ = {eig[0]:.3g}, λ₂ = {eig[1]:.3g}{ratio}", fontsize=10)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    # (c), (d) weight grids with bias strips
    for row, (scores, what) in enumerate([(vec, "(c) leading-eigenvector importance |u₁|"),
                                          (diag, "(d) diagonal importance F_ii")]):
        _weight_grid(fig, gs[row, 1], scores, order, what)
    fig.suptitle(f"Fig 1 — Fisher information of a {nv} × {nh} RBM (trained, unpruned)", fontsize=11)
    return fig


def _mean_pool(a: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Mean over b × b blocks so that the result has at most ``size`` rows: (pooled, b)."""
    b = max(1, math.ceil(a.shape[0] / size))
    if b == 1:
        return a, 1
    n = math.ceil(a.shape[0] / b) * b
    pad = np.zeros((n, n))
    pad[:a.shape[0], :a.shape[1]] = a
    return pad.reshape(n // b, b, n // b, b).mean(axis=(1, 3)), b


def _weight_grid(fig: Figure, spec, scores, order: np.ndarray, title: str) -> None:
    W = scores.W.cpu().numpy()[:, order]          # (nv, nh), hidden sorted
    bv = scores.b_v.cpu().numpy()[:, None]         # (nv, 1)
    bh = scores.b_h.cpu().numpy()[None, order]     # (1, nh)
    nv, nh = W.shape
    vmax = max(W.max(), bv.max(), bh.max(), 1e-300)
    sub = spec.subgridspec(2, 3, width_ratios=[1, max(nh / 3, 6), 0.6], height_ratios=[1, max(nv, 2)],
                           wspace=0.02, hspace=0.02)
    kw = {"cmap": IMAGE_CMAP, "vmin": 0, "vmax": vmax, "aspect": "auto", "interpolation": "nearest"}
    ax_w = fig.add_subplot(sub[1, 1])
    im = ax_w.imshow(W, **kw)
    ax_w.set_yticks([])
    ax_w.set_xlabel("hidden unit j (sorted by Σ_i F_ij)")
    ax_h = fig.add_subplot(sub[0, 1], sharex=ax_w)
    ax_h.imshow(bh, **kw)
    ax_h.set_yticks([0], ["b_h"])
    ax_h.tick_params(labelbottom=False, bottom=False)
    ax_h.set_title(title, fontsize=10)
    ax_v = fig.add_subplot(sub[1, 0], sharey=ax_w)
    ax_v.imshow(bv, **kw)
    ax_v.set_xticks([0], ["b_v"])
    ax_v.set_ylabel("visible unit i")
    cax = fig.add_subplot(sub[:, 2])
    fig.colorbar(im, cax=cax, label="importance")


# --- Fig 2 -----------------------------------------------------------------------------------
_STAGE_TICK = {"trained": "", "pruned": "P", "retrained": "R"}


def _stage_axis(ax, seq: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    pos = {p: k for k, p in enumerate(seq)}
    labels = ["0" if s == "trained" else f"{i}{_STAGE_TICK.get(s, s)}" for i, s in seq]
    ax.set_xticks(range(len(seq)), labels, fontsize=8)
    ax.set_xlabel("iteration (P: pruned, R: retrained)", fontsize=9)
    return pos


def _per_stage(ax, metrics: pd.DataFrame, metric: str, crits: list[str], seq, ylabel: str, title: str) -> None:
    s = summarise(metrics, metric)
    present = set(zip(s["iteration"], s["stage"]))
    pos = _stage_axis(ax, [p for p in seq if p in present])
    n = len(crits)
    for k, c in enumerate(crits):
        sc = s[s["criterion"] == c]
        if sc.empty:
            continue
        x = np.array([pos[(i, st)] for i, st in zip(sc["iteration"], sc["stage"])], dtype=float)
        x += (k - (n - 1) / 2) * 0.06                    # small offsets so error bars don't overlap
        _errorbar(ax, x, sc, c)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, lw=0.5)
    vals = s["mean"].to_numpy()
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if len(vals) and vals.max() / vals.min() > 30:
        ax.set_yscale("log")


def fig2_likelihood(metrics: pd.DataFrame, config=None,
                    patterns: Sequence[tuple[str, str, np.ndarray, np.ndarray]] | None = None) -> Figure:
    """Fig 2: how well the pruned RBMs match the data distribution.

    Top row (when ``patterns`` is given): one panel per network, exact log p_model(x) of every
    distinct data pattern against its log-frequency log p_data(x), with the diagonal of a
    perfect match and KL(data‖model) in the title. Bottom row: the exact KL(data‖model) at
    every stage (before and after retraining) per criterion, mean ± s.d. over seeds, and,
    where recorded, the sampled KL(data‖generated) and the log-frequency MSE (SPEC §6).

    Parameters
    ----------
    metrics : DataFrame
    config : StudyConfig, optional
    patterns : sequence of (title, criterion, log_p_data (K,), log_p_model (K,)), optional
        ``criterion`` picks the colour ("unpruned" for the trained network).

    Raises
    ------
    DataError
        Neither KL metrics nor patterns to draw.
    """
    panels = [m for m in ("exact_kl", "sampled_kl", "log_frequency_mse") if has_metric(metrics, m)]
    if not panels and not patterns:
        raise DataError("Fig 2 needs exact_kl / sampled_kl metrics or per-pattern log-probabilities")
    crits = _criteria(metrics, config)
    seq = stage_sequence(metrics)
    fig = Figure(figsize=(11, 7.4 if patterns and panels else 3.9), dpi=DPI, layout="constrained")
    if patterns and panels:
        top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.25])
    else:
        top = bottom = fig
    if patterns:
        axs = np.atleast_1d(top.subplots(1, len(patterns), sharex=True, sharey=True))
        lo = min(min(np.min(lp), np.min(lm)) for _, _, lp, lm in patterns)
        lo = math.floor(lo) - 0.5
        for ax, (title, crit, lp, lm) in zip(axs, patterns):
            lp, lm = np.asarray(lp, float), np.asarray(lm, float)
            kl = float(np.sum(np.exp(lp) * (lp - lm)))
            ax.plot([lo, 0], [lo, 0], color="#999999", lw=0.8, ls="--", zorder=1)
            ax.scatter(lp, lm, s=4, alpha=0.35, color=criterion_style(crit)["color"], lw=0, rasterized=True, zorder=2)
            ax.set_title(f"{title}\nKL = {kl:.3f} nats", fontsize=9)
            ax.set_xlim(lo, 0.3)
            ax.set_ylim(lo, 0.3)
            ax.set_aspect("equal", adjustable="box")
            ax.set_xlabel("log p_data(x) (nats)", fontsize=8)
            ax.tick_params(labelsize=7)
        axs[0].set_ylabel("log p_model(x) (nats, exact)", fontsize=8)
        if patterns and panels:
            top.suptitle("(a) per-pattern log-probability, last checkpoint (first seed of each criterion)", fontsize=10)
    if panels:
        axs = np.atleast_1d(bottom.subplots(1, len(panels)))
        titles = {"exact_kl": ("KL(data‖model) (nats, exact)", "(b) exact KL before/after retraining"),
                  "sampled_kl": ("KL(data‖generated) (nats)", "(c) KL from generated samples"),
                  "log_frequency_mse": ("MSE of log-frequencies (nats²)", "(d) log-frequency MSE")}
        for ax, m in zip(axs, panels):
            _per_stage(ax, metrics, m, crits, seq, *titles[m])
        _legend_outside(bottom, axs)
    _title(fig, "Fig 2 — matching the data distribution", config)
    return fig


# --- Fig 3 -----------------------------------------------------------------------------------
def pixel_image(values: np.ndarray, pixel_mask: np.ndarray) -> np.ndarray:
    """Visible-unit values (…, n_visible) placed on the image grid: (…, h, w), NaN outside.

    ``pixel_mask`` (h, w) bool marks the pixels of the visible units in row-major order.
    """
    values = np.asarray(values, float)
    mask = np.asarray(pixel_mask, bool)
    if values.shape[-1] != int(mask.sum()):
        raise DataError(f"{values.shape[-1]} visible values for a pixel mask of {int(mask.sum())} pixels")
    out = np.full(values.shape[:-1] + mask.shape, np.nan)
    out[..., mask] = values
    return out


def fig3_pruning(metrics: pd.DataFrame, config=None, *, disconnected: Mapping[str, np.ndarray] | None = None,
                 pixel_mask: np.ndarray | None = None) -> Figure:
    """Fig 3: what pruning removes, against the remaining weights.

    Top row: (a) encoding error (1 − test accuracy of the top-layer classifier, %) with the
    raw-pixel baseline, when recorded; the number of visible units that keep a connection;
    alive units of each hidden layer. Values after retraining (and the unpruned network),
    mean ± s.d. over seeds. Bottom row (when ``disconnected`` is given): each pixel's
    probability, over seeds, of being disconnected after the last iteration, per criterion.

    Parameters
    ----------
    metrics : DataFrame
    config : StudyConfig, optional
    disconnected : {criterion: array (n_visible,)}, optional
        P(visible unit i has no weight left) per criterion.
    pixel_mask : bool array (h, w), optional
        Where the visible units lie on the image (row-major); without it the maps are drawn
        as a single row of units.
    """
    crits = _criteria(metrics, config)
    top_panels: list[tuple[str, object]] = []
    if has_metric(metrics, "encoding_error"):
        top_panels.append(("encoding", None))
    if has_metric(metrics, "disconnected_visible"):
        top_panels.append(("visible", None))
    for k in layers_of(metrics, "alive_units"):
        if k >= 1:
            top_panels.append(("alive", k))
    if not top_panels:
        raise DataError("Fig 3 needs weights and alive_units metrics")
    maps = disconnected is not None and len(disconnected) > 0
    fig = Figure(figsize=(max(3.3 * len(top_panels), 8), 7.0 if maps else 3.8), dpi=DPI, layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1]) if maps else (fig, None)
    axs = np.atleast_1d(top.subplots(1, len(top_panels)))
    nv = None
    if has_metric(metrics, "alive_units"):
        a0 = summarise(metrics, "alive_units", 0)
        nv = float(a0["mean"].max()) if len(a0) else None
    letters = iter("abcdefgh")
    for ax, (kind, k) in zip(axs, top_panels):
        if kind == "encoding":
            v = versus_weights(metrics, "encoding_error")
            ylabel, title = "encoding error (%)", "encoding error (test set)"
            scale = 100.0
        elif kind == "visible":
            v = versus_weights(metrics, "disconnected_visible")
            v["mean"] = (nv if nv is not None else 0) - v["mean"]
            ylabel, title, scale = "connected visible units (units)", "visible units with a weight left", 1.0
        else:
            v = versus_weights(metrics, "alive_units", k)
            name = "h" if len(layers_of(metrics, "alive_units")) == 2 else f"h{k}"
            ylabel, title, scale = f"alive {name} units (units)", f"alive units, hidden layer {k}", 1.0
        _plot_criteria(ax, v, crits, scale)
        if kind == "encoding":
            base = metrics[(metrics["stage"] == "baseline") & (metrics["criterion"] == "raw_pixels")
                           & (metrics["metric"] == "encoding_error")]["value"]
            if len(base):
                ax.axhline(100 * float(base.mean()), color="#555555", ls="--", lw=1.1, label="raw pixels (baseline)")
        _weights_axis(ax, v["weights"].tolist())
        ax.set_ylabel(ylabel)
        ax.set_title(f"({next(letters)}) {title}", fontsize=10)
        ax.grid(alpha=0.3, lw=0.5)
        if kind != "encoding":                          # unit counts: from 0, so losses read true
            ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1) * 1.04)
    _legend_outside(top, axs)
    if maps:
        names = [c for c in crits if c in disconnected] + [c for c in disconnected if c not in crits]
        maxs = bottom.subplots(1, len(names) + 1, gridspec_kw={"width_ratios": [1] * len(names) + [0.08]})
        im = None
        for ax, c in zip(maxs, names):
            p = np.asarray(disconnected[c], float)
            img = pixel_image(p, pixel_mask) if pixel_mask is not None else p[None, :]
            im = ax.imshow(np.ma.masked_invalid(img), cmap=IMAGE_CMAP, vmin=0, vmax=1, interpolation="nearest")
            ax.set_facecolor("#dddddd")
            ax.set_xticks([])
            ax.set_yticks([])
            st = criterion_style(c)
            ax.set_title(st["label"], fontsize=9, color=st["color"] if st["color"] != "#000000" else "black")
            for sp in ax.spines.values():
                sp.set_edgecolor(st["color"])
                sp.set_linewidth(2)
        bottom.colorbar(im, cax=maxs[-1], label="P(disconnected)")
        bottom.suptitle(f"({next(letters)}) probability that a pixel (visible unit) has no weight left, "
                        "after the last iteration, over seeds (grey: not a unit)", fontsize=10)
    _title(fig, "Fig 3 — units removed by pruning", config)
    return fig


# --- Fig 4 -----------------------------------------------------------------------------------
def fig4_generation(metrics: pd.DataFrame, config=None, *, samples: Mapping[str, np.ndarray] | None = None,
                    pixel_mask: np.ndarray | None = None) -> Figure:
    """Fig 4: quality and diversity of generated digits, and samples after the last iteration.

    Top row: (a) generation quality (mean winning-class probability of a digit classifier on
    model samples, %) and (b) diversity (entropy of the assigned classes, nats; ln 10 is the
    maximum) against the remaining weights, mean ± s.d. over seeds, with the test-digit and
    random-pattern baselines. Bottom (when ``samples`` is given): samples per criterion.

    Parameters
    ----------
    metrics : DataFrame
    config : StudyConfig, optional
    samples : {criterion: array (n, n_visible)}, optional
        Visible samples (0/1 or probabilities) per criterion.
    pixel_mask : bool array (h, w), optional
        Needed to draw the samples as images.

    Raises
    ------
    DataError
        No generation metrics in the table.
    """
    if not has_metric(metrics, "generation_quality"):
        raise DataError("Fig 4 needs generation_quality metrics (evaluation.generation = true)")
    crits = _criteria(metrics, config)
    grid = samples is not None and len(samples) > 0 and pixel_mask is not None
    n_rows = len(samples) if grid else 0
    fig = Figure(figsize=(11, 4.0 + (0.75 * n_rows + 0.6 if grid else 0)), dpi=DPI, layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.0, 0.75 * n_rows + 0.6]) if grid else (fig, None)
    axs = top.subplots(1, 2)
    base = metrics[metrics["stage"] == "baseline"]
    spec = [("generation_quality", 100.0, "quality (%; mean winning-class probability)", "(a) generated-digit quality"),
            ("generation_entropy", 1.0, "diversity (nats; entropy of classes)", "(b) diversity of generated digits")]
    for ax, (m, scale, ylabel, title) in zip(axs, spec):
        v = versus_weights(metrics, m)
        _plot_criteria(ax, v, crits, scale)
        for name, ls, lab in (("test_digits", "--", "test digits (baseline)"),
                              ("random_patterns", ":", "random patterns (baseline)")):
            b = base[(base["criterion"] == name) & (base["metric"] == m)]["value"]
            if len(b):
                ax.axhline(scale * float(b.mean()), color="#555555", ls=ls, lw=1.2, label=lab)
        if m == "generation_entropy":
            ax.axhline(math.log(10), color="#999999", ls="-.", lw=0.9, label="maximum ln 10")
        _weights_axis(ax, v["weights"].tolist())
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, lw=0.5)
    _legend_outside(top, axs)
    if grid:
        names = [c for c in crits if c in samples] + [c for c in samples if c not in crits]
        rows = np.atleast_1d(bottom.subplots(len(names), 1))
        for ax, c in zip(rows, names):
            ax.imshow(_montage(np.asarray(samples[c], float), pixel_mask), cmap="gray_r", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            st = criterion_style(c)
            ax.set_ylabel(st["label"], rotation=0, ha="right", va="center", fontsize=9, color=st["color"])
            for sp in ax.spines.values():
                sp.set_edgecolor(st["color"])
                sp.set_linewidth(1.5)
        bottom.suptitle("(c) generated samples after the last iteration (first seed of each criterion)", fontsize=10)
    _title(fig, "Fig 4 — generating digits", config)
    return fig


def _montage(x: np.ndarray, pixel_mask: np.ndarray, gap: int = 1) -> np.ndarray:
    """Images of visible vectors x (n, n_visible) side by side, separated by ``gap`` columns."""
    imgs = np.nan_to_num(pixel_image(x, pixel_mask), nan=0.0)       # (n, h, w)
    n, h, w = imgs.shape
    out = np.full((h, n * (w + gap) - gap), 0.25)
    for k in range(n):
        out[:, k * (w + gap):k * (w + gap) + w] = imgs[k]
    return out


# --- Fig S1 ----------------------------------------------------------------------------------
def figS1_activity(metrics: pd.DataFrame, config=None) -> Figure:
    """Fig S1: mean activity of each hidden layer per iteration (alive units only).

    Mean firing rate of the alive units of each hidden layer in model samples, after
    retraining (iteration 0: the unpruned network), mean ± s.d. over seeds. The paper
    suggests rising hidden activity signals that the network has reached its optimal size.

    Raises
    ------
    DataError
        No mean_activity of a hidden layer in the table.
    """
    layers = [k for k in layers_of(metrics, "mean_activity") if k >= 1]
    if not layers:
        raise DataError("Fig S1 needs mean_activity metrics of a hidden layer")
    crits = _criteria(metrics, config)
    fig = Figure(figsize=(max(4.6 * len(layers), 6.5), 3.9), dpi=DPI, layout="constrained")
    axs = np.atleast_1d(fig.subplots(1, len(layers)))
    n = len(crits)
    for ax, k in zip(axs, layers):
        s = summarise(metrics, "mean_activity", k)
        s = s[s["stage"].isin(("trained", "retrained"))]
        for j, c in enumerate(crits):
            sc = s[s["criterion"] == c]
            if sc.empty:
                continue
            _errorbar(ax, sc["iteration"].to_numpy() + (j - (n - 1) / 2) * 0.04, sc, c)
        its = sorted(s["iteration"].unique())
        ax.set_xticks(its, [("0\nunpruned" if i == 0 else str(i)) for i in its])
        ax.set_xlabel("iteration (after retraining)")
        ax.set_ylabel("mean activity (fraction of alive units on)")
        ax.set_title(f"hidden layer {k}" if len(layers) > 1 else "hidden layer", fontsize=10)
        ax.grid(alpha=0.3, lw=0.5)
    _legend_outside(fig, axs)
    _title(fig, "Fig S1 — mean hidden activity", config)
    return fig


# --- AIS log-likelihood --------------------------------------------------------------------
def fig_log_likelihood(metrics: pd.DataFrame, config=None) -> Figure:
    """The AIS log-likelihood of the test data per criterion against the remaining weights.

    Mean ± s.d. over seeds after retraining (iteration 0: the unpruned network; a minimal
    model at its remaining weights, dashed). For a DBM the values are the mean-field lower
    bound with log Z from AIS (issue 16).

    Raises
    ------
    DataError
        No ais_log_likelihood in the table.
    """
    if not has_metric(metrics, "ais_log_likelihood"):
        raise DataError("the run records no ais_log_likelihood (metric 'ais_log_likelihood')")
    crits = _criteria(metrics, config)
    fig = Figure(figsize=(7.2, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    v = versus_weights(metrics, "ais_log_likelihood", stages=("trained", "retrained", "minimal"))
    for c in crits:
        sc = v[v["criterion"] == c].sort_values(["iteration", "stage"])
        main = sc[sc["stage"] != "minimal"]
        if main.empty:
            continue
        _errorbar(ax, main["weights"].to_numpy(), main, c)
        mini = sc[sc["stage"] == "minimal"]
        if len(mini):
            st = criterion_style(c)
            ax.errorbar(mini["weights"], mini["mean"], yerr=_nan0(mini["sd"]), color=st["color"], marker="*", ms=9,
                        ls="none", capsize=2.5)
    _weights_axis(ax, v["weights"].tolist())
    ax.set_ylabel("log-likelihood of test data (nats)")
    ax.grid(alpha=0.3, lw=0.5)
    _legend_outside(fig, [ax])
    _title(fig, "AIS log-likelihood after retraining (★ minimal models)", config)
    return fig


__all__ = ["CRITERION_STYLE", "DPI", "OKABE_ITO", "criterion_label", "criterion_style", "fig1_fim", "fig_log_likelihood",
           "fig2_likelihood", "fig3_pruning", "fig4_generation", "figS1_activity", "pixel_image"]
