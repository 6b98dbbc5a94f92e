"""Replay: plays recorded bars from the lake or a CSV as if they were arriving live.

A ``ReplayClock`` is a cursor over the distinct bar times of the recording: ``stepped`` releases
bars only when told (``advance(1)`` = one more bar time, as the simulator's clock moves one
minute), ``wall`` releases ``speed`` bar times per wall-clock interval. ``fetch_bars`` returns
the released bars (``start <= ts <= end``); daily bars can be asked of a 1m recording and are
built from the released minutes; ``fetch_quotes`` derives each symbol's quote from its latest
released bar and the session so far. Gaps between sessions cost no wall time.

Settings options: ``source`` (a lake directory or a CSV of canonical bars: symbol, ts, open,
high, low, close, volume), ``interval`` ("1m"), ``start`` (bars before it are released at once),
``mode`` ("stepped" | "wall"), ``speed`` (1.0), ``from``/``to`` (what to load from a lake).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from mintel import schema
from mintel.config import ProviderSettings
from mintel.errors import ConfigError, DataError, SymbolNotFound
from mintel.providers.base import Capabilities, RateLimit

log = logging.getLogger(__name__)

NAME = "replay"
REQUIRED = ("symbol", "ts", "open", "high", "low", "close", "volume")


class ReplayClock:
    """A cursor over sorted bar times: how many of them have been released (``position``)."""

    MODES = ("stepped", "wall")

    def __init__(self, times: np.ndarray, interval: str = "1m", *, start: Any = None, mode: str = "stepped",
                 speed: float = 1.0, time_fn: Callable[[], float] = time.monotonic) -> None:
        if mode not in self.MODES:
            raise ConfigError(f"replay clock mode {mode!r}: unknown (known: {', '.join(self.MODES)})")
        if not speed > 0:
            raise ConfigError(f"replay clock speed {speed!r}: must be > 0")
        self.times = np.asarray(times, dtype="int64")
        self.interval = interval
        self.length = _length(interval)
        self.mode = mode
        self.speed = float(speed)
        self._time_fn = time_fn
        self._t0 = time_fn()
        self._offset = 0
        if start is not None:
            self._offset = int(np.searchsorted(self.times, _utc(start).value, side="left"))

    @property
    def position(self) -> int:
        """Bar times released so far (0 .. len(times))."""
        k = self._offset
        if self.mode == "wall":
            k += int(self.speed * (self._time_fn() - self._t0) / self.length.total_seconds())
        return min(k, len(self.times))

    @property
    def cursor(self) -> pd.Timestamp | None:
        """Open of the latest released bar, None before the first."""
        k = self.position
        return pd.Timestamp(int(self.times[k - 1]), tz="UTC") if k else None

    @property
    def now(self) -> pd.Timestamp:
        """The replayed market's time: the close of the latest released bar (the first open before any)."""
        c = self.cursor
        if c is None:
            return pd.Timestamp(int(self.times[0]), tz="UTC") if len(self.times) else pd.Timestamp(0, tz="UTC")
        return c + self.length

    @property
    def done(self) -> bool:
        return self.position >= len(self.times)

    def advance(self, minutes: float = 1) -> pd.Timestamp:
        """Release ``minutes`` more bar times (the name matches the simulator's clock)."""
        if minutes < 0:
            raise DataError(f"replay clock: cannot go back {minutes} steps")
        self._offset += int(minutes)
        return self.now

    def advance_to(self, ts: Any) -> pd.Timestamp:
        """Release every bar that opens before ``ts``; never backwards."""
        target = int(np.searchsorted(self.times, _utc(ts).value, side="left"))
        self._offset = max(self._offset, target - (self.position - self._offset))
        return self.now

    def __repr__(self) -> str:
        return f"ReplayClock({self.position}/{len(self.times)} bars, mode={self.mode}, cursor={self.cursor})"


