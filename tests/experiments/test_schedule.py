"""Stages as data (issue 14 item 5) and training configs per model kind (item 6)."""

import pytest

import bmprune as bp
from bmprune.experiments import get_preset, load_config
from bmprune.experiments.schedule import build_schedule


def test_default_schedule_is_trained_then_pruned_retrained_per_iteration():
    steps = build_schedule(get_preset("demo"))
    assert [s.key for s in steps] == ["0:trained", "1:pruned", "1:retrained", "2:pruned", "2:retrained",
                                      "3:pruned", "3:retrained"]
    assert {s.percent for s in steps if s.stage == "pruned"} == {(50.0,)}
    assert [s.samples for s in steps[:3]] == [True, False, True]


def test_per_iteration_and_per_layer_percent_schedules():
    cfg = get_preset("quick-dbm").with_overrides(**{"pruning.percent_schedule": [[10.0, 25.0], [20.0, 5.0]],
                                                    "pruning.iterations": 3})
    assert [s.percent for s in build_schedule(cfg) if s.stage == "pruned"] == [(10.0, 25.0), (20.0, 5.0), (20.0, 5.0)]
    with pytest.raises(bp.ConfigError, match="weight layers"):
        cfg.with_overrides(**{"pruning.percent_schedule": [[10.0]]})
    with pytest.raises(bp.ConfigError, match="entries for 3 iterations"):
        cfg.with_overrides(**{"pruning.percent_schedule": [10.0] * 4})
    with pytest.raises(bp.ConfigError, match=r"\(0, 100\]"):
        cfg.with_overrides(**{"pruning.percent_schedule": [0.0]})


@pytest.mark.parametrize("preset, section, key, value", [
    ("quick-dbm", "train", "persistent", True),          # a DBM is always trained with PCD
    ("quick-dbm", "retrain", "persistent", False),
    ("demo", "train", "max_norm", 6.0),                   # max-norm belongs to DBM joint training
    ("demo", "retrain", "mf_max_iter", 10),
    ("demo", "train", "chains_init", "first_patterns_rbm"),
])
def test_training_settings_that_do_not_apply_to_the_model_are_refused(preset, section, key, value):
    data = get_preset(preset).model_dump(mode="json")
    data[section][key] = value
    with pytest.raises(bp.ConfigError, match=f"{key} is not a setting of (rbm|dbm) training"):
        load_config(data)


def test_n_chains_needs_persistent_training_for_an_rbm():
    with pytest.raises(bp.ConfigError, match="persistent"):
        get_preset("demo").with_overrides(**{"train.n_chains": 50})
    cfg = get_preset("demo").with_overrides(**{"train.n_chains": 50, "train.persistent": True})
    assert cfg.train.kwargs()["n_chains"] == 50
