"""Boltzmann machine populations: RBM (and DBM), masks, enumeration, checkpoints."""

from .base import BoltzmannMachine
from .connectivity import receptive_field_mask
from .dbm import DBM
from .io import load_model, save_model
from .rbm import RBM

__all__ = ["BoltzmannMachine", "RBM", "DBM", "receptive_field_mask", "load_model", "save_model"]
