"""Compiled loops of the live panel (numba): reads of the window's ring that numpy can only do by
first copying every row's slots out.

The window's data is (slots x symbols) per column, so these walk the slots newest first and, for
each, the rows in order: consecutive rows are adjacent in memory. Each has one signature, for any
array layout ('A'), so no call compiles a variant of its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit("float64[:, :](boolean[:, :], float64[:, :], int64[:], int64[:], int64, int64)", cache=True, nogil=True)
def recent_flagged(flags, price, rows, first, stop, count):
    """(len(rows), count): ``price`` at the ``count`` most recent slots ``s`` of each row ``rows[j]`` with
    ``flags[rows[j], s]`` and ``first[j] <= s < stop``, most recent first; NaN where fewer.
    ``flags``/``price``: (symbols x slots) views."""
    n = len(rows)
    out = np.full((n, count), np.nan)
    found = np.zeros(n, np.int64)
    lowest = stop
    for j in range(n):
        lowest = min(lowest, first[j])
    for s in range(stop - 1, lowest - 1, -1):
        for j in range(n):
            if found[j] < count and s >= first[j]:
                r = rows[j]
                if flags[r, s]:
                    out[j, found[j]] = price[r, s]
                    found[j] += 1
    return out


@njit("int64[:](boolean[:, :], int64[:], int64[:], int64)", cache=True, nogil=True)
def latest_flagged(flags, rows, first, stop):
    """Per row ``rows[j]``: the latest slot ``s`` with ``flags[rows[j], s]`` and ``first[j] <= s < stop``, -1 if none."""
    out = np.full(len(rows), -1, np.int64)
    for j in range(len(rows)):
        r = rows[j]
        for s in range(stop - 1, first[j] - 1, -1):
            if flags[r, s]:
                out[j] = s
                break
    return out
