"""Momentum and price structure: breakouts, crosses, RSI divergences, support/resistance, gaps.

Every function works on many symbols laid end to end, sorted by (symbol, ts) (``arrange`` finds
that order, for free when the rows come sorted as the lake gives them): a ``Groups`` tells where
each symbol's rows start and end, and windows never reach across a symbol boundary (a value whose
window would is NaN). Nothing loops over rows in Python. Windows are exact maxima/minima and sums
in a fixed order, so a tail of the history gives the same values on its last bars as the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def symbol_codes(symbols) -> tuple[np.ndarray, np.ndarray]:
    """(code of each row's symbol, -1 where missing; the symbols), codes numbered in symbol order."""
    codes, uniques = pd.factorize(pd.Series(symbols) if not isinstance(symbols, pd.Series) else symbols, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def sort_order(codes: np.ndarray, ts_ns: np.ndarray | None) -> np.ndarray | None:
    """Row order that sorts by (symbol code, ts), stable; None when the rows are sorted already."""
    if len(codes) < 2:
        return None
    step = np.diff(codes)
    if (step >= 0).all() and (ts_ns is None or not ((np.diff(ts_ns) < 0) & (step == 0)).any()):
        return None
    return np.lexsort((ts_ns, codes)) if ts_ns is not None else np.argsort(codes, kind="stable")


def sorted_runs(symbols: pd.Series, ts_ns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(first row of each symbol, the symbols) when the rows are sorted by (symbol, ts) with every symbol
    and ts present; None otherwise. Cheap (Arrow compares), for the common already-sorted case."""
    if isinstance(getattr(symbols, "dtype", None), pd.CategoricalDtype):  # the live window: integer codes
        codes = np.asarray(symbols.cat.codes if isinstance(symbols, pd.Series) else symbols.codes)
        cats = symbols.cat.categories if isinstance(symbols, pd.Series) else symbols.categories
        sorted_cats = cats.is_monotonic_increasing and cats.is_unique
        if sorted_cats and len(codes) and (codes >= 0).all() and (np.diff(codes) >= 0).all():
            change = np.r_[True, codes[1:] != codes[:-1]]
            if ts_ns is not None and ((ts_ns == np.iinfo(np.int64).min).any() or ((np.diff(ts_ns) < 0) & ~change[1:]).any()):
                return None
            starts = np.flatnonzero(change)
            return starts.astype(np.int64), np.asarray(cats, dtype=object)[codes[starts]]
    arr = pa.array(symbols, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if arr.null_count or (ts_ns is not None and (ts_ns == np.iinfo(np.int64).min).any()):
        return None
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    change = np.ones(n, bool)
    if n > 1:
        change[1:] = pc.not_equal(arr.slice(1), arr.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(change)
    firsts = arr.take(pa.array(starts))
    if len(firsts) > 1 and not pc.all(pc.less(firsts.slice(0, len(firsts) - 1), firsts.slice(1))).as_py():
        return None
    if ts_ns is not None and n > 1 and ((np.diff(ts_ns) < 0) & ~change[1:]).any():
        return None
    return starts.astype(np.int64), np.asarray(firsts.to_pylist(), dtype=object)


def arrange(symbols: pd.Series, ts_ns: np.ndarray | None = None) -> tuple[np.ndarray, Groups, np.ndarray]:
    """(rows in (symbol, ts) order, rows without a symbol or ts left out; their ``Groups``; each group's
    symbol). Free when the rows are sorted already (the lake's order)."""
    runs = sorted_runs(symbols, ts_ns)
    n = len(symbols)
    if runs is not None:
        return np.arange(n), Groups.from_starts(runs[0], n), runs[1]
    codes, names = symbol_codes(symbols)
    ok = codes >= 0
    if ts_ns is not None:
        ok &= ts_ns != np.iinfo(np.int64).min
    keep = np.flatnonzero(ok)
    order = sort_order(codes[keep], ts_ns[keep] if ts_ns is not None else None)
    keep = keep if order is None else keep[order]
    g = Groups.of(codes[keep])
    return keep, g, names[codes[keep][g.starts]]


@dataclass(frozen=True)
class Groups:
    """Row ranges of the symbols of a frame sorted by (symbol, ts): ``starts[g]:ends[g]`` is symbol g."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, symbols) -> Groups:
        """Groups from the (sorted) symbol of each row, or integer codes: a new group wherever it changes."""
        s = np.asarray(symbols)
        if s.dtype.kind not in "iu":
            s = s.astype(object)
        n = len(s)
        if n == 0:
            return cls(np.empty(0, np.int64), np.empty(0, np.int64))
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]).astype(np.int64)
        return cls(starts, np.r_[starts[1:], n].astype(np.int64))

    @classmethod
    def from_starts(cls, starts: np.ndarray, n: int) -> Groups:
        starts = np.asarray(starts, dtype=np.int64)
        return cls(starts, np.r_[starts[1:], n].astype(np.int64) if len(starts) else starts)

    def take(self, rows: np.ndarray) -> Groups:
        """Groups of the subset ``rows`` (sorted row numbers) of these rows."""
        return Groups.of(self.gid[rows])

    @property
    def n(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    @cached_property
    def gid(self) -> np.ndarray:
        """Group number of each row."""
        return np.repeat(np.arange(len(self.starts)), self.ends - self.starts)

    @cached_property
    def pos(self) -> np.ndarray:
        """Position of each row within its symbol (0 = its first bar)."""
        return np.arange(self.n) - np.repeat(self.starts, self.ends - self.starts)

    @cached_property
    def first(self) -> np.ndarray:
        """First row of each row's symbol."""
        return np.repeat(self.starts, self.ends - self.starts)

    @cached_property
    def rest(self) -> np.ndarray:
        """Rows after each row within its symbol (0 = its last bar)."""
        return np.repeat(self.ends, self.ends - self.starts) - 1 - np.arange(self.n)

    @property
    def last(self) -> np.ndarray:
        """Row of each symbol's last bar."""
        return self.ends - 1

    def shift(self, a: np.ndarray, k: int = 1) -> np.ndarray:
        """``a`` from ``k`` rows earlier (``k < 0``: later) in the same symbol; NaN where there is none."""
        a = np.asarray(a, dtype=np.float64)
        out = np.full(len(a), np.nan)
        if k == 0:
            return a.copy()
        if k > 0:
            out[k:] = a[:-k]
            out[self.pos < k] = np.nan
        else:
            out[:k] = a[-k:]
            out[self.rest < -k] = np.nan
        return out

    def rolling(self, a: np.ndarray, window: int, how: str) -> np.ndarray:
        """Rolling ``how`` (max, min, sum, mean) of the ``window`` bars ending at each row; NaN where the
        symbol has fewer bars or one of them is NaN."""
        a = np.asarray(a, dtype=np.float64)
        if window <= 8 and how in ("max", "min") and len(a) >= window:  # short windows: shifted maxima, exact
            f = np.maximum if how == "max" else np.minimum
            m = len(a) - window + 1
            acc = a[window - 1 :].copy()
            for j in range(1, window):
                f(acc, a[window - 1 - j : window - 1 - j + m], out=acc)
            out = np.r_[np.full(window - 1, np.nan), acc]
        else:
            r = getattr(pd.Series(a).rolling(window, min_periods=window), how)()
            out = r.to_numpy(dtype=np.float64, copy=True)
        out[self.pos < window - 1] = np.nan
        return out

    def window_sum(self, a: np.ndarray, window: int) -> np.ndarray:
        """Sum of the ``window`` bars ending at each row, NaN where the symbol has fewer. Summed per row in
        a fixed order (no running total), so a tail of the history gives bit-identical values."""
        a = np.asarray(a, dtype=np.float64)
        out = np.full(len(a), np.nan)
        m = len(a) - window + 1
        if m > 0:
            acc = a[:m].copy()
            for j in range(1, window):
                acc += a[j : j + m]
            out[window - 1 :] = acc
        out[self.pos < window - 1] = np.nan
        return out


# --------------------------------------------------------------------------------------- crosses


def crosses(a: np.ndarray, b: np.ndarray, groups: Groups) -> tuple[np.ndarray, np.ndarray]:
    """(up, down): rows where ``a`` crosses above / below ``b`` (on the other side or equal one bar before)."""
    pa, pb = groups.shift(a, 1), groups.shift(b, 1)
    with np.errstate(invalid="ignore"):
        return (a > b) & (pa <= pb), (a < b) & (pa >= pb)


# ------------------------------------------------------------------------------------- breakouts


def channel(high: np.ndarray, low: np.ndarray, groups: Groups, window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(highest high, lowest low) of the ``window`` bars before each row (the row itself excluded)."""
    return groups.shift(groups.rolling(high, window, "max"), 1), groups.shift(groups.rolling(low, window, "min"), 1)


def channel_at(high: np.ndarray, low: np.ndarray, groups: Groups, window: int, rows: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """``channel`` evaluated only at ``rows`` (at most one per symbol, ascending), NaN elsewhere: the same
    values, computed in O(rows x window) instead of over every bar."""
    hi, lo = np.full(groups.n, np.nan), np.full(groups.n, np.nan)
    rows = rows[groups.pos[rows] >= window]
    if len(rows):
        edges = np.column_stack([rows - window, rows]).ravel()
        with np.errstate(invalid="ignore"):
            hi[rows] = np.maximum.reduceat(high, edges)[::2]
            lo[rows] = np.minimum.reduceat(low, edges)[::2]
    return hi, lo


def breakouts(close, high, low, groups: Groups, window: int = 20) -> pd.DataFrame:
    """Per row: the previous ``window`` bars' high and low, and whether the close broke out above / below."""
    hi, lo = channel(high, low, groups, window)
    with np.errstate(invalid="ignore"):
        return pd.DataFrame({"level_high": hi, "level_low": lo, "breakout": close > hi, "breakdown": close < lo})


# ------------------------------------------------------------------------------------------ gaps


def gaps(open_, close, atr, groups: Groups, pct: float = 2.0, atr_mult: float = 1.0) -> pd.DataFrame:
    """Per row: the gap from the previous close to this open in % and in the previous bar's ATR, and
    whether it is a gap up / down (beyond ``pct`` % or beyond ``atr_mult`` ATR)."""
    return pd.DataFrame(gap_values(open_, groups.shift(close, 1), groups.shift(atr, 1), pct, atr_mult))


def gap_values(open_, prev_close, prev_atr, pct: float = 2.0, atr_mult: float = 1.0) -> dict[str, np.ndarray]:
    """``gaps`` given each bar's previous close and ATR: prev_close, gap_pct, gap_atr, gap_up, gap_down."""
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = open_ - prev_close
        gap_pct = gap / prev_close * 100.0
        gap_atr = np.where(prev_atr > 0, gap / prev_atr, np.nan)
        up = (gap_pct > pct) | (gap_atr > atr_mult)
        down = (gap_pct < -pct) | (gap_atr < -atr_mult)
    return {"prev_close": prev_close, "gap_pct": gap_pct, "gap_atr": gap_atr, "gap_up": up, "gap_down": down}


# ---------------------------------------------------------------------------------------- pivots


def pivots(high, low, groups: Groups, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(swing highs, swing lows): a bar whose high is above the ``k`` bars before it and not below the
    ``k`` after it (lows: mirrored). A pivot is known only ``k`` bars later, when it is confirmed."""
    top, bottom = groups.rolling(high, k, "max"), groups.rolling(low, k, "min")
    with np.errstate(invalid="ignore"):
        swing_hi = (high > groups.shift(top, 1)) & (high >= groups.shift(top, -k))
        swing_lo = (low < groups.shift(bottom, 1)) & (low <= groups.shift(bottom, -k))
    return swing_hi, swing_lo


@dataclass(frozen=True)
class Divergences:
    """RSI divergences: the row each fires on (its pivot's confirmation), the pivot and the one before."""

    rows: np.ndarray
    pivot: np.ndarray
    previous: np.ndarray


def rsi_divergences(high, low, rsi, groups: Groups, *, k: int = 3, min_bars: int = 5, max_bars: int = 60,
                    swings: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Divergences, Divergences]:
    """(bullish, bearish) divergences between consecutive swing lows (highs) ``min_bars..max_bars`` apart.

    Bullish: price makes a lower low while RSI makes a higher low, RSI below 50 at the new low.
    Bearish: a higher high with a lower RSI high, RSI above 50. Fires on the bar that confirms the
    newer pivot (``k`` bars after it), so it never looks ahead. ``swings``: ``pivots(...)`` if known.
    """
    is_hi, is_lo = swings if swings is not None else pivots(high, low, groups, k)
    rsi = np.asarray(rsi, dtype=np.float64)

    def pairs(mask, price, side):
        p = np.flatnonzero(mask)
        cur, prev = p[1:], p[:-1]
        gap = cur - prev
        ok = (groups.gid[cur] == groups.gid[prev]) & (gap >= min_bars) & (gap <= max_bars)
        with np.errstate(invalid="ignore"):
            ok &= (side * (price[cur] - price[prev]) > 0) & (side * (rsi[cur] - rsi[prev]) < 0)
            ok &= side * (rsi[cur] - 50.0) > 0
        cur, prev = cur[ok], prev[ok]
        return Divergences(cur + k, cur, prev)

    return pairs(is_lo, np.asarray(low, dtype=np.float64), -1), pairs(is_hi, np.asarray(high, dtype=np.float64), 1)


# ----------------------------------------------------------------------------- support/resistance


class RecentPivots:
    """The last ``count`` swing pivots of one kind known before each row, within ``lookback`` bars.

    ``level(j)`` is, for every row (or the given rows), the price of the j-th most recent such
    pivot (NaN if none). Pivots confirmed on the row itself are not yet known to it.
    """

    def __init__(self, mask: np.ndarray, price: np.ndarray, groups: Groups, *, k: int, lookback: int, count: int):
        self.rows = np.flatnonzero(mask)
        self.price = np.asarray(price, dtype=np.float64)
        self.groups, self.lookback, self.count = groups, lookback, count
        confirmed = np.zeros(groups.n, np.int64)
        confirmed[self.rows + k] = 1  # a pivot's confirmation stays within its symbol (it has k bars after it)
        self.known = np.cumsum(confirmed) - confirmed  # pivots confirmed strictly before each row

    def level(self, j: int, at: np.ndarray) -> np.ndarray:
        """Price of the j-th most recent known pivot at rows ``at`` (NaN if none)."""
        if not len(self.rows):
            return np.full(len(at), np.nan)
        idx = self.known[at] - 1 - j
        p = self.rows[np.maximum(idx, 0)]
        ok = (idx >= 0) & (p >= self.groups.first[at]) & (at - p <= self.lookback)
        return np.where(ok, self.price[p], np.nan)

    def levels(self, at: np.ndarray) -> np.ndarray:
        """(len(at), count): the known pivots' prices at rows ``at``, most recent first."""
        return np.column_stack([self.level(j, at) for j in range(self.count)]) if len(at) else np.empty((0, self.count))


@dataclass(frozen=True)
class LevelHits:
    """Rows where a level event happened, with the level and its touches."""

    rows: np.ndarray
    level: np.ndarray
    touches: np.ndarray


def level_events(open_, high, low, close, atr, groups: Groups, *, k: int = 3, lookback: int = 120, count: int = 8,
                 tol_atr: float = 0.5, min_touches: int = 2, hold: int = 5,
                 swings: tuple[np.ndarray, np.ndarray] | None = None, only: np.ndarray | None = None
                 ) -> dict[str, LevelHits]:
    """Touches and breaks of support and resistance known before each bar.

    Levels are swing pivots (lows for support, highs for resistance) of the last ``lookback`` bars;
    a level's strength is its touches, the pivots within ``tol_atr`` x ATR of it; only levels with
    ``min_touches`` count. A level must have held for the ``hold`` closes before the bar. Events
    (at most one per row and kind; the strongest level wins, then the nearest): ``support_bounce``
    (low within tolerance of support, close above it and above the open), ``support_break`` (close
    below support), ``resistance_break`` and ``resistance_reject`` (mirrors). ``only``: a mask of the
    rows to look at (the others get no events).
    """
    is_hi, is_lo = swings if swings is not None else pivots(high, low, groups, k)
    tol = tol_atr * np.asarray(atr, dtype=np.float64)
    floor = groups.shift(groups.rolling(close, hold, "min"), 1)  # lowest / highest of the previous closes
    ceiling = groups.shift(groups.rolling(close, hold, "max"), 1)
    sup = RecentPivots(is_lo, low, groups, k=k, lookback=lookback, count=count)
    res = RecentPivots(is_hi, high, groups, k=k, lookback=lookback, count=count)
    out = {}
    for name, maybe in level_tests(open_, high, low, close, tol, floor, ceiling).items():
        rows = np.flatnonzero(maybe if only is None else maybe & only)
        levels = (sup if name.startswith("support") else res).levels(rows)
        out[name] = strongest_level(name, levels, rows, high, low, close, tol, floor, ceiling, min_touches)
    return out


LEVEL_EVENTS = ("support_bounce", "support_break", "resistance_break", "resistance_reject")


def level_tests(open_, high, low, close, tol, floor, ceiling) -> dict[str, np.ndarray]:
    """Per level event (``LEVEL_EVENTS``): the rows that could qualify for some level (``strongest_level``
    tests the levels); ``floor``/``ceiling``: the lowest / highest of the closes the level must have held."""
    with np.errstate(invalid="ignore"):
        return {"support_bounce": (close > open_) & (low - tol <= floor), "support_break": close < floor,
                "resistance_break": close > ceiling, "resistance_reject": (close < open_) & (high + tol >= ceiling)}


def strongest_level(event: str, levels: np.ndarray, rows: np.ndarray, high, low, close, tol, floor, ceiling,
                    min_touches: int) -> LevelHits:
    """The level ``event`` at each of ``rows`` given its known levels (``levels[i]``: most recent first): of
    the levels ``L`` passing the event's test, the one with the most touches (levels within ``tol`` of it,
    ``min_touches`` or more), then the nearest to the close, then the most recent. The tests: support_bounce
    |low - L| <= tol, close > L, floor > L; support_break close < L <= floor; resistance_break
    ceiling <= L < close; resistance_reject |high - L| <= tol, close < L, ceiling < L. One compiled loop
    (``_panel_kernel.strongest_levels``) tests and counts; numpy's (rows, levels, levels) comparison took 4x longer."""
    from mintel.analytics._panel_kernel import strongest_levels  # numba: loaded when levels are first asked for

    if not len(rows):
        return LevelHits(rows, np.empty(0), np.empty(0, np.int64))

    def f64(a):
        return np.asarray(a, dtype=np.float64)

    best_t, best_l = strongest_levels(LEVEL_EVENTS.index(event), np.ascontiguousarray(levels, dtype=np.float64),
                                      np.asarray(rows, np.int64), *map(f64, (high, low, close, tol, floor, ceiling)),
                                      int(min_touches))
    found = np.flatnonzero(best_t > 0)
    return LevelHits(rows[found], best_l[found], best_t[found])


def support_resistance(bars: pd.DataFrame, *, k: int = 3, lookback: int = 120, tol_atr: float = 0.5) -> pd.DataFrame:
    """Support and resistance levels standing at each symbol's last bar.

    ``bars``: sorted by (symbol, ts), with high, low, close and atr. Swing pivots of the last
    ``lookback`` bars are clustered by price (a cluster grows while the next pivot is within
    ``tol_atr`` x the last ATR); a level is its cluster's mean, its strength its touches. Columns:
    symbol, kind (support below the close, resistance above), level, touches, last_ts, distance_pct.
    """
    cols = ["symbol", "kind", "level", "touches", "last_ts", "distance_pct"]
    if bars.empty:
        return pd.DataFrame(columns=cols)
    g = Groups.of(bars["symbol"].to_numpy(dtype=object))
    high, low, close, atr = (bars[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in ("high", "low", "close", "atr"))
    is_hi, is_lo = pivots(high, low, g, k)
    recent = (g.rest < lookback) & (g.rest >= k)
    rows = np.flatnonzero((is_hi | is_lo) & recent)
    if not len(rows):
        return pd.DataFrame(columns=cols)
    price = np.where(is_hi[rows], high[rows], low[rows])
    gid = g.gid[rows]
    last_close, last_tol = close[g.last][gid], tol_atr * atr[g.last][gid]
    order = np.lexsort((price, gid))
    rows, price, gid, last_close, last_tol = rows[order], price[order], gid[order], last_close[order], last_tol[order]
    with np.errstate(invalid="ignore"):
        new = np.r_[True, (gid[1:] != gid[:-1]) | ~(np.diff(price) <= last_tol[1:])]
    cluster = np.cumsum(new) - 1
    frame = pd.DataFrame({"cluster": cluster, "gid": gid, "price": price, "row": rows, "close": last_close})
    agg = frame.groupby("cluster", sort=True).agg(gid=("gid", "first"), level=("price", "mean"),
                                                   touches=("price", "size"), row=("row", "max"), close=("close", "first"))
    ts = bars["ts"].to_numpy()[agg["row"].to_numpy()] if "ts" in bars else pd.NaT
    out = pd.DataFrame({
        "symbol": bars["symbol"].to_numpy(dtype=object)[g.starts[agg["gid"].to_numpy()]],
        "kind": np.where(agg["level"] < agg["close"], "support", "resistance"),
        "level": agg["level"].to_numpy(),
        "touches": agg["touches"].to_numpy(),
        "last_ts": ts,
        "distance_pct": (agg["level"] / agg["close"] - 1.0).to_numpy() * 100.0,
    })
    return out.sort_values(["symbol", "level"], kind="stable").reset_index(drop=True)
