"""The multi-factor score, compiled (numba): each symbol's six factor values and their points in one pass.

numpy took ~45 array operations for it (each factor a few ``where``/``tanh``/``clip`` over the
universe, the trend and momentum means over stacked parts): ~1.5 ms at 5000 symbols, most of it
calls and temporaries. The operations are numpy's, in its order (the means add their parts left to
right as ``nansum`` over a stack does, the points round as ``np.round(x, 2)``: ``rint(x * 100) / 100``,
the score sums a row's points left to right as numpy's row sum does, and the tanh is numpy's, between
two passes), so the values are the ones the numpy formulas gave.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
_SQRT20 = math.sqrt(20.0)


@njit(**_JIT)
def _above(a, b):
    if np.isfinite(a) and np.isfinite(b):
        return 1.0 if a > b else 0.0
    return np.nan


@njit(**_JIT)
def _mean(parts, k):
    """The mean of the finite ones of ``parts[:k]``, added left to right (NaN as 0); NaN when none."""
    total = 0.0
    n = 0
    for j in range(k):
        x = parts[j]
        z = 0.0 if np.isnan(x) else x
        total = z if j == 0 else total + z
        if np.isfinite(x):
            n += 1
    return total / n if n > 0 else np.nan


@njit(**_JIT)
def _clip01(x):
    if np.isnan(x):
        return np.nan
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


@njit(**_JIT)
def _sign(x):
    if np.isnan(x):
        return np.nan
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


@njit(**_JIT)
def tanh_args(r, close, close20, atr, hist, volume_ratio):
    """(3, len(r)): what the momentum and volume factors take the tanh of (numpy's, by the caller: libm's
    differs in the last bit and is ~5x slower): the 20-bar move in ATR sqrt 20, the MACD histogram in 0.2
    ATR, the volume ratio's excess over 1 (NaN kept)."""
    n = len(r)
    out = np.empty((3, n))
    for j in range(n):
        i = r[j]
        a = atr[i]
        out[0, j] = (close[i] - close20[j]) / (a * _SQRT20)
        out[1, j] = hist[i] / (0.2 * a)
        excess = volume_ratio[i] - 1.0
        out[2, j] = np.nan if np.isnan(excess) else max(excess, 0.0)
    return out


@njit(**_JIT)
def factors(r, close, sma20, sma50, sma200, tanh, prev_close, rsi, hi, lo, count, signals, min_bars):
    """(6, len(r)): trend, momentum, volume, breakout, rsi, signals at rows ``r`` of the column arrays
    (``sma200`` empty when not kept); ``tanh``: of ``tanh_args``; ``hi``, ``lo``, ``count`` (the 52-week
    range and its bars) and ``signals`` are already per row of ``r``. NaN: unknown."""
    n = len(r)
    out = np.empty((6, n))
    parts = np.empty(4)
    for j in range(n):
        i = r[j]
        c, s20, s50 = close[i], sma20[i], sma50[i]
        s200 = sma200[i] if len(sma200) else np.nan
        parts[0] = _above(c, s20)
        parts[1] = _above(c, s50)
        parts[2] = _above(s20, s50)
        parts[3] = _above(c, s200)
        trend = _mean(parts, 4)
        parts[0] = 0.5 + 0.5 * tanh[0, j]
        parts[1] = 0.5 + 0.5 * tanh[1, j]
        momentum = _mean(parts, 2)
        volume = 0.5 + 0.5 * _sign(c - prev_close[i]) * tanh[2, j]
        h, low = hi[j], lo[j]
        breakout = ((c - low) / (h - low) if h > low else 0.5) if count[j] >= min_bars else np.nan
        x = rsi[i]
        value = _clip01(0.5 + (x - 50.0) / 40.0) if x <= 70 else _clip01(1.0 - (x - 70.0) / 30.0)
        row = (trend, momentum, volume, breakout, value, signals[j])
        for f in range(6):
            v = row[f]
            out[f, j] = v if np.isfinite(v) else np.nan
    return out


@njit(**_JIT)
def points(values, weights, scored, min_factors):
    """(score, points (rows x factors), ok) of factor ``values`` (factors x rows; NaN counts as 0.5):
    points = round(weight x value, 2), score = round(sum of a row's points, 2) where at least
    ``min_factors`` of the ``scored`` factors are known, else NaN."""
    k, n = values.shape
    pts = np.empty((n, k))
    score = np.empty(n)
    ok = np.empty(n, np.bool_)
    for j in range(n):
        known = 0
        total = 0.0
        for f in range(k):
            v = values[f, j]
            if scored[f] and np.isfinite(v):
                known += 1
            p = np.rint(weights[f] * (0.5 if np.isnan(v) else v) * 100.0) / 100.0
            pts[j, f] = p
            total = p if f == 0 else total + p
        ok[j] = known >= min_factors
        score[j] = np.rint(total * 100.0) / 100.0 if ok[j] else np.nan
    return score, pts, ok


@njit(**_JIT)
def signal_sums(n, rows, sides, scores):
    """(total, seen) per row of ``n``: the sum of (long - short) x score / 100 over the hits (``rows`` sorted,
    ``sides`` 0 long, 1 short), added in order with pandas' compensated (Kahan) sum, as its groupby adds."""
    total = np.zeros(n)
    comp = np.zeros(n)
    seen = np.zeros(n, np.bool_)
    for j in range(len(rows)):
        r = rows[j]
        net = ((1.0 if sides[j] == 0 else 0.0) - (1.0 if sides[j] == 1 else 0.0)) * scores[j] / 100.0
        y = net - comp[r]
        t = total[r] + y
        c = t - total[r] - y
        comp[r] = 0.0 if np.isnan(c) else c
        total[r] = t
        seen[r] = True
    return total, seen


@njit(**_JIT)
def row_masks(n, rows, kinds):
    """Per row of ``n``, the bit mask of its ``kinds`` (ranks; ``rows`` the row of each)."""
    masks = np.zeros(n, np.uint64)
    for i in range(len(rows)):
        masks[rows[i]] |= np.uint64(1) << np.uint64(kinds[i])
    return masks


@njit(**_JIT)
def admit(last, symbol, kind, direction, now, gap):
    """``Cooldown.admit``'s rule, row by row: a row is announced when its cell of ``last`` (the latest
    announcement's position, NaN: none) is empty, or neither within ``gap`` before ``now`` nor at ``now``;
    an announced row's cell becomes ``now``, so a key given again in the same call is blocked."""
    keep = np.empty(len(symbol), np.bool_)
    for i in range(len(symbol)):
        before = last[symbol[i], kind[i], direction[i]]
        ok = np.isnan(before) or not (now - before < gap or now == before)
        keep[i] = ok
        if ok:
            last[symbol[i], kind[i], direction[i]] = now
    return keep
