"""The metric registry (issue 14 item 4): a metric is one entry; the runner records the configured
ones and the report tabulates whatever a run recorded."""

import pytest
import torch

import bmprune as bp
from bmprune.evaluation import metrics as M
from bmprune.experiments import load_config

TINY = {
    "name": "tiny",
    "data": {"source": "photo_patches", "radius": 1.5, "n_patches": 600},
    "model": {"kind": "rbm", "hidden": [7], "visible_bias": "data", "hidden_bias": -1.0},
    "train": {"epochs": 1, "batch_size": 10, "learning_rate": 0.05},
    "retrain": {"epochs": 1, "batch_size": 10, "learning_rate": 0.02},
    "sampling": {"n_samples": 300, "steps": 5},
    "pruning": {"criteria": ["variance_fi", "weight_magnitude"], "percent": 50.0, "iterations": 1},
    "seeds": 2,
}


@pytest.fixture
def weight_norm_metric():
    """A new metric, defined in one place: the L2 norm of the first weight layer per replica."""
    metric = M.register(M.Metric(
        "weight_norm", "Frobenius norm of W_0",
        outputs={"weight_norm": M.Display("Frobenius norm of the first weight matrix", "other", digits=3)},
        compute=lambda ctx: {"weight_norm": torch.linalg.matrix_norm(ctx.model.weights[0].double())}))
    yield metric
    del M.METRICS["weight_norm"]


def test_a_registered_metric_is_recorded_and_reported_without_touching_other_files(tmp_path, weight_norm_metric):
    res = bp.run({**TINY, "evaluation": {"metrics": ["exact_kl", "weight_norm"]}}, tmp_path / "run")
    df = res.metrics
    w = df[df.metric == "weight_norm"]
    assert set(w.stage) == {"trained", "pruned", "retrained"} and len(w) == 3 * 4
    assert not (df.metric == "exact_log_likelihood").any()          # not configured, not recorded
    assert (df.metric == "mean_activity").any()                      # always recorded
    from bmprune.report import write_report
    text = write_report(res.out_dir).read_text()
    assert "## Other metrics" in text and "Frobenius norm of the first weight matrix" in text


def test_defaults_selection_and_unknown_names():
    names = [m.name for m in M.select(None)]
    assert {"structure", "pruning", "mean_activity", "exact_kl", "exact_log_likelihood"} <= set(names)
    assert "encoding_error" not in names
    assert [m.name for m in M.select(["generation"]) if not m.always] == ["generation"]
    with pytest.raises(bp.ConfigError, match="unknown metric"):
        M.select(["nope"])
    with pytest.raises(bp.ConfigError, match="unknown metrics"):
        load_config({**TINY, "evaluation": {"metrics": ["nope"]}})
    with pytest.raises(ValueError, match="already recorded"):
        M.register(M.Metric("other_kl", "", outputs={"exact_kl": M.Display("x")}))


def test_legacy_evaluation_flags_map_to_metrics():
    cfg = load_config({**TINY, "evaluation": {"exact": True, "sampled_patterns": True}})
    assert cfg.evaluation.metrics == ["exact_kl", "exact_log_likelihood", "sampled_patterns"]
    with pytest.raises(bp.ConfigError, match="either"):
        load_config({**TINY, "evaluation": {"exact": True, "metrics": ["exact_kl"]}})


def test_metrics_that_do_not_apply_are_skipped_with_a_reason():
    ctx = M.MetricContext(bp.DBM([30, 20, 40]), 0, "trained", train=None)
    assert "too large" in M.METRICS["exact_kl"].applies(ctx)


def test_ais_log_likelihood_metric_is_recorded_and_drawn(tmp_path):
    """Issue 16 item 3: an opt-in metric with its ±, per stage, and its report figure."""
    from bmprune.models import load_model
    from bmprune.report import write_report

    cfg = {**TINY, "evaluation": {"metrics": ["ais_log_likelihood"],
                                  "options": {"ais_log_likelihood": {"n_runs": 50, "n_betas": 400, "n_patterns": 300}}}}
    res = bp.run(cfg, tmp_path / "run")
    df = res.metrics
    ll = df[df.metric == "ais_log_likelihood"]
    assert set(ll.stage) == {"trained", "retrained"} and len(ll) == 2 * 4
    assert (df[df.metric == "ais_log_likelihood_sem"].value > 0).all()
    # AIS log Z of the final networks against their exact log Z (9 × 7 RBMs: enumerable)
    model = load_model(res.out_dir / "checkpoints" / "iter01-retrained.safetensors")
    ais_z = df[(df.metric == "ais_log_z") & (df.stage == "retrained")].sort_values("replica").value.to_numpy()
    assert abs(ais_z - model.log_partition().numpy()).max() < 0.1
    write_report(res.out_dir)
    assert (res.out_dir / "figures" / "fig_log_likelihood.png").is_file()
