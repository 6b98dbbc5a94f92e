"""Intraday indicators per session: VWAP (cumulative within each symbol's local day) and the volume
ratio against the same minute of the previous sessions.

Each has a general form over gathered runs of rows and a grid form for the common case of a clean
universe (every symbol the same sessions and minutes, ``session_grid``), where the sums run along
whole axes; both add in the same order, as the streaming engine does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mintel.analytics.keys import NS_PER_DAY, local_ns, session_and_minute

def vwap(high, low, close, volume, group, skey) -> np.ndarray:
    """Cumulative typical price x volume / cumulative volume within each (symbol, session)."""
    m = len(close)
    starts = np.flatnonzero(np.r_[True, (group[1:] != group[:-1]) | (skey[1:] != skey[:-1])])
    cum_pv, cum_v = run_cumsums(starts, m, (high + low + close) / 3.0 * volume, volume)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cum_v > 0, cum_pv / cum_v, np.nan)


def volume_ratio(volume, group, minute, window: int) -> np.ndarray:
    """volume / mean volume of the same (symbol, minute of day) over its previous up-to-``window`` bars."""
    m = len(volume)
    key = group.astype(np.int64) * 1440 + minute
    order = np.argsort(key, kind="stable")  # time order within each (symbol, minute); fast on sorted runs
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    if len(starts) == m:  # no minute seen twice by a symbol: no history yet
        return np.full(m, np.nan)
    # Grid with one column per (symbol, minute) and one row per occurrence, so that the shifted
    # additions below run over long contiguous rows.
    lengths = np.diff(np.r_[starts, m])
    width = int(lengths.max())
    runs = len(starts)
    flat = (np.arange(m) - np.repeat(starts, lengths)) * runs + np.repeat(np.arange(runs), lengths)
    grid = np.zeros(width * runs)
    grid[flat] = volume[order]
    grid = grid.reshape(width, runs)
    total = np.zeros_like(grid)
    for j in range(1, min(window, width - 1) + 1):
        total[j:] += grid[:-j]  # the j-th previous bar, added most recent first
    count = np.minimum(np.arange(width), window).astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        ratio = np.where(mean > 0, grid / mean, np.nan)  # mean is NaN where count is 0
    out = np.empty(m)
    out[order] = ratio.reshape(-1)[flat]
    return out


def session_grid(starts, ends, ts, tz: str) -> tuple[int, int, int] | None:
    """(symbols, sessions, minutes) when the usable rows (sorted by symbol, ts) are every symbol's same
    sessions (local calendar days), each of the same distinct minutes of the day in the same order, so
    (symbol, session, minute) is a reshape; else None. The common case of a clean universe: VWAP and the
    same-minute volume ratio then run on whole axes instead of gathered runs.

    Checked on the UTC timestamps: every block has the same offsets from its first bar, one UTC offset
    throughout (no DST change) and the same local start time, so the minutes of the day are the first
    block's everywhere; a block lies within one local day and consecutive blocks of a symbol are
    different days.
    """
    m, g = len(ts), len(starts)
    if not g or m % g or int(starts[0]) != 0:
        return None
    t = m // g
    if not (ends - starts == t).all():
        return None
    day0, minute0 = session_and_minute(ts[:t], tz)
    first = np.flatnonzero(day0[1:] != day0[0])
    length = int(first[0]) + 1 if len(first) else t
    if t % length or len(np.unique(minute0[:length])) != length:
        return None
    s = t // length
    blocks = ts.reshape(g * s, length)
    if not (blocks - blocks[:, :1] == blocks[0] - blocks[0, 0]).all():
        return None
    edges = np.ascontiguousarray(blocks[:, [0, -1]])
    local = local_ns(edges.reshape(-1), tz).reshape(-1, 2)
    if not (local - edges == local[0, 0] - edges[0, 0]).all():
        return None
    day = local // NS_PER_DAY
    if not ((day[:, 0] == day[:, 1]).all() and (local[:, 0] - day[:, 0] * NS_PER_DAY == local[0, 0] - day[0, 0] * NS_PER_DAY).all()):
        return None
    if s > 1 and not (np.diff(day[:, 0].reshape(g, s), axis=1) > 0).all():
        return None
    return g, s, length


def vwap_grid(out, high, low, close, volume, grid, scratch) -> None:
    """``vwap`` on a session grid (the same additions, in the same order), written into ``out``;
    ``scratch``: a row of the same length it may overwrite (fresh memory costs more than the sums)."""
    g, s, length = grid
    pv = out
    np.add(high, low, out=pv)
    np.add(pv, close, out=pv)
    np.divide(pv, 3.0, out=pv)
    np.multiply(pv, volume, out=pv)
    cum_pv = scratch  # (an in-place cumsum takes numpy's slow overlapping path)
    np.cumsum(pv.reshape(g * s, length), axis=1, out=cum_pv.reshape(g * s, length))
    cum_v = np.cumsum(volume.reshape(g * s, length), axis=1).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(cum_pv, cum_v, out=out)
    out[~(cum_v > 0)] = np.nan


def volume_ratio_grid(out, volume, grid, window: int) -> None:
    """``volume_ratio`` on a session grid: the same minute of the previous sessions is the same
    column of the previous rows; added most recent first, as there."""
    g, s, length = grid
    v = volume.reshape(g, s, length)
    ratio = out.reshape(g, s, length)
    ratio[:, 0] = np.nan  # no previous session
    if s < 2:
        return
    total = np.zeros((g, s - 1, length))
    for j in range(1, min(window, s - 1) + 1):
        total[:, j - 1:] += v[:, : s - j]
    count = np.minimum(np.arange(1, s), window).astype(np.float64)[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(total, count, out=total)
        np.divide(v[:, 1:], total, out=ratio[:, 1:])
    ratio[:, 1:][~(total > 0)] = np.nan


def run_cumsums(starts: np.ndarray, m: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """Running sums within consecutive runs of rows (sessions), added in order as the streaming engine
    adds them. The runs are laid out as the rows of a 2-D grid, so each scan is one numpy cumsum."""
    lengths = np.diff(np.r_[starts, m])
    width = int(lengths.max())
    if len(starts) * width > 4 * m + 4096:  # a few long runs among many short ones: a grouped cumsum
        seg = np.repeat(np.arange(len(starts)), lengths)
        return [pd.Series(a).groupby(seg).cumsum().to_numpy() for a in arrays]
    if len(starts) * width == m:  # runs all equally long: the grid is a reshape
        return [np.cumsum(a.reshape(-1, width), axis=1).reshape(-1) for a in arrays]
    flat = np.repeat(np.arange(len(starts)) * width, lengths) + (np.arange(m) - np.repeat(starts, lengths))
    sums = []
    for a in arrays:
        grid = np.zeros(len(starts) * width)
        grid[flat] = a
        sums.append(np.cumsum(grid.reshape(-1, width), axis=1).reshape(-1)[flat])
    return sums
