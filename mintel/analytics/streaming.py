"""Streaming indicators: the state of every symbol in numpy arrays, advanced one bar at a time.

``StreamingIndicators`` keeps, for N symbols at once, what each indicator of
``mintel.analytics.indicators.INDICATOR_SPECS`` needs to produce its next value in O(1): EMA and
Wilder averages, TA-Lib's running SMA totals with a ring buffer of closes, OBV, the session's VWAP
sums, and the volume history of the ratio. An update is a handful of numpy operations over the
symbols it touches; history is never recomputed.

The recurrences are TA-Lib's own, in TA-Lib's order of operations (same seeds, same running sums),
so the values equal ``compute_indicators`` (TA-Lib) to ~1e-15; the standard deviation of the
Bollinger Bands is computed exactly over the window (two-pass), TA-Lib's shifted-data variance
agrees with it to rounding. Where the two could differ in the last bits (sum order of the volume
means, a compiler's fused multiply-add in TA-Lib), they stay within 1e-9 relative; the tests check it.

The forming bar: ``update`` with the ts a symbol already has replaces that bar (its values are
recomputed from the committed state, which excludes it); a later ts commits it first. Bars with
a non-finite high, low, close or volume get null values and leave the state as it was, as in the
batch engine; a bar older than the symbol's latest is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mintel.analytics.indicators import (
    DEFAULT_TZ,
    SPECS,
    Positions,
    index_of,
    is_intraday,
    object_index,
    output_columns,
    session_and_minute,
    to_utc_ns,
)
from mintel.errors import DataError

log = logging.getLogger(__name__)

_NAT = np.iinfo(np.int64).min

# Columns of the per-symbol scalar state (committed and pending): all float64.
_PREV_CLOSE, _GAIN, _LOSS, _EMA, _SLOW, _FAST, _SIGNAL, _SMA20, _SMA50, _SMA200, _ATR, _OBV, _PV, _V, _SESSION = range(15)
_K = 15


class StreamingIndicators:
    """Indicator state for a universe of symbols, updated bar by bar, vectorized across symbols.

    ``StreamingIndicators(symbols, interval, tz, extra=("sma_200",))`` starts empty;
    ``from_history(bars, ...)`` warms it up. ``update(...)`` takes one bar for every symbol (or a
    subset) and returns that bar's indicator values; ``values()`` is the latest values per symbol.
    Symbols not seen before are added by ``update``.

    Cost: an update is ~0.6 ms for 1000 symbols, ~2.5 ms for 5000 (all indicators). Memory: a ring of
    closes (200 with sma_200, else 50) per symbol, plus, intraday, the last 20 volumes of every
    (symbol, minute of day): 160 bytes x minutes x symbols (60 MB for 1000 symbols x 375 minutes).
    """

    def __init__(self, symbols: Sequence[str] = (), interval: str = "1d", tz: str = DEFAULT_TZ, *, extra=(),
                 slots: int | None = None):
        self.interval = interval
        self.tz = tz
        self.intraday = is_intraday(interval)
        self.columns: tuple[str, ...] = output_columns(extra)
        self._col = {c: j for j, c in enumerate(self.columns)}
        p = {name: spec.params for name, spec in SPECS.items()}
        self._p_rsi, self._p_atr, self._p_ema = p["rsi"]["period"], p["atr"]["period"], p["ema_20"]["period"]
        self._p_fast, self._p_slow, self._p_sig = p["macd"]["fast"], p["macd"]["slow"], p["macd"]["signal"]
        self._p_bb, self._bb_dev = p["bbands"]["period"], float(p["bbands"]["nbdev"])
        self._p_50, self._p_200, self._p_vr = p["sma_50"]["period"], p["sma_200"]["period"], p["volume_ratio"]["window"]
        self._with_200 = "sma_200" in self.columns
        self._ring = self._p_200 if self._with_200 else max(self._p_50, self._p_bb)  # closes kept per symbol
        self._names = pd.Index([], dtype=object)
        self._lookup = Positions()
        self._size = 0
        self._alloc(0, 0)
        self._slot_of_minute = np.full(1440, -1, np.int64)  # intraday: minute of day -> slot of the volume history
        self._slots = 0
        # Bars in a session, when known (LiveState: from the exchange calendar): the volume history is
        # sized to it at once (no reallocation copy inside a cycle; pages still become resident as the
        # minutes are first written); else, and beyond it, it doubles as needed.
        self._slots_hint = int(slots) if slots else 0
        self._seen = np.zeros(0, bool)
        if len(symbols):
            self.rows(symbols)

    # ------------------------------------------------------------------------------------------
    # public API

    @classmethod
    def from_history(
        cls,
        bars: pd.DataFrame,
        interval: str = "1d",
        tz: str = DEFAULT_TZ,
        *,
        extra=(),
        symbols: Sequence[str] | None = None,
    ) -> StreamingIndicators:
        """State warmed up on ``bars`` (symbol, ts, high, low, close, volume; any order).

        Each symbol's bars are replayed through the same update as live bars (vectorized across
        symbols, one step per bar index), so the state is exactly what streaming them would give.
        The last bar of each symbol stays the forming bar: an update with its ts replaces it.
        ``symbols`` fixes the universe and its order (default: the symbols of ``bars``, sorted).
        A repeated (symbol, ts) replaces the earlier bar, as it would live. Cost: one update per bar
        index, ~0.3 s for 1000 symbols x 300 bars.
        """
        missing = [c for c in ("symbol", "ts", "high", "low", "close", "volume") if c not in bars.columns]
        if missing:
            raise DataError(f"bars: column {', '.join(map(repr, missing))} missing")
        names = sorted(pd.unique(bars["symbol"].dropna())) if symbols is None else list(symbols)
        self = cls(names, interval, tz, extra=extra)
        if len(bars) == 0:
            return self
        bars = bars[bars["symbol"].notna()]
        ts = to_utc_ns(bars["ts"])
        rows = self.rows(bars["symbol"].to_numpy(dtype=object))
        order = np.lexsort((ts, rows))
        rows, ts = rows[order], ts[order]
        data = [bars[c].to_numpy(dtype=np.float64, na_value=np.nan)[order] for c in ("high", "low", "close", "volume")]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        lengths = np.diff(np.r_[starts, len(rows)])
        for step in range(int(lengths.max())):
            live = lengths > step
            if not live.all():
                starts, lengths = starts[live], lengths[live]
            at = starts + step
            self._update_rows(rows[at], ts[at], *(a[at] for a in data), session=None, want=False)
        return self

    @property
    def symbols(self) -> pd.Index:
        """The universe, in state-row order (what ``update(None, ...)`` expects)."""
        return self._names[: self._size]

    def rows(self, symbols) -> np.ndarray:
        """State rows of ``symbols`` (names), adding the unknown ones. Pass them to ``update`` to skip the lookup."""
        names = np.asarray(symbols, dtype=object)
        rows = self._lookup(self._names, names) if self._size else np.full(len(names), -1, np.int64)
        new = rows < 0
        if new.any():
            fresh = pd.unique(names[new])
            first = self._size
            self._grow(first + len(fresh))
            self._names = object_index(self._names, fresh)
            rows[new] = first + index_of(pd.Index(fresh, dtype=object), names[new])
        return rows.astype(np.int64)

    def update(
        self, symbols, ts, open=None, high=None, low=None, close=None, volume=None, *, session=None  # noqa: A002
    ) -> dict[str, np.ndarray]:
        """Take one bar per symbol and return its indicator values, ``{column: array}`` in ``symbols`` order.

        ``symbols``: names, state rows (ints from ``rows``) or None for the whole universe in
        ``symbols`` order; each at most once. ``ts``: bar open (UTC), one for all or one per
        symbol. ``open`` is accepted for the bar's shape and not used. ``session``: optional session
        keys (ints) overriding the local calendar day of ts (intraday VWAP).
        """
        if symbols is None:
            rows = np.arange(self._size)
        else:
            rows = np.asarray(symbols)
            rows = rows.astype(np.int64) if rows.dtype.kind in "iu" else self.rows(rows)
            self._check_rows(rows)
        k = len(rows)

        def arr(x, name):
            if x is None:
                raise DataError(f"update: {name} missing")
            a = np.asarray(x, dtype=np.float64)
            return np.broadcast_to(a, (k,)) if a.ndim == 0 else a

        ts_ns = _ts_array(ts, k)
        bar = (arr(high, "high"), arr(low, "low"), arr(close, "close"), arr(volume, "volume"))
        values = self._update_rows(rows, ts_ns, *bar, session=session, want=True)
        return {c: values[:, j] for j, c in enumerate(self.columns)}

    def values(self) -> pd.DataFrame:
        """Latest indicator values per symbol (symbol + indicator columns); NaN before any value."""
        frame = pd.DataFrame(self._out[: self._size], columns=list(self.columns))
        frame.insert(0, "symbol", pd.array(self.symbols, dtype="str"))
        return frame

    def latest(self) -> dict[str, np.ndarray]:
        """``values()`` without the frame: each indicator column's latest values in state-row order (views)."""
        out = self._out[: self._size]
        return {c: out[:, j] for j, c in enumerate(self.columns)}

    def latest_ts(self) -> pd.Series:
        """Open time of each symbol's latest bar (the forming bar), NaT before any."""
        return pd.Series(pd.DatetimeIndex(self._ts[: self._size].view("M8[ns]"), tz="UTC"), index=self.symbols, name="ts")

    # ------------------------------------------------------------------------------------------
    # state

    def _alloc(self, cap: int, slots: int) -> None:
        self._cap = cap
        self._n = np.zeros(cap, np.int64)  # usable bars committed
        self._state = np.zeros((cap, _K))  # committed scalar state
        self._pend = np.zeros((cap, _K))  # scalar state after the forming bar
        self._pend_bar = np.zeros((cap, 2))  # close, volume of the forming bar (written to the rings on commit)
        self._pend_ok = np.zeros(cap, bool)  # the forming bar is usable
        self._pend_slot = np.zeros(cap, np.int64)
        self._ts = np.full(cap, _NAT, np.int64)  # ts of the forming bar, NaT if none
        self._closes = np.zeros((cap, self._ring))  # close of usable bar i at i % ring
        self._volumes = np.zeros((cap, self._p_vr))  # daily: volume of usable bar i at i % window
        self._slot_volume = np.zeros((slots, cap, self._p_vr))  # intraday: per minute slot, like _volumes
        self._slot_count = np.zeros((slots, cap), np.int64)
        self._out = np.full((cap, len(self.columns)), np.nan)

    def _grow(self, size: int) -> None:
        if size > self._cap:
            old = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray) and k != "_slot_of_minute"}
            self._alloc(max(size, 2 * self._cap, 64), self._slot_volume.shape[0])
            for k, a in old.items():
                new = getattr(self, k)
                if k in ("_slot_volume", "_slot_count"):
                    new[:, : a.shape[1]] = a
                elif k != "_seen":
                    new[: len(a)] = a
            self._seen = np.zeros(self._cap, bool)
        self._size = size

    def _slot_rows(self, minute: np.ndarray) -> np.ndarray:
        """Slot of each minute of day in the intraday volume history, adding slots for new minutes."""
        slot = self._slot_of_minute[minute]
        if (slot < 0).any():
            fresh = np.unique(minute[slot < 0])
            self._slot_of_minute[fresh] = self._slots + np.arange(len(fresh))
            self._slots += len(fresh)
            if self._slots > self._slot_volume.shape[0]:
                grown = (max(self._slots, self._slots_hint) if self._slots <= self._slots_hint
                         else max(self._slots, 2 * self._slot_volume.shape[0], 8))
                vol = np.zeros((grown, self._cap, self._p_vr))
                cnt = np.zeros((grown, self._cap), np.int64)
                vol[: self._slot_volume.shape[0]] = self._slot_volume
                cnt[: self._slot_count.shape[0]] = self._slot_count
                self._slot_volume, self._slot_count = vol, cnt
            slot = self._slot_of_minute[minute]
        return slot

    def _check_rows(self, rows: np.ndarray) -> None:
        if len(rows) and (rows.min() < 0 or rows.max() >= self._size):
            raise DataError(f"update: state rows must be in 0..{self._size - 1}")
        seen = self._seen
        seen[rows] = True
        unique = np.count_nonzero(seen[: self._size])
        seen[rows] = False
        if unique != len(rows):
            raise DataError("update: a symbol appears more than once in one update")

    # ------------------------------------------------------------------------------------------
    # the step

    def _update_rows(self, rows, ts, high, low, close, volume, *, session, want: bool):
        latest = self._ts[rows]
        stale = (latest != _NAT) & (ts < latest)
        if stale.any():
            log.warning("streaming indicators: %d bars older than their symbol's latest bar ignored", int(stale.sum()))
            fresh = ~stale
            rows, ts, high, low, close, volume = rows[fresh], ts[fresh], high[fresh], low[fresh], close[fresh], volume[fresh]
            if session is not None:
                session = np.asarray(session)[fresh] if np.ndim(session) else session
        forming = self._ts[rows]
        self._commit(rows[(forming != _NAT) & (ts > forming)])

        ok = np.isfinite(high) & np.isfinite(low) & np.isfinite(close) & np.isfinite(volume) & (ts != _NAT)
        if self.intraday:
            day, minute = session_and_minute(np.where(ok, ts, 0), self.tz)
            skey = day if session is None else np.broadcast_to(np.asarray(session, dtype=np.int64), (len(rows),))
            slot = np.zeros(len(rows), np.int64)
            slot[ok] = self._slot_rows(minute[ok])
        else:
            skey = slot = None
        new, out = self._step(rows, high, low, close, volume, skey, slot)
        out[~ok] = np.nan
        self._pend[rows] = new
        self._pend_bar[rows, 0] = close
        self._pend_bar[rows, 1] = volume
        self._pend_ok[rows] = ok
        if slot is not None:
            self._pend_slot[rows] = slot
        self._ts[rows] = ts
        self._out[rows] = out
        if not want:
            return None
        if stale.any():  # answer in the caller's order, NaN for the ignored bars
            full = np.full((len(stale), len(self.columns)), np.nan)
            full[~stale] = out
            return full
        return out

    def _commit(self, rows: np.ndarray) -> None:
        """Make the forming bar of ``rows`` part of the committed state."""
        self._ts[rows] = _NAT
        rows = rows[self._pend_ok[rows]]
        if not len(rows):
            return
        i = self._n[rows]
        self._state[rows] = self._pend[rows]
        close, volume = self._pend_bar[rows, 0], self._pend_bar[rows, 1]
        self._closes[rows, i % self._ring] = close
        if self.intraday:
            slot = self._pend_slot[rows]
            count = self._slot_count[slot, rows]
            self._slot_volume[slot, rows, count % self._p_vr] = volume
            self._slot_count[slot, rows] = count + 1
        else:
            self._volumes[rows, i % self._p_vr] = volume
        self._n[rows] = i + 1

    def _step(self, rows, h, lo, c, v, skey, slot):
        """(scalar state after this bar, output values) from the committed state; mutates nothing.

        ``i`` is the bar's index among the symbol's usable bars. Every recurrence below is TA-Lib's,
        operation for operation; see each TA-Lib function's source for the seeding it mirrors.
        """
        i = self._n[rows]
        s = self._state[rows]
        new = s.copy()
        out = np.full((len(rows), len(self.columns)), np.nan)
        col = self._col
        pc = s[:, _PREV_CLOSE]
        first = i == 0
        new[:, _PREV_CLOSE] = c

        with np.errstate(invalid="ignore", divide="ignore"):
            # RSI (TA_RSI): sums of gains/losses over the first `p` changes, then Wilder's smoothing.
            p = self._p_rsi
            d = c - pc
            up = np.where(d < 0, 0.0, d)
            dn = np.where(d < 0, -d, 0.0)
            g, l_ = s[:, _GAIN], s[:, _LOSS]
            g_new = np.where(i < p, g + up, np.where(i == p, (g + up) / p, (g * (p - 1) + up) / p))
            l_new = np.where(i < p, l_ + dn, np.where(i == p, (l_ + dn) / p, (l_ * (p - 1) + dn) / p))
            new[:, _GAIN] = np.where(first, 0.0, g_new)
            new[:, _LOSS] = np.where(first, 0.0, l_new)
            total = g_new + l_new
            rsi = np.where(total == 0, 0.0, 100.0 * (g_new / total))
            out[:, col["rsi"]] = np.where(i >= p, rsi, np.nan)

            # EMA 20 (TA_EMA): seeded with the SMA of the first `p` closes.
            ema = _ema(s[:, _EMA], c, i, 0, self._p_ema)
            new[:, _EMA] = ema
            out[:, col["ema_20"]] = np.where(i >= self._p_ema - 1, ema, np.nan)

            # MACD (TA_MACD): the slow EMA starts at bar slow-1; the fast EMA is seeded on the `fast`
            # bars ending there (not at bar 0); the signal EMA runs on the MACD line from that bar.
            fast_p, slow_p, sig_p = self._p_fast, self._p_slow, self._p_sig
            slow = _ema(s[:, _SLOW], c, i, 0, slow_p)
            fast = _ema(s[:, _FAST], c, i, slow_p - fast_p, fast_p)
            line = fast - slow
            signal = _ema(s[:, _SIGNAL], line, i, slow_p - 1, sig_p)
            new[:, _SLOW], new[:, _FAST], new[:, _SIGNAL] = slow, fast, signal
            ready = i >= slow_p - 1 + sig_p - 1
            out[:, col["macd"]] = np.where(ready, line, np.nan)
            out[:, col["macd_signal"]] = np.where(ready, signal, np.nan)
            out[:, col["macd_hist"]] = np.where(ready, line - signal, np.nan)

            # SMAs (TA_SMA): TA-Lib's running total: add the close, output total / p, drop the oldest.
            pb = self._p_bb
            # The previous pb-1 closes (oldest first), then this one: the Bollinger window.
            window = np.empty((len(rows), pb))
            window[:, :-1] = self._closes[rows[:, None], (i[:, None] - np.arange(pb - 1, 0, -1)) % self._ring]
            window[:, -1] = c
            sma20 = self._sma(new, s, _SMA20, pb, window[:, 0], c, i)
            out[:, col["sma_20"]] = out[:, col["bb_middle"]] = sma20
            out[:, col["sma_50"]] = self._sma(new, s, _SMA50, self._p_50, self._oldest(rows, i, self._p_50), c, i)
            if self._with_200:
                out[:, col["sma_200"]] = self._sma(new, s, _SMA200, self._p_200, self._oldest(rows, i, self._p_200), c, i)

            # Bollinger Bands (TA_BBANDS, SMA): middle band = that SMA, population deviation of the
            # window computed in two passes (TA-Lib's shifted-data variance agrees to rounding).
            dev = window - (window.sum(axis=1) / pb)[:, None]
            std = np.sqrt((dev * dev).sum(axis=1) / pb) * self._bb_dev
            out[:, col["bb_upper"]] = sma20 + std
            out[:, col["bb_lower"]] = sma20 - std

            # ATR (TA_ATR): true range from the 2nd bar, SMA of the first `p`, then Wilder's smoothing.
            p = self._p_atr
            tr = np.maximum(np.maximum(h - lo, np.abs(pc - h)), np.abs(lo - pc))
            a = s[:, _ATR]
            atr = np.where(i < p, a + tr, np.where(i == p, (a + tr) / p, (a * (p - 1) + tr) / p))
            new[:, _ATR] = np.where(first, 0.0, atr)
            out[:, col["atr"]] = np.where(i >= p, atr, np.nan)

            # OBV (TA_OBV): starts at the first bar's volume.
            obv = s[:, _OBV]
            obv = np.where(first, v, np.where(c > pc, obv + v, np.where(c < pc, obv - v, obv)))
            new[:, _OBV] = obv
            out[:, col["obv"]] = obv

            if self.intraday:
                # VWAP: sums restart at the session's first bar (typical price as TA_TYPPRICE).
                restart = first | (skey != s[:, _SESSION])
                tpv = (h + lo + c) / 3.0 * v
                pv = np.where(restart, tpv, s[:, _PV] + tpv)
                vol = np.where(restart, v, s[:, _V] + v)
                new[:, _PV], new[:, _V], new[:, _SESSION] = pv, vol, skey
                out[:, col["vwap"]] = np.where(vol > 0, pv / vol, np.nan)
                # Volume ratio against the same minute of the previous up-to-`window` sessions.
                count = np.minimum(self._slot_count[slot, rows], self._p_vr)
                mean = self._slot_volume[slot, rows].sum(axis=1) / count
                out[:, col["volume_ratio"]] = np.where((count > 0) & (mean > 0), v / mean, np.nan)
            else:
                mean = self._volumes[rows].sum(axis=1) / self._p_vr
                out[:, col["volume_ratio"]] = np.where((i >= self._p_vr) & (mean > 0), v / mean, np.nan)
        return new, out

    @staticmethod
    def _sma(new, s, k: int, p: int, oldest, c, i):
        """TA-Lib's running SMA: total += close; value = total / p; total -= the window's oldest close."""
        total = s[:, k] + c
        new[:, k] = np.where(i >= p - 1, total - oldest, total)
        return np.where(i >= p - 1, total / p, np.nan)

    def _oldest(self, rows, i, p: int):
        """Close of usable bar i - p + 1 (garbage while i < p - 1)."""
        return self._closes[rows, (i - (p - 1)) % self._ring]


def _ema(prev, x, i, start: int, p: int):
    """TA-Lib's EMA over ``x`` from bar ``start``: the sum of the first ``p`` values, their mean at
    bar start+p-1, then ``(x - ema) * k + ema`` with k = 2 / (p + 1)."""
    k = 2.0 / (p + 1)
    seed_end = start + p - 1
    summed = prev + x
    value = np.where(i < seed_end, summed, np.where(i == seed_end, summed / p, (x - prev) * k + prev))
    return np.where(i < start, 0.0, value)


def _ts_array(ts, k: int) -> np.ndarray:
    if isinstance(ts, (np.ndarray, pd.Index, pd.Series, list, tuple)):
        values = np.asarray(ts)
        if values.dtype.kind in "iu":
            return values.astype(np.int64)
        return to_utc_ns(values)
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return np.full(k, stamp.as_unit("ns").value, np.int64)
