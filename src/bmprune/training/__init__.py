"""Training of RBMs (CD-k, PCD) and DBMs, with per-epoch schedules (SPEC §2)."""

from . import schedules
from .cd import TrainResult, train_rbm

__all__ = ["schedules", "train_rbm", "TrainResult"]
