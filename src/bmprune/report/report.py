"""``bmprune report RUN_DIR``: the paper's figures and tables regenerated from a run directory.

:func:`write_report` reads ``config.toml``, ``metrics.parquet`` (completed stages only, as
listed in ``state.json``) and the checkpoints (the trained population and the latest stage),
draws every figure that applies to the run into ``figures/*.png``, and writes ``report.md``
with the numbers behind them in markdown tables. Figures that do not apply (the DBM figures
of an RBM run, Fig 1 of a model too large to enumerate, …) are skipped and report.md says
why. Nothing in the run is recomputed except what a figure needs from a checkpoint: the
exact FIM of the trained networks (Fig 1, one per seed), exact log-probabilities of the data
patterns (Fig 2), and a few generated samples (Fig 4, seeded, so the report is
reproducible). What the run knows of its data (image geometry, the distinct training
patterns) is read from the run directory (``data.safetensors``), never from the data files.
The tables of report.md come from the metric registry (:mod:`bmprune.evaluation.metrics`):
every recorded metric is shown in the section and format its registry entry gives.
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

from .._io import atomic_write
from ..errors import BmpruneError, DataError, EnumerationError
from ..evaluation.metrics import METRICS, STAGES, Display, display_of
from . import figures as F
from . import tables as T

#: The figure files a report may write, in report order.
FIGURES = {
    "fig1": ("fig1_fim.png", "Fig 1 — Fisher information of one trained replica"),
    "fig2": ("fig2_likelihood.png", "Fig 2 — matching the data distribution"),
    "fig3": ("fig3_pruning.png", "Fig 3 — units removed by pruning"),
    "fig4": ("fig4_generation.png", "Fig 4 — generating digits"),
    "figS1": ("figS1_activity.png", "Fig S1 — mean hidden activity"),
    "figLL": ("fig_log_likelihood.png", "Log-likelihood of the test data (AIS)"),
}


#: How outputs no registered metric records are tabulated.
_DEFAULT_DISPLAY = Display("(unregistered metric)")


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
    data : DataSummary or None
        What the run recorded of its data (None for runs written by bmprune 0.1).
    """

    path: Path
    config: Any
    metrics: pd.DataFrame
    state: dict
    version: str = ""
    data: Any = None
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
    from ..experiments.rundir import completed_rows, read_data_summary

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
    metrics = completed_rows(metrics, state.get("completed", []))
    if not (metrics["stage"] != "baseline").any():
        raise ReportError(f"{path}: no stage of the run has completed yet (state.json lists none)")
    return Run(path, config, metrics, state, version, read_data_summary(path))


# --- geometry ---------------------------------------------------------------------------------
def pixel_mask_of(run: Run) -> np.ndarray | None:
    """Where the visible units lie on the image, (h, w) bool, or None when not image data.

    Read from the run's ``data.safetensors`` (circular patches: the mask; whole images: all
    True); None for non-image data and for runs that did not record it.
    """
    return None if run.data is None else run.data.image_mask


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


def seed_replicas(run: Run, which: str = "trained") -> list[int]:
    """One replica per seed of checkpoint ``which``: the first criterion's (the trained clones are identical)."""
    crit = run.replica_criteria(which)
    return [r for r, c in enumerate(crit) if c == crit[0]]


