"""Each provider as the manager drives it (a ``Lane``: limiter, circuit breaker, running figures,
unknown symbols) and the health rows the metrics table shows.

Breaker: ``closed`` (requests flow) -> ``open`` after ``failure_threshold`` consecutive failures
(no requests) -> ``half_open`` once ``cooldown_s`` has passed (one probe request at a time) ->
``closed`` when a probe succeeds, ``open`` again (a fresh cooldown) when it fails.
Rate limiting (429) and unknown symbols are not failures: the provider is up and answering.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mintel import schema
from mintel.config import ProviderSettings
from mintel.ingest.limiter import SlidingWindowLimiter, loop_time

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Stops sending to a provider that keeps failing and probes it again after a cooldown."""

    def __init__(self, name: str = "", *, failure_threshold: int = 5, cooldown_s: float = 30.0,
                 time_fn: Callable[[], float]) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._time = time_fn
        self._state = CLOSED
        self.failures = 0  # consecutive
        self.opened_at = float("-inf")
        self.probing = False  # a half-open probe is in flight
        self.transitions: list[tuple[float, str]] = []  # (time, new state), for the health page and tests

    @property
    def state(self) -> str:
        if self._state == OPEN and self._time() >= self.opened_at + self.cooldown_s:
            self._set(HALF_OPEN)
        return self._state

    def reopens_at(self) -> float:
        """When an open breaker lets a probe through (-inf when not open)."""
        return self.opened_at + self.cooldown_s if self._state == OPEN else float("-inf")

    def allows(self) -> bool:
        """Whether a request may be sent now (half-open: only when no probe is in flight)."""
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self.probing)

    def on_send(self) -> None:
        if self.state == HALF_OPEN:
            self.probing = True

    def record_success(self) -> None:
        self.failures = 0
        self.probing = False
        if self._state != CLOSED:
            self._set(CLOSED)

    def record_failure(self) -> None:
        self.failures += 1
        self.probing = False
        state = self.state
        if state == HALF_OPEN or (state == CLOSED and self.failures >= self.failure_threshold):
            self.opened_at = self._time()
            self._set(OPEN)

    def record_neutral(self) -> None:
        """A request that says nothing about the provider's health (429, unknown symbol) ended."""
        self.probing = False

    def _set(self, state: str) -> None:
        if state != self._state:
            log.info("provider %s: breaker %s -> %s (%d consecutive failures)", self.name, self._state, state, self.failures)
            self._state = state
            self.transitions.append((self._time(), state))


@dataclass
class ProviderStats:
    """Running counts of one provider since the manager started, and its recent latencies."""

    requests: int = 0
    errors: int = 0  # failed requests: timeouts, 5xx, malformed or partial answers
    rate_limited: int = 0  # 429 answers
    not_found: int = 0  # requests answered with SymbolNotFound
    symbols_answered: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self.latencies_ms, float), q)) if self.latencies_ms else float("nan")


