"""Named study presets (DESIGN.md §Command line): the paper's two experiments and quick ones.

Each preset is a small dict (every value spelled out), validated into a
:class:`~bmprune.experiments.config.StudyConfig`. A description says where a value comes from
the original code rather than the paper's text, which update rule it trains with (SPEC §2: the
paper presets train as the published numbers were trained, the ``-stated`` ones with the
text's values and classical momentum), and the expected time on a 2-core CPU and on a GPU.
"""

from __future__ import annotations

from ..errors import ConfigError
from .config import StudyConfig, load_config

ALL_CRITERIA_RBM = ["variance_fi", "heuristic_fi", "eigenvector_fi", "anti_fi", "weight_magnitude",
                    "random_weights", "random_units"]
ALL_CRITERIA_DBM = ["variance_fi", "heuristic_fi", "anti_fi", "weight_magnitude", "random_weights", "random_units"]

_MOMENTUM_MNIST = {"values": [0.5, 0.9], "boundaries": [5]}

# The embedded-data RBM study shared by quick-rbm and demo (they differ in criteria and sampling).
_PHOTO_RBM = {
    "data": {"source": "photo_patches", "radius": 2.1, "n_patches": 20_000},
    "model": {"kind": "rbm", "hidden": [70], "visible_bias": "data", "hidden_bias": -2.0},
    "train": {"epochs": 3, "batch_size": 10, "learning_rate": [0.1, 0.05, 0.01], "momentum": 0.9},
    "retrain": {"epochs": 2, "batch_size": 10, "learning_rate": [0.05, 0.01], "momentum": 0.9},
}

_CIFAR_RBM = {
    "data": {"source": "cifar_patches", "radius": 2.1, "n_patches": 90_000},
    "model": {"kind": "rbm", "hidden": [70], "visible_bias": "data", "hidden_bias": -2.0},
    "sampling": {"n_samples": 90_000, "mode": "independent", "steps": 200},
    "pruning": {"criteria": ALL_CRITERIA_RBM, "percent": 50.0, "iterations": 3},
    "evaluation": {"metrics": ["exact_kl", "exact_log_likelihood", "sampled_patterns"]},
    "seeds": 10,
}
_CIFAR_TRAIN = {"epochs": 2, "batch_size": 1, "learning_rate": [0.1, 0.01], "momentum": 0.9}
_CIFAR_WHAT = (
    "13×70 RBMs on 90,000 13-pixel circular CIFAR-10 patches, CD-1 with batch size 1, 2 epochs at "
    "learning rates 0.1 then 0.01, momentum 0.9; 3 iterations of 50 % weight pruning, each followed "
    "by 2 epochs of retraining; importance from 90,000 independent chains × 200 Gibbs sweeps; exact KL "
    "before and after retraining.")

def _thesis_cifar(radius: float, hidden: int) -> dict:
    """The thesis's CIFAR RBMs (§3.2.1): data, model, training (the original code's rule) and sampling."""
    return {"data": {"source": "cifar_patches", "radius": radius, "n_patches": 90_000},
            "model": {"kind": "rbm", "hidden": [hidden], "visible_bias": "data", "hidden_bias": -2.0},
            "train": {**_CIFAR_TRAIN, "update_rule": "original"},
            "sampling": {"n_samples": 90_000, "mode": "independent", "steps": 200}}


_MNIST_DBM = {
    "data": {"source": "mnist"},
    "model": {"kind": "dbm", "hidden": [400, 676], "receptive_field": 5, "visible_bias": -1.0, "hidden_bias": -2.0},
    "sampling": {"n_samples": 60_000, "mode": "persistent", "n_chains": 1000, "steps": 200},
    "evaluation": {"metrics": ["encoding_error", "generation"]},
    "seeds": 10,
}


def _mnist_training(rule: str, chains_init: str) -> dict:
    """The paper's MNIST DBM training schedules (SPEC §2) under one update rule."""
    return {
        "pretrain": [
            {"epochs": 20, "batch_size": 1, "learning_rate": {"geometric": [0.01, 1e-4]}, "momentum": _MOMENTUM_MNIST,
             "update_rule": rule},
            {"epochs": 20, "batch_size": 1, "learning_rate": {"geometric": [0.1, 1e-4]}, "momentum": _MOMENTUM_MNIST,
             "update_rule": rule},
        ],
        "train": {"epochs": 20, "batch_size": 1, "learning_rate": {"geometric": [0.1, 1e-4]},
                  "momentum": _MOMENTUM_MNIST, "n_chains": 100, "max_norm": 6.0, "update_rule": rule,
                  "chains_init": chains_init},
        "retrain": {"epochs": 10, "batch_size": 10, "learning_rate": {"geometric": [0.1, 1e-4]},
                    "momentum": _MOMENTUM_MNIST, "n_chains": 100, "max_norm": 6.0, "update_rule": rule},
    }


