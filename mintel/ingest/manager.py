"""The API manager: one cycle's symbols spread over several rate-limited providers, with retries,
a circuit breaker per provider, failover and health figures.

A cycle (``fetch_bars`` / ``fetch_quotes``):

1. plan: the symbols are dealt to the providers whose breaker is closed, in proportion to what each
   can serve soonest (spare requests in its window now plus its rate, times its weight, water-filled
   so they all finish together); a half-open provider gets one batch, its probe;
2. dispatch: each provider sends batches of up to ``symbols_per_request`` whenever its sliding-window
   limiter has room, many requests in flight at once; a provider that has drained its own share takes
   the pool of failed-over symbols, then steals from providers that are blocked (limit reached), so
   the combined capacity is used rather than the fastest provider's;
3. failures: a timeout or a 5xx is retried on the same provider after a jittered exponential backoff,
   ``retries`` times, then its symbols fail over to another provider in the same cycle; a 429 pauses
   the provider's limiter for its Retry-After and its symbols wait (or are stolen); a symbol a provider
   does not know joins that provider's unknown set and is tried on one other provider; a symbol left
   out of an answer that carried others is an error and fails over; one left out of an empty answer
   gets a second chance elsewhere only if the cycle found data at all (a closed market answers
   nothing, and that is not an error).

Times are the event loop's clock, so under ``VirtualTimeLoop`` minutes of traffic run in milliseconds.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from mintel import schema
from mintel.config import Settings
from mintel.errors import ConfigError
from mintel.ingest.cycle import NO_DATA, NOT_FOUND, FetchReport, ProviderCycle, _Cycle  # noqa: F401 (NO_DATA: re-exported)
from mintel.ingest.health import CLOSED, HALF_OPEN, Lane, health_frame, health_rows
from mintel.ingest.limiter import loop_time

log = logging.getLogger(__name__)

__all__ = ["ApiManager", "Fetched", "FetchReport", "Policy", "ProviderCycle"]


@dataclass(frozen=True)
class Policy:
    """How hard the manager tries. Times in seconds."""

    retries: int = 2  # further tries of a failed batch on the same provider before it fails over
    max_attempts: int = 6  # requests one symbol may take in a cycle, over all providers
    backoff_s: float = 0.5  # first retry waits between half of this and this; doubles per retry
    backoff_max_s: float = 20.0
    failure_threshold: int = 5  # consecutive failures that open a provider's breaker
    cooldown_s: float = 30.0  # open -> half-open probe
    default_retry_after_s: float = 10.0  # a 429 that did not say how long to wait
    max_in_flight: int = 16  # concurrent requests per provider
    margin_s: float = 0.5  # added to each limiter window: a provider stamps our requests on arrival
    retry_silent: bool = True  # second chance elsewhere for symbols left out of an empty answer
    unlimited_latency_s: float = 0.1  # assumed latency when planning for a provider without a limit
    seed: int | None = None  # backoff jitter


class Fetched(NamedTuple):
    """What a cycle returns: the combined canonical rows and the cycle's report."""

    data: pd.DataFrame
    report: FetchReport


