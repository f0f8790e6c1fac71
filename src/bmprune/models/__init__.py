"""Boltzmann machine populations: RBM (and DBM), masks, enumeration, checkpoints."""

from .base import BoltzmannMachine
from .io import load_model, save_model
from .rbm import RBM

__all__ = ["BoltzmannMachine", "RBM", "load_model", "save_model"]
