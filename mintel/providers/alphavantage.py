"""Alpha Vantage: ``GET /query?function=…&symbol=…&apikey=…``, one symbol a request.

- ``TIME_SERIES_INTRADAY`` (``interval=1min``): ``"Time Series (1min)"`` keyed by
  ``"YYYY-MM-DD HH:MM:SS"`` in ``"Meta Data"["6. Time Zone"]``, values ``"1. open"`` … ``"5. volume"``
  as strings. The key is taken as the bar's open (as the chart providers stamp it).
- ``TIME_SERIES_DAILY``: ``"Time Series (Daily)"`` keyed by date (``"5. Time Zone"``).
- ``GLOBAL_QUOTE``: ``"Global Quote"`` with ``"05. price"``, ``"07. latest trading day"`` …; an
  unknown symbol answers an empty ``"Global Quote"``.
- Everything answers HTTP 200: a ``"Note"`` or ``"Information"`` about call frequency is
  RateLimited; ``"Error Message"`` is SymbolNotFound (or ProviderUnavailable when it is about the key).

NSE/BSE symbols are asked as ``SYMBOL.BSE`` (see ``mintel.universe.provider_ticker``). The key must
go in the query (the API has no header for it); it is redacted from every URL mintel shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pandas as pd

from mintel import calendar
from mintel.errors import DataError, MintelError, ProviderUnavailable, RateLimited, SymbolNotFound
from mintel.providers.base import Capabilities, RateLimit
from mintel.providers.http import (
    HttpProvider, bars_frame, completed, concat_bars, empty_bars, in_range, kinded, local_times, numbers, quotes_frame,
    raise_first, utc,
)

log = logging.getLogger(__name__)

NAME = "alphavantage"
BASE_URL = "https://www.alphavantage.co"
INTERVALS = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "60min", "1d": "daily"}
_FIELD_KEYS = {"open": "1. open", "high": "2. high", "low": "3. low", "close": "4. close", "volume": "5. volume"}
COMPACT_POINTS = 100  # "outputsize=compact" returns the latest 100 points


def check_payload(payload: Any, symbol: str) -> None:
    """Raise the mintel error an Alpha Vantage answer carries in its body (they all come with HTTP 200)."""
    if not isinstance(payload, dict):
        raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: unexpected payload {type(payload).__name__}",
                                         provider=NAME), "malformed")
    note = payload.get("Note") or payload.get("Information")
    if note:
        text = str(note)
        low = text.lower()
        if "premium" in low and "frequency" not in low and "rate limit" not in low:
            raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: {text[:160]}", provider=NAME), "auth")
        # "5 calls per minute and 500 calls per day" is the per-minute note; the daily one names only the day.
        per_minute = "per minute" in low or "frequency" in low or not ("per day" in low or "daily" in low)
        raise kinded(RateLimited(f"{NAME}: {symbol}: {text[:160]}", provider=NAME,
                                 retry_after_s=60.0 if per_minute else None), "rate_limited")
    message = payload.get("Error Message")
    if message:
        if "apikey" in str(message).lower():
            raise kinded(ProviderUnavailable(f"{NAME}: API key refused: {str(message)[:160]}", provider=NAME), "auth")
        raise kinded(SymbolNotFound(f"{NAME}: {symbol}: {str(message)[:160]}", provider=NAME, symbols=[symbol]),
                     "not_found")


def _series_key(payload: dict) -> str | None:
    return next((k for k in payload if k.startswith("Time Series")), None)


def parse_time_series(payload: Any, symbol: str, interval: str, *, ticker: str | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, rejected with ``reason``) for ``symbol`` from a TIME_SERIES_INTRADAY/DAILY answer.

    Keys are read in the meta data's time zone (``"6. Time Zone"`` intraday, ``"5. Time Zone"``
    daily); daily keys are session dates and become 00:00 UTC. A series of another ticker than
    ``ticker`` (``"2. Symbol"``) is ProviderUnavailable, never stored as ours.
    """
    check_payload(payload, symbol)
    key = _series_key(payload)
    series = payload.get(key) if key else None
    if not isinstance(series, dict) or not series:
        return empty_bars()
    meta = payload.get("Meta Data") if isinstance(payload.get("Meta Data"), dict) else {}
    said = str(next((v for k, v in meta.items() if str(k).endswith("Symbol")), "") or "").strip().upper()
    if ticker and said and said != ticker.strip().upper():
        raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: the answer is the series of {said}, not {ticker}",
                                         provider=NAME), "malformed")
    zone = next((v for k, v in meta.items() if k.endswith("Time Zone")), None) or "US/Eastern"
    stamps = sorted(series)
    rows = [series[k] if isinstance(series[k], dict) else {} for k in stamps]
    ts = local_times(stamps, zone, interval, NAME)
    cols = {f: numbers([r.get(k) for r in rows], len(rows)) for f, k in _FIELD_KEYS.items()}
    return bars_frame(interval, symbol, ts, {f: c[0] for f, c in cols.items()}, NAME,
                      present={f: c[1] for f, c in cols.items()})