def fim_spectra(model, replicas: list[int]) -> np.ndarray:
    """The two largest eigenvalues of the exact FIM of each replica: (len(replicas), 2), float64."""
    from ..fisher import exact_fim, leading_eigenvalues
    return np.stack([leading_eigenvalues(exact_fim(model.replica(r))[0], 2).numpy() for r in replicas])


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
    criterion (latest checkpoint, first seed). The patterns come from the run directory's
    data summary. Raises DataError when the run did not record them (a large visible layer,
    or a run of bmprune 0.1) and EnumerationError when the model is too large to enumerate.
    """
    from ..models.base import EXACT_LIMIT

    latest, trained = run.model("latest"), run.model("trained")
    recorded = None if run.data is None else run.data.patterns()
    if recorded is None:
        raise DataError("the run directory records no training patterns (data.safetensors: visible layers of "
                        "≤ 30 units, written by bmprune ≥ 0.2)")
    if not latest.is_enumerable(EXACT_LIMIT):
        raise EnumerationError(f"a {'–'.join(map(str, latest.layer_sizes))} model is too large to enumerate")
    patterns = torch.from_numpy(recorded[0]).double()                     # (K, nv)
    log_pd = np.log(recorded[1])
    out = []
    if trained is not None:
        lp = trained.replica(0).log_prob(patterns)[0].numpy()
        out.append(("unpruned", "unpruned", log_pd, lp))
    first = _first_replicas(run.replica_criteria("latest"))
    names = [c for c in run.criteria if c in first]
    lps = latest.replicas([first[c] for c in names]).log_prob(patterns).numpy()          # (C, K)
    for c, lp in zip(names, lps):
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
    atomic_write(path, buf.getvalue())


@dataclass
class _Outcome:
    made: dict = field(default_factory=dict)       # key → Path
    skipped: dict = field(default_factory=dict)    # key → reason
    notes: dict = field(default_factory=dict)      # key → list of str


def write_report(run_dir, *, out_dir=None, dpi: int = F.DPI, samples_per_criterion: int = 8,
                 gibbs_sweeps: int = 200) -> Path:
    """Regenerate ``figures/*.png`` and ``report.md`` of a run directory.

    Parameters
    ----------
    run_dir : path
        A directory written by :func:`bmprune.run` (finished or not: the completed stages
        are reported). Only read when ``out_dir`` is given.
    out_dir : path, optional
        Where ``figures/`` and ``report.md`` go (created when missing); default ``run_dir``.
        Use it for a run directory that is read-only.
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
        Not a run directory, or no completed stage yet; the report's folder is not
        writable (e.g. a read-only run directory: the message says to pass ``out_dir``).
    ConfigError, CheckpointError
        An invalid config.toml or an unreadable checkpoint.
    OSError
        The figures or report.md cannot be written after all (e.g. the disk filled up).
    """
    run = load_run(run_dir)
    target = run.path if out_dir is None else Path(out_dir)
    _check_writable(target, run.path, out_dir is None)
    fig_dir = target / "figures"
    fig_dir.mkdir(exist_ok=True)
    out = _Outcome()
    builders = {"fig1": _fig1, "fig2": _fig2, "fig3": _fig3, "fig4": _fig4,
                "figS1": lambda run, out, **kw: F.figS1_activity(run.metrics, run.config),
                "figLL": lambda run, out, **kw: F.fig_log_likelihood(run.metrics, run.config)}
    for key, build in builders.items():
        path = fig_dir / FIGURES[key][0]
        try:
            fig = build(run, out, samples_per_criterion=samples_per_criterion, gibbs_sweeps=gibbs_sweeps)
        except BmpruneError as exc:
            out.skipped[key] = str(exc)
            path.unlink(missing_ok=True)          # never leave a stale figure of an older run
            continue
        _save(fig, path, dpi)
        out.made[key] = path
    return atomic_write(target / "report.md", _markdown(run, out).encode())


def _check_writable(target: Path, run_path: Path, in_run: bool) -> None:
    """ReportError unless files can be created in ``target`` (created when missing)."""
    import tempfile

    try:
        if target.exists() and not target.is_dir():
            raise ReportError(f"{target} is a file: give a directory for the report")
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        if in_run:
            raise ReportError(f"{run_path} is read-only ({exc.strerror or exc}): write the report elsewhere with "
                              f"`bmprune report {run_path} --out DIR`") from None
        raise ReportError(f"cannot write the report to {target}: {exc.strerror or exc}") from None


def _fig1(run: Run, out: _Outcome, **_) -> Any:
    model = run.model("trained")
    if model is None:
        raise ReportError("the trained checkpoint (checkpoints/iter00-trained.safetensors) is missing")
    if model.n_layers != 1:
        raise ReportError("Fig 1 is drawn for RBM runs (the exact FIM enumerates a two-layer model); this is a DBM run")
    nv, nh = model.layer_sizes
    if 2 ** min(nv, nh) > 2**20:
        raise ReportError(f"a {nv} × {nh} RBM is too large for the exact FIM (2^{min(nv, nh)} states)")
    if nv + nh + nv * nh > 3000:
        raise ReportError(f"the FIM has {nv + nh + nv * nh} parameters (> 3000): too large to draw and decompose")
    s = fim_summary(model, 0)
    out.notes["fig1"] = s
    out.notes["fig1_spectra"] = fim_spectra(model, seed_replicas(run))
    return F.fig1_fim(model, 0, fim=s.fim)


def _fig2(run: Run, out: _Outcome, **_) -> Any:
    if not any(T.has_metric(run.metrics, k) for k in ("exact_kl", "sampled_kl")):
        raise ReportError("the run records no KL(data‖model), exact or sampled: Fig 2 needs the metrics "
                          "exact_kl or sampled_patterns (enumerable RBMs)")
    patterns = None
    if run.model("latest") is not None:
        try:
            patterns = pattern_log_probs(run)
        except BmpruneError as exc:
            out.notes.setdefault("fig2", []).append(f"Per-pattern panel not drawn: {exc}")
    out.notes.setdefault("fig2_patterns", patterns)
    return F.fig2_likelihood(run.metrics, run.config, patterns=patterns)


def _fig3(run: Run, out: _Outcome, **_) -> Any:
    dis = disconnected_probability(run) if run.model("latest") is not None else None
    if not T.has_metric(run.metrics, "encoding_error"):
        out.notes.setdefault("fig3", []).append("no encoding-error panel: the run records no encoding_error")
    pmask = pixel_mask_of(run)
    if pmask is None:
        out.notes.setdefault("fig3", []).append("pixel maps drawn as a row of units: the run records no image geometry")
    return F.fig3_pruning(run.metrics, run.config, disconnected=dis, pixel_mask=pmask)


def _fig4(run: Run, out: _Outcome, *, samples_per_criterion: int, gibbs_sweeps: int) -> Any:
    if not T.has_metric(run.metrics, "generation_quality"):
        raise ReportError("the run records no generation metrics (metric 'generation'; a DBM/digits figure)")
    samples, pmask = None, pixel_mask_of(run)
    if run.model("latest") is not None and pmask is not None:
        samples = generated_samples(run, samples_per_criterion, gibbs_sweeps)
    return F.fig4_generation(run.metrics, run.config, samples=samples, pixel_mask=pmask)


def _n_visible(run: Run) -> int | None:
    if run.data is not None:
        return run.data.n_visible
    a = run.metrics[(run.metrics["metric"] == "alive_units") & (run.metrics["layer"] == 0)]["value"]
    return int(a.max()) if len(a) else None


# --- report.md -------------------------------------------------------------------------------
def _md_table(df: pd.DataFrame) -> str:
    """Markdown of a table whose index may hold criterion names (shown by their labels)."""
    if not (len(df) and len(df.columns)):
        return "_(no data)_"
    if df.index.name == "criterion":
        df = df.rename(index=lambda c: c if c == "n_w" else F.criterion_label(c))
    return T.to_markdown(df)


def _baseline_table(m: pd.DataFrame, outputs: list[str]) -> pd.DataFrame:
    """The baselines of ``outputs`` in their displays' units: rows baselines, columns outputs."""
    b = T.baselines(m)
    cols = [o for o in outputs if o in b.columns]
    out = pd.DataFrame(index=pd.Index([r.replace("_", " ") for r in b.index], name="baseline"))
    for c in cols:
        d = display_of(c)
        out[d.title] = [("" if pd.isna(v) else f"{d.scale * v:.{d.digits}f}") for v in b[c]]
    if not cols:
        return pd.DataFrame()
    return out.loc[(out != "").any(axis=1), (out != "").any()]


def _image(key: str, out: _Outcome) -> str:
    name, title = FIGURES[key][0], FIGURES[key][1]
    if key in out.made:
        return f"![{title}](figures/{name})\n"
    return f"_Skipped: {out.skipped.get(key, 'not applicable')}._\n"


def _metric_tables(run: Run, section: str) -> list[str]:
    """Every recorded output the registry shows in ``section``, as mean (s.d.) tables."""
    m, crits = run.metrics, list(run.config.pruning.criteria)
    lines: list[str] = []
    outputs = [o for metric in METRICS.values() for o, d in metric.outputs.items() if d.section == section]
    if section == "other":   # outputs recorded by another version or plug-in, with default formatting
        known = {o for metric in METRICS.values() for o in metric.outputs}
        outputs += sorted(o for o in pd.unique(m["metric"]) if o not in known)
    for o in outputs:
        if not T.has_metric(m, o):
            continue
        d = display_of(o) or Display(o, digits=_DEFAULT_DISPLAY.digits)
        stages = d.stages or STAGES
        if d.layers in ("each", "hidden"):
            layers = [k for k in T.layers_of(m, o) if d.layers == "each" or k >= 1]
        else:
            layers = ["sum" if d.layers == "sum" else None]
        for k in layers:
            title = d.title + ("" if k in (None, "sum") or len(layers) == 1 and d.layers != "hidden"
                               else f", layer {k}")
            table = T.metric_table(m, o, k, stages=stages, digits=d.digits, scale=d.scale, criteria=crits)
            lines += [f"{title}:", "", _md_table(table), ""]
    return lines


def _pruning_summary(cfg) -> str:
    """One sentence on what each pruning step does (percent, threshold or unit targets; schedule)."""
    p = cfg.pruning
    if p.keep_units is not None:
        what = f"keeping {p.keep_units} hidden units per hidden layer (whole units)"
    elif p.threshold is not None:
        what = f"removing every weight whose importance is below {p.threshold:g}"
    else:
        pct = p.percent if p.percent is not None else (p.percent_schedule or ["?"])[0]
        pct = ", ".join(f"{q:g} %" for q in pct) if isinstance(pct, list) else f"{pct:g} %"
        what = f"of {pct} of the remaining weights (per weight layer)"
    sched = "" if p.schedule == "joint" else f", one layer per step ({p.schedule})"
    extra = [name for name, on in (("units left unconnected are kept", not p.remove_units),
                                   ("weights rescaled after unit removal", p.rescale_weights),
                                   ("hidden biases reset to mean activity", p.reset_hidden_bias),
                                   ("then minimal models trained from scratch", p.minimal_model)) if on]
    return (f"{p.iterations} iterations {what}{sched}, each followed by retraining"
            + ("; " + "; ".join(extra) if extra else ""))


def _header(run: Run) -> list[str]:
    cfg = run.config
    from ..experiments.schedule import build_schedule
    n_stages = len(build_schedule(cfg))
    completed = set(run.state.get("completed", []))
    seconds = sum(float(v) for k, v in run.state.get("seconds", {}).items() if k in completed)
    sizes = "–".join(str(n) for n in [_n_visible(run) or "?", *cfg.model.hidden])
    status = "finished" if run.state.get("finished") else f"**incomplete**: {len(completed)} of {n_stages} stages done"
    rule = getattr(cfg.train, "update_rule", "classical")
    lines = [f"# bmprune report — {cfg.name}", ""] + ([cfg.description, ""] if cfg.description else [])
    return lines + [
        f"* **Model**: {cfg.model.kind.upper()} {sizes} on `{cfg.data.source}` data"
        + (f" (receptive fields {cfg.model.receptive_field}×{cfg.model.receptive_field})" if cfg.model.receptive_field else ""),
        (f"* **Population**: {len(cfg.pruning.criteria)} criteria × {cfg.seeds} seeds "
         f"({', '.join(F.criterion_label(c) for c in run.criteria)})"),
        f"* **Training**: update rule `{rule}` (SPEC §2)",
        f"* **Pruning**: {_pruning_summary(cfg)}",
        f"* **Status**: {status}; compute time {seconds / 60:.1f} min; written by bmprune {run.version or '?'}",
        f"* **Checkpoints used**: trained population; latest = {run.checkpoint_stage('latest')}",
        "",
        "Cells are mean (s.d.) over seeds (sample s.d., ddof = 1; \"–\" with one seed). "
        "Regenerate with `bmprune report " + str(run.path) + "`.",
        "",
    ]


def _table1(run: Run) -> list[str]:
    cfg, m = run.config, run.metrics
    hidden = [k for k in T.layers_of(m, "alive_units") if k >= 1]
    lines = ["## Table 1 — hidden units left after each iteration", ""]
    for k in hidden:
        t = T.table1_hidden_units(m, layer=k, criteria=list(cfg.pruning.criteria))
        t.columns = [f"iteration {c}" if c else "unpruned" for c in t.columns]
        lines += ([f"Hidden layer {k}:", ""] if len(hidden) > 1 else []) + [_md_table(t), ""]
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
    return lines


def _fig1_text(out: _Outcome) -> list[str]:
    s, spectra = out.notes.get("fig1"), out.notes.get("fig1_spectra")
    if not isinstance(s, FimSummary) or "fig1" not in out.made:
        return []
    ev = s.eigenvalues
    lines = [f"Spectrum of the exact FIM of the trained, unpruned networks (P = {len(ev)} parameters), mean (s.d.) "
             f"over the {len(spectra)} seeds; the figure shows the first seed.", "",
             "| quantity | over seeds | first seed |", "|:---|---:|---:|"]
    ratio = spectra[:, 0] / np.where(spectra[:, 1] > 0, spectra[:, 1], np.nan)
    for name, vals, first in (("largest eigenvalue λ₁", spectra[:, 0], ev[0]),
                              ("second eigenvalue λ₂", spectra[:, 1], ev[1] if len(ev) > 1 else np.nan),
                              ("λ₁ / λ₂", ratio, ev[0] / ev[1] if len(ev) > 1 and ev[1] > 0 else np.nan)):
        sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
        lines.append(f"| {name} | {T.format_mean_sd(float(np.nanmean(vals)), sd, 3)} | {first:.4g} |")
    lines += ["", "First seed:", "", "| quantity | value |", "|:---|---:|",
              f"| trace (Σ λ) | {ev.sum():.4g} |",
              f"| share of the trace in λ₁ | {ev[0] / ev.sum():.1%} |" if ev.sum() > 0 else "| share | – |",
              f"| Pearson r of |u₁| and diag F over weights | {s.importance_correlation:.3f} |",
              f"| share of Σ diag F_W in the top 10 % hidden units | {s.top_unit_share:.1%} |", ""]
    return lines


def _fig2_text(out: _Outcome) -> list[str]:
    lines = [f"_{note.rstrip('.')}._\n" for note in (out.notes.get("fig2", []) if "fig2" in out.made else [])]
    pats = out.notes.get("fig2_patterns")
    if pats:
        lines += ["Per-pattern panel (first seed of each criterion): KL(data‖model) recomputed from the checkpoint, "
                  "nats: " + "; ".join(f"{t}: {float(np.sum(np.exp(lp) * (lp - lm))):.4f}" for t, _, lp, lm in pats)
                  + ".", ""]
    return lines


def _section(run: Run, out: _Outcome, key: str) -> list[str]:
    """One figure's section: the image (or why not), its notes, and the tables of its metrics."""
    lines = [f"## {FIGURES[key][1]}", "", _image(key, out)]
    lines += {"fig1": _fig1_text, "fig2": _fig2_text}.get(key, lambda out: [])(out)
    if key == "fig3":
        lines += [f"_{n[0].upper() + n[1:]}._\n" for n in out.notes.get("fig3", []) if "fig3" in out.made]
    lines += _metric_tables(run, key)
    outputs = [o for metric in METRICS.values() for o, d in metric.outputs.items() if d.section == key]
    b = _baseline_table(run.metrics, outputs)
    if len(b) and len(b.columns):
        lines += ["Baselines (the same classifiers on raw pixels, the test digits and uniformly random patterns):",
                  "", _md_table(b), ""]
    return lines


def _markdown(run: Run, out: _Outcome) -> str:
    lines = _header(run) + _table1(run)
    for key in FIGURES:
        lines += _section(run, out, key)
    other = _metric_tables(run, "other")
    if other:
        lines += ["## Other metrics", ""] + other
    lines += ["## Figures not drawn", ""]
    lines += [f"* {FIGURES[k][1]}: {r}" for k, r in out.skipped.items()] or ["None: every figure applies to this run."]
    return "\n".join(lines + [""])


__all__ = ["FIGURES", "ReportError", "Run", "disconnected_probability", "fim_spectra", "fim_summary",
           "generated_samples", "load_run", "pattern_log_probs", "pixel_mask_of", "seed_replicas", "write_report"]
