"""bmprune: synaptic and neuronal pruning in Boltzmann machines by Fisher information.

Reproduces Scholl, Rule & Hennig (2021), "The information theory of developmental pruning",
and runs the same study on a researcher's own binary data. See SPEC.md for what is computed
and DESIGN.md for the layout; the public API is re-exported here.
"""

__version__ = "0.1.0"

from . import errors
from .errors import BmpruneError, CheckpointError, ConfigError, DataError, EnumerationError, ShapeError
from .models import RBM, load_model, save_model
from .sampling import iter_samples, sample
from . import training

__all__ = [
    "__version__", "errors", "BmpruneError", "CheckpointError", "ConfigError", "DataError",
    "EnumerationError", "ShapeError", "RBM", "load_model", "save_model", "sample", "iter_samples",
    "training",
]