def parse_global_quote(payload: Any, symbol: str, *, exchange: str | None = None,
                       now: pd.Timestamp | None = None) -> pd.DataFrame:
    """One canonical quote from a GLOBAL_QUOTE answer. Alpha Vantage gives only the latest trading
    day, so ``ts`` is that session's close (``exchange``'s calendar) or ``now``, whichever is earlier."""
    check_payload(payload, symbol)
    q = payload.get("Global Quote")
    if not isinstance(q, dict) or not q:
        raise kinded(SymbolNotFound(f"{NAME}: {symbol}: no quote (empty 'Global Quote')", provider=NAME,
                                    symbols=[symbol]), "not_found")
    day = local_times([q.get("07. latest trading day")], None, "1d", NAME)[0]  # NaT when unreadable
    ts = pd.NaT
    if not pd.isna(day):
        ts = day
        if exchange:
            try:
                ts = calendar.session_bounds(exchange, day.tz_localize(None))[1]
            except (MintelError, KeyError, ValueError):
                pass
        if now is not None:
            ts = min(ts, now)
    return quotes_frame([{
        "symbol": symbol, "ts": ts, "price": q.get("05. price"), "open": q.get("02. open"), "high": q.get("03. high"),
        "low": q.get("04. low"), "prev_close": q.get("08. previous close"), "day_volume": q.get("06. volume"),
    }], NAME)


class AlphaVantageProvider(HttpProvider):
    """Alpha Vantage behind the Provider protocol: one symbol a request, tight limits (free: 25 a day)."""

    name = NAME
    default_base_url = BASE_URL
    default_rate_limit = RateLimit(requests_per_minute=5, requests_per_day=25)
    capabilities = Capabilities(quotes=True, intraday_bars=True, daily_bars=True, symbols_per_request=1,
                                intervals=tuple(INTERVALS))

    def __init__(self, settings=None, *, universe: pd.DataFrame | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, universe=universe, client=client)

    def _params(self, symbol: str, function: str, **extra: Any) -> dict[str, Any]:
        return {"function": function, "symbol": self.ticker(symbol), **extra, "apikey": self._api_key.reveal() or ""}

    def check_payload(self, response: httpx.Response, payload: Any, symbols: Sequence[str]) -> None:
        if isinstance(payload, dict):
            check_payload(payload, ", ".join(symbols))

    async def fetch_bars(self, symbols: list[str], interval: str, start: pd.Timestamp | None = None,
                         end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Completed bars with ``start <= ts <= end``, one request per symbol; the full history is asked
        only when ``start`` lies beyond the latest 100 points. Rows with missing fields come back with NaN
        so the validate stage quarantines them."""
        if interval not in INTERVALS:
            raise DataError(f"interval {interval!r}: alphavantage provides {', '.join(INTERVALS)}")
        results = await asyncio.gather(*(self._series(s, interval, start) for s in symbols), return_exceptions=True)
        frames, _ = raise_first(results, symbols, NAME)
        out = concat_bars([f for pair in frames for f in (pair[0], pair[1].drop(columns="reason"))])
        out = completed(in_range(out, start, end), interval, self.now())
        out["ingested_at"] = self.now()
        return out

    async def _series(self, symbol: str, interval: str, start) -> tuple[pd.DataFrame, pd.DataFrame]:
        now = self.now()
        if interval == "1d":
            span = pd.Timedelta(days=COMPACT_POINTS * 7 / 5 - 5)
            params = self._params(symbol, "TIME_SERIES_DAILY")
        else:
            span = pd.Timedelta(minutes=COMPACT_POINTS * int(INTERVALS[interval].removesuffix("min")))
            params = self._params(symbol, "TIME_SERIES_INTRADAY", interval=INTERVALS[interval], extended_hours="false")
        params["outputsize"] = "full" if start is not None and utc(start) < now - span else "compact"
        async with self.semaphore:
            payload = await self.get_json("/query", params, symbols=[symbol])
        return parse_time_series(payload, symbol, interval, ticker=params["symbol"])

    async def fetch_quotes(self, symbols: list[str]) -> pd.DataFrame:
        """GLOBAL_QUOTE per symbol; unknown symbols are skipped unless none is known."""
        async def one(symbol: str) -> pd.DataFrame:
            async with self.semaphore:
                payload = await self.get_json("/query", self._params(symbol, "GLOBAL_QUOTE"), symbols=[symbol])
            return parse_global_quote(payload, symbol, exchange=self.exchange_of(symbol), now=self.now())

        results = await asyncio.gather(*(one(s) for s in symbols), return_exceptions=True)
        frames, _ = raise_first(results, symbols, NAME)
        out = pd.concat(frames, ignore_index=True) if frames else quotes_frame([], NAME)
        out["ingested_at"] = self.now()
        return out

