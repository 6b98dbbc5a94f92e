"""Quote snapshots -> 1-minute bars (any intraday interval), vectorized over the universe.

Each quote (schema.QUOTES: ``symbol``, ``ts``, ``price``, cumulative ``day_volume``) lands in the bar
of the minute holding its ``ts``. Open is the price of the earliest quote in the minute, close of the
latest (by ``ts``, so quotes out of order within a minute are fine), high/low the extremes of the
quotes seen: snapshots miss what traded between polls, hence ``quality`` 0.75.

A bar is complete once a later quote of the same symbol is at least ``lateness_s`` past the bar's end
(or ``now`` is, when given). Completion is final: a quote arriving for a minute already emitted is
late and changes nothing (counted in ``late``), so a bar the lake has stored is never contradicted.

Volume is what the cumulative day volume rose by during the bar: its highest ``day_volume`` minus the
highest of the earlier bars of the session, never negative. A cumulative volume that goes down is a
provider correction: it adds 0, is logged and counted in ``corrections``, and the running maximum
stays, so the session's bars still add up to its highest cumulative volume. A new session (the
UTC date of ``ts - session_offset``) starts from 0. The first session a symbol is seen in may be
joined mid-way (``mid_session_start``): then its first bar only counts the rise seen within it, not
the whole day so far.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mintel import schema
from mintel.errors import DataError

log = logging.getLogger(__name__)

QUOTE_BAR_QUALITY = np.float32(0.75)
_DAY_NS = 86_400 * 10**9
_NONE = np.iinfo(np.int64).min  # "no minute emitted yet"

_PARTS = ["symbol", "minute", "session", "open", "high", "low", "close", "open_ts", "close_ts", "vmax", "vmin", "n", "source"]


class BarBuilder:
    """Builds ``interval`` bars from quote snapshots; ``add`` returns the bars completed by a batch.

    ``lateness_s``: how long after a bar's end quotes for it are still awaited. ``session_offset``: the
    UTC time sessions are split at (0 suits exchanges whose sessions do not cross UTC midnight).
    """

    def __init__(self, interval: str = "1m", *, lateness_s: float = 0.0, session_offset: pd.Timedelta | str = "0s",
                 mid_session_start: bool = True) -> None:
        step = pd.Timedelta(interval.replace("min", "m").replace("m", "min")) if interval.endswith(("m", "min")) else None
        if step is None and interval.endswith("h"):
            step = pd.Timedelta(interval)
        if step is None or not pd.Timedelta(0) < step < pd.Timedelta(days=1) or (pd.Timedelta(days=1) % step):
            raise DataError(f"interval {interval!r}: bars from quotes need an intraday interval that divides a day (1m, 5m, 1h ...)")
        self.interval = interval
        self._step = step.value
        self._lateness = int(lateness_s * 1e9)
        self._offset = pd.Timedelta(session_offset).value
        self.mid_session_start = mid_session_start
        self._forming = pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in _PARTS})
        # Per symbol: newest quote ts, newest bar emitted, its session, running max of day volume.
        self._symbols = pd.DataFrame({"last_ts": pd.Series(dtype="int64"), "emitted": pd.Series(dtype="int64"),
                                      "session": pd.Series(dtype="float64"), "run_max": pd.Series(dtype="float64")})
        self.late = 0  # quotes for bars already emitted, ignored
        self.corrections = 0  # bars whose cumulative volume went down
        self.dropped = 0  # quotes without a symbol, a time or a positive price

    # -- public

    def add(self, quotes: pd.DataFrame, now: pd.Timestamp | None = None) -> pd.DataFrame:
        """Take a batch of quotes (any order); return the bars it completed (schema.BARS columns)."""
        parts = self._parts(quotes)
        if len(parts):
            last = parts.groupby("symbol", sort=False)["close_ts"].max()
            known = self._symbols["last_ts"].reindex(last.index)
            newest = np.fmax(last.to_numpy(np.float64), known.to_numpy(np.float64))
            self._symbols = _upsert(self._symbols, last.index, last_ts=newest.astype(np.int64))
            self._forming = _aggregate(pd.concat([self._forming, parts], ignore_index=True) if len(self._forming) else parts)
        return self._complete(now)

    def forming(self) -> pd.DataFrame:
        """The bars still open, as they stand (volume so far), in schema.BARS columns."""
        return self._bars(self._with_volume(self._forming, update=False))

    def flush(self) -> pd.DataFrame:
        """Complete every open bar (end of the session, or shutting down) and return them."""
        done, self._forming = self._forming, self._forming.iloc[0:0]
        return self._bars(self._with_volume(done, update=True))

    # -- steps

    def _parts(self, quotes: pd.DataFrame) -> pd.DataFrame:
        """Valid, not-late quotes as one-quote partial bars."""
        for c in ("symbol", "ts", "price"):
            if c not in quotes:
                raise DataError(f"quotes: column '{c}' missing")
        ts = pd.to_datetime(quotes["ts"], utc=True, errors="coerce")
        price = pd.to_numeric(quotes["price"], errors="coerce").to_numpy(np.float64)
        symbol = quotes["symbol"]
        ok = ts.notna().to_numpy() & symbol.notna().to_numpy() & np.isfinite(price) & (price > 0)
        if not ok.all():
            self.dropped += int((~ok).sum())
            log.warning("bar builder: %d quotes without a symbol, a time or a positive price dropped", int((~ok).sum()))
        t = pd.DatetimeIndex(ts).as_unit("ns").asi8
        vol = (pd.to_numeric(quotes["day_volume"], errors="coerce").to_numpy(np.float64)
               if "day_volume" in quotes else np.full(len(t), np.nan))
        source = quotes["source"].to_numpy(dtype=object) if "source" in quotes else np.full(len(t), None, dtype=object)
        sym = symbol.to_numpy(dtype=object)
        minute = t - np.mod(t, self._step)
        emitted = self._symbols["emitted"].reindex(sym[ok].astype(str)).to_numpy(np.float64)
        late = np.zeros(len(t), bool)
        late[ok] = minute[ok] <= np.nan_to_num(emitted, nan=float(_NONE))
        if late.any():
            self.late += int(late.sum())
            log.info("bar builder: %d late quotes for bars already emitted ignored (e.g. %s at %s)", int(late.sum()),
                     sym[late][0], pd.Timestamp(int(t[late][0]), tz="UTC"))
        keep = ok & ~late
        t, minute, sym, vol, source, price = t[keep], minute[keep], sym[keep].astype(str), vol[keep], source[keep], price[keep]
        return pd.DataFrame({
            "symbol": sym, "minute": minute, "session": (t - self._offset) // _DAY_NS, "open": price, "high": price,
            "low": price, "close": price, "open_ts": t, "close_ts": t, "vmax": vol, "vmin": vol,
            "n": np.ones(len(t), np.int64), "source": source,
        })

    def _complete(self, now: pd.Timestamp | None) -> pd.DataFrame:
        f = self._forming
        if f.empty:
            return self._bars(f)
        watermark = self._symbols["last_ts"].reindex(f["symbol"]).to_numpy(np.int64)
        if now is not None:
            now = pd.Timestamp(now)
            watermark = np.maximum(watermark, (now.tz_convert("UTC") if now.tzinfo else now.tz_localize("UTC")).value)
        done = (f["minute"].to_numpy() + self._step + self._lateness) <= watermark
        if not done.any():
            return self._bars(f.iloc[0:0])
        self._forming = f.loc[~done].reset_index(drop=True)
        return self._bars(self._with_volume(f.loc[done], update=True))

    def _with_volume(self, rows: pd.DataFrame, *, update: bool) -> pd.DataFrame:
        """``rows`` (whole bars, sorted by symbol and minute) with their volume; ``update`` moves the state on."""
        if rows.empty:
            return rows.assign(volume=pd.Series(dtype="float64"))
        rows = rows.sort_values(["symbol", "minute"], kind="stable").reset_index(drop=True)
        state = self._symbols.reindex(rows["symbol"])
        seen = state["session"].notna().to_numpy()
        same_session = seen & (state["session"].to_numpy(np.float64) == rows["session"].to_numpy(np.float64))
        vmax = rows["vmax"].to_numpy(np.float64)
        observed = rows["vmin"].to_numpy(np.float64) if self.mid_session_start else np.zeros(len(rows))
        # Where a (symbol, session) run starts, the day volume already counted: the running max when the
        # session continues, 0 on a new session, the first quote's when joining mid-session.
        start_base = np.where(same_session, state["run_max"].to_numpy(np.float64), np.where(seen, 0.0, observed))
        keys = [rows["symbol"], rows["session"]]
        first = ~pd.DataFrame({"s": rows["symbol"], "d": rows["session"]}).duplicated().to_numpy()
        base = pd.Series(np.where(first, start_base, np.nan)).groupby(keys, sort=False).transform("first").to_numpy()
        running = pd.Series(np.nan_to_num(vmax, nan=-np.inf)).groupby(keys, sort=False).cummax().to_numpy()
        before = np.fmax(base, pd.Series(running).groupby(keys, sort=False).shift(1).to_numpy())
        before = np.nan_to_num(before, nan=0.0)
        with np.errstate(invalid="ignore"):
            volume = np.where(np.isfinite(vmax), np.maximum(vmax - before, 0.0), 0.0)
            corrected = np.isfinite(vmax) & (rows["vmin"].to_numpy(np.float64) < before)
        if update:
            if corrected.any():
                self.corrections += int(corrected.sum())
                i = int(np.flatnonzero(corrected)[0])
                log.warning("bar builder: cumulative day volume went down in %d bars (e.g. %s at %s: %g after %g); "
                            "counted as 0", int(corrected.sum()), rows["symbol"].iat[i],
                            pd.Timestamp(int(rows["minute"].iat[i]), tz="UTC"), rows["vmin"].iat[i], before[i])
            last = ~rows["symbol"].duplicated(keep="last").to_numpy()
            run_max = np.fmax(before, np.nan_to_num(vmax, nan=-np.inf))[last]
            self._symbols = _upsert(self._symbols, pd.Index(rows["symbol"].to_numpy()[last]),
                                    emitted=rows["minute"].to_numpy()[last], session=rows["session"].to_numpy()[last],
                                    run_max=run_max)
        return rows.assign(volume=volume)

    def _bars(self, rows: pd.DataFrame) -> pd.DataFrame:
        if "volume" not in rows:
            rows = rows.assign(volume=np.zeros(len(rows)))
        n = len(rows)
        return pd.DataFrame({
            "interval": pd.Series([self.interval] * n, dtype=object),
            "symbol": rows["symbol"].to_numpy(dtype=object),
            "ts": pd.to_datetime(rows["minute"].to_numpy(np.int64), utc=True),
            "open": rows["open"].to_numpy(np.float64), "high": rows["high"].to_numpy(np.float64),
            "low": rows["low"].to_numpy(np.float64), "close": rows["close"].to_numpy(np.float64),
            "volume": rows["volume"].to_numpy(np.float64),
            "source": rows["source"].to_numpy(dtype=object),
            "quality": np.full(n, QUOTE_BAR_QUALITY, dtype=np.float32),
            "ingested_at": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]"),
        })[[f.name for f in schema.BARS]]


def _aggregate(parts: pd.DataFrame) -> pd.DataFrame:
    """Partial bars of the same (symbol, minute) merged into one: open from the earliest quote, close from
    the latest (ties: the later row), extremes and quote counts combined."""
    by_open = parts.sort_values(["symbol", "minute", "open_ts"], kind="stable")
    g = by_open.groupby(["symbol", "minute"], sort=False)
    out = g.agg(session=("session", "first"), open=("open", "first"), open_ts=("open_ts", "first"),
                high=("high", "max"), low=("low", "min"), vmax=("vmax", "max"), vmin=("vmin", "min"), n=("n", "sum"))
    by_close = parts.sort_values(["symbol", "minute", "close_ts"], kind="stable")
    last = by_close.groupby(["symbol", "minute"], sort=False).agg(
        close=("close", "last"), close_ts=("close_ts", "last"), source=("source", "last"))
    out = out.join(last).reset_index()
    return out[_PARTS]


def _upsert(table: pd.DataFrame, index: pd.Index, **columns) -> pd.DataFrame:
    """``table`` with rows ``index`` set to ``columns`` (added when new), other columns kept."""
    new = index.difference(table.index)
    if len(new):
        add = pd.DataFrame({c: pd.Series(_NONE if table[c].dtype == np.int64 else np.nan, index=new, dtype=table[c].dtype)
                            for c in table.columns})
        table = pd.concat([table, add]) if len(table) else add
    for c, values in columns.items():
        table.loc[index, c] = values
    return table


def _dtype(column: str) -> str:
    return {"symbol": "object", "source": "object", "minute": "int64", "session": "int64", "open_ts": "int64",
            "close_ts": "int64", "n": "int64"}.get(column, "float64")
