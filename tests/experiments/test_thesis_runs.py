"""The thesis's experiments as study configs (issue 15): unit pruning, fixed thresholds, layer-wise
schedules, minimal models, the SVM encoding metric — run end to end on tiny studies."""

import pandas as pd
import pytest

import bmprune as bp
from bmprune.experiments import get_preset
from bmprune.report import write_report

TINY = {
    "name": "tiny",
    "data": {"source": "photo_patches", "radius": 1.5, "n_patches": 800},
    "model": {"kind": "rbm", "hidden": [12], "visible_bias": "data", "hidden_bias": -1.0},
    "train": {"epochs": 1, "batch_size": 10, "learning_rate": 0.05, "momentum": 0.5},
    "retrain": {"epochs": 1, "batch_size": 10, "learning_rate": 0.02},
    "sampling": {"n_samples": 400, "steps": 5},
    "seeds": 2,
}


def _value(df, metric, stage, iteration, layer=-1):
    sel = df[(df.metric == metric) & (df.stage == stage) & (df.iteration == iteration) & (df.layer == layer)]
    return sel.set_index(["criterion", "seed"])["value"]


def test_unit_pruning_keeps_the_target_number_of_hidden_units(tmp_path):
    cfg = {**TINY, "pruning": {"criteria": ["unit_fi", "unit_anti_fi", "random_units"], "keep_units": 5,
                               "iterations": 1, "rescale_weights": True}}
    res = bp.run(cfg, tmp_path / "units")
    df = res.metrics
    assert (_value(df, "alive_units", "pruned", 1, layer=1) == 5).all()
    assert "keeping 5 hidden units" in write_report(res.out_dir).read_text()
    assert (_value(df, "weights", "pruned", 1, layer=0) == 9 * 5).all()        # whole units: all their weights


def test_fixed_threshold_keeps_unconnected_units_and_records_the_fim_trace(tmp_path):
    cfg = {**TINY, "pruning": {"criteria": ["variance_fi"], "threshold": 0.05, "iterations": 2, "remove_units": False}}
    df = bp.run(cfg, tmp_path / "threshold").metrics
    assert (_value(df, "alive_units", "retrained", 2, layer=1) == 12).all()     # unconnected units kept
    assert (_value(df, "connected_units", "pruned", 1, layer=1) < 12).any()     # … but some lost every weight
    assert (_value(df, "weights", "pruned", 1, layer=0) < 9 * 12).all()
    trace = _value(df, "fim_trace", "retrained", 2)
    assert len(trace) == 2 and (trace > 0).all()


@pytest.fixture(scope="module")
def layerwise(tmp_path_factory):
    cfg = get_preset("quick-dbm").with_overrides(**{
        "seeds": 1, "pruning.criteria": ["variance_fi", "anti_fi"], "pruning.iterations": 2,
        "pruning.schedule": "layer2-first", "pruning.remove_dead_ends": False, "pruning.minimal_model": True,
        "pretrain.0.epochs": 2, "pretrain.1.epochs": 2, "train.epochs": 2, "retrain.epochs": 1,
        "sampling.n_samples": 400, "evaluation.metrics": ["encoding_error", "encoding_error_svm"],
        "evaluation.options": {"encoding_error_svm": {"n_train": 300, "n_test": 200}}})
    res = bp.run(cfg, tmp_path_factory.mktemp("layerwise") / "run")
    text = write_report(res.out_dir).read_text()
    assert "minimal model" in text and "layer2-first" in text and "RBF SVM" in text
    return res.metrics


def test_layer_wise_schedule_prunes_one_layer_per_step(layerwise):
    df = layerwise
    w = {(i, l): _value(df, "weights", "pruned", i, layer=l) for i in (1, 2) for l in (0, 1)}
    w0 = {l: _value(df, "weights", "trained", 0, layer=l) for l in (0, 1)}
    assert (w[1, 0] == w0[0]).all() and (w[1, 1] < w0[1]).all()                # step 1: W2 only
    assert (w[2, 0] < w0[0]).all()                                              # step 2: W1


def test_minimal_model_and_svm_encoding_are_recorded(layerwise):
    df = layerwise
    minimal = df[df.stage == "minimal"]
    assert set(minimal.criterion) == {"variance_fi", "anti_fi"}
    assert {"encoding_error", "encoding_error_svm", "weights"} <= set(minimal.metric)
    # the minimal model has exactly the pruned architecture
    pd.testing.assert_series_equal(_value(df, "weights", "minimal", 2, layer=1), _value(df, "weights", "retrained", 2, layer=1))
    svm = df[(df.metric == "encoding_error_svm") & (df.stage != "baseline")]
    assert svm.value.between(0, 1).all()
    assert ((df.stage == "baseline") & (df.metric == "encoding_error_svm")).any()
