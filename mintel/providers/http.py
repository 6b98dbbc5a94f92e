"""Shared plumbing of the HTTP providers: one ``httpx.AsyncClient`` per provider, error mapping, a
request log, secret redaction, and the canonical frames their pure parsers build.

``HttpProvider.get_json`` turns every failure into a mintel error:

    HTTP 429                                   -> RateLimited (retry_after_s from Retry-After: seconds or HTTP-date)
    5xx, timeouts, connection errors,
    truncated or malformed JSON                -> ProviderUnavailable
    HTTP 404                                   -> SymbolNotFound (the symbols of the request)
    401 / 403                                  -> ProviderUnavailable (access refused)

and a provider's own in-body errors (HTTP 200 with an error payload) are mapped by its
``check_payload`` hook before the status is looked at. Every request, handshakes included, is
recorded in ``provider.requests`` (a ``RequestLog``) and passed to ``provider.on_request(name,
latency_ms, status, error_kind)`` when set, so the API manager can count, time and judge them.

API keys never reach a log line, an exception message or a repr: URLs are logged and put in errors
without their query, query parameters named like a secret are redacted wherever a URL is shown,
and a filter on httpx's and httpcore's loggers rewrites any record that would carry a key.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mintel import schema
from mintel.config import ProviderSettings, Secret
from mintel.errors import ProviderError, ProviderUnavailable, RateLimited, SymbolNotFound
from mintel.providers.base import Capabilities, RateLimit
from mintel.universe import provider_ticker

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO; a URL may carry an API key.
logging.getLogger("httpx").setLevel(logging.WARNING)

SECRET_PARAMS = ("apikey", "api_key", "token", "access_token", "secret", "password")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
_SECRET_QUERY = re.compile(r"(?i)\b(" + "|".join(SECRET_PARAMS) + r")=([^&\s\"'<>]+)")
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*['\"]?(?:apikey|bearer|token)\s+)([^\s'\"]+)")
_KNOWN_SECRETS: set[str] = set()  # keys of the providers built in this process, redacted wherever they appear


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with secret query parameters, Authorization values and known keys replaced by ``***``."""
    text = _SECRET_QUERY.sub(r"\1=***", str(text))
    text = _AUTH_HEADER.sub(r"\1***", text)
    for s in (*secrets, *_KNOWN_SECRETS):
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def redact_url(url: str | httpx.URL) -> str:
    """A URL fit for a log line: secret query parameters replaced by ``***``."""
    return redact(str(url))


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's business, not ours
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


for _name in ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
              "httpcore.socks"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactFilter) for f in _logger.filters):
        _logger.addFilter(_RedactFilter())


def server_time(response: httpx.Response) -> float | None:
    """The server's clock from its Date header (epoch seconds), None when absent or unreadable."""
    try:
        when = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when is not None and when.tzinfo is not None else None


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds to wait from a response's Retry-After. An HTTP-date is read against the server's own
    Date header when it sent one, so a server whose clock is off does not pause us for the skew."""
    return parse_retry_after(response.headers.get("Retry-After"), now=server_time(response))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(when.timestamp() - now, 0.0)


# ------------------------------------------------------------------------------------ request log


@dataclass(frozen=True)
class RequestRecord:
    """One request a provider made: when, to which endpoint, its answer and what it cost against the limit."""

    ts: pd.Timestamp
    provider: str
    endpoint: str  # path only, never the query
    status: int | None  # None when no answer came (timeout, connection error)
    latency_ms: float
    error_kind: str | None  # None | timeout | cancelled | connection | server_error | malformed | rate_limited | not_found | auth | error
    cost: int = 1  # rate-limit units: requests, or credits for credit-metered providers


class RequestLog:
    """The last ``maxlen`` requests of a provider, for the API manager's health figures."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)

    def append(self, record: RequestRecord) -> None:
        self._records.append(record)

    def records(self, since: pd.Timestamp | None = None) -> list[RequestRecord]:
        return [r for r in self._records if since is None or r.ts >= since]

    def frame(self) -> pd.DataFrame:
        cols = ["ts", "provider", "endpoint", "status", "latency_ms", "error_kind", "cost"]
        return pd.DataFrame([r.__dict__ for r in self._records], columns=cols)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self):
        return iter(list(self._records))


