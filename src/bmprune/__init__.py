"""bmprune: synaptic and neuronal pruning in Boltzmann machines by Fisher information.

Reproduces Scholl, Rule & Hennig (2021), "The information theory of developmental pruning",
and runs the same study on a researcher's own binary data. See SPEC.md for what is computed
and DESIGN.md for the layout; the public API is re-exported here.
"""

__version__ = "0.1.0"

from . import errors, rng
from .errors import (BmpruneError, CheckpointError, ConfigError, DataError, EnumerationError, RunDirError,
                     ShapeError, TrainingDivergedError)
from .models import DBM, RBM, load_model, receptive_field_mask, save_model
from .sampling import iter_samples, sample
from . import training
from . import fisher, pruning
from . import data
from . import evaluation, experiments
from .experiments import run

__all__ = [
    "__version__", "errors", "rng", "BmpruneError", "CheckpointError", "ConfigError", "DataError",
    "EnumerationError", "RunDirError", "ShapeError", "TrainingDivergedError", "RBM", "DBM", "receptive_field_mask", "load_model", "save_model", "sample", "iter_samples",
    "training", "fisher", "pruning", "data", "evaluation", "experiments", "run",
]
