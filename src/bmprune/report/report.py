"""``bmprune report RUN_DIR``: the paper's figures and tables regenerated from a run directory.

:func:`write_report` reads ``config.toml``, ``metrics.parquet`` (completed stages only, as
listed in ``state.json``) and the checkpoints (the trained population and the latest stage),
draws every figure that applies to the run into ``figures/*.png``, and writes ``report.md``
with the numbers behind them in markdown tables. Figures that do not apply (the DBM figures
of an RBM run, Fig 1 of a model too large to enumerate, …) are skipped and report.md says
why. Nothing in the run is recomputed except what a figure needs from a checkpoint: the
exact FIM of one trained replica (Fig 1), exact log-probabilities of the data patterns
(Fig 2), and a few generated samples (Fig 4, seeded, so the report is reproducible).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import BmpruneError, DataError, EnumerationError
from . import figures as F
from . import tables as T

#: Exact per-pattern log-probabilities only for RBMs with at most this many enumerated states.
EXACT_LIMIT = 2**20
#: The figure files a report may write, in report order.
FIGURES = {
    "fig1": ("fig1_fim.png", "Fig 1 — Fisher information of one trained replica"),
    "fig2": ("fig2_likelihood.png", "Fig 2 — matching the data distribution"),
    "fig3": ("fig3_pruning.png", "Fig 3 — units removed by pruning"),
    "fig4": ("fig4_generation.png", "Fig 4 — generating digits"),
    "figS1": ("figS1_activity.png", "Fig S1 — mean hidden activity"),
}


class ReportError(BmpruneError, ValueError):
    """A run directory cannot be reported on: missing, not a bmprune run, or no metrics yet."""


@dataclass
class Run:
    """A run directory opened for reporting.

    Attributes
    ----------
    path : Path
    config : StudyConfig
    metrics : DataFrame
        Rows of completed stages (and the baselines) only.
    state : dict
        ``state.json``.
    version : str
        The bmprune version that wrote the config.
    """

    path: Path
    config: Any
    metrics: pd.DataFrame
    state: dict
    version: str = ""
    _models: dict = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.config.model.kind

    @property
    def criteria(self) -> list[str]:
        return T.criteria_order(self.metrics, list(self.config.pruning.criteria))

    def checkpoint_path(self, which: str) -> Path | None:
        """``which`` = "trained" (iteration 0) or "latest" (the last completed stage)."""
        if which == "trained":
            p = self.path / "checkpoints" / "iter00-trained.safetensors"
        else:
            rel = self.state.get("checkpoint")
            p = self.path / rel if rel else None
        return p if p is not None and p.is_file() else None

    def model(self, which: str):
        """The population of checkpoint ``which`` on the CPU, or None when absent."""
        if which not in self._models:
            from ..models import load_model
            p = self.checkpoint_path(which)
            self._models[which] = None if p is None else load_model(p, device="cpu")
        return self._models[which]

    def replica_criteria(self, which: str) -> list[str]:
        """The criterion of each replica of checkpoint ``which`` (from its metadata)."""
        from ..models.io import read_metadata
        p = self.checkpoint_path(which)
        meta = read_metadata(p) if p is not None else {}
        if meta.get("criteria"):
            return meta["criteria"].split(",")
        S = self.config.seeds
        return [c for c in self.config.pruning.criteria for _ in range(S)]

    def checkpoint_stage(self, which: str) -> str:
        from ..models.io import read_metadata
        p = self.checkpoint_path(which)
        meta = read_metadata(p) if p is not None else {}
        if "iteration" in meta:
            st = meta.get("stage", "")
            return "unpruned (trained)" if st == "trained" else f"iteration {meta['iteration']}, {st}"
        return p.stem if p is not None else "none"


def load_run(run_dir) -> Run:
    """Open a run directory for reporting.

    Raises
    ------
    ReportError
        The directory is missing, has no config.toml, no metrics.parquet, an unreadable
        metrics table, or no completed stage.
    ConfigError
        config.toml is not a valid study config.
    """
    from ..experiments import load_config

    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory: give the run directory written by `bmprune run`")
    cfg_path = path / "config.toml"
    if not cfg_path.is_file():
        raise ReportError(f"{path} is not a bmprune run directory: it has no config.toml")
    config = load_config(cfg_path)
    try:
        import tomllib
        version = str(tomllib.loads(cfg_path.read_text()).get("bmprune_version", ""))
    except (OSError, ValueError):
        version = ""
    state_path = path / "state.json"
    try:
        state = json.loads(state_path.read_text()) if state_path.is_file() else {"completed": []}
    except (OSError, ValueError) as exc:
        raise ReportError(f"{state_path} is unreadable: {exc}") from exc
    mpath = path / "metrics.parquet"
    if not mpath.is_file():
        raise ReportError(f"{path} has no metrics.parquet yet: no stage of the run has completed")
    try:
        metrics = pd.read_parquet(mpath)
    except Exception as exc:  # pyarrow raises its own types for truncated files
        raise ReportError(f"{mpath} is not a readable parquet file: {exc}") from exc
    try:
        metrics = T.check_metrics(metrics)
    except DataError as exc:
        raise ReportError(f"{mpath}: {exc}") from exc
    done = set(state.get("completed", []))
    keys = metrics["iteration"].astype(str) + ":" + metrics["stage"].astype(str)
    metrics = metrics[keys.isin(done) | (metrics["stage"] == "baseline")].reset_index(drop=True)
    if not (metrics["stage"] != "baseline").any():
        raise ReportError(f"{path}: no stage of the run has completed yet (state.json lists none)")
    return Run(path, config, metrics, state, version)


# --- geometry --------------------------------------------------------------------------------
def pixel_mask_of(config, n_visible: int) -> np.ndarray | None:
    """Where the visible units lie on the image, (h, w) bool, or None when not image data.

    cifar/photo patches: the circular mask (units in row-major order of its pixels); MNIST
    20×20 and digits 8×8: the whole image row-major; a file source: its ``image_shape``.
    """
    d = config.data
    if d.source in ("cifar_patches", "photo_patches"):
        from ..data import circular_mask
        mask = circular_mask(d.radius)
    elif d.source == "mnist":
        mask = np.ones((20, 20), bool)
    elif d.source == "digits":
        mask = np.ones((8, 8), bool)
    elif d.image_shape is not None:
        mask = np.ones(tuple(d.image_shape), bool)
    else:
        return None
    return mask if int(mask.sum()) == n_visible else None


def _first_replicas(criteria_of_replica: list[str]) -> dict[str, int]:
    """The first replica (lowest seed) of each criterion."""
    out: dict[str, int] = {}
    for r, c in enumerate(criteria_of_replica):
        out.setdefault(c, r)
    return out


# --- what the figures need from checkpoints -------------------------------------------------
@dataclass
class FimSummary:
    fim: torch.Tensor
    n_visible: int
    n_hidden: int
    eigenvalues: np.ndarray
    importance_correlation: float     # Pearson r of |u₁| and diag F over the weights
    top_unit_share: float             # share of Σ diag F_W held by the top 10 % hidden units


def fim_summary(model, replica: int = 0) -> FimSummary:
    """Exact FIM of one RBM replica and the numbers the report quotes (Fig 1)."""
    from ..fisher import eigenvector_importance, exact_fim, fim_diagonal
    one = model.replica(replica)
    nv, nh = one.n_visible, one.n_hidden
    fim = exact_fim(one)[0].double()
    eig = np.sort(np.linalg.eigvalsh(fim.numpy()))[::-1]
    u = eigenvector_importance(fim, nv, nh).W.numpy().ravel()
    d = fim_diagonal(fim, nv, nh).W.numpy()
    r = float(np.corrcoef(u, d.ravel())[0, 1]) if u.std() > 0 and d.std() > 0 else float("nan")
    per_unit = np.sort(d.sum(0))[::-1]
    k = max(1, round(0.1 * nh))
    share = float(per_unit[:k].sum() / per_unit.sum()) if per_unit.sum() > 0 else float("nan")
    return FimSummary(fim, nv, nh, eig, r, share)


def pattern_log_probs(run: Run) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """Exact log p_model and log p_data of every distinct training pattern (Fig 2a).

    One entry for the unpruned network (trained checkpoint, first replica) and one per
    criterion (latest checkpoint, first seed). Raises DataError/EnumerationError when the
    data cannot be loaded or the model is not an enumerable RBM.
    """
    from ..evaluation.likelihood import unique_patterns
    from ..experiments.runner import load_study_data
    from ..models import RBM

    latest, trained = run.model("latest"), run.model("trained")
    if not isinstance(latest, RBM):
        raise DataError("per-pattern log-probabilities need an RBM")
    if 2 ** min(latest.n_visible, latest.n_hidden) > EXACT_LIMIT:
        raise EnumerationError(f"a {latest.n_visible} × {latest.n_hidden} RBM is too large to enumerate")
    train, _ = load_study_data(run.config)
    patterns, p = unique_patterns(train.x)                         # (K, nv), (K,)
    log_pd = torch.log(p).numpy()
    out = []
    if trained is not None:
        lp = trained.replica(0).log_prob(patterns)[0].numpy()
        out.append(("unpruned", "unpruned", log_pd, lp))
    first = _first_replicas(run.replica_criteria("latest"))
    idx = [first[c] for c in run.criteria if c in first]
    lps = latest.replicas(idx).log_prob(patterns).numpy()          # (C, K)
    for c, lp in zip([c for c in run.criteria if c in first], lps):
        out.append((F.criterion_label(c), c, log_pd, lp))
    return out


def disconnected_probability(run: Run) -> dict[str, np.ndarray]:
    """P(visible unit has no weight left) per criterion, over seeds, at the latest checkpoint."""
    model = run.model("latest")
    crit = run.replica_criteria("latest")
    dis = (~model.weight_masks[0].any(2)).double().numpy()       # (R, nv)
    out = {}
    for c in run.criteria:
        rows = [r for r, cr in enumerate(crit) if cr == c]
        if rows:
            out[c] = dis[rows].mean(0)
    return out


def generated_samples(run: Run, n: int = 8, sweeps: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` visible samples per criterion (first seed) from the latest checkpoint."""
    from ..sampling import sample
    model = run.model("latest")
    first = _first_replicas(run.replica_criteria("latest"))
    names = [c for c in run.criteria if c in first]
    sub = model.replicas([first[c] for c in names])
    v = sample(sub, n, mode="independent", steps=sweeps, seed=seed)[0].cpu().numpy()   # (C, n, nv)
    return dict(zip(names, v))