_MNIST_WHAT = (
    "400–400–676 DBMs, 5×5 receptive fields on 20×20 digits; greedy CD-1 pre-training (20 epochs "
    "each, batch 1, geometric learning rates 0.01→1e-4 and 0.1→1e-4, momentum 0.5 then 0.9 from "
    "epoch 5), then 20 epochs of joint mean-field + PCD training with 100 persistent chains (paper "
    "text; the original code used 1,000) at the original code's geometric 0.1→1e-4 rate (the paper "
    "states none); 10 iterations pruning 10 % of W1 and 25 % of W2, each followed by 10 epochs of "
    "joint retraining with batch 10; 60,000 samples from 1,000 persistent chains thinned by 200 sweeps.")
_MNIST_TIME = ("days on a 2-core CPU (joint training alone ≈ 95 s per replica-epoch at batch 10; see "
               "examples/paper-dbm-mnist-cpu.toml for a reduced variant); a GPU job")

PRESETS: dict[str, dict] = {
    "paper-rbm-cifar": {
        "name": "paper-rbm-cifar",
        "description": (
            "The paper's CIFAR-10 experiment (Table 1, Figs 1–2), trained as its published numbers were: "
            "update_rule 'original' (the original code's momentum lr·(μ·v + g), i.e. practically none, and "
            "its shifted learning-rate schedule; SPEC §2). " + _CIFAR_WHAT),
        "expected_time": "about 11 min on a 2-core CPU with --threads 2 for 7 criteria × 10 seeds (11.0 min measured; most of it drawing 90,000 samples × 200 sweeps per replica); GPU time not yet measured",
        **_CIFAR_RBM,
        "train": {**_CIFAR_TRAIN, "update_rule": "original"},
        "retrain": {**_CIFAR_TRAIN, "update_rule": "original"},
    },
    "paper-rbm-cifar-stated": {
        "name": "paper-rbm-cifar-stated",
        "description": (
            "The paper's CIFAR-10 experiment with the values its text states and classical momentum "
            "(update_rule 'classical'), which the published numbers were not trained with (SPEC §2). "
            + _CIFAR_WHAT),
        "expected_time": "about 11 min on a 2-core CPU with --threads 2 for 7 criteria × 10 seeds; GPU time not yet measured",
        **_CIFAR_RBM,
        "train": dict(_CIFAR_TRAIN),
        "retrain": dict(_CIFAR_TRAIN),
    },
    "paper-dbm-mnist": {
        "name": "paper-dbm-mnist",
        "description": (
            "The paper's MNIST experiment (Figs 3–4), trained as its published numbers were: update_rule "
            "'original' in pre-training, training and retraining (SPEC §2), persistent chains started as "
            "the original code did (the first 100 training images with their RBMs' hidden samples), and "
            "variance_fi_w2 (what the original 'Variance FI' DBM script ran) beside variance_fi. " + _MNIST_WHAT),
        "expected_time": _MNIST_TIME,
        **_MNIST_DBM,
        **_mnist_training("original", "first_patterns_rbm"),
        "pruning": {"criteria": ALL_CRITERIA_DBM + ["variance_fi_w2"], "percent": [10.0, 25.0], "iterations": 10},
    },
    "paper-dbm-mnist-stated": {
        "name": "paper-dbm-mnist-stated",
        "description": (
            "The paper's MNIST experiment with the values its text states and classical momentum "
            "(update_rule 'classical'), chains started from random training images; the published numbers "
            "were not trained this way (SPEC §2). " + _MNIST_WHAT),
        "expected_time": _MNIST_TIME,
        **_MNIST_DBM,
        **_mnist_training("classical", "random_patterns"),
        "pruning": {"criteria": ALL_CRITERIA_DBM, "percent": [10.0, 25.0], "iterations": 10},
    },
    "thesis-rbm-units": {
        "name": "thesis-rbm-units",
        "description": (
            "The thesis's unit pruning (§4.1.2): 13×100 RBMs on 90,000 13-pixel CIFAR-10 patches (CD-1, batch 1, "
            "2 epochs at 0.1 then 0.01, momentum 0.9); keep 50 of the 100 hidden units — the most important by "
            "max(Σ_i F_ij, F_bj) of the sampled FIM diagonal (unit_fi), the least important (unit_anti_fi) or random "
            "ones — with the remaining weights × 100/50, then 2 epochs of retraining; exact KL before and after. "
            "Trained with update_rule 'original', as the thesis's code (the paper's) did (SPEC §2)."),
        "expected_time": "about 7 min on one core of a 2-core CPU (3 criteria × 5 seeds; 7.3 min measured); GPU time not yet measured",
        **_thesis_cifar(2.1, 100),
        "retrain": {**_CIFAR_TRAIN, "update_rule": "original"},
        "pruning": {"criteria": ["unit_fi", "unit_anti_fi", "random_units"], "keep_units": 50, "iterations": 1,
                    "rescale_weights": True},
        "evaluation": {"metrics": ["exact_kl", "exact_log_likelihood", "sampled_patterns"]},
        "seeds": 5,
    },
    "thesis-rbm-threshold": {
        "name": "thesis-rbm-threshold",
        "description": (
            "The thesis's fixed-threshold weight pruning (§4.1.3, Table 4.1): 37×150 RBMs on 90,000 37-pixel "
            "CIFAR-10 patches (r = 3.5; CD-1, batch 1, 2 epochs at 0.1 then 0.01, momentum 0.9); 3 iterations "
            "pruning every weight whose sampled FIM-diagonal entry is below 0.05, unconnected hidden units kept, "
            "each followed by 2 epochs of retraining at 0.01 then 0.001; the FIM trace and connected units per "
            "iteration. Trained with update_rule 'original' (the thesis's code)."),
        "expected_time": "about 8 min on one core of a 2-core CPU (3 seeds; 7.9 min measured); GPU time not yet measured",
        **_thesis_cifar(3.5, 150),
        "retrain": {"epochs": 2, "batch_size": 1, "learning_rate": [0.01, 0.001], "momentum": 0.9,
                    "update_rule": "original"},
        "pruning": {"criteria": ["variance_fi"], "threshold": 0.05, "iterations": 3, "remove_units": False},
        "evaluation": {"metrics": ["sampled_patterns"]},
        "seeds": 3,
    },
    "thesis-dbm-layerwise": {
        "name": "thesis-dbm-layerwise",
        "description": (
            "A CPU-sized variant of the thesis's layer-wise DBM pruning (§4.2.2) and minimal models (§4.2.4) on "
            "the real MNIST digits: the 400–400–676 DBM of examples/paper-dbm-mnist-cpu.toml (short pre-training "
            "and joint training, update_rule 'original'), then 4 pruning steps alternating W2 and W1 (schedule "
            "'layer2-first': two of the thesis's ten iterations), each removing the 10 % least (variance FI) or "
            "most (anti-FI) important weights of one layer, keeping unconnected h1 units, evaluated after pruning "
            "and after 1 epoch of retraining (thesis: 15) with logistic-regression and RBF-SVM encoding (on "
            "subsets) and generated digits; finally each pruned architecture is trained from scratch (minimal "
            "models)."),
        "expected_time": "about 50 min on one core of a 2-core CPU (2 criteria × 2 seeds; 49 min measured, 22 of them training the minimal models); GPU time not yet measured",
        "data": {"source": "mnist"},
        "model": {"kind": "dbm", "hidden": [400, 676], "receptive_field": 5, "visible_bias": -1.0, "hidden_bias": -2.0},
        "pretrain": [
            {"epochs": 2, "batch_size": 1, "learning_rate": [0.01, 0.01, 0.001], "momentum": 0.5, "update_rule": "original"},
            {"epochs": 2, "batch_size": 1, "learning_rate": [0.1, 0.1, 0.01], "momentum": 0.5, "update_rule": "original"},
        ],
        "train": {"epochs": 4, "batch_size": 10, "learning_rate": [0.01, 0.01, 0.004641588833612777, 0.002154434690031884,
                                                                   0.001],
                  "momentum": 0.5, "n_chains": 100, "max_norm": 6.0, "mf_max_iter": 10, "update_rule": "original",
                  "chains_init": "first_patterns_rbm"},
        "retrain": {"epochs": 1, "batch_size": 100, "learning_rate": 0.01, "momentum": 0.5, "n_chains": 100,
                    "max_norm": 6.0, "mf_max_iter": 10, "update_rule": "original"},
        "sampling": {"n_samples": 10_000, "mode": "persistent", "n_chains": 1000, "steps": 20, "burn_in": 200},
        "pruning": {"criteria": ["variance_fi", "anti_fi"], "percent": [10.0, 10.0], "iterations": 4,
                    "schedule": "layer2-first", "remove_dead_ends": False, "minimal_model": True},
        "evaluation": {"metrics": ["encoding_error", "encoding_error_svm", "generation"], "classifier_n_train": 10_000,
                       "classifier_max_iter": 100, "mf_max_iter": 20,
                       "options": {"encoding_error_svm": {"n_train": 5000, "n_test": 2000}}},
        "seeds": 2,
    },
    "quick-rbm": {
        "name": "quick-rbm",
        "description": (
            "A fast version of the CIFAR experiment on embedded data: 13×70 RBMs on 20,000 "
            "circular patches of scikit-learn's sample photographs, batch size 10 (the paper: 1), "
            "3 epochs; 3 iterations of 50 % pruning; 20,000 samples × 50 sweeps."),
        "expected_time": "about 1.5 min on a 2-core CPU for all criteria × 3 seeds (87 s of compute measured with one thread)",
        **_PHOTO_RBM,
        "sampling": {"n_samples": 20_000, "mode": "independent", "steps": 50},
        "pruning": {"criteria": ALL_CRITERIA_RBM, "percent": 50.0, "iterations": 3},
        "evaluation": {"metrics": ["exact_kl", "exact_log_likelihood", "sampled_patterns"]},
        "seeds": 3,
    },
    "quick-dbm": {
        "name": "quick-dbm",
        "description": (
            "A fast version of the MNIST experiment on embedded data: 64–64–100 DBMs with 3×3 "
            "receptive fields on binarised scikit-learn 8×8 digits; short pre-training and joint "
            "training (batch 10); 3 iterations pruning 10 % of W1 and 25 % of W2; encoding and "
            "generation measured with the paper's classifiers."),
        "expected_time": "about 2 min on a 2-core CPU for all criteria × 3 seeds (1.9 min measured with one thread)",
        "data": {"source": "digits"},
        "model": {"kind": "dbm", "hidden": [64, 100], "receptive_field": 3, "visible_bias": -1.0,
                  "hidden_bias": -2.0},
        "pretrain": [
            {"epochs": 10, "batch_size": 10, "learning_rate": 0.05, "momentum": _MOMENTUM_MNIST},
            {"epochs": 10, "batch_size": 10, "learning_rate": 0.05, "momentum": _MOMENTUM_MNIST},
        ],
        "train": {"epochs": 10, "batch_size": 10, "learning_rate": {"geometric": [0.02, 1e-3]},
                  "momentum": _MOMENTUM_MNIST, "n_chains": 100, "max_norm": 6.0},
        "retrain": {"epochs": 5, "batch_size": 10, "learning_rate": {"geometric": [0.01, 1e-3]},
                    "momentum": 0.9, "n_chains": 100, "max_norm": 6.0},
        "sampling": {"n_samples": 2000, "mode": "persistent", "n_chains": 200, "steps": 20},
        "pruning": {"criteria": ALL_CRITERIA_DBM, "percent": [10.0, 25.0], "iterations": 3},
        "evaluation": {"metrics": ["encoding_error", "generation"]},
        "seeds": 3,
    },
    "demo": {
        "name": "demo",
        "description": (
            "The demo: 13×70 RBMs on circular patches of scikit-learn's photographs, 4 criteria × "
            "3 seeds, 3 iterations of 50 % pruning with retraining, exact KL. Shows the paper's "
            "central effect: Fisher-information pruning disconnects far more hidden units than "
            "|w| or random pruning at equal weight counts."),
        "expected_time": "about 30 s on a 2-core CPU (19 s of compute measured with one thread)",
        **_PHOTO_RBM,
        "sampling": {"n_samples": 10_000, "mode": "independent", "steps": 30},
        "pruning": {"criteria": ["variance_fi", "heuristic_fi", "weight_magnitude", "random_weights"],
                    "percent": 50.0, "iterations": 3},
        "evaluation": {"metrics": ["exact_kl", "exact_log_likelihood", "sampled_patterns"]},
        "seeds": 3,
    },
}


def get_preset(name: str) -> StudyConfig:
    """The validated preset ``name``. Raises ConfigError listing the presets when unknown."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return load_config(PRESETS[name])


__all__ = ["PRESETS", "get_preset"]
