"""Studies: validated configs, presets, the prune–retrain runner and its run directory."""

from .config import StudyConfig, load_config
from .presets import PRESETS, get_preset
from .rundir import RunDir
from .runner import RunResult, resolve_config, run

__all__ = ["PRESETS", "RunDir", "RunResult", "StudyConfig", "get_preset", "load_config", "resolve_config", "run"]