# --- writing ---------------------------------------------------------------------------------
def _save(fig, path: Path, dpi: int) -> None:
    from ..experiments.rundir import atomic_write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    try:    # a 256-colour palette keeps PNGs small (plots have few colours) at no visible cost
        from PIL import Image
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small = io.BytesIO()
        img.save(small, format="PNG", optimize=True)
        if small.tell() < buf.tell():
            buf = small
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        pass
    atomic_write_bytes(path, buf.getvalue())


@dataclass
class _Outcome:
    made: dict = field(default_factory=dict)       # key → Path
    skipped: dict = field(default_factory=dict)    # key → reason
    notes: dict = field(default_factory=dict)      # key → list of str


def write_report(run_dir, *, dpi: int = F.DPI, samples_per_criterion: int = 8, gibbs_sweeps: int = 200) -> Path:
    """Regenerate ``figures/*.png`` and ``report.md`` of a run directory.

    Parameters
    ----------
    run_dir : path
        A directory written by :func:`bmprune.run` (finished or not: the completed stages
        are reported).
    dpi : int, default 110
    samples_per_criterion, gibbs_sweeps : int
        Fig 4's sample grid: samples per criterion, each from an independent chain run for
        this many Gibbs sweeps from the latest checkpoint (seeded).

    Returns
    -------
    Path
        The path of ``report.md``.

    Raises
    ------
    ReportError
        Not a run directory, or no completed stage yet.
    ConfigError, CheckpointError
        An invalid config.toml or an unreadable checkpoint.
    """
    run = load_run(run_dir)
    fig_dir = run.path / "figures"
    fig_dir.mkdir(exist_ok=True)
    out = _Outcome()
    m, cfg = run.metrics, run.config
    nv = _n_visible(run)
    pmask = pixel_mask_of(cfg, nv) if nv else None

    def attempt(key: str, build) -> None:
        path = fig_dir / FIGURES[key][0]
        try:
            fig = build()
        except BmpruneError as exc:
            out.skipped[key] = str(exc)
            path.unlink(missing_ok=True)          # never leave a stale figure of an older run
            return
        _save(fig, path, dpi)
        out.made[key] = path

    # Fig 1
    def fig1():
        from ..models import RBM
        model = run.model("trained")
        if model is None:
            raise ReportError("the trained checkpoint (checkpoints/iter00-trained.safetensors) is missing")
        if not isinstance(model, RBM):
            raise ReportError("Fig 1 is drawn for RBM runs (the exact FIM enumerates a two-layer model); this is a DBM run")
        if 2 ** min(model.n_visible, model.n_hidden) > EXACT_LIMIT:
            raise ReportError(f"a {model.n_visible} × {model.n_hidden} RBM is too large for the exact FIM "
                              f"(2^{min(model.n_visible, model.n_hidden)} states)")
        P = model.n_visible + model.n_hidden + model.n_visible * model.n_hidden
        if P > 3000:
            raise ReportError(f"the FIM has {P} parameters (> 3000): too large to draw and decompose")
        s = fim_summary(model, 0)
        out.notes["fig1"] = s
        return F.fig1_fim(model, 0, fim=s.fim)
    attempt("fig1", fig1)

    # Fig 2
    def fig2():
        if not any(T.has_metric(m, k) for k in ("exact_kl", "sampled_kl")):
            raise ReportError("the run records no KL(data‖model), exact or sampled: Fig 2 is drawn for RBM runs "
                              "with evaluation.exact or evaluation.sampled_patterns")
        patterns = None
        if run.model("latest") is not None:
            try:
                patterns = pattern_log_probs(run)
            except BmpruneError as exc:
                out.notes.setdefault("fig2", []).append(f"Per-pattern panel not drawn: {exc}")
        out.notes.setdefault("fig2_patterns", patterns)
        return F.fig2_likelihood(m, cfg, patterns=patterns)
    attempt("fig2", fig2)

    # Fig 3
    def fig3():
        dis = None
        if run.model("latest") is not None:
            dis = disconnected_probability(run)
        if not T.has_metric(m, "encoding_error"):
            out.notes.setdefault("fig3", []).append(
                "no encoding-error panel: the run records no encoding_error (evaluation.encoding = false)")
        if pmask is None:
            out.notes.setdefault("fig3", []).append("pixel maps drawn as a row of units: the data are not images")
        return F.fig3_pruning(m, cfg, disconnected=dis, pixel_mask=pmask)
    attempt("fig3", fig3)

    # Fig 4
    def fig4():
        if not T.has_metric(m, "generation_quality"):
            raise ReportError("the run records no generation metrics (evaluation.generation = false; a DBM/digits figure)")
        samples = None
        if run.model("latest") is not None and pmask is not None:
            samples = generated_samples(run, samples_per_criterion, gibbs_sweeps)
        return F.fig4_generation(m, cfg, samples=samples, pixel_mask=pmask)
    attempt("fig4", fig4)

    attempt("figS1", lambda: F.figS1_activity(m, cfg))

    text = _markdown(run, out)
    from ..experiments.rundir import atomic_write_bytes
    path = run.path / "report.md"
    atomic_write_bytes(path, text.encode())
    return path