class Lane:
    """One provider as the manager drives it: its limiter, breaker, figures and unknown symbols.

    Limits come from ``settings`` (``requests_per_minute``/``_per_day``), else from the provider's own
    ``rate_limit``. A provider that charges per symbol (Twelve Data's credits) says so with a
    ``request_cost(n_symbols) -> float`` method, or with ``cost(symbols)`` (the HTTP adapters, in their
    ``rate_unit``); otherwise a request costs 1.
    """

    def __init__(self, provider, settings: ProviderSettings, *, margin_s: float = 0.5, failure_threshold: int = 5,
                 cooldown_s: float = 30.0) -> None:
        self.provider = provider
        self.name: str = provider.name
        rate = getattr(provider, "rate_limit", None)
        rpm = settings.requests_per_minute if settings.requests_per_minute is not None else getattr(rate, "requests_per_minute", None)
        rpd = settings.requests_per_day if settings.requests_per_day is not None else getattr(rate, "requests_per_day", None)
        self.limiter = SlidingWindowLimiter(rpm, rpd, margin_s=margin_s, name=self.name)
        self.breaker = CircuitBreaker(self.name, failure_threshold=failure_threshold, cooldown_s=cooldown_s,
                                      time_fn=loop_time)
        self.stats = ProviderStats()
        self.weight = float(settings.weight)
        self.timeout_s = settings.timeout_s
        self.capabilities = provider.capabilities
        self.unknown: set[str] = set()  # symbols this provider said it does not know
        self.in_flight = 0
        self._cost_fn: Callable[[int], float] | None = getattr(provider, "request_cost", None)
        call_cost = getattr(provider, "cost", None)  # the HTTP adapters: units a call for these symbols uses
        if self._cost_fn is None and callable(call_cost):
            self._cost_fn = lambda n: call_cost([""] * n)
        size = max(int(self.capabilities.symbols_per_request), 1)
        while size > 1 and self.cost(size) > self.limiter.max_cost():
            size -= 1
        self.batch_size = size
        self.limiter.free_at(self.cost(1))  # raises ConfigError when even one symbol can never fit

    def cost(self, n_symbols: int) -> float:
        return float(self._cost_fn(n_symbols)) if self._cost_fn is not None else 1.0

    def serves(self, kind: str, interval: str | None) -> bool:
        c = self.capabilities
        if kind == "quotes":
            return bool(c.quotes)
        if interval not in c.intervals:
            return False
        return bool(c.daily_bars) if interval.endswith(("d", "w", "mo")) else bool(c.intraday_bars)

    def symbols_per_s(self, max_in_flight: int, unlimited_latency_s: float) -> float:
        """Sustained symbols per second: the minute limit, or concurrency over latency when unlimited."""
        spc = self.batch_size / self.cost(self.batch_size)
        if self.limiter.requests_per_minute is None:
            latency = self.stats.latency_ms(50) / 1e3
            latency = latency if latency > 0 else unlimited_latency_s
            return max_in_flight * self.batch_size / latency
        return self.limiter.requests_per_minute / 60.0 * spc

    def capacity(self, now: float, max_in_flight: int, unlimited_latency_s: float) -> tuple[float, float, float]:
        """(symbols it can send now, symbols per second after that, at most this many) for planning."""
        lim = self.limiter
        spc = self.batch_size / self.cost(self.batch_size)
        spare = 0.0 if lim.requests_per_minute is None else lim.spare(now) * spc
        cap = math.inf
        if lim.requests_per_day is not None:
            cap = max(lim.requests_per_day - lim.used(86_400.0, now), 0.0) * spc
        return spare, self.symbols_per_s(max_in_flight, unlimited_latency_s), cap

    def __repr__(self) -> str:
        return f"Lane({self.name}, {self.limiter!r}, breaker {self.breaker.state})"


def health_rows(lanes: "Iterable[Lane]", *, ts: pd.Timestamp | None = None, now: float | None = None) -> list[dict]:
    """One metrics row (scope ``provider``) per lane, with the METRICS schema's column names."""
    ts = ts if ts is not None else pd.Timestamp.now(tz="UTC")
    rows = []
    for lane in lanes:
        s = lane.stats
        lim = lane.limiter
        rows.append({
            "ts": ts, "scope": "provider", "name": lane.name,
            "requests": s.requests, "errors": s.errors, "rate_limited": s.rate_limited,
            "symbols_answered": s.symbols_answered,
            "capacity_per_min": float(lim.requests_per_minute) if lim.requests_per_minute is not None else float("nan"),
            "used_per_min": lim.used(now=now),
            "error_rate": s.error_rate,
            "latency_ms_p50": s.latency_ms(50), "latency_ms_p95": s.latency_ms(95),
            "state": lane.breaker.state,
        })
    return rows


def health_frame(rows: list[dict]) -> pd.DataFrame:
    """``rows`` as a DataFrame with every METRICS column, in the schema's order and dtypes."""
    if not rows:
        return schema.empty_frame("metrics")
    return schema.to_pandas(schema.conform("metrics", pd.DataFrame(rows)))
