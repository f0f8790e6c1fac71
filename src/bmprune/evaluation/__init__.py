"""Evaluation of (pruned) Boltzmann machines (SPEC §6): exact and sampled likelihood measures,
encoding quality of the hidden code, generative quality of samples."""

from .ais import AISResult, LogLikelihood, ais, bound_gap, default_betas, log_likelihood
from .encoding import classification_error, encoding_error, raw_pixel_error, top_features
from .generation import GenerationScorer, generation_baselines
from .likelihood import exact_kl, exact_log_likelihood, unique_patterns
from .patterns import PatternCounter, pattern_codes, sampled_pattern_metrics

__all__ = [
    "AISResult", "LogLikelihood", "ais", "bound_gap", "default_betas", "log_likelihood",
    "GenerationScorer", "PatternCounter", "classification_error", "encoding_error", "exact_kl",
    "exact_log_likelihood", "generation_baselines", "pattern_codes", "raw_pixel_error",
    "sampled_pattern_metrics", "top_features", "unique_patterns",
]
