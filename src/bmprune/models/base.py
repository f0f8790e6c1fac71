"""Common plumbing of populations of Boltzmann machines (DESIGN.md §Populations of networks).

A model holds R independent networks ("replicas") in one set of tensors whose first axis is
the replica. Subclasses describe themselves by a JSON-able ``config`` and a flat dict of
named tensors; everything generic (device moves, selecting replicas, save/load) is written
once here against that description.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch


class BoltzmannMachine:
    """Base class of :class:`~bmprune.RBM` and :class:`~bmprune.DBM` populations.

    Subclasses implement ``config`` (a dict of constructor keywords besides the tensors),
    ``named_tensors()`` (name → tensor, every tensor with leading replica axis R) and
    ``_from_named_tensors(config, tensors)``; plus the sampling protocol used by
    :mod:`bmprune.sampling`: ``layer_sizes``, ``init_chains(n, generator)`` and
    ``gibbs_step(states, generator)``.
    """

    #: Registry used by :func:`bmprune.models.io.load_model` to rebuild a saved model.
    kinds: ClassVar[dict[str, type["BoltzmannMachine"]]] = {}
    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            BoltzmannMachine.kinds[cls.kind] = cls

    # --- to be provided by subclasses -------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def named_tensors(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _from_named_tensors(cls, config: dict[str, Any], tensors: dict[str, torch.Tensor]):  # pragma: no cover
        raise NotImplementedError

    # --- generic ----------------------------------------------------------------------
    @property
    def n_replicas(self) -> int:
        """Number of replicas R in the population."""
        return next(iter(self.named_tensors().values())).shape[0]

    @property
    def device(self) -> torch.device:
        return next(iter(self.named_tensors().values())).device

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy on ``device`` (and with floating tensors in ``dtype``); masks stay bool."""
        def move(t: torch.Tensor) -> torch.Tensor:
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)

        return type(self)._from_named_tensors(
            dict(self.config), {k: move(v) for k, v in self.named_tensors().items()}
        )

    def clone(self):
        """A deep copy of the whole population."""
        return self.replicas(torch.arange(self.n_replicas))

    def replicas(self, index) -> "BoltzmannMachine":
        """A new population made of the replicas ``index`` (ints, a slice or a bool mask).

        Repeating an index clones that replica, which is how the study runner turns one
        trained network per seed into one replica per (criterion, seed).
        """
        if isinstance(index, int):
            index = [index]
        if not isinstance(index, slice):
            index = torch.as_tensor(index, device=self.device)
        return type(self)._from_named_tensors(
            dict(self.config), {k: v[index].clone() for k, v in self.named_tensors().items()}
        )

    def replica(self, r: int) -> "BoltzmannMachine":
        """Replica ``r`` as a standalone model with R = 1."""
        if not -self.n_replicas <= r < self.n_replicas:
            raise IndexError(f"replica {r} out of range for a population of {self.n_replicas}")
        return self.replicas([r])

    # --- persistence ------------------------------------------------------------------
    def save(self, path, metadata: dict[str, str] | None = None) -> None:
        """Save to a safetensors file with JSON metadata (see :func:`bmprune.models.io.save_model`)."""
        from .io import save_model
        save_model(self, path, metadata)

    @classmethod
    def load(cls, path, device=None):
        """Load a model saved by :meth:`save`.

        Raises ``CheckpointError`` for a missing, corrupt or foreign file, or one holding
        another kind of model (e.g. a DBM asked of ``RBM.load``).
        """
        from ..errors import CheckpointError
        from .io import load_model
        model = load_model(path, device=device)
        if not isinstance(model, cls):
            raise CheckpointError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def __repr__(self) -> str:
        sizes = "-".join(str(n) for n in self.layer_sizes)
        return f"{type(self).__name__}({sizes}, n_replicas={self.n_replicas}, device={self.device})"