def _n_visible(run: Run) -> int | None:
    a = run.metrics[(run.metrics["metric"] == "alive_units") & (run.metrics["layer"] == 0)]["value"]
    if len(a):
        return int(a.max())
    model = run.model("trained") or run.model("latest")
    return None if model is None else int(model.n_visible)


# --- report.md -------------------------------------------------------------------------------
def _md_table(df: pd.DataFrame) -> str:
    """Markdown of a table whose index may hold criterion names (shown by their labels)."""
    if not (len(df) and len(df.columns)):
        return "_(no data)_"
    if df.index.name == "criterion":
        df = df.rename(index=lambda c: c if c == "n_w" else F.criterion_label(c))
    return T.to_markdown(df)


def _baseline_table(m: pd.DataFrame) -> pd.DataFrame:
    """The generation baselines in the units of the tables above."""
    b = T.baselines(m)
    rows = [r for r in ("test_digits", "random_patterns") if r in b.index]
    cols = {"generation_quality": ("quality (%)", 100, 2), "generation_entropy": ("diversity (nats)", 1, 3),
            "generation_class_ratio": ("min/max class ratio", 1, 3)}
    out = pd.DataFrame(index=pd.Index([r.replace("_", " ") for r in rows], name="baseline"))
    for c, (name, scale, digits) in cols.items():
        if c in b.columns:
            out[name] = [f"{scale * b.loc[r, c]:.{digits}f}" for r in rows]
    return out


