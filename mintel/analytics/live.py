"""The live path's state: day figures and streaming indicators for a universe, in numpy arrays.

`LiveState.update(bars)` folds a cycle's bars in (vectorized across symbols; a batch holding several
minutes is applied minute by minute), and `snapshot()` returns one row per symbol in the SNAPSHOT
schema. Nothing here touches files or clocks: the ingestion service feeds it and writes the result.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel import schema
from mintel.analytics import _stream_kernel as _kernel
from mintel.analytics.keys import DEFAULT_TZ, Values, is_intraday, to_utc_ns
from mintel.analytics.streaming import StreamingIndicators

DAY_NS = 86_400 * 10**9
_NAT = np.iinfo(np.int64).min


def session_bars(universe: pd.DataFrame | None, interval: str) -> int | None:
    """Bars of ``interval`` in a session of the universe's exchange (the longest of the calendar's last
    ten), for intraday minute/hour intervals; None when unknown."""
    unit = {"m": 1, "h": 60}.get(interval[-1:]) if interval[:-1].isdigit() else None
    if not unit or universe is None or "exchange" not in universe or not len(universe):
        return None
    try:
        from mintel.calendar import exchange_calendar

        cal = exchange_calendar(str(universe["exchange"].mode().iloc[0]))
        minutes = max(len(cal.session_minutes(s)) for s in cal.sessions[-10:])
    except Exception:  # noqa: BLE001 - an unknown exchange only loses the hint
        return None
    step = int(interval[:-1]) * unit
    return -(-minutes // step)


class Applied(NamedTuple):
    """Bars a ``LiveState`` applied, in the order it applied them (ts, then state row), as arrays."""

    index: np.ndarray  # positions in the bars given
    symbols: np.ndarray  # object
    ts: np.ndarray  # int64 ns, UTC
    rows: np.ndarray  # state rows
    columns: dict[str, np.ndarray]  # open, high, low, close, volume and the indicator values
    matrix: np.ndarray | None = None  # the live case: (bars, ``LiveState.matrix_columns``), ``columns`` its views


_BAR = ("open", "high", "low", "close", "volume")


def _tk():
    from mintel.analytics import _table_kernel  # numba: loaded with the first snapshot, not on import

    return _table_kernel


class LiveState:
    """Per symbol: the session's open/high/low/volume, the last bar, the previous session's close, indicators."""

    def __init__(self, universe: pd.DataFrame | None = None, interval: str = "1m", tz: str = DEFAULT_TZ) -> None:
        self.interval = interval
        self.intraday = is_intraday(interval)
        self.indicators = StreamingIndicators((), interval, tz, extra=("sma_200",), slots=session_bars(universe, interval))
        self.meta = universe.drop_duplicates("symbol").set_index("symbol") if universe is not None and len(universe) else None
        self._names, self._source_values = Values(), Values()  # a cycle's symbol and source columns as object arrays
        self.sources: list[str] = []  # the source names seen, in order: ``source`` holds positions in it
        self._source_codes: tuple[np.ndarray, np.ndarray] | None = None  # (source values, their codes), the last given
        self._distinct_of: np.ndarray | None = None  # the last symbols array found to hold each symbol once
        self._cap = 0
        self._alloc(0)
        if universe is not None and len(universe):
            self._rows(universe["symbol"].to_numpy(dtype=object))

    # ------------------------------------------------------------------ state

    _FLOATS = ("open", "high", "low", "close", "prev_close", "day_volume", "volume")

    def _alloc(self, cap: int) -> None:
        """(Re)allocate the per-symbol arrays for ``cap`` symbols, keeping what they hold."""
        old = self._cap

        def grown(name, fill, dtype):
            a = np.full(cap, fill, dtype=dtype)
            if old:
                a[:old] = getattr(self, name)
            return a

        self.session = grown("session", _NAT, np.int64)  # session key: UTC day (intraday) or the bar's ts (daily)
        self.ts = grown("ts", _NAT, np.int64)
        for name in self._FLOATS:
            setattr(self, name, grown(name, np.nan, np.float64))
        self.source = grown("source", -1, np.int32)  # position in self.sources; -1: none
        self._cap = cap

    def _codes(self, sources: np.ndarray) -> np.ndarray:
        """Positions of ``sources`` in ``self.sources`` (added when new; -1 for a missing one), remembered for
        the array ``Values`` hands back again while the column is unchanged."""
        last = self._source_codes
        if last is not None and last[0] is sources:
            return last[1]
        local, uniques = pd.factorize(sources)  # -1 for a missing source
        known = {s: i for i, s in enumerate(self.sources)}
        for u in map(str, uniques):
            if u not in known:
                known[u] = len(self.sources)
                self.sources.append(u)
        codes = np.append(np.array([known[str(u)] for u in uniques], np.int32), np.int32(-1))[local]
        if not sources.flags.writeable:  # Values' array: the same object comes back while the column is unchanged
            self._source_codes = sources, codes
        return codes

    def _rows(self, symbols: np.ndarray) -> np.ndarray:
        rows = self.indicators.rows(symbols)
        need = self.indicators.symbols.size
        if need > self._cap:
            self._alloc(max(need, 2 * self._cap))
        return rows

    @property
    def symbols(self) -> pd.Index:
        return self.indicators.symbols

    # ------------------------------------------------------------------ updates

    def update(self, bars: pd.DataFrame) -> pd.DataFrame | None:
        """Fold in valid canonical bars (any symbols and order; several bars per symbol are applied in ts order).

        Returns the applied bars with their indicator values (the live case, one bar time with each symbol
        once: in the order given; else sorted by ts, then state row), which is what the live detectors'
        window keeps. ``apply`` does the same and returns arrays.
        """
        applied = self.apply(bars)
        if applied is None:
            return None
        enriched = bars.iloc[applied.index].reset_index(drop=True)
        values = pd.DataFrame({c: applied.columns[c] for c in self.indicators.columns}, copy=False)
        return pd.concat([enriched.drop(columns=values.columns, errors="ignore"), values], axis=1)

    def apply(self, bars: pd.DataFrame) -> Applied | None:
        """``update`` without the frame: the applied bars as arrays (None when nothing was applied)."""
        if bars.empty:
            return None
        ts_all = to_utc_ns(bars["ts"])
        names = self._names(bars["symbol"])
        rows_all = self._rows(names)
        cols = {c: bars[c].to_numpy(dtype=np.float64) for c in _BAR}
        src = self._codes(self._source_values(bars["source"])) if "source" in bars else np.full(len(bars), -1, np.int32)
        one = len(ts_all) and (ts_all == ts_all[0]).all()  # the live case: one bar time
        if one and self._distinct(names, rows_all):  # each symbol once: applied in the order given
            matrix = np.empty((len(rows_all), len(self.matrix_columns)))  # bar and indicator values side by side
            for j, c in enumerate(_BAR):
                matrix[:, j] = cols[c]
            out = self._apply(rows_all, ts_all, cols, src, matrix[:, len(_BAR):])
            if out is None:
                return None
            return Applied(np.arange(len(rows_all)), names, ts_all, rows_all,
                           {c: matrix[:, j] for j, c in enumerate(self.matrix_columns)}, matrix)
        if one:
            order = np.argsort(rows_all, kind="stable")
            bounds = np.array([0, len(order)])
        else:
            order = np.lexsort((rows_all, ts_all))
            ts_sorted = ts_all[order]
            bounds = np.flatnonzero(np.r_[True, ts_sorted[1:] != ts_sorted[:-1], True])
        applied, values = [], []
        for a, b in zip(bounds[:-1], bounds[1:]):
            idx = order[a:b]
            rows = rows_all[idx]
            if (rows[1:] == rows[:-1]).any():  # the same bar twice in a batch (rows sorted): the last one wins
                keep = len(rows) - 1 - np.unique(rows[::-1], return_index=True)[1]
                idx, rows = idx[keep], rows[keep]
            out = self._apply(rows, ts_all[idx], {c: v[idx] for c, v in cols.items()}, src[idx])
            applied.append(idx)
            values.append(out)
        if values[0] is None:
            return None
        idx = applied[0] if len(applied) == 1 else np.concatenate(applied)
        columns = {c: v[idx] for c, v in cols.items()}
        for c in values[0]:
            columns[c] = values[0][c] if len(values) == 1 else np.concatenate([v[c] for v in values])
        return Applied(idx, names[idx], ts_all[idx], rows_all[idx], columns)

    def _distinct(self, names: np.ndarray, rows: np.ndarray) -> bool:
        """Is each state row given once? (Rows are a symbol's for good, so this holds for as long as ``Values``
        hands back the same names array: remembered for it.)"""
        if self._distinct_of is names:
            return True
        seen = np.zeros(self.symbols.size, bool)
        seen[rows] = True
        ok = np.count_nonzero(seen) == len(rows)
        if ok and not names.flags.writeable:
            self._distinct_of = names
        return bool(ok)

    @property
    def matrix_columns(self) -> tuple[str, ...]:
        """The columns of ``Applied.matrix``: the bar's, then the indicators'."""
        return (*_BAR, *self.indicators.columns)

    def _apply(self, rows, ts, bar, source, out=None) -> dict[str, np.ndarray] | None:
        _kernel.day_figures(rows, ts, *(bar[c] for c in _BAR), self.intraday, DAY_NS,
                            self.session, self.ts, self.open, self.high, self.low, self.close, self.prev_close,
                            self.day_volume, self.volume)
        self.source[rows] = source
        return self.indicators.update(rows, ts, bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"], out=out,
                                      checked=True)  # apply gives each of its rows once

    @classmethod
    def from_history(cls, bars: pd.DataFrame, universe: pd.DataFrame | None = None, interval: str = "1m", tz: str = DEFAULT_TZ) -> "LiveState":
        """The state after the given history, as if it had been streamed bar by bar."""
        state = cls(universe, interval, tz)
        if len(bars):
            state.indicators = StreamingIndicators.from_history(bars, interval, tz, extra=("sma_200",), symbols=list(state.symbols) or None)
            state._rows(bars["symbol"].to_numpy(dtype=object))
            state._fold_day_figures(bars)
        return state

    def _fold_day_figures(self, bars: pd.DataFrame) -> None:
        """Day figures from history without touching the indicator state (already warmed up)."""
        indicators, self.indicators = self.indicators, _NoIndicators(self.indicators)
        try:
            keep = bars.sort_values(["symbol", "ts"], kind="stable")
            if self.intraday:  # only the last two sessions matter for day figures
                sess = to_utc_ns(keep["ts"]) // DAY_NS
                last = pd.Series(sess).groupby(keep["symbol"].to_numpy()).transform("max").to_numpy()
                keep = keep[sess >= last - 7]
            self.update(keep)
        finally:
            self.indicators = indicators

    # ------------------------------------------------------------------ output

    def snapshot(self, now: pd.Timestamp | None = None) -> pa.Table:
        """One row per symbol that has a bar, in the SNAPSHOT schema, sorted by symbol."""
        return self.snapshot_table(*self.snapshot_columns(now))

    def snapshot_columns(self, now: pd.Timestamp | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(symbols, SNAPSHOT columns as arrays) of the symbols that have a bar, sorted by symbol; the
        caller may add columns (score, signals) before ``snapshot_table``."""
        n = self.symbols.size
        have = self.ts[:n] != _NAT
        names = np.asarray(self.symbols, dtype=object)
        by_name = self.__dict__.get("_by_name")
        if by_name is None or len(by_name) != n:  # symbols are only ever added: sorted once per new set
            by_name = self.__dict__["_by_name"] = np.argsort(names, kind="stable")
        sel = by_name if have.all() else by_name[have[by_name]]
        symbols, fixed = self._fixed_columns(names, sel)
        cols: dict[str, np.ndarray | pa.Array] = dict(fixed)
        price = self.close[sel]
        base = np.where(np.isfinite(self.prev_close[sel]), self.prev_close[sel], self.open[sel])
        cols.update(
            ts=self.ts[sel],
            price=price, open=self.open[sel], high=self.high[sel], low=self.low[sel],
            prev_close=self.prev_close[sel], change_pct=(price / base - 1.0) * 100.0,
            volume=self.volume[sel], day_volume=self.day_volume[sel], source=self._source_array(self.source[sel]),
        )
        gathered = _tk().gather_t(self.indicators.latest_matrix(), sel)  # (indicators, rows), each column contiguous
        for j, c in enumerate(self.indicators.columns):
            cols[c] = gathered[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            width = cols["bb_upper"] - cols["bb_lower"]
            cols["bb_pct_b"] = np.where(width > 0, (price - cols["bb_lower"]) / width, np.nan)
            cols["dist_sma_50_pct"] = (price / cols["sma_50"] - 1.0) * 100.0
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        cols["updated_at"] = np.full(len(sel), pd.Timestamp(now).as_unit("ns").value, np.int64)
        return symbols, cols

    def _source_array(self, codes: np.ndarray) -> pa.Array:
        """The source names of ``codes`` (-1: null) as an Arrow string array, through a dictionary; the last
        one is reused while the codes and the names are the same (sources rarely change between cycles)."""
        last = self.__dict__.get("_source_array_of")
        if last is not None and len(last[0]) == len(codes) and last[1] == len(self.sources) and (last[0] == codes).all():
            return last[2]
        mask = codes < 0
        indices = pa.array(codes, pa.int32(), mask=mask if mask.any() else None)
        array = pa.DictionaryArray.from_arrays(indices, pa.array(self.sources, pa.string())).cast(pa.string())
        self.__dict__["_source_array_of"] = codes.copy(), len(self.sources), array
        return array

    def _fixed_columns(self, names: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, dict[str, pa.Array]]:
        """(``names[sel]``, read-only; the snapshot's columns that only change with the symbols: symbol, name,
        sector, interval, as Arrow arrays), kept while the symbols stay the same (the same ``names`` and ``sel``
        objects, or equal symbols): converting strings is most of a table's cost."""
        cached = self.__dict__.get("_fixed")
        if cached is not None and cached[0] is names and cached[1] is sel:
            return cached[2], cached[3]
        symbols = names[sel]
        symbols.flags.writeable = False
        if cached is None or len(cached[2]) != len(symbols) or not (cached[2] == symbols).all():
            cols = {"symbol": pa.array(symbols, pa.string()),
                    "interval": pa.array(np.full(len(symbols), self.interval, object), pa.string())}
            for c in ("name", "sector"):
                if self.meta is not None and c in self.meta:
                    cols[c] = pa.array(self.meta[c].reindex(symbols).astype(object).to_numpy(), pa.string(), from_pandas=True)
        else:
            symbols, cols = cached[2], cached[3]
        self.__dict__["_fixed"] = names, sel, symbols, cols
        return symbols, cols

    @staticmethod
    def snapshot_table(symbols: np.ndarray, columns: dict[str, np.ndarray]) -> pa.Table:
        """The SNAPSHOT table of ``snapshot_columns`` (ts columns as UTC ns; missing columns null; Arrow
        arrays taken as they are; NaN in a float column is null). Contiguous float64 arrays become the
        table's buffers without a copy: the caller does not change them afterwards."""
        n = len(symbols)
        arrays: list[pa.Array | None] = []
        floats = []  # (position, values) of the float64 columns: their nulls found in one pass
        for field in schema.SNAPSHOT:
            v = columns.get(field.name, symbols if field.name == "symbol" else None)
            if isinstance(v, pa.Array):
                arrays.append(v)
            elif v is None:
                arrays.append(pa.nulls(n, field.type))
            elif pa.types.is_timestamp(field.type):
                arrays.append(pa.Array.from_buffers(field.type, n, [None, pa.py_buffer(np.ascontiguousarray(v, np.int64))]))
            elif pa.types.is_string(field.type):
                arrays.append(pa.array(v, pa.string(), from_pandas=True))
            elif field.type == pa.float64() and isinstance(v, np.ndarray) and v.dtype == np.float64:
                floats.append((len(arrays), v))
                arrays.append(None)
            else:
                arrays.append(pa.array(v, field.type, from_pandas=True))
        if floats:
            data = tuple(np.ascontiguousarray(v) for _, v in floats)  # Arrow reads each array as it is
            bits, whole = _tk().validity(data)
            for j, (at, _) in enumerate(floats):
                arrays[at] = pa.Array.from_buffers(pa.float64(), n, [None if whole[j] else pa.py_buffer(bits[j]),
                                                                     pa.py_buffer(data[j])])
        return pa.Table.from_arrays(arrays, schema=schema.SNAPSHOT)


class _NoIndicators:
    """Stands in for the indicator state while day figures are rebuilt from history."""

    def __init__(self, real: StreamingIndicators) -> None:
        self._real = real

    def rows(self, symbols):
        return self._real.rows(symbols)

    @property
    def symbols(self):
        return self._real.symbols

    @property
    def columns(self):
        return self._real.columns

    def update(self, *args, **kwargs):
        return None

