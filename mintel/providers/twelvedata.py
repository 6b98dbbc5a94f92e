"""Twelve Data: bars from ``/time_series`` and quotes from ``/quote``, many symbols a request.

- ``GET /time_series?symbol=A,B&interval=1min|1day&exchange=NSE&start_date=&end_date=``: one
  symbol answers ``{"meta", "values", "status"}``; several answer an object keyed by symbol.
  ``values`` are newest first, numbers as strings, ``datetime`` in ``meta.exchange_timezone``
  (date only for daily bars).
- ``GET /quote?symbol=A,B&exchange=NSE``: the same single/keyed shape; ``close`` is the last price.
- Errors are ``{"code": 4xx, "message": …, "status": "error"}``, at the top or per symbol, often
  with HTTP 200: 429 -> RateLimited (credits reset each minute), 401/403 -> ProviderUnavailable,
  404 or an unknown symbol -> SymbolNotFound, "No data is available on the specified dates" -> no rows.
- The key goes in the ``Authorization: apikey …`` header (documented alongside ``?apikey=``), so
  it never appears in a URL. Limits are in credits: each symbol of a batch costs one (``cost``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pandas as pd

from mintel import calendar
from mintel.errors import DataError, ProviderError, ProviderUnavailable, RateLimited, SymbolNotFound
from mintel.providers.base import Capabilities, RateLimit
from mintel.providers.http import (
    FIELDS, HttpProvider, bars_frame, completed, concat_bars, empty_bars, epoch_s, in_range, kinded, local_times, numbers,
    quotes_frame, retry_after_s, utc,
)

log = logging.getLogger(__name__)

NAME = "twelvedata"
BASE_URL = "https://api.twelvedata.com"
INTERVALS = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "1d": "1day"}
NO_DATA = "no data is available"
US = {"US", ""}


def error_of(item: dict, symbols: Sequence[str], now: float | None = None) -> ProviderError | None:
    """The mintel error an error object ``{"code", "message", "status": "error"}`` means; None for
    "no data on these dates" (an empty answer, not a failure)."""
    try:
        code = int(float(item.get("code") or 0))  # a number, or its text
    except (TypeError, ValueError, OverflowError):
        code = 0
    message = str(item.get("message") or "")
    text = f"{NAME}: {', '.join(symbols)}: {message} (code {code})"
    low = message.lower()
    if NO_DATA in low:
        return None
    if code == 429:
        now = time.time() if now is None else now
        retry = 60.0 - now % 60 if "minute" in low else None  # credits reset at the top of each minute
        return kinded(RateLimited(text, provider=NAME, retry_after_s=retry), "rate_limited")
    if code in (401, 403):
        return kinded(ProviderUnavailable(f"{NAME}: API key refused: {message} (code {code})", provider=NAME), "auth")
    if code == 404 or (code == 400 and "symbol" in low and ("not found" in low or "invalid" in low)):
        return kinded(SymbolNotFound(text, provider=NAME, symbols=list(symbols)), "not_found")
    if code >= 500:
        return kinded(ProviderUnavailable(text, provider=NAME), "server_error")
    return kinded(ProviderError(text, provider=NAME), "error")


def _is_error(item: Any) -> bool:
    return isinstance(item, dict) and item.get("status") == "error"


def _items(payload: Any, symbols: Sequence[str], single_keys: tuple[str, ...]) -> dict[str, Any]:
    """Symbol -> its object, for the single and the keyed (batch) answer; raises a top-level error."""
    if not isinstance(payload, dict):
        raise kinded(ProviderUnavailable(f"{NAME}: unexpected payload {type(payload).__name__}", provider=NAME),
                     "malformed")
    if _is_error(payload) and not any(s in payload for s in symbols):
        err = error_of(payload, symbols)
        if err is not None:
            raise err
        return {}
    if len(symbols) == 1 and any(k in payload for k in single_keys):
        return {symbols[0]: payload}
    if not any(s in payload for s in symbols):
        # Neither one symbol's object nor a batch keyed by the symbols asked: a broken answer (a proxy's
        # page, an API change), not news that every symbol is unknown, which would be remembered.
        raise kinded(ProviderUnavailable(f"{NAME}: unexpected payload (keys: {', '.join(map(str, list(payload)[:5]))})",
                                         provider=NAME), "malformed")
    return {s: payload.get(s) for s in symbols}


def parse_time_series(payload: Any, symbols: Sequence[str], interval: str, *, tz: str | None = None,
                      tickers: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, ProviderError]]:
    """(bars, rejected with ``reason``, problems) from a ``/time_series`` answer for ``symbols``.

    ``problems`` maps each symbol that came back as an error (or not at all), or as another
    symbol's series (``meta.symbol`` neither the symbol nor its ticker in ``tickers``), to its error.
    Datetimes are read in ``tz`` (default ``meta.exchange_timezone``); daily bars keep their date.
    """
    bars, rejected, problems = [], [], {}
    ticker_of = dict(zip(symbols, tickers or symbols))
    for sym, item in _items(payload, symbols, ("values", "meta")).items():
        if item is None:
            problems[sym] = kinded(SymbolNotFound(f"{NAME}: {sym}: missing from the answer", provider=NAME,
                                                  symbols=[sym]), "not_found")
            continue
        if _is_error(item):
            err = error_of(item, [sym])
            if err is not None:
                problems[sym] = err
            continue
        if not isinstance(item, dict):
            problems[sym] = kinded(ProviderUnavailable(f"{NAME}: {sym}: unexpected {type(item).__name__} in the answer",
                                                       provider=NAME), "malformed")
            continue
        meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
        said = str(meta.get("symbol") or "").split(":")[0].strip().upper()
        if said and said not in (sym.upper(), str(ticker_of[sym]).upper()):
            problems[sym] = kinded(ProviderUnavailable(f"{NAME}: {sym}: the answer carries {said}'s series",
                                                       provider=NAME), "malformed")
            continue
        values = [v for v in (item.get("values") or []) if isinstance(v, dict)]
        if not values:
            continue
        zone = tz or meta.get("exchange_timezone") or "UTC"
        try:
            ts = local_times([v.get("datetime") for v in values], zone, interval, NAME)
        except ProviderError as exc:
            problems[sym] = exc
            continue
        cols = {f: numbers([v.get(f) for v in values], len(values)) for f in FIELDS}
        b, r = bars_frame(interval, sym, ts, {f: c[0] for f, c in cols.items()}, NAME,
                          present={f: c[1] for f, c in cols.items()})
        bars.append(b)
        rejected.append(r)
    if not bars:
        b, r = empty_bars()
        return b, r, problems
    return concat_bars(bars), pd.concat(rejected, ignore_index=True), problems


def parse_quotes(payload: Any, symbols: Sequence[str]) -> tuple[pd.DataFrame, dict[str, ProviderError]]:
    """(quotes, problems) from a ``/quote`` answer; ``close`` is the last price, ``volume`` the day's so far."""
    rows, problems = [], {}
    for sym, item in _items(payload, symbols, ("close", "datetime", "symbol")).items():
        if item is not None and not isinstance(item, dict):
            problems[sym] = kinded(ProviderUnavailable(f"{NAME}: {sym}: unexpected {type(item).__name__} in the answer",
                                                       provider=NAME), "malformed")
            continue
        if item is None or _is_error(item):
            err = error_of(item, [sym]) if item is not None else kinded(
                SymbolNotFound(f"{NAME}: {sym}: missing from the answer", provider=NAME, symbols=[sym]), "not_found")
            if err is not None:
                problems[sym] = err
            continue
        t = item.get("last_quote_at") or item.get("timestamp")
        rows.append({
            "symbol": sym,
            "ts": epoch_s(t),
            "price": item.get("close"), "open": item.get("open"), "high": item.get("high"), "low": item.get("low"),
            "prev_close": item.get("previous_close"), "day_volume": item.get("volume"),
        })
    return quotes_frame(rows, NAME), problems


