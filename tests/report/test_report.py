"""The report: figures, tables and report.md from a run directory (issue 7, item 1).

A real tiny RBM run (module fixture, about a second with one thread) covers the RBM figures,
Table 1 against the metrics, the exact per-pattern log-probabilities and the CLI; a synthetic
DBM run directory (random networks, a metrics table of the documented schema) covers the DBM
figures without training one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import torch
from typer.testing import CliRunner

import bmprune as bp
from bmprune.cli import app
from bmprune.experiments import get_preset
from bmprune.report import (
    FIGURES,
    ReportError,
    fig3_pruning,
    fig4_generation,
    figS1_activity,
    load_run,
    metric_table,
    table1_hidden_units,
    write_report,
)
from bmprune.report.report import pattern_log_probs

TINY = {
    "name": "tiny-report",
    "data": {"source": "photo_patches", "radius": 1.5, "n_patches": 1500},
    "model": {"kind": "rbm", "hidden": [12], "visible_bias": "data", "hidden_bias": -1.0},
    "train": {"epochs": 1, "batch_size": 10, "learning_rate": 0.05, "momentum": 0.5},
    "retrain": {"epochs": 1, "batch_size": 10, "learning_rate": 0.02, "momentum": 0.5},
    "sampling": {"n_samples": 400, "steps": 5},
    "pruning": {"criteria": ["variance_fi", "weight_magnitude", "random_weights"], "percent": 50.0, "iterations": 2},
    "evaluation": {"exact": True, "sampled_patterns": True},
    "seeds": 3,
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def one_thread():
    # two shared cores: torch's thread pool spin-waits under load and a second slower by 50×
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory, one_thread):
    """A tiny RBM run, reported through the command line (`bmprune report DIR`)."""
    out = tmp_path_factory.mktemp("report") / "tiny"
    bp.run(TINY, out)
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    return out, Path(res.output.strip().splitlines()[-1])


# --- RBM run ---------------------------------------------------------------------------------
def test_report_command_writes_report_md_and_the_rbm_figures(rbm_run):
    out, report = rbm_run
    assert report == out / "report.md" and report.is_file()          # the path printed by the CLI
    text = report.read_text()
    for key in ("fig1", "fig2", "fig3", "figS1"):
        png = out / "figures" / FIGURES[key][0]
        assert png.is_file(), key
        assert png.read_bytes()[:8] == PNG
        assert png.stat().st_size < 300_000
        assert f"](figures/{png.name})" in text
    assert not (out / "figures" / FIGURES["fig4"][0]).exists()
    # the skipped figure is named with its reason
    skipped = text.split("## Figures not drawn")[1]
    assert "Fig 4" in skipped and "no generation metrics" in skipped
    assert "no encoding-error panel" in text.lower()


def test_table1_equals_the_metrics(rbm_run):
    out, report = rbm_run
    df = pd.read_parquet(out / "metrics.parquet")
    t = table1_hidden_units(df, criteria=TINY["pruning"]["criteria"])
    assert list(t.columns) == [0, 1, 2]
    assert list(t.index) == [*TINY["pruning"]["criteria"], "n_w"]
    units = df[(df.metric == "alive_units") & (df.layer == 1)
               & (((df.iteration == 0) & (df.stage == "trained")) | (df.stage == "pruned"))]
    for (crit, it), g in units.groupby(["criterion", "iteration"]):
        assert t.loc[crit, it] == f"{g.value.mean():.1f} ({g.value.std(ddof=1):.1f})"
    w = df[(df.metric == "weights") & (((df.iteration == 0) & (df.stage == "trained")) | (df.stage == "pruned"))]
    for it, g in w.groupby("iteration"):
        want = f"{int(g.value.iloc[0])}" if g.value.nunique() == 1 else \
            f"{g.value.mean():.1f} ({g.value.std(ddof=1):.1f})"
        assert t.loc["n_w", it] == want
    assert t.loc["n_w", 0] == str(9 * 12)                       # radius 1.5: 3×3 visible, 12 hidden
    # the same numbers are in report.md, rows labelled as in the paper
    text = report.read_text()
    row = "| Random | " + " | ".join(t.loc["random_weights", c] for c in t.columns) + " |"
    assert row in text


def test_metric_table_mean_and_sd_of_exact_kl(rbm_run):
    out, _ = rbm_run
    df = pd.read_parquet(out / "metrics.parquet")
    t = metric_table(df, "exact_kl", digits=4)
    assert list(t.columns) == ["unpruned", "1 pruned", "1 retrained", "2 pruned", "2 retrained"]
    g = df[(df.metric == "exact_kl") & (df.criterion == "weight_magnitude") & (df.iteration == 2)
           & (df.stage == "retrained")].value
    assert t.loc["weight_magnitude", "2 retrained"] == f"{g.mean():.4f} ({g.std(ddof=1):.4f})"


def test_per_pattern_log_probabilities_reproduce_the_recorded_exact_kl(rbm_run):
    out, _ = rbm_run
    run = load_run(out)
    panels = pattern_log_probs(run)
    assert [p[1] for p in panels] == ["unpruned", *TINY["pruning"]["criteria"]]
    df = run.metrics
    kl = df[df.metric == "exact_kl"]
    S = TINY["seeds"]
    for title, crit, lp_data, lp_model in panels:
        assert math.isclose(np.exp(lp_data).sum(), 1.0, rel_tol=1e-9)
        assert (lp_model <= 0).all()
        mine = float(np.sum(np.exp(lp_data) * (lp_data - lp_model)))
        if crit == "unpruned":
            want = kl[(kl.replica == 0) & (kl.stage == "trained")].value.item()
        else:
            r = TINY["pruning"]["criteria"].index(crit) * S
            want = kl[(kl.replica == r) & (kl.iteration == 2) & (kl.stage == "retrained")].value.item()
        assert mine == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_missing_or_invalid_run_dir_gives_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="not a directory"):
        write_report(tmp_path / "nowhere")
    with pytest.raises(ReportError, match="no config.toml"):
        write_report(tmp_path)
    (tmp_path / "config.toml").write_text(tomli_w.dumps(get_preset("demo").model_dump(mode="json", exclude_none=True)))
    with pytest.raises(ReportError, match="no metrics.parquet"):
        write_report(tmp_path)
    (tmp_path / "metrics.parquet").write_bytes(b"not parquet")
    with pytest.raises(ReportError, match="not a readable parquet"):
        write_report(tmp_path)
    (tmp_path / "config.toml").write_text("name = 'x'\n")
    with pytest.raises(bp.ConfigError):
        write_report(tmp_path)
    assert issubclass(ReportError, bp.BmpruneError)
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert res.exit_code == 2
    assert "not a directory" in res.output


# --- a synthetic DBM run ---------------------------------------------------------------------
CRIT_DBM = ["variance_fi", "anti_fi", "random_weights"]
SIZES = [64, 16, 20]


def _dbm_metrics(S: int, iterations: int, rng) -> pd.DataFrame:
    rows = []
    add = lambda **r: rows.append({"layer": -1, **r})
    R = len(CRIT_DBM) * S
    stages = [(0, "trained")] + [(i, s) for i in range(1, iterations + 1) for s in ("pruned", "retrained")]
    for r in range(R):
        crit, seed = CRIT_DBM[r // S], r % S
        w = [SIZES[0] * SIZES[1], SIZES[1] * SIZES[2]]
        alive = list(SIZES)
        for it, st in stages:
            key = {"criterion": crit, "seed": seed, "replica": r, "iteration": it, "stage": st}
            if st == "pruned":
                w = [w[0] - w[0] // 10, w[1] - w[1] // 4]
                if crit == "variance_fi":       # a threshold rule also removes weights tied at it
                    w[1] -= 3
                alive = [alive[0], alive[1] - int(rng.integers(0, 3)), alive[2] - int(rng.integers(0, 4))]
            for l, n in enumerate(w):
                add(**key, metric="weights", layer=l, value=n)
            for k, n in enumerate(alive):
                add(**key, metric="alive_units", layer=k, value=n)
            add(**key, metric="disconnected_visible", value=float(rng.integers(0, 5)))
            add(**key, metric="encoding_error", value=0.05 + 0.01 * it + 0.01 * rng.random())
            if st != "pruned":
                for k in range(3):
                    add(**key, metric="mean_activity", layer=k, value=0.1 + 0.02 * it + 0.01 * rng.random())
                add(**key, metric="generation_quality", value=0.9 - 0.02 * it * (crit == "anti_fi"))
                add(**key, metric="generation_entropy", value=2.2 - 0.05 * rng.random())
                add(**key, metric="generation_class_ratio", value=0.5 + 0.1 * rng.random())
    base = {"seed": -1, "replica": -1, "iteration": -1, "stage": "baseline"}
    add(**base, criterion="raw_pixels", metric="encoding_error", value=0.085)
    for name, q in (("test_digits", 0.95), ("random_patterns", 0.6)):
        add(**base, criterion=name, metric="generation_quality", value=q)
        add(**base, criterion=name, metric="generation_entropy", value=2.28)
        add(**base, criterion=name, metric="generation_class_ratio", value=0.8)
    df = pd.DataFrame(rows)[["criterion", "seed", "replica", "iteration", "stage", "metric", "layer", "value"]]
    return df.astype({"value": "float64"})


@pytest.fixture(scope="module")
def dbm_run(tmp_path_factory, one_thread):
    S, I = 2, 2
    out = tmp_path_factory.mktemp("report") / "dbm"
    (out / "checkpoints").mkdir(parents=True)
    cfg = get_preset("quick-dbm").with_overrides(**{"seeds": S, "pruning.iterations": I, "pruning.criteria": CRIT_DBM,
                                                    "model.hidden": SIZES[1:], "model.receptive_field": None})
    (out / "config.toml").write_text(tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True)))
    metrics = _dbm_metrics(S, I, np.random.default_rng(3))
    # a row of a stage that never completed must not be reported
    metrics = pd.concat([metrics, metrics[metrics.iteration == 2].assign(iteration=3)], ignore_index=True)
    metrics.to_parquet(out / "metrics.parquet", index=False)
    model = bp.DBM(SIZES, n_replicas=len(CRIT_DBM) * S, seed=1, weight_std=0.5)
    meta = {"criteria": ",".join(c for c in CRIT_DBM for _ in range(S))}
    bp.save_model(model, out / "checkpoints" / "iter00-trained.safetensors", metadata={**meta, "iteration": "0", "stage": "trained"})
    model.weight_masks[0][0, :8] = False                # replica 0 (variance_fi): 8 visible units cut off
    model.apply_masks()
    bp.save_model(model, out / "checkpoints" / "iter02-retrained.safetensors", metadata={**meta, "iteration": "2", "stage": "retrained"})
    done = ["-1:baseline", "0:trained", "1:pruned", "1:retrained", "2:pruned", "2:retrained"]
    (out / "state.json").write_text(json.dumps({"completed": done, "checkpoint": "checkpoints/iter02-retrained.safetensors",
                                                "seconds": {k: 1.0 for k in done}, "finished": True}))
    (out / "figures").mkdir()
    (out / "figures" / FIGURES["fig1"][0]).write_bytes(PNG)  # stale figure of an earlier report
    return out, write_report(out, samples_per_criterion=3, gibbs_sweeps=5)


def test_dbm_run_draws_figs_3_4_s1_and_skips_1_2(dbm_run):
    out, report = dbm_run
    assert report == out / "report.md"                                 # write_report returns its path
    text = report.read_text()
    for key in ("fig3", "fig4", "figS1"):
        png = out / "figures" / FIGURES[key][0]
        assert png.read_bytes()[:8] == PNG and png.stat().st_size < 300_000
    assert not (out / "figures" / FIGURES["fig1"][0]).exists()      # stale one removed
    skipped = text.split("## Figures not drawn")[1]
    assert "Fig 1" in skipped and "DBM" in skipped and "Fig 2" in skipped
    assert "| raw pixels | 8.50 |" in text                              # the encoding baseline
    assert "Hidden layer 2:" in text
    run = load_run(out)
    assert 3 not in set(run.metrics.iteration)                        # incomplete stage dropped
    assert "iteration 3" not in text


def test_dbm_table1_per_hidden_layer(dbm_run):
    out, _ = dbm_run
    m = load_run(out).metrics
    for k in (1, 2):
        t = table1_hidden_units(m, layer=k)
        g = m[(m.metric == "alive_units") & (m.layer == k) & (m.stage == "pruned") & (m.iteration == 2)
              & (m.criterion == "anti_fi")].value
        assert t.loc["anti_fi", 2] == f"{g.mean():.1f} ({g.std(ddof=1):.1f})"
        assert t.loc["n_w", 0] == str(SIZES[0] * SIZES[1] + SIZES[1] * SIZES[2])
    # FI removes every zero-importance weight, random units whole rows: n_w differs by criterion,
    # so report.md gives each criterion's remaining weights (mean over seeds, no decimals)
    w = m[(m.metric == "weights") & (m.stage == "pruned") & (m.iteration == 1)].groupby(["criterion", "seed"]).value.sum()
    assert w.groupby("criterion").mean().nunique() > 1
    text = (out / "report.md").read_text()
    assert "Remaining weights (all weight layers) per criterion" in text
    for crit, g in w.groupby("criterion"):
        assert f"| {g.mean():.0f} (" in text


def test_disconnection_map_and_figure_functions_on_synthetic_metrics(dbm_run):
    out, _ = dbm_run
    from bmprune.report.report import disconnected_probability
    run = load_run(out)
    p = disconnected_probability(run)
    assert list(p) == CRIT_DBM
    np.testing.assert_allclose(p["variance_fi"], np.r_[np.full(8, 0.5), np.zeros(56)])   # 1 of 2 seeds
    assert (p["anti_fi"] == 0).all()
    m, cfg = run.metrics, run.config
    mask = np.ones((8, 8), bool)
    for fig in (fig3_pruning(m, cfg, disconnected=p, pixel_mask=mask),
                fig4_generation(m, cfg, samples={c: np.zeros((2, 64)) for c in CRIT_DBM}, pixel_mask=mask),
                figS1_activity(m, cfg)):
        assert fig.axes and fig.get_suptitle()
    with pytest.raises(bp.DataError, match="generation"):
        fig4_generation(m[~m.metric.str.startswith("generation")], cfg)


def test_weight_axis_tick_labels_are_compact_counts():
    from bmprune.report.figures import _compact_count
    assert [_compact_count(x) for x in (500, 2000, 50_000, 200_000, 1_500_000)] == ["500", "2k", "50k", "200k", "1.5M"]


@pytest.mark.parametrize("xs", [(12_000, 280_000), (4_800, 280_000)])
def test_weight_axis_labels_never_crowd(xs):
    # a labelled tick at most every 0.3 decades (1-2-5) on a short axis, 0.47 (1-3) on a long one:
    # 200k and 100k printed 0.3 decades apart collided on the DBM run's 1.8-decade panels
    import matplotlib.pyplot as plt
    from bmprune.report.figures import _weights_axis
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(xs, [0, 1])
    _weights_axis(ax, xs)
    ticks = [t for t in ax.get_xticks() if min(xs) <= t <= max(xs)]
    gaps = np.diff(np.log10(sorted(ticks)))
    assert len(ticks) >= 3 and gaps.min() >= (0.3 if np.log10(xs[1] / xs[0]) <= 1.5 else 0.47) - 1e-9
    plt.close(fig)