class ApiManager:
    """Fetches a cycle's quotes or bars from several providers within their limits (see module doc).

    ``providers``: objects speaking mintel.providers.base.Provider. ``settings``: limits, weights and
    timeouts per provider (``ProviderSettings.requests_per_minute`` wins over the provider's own
    ``rate_limit``). Figures persist across cycles; ``health()`` reports them.
    """

    def __init__(self, providers: Iterable, settings: Settings | None = None, *, policy: Policy | None = None) -> None:
        self.policy = p = policy or Policy()
        settings = settings or Settings()
        self.lanes: dict[str, Lane] = {}
        for provider in providers:
            if provider.name in self.lanes:
                raise ConfigError(f"provider {provider.name!r}: given twice")
            self.lanes[provider.name] = Lane(provider, settings.provider_settings(provider.name), margin_s=p.margin_s,
                                             failure_threshold=p.failure_threshold, cooldown_s=p.cooldown_s)
        if not self.lanes:
            raise ConfigError("api manager: no providers")
        self.rng = random.Random(p.seed)
        self.cycles = 0

    async def fetch_bars(self, symbols: Iterable[str], interval: str, start: pd.Timestamp | None = None,
                         end: pd.Timestamp | None = None, *, deadline_s: float | None = None) -> Fetched:
        """Bars for ``symbols`` (schema.BARS), each symbol's rows from one provider."""

        def call(provider, batch: list[str]) -> Awaitable[pd.DataFrame]:
            return provider.fetch_bars(batch, interval, start, end)

        return await self._cycle("bars", symbols, call, interval, deadline_s)

    async def fetch_quotes(self, symbols: Iterable[str], *, deadline_s: float | None = None) -> Fetched:
        """Latest quotes for ``symbols`` (schema.QUOTES)."""
        return await self._cycle("quotes", symbols, lambda provider, batch: provider.fetch_quotes(batch), None, deadline_s)

    async def _cycle(self, kind: str, symbols: Iterable[str], call: Callable[[object, list[str]], Awaitable[pd.DataFrame]],
                     interval: str | None, deadline_s: float | None) -> Fetched:
        lanes = [lane for lane in self.lanes.values() if lane.serves(kind, interval)]
        if not lanes:
            raise ConfigError(f"api manager: no provider serves {kind}{' ' + interval if interval else ''}")
        self.cycles += 1
        symbols = list(dict.fromkeys(symbols))
        cycle = _Cycle(self, kind, symbols, call, lanes, deadline_s)
        known = []
        for s in symbols:
            # Not retried forever: two providers (or every one, when fewer) said they do not know it.
            if sum(s in lane.unknown for lane in lanes) >= min(2, len(lanes)):
                cycle.finish(s, NOT_FOUND)
            else:
                known.append(s)
        cycle.seed(self.plan(known, lanes))
        frames = await cycle.run()
        data = _combine(kind, frames)
        report = cycle.report(len(data))
        log.info("%s", report.line())
        return Fetched(data, report)

    def plan(self, symbols: list[str], lanes: list[Lane]) -> dict[str | None, list[str]]:
        """Symbols per provider name (``None``: the pool any provider may take from).

        Each closed provider can serve ``weight * (spare + rate * T)`` symbols by time T (at most what
        its day has left); T is chosen so the shares add up, so all providers finish together.
        A half-open provider gets one batch, its probe. Symbols a provider does not know go to the pool.
        """
        now = loop_time()
        plan: dict[str | None, list[str]] = {}
        todo = list(symbols)
        for lane in lanes:
            if lane.breaker.state == HALF_OPEN and lane.breaker.allows() and todo:
                probe = [s for s in todo[: lane.batch_size * 4] if s not in lane.unknown][: lane.batch_size]
                plan[lane.name] = probe
                taken = set(probe)
                todo = [s for s in todo if s not in taken]
        closed = [lane for lane in lanes if lane.breaker.state == CLOSED]
        pool: list[str] = []
        if closed and todo:
            caps = [lane.capacity(now, self.policy.max_in_flight, self.policy.unlimited_latency_s) for lane in closed]
            counts = _round_shares(_water_fill(len(todo), caps, [lane.weight for lane in closed]), len(todo))
            i = 0
            for lane, n in zip(closed, counts):
                chunk, i = todo[i : i + n], i + n
                plan[lane.name] = [s for s in chunk if s not in lane.unknown]
                pool += [s for s in chunk if s in lane.unknown]
            todo = todo[i:]
        plan[None] = pool + todo
        return plan

    def backoff_s(self, failures: int) -> float:
        """Exponential backoff with equal jitter: half the step fixed, half random."""
        step = min(self.policy.backoff_s * 2 ** max(failures - 1, 0), self.policy.backoff_max_s)
        return step / 2 + self.rng.uniform(0, step / 2)

    def health(self, ts: pd.Timestamp | None = None) -> list[dict]:
        """One METRICS row (scope ``provider``) per provider: capacity, use, errors, latency, breaker."""
        return health_rows(self.lanes.values(), ts=ts)

    def health_frame(self, ts: pd.Timestamp | None = None) -> pd.DataFrame:
        """``health()`` with every METRICS column, ready to append to the lake's metrics table."""
        return health_frame(self.health(ts))

    def forget_unknown(self) -> None:
        """Ask every provider again for the symbols it said it did not know (new listings)."""
        for lane in self.lanes.values():
            lane.unknown.clear()

    async def aclose(self) -> None:
        for lane in self.lanes.values():
            await lane.provider.aclose()


def _water_fill(n: int, caps: list[tuple[float, float, float]], weights: list[float]) -> list[float]:
    """Shares summing to n with share_i = min(cap_i, w_i * (spare_i + rate_i * T)) for one T >= 0."""

    def shares(t: float) -> list[float]:
        return [min(cap, w * spare + (w * rate * t if w * rate > 0 else 0.0)) for (spare, rate, cap), w in zip(caps, weights)]

    most = shares(math.inf)
    if sum(most) <= n:  # cannot all be served: everyone its most, the rest to the pool
        return most
    now = shares(0.0)
    if sum(now) >= n:  # spare capacity alone covers it: in proportion to the spare
        return [x * n / sum(now) for x in now]
    lo, hi = 0.0, 1.0
    while sum(shares(hi)) < n:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(shares(mid)) < n else (lo, mid)
    return shares(hi)


def _round_shares(shares: list[float], n: int) -> list[int]:
    """Integer counts adding up to at most ``n``, by largest remainder."""
    floors = [int(math.floor(s)) for s in shares]
    left = min(n, int(round(sum(shares)))) - sum(floors)
    for i in sorted(range(len(shares)), key=lambda i: shares[i] - floors[i], reverse=True)[: max(left, 0)]:
        floors[i] += 1
    return floors


def _combine(kind: str, frames: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """The cycle's answers as one canonical frame (``source``: the provider, when it did not say),
    deduplicated on the table's key."""
    if not frames:
        return schema.empty_frame(kind)
    data = pd.concat([f for _, f in frames], ignore_index=True)
    if "source" not in data or data["source"].isna().any():
        by = pd.Series(np.repeat([name for name, _ in frames], [len(f) for _, f in frames]), index=data.index)
        data["source"] = data["source"].fillna(by) if "source" in data else by
    # Columns of the schema, values as the providers gave them: bad rows (a NaN close, high < low)
    # pass through so the service can quarantine them with their reason instead of failing the cycle.
    data = data.reindex(columns=schema.kind(kind).schema.names)
    return data.drop_duplicates(list(schema.kind(kind).key), keep="last", ignore_index=True)