class TwelveDataProvider(HttpProvider):
    """Twelve Data behind the Provider protocol; rate limits count credits (one per symbol)."""

    name = NAME
    default_base_url = BASE_URL
    default_rate_limit = RateLimit(requests_per_minute=8, requests_per_day=800)  # credits, free plan
    rate_unit = "credits"

    def __init__(self, settings=None, *, universe: pd.DataFrame | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, universe=universe, client=client)
        per = self.options.get("symbols_per_request") or min(120, max(1, int(self.rate_limit.requests_per_minute or 8)))
        self.capabilities = Capabilities(quotes=True, intraday_bars=True, daily_bars=True,
                                         symbols_per_request=int(per), intervals=tuple(INTERVALS))

    def cost(self, symbols: Sequence[str], kind: str = "bars") -> int:
        """Credits a call uses: one per symbol, whatever the batching."""
        return len(symbols)

    def _headers(self) -> dict[str, str]:
        key = self._api_key.reveal()
        return {"Authorization": f"apikey {key}"} if key else {}

    def _groups(self, symbols: Sequence[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for s in symbols:
            groups.setdefault(self.exchange_of(s), []).append(s)
        return groups

    def _exchange_params(self, exchange: str) -> tuple[dict[str, str], str | None]:
        """Query params naming the exchange, and the zone its datetimes come in (None: asked for UTC)."""
        params = {} if exchange in US else {"exchange": exchange}
        try:
            return params, calendar.timezone(exchange or "US")
        except (DataError, KeyError):
            return {**params, "timezone": "UTC"}, None

    async def fetch_bars(self, symbols: list[str], interval: str, start: pd.Timestamp | None = None,
                         end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Completed bars with ``start <= ts <= end``, one request per exchange among ``symbols``.
        Rows with missing fields come back with NaN so the validate stage quarantines them."""
        if interval not in INTERVALS:
            raise DataError(f"interval {interval!r}: twelvedata provides {', '.join(INTERVALS)}")
        groups = self._groups(symbols)
        results = await asyncio.gather(*(self._series(g, exch, interval, start, end) for exch, g in groups.items()),
                                       return_exceptions=True)
        frames, problems = [], {}
        for r in results:
            if isinstance(r, BaseException):
                raise r
            frames.extend(r[:2])
            problems.update(r[2])
        self._judge(problems, symbols, answered=sum(len(f) for f in frames[::2]))
        out = concat_bars([f.drop(columns="reason", errors="ignore") for f in frames])
        out = completed(in_range(out, start, end), interval, self.now())
        out["ingested_at"] = self.now()
        return out

    async def _series(self, symbols: list[str], exchange: str, interval: str, start, end):
        params, zone = self._exchange_params(exchange)
        params.update({"symbol": ",".join(self.ticker(s, exchange) for s in symbols), "interval": INTERVALS[interval]})
        if start is None:
            params["outputsize"] = int(self.options.get(f"outputsize_{interval}", 250 if interval == "1d" else 390))
        else:
            step = pd.Timedelta(days=1) if interval == "1d" else pd.Timedelta(INTERVALS[interval].replace("1h", "60min"))
            params["start_date"] = _local(utc(start), zone, interval)
            params["end_date"] = _local((utc(end) if end is not None else self.now()) + step, zone, interval)
        payload = await self.get_json("/time_series", params, symbols=symbols, headers=self._headers(),
                                      cost=len(symbols))
        return parse_time_series(payload, symbols, interval, tz=None if zone else "UTC",
                                 tickers=[self.ticker(s, exchange) for s in symbols])

    async def fetch_quotes(self, symbols: list[str]) -> pd.DataFrame:
        """Quotes for ``symbols``, one request per exchange; unknown symbols are skipped unless none is known."""
        frames, problems = [], {}
        for exchange, group in self._groups(symbols).items():
            params, _ = self._exchange_params(exchange)
            params["symbol"] = ",".join(self.ticker(s, exchange) for s in group)
            payload = await self.get_json("/quote", params, symbols=group, headers=self._headers(), cost=len(group))
            q, p = parse_quotes(payload, group)
            frames.append(q)
            problems.update(p)
        out = pd.concat(frames, ignore_index=True) if frames else quotes_frame([], NAME)
        self._judge(problems, symbols, answered=len(out))
        out["ingested_at"] = self.now()
        return out

    def check_payload(self, response: httpx.Response, payload: Any, symbols: Sequence[str]) -> None:
        # A top-level error object wins over the HTTP status (which is often 200, sometimes the code).
        if _is_error(payload) and not any(s in payload for s in symbols):
            err = error_of(payload, symbols)
            if isinstance(err, RateLimited) and "Retry-After" in response.headers:
                err.retry_after_s = retry_after_s(response)
            if err is not None:
                raise err

    def _judge(self, problems: dict[str, ProviderError], symbols: Sequence[str], answered: int) -> None:
        """Raise when no symbol was answered and some failed; otherwise log the failures and go on."""
        if not problems:
            return
        if answered == 0 and len(problems) == len(symbols):
            errors = list(problems.values())
            for kind in (RateLimited, ProviderUnavailable):
                for e in errors:
                    if isinstance(e, kind):
                        raise e
            missing = [s for s, e in problems.items() if isinstance(e, SymbolNotFound)]
            if len(missing) == len(errors):
                raise kinded(SymbolNotFound(f"{NAME}: unknown symbols {', '.join(missing[:10])}", provider=NAME,
                                            symbols=missing), "not_found")
            raise errors[0]
        log.warning("%s: %d of %d symbols failed (%s)", NAME, len(problems), len(symbols),
                    "; ".join(f"{s}: {type(e).__name__}" for s, e in list(problems.items())[:5]))


def _local(ts: pd.Timestamp, zone: str | None, interval: str) -> str:
    """A UTC instant as Twelve Data's start/end date, in the zone the request reads it in."""
    local = ts.tz_convert(zone or "UTC").tz_localize(None)
    return local.strftime("%Y-%m-%d") if interval == "1d" else local.strftime("%Y-%m-%d %H:%M:%S")
