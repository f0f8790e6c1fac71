"""Typed errors of bmprune (DESIGN.md §Errors).

Every error raised on bad input is a :class:`BmpruneError`; the subclasses also inherit
from the matching built-in (``ValueError``, ``KeyError``, ``OSError``) so that generic
handlers keep working.
"""

from __future__ import annotations


class BmpruneError(Exception):
    """Base class of every error bmprune raises on purpose."""


class DataError(BmpruneError, ValueError):
    """Input data is malformed: non-binary, NaN, empty, wrong shape, corrupt or missing file."""


class ShapeError(BmpruneError, ValueError):
    """A tensor (data, mask, samples) has a shape that does not fit the model."""


class ConfigError(BmpruneError, ValueError):
    """A configuration value or a schedule is invalid."""


class CheckpointError(BmpruneError, OSError):
    """A checkpoint file is truncated, corrupt, foreign or of an incompatible version."""


class RunDirError(BmpruneError, OSError):
    """A run directory cannot be used: damaged, in use by another process, not a run, or unwritable.

    The message names the fix (e.g. "restore state.json or delete the directory"). Raised
    before anything in the directory is changed, or, for a failed write mid-run (disk full,
    permission lost), after the directory was left resumable.
    """


class ChecksumError(DataError):
    """A file's checksum differs from the pinned one."""


class EnumerationError(BmpruneError, ValueError):
    """An exact computation was asked of a model too large to enumerate."""


class UnknownCriterionError(BmpruneError, KeyError):
    """A pruning criterion name is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(BmpruneError, FloatingPointError):
    """Training produced non-finite parameters or parameters beyond the documented bound.

    Attributes
    ----------
    phase : str
        What was being trained ("train", "retrain", "pretrain RBM 1", … or "" when unknown).
    epoch : int
        The 0-indexed epoch at whose end the divergence was detected.
    """

    def __init__(self, message: str, *, phase: str = "", epoch: int = -1) -> None:
        super().__init__(message)
        self.phase, self.epoch = phase, epoch
