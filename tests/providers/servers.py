"""Local stand-ins for Yahoo, Twelve Data and Alpha Vantage on 127.0.0.1 (stdlib only, for tests).

Each server answers in its provider's real payload format from a deterministic ``SimMarket``,
enforces a rate limit (requests or credits per rolling window), records every request and has
fault modes that can be switched while it runs::

    with TwelveDataServer(limit=Limit(8, style="body")) as srv:       # 8 credits a minute, in-body 429s
        provider = TwelveDataProvider(srv.settings())
        srv.faults.server_error = 2                                  # the next 2 requests answer 503
        srv.faults.unknown = {"TCS"}                                 # TCS is not found
        ...
        srv.requests[-1]    # Request(t, method, path, params, status, key_where, key_ok, cost)
        srv.bars(["TCS"], "1m")                                      # what the server serves, canonical

Faults (``srv.faults``): ``server_error`` (next N requests answer ``server_status``; -1 = always),
``delay_s`` (sleep before answering: longer than the client's timeout is a timeout), ``truncate``
(JSON cut in half), ``disconnect`` (close without answering), ``empty`` (no data), ``unknown``
(symbols answered as not found), ``nan_price`` / ``negative_price`` / ``high_below_low`` (row
``BAD_ROW`` of every symbol's bars in each answer, oldest first: close NaN, low negative, high
below low), ``null_minutes`` (row 2 all null, row 3 with null open and close; real for Yahoo). ``srv.reset()`` clears faults, the request
log and the rate-limit window.

Scripted faults, for long mixed runs (defaults off): ``script`` is a list of fault names the next
requests get, one each, in order (``SCRIPTED``: slow, timeout, 500/502/503, reset, disconnect,
truncate, garbage, 429, 429_bare, 429_date, wrong_shape, wrong_symbol, duplicate, shuffle); ``bad_rows`` maps
``(symbol, ts)`` to a row fault (nan_close, negative_low, zero_open, high_below_low) applied to that
bar in every answer that carries it; ``clock_skew_s`` sets the server's clock (its Date header and
HTTP-date Retry-After) off by that much. ``srv.injected`` counts every scripted fault and 5xx served.
A request with a scripted fault gets that fault alone (no rate-limit window, no ``server_error``).
"""

from __future__ import annotations

import email.utils
import json
import math
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import pandas as pd

from mintel import calendar
from mintel.config import ProviderSettings, Secret
from mintel.providers.sim import SimClock, SimMarket
from mintel.universe import canonical_symbol, provider_ticker

SYMBOLS = ("RELIANCE", "TCS", "INFY", "HDFCBANK", "M&M", "BAJAJ-AUTO")
START = "2026-11-16"  # a Monday; the market plays MINUTES trading minutes from its open
MINUTES = 400  # the whole first session (375) and 25 minutes of the next
BAD_ROW = 1
OHLCV = ("open", "high", "low", "close", "volume")


@dataclass
class Limit:
    """``per_window`` requests (credits for Twelve Data) per rolling ``window_s``.

    ``style``: "http" (HTTP 429), "body" (the provider's in-body error: Twelve Data code 429 with
    HTTP 200, Alpha Vantage "Note"), "information" (Alpha Vantage's daily "Information").
    ``retry_after``: "seconds", "date" (HTTP-date) or None (no Retry-After header).
    """

    per_window: float
    window_s: float = 60.0
    style: str = "http"
    retry_after: str | None = "seconds"


@dataclass
class Faults:
    server_error: int = 0
    server_status: int = 503
    delay_s: float = 0.0
    truncate: bool = False
    disconnect: bool = False
    empty: bool = False
    unknown: set[str] = field(default_factory=set)
    nan_price: bool = False
    negative_price: bool = False
    high_below_low: bool = False
    null_minutes: bool = False
    script: list[str] = field(default_factory=list)  # faults for the next requests, one each (SCRIPTED)
    bad_rows: dict[tuple[str, pd.Timestamp], str] = field(default_factory=dict)  # (symbol, ts) -> ROW_FAULTS kind
    clock_skew_s: float = 0.0  # the server's clock minus the true time
    slow_s: float = 0.15  # "slow": answered late but within a client's timeout
    timeout_s: float = 1.5  # "timeout": answered after this long (longer than the client's timeout)


