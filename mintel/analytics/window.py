"""The live window: the last bars of the universe, enriched, as one (symbols x slots) array per column.

Live bars come a minute (a day) at a time for the whole universe, so the window is a ring of time
slots per symbol; the engine's detectors read it in place (``LivePanel``) and ``frame()`` gives it
as a frame for the general path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mintel.analytics.keys import Positions, index_of, object_index, to_utc_ns

_NAT = np.iinfo(np.int64).min
_USABLE = ("open", "high", "low", "close", "volume")  # a bar the detectors can use has them all finite


def _wk():
    from mintel.analytics import _window_kernel  # numba: loaded on the first push, not on import

    return _window_kernel


class BarWindow:
    """The last ``length`` bar times of the universe, enriched, as numpy arrays.

    A symbol without a bar in a slot holds NaN there (detectors skip unusable bars). Every slot is
    written twice, at ``k`` and ``k + length`` of a doubled ring, so the window in time order is always
    one contiguous slice (``view()``). Symbols are kept in name order. ``push`` stores a cycle's bars
    (the newest slot's ts again replaces in place: the forming bar). ``run`` counts, per symbol, the
    consecutive usable slots ending at the newest one.

    ``pivot_k``: also keep the swing-high / swing-low flags of every slot (``pivots()``, the test of
    ``live_panel._pivots`` on the raw high / low), each computed once: a slot's flag depends on the ``k``
    slots either side, and only the newest slot ever changes, so a push recomputes one slot's flags.
    With ``pivot_keep`` each symbol's most recent swing points are also kept as short lists with their
    prices (``pivot_lists()``), so reading them does not touch the slots (each slot of the ring is a
    page or more away from the next).

    With a ``volume`` column it also keeps ``log1p(max(volume, 0))`` of every slot (``log_volume()``, what
    the volume z-score sums), computed once per bar rather than over the whole window every cycle.

    Storage is slot-major, (slots, columns, symbols): a push writes one contiguous block per slot (in
    symbol-major order each of a cycle's ~20 x N values landed on a different page); ``view()`` and
    ``pivots()`` return (columns, symbols, slots) views of it.
    """

    def __init__(self, length: int, columns: tuple[str, ...], pivot_k: int | None = None, pivot_keep: int = 0) -> None:
        self.length = length
        self.columns = tuple(columns)
        self.pivot_k = pivot_k if pivot_k and "high" in columns and "low" in columns else None
        self.pivot_keep = pivot_keep if self.pivot_k else 0
        self._plist_seq = np.zeros((2, 0, self.pivot_keep), np.int64)  # [side, symbol, i]: i-th most recent swing
        self._plist_price = np.zeros((2, 0, self.pivot_keep))
        self._plist_n = np.zeros((2, 0), np.int64)
        self._seq = -1  # sequence number of the newest slot (slots counted from 0 as they open)
        self._piv = np.zeros((2 * length, 2, 0), bool)  # [:, 0] swing highs, [:, 1] swing lows, like _data
        self._names = pd.Index([], dtype=object)  # sorted
        self._lookup = Positions()
        self._slot_ts = np.full(2 * length, _NAT, np.int64)
        self._pos = -1  # newest slot, 0 <= pos < length
        self._data = np.full((2 * length, len(self.columns), 0), np.nan)
        self.run = np.zeros(0, np.int64)
        self._run_before = np.zeros(0, np.int64)  # run as of the slot before the newest
        self._usable = np.array([self.columns.index(c) for c in _USABLE if c in self.columns], np.int64)
        self._hilo = (self.columns.index("high"), self.columns.index("low")) if self.pivot_k else (0, 0)
        self._vol = self.columns.index("volume") if "volume" in self.columns else None
        self._logv = np.full((2 * length, 0), np.nan)  # log1p of the volume, like _data
        self._extrema = _no_extrema(0)  # tail_extrema's kept extrema per symbol
        self._hl = (self.columns.index("high"), self.columns.index("low")) if {"high", "low"} <= set(self.columns) else None
        self._gone, self._gone_seq = (np.zeros(0), np.zeros(0)), -1  # high, low of the slot that last left the ring

    @property
    def names(self) -> pd.Index:
        """The symbols, in row order (sorted)."""
        return self._names

    def rows(self, symbols: np.ndarray) -> np.ndarray:
        """Window rows of ``symbols`` (names), adding the unknown ones (rows are in name order, so adding a
        symbol moves the rows after it: a caller keeping rows checks ``names`` is still the same object)."""
        rows = self._lookup(self._names, symbols) if len(self._names) else np.full(len(symbols), -1)
        if (rows < 0).any():
            names = object_index(self._names, pd.unique(symbols[rows < 0])).sort_values()
            grown = np.full((2 * self.length, len(self.columns), len(names)), np.nan)
            piv = np.zeros((2 * self.length, 2, len(names)), bool)
            logv = np.full((2 * self.length, len(names)), np.nan)
            plist_seq = np.zeros((2, len(names), self.pivot_keep), np.int64)
            plist_price = np.zeros((2, len(names), self.pivot_keep))
            plist_n = np.zeros((2, len(names)), np.int64)
            at = index_of(names, self._names)
            run, before = np.zeros(len(names), np.int64), np.zeros(len(names), np.int64)
            if len(self._names):
                grown[:, :, at] = self._data
                piv[:, :, at] = self._piv
                logv[:, at] = self._logv
                plist_seq[:, at], plist_price[:, at], plist_n[:, at] = self._plist_seq, self._plist_price, self._plist_n
                run[at], before[at] = self.run, self._run_before
            self._names, self._data, self.run, self._run_before, self._piv = names, grown, run, before, piv
            self._logv = logv
            self._plist_seq, self._plist_price, self._plist_n = plist_seq, plist_price, plist_n
            self._extrema = _no_extrema(len(names))  # rows moved: counted again
            self._gone, self._gone_seq = (np.zeros(len(names)), np.zeros(len(names))), -1
            rows = index_of(names, symbols)
        return rows.astype(np.int64)

    def push(self, enriched: pd.DataFrame | None) -> None:
        """Store bars, slot by slot in ts order; a ts older than the newest slot is ignored."""
        if enriched is None or enriched.empty:
            return
        self.push_arrays(enriched["symbol"].to_numpy(dtype=object), to_utc_ns(enriched["ts"]),
                         {c: enriched[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in self.columns})

    def push_arrays(self, symbols: np.ndarray, ts: np.ndarray, columns: dict[str, np.ndarray],
                    rows: np.ndarray | None = None, block: np.ndarray | None = None) -> np.ndarray:
        """``push`` from arrays: symbol names, bar opens (int64 ns UTC) and each of ``columns``' values
        (``rows``: the symbols' window rows when the caller knows them, see ``rows``; ``block``: the values
        as one (columns, bars) array in ``self.columns`` order, any strides, when the caller has it). Returns
        the rows."""
        if not len(symbols):
            return np.zeros(0, np.int64)
        rows = self.rows(symbols) if rows is None else np.asarray(rows, np.int64)
        one = len(ts) and ts[0] == ts[-1] and (ts == ts[0]).all()  # the live case: one bar time
        if block is None or not one:
            values = tuple(np.asarray(columns[c], dtype=np.float64) for c in self.columns)
        w = self.length
        for t in (ts[:1] if one else np.unique(ts)):
            newest = self._slot_ts[self._pos] if self._pos >= 0 else _NAT
            if t < newest:
                continue
            fresh = t > newest
            if fresh:
                self._seq += 1
                self._pos = (self._pos + 1) % w
                if self._hl is not None:  # the slot leaving the ring: tail_extrema may need its high and low
                    self._gone = self._data[self._pos, self._hl[0]].copy(), self._data[self._pos, self._hl[1]].copy()
                    self._gone_seq = self._seq - w
                self._slot_ts[[self._pos, self._pos + w]] = t
            i = slice(None) if one else np.flatnonzero(ts == t)
            if block is None or not one:
                block = np.stack([v[i] for v in values])
            lv = np.log1p(np.clip(block[self._vol], 0, None)) if self._vol is not None else np.empty(0)
            _wk().write_slot(self._data, self._logv, self._piv, self._plist_seq, self._plist_price, self._plist_n,
                             self.run, self._run_before, rows[i], block, lv, self._usable, self._pos, w, fresh,
                             self.pivot_k or 0, *self._hilo, self._seq)
        return rows

    def pivots(self) -> tuple[np.ndarray, np.ndarray]:
        """(swing highs, swing lows) as (symbols x slots) flags over ``view()``'s slots, unmasked: a flag
        needs the ``pivot_k`` slots either side usable, which the reader checks against its tail."""
        if self._pos < 0:
            return self._piv[:0, 0, :].T, self._piv[:0, 1, :].T
        start = self._pos + 1
        lo = start + int(np.argmax(self._slot_ts[start : start + self.length] != _NAT))
        return self._piv[lo : start + self.length, 0, :].T, self._piv[lo : start + self.length, 1, :].T

    def pivot_lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(sequence, price, count, newest): each symbol's ``pivot_keep`` most recent swing highs (side 0) and
        lows (side 1), newest first, as (2, symbols, keep) arrays and (2, symbols) counts; ``newest`` is the
        newest slot's sequence number (``view()``'s slot ``j`` is ``newest - (width - 1 - j)``). Unmasked,
        as ``pivots()``."""
        return self._plist_seq, self._plist_price, self._plist_n, self._seq

    def tail_extrema(self, rows: np.ndarray, bars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(highest high, lowest low) of the last ``bars[i]`` slots (1 or more, usable) of each of ``rows``, as
        ``np.fmax``/``np.fmin`` over ``view()`` give them: each symbol's extrema of its final slots are kept
        from one call to the next and only the slots that joined or left its tail are read (a 52-week range
        read all 252 every cycle)."""
        data, _ = self.view()
        hi, lo = self._hl
        return _wk().tail_extrema(data[hi], data[lo], np.asarray(rows, np.int64), np.asarray(bars, np.int64), self._seq,
                                  *self._extrema, *self._gone, self._gone_seq)

    def log_volume(self) -> np.ndarray | None:
        """(symbols x slots) ``log1p(max(volume, 0))`` over ``view()``'s slots; None without a volume column."""
        if self._vol is None:
            return None
        if self._pos < 0:
            return self._logv[:0].T
        start = self._pos + 1
        lo = start + int(np.argmax(self._slot_ts[start : start + self.length] != _NAT))
        return self._logv[lo : start + self.length].T

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """(columns x symbols x slots, slot ts): the filled slots in time order, a view of the ring."""
        if self._pos < 0:
            return self._data[:0].transpose(1, 2, 0), self._slot_ts[:0]
        start = self._pos + 1
        have = self._slot_ts[start : start + self.length] != _NAT
        lo = start + int(np.argmax(have))
        return self._data[lo : start + self.length].transpose(1, 2, 0), self._slot_ts[lo : start + self.length]

    def dense(self) -> np.ndarray:
        """Per symbol: its usable bars in the window are its last ``run`` slots (no hole before them)."""
        data, _ = self.view()
        width = data.shape[2]
        out = self.run >= width
        check = np.flatnonzero(~out & (self.run > 0))
        if len(check):  # any usable bar before the run?
            before = np.isfinite(data[self._usable][:, check, :]).all(axis=0)
            before &= np.arange(width) < (width - self.run[check])[:, None]
            out[check] = ~before.any(axis=1)
        return out

    def frame(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The window (of symbol ``rows``, default all) sorted by (symbol, ts): symbol (categorical,
        sorted), ts, *columns."""
        if self._pos < 0:
            return pd.DataFrame(columns=["symbol", "ts", *self.columns])
        data, slot_ts = self.view()
        w = data.shape[2]
        rows = np.arange(len(self._names)) if rows is None else np.asarray(rows, dtype=np.int64)
        n = len(rows)
        flat = np.ascontiguousarray(data[:, rows, :]).reshape(len(self.columns), n * w)
        frame = pd.DataFrame(flat.T, columns=list(self.columns), copy=False)  # one float block, no copy
        frame.insert(0, "ts", pd.DatetimeIndex(np.tile(slot_ts, n).view("M8[ns]"), tz="UTC"))
        names = self._names[rows]
        frame.insert(0, "symbol", pd.Categorical.from_codes(np.repeat(np.arange(n), w), categories=names))
        return frame


def _no_extrema(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``tail_extrema``'s kept state for ``n`` symbols, empty: (high, low, first and last sequence number)."""
    return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64), np.full(n, -1, np.int64)
