"""Yahoo Finance: bars from the chart endpoint, quotes in batches from the quote endpoint.

- Bars: ``GET /v8/finance/chart/{ticker}?interval=1m|1d&period1=&period2=`` (or ``range=``), one
  symbol per request; parallel arrays under ``indicators.quote[0]``; minutes without trades come
  as nulls in every array; daily bars are stamped at the session's open and are re-keyed here to
  the session date (in ``meta.exchangeTimezoneName``) at 00:00 UTC.
- Quotes: ``GET /v7/finance/quote?symbols=A.NS,B.NS&crumb=…``, up to 50 symbols a request. It
  needs a cookie and a crumb: GET the cookie host (``fc.yahoo.com``; the configured base URL's root
  when one is set), then ``GET /v1/test/getcrumb``. The crumb is cached; a 401/403 ("Invalid
  Crumb") refreshes it once.
- Errors: ``{"chart": {"result": null, "error": {"code": "Not Found", ...}}}`` (HTTP 404) is
  SymbolNotFound; 429 comes with a plain-text body.

NSE tickers carry ``.NS`` (``mintel.universe.provider_ticker``). Options: ``exchange``,
``cookie_url``, ``symbols_per_request`` (50), ``max_concurrency`` (8), ``range_1m`` ("1d"),
``range_1d`` ("1y").
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote as urlquote

import httpx
import numpy as np
import pandas as pd

from mintel.errors import DataError, ProviderError, ProviderUnavailable, SymbolNotFound
from mintel.providers.base import Capabilities, RateLimit
from mintel.providers.http import (
    HttpProvider, bars_frame, check_status, completed, concat_bars, empty_bars, epoch_s, in_range, kinded, numbers,
    quotes_frame, raise_first, session_dates, snippet, utc,
)
from mintel.universe import canonical_symbol

log = logging.getLogger(__name__)

NAME = "yahoo"
BASE_URL = "https://query2.finance.yahoo.com"
COOKIE_URL = "https://fc.yahoo.com"
QUOTE_BATCH = 50
INTERVALS = {"1m": "1m", "2m": "2m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "1d": "1d"}


# ------------------------------------------------------------------------------------ parsing


def parse_chart(payload: Any, symbol: str, interval: str, *, ticker: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, rejected with ``reason``) for ``symbol`` from a chart payload.

    Minutes where every price is null are skipped (no trades); rows with some nulls are rejected
    with the fields named; a payload without ``timestamp`` or with an empty quote is an empty
    frame; an error payload raises SymbolNotFound ("Not Found") or ProviderError (others); a chart
    of another ticker than ``ticker`` (``meta.symbol``) is ProviderUnavailable, never stored as ours.
    """
    chart = payload.get("chart") if isinstance(payload, dict) else None
    if not isinstance(chart, dict):
        raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: chart payload without 'chart'", provider=NAME), "malformed")
    error = chart.get("error")
    if error:
        code = str(error.get("code", "")) if isinstance(error, dict) else str(error)
        text = f"{code}: {error.get('description', '')}" if isinstance(error, dict) else code
        if code.lower().replace(" ", "") in ("notfound", "404"):
            raise kinded(SymbolNotFound(f"{NAME}: {symbol}: {text}", provider=NAME, symbols=[symbol]), "not_found")
        raise kinded(ProviderError(f"{NAME}: {symbol}: {text}", provider=NAME), "error")
    result = chart.get("result") or []
    if not result:
        return empty_bars()
    r = result[0] if isinstance(result, list) and isinstance(result[0], dict) else None
    if r is None:
        raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: malformed chart result", provider=NAME), "malformed")
    meta = r.get("meta") if isinstance(r.get("meta"), dict) else {}
    said = str(meta.get("symbol") or "").strip().upper()
    if ticker and said and said != ticker.strip().upper():
        raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: the answer is the chart of {said}, not {ticker}",
                                         provider=NAME), "malformed")
    timestamps = r.get("timestamp") or []
    quotes = (r.get("indicators") or {}).get("quote") or [{}]
    q = quotes[0] or {}
    if not timestamps or not q:
        return empty_bars()
    n = len(timestamps)
    try:
        columns = {f: numbers(q.get(f), n) for f in ("open", "high", "low", "close", "volume")}
        ts = pd.to_datetime(np.asarray(timestamps, dtype="int64"), unit="s", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: malformed chart arrays ({exc})", provider=NAME),
                     "malformed") from None
    tz = meta.get("exchangeTimezoneName")
    if interval == "1d":
        try:
            ts = session_dates(ts, tz)
        except (KeyError, ValueError, TypeError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise kinded(ProviderUnavailable(f"{NAME}: {symbol}: unknown time zone {str(tz)[:40]!r} in the answer "
                                             f"({type(exc).__name__})", provider=NAME), "malformed") from None
    else:
        # Yahoo may append the live tick at a time off the grid: key it by its bar's open.
        ts = ts.floor(pd.Timedelta(interval.replace("m", "min").replace("1h", "60min")))
    bars, rejected = bars_frame(interval, symbol, ts, {f: v for f, (v, _) in columns.items()}, NAME,
                                present={f: p for f, (_, p) in columns.items()})
    # After re-keying, the later row of a key is the more complete one.
    return bars.drop_duplicates(["symbol", "ts"], keep="last").reset_index(drop=True), rejected


def parse_quote(payload: Any) -> pd.DataFrame:
    """Canonical quotes (symbol = Yahoo's ticker) from a ``/v7/finance/quote`` payload.

    ``regularMarketVolume`` is the session's cumulative volume; ``regularMarketTime`` the last trade.
    """
    body = payload.get("quoteResponse") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        raise kinded(ProviderUnavailable(f"{NAME}: quote payload without 'quoteResponse'", provider=NAME), "malformed")
    if body.get("error"):
        raise kinded(ProviderError(f"{NAME}: quote error {body['error']}", provider=NAME), "error")
    rows = []
    for item in body.get("result") or []:
        if not isinstance(item, dict) or not item.get("symbol"):
            continue
        t = item.get("regularMarketTime")
        rows.append({
            "symbol": item["symbol"],
            "ts": epoch_s(t) if isinstance(t, (int, float)) else pd.NaT,
            "price": item.get("regularMarketPrice"),
            "open": item.get("regularMarketOpen"),
            "high": item.get("regularMarketDayHigh"),
            "low": item.get("regularMarketDayLow"),
            "prev_close": item.get("regularMarketPreviousClose"),
            "day_volume": item.get("regularMarketVolume"),
            "bid": item.get("bid"),
            "ask": item.get("ask"),
        })
    return quotes_frame(rows, NAME)


# ------------------------------------------------------------------------------------ provider


class YahooProvider(HttpProvider):
    """Yahoo Finance behind the Provider protocol: 1m/1d bars one symbol a request, quotes 50 a request."""

    name = NAME
    default_base_url = BASE_URL
    default_rate_limit = RateLimit(requests_per_minute=60, requests_per_day=None)

    def __init__(self, settings=None, *, universe: pd.DataFrame | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, universe=universe, client=client)
        self.quote_batch = int(self.options.get("symbols_per_request", QUOTE_BATCH))
        self.capabilities = Capabilities(quotes=True, intraday_bars=True, daily_bars=True,
                                         symbols_per_request=self.quote_batch, intervals=tuple(INTERVALS))
        configured = self.base_url != BASE_URL
        self.cookie_url = str(self.options.get("cookie_url") or (f"{self.base_url}/" if configured else COOKIE_URL))
        self._crumb: str | None = None
        self._crumb_lock: asyncio.Lock | None = None

    def cost(self, symbols: Sequence[str], kind: str = "bars") -> int:
        """Requests a call uses: one per symbol for bars, one per batch of 50 for quotes (plus the handshake once)."""
        if kind == "quotes":
            return math.ceil(len(symbols) / self.quote_batch) + (0 if self._crumb else 2)
        return len(symbols)

    # -- bars

    async def fetch_bars(self, symbols: list[str], interval: str, start: pd.Timestamp | None = None,
                         end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Completed bars with ``start <= ts <= end``, one chart request per symbol (at most
        ``max_concurrency`` at once). Rows with missing fields come back with NaN so the validate
        stage quarantines them with their reason; unknown symbols are skipped unless none is known."""
        if interval not in INTERVALS:
            raise DataError(f"interval {interval!r}: yahoo provides {', '.join(INTERVALS)}")
        if not symbols:
            return concat_bars([])
        params = self._chart_params(interval, start, end)
        results = await asyncio.gather(*(self._chart(s, interval, params) for s in symbols), return_exceptions=True)
        frames, _ = raise_first(results, symbols, NAME)
        out = concat_bars([f for pair in frames for f in (pair[0], pair[1].drop(columns="reason"))])
        out = completed(in_range(out, start, end), interval, self.now())
        out["ingested_at"] = self.now()
        return out

    def _chart_params(self, interval: str, start, end) -> dict[str, Any]:
        params: dict[str, Any] = {"interval": INTERVALS[interval], "includePrePost": "false"}
        if start is None:
            params["range"] = self.options.get(f"range_{interval}", "1y" if interval == "1d" else "1d")
            return params
        start_ts = utc(start)
        end_ts = utc(end) if end is not None else self.now()
        step = pd.Timedelta(days=1) if interval == "1d" else pd.Timedelta(minutes=1)
        params["period1"] = int(start_ts.timestamp())
        params["period2"] = int((end_ts + step).timestamp())
        return params

    async def _chart(self, symbol: str, interval: str, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
        ticker = self.ticker(symbol)
        async with self.semaphore:
            payload = await self.get_json(f"/v8/finance/chart/{urlquote(ticker, safe='')}", params, symbols=[symbol])
        return parse_chart(payload, symbol, interval, ticker=ticker)

    def check_payload(self, response: httpx.Response, payload: Any, symbols: Sequence[str]) -> None:
        chart = payload.get("chart") if isinstance(payload, dict) else None
        if isinstance(chart, dict) and chart.get("error") and response.status_code in (200, 400, 404):
            parse_chart(payload, ", ".join(symbols) or "?", "1m")  # raises the mapped error

    # -- quotes

    async def fetch_quotes(self, symbols: list[str]) -> pd.DataFrame:
        """Quotes for ``symbols``, 50 a request; unknown symbols are skipped unless none is known."""
        if not symbols:
            return quotes_frame([], NAME)
        tickers = {self.ticker(s): s for s in symbols}
        batches = [list(tickers)[i:i + self.quote_batch] for i in range(0, len(tickers), self.quote_batch)]
        frames = await asyncio.gather(*(self._quote_batch(b, [tickers[t] for t in b]) for b in batches))
        out = pd.concat(frames, ignore_index=True)
        out["symbol"] = [tickers.get(t) or canonical_symbol(t, NAME)[0] for t in out["symbol"]]
        missing = [s for s in symbols if s not in set(out["symbol"])]
        if missing and len(missing) == len(symbols):
            raise kinded(SymbolNotFound(f"{NAME}: no quotes for {', '.join(missing[:10])}", provider=NAME,
                                        symbols=missing), "not_found")
        if missing:
            log.info("%s: no quotes for %d symbols (%s)", NAME, len(missing), ", ".join(missing[:5]))
        out["ingested_at"] = self.now()
        return out.reset_index(drop=True)

    async def _quote_batch(self, tickers: list[str], symbols: list[str]) -> pd.DataFrame:
        crumb = None
        for attempt in (0, 1):
            crumb = await self.crumb(stale=crumb)
            try:
                payload = await self.get_json("/v7/finance/quote", {"symbols": ",".join(tickers), "crumb": crumb},
                                              symbols=symbols)
            except ProviderUnavailable as exc:
                if getattr(exc, "error_kind", None) == "auth" and attempt == 0:
                    log.info("%s: crumb refused, refreshing it", NAME)
                    continue
                raise
            return parse_quote(payload)
        raise AssertionError("unreachable")

    async def crumb(self, stale: str | None = None) -> str:
        """The cached crumb; the cookie + crumb handshake runs the first time and when the cached one
        is ``stale`` (refused by the server; concurrent refusals of one crumb refresh it once)."""
        if self._crumb_lock is None:
            self._crumb_lock = asyncio.Lock()
        async with self._crumb_lock:
            if self._crumb and self._crumb != stale:
                return self._crumb
            self._crumb = None
            await self.send(self.cookie_url)  # any status: Yahoo answers 404 with the cookie
            response = await self.send("/v1/test/getcrumb", check=self._check_crumb)
            self._crumb = response.text.strip()
            return self._crumb

    def _check_crumb(self, response: httpx.Response) -> None:
        text = response.text.strip()
        if response.status_code == 200 and text and len(text) < 64 and "<" not in text and " " not in text:
            return
        check_status(NAME, response, ())
        raise kinded(ProviderUnavailable(f"{NAME}: no crumb in the answer ({snippet(text)!r})", provider=NAME), "auth")
