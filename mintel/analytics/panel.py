"""The panel the detectors and the scorer read: an enriched bars frame's usable rows as arrays sorted by
(symbol, ts), the rows detections are kept for, shared derived values computed once per call (previous
close, volume z-score, channels, gaps, swings, levels, divergences) and the factor points every
detector scores with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel.analytics import momentum as mo
from mintel.analytics.keys import to_utc_ns
from mintel.analytics.volume import volume_zscore

if TYPE_CHECKING:
    from mintel.analytics.detectors import DetectorParams


NEEDED = ("rsi", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_lower", "sma_20", "sma_50", "atr", "vwap",
          "volume_ratio")


class Panel:
    """The usable bars of an enriched frame as arrays, sorted by (symbol, ts), with shared derived values.

    ``wanted`` marks the rows detections are kept for (every row, or each symbol's last bar); with
    ``last_only`` only the last ``history`` usable bars of each symbol are kept (default: all needed).
    """

    def __init__(self, frame: pd.DataFrame, interval: str, params: DetectorParams, *, last_only: bool = False,
                 history: int | None = None):
        self.interval, self.params, self.frame, self.last_only = interval, params, frame, last_only
        self.daily = interval.strip().lower() == "1d"
        self.unit = "day" if self.daily else ("week" if interval.strip().lower() in ("1w", "1wk") else "bar")
        ts = to_utc_ns(frame["ts"])
        keep, g, self.names = mo.arrange(frame["symbol"], ts)  # self.names: each symbol, by group
        codes = g.gid
        is_last = np.zeros(len(keep), bool)
        is_last[g.last] = True
        same = len(keep) == len(frame) and bool((np.diff(keep) == 1).all())  # in order: no gathering

        def column(name: str) -> np.ndarray:
            a = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            return a if same else a[keep]

        ohlcv = [column(c) for c in ("open", "high", "low", "close", "volume")]
        usable = np.ones(len(keep), bool)
        for a in ohlcv:
            usable &= np.isfinite(a)
        take = np.flatnonzero(usable)
        g = g.take(take)
        if last_only:  # the tail each last-bar detection can depend on
            tail = np.flatnonzero(g.rest < (history or params.history_bars()))
            take, g = take[tail], g.take(tail)
        self.src = keep[take]  # row positions in ``frame``
        self.wanted = is_last[take] if last_only else np.ones(len(take), bool)
        self.g, self.code, self.ts = g, codes[take], ts[self.src]
        self.o, self.h, self.l, self.c, self.v = (a[take] for a in ohlcv)
        self.ind = {c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan)[self.src]
                    for c in (*NEEDED, "sma_200") if c in frame}

    @cached_property
    def sym(self) -> np.ndarray:
        return self.names[self.code]

    def rows(self, mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask & self.wanted)

    def column(self, name: str) -> np.ndarray:
        """A price column (open, high, low, close, volume) or an indicator."""
        return _PRICES[name](self) if name in _PRICES else self.ind[name]

    def lag(self, name: str, k: int) -> np.ndarray:
        """Column ``name`` ``k`` bars earlier in the same symbol (NaN where there is none)."""
        return self.g.shift(self.column(name), k)

    def crosses(self, fast: str, slow: str) -> tuple[np.ndarray, np.ndarray]:
        """(up, down): where ``fast`` crosses above / below ``slow``."""
        return mo.crosses(self.ind[fast], self.ind[slow], self.g)

    def symbol_array(self, r: np.ndarray) -> pa.Array:
        """The symbols of rows ``r`` as an Arrow string array."""
        return pa.array(np.asarray(self.names, object)[self.code[r]], pa.string())

    def sector_array(self, r: np.ndarray) -> pa.Array:
        """The sectors of rows ``r`` as an Arrow string array (null when the frame has none)."""
        if "sector" not in self.frame:
            return pa.nulls(len(r), pa.string())
        return pa.array(self.frame["sector"].iloc[self.src[r]].astype(object).to_numpy(), pa.string(), from_pandas=True)

    # -- shared derived values (computed once per detect call)

    @cached_property
    def prev_close(self) -> np.ndarray:
        return self.g.shift(self.c, 1)

    @cached_property
    def volume_z(self) -> np.ndarray:
        return volume_zscore(self.v, self.g, self.params.volume_window)

    @cached_property
    def location(self) -> np.ndarray:
        """Where the close sits in the bar's range: 0 at the low, 1 at the high (0.5 for a flat bar)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.h > self.l, (self.c - self.l) / (self.h - self.l), 0.5)

    def channel(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        """Highest high / lowest low of the ``window`` bars before each wanted row."""
        key = f"_channel_{window}"
        if key not in self.__dict__:
            self.__dict__[key] = mo.channel_at(self.h, self.l, self.g, window, np.flatnonzero(self.wanted)) \
                if self.last_only else mo.channel(self.h, self.l, self.g, window)
        return self.__dict__[key]

    @cached_property
    def gaps(self) -> dict[str, np.ndarray]:
        return mo.gap_values(self.o, self.prev_close, self.lag("atr", 1), self.params.gap_pct, self.params.gap_atr)

    @cached_property
    def swings(self) -> tuple[np.ndarray, np.ndarray]:
        return mo.pivots(self.h, self.l, self.g, self.params.pivot_k)

    @cached_property
    def levels(self) -> dict[str, mo.LevelHits]:
        p = self.params
        return mo.level_events(self.o, self.h, self.l, self.c, self.ind["atr"], self.g, k=p.pivot_k,
                               lookback=p.level_lookback, count=p.level_count, tol_atr=p.level_tol_atr,
                               min_touches=p.min_touches, hold=p.level_hold, swings=self.swings,
                               only=self.wanted if self.last_only else None)

    @cached_property
    def divergences(self) -> tuple[DivergenceHits, DivergenceHits]:
        p = self.params
        both = mo.rsi_divergences(self.h, self.l, self.ind["rsi"], self.g, k=p.pivot_k, min_bars=p.divergence_min_bars,
                                  max_bars=p.divergence_max_bars, swings=self.swings)
        out = []
        for d, price in zip(both, (self.l, self.h)):
            sel = self.wanted[d.rows]
            r, cur, prev = d.rows[sel], d.pivot[sel], d.previous[sel]
            rsi = self.ind["rsi"]
            out.append(DivergenceHits(r, rsi[cur], rsi[prev], price[cur], price[prev], self.ind["atr"][cur], self.c[cur]))
        return out[0], out[1]

    def range_hilo(self, r: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(highest high, lowest low, bars) of the last ``window`` bars of the symbols of rows ``r`` (each a
        symbol's last row)."""
        tail = np.flatnonzero(self.g.rest < window)  # every symbol keeps at least its last bar, in order
        g = mo.Groups.of(self.code[tail])
        hi, lo = np.maximum.reduceat(self.h[tail], g.starts), np.minimum.reduceat(self.l[tail], g.starts)
        k = self.g.gid[r]
        return hi[k], lo[k], (g.ends - g.starts)[k]

    # -- factor points at rows ``r`` (NaN inputs give 0 points)

    def volume_pts(self, r, cap: float, full: float = 3.0) -> np.ndarray:
        return cap * _unit((self.ind["volume_ratio"][r] - 1.0) / (full - 1.0))

    def trend_pts(self, r, side: int, cap: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return cap * (side * (self.c[r] - self.ind["sma_50"][r]) > 0)

    def rsi_pts(self, r, side: int, cap: float) -> np.ndarray:
        return cap * _unit(side * (self.ind["rsi"][r] - 50.0) / 20.0)

    def atr_pts(self, r, distance: np.ndarray, cap: float, full: float = 1.0) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return cap * _unit(distance / (full * self.ind["atr"][r]))


_PRICES = {"open": lambda p: p.o, "high": lambda p: p.h, "low": lambda p: p.l, "close": lambda p: p.c,
           "volume": lambda p: p.v}


@dataclass(frozen=True)
class DivergenceHits:
    """Rows a divergence fires on (its pivot's confirmation), with the values at the pivot and the one before."""

    rows: np.ndarray
    rsi_pivot: np.ndarray
    rsi_previous: np.ndarray
    price_pivot: np.ndarray  # the low (bullish) or high (bearish)
    price_previous: np.ndarray
    atr_pivot: np.ndarray
    close_pivot: np.ndarray


def _unit(x) -> np.ndarray:
    """Clip to 0..1, NaN -> 0."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0.0, np.minimum(x, 1.0), 0.0)  # NaN fails x > 0 (no warning): 0; not nan_to_num's five passes
