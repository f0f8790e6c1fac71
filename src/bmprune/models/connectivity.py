"""Connectivity masks: local receptive fields on an image grid (SPEC §1 "Masked connectivity").

A mask is a bool tensor beside a weight matrix, True where a connection exists. Masked
weights are exactly zero and stay zero through training.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def receptive_field_mask(height: int, width: int, field: int, *, device=None) -> torch.Tensor:
    """Local receptive fields: one hidden unit per pixel, connected to the pixels around it.

    Visible pixel i and hidden unit u (both indexed row-major, ``row * width + col``) are
    connected iff ``|row_i − row_u| ≤ field // 2`` and ``|col_i − col_u| ≤ field // 2``:
    a ``field × field`` window centred on pixel u, truncated at the border (stride 1, no
    padding), as in the paper's MNIST DBM (W₁, 5×5 fields on 20×20 crops).

    Parameters
    ----------
    height, width : int
        Image size in pixels (≥ 1).
    field : int
        Side of the square window (≥ 1). An even ``field`` behaves like ``field + 1``,
        since the window is ±⌊field/2⌋ around the centre.
    device : optional
        Where the mask is created.

    Returns
    -------
    mask : bool Tensor of shape (height·width, height·width)
        Rows are visible units, columns hidden units (the matrix is symmetric). Usable as
        ``weight_mask`` of an RBM or ``weight_masks[0]`` of a DBM.

    Raises
    ------
    ConfigError
        A non-positive size or field.

    Notes
    -----
    The number of connections is ``c(height) · c(width)`` with ``c(n) = Σ_u`` (neighbours
    of position u within ±⌊field/2⌋ in a row of n): 20×20 with field 5 gives
    94² = 8,836 (SPEC §1).

    Examples
    --------
    >>> import bmprune as bp
    >>> m = bp.receptive_field_mask(20, 20, 5)
    >>> m.shape, int(m.sum())
    (torch.Size([400, 400]), 8836)
    """
    if min(int(height), int(width), int(field)) < 1:
        raise ConfigError(f"receptive fields need height, width, field ≥ 1; got {height}, {width}, {field}")
    r = int(field) // 2
    pix = torch.arange(int(height) * int(width), device=device)
    row, col = pix // int(width), pix % int(width)                              # (H·W,)
    near_row = (row.unsqueeze(1) - row.unsqueeze(0)).abs() <= r                  # (H·W, H·W)
    near_col = (col.unsqueeze(1) - col.unsqueeze(0)).abs() <= r
    return near_row & near_col


__all__ = ["receptive_field_mask"]
