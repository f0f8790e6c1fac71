"""Enumeration of binary states for exact computations on small models (SPEC §4, §6)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..errors import EnumerationError

#: Default largest number of states an exact computation may enumerate (2^24).
MAX_STATES = 2**24


def check_enumerable(n_units: int, max_states: int | None, what: str) -> None:
    """Raise :class:`EnumerationError` when ``2**n_units`` exceeds ``max_states``."""
    limit = MAX_STATES if max_states is None else int(max_states)
    if 2**n_units > limit:
        raise EnumerationError(
            f"{what} needs 2^{n_units} = {2**n_units:,} states, more than the limit of {limit:,}; "
            "use a sampled estimate, or raise max_states if you have the memory and time"
        )


def binary_states(
    n: int, start: int = 0, stop: int | None = None, *, dtype=torch.float64, device=None
) -> torch.Tensor:
    """All binary vectors of length ``n`` with integer codes in ``[start, stop)``.

    Bit ``i`` of the code is unit ``i`` (unit 0 is the least significant bit).

    Returns
    -------
    states : Tensor of shape (stop - start, n)
    """
    stop = 2**n if stop is None else stop
    codes = torch.arange(start, stop, device=device, dtype=torch.int64)
    bits = torch.arange(n, device=device, dtype=torch.int64)
    return ((codes.unsqueeze(-1) >> bits) & 1).to(dtype)


def iter_binary_states(
    n: int, chunk: int = 2**16, *, dtype=torch.float64, device=None
) -> Iterator[torch.Tensor]:
    """Yield all ``2**n`` binary states in chunks of at most ``chunk`` rows, in code order."""
    total = 2**n
    for start in range(0, total, chunk):
        yield binary_states(n, start, min(start + chunk, total), dtype=dtype, device=device)