def _image(key: str, out: _Outcome) -> str:
    name, title = FIGURES[key]
    if key in out.made:
        return f"![{title}](figures/{name})\n"
    return f"_Skipped: {out.skipped.get(key, 'not applicable')}._\n"


def _markdown(run: Run, out: _Outcome) -> str:
    cfg, m = run.config, run.metrics
    n_stages = 1 + 2 * cfg.pruning.iterations
    done = len(run.state.get("completed", []))
    completed = set(run.state.get("completed", []))
    seconds = sum(float(v) for k, v in run.state.get("seconds", {}).items() if k in completed)
    sizes = "–".join(str(n) for n in [_n_visible(run) or "?", *cfg.model.hidden])
    pct = cfg.pruning.percent
    pct = ", ".join(f"{p:g} %" for p in pct) if isinstance(pct, list) else f"{pct:g} %"
    status = "finished" if run.state.get("finished") else f"**incomplete**: {done} of {n_stages} stages done"
    lines = [f"# bmprune report — {cfg.name}", ""]
    if cfg.description:
        lines += [cfg.description, ""]
    lines += [
        f"* **Model**: {cfg.model.kind.upper()} {sizes} on `{cfg.data.source}` data"
        + (f" (receptive fields {cfg.model.receptive_field}×{cfg.model.receptive_field})" if cfg.model.receptive_field else ""),
        (f"* **Population**: {len(cfg.pruning.criteria)} criteria × {cfg.seeds} seeds "
         f"({', '.join(F.criterion_label(c) for c in run.criteria)})"),
        (f"* **Pruning**: {cfg.pruning.iterations} iterations of {pct} of the remaining weights (per weight layer), "
         "each followed by retraining"),
        f"* **Status**: {status}; compute time {seconds / 60:.1f} min; written by bmprune {run.version or '?'}",
        f"* **Checkpoints used**: trained population; latest = {run.checkpoint_stage('latest')}",
        "",
        "Cells are mean (s.d.) over seeds (sample s.d., ddof = 1; \"–\" with one seed). "
        "Regenerate with `bmprune report " + str(run.path) + "`.",
        "",
    ]
    # Table 1
    hidden = [k for k in T.layers_of(m, "alive_units") if k >= 1]
    lines += ["## Table 1 — hidden units left after each iteration", ""]
    for k in hidden:
        t = T.table1_hidden_units(m, layer=k, criteria=list(cfg.pruning.criteria))
        t.columns = [f"iteration {c}" if c else "unpruned" for c in t.columns]
        if len(hidden) > 1:
            lines += [f"Hidden layer {k}:", ""]
        lines += [_md_table(t), ""]
    lines += [("n_w: remaining weights of all weight layers after pruning in that iteration "
               "(one number when every replica has the same count). Units are counted after pruning; "
               "retraining never revives a unit."), ""]
    w = T.replica_values(m, "weights", "sum")
    if len(w) and w.groupby(["iteration", "stage"])["value"].nunique().max() > 1:
        # n_w is then a mean over criteria that pruned different amounts: give each its own
        lines += [("Remaining weights (all weight layers) per criterion — they differ between criteria "
                   "because a threshold rule removes every weight tied at the percentile (e.g. all "
                   "zero-importance weights) and unit removal takes whole rows:"), "",
                  _md_table(T.metric_table(m, "weights", "sum", stages=("trained", "pruned"), digits=0,
                                           criteria=list(cfg.pruning.criteria))), ""]
    if T.has_metric(m, "disconnected_visible"):
        lines += ["Visible units with no weight left:", "",
                  _md_table(T.metric_table(m, "disconnected_visible", stages=("trained", "pruned"), digits=1,
                                           criteria=list(cfg.pruning.criteria))), ""]
    # Fig 1
    lines += [f"## {FIGURES['fig1'][1]}", "", _image("fig1", out)]
    s = out.notes.get("fig1")
    if isinstance(s, FimSummary) and "fig1" in out.made:
        ev = s.eigenvalues
        lines += [f"Replica 0 (the first seed) of the trained, unpruned population; P = {len(ev)} parameters.", "",
                  "| quantity | value |", "|:---|---:|",
                  f"| largest eigenvalue λ₁ | {ev[0]:.4g} |",
                  f"| second eigenvalue λ₂ | {ev[1]:.4g} |" if len(ev) > 1 else "| λ₂ | – |",
                  f"| λ₁ / λ₂ | {ev[0] / ev[1]:.3g} |" if len(ev) > 1 and ev[1] > 0 else "| λ₁ / λ₂ | – |",
                  f"| trace (Σ λ) | {ev.sum():.4g} |",
                  f"| share of the trace in λ₁ | {ev[0] / ev.sum():.1%} |" if ev.sum() > 0 else "| share | – |",
                  f"| Pearson r of |u₁| and diag F over weights | {s.importance_correlation:.3f} |",
                  f"| share of Σ diag F_W in the top 10 % hidden units | {s.top_unit_share:.1%} |", ""]
    # Fig 2
    lines += [f"## {FIGURES['fig2'][1]}", "", _image("fig2", out)]
    for note in out.notes.get("fig2", []) if "fig2" in out.made else []:
        lines += [f"_{note.rstrip('.')}._", ""]
    for metric, title, digits in (("exact_kl", "Exact KL(data‖model), nats", 4),
                                  ("sampled_kl", "Sampled KL(data‖generated), nats", 4),
                                  ("log_frequency_mse", "MSE of log-frequencies (data vs generated), nats²", 4),
                                  ("exact_log_likelihood", "Exact mean log-likelihood of the training data, nats", 4)):
        if T.has_metric(m, metric):
            lines += [f"{title}:", "", _md_table(T.metric_table(m, metric, digits=digits,
                                                                 criteria=list(cfg.pruning.criteria))), ""]
    pats = out.notes.get("fig2_patterns")
    if pats:
        lines += ["Per-pattern panel (first seed of each criterion): KL(data‖model) recomputed from the checkpoint, "
                  "nats: " + "; ".join(f"{t}: {float(np.sum(np.exp(lp) * (lp - lm))):.4f}" for t, _, lp, lm in pats)
                  + ".", ""]
    # Fig 3
    lines += [f"## {FIGURES['fig3'][1]}", "", _image("fig3", out)]
    for note in out.notes.get("fig3", []) if "fig3" in out.made else []:
        lines += [f"_{note[0].upper() + note[1:]}._", ""]
    if T.has_metric(m, "encoding_error"):
        lines += ["Encoding error (%, test set, classifier on the top hidden layer; after retraining):", "",
                  _md_table(T.metric_table(m, "encoding_error", stages=("trained", "retrained"), digits=2, scale=100,
                                           criteria=list(cfg.pruning.criteria))), ""]
        b = T.baselines(m)
        if "encoding_error" in b.columns and "raw_pixels" in b.index:
            lines += [f"Raw-pixel baseline: {100 * b.loc['raw_pixels', 'encoding_error']:.2f} % error.", ""]
    lines += ["Alive units per layer: Table 1; visible units with no weight left: the table under Table 1.", ""]
    # Fig 4
    lines += [f"## {FIGURES['fig4'][1]}", "", _image("fig4", out)]
    if T.has_metric(m, "generation_quality"):
        for metric, title, digits, scale in (
                ("generation_quality", "Quality (%, mean winning-class probability)", 2, 100),
                ("generation_entropy", "Diversity (nats, entropy of assigned classes; max ln 10 = 2.303)", 3, 1),
                ("generation_class_ratio", "Min/max class-count ratio", 3, 1)):
            if T.has_metric(m, metric):
                lines += [f"{title}:", "", _md_table(T.metric_table(m, metric, stages=("trained", "retrained"),
                                                                     digits=digits, scale=scale,
                                                                     criteria=list(cfg.pruning.criteria))), ""]
        b = _baseline_table(m)
        if len(b):
            lines += ["Baselines (the same classifiers on the test digits and on uniformly random patterns):", "",
                      _md_table(b), ""]
    # Fig S1
    lines += [f"## {FIGURES['figS1'][1]}", "", _image("figS1", out)]
    for k in [k for k in T.layers_of(m, "mean_activity") if k >= 1]:
        lines += [f"Mean activity of the alive units of hidden layer {k} (fraction on, model samples):", "",
                  _md_table(T.metric_table(m, "mean_activity", k, stages=("trained", "retrained"), digits=4,
                                           criteria=list(cfg.pruning.criteria))), ""]
    # skipped
    lines += ["## Figures not drawn", ""]
    if out.skipped:
        lines += [f"* {FIGURES[k][1]}: {r}" for k, r in out.skipped.items()]
    else:
        lines += ["None: every figure applies to this run."]
    lines += [""]
    return "\n".join(lines)


__all__ = ["FIGURES", "ReportError", "Run", "disconnected_probability", "fim_summary", "generated_samples",
           "load_run", "pattern_log_probs", "pixel_mask_of", "write_report"]