class ReplayProvider:
    """Recorded bars behind the Provider protocol, released by a ``ReplayClock``.

    ``bars`` (a canonical bars frame) or ``lake`` may be given directly; otherwise
    ``settings.options["source"]`` names a lake directory or a CSV file.
    """

    name = NAME
    rate_limit = RateLimit()
    rate_unit = "requests"

    def __init__(self, settings: ProviderSettings | None = None, *, universe: pd.DataFrame | None = None,
                 client: Any = None, bars: pd.DataFrame | None = None, lake: Any = None,
                 time_fn: Callable[[], float] = time.monotonic) -> None:
        settings = settings or ProviderSettings(name=NAME)
        options = dict(settings.options or {})
        self.interval = str(options.get("interval", "1m"))
        symbols = list(universe["symbol"].astype(str)) if universe is not None else None
        if bars is None:
            bars = _load(options, lake, self.interval, symbols)
        elif symbols is not None:
            bars = bars[bars["symbol"].isin(symbols)]
        self.bars = _canonical(bars, self.interval)
        times = np.unique(pd.DatetimeIndex(self.bars["ts"]).as_unit("ns").asi8)
        self.clock = ReplayClock(times, self.interval, start=options.get("start"), mode=str(options.get("mode", "stepped")),
                                 speed=float(options.get("speed", 1.0)), time_fn=time_fn)
        self.known = set(self.bars["symbol"].unique())
        intervals = (self.interval, "1d") if self.interval != "1d" else ("1d",)
        self.capabilities = Capabilities(quotes=True, intraday_bars=self.interval != "1d", daily_bars=True,
                                         symbols_per_request=10_000, intervals=intervals)
        log.info("replay: %d bars of %d symbols, %s to %s", len(self.bars), len(self.known),
                 self.bars["ts"].min() if len(self.bars) else None, self.bars["ts"].max() if len(self.bars) else None)

    def ticker(self, symbol: str, exchange: str | None = None) -> str:
        return symbol

    def cost(self, symbols: list[str], kind: str = "bars") -> int:
        return 0

    def _released(self, symbols: list[str]) -> pd.DataFrame:
        known = [s for s in symbols if s in self.known]
        if len(known) < len(symbols) and not known:
            unknown = [s for s in symbols if s not in self.known]
            raise SymbolNotFound(f"replay: unknown symbols {', '.join(unknown[:10])}", provider=NAME, symbols=unknown)
        cursor = self.clock.cursor
        if cursor is None:
            return self.bars.iloc[:0]
        b = self.bars
        return b[b["symbol"].isin(known).to_numpy() & (b["ts"] <= cursor).to_numpy()]

    async def fetch_bars(self, symbols: list[str], interval: str, start: pd.Timestamp | None = None,
                         end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Released bars of ``symbols`` with ``start <= ts <= end``, sorted by (symbol, ts)."""
        bars = self._released(symbols)
        if interval != self.interval:
            if interval != "1d":
                raise DataError(f"interval {interval!r}: this replay has {self.interval} bars (and 1d built from them)")
            bars = _daily(bars)
        if start is not None:
            bars = bars[(bars["ts"] >= _utc(start)).to_numpy()]
        if end is not None:
            bars = bars[(bars["ts"] <= _utc(end)).to_numpy()]
        return bars.assign(ingested_at=self.clock.now).reset_index(drop=True)

    async def fetch_quotes(self, symbols: list[str]) -> pd.DataFrame:
        """Each symbol's quote from its latest released bar: price = close, the session's open, high,
        low and volume so far, prev_close = the previous session's last close; no bid/ask."""
        bars = self._released(symbols)
        if bars.empty:
            return schema.empty_frame("quotes")
        day = _daily(bars)
        last, prev = day.groupby("symbol").tail(1), day.groupby("symbol").nth(-2)
        latest = bars.groupby("symbol").tail(1).set_index("symbol")
        out = pd.DataFrame({
            "symbol": last["symbol"].to_numpy(),
            "ts": (latest.loc[last["symbol"], "ts"] + _length(self.interval)).to_numpy(),
            "price": last["close"].to_numpy(), "open": last["open"].to_numpy(), "high": last["high"].to_numpy(),
            "low": last["low"].to_numpy(),
            "prev_close": prev.set_index("symbol")["close"].reindex(last["symbol"]).to_numpy(),
            "day_volume": last["volume"].to_numpy(), "bid": np.nan, "ask": np.nan, "source": NAME,
            "ingested_at": self.clock.now,
        })
        return out.astype(schema.empty_frame("quotes").dtypes.to_dict()).reset_index(drop=True)

    async def aclose(self) -> None:
        return None


def _daily(bars: pd.DataFrame) -> pd.DataFrame:
    """Daily bars (session date 00:00 UTC) from intraday bars; the UTC date is the session date for
    NSE and US sessions, which both lie within one UTC day."""
    if bars.empty or (bars["interval"] == "1d").all():
        return bars
    b = bars.assign(day=bars["ts"].dt.floor("D"))
    g = b.groupby(["symbol", "day"], sort=True)
    out = g.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
                volume=("volume", "sum"), quality=("quality", "min")).reset_index().rename(columns={"day": "ts"})
    out["interval"], out["source"] = "1d", NAME
    out["ingested_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    return out[list(schema.empty_frame("bars").columns)].astype(schema.empty_frame("bars").dtypes.to_dict())


def _load(options: dict, lake: Any, interval: str, symbols: list[str] | None) -> pd.DataFrame:
    source = options.get("source")
    if lake is None and source is None:
        raise ConfigError("replay: give a source (a lake directory or a CSV of bars) in [provider.replay] source")
    if lake is None and Path(str(source)).is_file():
        return _read_csv(Path(str(source)), interval, symbols)
    if lake is None:
        from mintel.lake import Lake

        if not Path(str(source)).is_dir():
            raise ConfigError(f"replay source {source}: no such file or lake directory")
        lake = Lake(source)
    return lake.read_bars(symbols, interval, start=options.get("from"), end=options.get("to"))


def _read_csv(path: Path, interval: str, symbols: list[str] | None) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: column(s) {', '.join(missing)} missing (need {', '.join(REQUIRED)})")
    if "interval" in raw:
        raw = raw[raw["interval"].astype(str) == interval]
    if symbols is not None:
        raw = raw[raw["symbol"].astype(str).isin(symbols)]
    ts = pd.to_datetime(raw["ts"], utc=True, errors="coerce", format="mixed")
    if ts.isna().any():
        raise DataError(f"{path}: {int(ts.isna().sum())} unreadable timestamps in column 'ts'")
    return raw.assign(ts=ts)


def _canonical(bars: pd.DataFrame, interval: str) -> pd.DataFrame:
    """The recording in the canonical bar columns and dtypes, sorted by (ts, symbol)."""
    empty = schema.empty_frame("bars")
    b = bars.copy()
    b["interval"] = interval
    b["source"] = NAME
    if "quality" not in b:
        b["quality"] = np.float32(1.0)
    b["quality"] = b["quality"].fillna(1.0)
    b["ingested_at"] = pd.Series(pd.NaT, index=b.index, dtype="datetime64[ns, UTC]")
    b["ts"] = pd.to_datetime(b["ts"], utc=True)
    b = b[list(empty.columns)].astype(empty.dtypes.to_dict())
    return b.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)


def _length(interval: str) -> pd.Timedelta:
    return pd.Timedelta(days=1) if interval == "1d" else pd.Timedelta(interval.replace("m", "min").replace("1h", "60min"))


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
