"""Compiled loops of the panels (numba): reads of the live window that numpy can only do by first
copying every row's slots out, and the choice of each row's strongest support / resistance.

Each walks one row at a time from its newest slot and stops at the first (``count``) flag it finds.
Each has one signature, for any array layout ('A'), so no call compiles a variant of its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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


@njit(cache=True, nogil=True)
def strongest_row(event, levels, h, lo, c, tl, fl, ce, min_touches):
    """``strongest_levels`` of one row: its levels and its bar's high, low, close, tolerance, floor, ceiling."""
    m = len(levels)
    bt, bd, bl = 0, np.inf, np.nan
    for j in range(m):
        lvl = levels[j]
        if event == 0:
            ok = abs(lo - lvl) <= tl and c > lvl and fl > lvl
        elif event == 1:
            ok = c < lvl and fl >= lvl
        elif event == 2:
            ok = c > lvl and ce <= lvl
        else:
            ok = abs(h - lvl) <= tl and c < lvl and ce < lvl
        if not ok:
            continue
        t = 0
        for k in range(m):
            if abs(levels[k] - lvl) <= tl:
                t += 1
        if t < min_touches:
            continue
        d = abs(c - lvl)
        if t > bt or (t == bt and d < bd):
            bt, bd, bl = t, d, lvl
    return bt, bl


@njit("Tuple((int64[:], float64[:]))(int64, float64[:, :], int64[:], float64[:], float64[:], float64[:], float64[:], "
      "float64[:], float64[:], int64)", cache=True, nogil=True)
def strongest_levels(event, levels, rows, high, low, close, tol, floor, ceiling, min_touches):
    """Per row i (panel row ``r = rows[i]``): (touches, level) of the strongest of its ``levels[i, j]`` passing
    level event ``event``'s test (``momentum.LEVEL_EVENTS`` order; see ``momentum.strongest_level``): the most
    touches (levels within ``tol[r]`` of it, itself included; ``min_touches`` or more), then the nearest to
    ``close[r]``, then the first (most recent); (0, NaN) when none qualifies. NaN fails every test."""
    n = levels.shape[0]
    best_t = np.zeros(n, np.int64)
    best_l = np.full(n, np.nan)
    for i in range(n):
        r = rows[i]
        best_t[i], best_l[i] = strongest_row(event, levels[i], high[r], low[r], close[r], tol[r], floor[r], ceiling[r],
                                             min_touches)
    return best_t, best_l


@njit(cache=True, nogil=True)
def listed_row(seq, price, listed, r, lowest, stop, out):
    """``recent_listed`` of one symbol ``r`` into ``out`` (its ``count`` prices; NaN where fewer)."""
    out[:] = np.nan
    found = 0
    for q in range(listed[r]):
        s = seq[r, q]
        if s >= stop:
            continue
        if s < lowest or found == len(out):
            break
        out[found] = price[r, q]
        found += 1


@njit("float64[:, :](int64[:, :], float64[:, :], int64[:], int64[:], int64[:], int64, int64)", cache=True, nogil=True)
def recent_listed(seq, price, listed, rows, lowest, stop, count):
    """(len(rows), count): the prices of the ``count`` most recent swing points of each row ``rows[j]`` with
    ``lowest[j] <= sequence < stop``, most recent first, NaN where fewer; from the window's swing-point lists
    (``BarWindow.pivot_lists`` of one side: sequence numbers and prices, newest first, ``listed`` per
    symbol). A walk over the slots' flags read each point's price from its slot, a page away from the
    next: ~0.3 ms per side at 5000 symbols."""
    n = len(rows)
    out = np.full((n, count), np.nan)
    for j in range(n):
        listed_row(seq, price, listed, rows[j], lowest[j], stop, out[j])
    return out