OnRequest = Callable[[str, float, "int | None", "str | None"], None]


def error_kind(exc: BaseException) -> str:
    kind = getattr(exc, "error_kind", None)
    if kind:
        return kind
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, SymbolNotFound):
        return "not_found"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    return "error"


def kinded(exc: ProviderError, kind: str) -> ProviderError:
    """``exc`` tagged with the error kind the request log shows."""
    exc.error_kind = kind  # type: ignore[attr-defined]
    return exc


# ------------------------------------------------------------------------------------ the provider


class HttpProvider:
    """Base of the HTTP providers: settings, one client, ``get_json`` with error mapping, ticker mapping.

    Factory signature shared by every HTTP provider (see ``mintel.providers.base.REGISTRY``):
    ``Provider(settings, *, universe=None, client=None)``. ``universe`` (columns symbol and
    exchange) says which exchange each symbol trades on; others use ``options["exchange"]`` (NSE).
    """

    name = ""
    default_base_url = ""
    default_rate_limit = RateLimit()
    capabilities = Capabilities()
    rate_unit = "requests"  # what ``cost`` counts: requests, or credits

    def __init__(self, settings: ProviderSettings | None = None, *, universe: pd.DataFrame | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        settings = settings or ProviderSettings(name=self.name)
        env = f"MINTEL_{self.name.upper()}_"
        self.settings = settings
        self.options: Mapping[str, Any] = dict(settings.options or {})
        self.base_url = (settings.base_url or os.environ.get(env + "BASE_URL") or self.default_base_url).rstrip("/")
        self._api_key: Secret = settings.api_key if settings.api_key else Secret(os.environ.get(env + "API_KEY"))
        if self._api_key:
            _KNOWN_SECRETS.add(self._api_key.reveal())
        self.timeout_s = float(settings.timeout_s)
        self.rate_limit = RateLimit(
            requests_per_minute=settings.requests_per_minute or self.default_rate_limit.requests_per_minute,
            requests_per_day=settings.requests_per_day or self.default_rate_limit.requests_per_day,
        )
        self.default_exchange = str(self.options.get("exchange", "NSE")).upper()
        self._exchange_of: dict[str, str] = {}
        if universe is not None and "exchange" in universe:
            for sym, exch in zip(universe["symbol"].astype(str), universe["exchange"]):
                if isinstance(exch, str) and exch.strip():
                    self._exchange_of[sym.strip().upper()] = exch.strip().upper()
        self._client = client
        self._own_client = client is None
        self.on_request: OnRequest | None = None
        self.requests = RequestLog()
        self.now: Callable[[], pd.Timestamp] = lambda: pd.Timestamp.now(tz="UTC")
        self.max_concurrency = int(self.options.get("max_concurrency", 8))
        self._semaphore: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self._api_key!r})"

    # -- symbols

    def exchange_of(self, symbol: str) -> str:
        return self._exchange_of.get(symbol.strip().upper(), self.default_exchange)

    def ticker(self, symbol: str, exchange: str | None = None) -> str:
        return provider_ticker(symbol, exchange or self.exchange_of(symbol), self.name)

    def cost(self, symbols: Sequence[str], kind: str = "bars") -> int:
        """Rate-limit units (``rate_unit``) a ``fetch_bars``/``fetch_quotes`` call for ``symbols`` uses."""
        return len(symbols)

    # -- http

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 5.0)),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json, text/plain, */*"},
                follow_redirects=True,
            )
        return self._client

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._semaphore

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    async def send(self, path: str, params: Mapping[str, Any] | None = None, *, headers: Mapping[str, str] | None = None,
                   cost: int = 1, check: Callable[[httpx.Response], None] | None = None) -> httpx.Response:
        """GET ``path``; transport failures become ProviderUnavailable; ``check`` may raise on the answer.
        The request is recorded (log and ``on_request``) whatever happens."""
        url = self._url(path)
        endpoint = redact(httpx.URL(url).path)
        status: int | None = None
        kind: str | None = None
        t0 = time.perf_counter()
        try:
            try:
                response = await self.client.get(url, params=params, headers=headers, timeout=self.timeout_s)
            except httpx.TimeoutException:
                raise kinded(ProviderUnavailable(f"{self.name}: GET {endpoint} timed out after {self.timeout_s:g} s",
                                                 provider=self.name), "timeout") from None
            except httpx.HTTPError as exc:  # connection refused/reset, truncated body, protocol errors
                raise kinded(ProviderUnavailable(f"{self.name}: GET {endpoint} failed ({type(exc).__name__}: "
                                                 f"{redact(str(exc))[:120]})", provider=self.name), "connection") from None
            status = response.status_code
            if check is not None:
                check(response)
            return response
        except ProviderError as exc:
            kind = error_kind(exc)
            raise
        except asyncio.CancelledError:  # the caller's timeout or deadline: no answer came in time
            kind = "cancelled"
            raise
        finally:
            latency_ms = (time.perf_counter() - t0) * 1e3
            now = pd.Timestamp.now(tz="UTC")
            self.requests.append(RequestRecord(now, self.name, endpoint, status, latency_ms, kind, cost))
            log.debug("%s GET %s -> %s in %.0f ms%s", self.name, endpoint, status, latency_ms,
                      f" ({kind})" if kind else "")
            if self.on_request is not None:
                self.on_request(self.name, latency_ms, status, kind)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, symbols: Sequence[str] = (),
                       headers: Mapping[str, str] | None = None, cost: int = 1) -> Any:
        """GET ``path`` and decode its JSON, mapping every failure to a mintel error (see the module doc)."""
        payload: list[Any] = []

        def check(response: httpx.Response) -> None:
            data = decode_json(response)
            self.check_payload(response, data, symbols)
            check_status(self.name, response, symbols)
            if data is MALFORMED:
                raise kinded(ProviderUnavailable(
                    f"{self.name}: GET {redact(response.url.path)}: malformed or truncated JSON "
                    f"({len(response.content)} bytes: {snippet(response.text)!r})", provider=self.name), "malformed")
            payload.append(data)

        await self.send(path, params, headers=headers, cost=cost, check=check)
        return payload[0]

    def check_payload(self, response: httpx.Response, payload: Any, symbols: Sequence[str]) -> None:
        """A provider's own errors in the body (often with HTTP 200); raise the mintel error. Default: none."""


class _Malformed:
    def __repr__(self) -> str:
        return "MALFORMED"


MALFORMED: Any = _Malformed()


def decode_json(response: httpx.Response) -> Any:
    """The JSON body, or MALFORMED when it is empty, truncated or not JSON."""
    try:
        return json.loads(response.content) if response.content else MALFORMED
    except (ValueError, UnicodeDecodeError):
        return MALFORMED


def snippet(text: str, n: int = 80) -> str:
    return redact(" ".join(str(text).split()))[:n]


def check_status(name: str, response: httpx.Response, symbols: Sequence[str]) -> None:
    """Raise the mintel error an HTTP status means; 2xx and 3xx pass."""
    status = response.status_code
    endpoint = redact(response.url.path)
    if status < 400:
        return
    body = snippet(response.text)
    if status == 429:
        retry = retry_after_s(response)
        wait = f", retry after {retry:.0f} s" if retry is not None else ""
        raise kinded(RateLimited(f"{name}: GET {endpoint}: rate limited (HTTP 429{wait})", provider=name,
                                 retry_after_s=retry), "rate_limited")
    if status == 404:
        raise kinded(SymbolNotFound(f"{name}: {', '.join(symbols) or endpoint}: not found (HTTP 404: {body})",
                                    provider=name, symbols=list(symbols)), "not_found")
    if status in (401, 403):
        raise kinded(ProviderUnavailable(f"{name}: GET {endpoint}: access refused (HTTP {status}: {body})",
                                         provider=name), "auth")
    if status >= 500:
        raise kinded(ProviderUnavailable(f"{name}: GET {endpoint}: server error (HTTP {status}: {body})",
                                         provider=name), "server_error")
    raise kinded(ProviderError(f"{name}: GET {endpoint}: HTTP {status}: {body}", provider=name), "error")


# ------------------------------------------------------------------------------------ frames


_BAR_DTYPES = schema.empty_frame("bars").dtypes.to_dict()
_QUOTE_DTYPES = schema.empty_frame("quotes").dtypes.to_dict()
FIELDS = ("open", "high", "low", "close", "volume")


def numbers(values: Sequence[Any] | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(floats, present) from a JSON array of numbers or strings: null or absent values are not
    present; present values that do not read as numbers become NaN (the validate stage names them)."""
    if values is None:
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    raw = list(values)
    if len(raw) != n:
        raise ValueError(f"{len(raw)} values for {n} timestamps")
    present = np.array([v is not None and v != "" for v in raw], dtype=bool)  # a JSON NaN is a value, not a gap
    return pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float), present


_NS_MIN, _NS_MAX = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


def utc_ns(ts: Any) -> pd.DatetimeIndex:
    """``ts`` as UTC nanosecond stamps (naive ones are UTC); instants nanoseconds cannot hold (a
    payload's year 1600 or 2300) become NaT, so the row is rejected rather than the answer crashing."""
    ts = pd.DatetimeIndex(ts)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return ts.where((ts >= _NS_MIN) & (ts <= _NS_MAX)).as_unit("ns")


def local_times(values: Sequence[Any], zone: Any, interval: str, name: str) -> pd.DatetimeIndex:
    """A payload's naive local datetimes (``zone``) as UTC; daily ones keep their date at 00:00 UTC.
    Unreadable values become NaT (their rows are rejected); an unknown ``zone`` is a malformed answer."""
    try:
        local = pd.DatetimeIndex(pd.to_datetime(pd.Series(list(values), dtype=object), errors="coerce"))
        if local.tz is not None:
            raise TypeError("zoned datetimes")
    except (ValueError, TypeError, OverflowError):  # mixed or zoned values: one at a time, zoned ones unreadable
        local = pd.DatetimeIndex([_naive_time(v) for v in values], dtype="datetime64[ns]")
    if interval == "1d":
        return local.normalize().tz_localize("UTC")
    try:
        return local.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
    except (KeyError, ValueError, TypeError) as exc:  # ZoneInfoNotFoundError and pytz's are KeyErrors
        raise kinded(ProviderUnavailable(f"{name}: unknown time zone {str(zone)[:40]!r} in the answer ({type(exc).__name__})",
                                         provider=name), "malformed") from None


def _naive_time(value: Any) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value) if isinstance(value, str) else pd.NaT
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    return pd.NaT if t is pd.NaT or t.tzinfo is not None or not (_NS_MIN.tz_localize(None) <= t <= _NS_MAX.tz_localize(None)) else t


def epoch_s(value: Any) -> pd.Timestamp:
    """A payload's epoch seconds as a UTC Timestamp; NaT when it is not a number nanoseconds can hold."""
    try:
        t = float(value)
    except (TypeError, ValueError, OverflowError):
        return pd.NaT
    return pd.Timestamp(int(t), unit="s", tz="UTC") if np.isfinite(t) and abs(t) < 9.2e9 else pd.NaT


def bars_frame(interval: str, symbol: str | Sequence[str], ts: Any, fields: Mapping[str, np.ndarray], source: str,
               present: Mapping[str, np.ndarray] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, rejected) in the canonical bars columns from parallel arrays.

    Rows where every price is missing are minutes without trades and are skipped; rows where only
    some fields are missing (``present`` False, or NaN when ``present`` is not given) are rejected
    with a reason naming the fields. Values are otherwise kept as sent: validity (finite, positive,
    ``low <= high`` ...) is the validate stage's job (``schema.split_valid_bars``).
    """
    ts = utc_ns(ts)
    n = len(ts)
    frame = pd.DataFrame({
        "interval": interval, "symbol": symbol if isinstance(symbol, str) else list(symbol), "ts": ts,
        **{f: np.asarray(fields[f], dtype=float) for f in FIELDS},
        "source": source, "quality": np.float32(1.0),
        "ingested_at": pd.Series(pd.NaT, index=range(n), dtype=_BAR_DTYPES["ingested_at"]),
    }, index=range(n)).astype(_BAR_DTYPES)
    have = {f: (np.asarray(present[f], dtype=bool) if present is not None and f in present
                else ~np.isnan(frame[f].to_numpy())) for f in FIELDS}
    no_price = ~(have["open"] | have["high"] | have["low"] | have["close"])
    no_time = frame["ts"].isna().to_numpy()
    complete = np.logical_and.reduce([have[f] for f in FIELDS]) & ~no_time
    partial = ~complete & (~no_price | no_time)
    rejected = frame[partial].copy()
    rejected["reason"] = [
        "timestamp missing or unreadable" if no_time[i] else
        f"{', '.join(f for f in FIELDS if not have[f][i])} missing in the payload" for i in np.flatnonzero(partial)
    ]
    return frame[complete].reset_index(drop=True), rejected.reset_index(drop=True)


def empty_bars() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = schema.empty_frame("bars")
    rejected = bars.copy()
    rejected["reason"] = pd.Series(dtype=object)
    return bars, rejected


def concat_bars(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return schema.empty_frame("bars")
    out = pd.concat(frames, ignore_index=True).astype(_BAR_DTYPES)
    return out.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)


def quotes_frame(rows: Sequence[Mapping[str, Any]], source: str) -> pd.DataFrame:
    """Canonical quotes from dicts with the quotes columns (missing ones become null)."""
    if not rows:
        return schema.empty_frame("quotes")
    frame = pd.DataFrame(list(rows))
    frame = frame.reindex(columns=list(_QUOTE_DTYPES))
    frame["source"] = source
    frame["ts"] = utc_ns(pd.to_datetime(frame["ts"], utc=True, errors="coerce"))
    for c in ("price", "open", "high", "low", "prev_close", "day_volume", "bid", "ask"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame.astype(_QUOTE_DTYPES).reset_index(drop=True)


def in_range(bars: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    """Rows with ``start <= ts <= end`` (either bound optional)."""
    keep = np.ones(len(bars), dtype=bool)
    if start is not None:
        keep &= (bars["ts"] >= utc(start)).to_numpy()
    if end is not None:
        keep &= (bars["ts"] <= utc(end)).to_numpy()
    return bars[keep].reset_index(drop=True)


def completed(bars: pd.DataFrame, interval: str, now: pd.Timestamp) -> pd.DataFrame:
    """Bars that have closed by ``now``; a bar still forming would be written before its last trade."""
    if bars.empty:
        return bars
    length = pd.Timedelta(days=1) if interval == "1d" else pd.Timedelta(interval.replace("m", "min"))
    return bars[(bars["ts"] + length <= now).to_numpy()].reset_index(drop=True)


def session_dates(ts: pd.DatetimeIndex, tz: str | None) -> pd.DatetimeIndex:
    """Each instant's local date in ``tz``, as 00:00 UTC: how daily bars are keyed."""
    ts = pd.DatetimeIndex(ts)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts
    local = ts.tz_convert(tz or "UTC")
    return pd.DatetimeIndex(local.tz_localize(None).normalize()).tz_localize("UTC").as_unit("ns")


def utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def raise_first(results: Sequence[Any], symbols: Sequence[str], name: str) -> tuple[list[Any], list[str]]:
    """Split gathered results into values and not-found symbols; re-raise any other error, and
    SymbolNotFound when no symbol was found at all."""
    values, missing = [], []
    for sym, r in zip(symbols, results):
        if isinstance(r, SymbolNotFound):
            missing.extend(r.symbols or [sym])
        elif isinstance(r, BaseException):
            raise r
        else:
            values.append(r)
    if missing and not values:
        raise kinded(SymbolNotFound(f"{name}: unknown symbols {', '.join(missing[:10])}", provider=name,
                                    symbols=missing), "not_found")
    if missing:
        log.info("%s: %d symbols not found (%s)", name, len(missing), ", ".join(missing[:5]))
    return values, missing
