"""Compiled loops of the live panel (numba): reads of the window's ring that numpy can only do by
first copying every row's slots out, and the choice of each row's strongest support / resistance.

Each walks one row at a time from its newest slot and stops at the first (``count``) flag it finds.
Each has one signature, for any array layout ('A'), so no call compiles a variant of its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros


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


@njit("float64[:, :](uint64[:, :], float64[:, :], int64[:], int64[:], int64, int64)", cache=True, nogil=True)
def recent_flagged_bits(bits, price, rows, first, stop, count):
    """(len(rows), count): ``price`` at the ``count`` most recent flagged slots ``s`` of each row ``rows[j]``
    with ``first[j] <= s < stop``, most recent first; NaN where fewer. The flags are bits by age
    (``BarWindow.pivot_bits``: bit ``a`` of row ``r`` is slot ``width - 1 - a`` of ``price``'s (symbols x
    slots) view), read a word at a time from the youngest allowed age: the cost is the pivots found,
    not the slots (a walk over the slots' flags took 2x longer at 5000 symbols)."""
    n = len(rows)
    width = price.shape[1]
    out = np.full((n, count), np.nan)
    youngest = width - stop  # slot stop - 1
    for j in range(n):
        r = rows[j]
        oldest = width - 1 - first[j]  # slot first[j]
        found = 0
        a = youngest
        while found < count and a <= oldest:
            w = a >> 6
            word = bits[r, w] >> np.uint64(a & 63)
            if word == 0:
                a = (w + 1) << 6
                continue
            a += trailing_zeros(word)
            if a > oldest:
                break
            out[j, found] = price[r, width - 1 - a]
            found += 1
            a += 1
    return out


@njit("Tuple((int64[:], float64[:]))(float64[:, :], boolean[:, :], float64[:], float64[:], int64)", cache=True, nogil=True)
def strongest_levels(levels, ok, tol, close, min_touches):
    """Per row i: (touches, level) of the strongest of its ``levels[i, j]`` passing ``ok[i, j]``: the most
    touches (levels within ``tol[i]`` of it, itself included; ``min_touches`` or more), then the nearest
    to ``close[i]``, then the first (most recent); (0, NaN) when none qualifies."""
    n, m = levels.shape
    best_t = np.zeros(n, np.int64)
    best_l = np.full(n, np.nan)
    for i in range(n):
        bt, bd = 0, np.inf
        for j in range(m):
            if not ok[i, j]:
                continue
            lvl = levels[i, j]
            t = 0
            for k in range(m):
                if abs(levels[i, k] - lvl) <= tol[i]:
                    t += 1
            if t < min_touches:
                continue
            d = abs(close[i] - lvl)
            if t > bt or (t == bt and d < bd):
                bt, bd = t, d
                best_t[i], best_l[i] = t, lvl
    return best_t, best_l