SCRIPTED = ("slow", "timeout", "500", "502", "503", "reset", "disconnect", "truncate", "garbage", "429", "429_bare",
            "429_date", "wrong_shape", "wrong_symbol", "duplicate", "shuffle")
ROW_FAULTS = ("nan_close", "negative_low", "zero_open", "high_below_low")
RESET = object()  # a reply: the connection is reset (RST) without an answer


@dataclass(frozen=True)
class Request:
    t: float  # time.time() when answered
    method: str
    path: str
    params: dict[str, str]
    status: int | None  # None: disconnected
    key_where: str | None  # "query" | "header" | None: where an API key came
    key_ok: bool  # the expected key (or none needed)
    cost: int


@dataclass
class Reply:
    status: int
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return self.body.encode() if isinstance(self.body, str) else json.dumps(self.body).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stalls

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        reply = self.server.owner._handle(self.path, dict(self.headers.items()))
        if reply is RESET:  # SO_LINGER 0: closing sends a TCP RST, as a crashed proxy does
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if reply is None:
            self.close_connection = True
            return
        body = reply.encode()
        try:
            self.send_response(reply.status)
            ctype = "application/json" if isinstance(reply.body, (dict, list)) or body[:1] in (b"{", b"[") else "text/plain"
            for k, v in {"Content-Type": ctype, **reply.headers, "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:  # the Date header, on the server's clock
        return email.utils.formatdate(time.time() + self.server.owner.faults.clock_skew_s, usegmt=True)


class ProviderServer:
    """Base of the stand-ins: lifecycle, market, rate limit, faults, request log."""

    name = ""
    ticker_provider = ""

    def __init__(self, *, symbols=SYMBOLS, seed: int = 7, start: str = START, minutes: int = MINUTES,
                 api_key: str | None = "srv-secret-key-0123456789", limit: Limit | None = None,
                 exchange: str = "NSE") -> None:
        self.exchange = exchange
        self.tz = calendar.timezone(exchange)
        self.market = SimMarket(list(symbols), seed=seed, clock=SimClock(exchange, start))
        self.market.clock.advance(minutes)
        self.api_key = api_key
        self.limit = limit
        self.faults = Faults()
        self.http_errors = False  # Twelve Data: error objects with their code as the HTTP status too
        self.injected: Counter[str] = Counter()  # scripted faults and 5xx answers served, by name
        self._fault: str | None = None  # the scripted fault of the request being routed
        self._requests: list[Request] = []
        self._window: list[tuple[float, int]] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle

    def start(self) -> "ProviderServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=f"{self.name}-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "ProviderServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def settings(self, **overrides: Any) -> ProviderSettings:
        """Settings pointing a provider here, with this server's key and a short timeout."""
        values = {"name": self.name, "base_url": self.url, "api_key": Secret(self.api_key), "timeout_s": 2.0, **overrides}
        return ProviderSettings(**values)

    # -- state for tests

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def count(self, path: str = "", *, prefix: bool = False) -> int:
        """Requests to ``path`` (every path starting with it when ``prefix``)."""
        return sum(1 for r in self.requests if (r.path.startswith(path) if prefix else r.path == path))

    def forget_requests(self) -> None:
        """Drop the request log (long runs that do not look at it)."""
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.injected.clear()
            self._requests.clear()
            self._window.clear()

    def bars(self, symbols, interval: str, start=None, end=None) -> pd.DataFrame:
        """Canonical bars as the market has them (before faults)."""
        with self._lock:
            if interval == "1d":
                return self.market.daily_bars(list(symbols), start, end, days=250)
            return self.market.bars(list(symbols), start, end)

    def quotes(self, symbols) -> pd.DataFrame:
        with self._lock:
            return self.market.quotes(list(symbols))

    def advance(self, minutes: float = 1) -> None:
        with self._lock:
            self.market.clock.advance(minutes)

    def known(self, symbol: str) -> bool:
        return symbol in self.market.symbols and symbol not in self.faults.unknown

    def symbol_of(self, ticker: str) -> str:
        return canonical_symbol(ticker, self.ticker_provider or self.name)[0]

    def rows(self, symbol: str, interval: str, start=None, end=None) -> list[dict[str, Any]]:
        """The bars of ``symbol`` as dicts (ts, open, ..., volume), oldest first, before faults."""
        return self.bars([symbol], interval, start, end)[["ts", *OHLCV]].to_dict("records")

    def corrupt(self, rows: list[dict[str, Any]], symbol: str | None = None) -> list[dict[str, Any]]:
        """``rows`` (one answer for one symbol, oldest first) with the price faults applied."""
        f = self.faults
        if f.bad_rows and symbol is not None:
            for r in rows:
                kind = f.bad_rows.get((symbol, r["ts"]))
                if kind is not None:
                    _corrupt_row(r, kind)
        if self._fault == "duplicate" and rows:
            rows = rows + [dict(r) for r in rows[-2:]]  # the newest bars again, as a provider's overlap
        elif self._fault == "shuffle" and len(rows) > 1:
            rows = [rows[i] for i in np.random.default_rng(len(rows)).permutation(len(rows))]
        if len(rows) > BAD_ROW:
            r = rows[BAD_ROW]
            if f.nan_price:
                r["close"] = float("nan")
            if f.negative_price:
                r["low"] = -abs(r["low"])
            if f.high_below_low:
                r["high"] = round(r["low"] * 0.99, 2)
        if f.null_minutes and len(rows) > 3:
            rows[2].update(dict.fromkeys(OHLCV))
            rows[3].update(open=None, close=None)
        return rows

    # -- serving

    def _handle(self, raw_path: str, headers: dict[str, str]) -> Reply | None:
        parts = urlsplit(raw_path)
        path, params = unquote(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in headers.items()}
        key_where, key_ok = self.key_used(params, headers)
        cost = self.cost(path, params)
        fault = self._next_fault() if key_ok else None
        reply = self._scripted(fault) if fault else None
        if reply is RESET or (reply is None and fault == "disconnect"):
            self._record(path, params, None, key_where, key_ok, cost)
            return reply
        if reply is None and fault is None:  # a request with a scripted fault gets that fault and nothing else
            reply = self._gate(path, key_ok, cost)
        if reply is None and self.faults.delay_s:
            time.sleep(self.faults.delay_s)
        if reply is None and self.faults.disconnect:
            self._record(path, params, None, key_where, key_ok, cost)
            return None
        if reply is None:
            with self._lock:
                self._fault = fault
                try:
                    reply = self.route(path, params, headers)
                finally:
                    self._fault = None
        if (self.faults.truncate or fault == "truncate") and reply.status == 200:
            body = reply.encode()
            reply = Reply(200, body[: len(body) // 2], reply.headers)
        self._record(path, params, reply.status, key_where, key_ok, cost)
        return reply

    def _next_fault(self) -> str | None:
        with self._lock:
            if not self.faults.script:
                return None
            fault = self.faults.script.pop(0)
            self.injected[fault] += 1
            return fault

    def _scripted(self, fault: str) -> Any:
        """The reply a scripted fault answers instead of routing (None: route, then alter the answer)."""
        f = self.faults
        if fault in ("slow", "timeout"):
            time.sleep(f.slow_s if fault == "slow" else f.timeout_s)
            return None
        if fault in ("500", "502", "503"):
            return Reply(int(fault), f"<html><body>{fault} Server Error</body></html>")
        if fault == "reset":
            return RESET
        if fault == "garbage":
            return Reply(200, "<html><body>Bad gateway: upstream sent an invalid response</body></html>")
        if fault == "wrong_shape":  # JSON, but not this API's
            return Reply(200, {"data": [], "status": "ok"})
        if fault.startswith("429"):
            headers = {"429": {"Retry-After": "1"}, "429_bare": {},
                       "429_date": {"Retry-After": email.utils.formatdate(time.time() + f.clock_skew_s + 1, usegmt=True)}}[fault]
            return self.throttle_reply(headers)
        return None  # disconnect (the caller), truncate, wrong_symbol, duplicate, shuffle: alter the answer

    def throttle_reply(self, headers: dict[str, str]) -> Reply:
        """An HTTP 429 in the provider's own words, with ``headers``."""
        return Reply(429, "Too Many Requests\r\n", headers)

    def wrong_symbol(self, symbol: str) -> str:
        """Under the "wrong_symbol" fault: another symbol, whose bars the answer carries (labelled honestly)."""
        if self._fault != "wrong_symbol":
            return symbol
        self._fault = None  # one symbol of the answer
        syms = list(self.market.symbols)
        return syms[(syms.index(symbol) + 1) % len(syms)] if symbol in syms else symbol

    def ticker_of(self, symbol: str) -> str:
        return provider_ticker(symbol, self.exchange, self.ticker_provider or self.name)

    def _gate(self, path: str, key_ok: bool, cost: int) -> Reply | None:
        """The auth, rate-limit or 5xx answer that pre-empts routing, if any."""
        with self._lock:
            if not key_ok:
                return self.auth_reply()
            if self.limit is not None:
                now, lim = time.monotonic(), self.limit
                self._window = [(t, c) for t, c in self._window if t > now - lim.window_s]
                used = sum(c for _, c in self._window)
                if used + cost > lim.per_window:
                    wait = max(1, math.ceil(self._window[0][0] + lim.window_s - now)) if self._window else lim.window_s
                    return self.limited_reply(int(wait), used + cost)
                self._window.append((now, cost))
            if self.faults.server_error:
                self.faults.server_error -= 1 if self.faults.server_error > 0 else 0
                self.injected[str(self.faults.server_status)] += 1
                return Reply(self.faults.server_status, "<html><body>Service Unavailable</body></html>")
        return None

    def _record(self, path, params, status, key_where, key_ok, cost) -> None:
        with self._lock:
            self._requests.append(Request(time.time(), "GET", path, params, status, key_where, key_ok, cost))

    def retry_headers(self, wait_s: int) -> dict[str, str]:
        style = self.limit.retry_after if self.limit else None
        if style == "seconds":
            return {"Retry-After": str(wait_s)}
        if style == "date":
            return {"Retry-After": email.utils.formatdate(time.time() + wait_s, usegmt=True)}
        return {}

    # -- provider hooks

    def key_used(self, params: dict[str, str], headers: dict[str, str]) -> tuple[str | None, bool]:
        return None, True

    def cost(self, path: str, params: dict[str, str]) -> int:
        return 1

    def auth_reply(self) -> Reply:
        return Reply(401, {"error": "unauthorized"})

    def limited_reply(self, wait_s: int, used: float) -> Reply:
        return Reply(429, "Too Many Requests\r\n", self.retry_headers(wait_s))

    def route(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        raise NotImplementedError

    # -- shared formatting

    def session_open(self, date: pd.Timestamp) -> pd.Timestamp:
        return calendar.session_bounds(self.exchange, date.tz_localize(None))[0]

    def local(self, ts: pd.Timestamp, daily: bool) -> str:
        return ts.strftime("%Y-%m-%d") if daily else ts.tz_convert(self.tz).strftime("%Y-%m-%d %H:%M:%S")


def _corrupt_row(r: dict[str, Any], kind: str) -> None:
    if kind == "nan_close":
        r["close"] = float("nan")
    elif kind == "negative_low":
        r["low"] = -abs(r["low"])
    elif kind == "zero_open":
        r["open"] = 0.0
    elif kind == "high_below_low":
        r["high"] = round(r["low"] * 0.99, 2)
    else:
        raise ValueError(f"row fault {kind!r}: expected one of {ROW_FAULTS}")


def num(v: Any, dp: int = 4) -> Any:
    """A price as a provider's string (NaN stays "NaN", None stays None)."""
    if v is None:
        return None
    if isinstance(v, float) and np.isnan(v):
        return "NaN"
    return f"{v:.{dp}f}"



def _vol(v: Any) -> Any:
    return None if v is None else int(v) if np.isfinite(v) else v


# ------------------------------------------------------------------------------------------ yahoo


class YahooServer(ProviderServer):
    """``/v8/finance/chart/{ticker}``, ``/v7/finance/quote`` (cookie + crumb), ``/`` (the cookie),
    ``/v1/test/getcrumb``. No API key. ``invalidate_crumb()`` makes the current crumb "Invalid"."""

    name = "yahoo"

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("api_key", None)
        super().__init__(**kw)
        self.cookie = "A3=d-AQABBtest0123"
        self.crumb = "crumb0Abc"
        self.refuse_crumbs = False  # every quote request answers "Invalid Crumb"
        self._crumbs = 0

    def invalidate_crumb(self) -> None:
        with self._lock:
            self._crumbs += 1
            self.crumb = f"crumb{self._crumbs}Xyz"

    def route(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        cookie_ok = self.cookie in headers.get("cookie", "")
        unauthorized = {"finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}}
        if path in ("/", "/fc"):
            return Reply(404, "Not Found", {"Set-Cookie": f"{self.cookie}; Path=/; HttpOnly"})
        if path == "/v1/test/getcrumb":
            return Reply(200, self.crumb) if cookie_ok else Reply(401, unauthorized)
        if path == "/v7/finance/quote":
            if not cookie_ok or params.get("crumb") != self.crumb or self.refuse_crumbs:
                return Reply(401, unauthorized)
            items = self.quote_items([t for t in params.get("symbols", "").split(",") if t])
            return Reply(200, {"quoteResponse": {"result": items, "error": None}})
        if path.startswith("/v8/finance/chart/"):
            return self.chart(path.rsplit("/", 1)[1], params)
        return Reply(404, {"finance": {"result": None, "error": {"code": "Not Found", "description": "HTTP 404 Not Found"}}})

    def chart(self, ticker: str, params: dict[str, str]) -> Reply:
        symbol = self.symbol_of(ticker)
        if not self.known(symbol):
            return Reply(404, {"chart": {"result": None, "error": {
                "code": "Not Found", "description": "No data found, symbol may be delisted"}}})
        interval = params.get("interval", "1d")
        if interval not in ("1m", "1d"):
            return Reply(400, {"chart": {"result": None, "error": {
                "code": "Bad Request", "description": f"Invalid input - interval={interval} is not supported."}}})
        daily = interval == "1d"
        served = self.wrong_symbol(symbol)
        if served != symbol:
            symbol, ticker = served, self.ticker_of(served)
        rows = self.rows(symbol, interval)
        stamps = [int((self.session_open(r["ts"]) if daily else r["ts"]).timestamp()) for r in rows]
        if "period1" in params:
            p1, p2 = int(params["period1"]), int(params.get("period2") or 2**40)
            keep = [i for i, t in enumerate(stamps) if p1 <= t < p2]
            rows, stamps = [rows[i] for i in keep], [stamps[i] for i in keep]
        elif daily:
            n = {"5d": 5, "1mo": 22, "3mo": 63, "6mo": 126}.get(params.get("range", ""), 250)
            rows, stamps = rows[-n:], stamps[-n:]
        rows = self.corrupt(rows, symbol)
        stamps = [int((self.session_open(r["ts"]) if daily else r["ts"]).timestamp()) for r in rows]
        last = self.bars([symbol], "1m").iloc[-1]
        meta = {"currency": "INR", "symbol": ticker, "exchangeName": "NSI", "fullExchangeName": "NSE",
                "instrumentType": "EQUITY", "regularMarketTime": int(last["ts"].timestamp()) + 60, "gmtoffset": 19800,
                "timezone": "IST", "exchangeTimezoneName": self.tz, "regularMarketPrice": float(last["close"]),
                "priceHint": 2, "dataGranularity": interval}
        result: dict[str, Any] = {"meta": meta, "timestamp": stamps, "indicators": {"quote": [{
            f: [(_vol(r[f]) if f == "volume" else r[f]) for r in rows] for f in OHLCV}]}}
        if daily:
            result["indicators"]["adjclose"] = [{"adjclose": [r["close"] for r in rows]}]
        if self.faults.empty or not rows:
            result = {"meta": meta, "indicators": {"quote": [{}]}}
        return Reply(200, {"chart": {"result": [result], "error": None}})

    def quote_items(self, tickers: list[str]) -> list[dict[str, Any]]:
        wanted = {t: self.symbol_of(t) for t in tickers}
        known = [s for s in wanted.values() if self.known(s)]
        if self.faults.empty or not known:
            return []
        q = self.market.quotes(known).set_index("symbol")
        items = []
        for ticker, s in wanted.items():
            if s not in q.index:
                continue
            r = q.loc[s]
            items.append({
                "language": "en-US", "quoteType": "EQUITY", "currency": "INR", "exchange": "NSI", "symbol": ticker,
                "exchangeTimezoneName": self.tz, "marketState": "REGULAR",
                "regularMarketPrice": float("nan") if self.faults.nan_price else float(r["price"]),
                "regularMarketTime": int(r["ts"].timestamp()), "regularMarketOpen": float(r["open"]),
                "regularMarketDayHigh": float(r["high"]), "regularMarketDayLow": float(r["low"]),
                "regularMarketPreviousClose": float(r["prev_close"]), "regularMarketVolume": int(r["day_volume"]),
                "bid": float(r["bid"]), "ask": float(r["ask"]), "bidSize": 10, "askSize": 12,
            })
        return items


# ------------------------------------------------------------------------------------- twelvedata


class TwelveDataServer(ProviderServer):
    """``/time_series`` and ``/quote`` with batches keyed by symbol; the key in ``Authorization:
    apikey …`` or ``?apikey=``; errors as ``{"code", "message", "status": "error"}`` with HTTP 200
    (``http_errors = True``: with the code as the HTTP status too). Limits count credits (symbols)."""

    name = "twelvedata"

    def key_used(self, params: dict[str, str], headers: dict[str, str]) -> tuple[str | None, bool]:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("apikey "):
            return "header", auth[7:].strip() == self.api_key
        if "apikey" in params:
            return "query", params["apikey"] == self.api_key
        return None, self.api_key is None

    def cost(self, path: str, params: dict[str, str]) -> int:
        return max(1, len([s for s in params.get("symbol", "").split(",") if s]))

    def error(self, code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return Reply(code if self.http_errors else 200, {"code": code, "message": message, "status": "error"},
                     headers or {})

    def auth_reply(self) -> Reply:
        return self.error(401, "**apikey** parameter is incorrect or not specified. You can get your free API key "
                               "instantly following this link: https://twelvedata.com/pricing.")

    def limited_reply(self, wait_s: int, used: float) -> Reply:
        message = (f"You have run out of API credits for the current minute. {int(used)} API credits were used, with "
                   f"the current limit being {int(self.limit.per_window)}. Wait for the next minute or consider "
                   f"switching to a higher tier plan at https://twelvedata.com/pricing")
        body = {"code": 429, "message": message, "status": "error"}
        return Reply(429, body, self.retry_headers(wait_s)) if self.limit.style == "http" else Reply(200, body)

    def throttle_reply(self, headers: dict[str, str]) -> Reply:
        return Reply(429, {"code": 429, "message": "You have run out of API credits for the current minute.",
                           "status": "error"}, headers)

    def route(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        symbols = [s for s in params.get("symbol", "").split(",") if s]
        if path not in ("/time_series", "/quote"):
            return self.error(404, f"endpoint {path} not found")
        if not symbols:
            return self.error(400, "**symbol** or **figi** parameter is missing or invalid.")
        make = self.series_item if path == "/time_series" else self.quote_item
        items = {s: make(s, params) for s in symbols}
        if len(symbols) == 1:
            item = items[symbols[0]]
            return self.error(item["code"], item["message"]) if item.get("status") == "error" else Reply(200, item)
        return Reply(200, items)

    def series_item(self, symbol: str, params: dict[str, str]) -> dict[str, Any]:
        if not self.known(symbol):
            return {"code": 404, "message": f"**symbol** not found: {symbol}. Please specify it correctly according "
                                            "to API Reference.", "status": "error"}
        interval = {"1min": "1m", "1day": "1d"}.get(params.get("interval", ""))
        if interval is None:
            return {"code": 400, "message": "**interval** parameter is missing or invalid.", "status": "error"}
        daily, zone = interval == "1d", ("UTC" if params.get("timezone") == "UTC" else self.tz)
        symbol = self.wrong_symbol(symbol)
        rows = self.rows(symbol, interval)
        for bound, keep in (("start_date", lambda t, b: t >= b), ("end_date", lambda t, b: t <= b)):
            if params.get(bound):
                b = pd.Timestamp(params[bound])
                b = b.tz_localize("UTC") if daily else b.tz_localize(zone).tz_convert("UTC")
                rows = [r for r in rows if keep(r["ts"], b)]
        if params.get("outputsize"):
            rows = rows[-int(params["outputsize"]):]
        rows = self.corrupt(rows, symbol)
        if self.faults.empty or not rows:
            return {"code": 400, "message": "No data is available on the specified dates. Try setting different "
                                            "start/end dates.", "status": "error"}
        meta = {"symbol": symbol, "interval": params["interval"], "currency": "INR", "exchange_timezone": self.tz,
                "exchange": self.exchange, "mic_code": "XNSE", "type": "Common Stock"}
        values = [{"datetime": r["ts"].strftime("%Y-%m-%d") if daily else r["ts"].tz_convert(zone).strftime("%Y-%m-%d %H:%M:%S"),
                   **{f: (str(_vol(r[f])) if f == "volume" else num(r[f], 5)) for f in OHLCV}} for r in reversed(rows)]
        return {"meta": meta, "values": values, "status": "ok"}

    def quote_item(self, symbol: str, params: dict[str, str]) -> dict[str, Any]:
        if not self.known(symbol):
            return {"code": 404, "message": f"**symbol** not found: {symbol}.", "status": "error"}
        r = self.market.quotes([symbol]).iloc[0]
        day = r["ts"].tz_convert(self.tz).normalize()
        return {
            "symbol": symbol, "name": f"{symbol} Ltd", "exchange": self.exchange, "mic_code": "XNSE", "currency": "INR",
            "datetime": day.strftime("%Y-%m-%d"), "timestamp": int(day.timestamp()),
            "last_quote_at": int(r["ts"].timestamp()), "open": num(r["open"], 5), "high": num(r["high"], 5),
            "low": num(r["low"], 5), "close": num(r["price"], 5), "volume": str(int(r["day_volume"])),
            "previous_close": num(r["prev_close"], 5), "change": num(r["price"] - r["prev_close"], 5),
            "percent_change": num(100 * (r["price"] / r["prev_close"] - 1), 5), "is_market_open": True,
        }


# ----------------------------------------------------------------------------------- alphavantage


class AlphaVantageServer(ProviderServer):
    """``/query?function=TIME_SERIES_INTRADAY|TIME_SERIES_DAILY|GLOBAL_QUOTE&symbol=X.BSE&apikey=…``;
    every error is HTTP 200 with "Error Message", "Note" or "Information" (unless ``Limit.style`` is "http")."""

    name = "alphavantage"

    def key_used(self, params: dict[str, str], headers: dict[str, str]) -> tuple[str | None, bool]:
        if "apikey" in params:
            return "query", params["apikey"] == self.api_key
        return None, self.api_key is None

    def auth_reply(self) -> Reply:
        return Reply(200, {"Error Message": "the parameter apikey is invalid or missing. Please claim your free API "
                                            "key on (https://www.alphavantage.co/support/#api-key)."})

    def limited_reply(self, wait_s: int, used: float) -> Reply:
        if self.limit.style == "http":
            return Reply(429, "Too Many Requests", self.retry_headers(wait_s))
        if self.limit.style == "information":
            return Reply(200, {"Information": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 "
                                              "requests per day. Please subscribe to any of the premium plans at "
                                              "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."})
        return Reply(200, {"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per "
                                   "minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if "
                                   "you would like to target a higher API call frequency."})

    def route(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        function, ticker = params.get("function", ""), params.get("symbol", "")
        symbol = self.symbol_of(ticker) if ticker else ""
        invalid = {"Error Message": "Invalid API call. Please retry or visit the documentation "
                                    f"(https://www.alphavantage.co/documentation/) for {function}."}
        if path != "/query":
            return Reply(404, "Not Found")
        if function == "GLOBAL_QUOTE":
            if not self.known(symbol) or self.faults.empty:
                return Reply(200, {"Global Quote": {}})
            r = self.market.quotes([symbol]).iloc[0]
            return Reply(200, {"Global Quote": {
                "01. symbol": ticker, "02. open": num(r["open"]), "03. high": num(r["high"]), "04. low": num(r["low"]),
                "05. price": num(r["price"]), "06. volume": str(int(r["day_volume"])),
                "07. latest trading day": r["ts"].tz_convert(self.tz).strftime("%Y-%m-%d"),
                "08. previous close": num(r["prev_close"]), "09. change": num(r["price"] - r["prev_close"]),
                "10. change percent": f"{100 * (r['price'] / r['prev_close'] - 1):.4f}%"}})
        if function not in ("TIME_SERIES_INTRADAY", "TIME_SERIES_DAILY"):
            return Reply(200, {"Error Message": f"This API function ({function}) does not exist."})
        daily = function == "TIME_SERIES_DAILY"
        if not self.known(symbol) or (not daily and params.get("interval") != "1min"):
            return Reply(200, invalid)
        served = self.wrong_symbol(symbol)
        if served != symbol:
            symbol, ticker = served, self.ticker_of(served)
        rows = self.rows(symbol, "1d" if daily else "1m")
        if params.get("outputsize", "compact") == "compact":
            rows = rows[-100:]
        rows = self.corrupt(rows, symbol)
        if self.faults.empty:
            rows = []
        series = {self.local(r["ts"], daily): {f"{i}. {f}": (str(_vol(r[f])) if f == "volume" else num(r[f]))
                                               for i, f in enumerate(OHLCV, 1)} for r in reversed(rows)}
        size = "Full size" if params.get("outputsize") == "full" else "Compact"
        meta = {"1. Information": "Daily Prices (open, high, low, close) and Volumes" if daily else
                "Intraday (1min) open, high, low, close prices and volume", "2. Symbol": ticker,
                "3. Last Refreshed": next(iter(series), "")}
        meta.update({"4. Output Size": size, "5. Time Zone": self.tz} if daily else
                    {"4. Interval": "1min", "5. Output Size": size, "6. Time Zone": self.tz})
        return Reply(200, {"Meta Data": meta, f"Time Series ({'Daily' if daily else '1min'})": series})
