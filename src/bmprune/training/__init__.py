"""Training of RBMs (CD-k, PCD) and DBMs, with per-epoch schedules (SPEC §2)."""

from . import schedules
from .cd import TrainResult, train_rbm
from .dbm import DBMTrainResult, chains_from_rbms, pretrain_dbm, stack_rbms, train_dbm

__all__ = ["schedules", "train_rbm", "TrainResult", "pretrain_dbm", "stack_rbms", "chains_from_rbms", "train_dbm",
           "DBMTrainResult"]
