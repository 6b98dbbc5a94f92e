"""One cycle of the API manager: the symbols' dispatch to the providers' queues and the shared pool,
retries after a backoff, failover to another provider, second chances for symbols left out of empty
answers, and the cycle's report (``FetchReport``, one ``ProviderCycle`` per provider). The manager
(mintel.ingest.manager) plans the cycle and owns what lasts across cycles; see its module doc.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from mintel.errors import ProviderError, RateLimited, SymbolNotFound
from mintel.ingest.health import CLOSED, OPEN, Lane
from mintel.ingest.limiter import loop_time

if TYPE_CHECKING:
    from mintel.ingest.manager import ApiManager

log = logging.getLogger("mintel.ingest.manager")  # the manager's logger: its cycles' records keep their name

__all__ = ["FetchReport", "ProviderCycle"]

NOT_FOUND = "not found"
NO_DATA = "no data"  # every provider asked answered, with nothing for it (a closed market)


@dataclass
class ProviderCycle:
    """One provider's part in one cycle."""

    name: str
    planned: int = 0  # symbols dealt to it by the plan
    taken: int = 0  # symbols it took from the pool or stole from a blocked provider
    answered: int = 0  # symbols it returned rows for
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    not_found: int = 0
    state: str = CLOSED  # breaker state at the end of the cycle


@dataclass
class FetchReport:
    """What one cycle asked for, what came back, and from whom."""

    kind: str  # bars | quotes
    cycle: int
    asked: int
    answered: int
    missing: list[str]  # asked, not answered and not unknown: why in ``reasons``
    not_found: list[str]  # no provider asked knows them
    reasons: dict[str, str]  # symbol -> why it is missing
    requests: int
    errors: int
    rate_limited: int
    retries: int  # symbols sent again to the same provider after a failure
    failovers: int  # symbols moved to another provider
    rows: int
    elapsed_s: float  # on the event loop's clock
    by_provider: dict[str, ProviderCycle] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """Missing symbols a provider should have answered (not those no provider had data for)."""
        return [s for s in self.missing if self.reasons.get(s) != NO_DATA]

    @property
    def error_rate(self) -> float:
        """Share of the asked symbols that failed, after retries and failover."""
        return len(self.failed) / self.asked if self.asked else 0.0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([vars(p) for p in self.by_provider.values()])

    def line(self) -> str:
        parts = "  ".join(f"{p.name} {p.answered}" for p in self.by_provider.values())
        return (f"{self.kind} cycle {self.cycle}: {self.answered}/{self.asked} answered, {len(self.missing)} missing, "
                f"{len(self.not_found)} not found; {self.requests} requests, {self.errors} errors, "
                f"{self.rate_limited} rate limited, {self.failovers} failovers in {self.elapsed_s:.1f} s  [{parts}]")


class _Symbol:
    __slots__ = ("attempts", "failures", "excluded", "second_chance", "not_found_on")

    def __init__(self) -> None:
        self.attempts = 0
        self.failures: dict[str, int] = {}
        self.excluded: set[str] = set()  # providers it failed over from
        self.second_chance = False
        self.not_found_on = 0


class _Cycle:
    """One cycle's bookkeeping: queues per provider, the pool, requests in flight, outcomes."""

    def __init__(self, manager: ApiManager, kind: str, symbols: list[str], call: Callable, lanes: list[Lane],
                 deadline_s: float | None) -> None:
        self.m = manager
        self.policy = manager.policy
        self.kind = kind
        self.symbols = symbols
        self.call = call
        self.lanes = lanes
        self.state = {s: _Symbol() for s in symbols}
        self.queues: dict[str, dict[str, None]] = {lane.name: {} for lane in lanes}  # ordered sets
        self.pool: dict[str, None] = {}
        self.answered: dict[str, str] = {}
        self.final: dict[str, str] = {}  # symbol -> why it is not answered
        self.silent: list[tuple[Lane, list[str]]] = []  # (provider, symbols left out of an empty answer)
        self.frames: list[tuple[str, pd.DataFrame]] = []  # (provider, its rows)
        self.tasks: set[asyncio.Task] = set()
        self.timers: dict[int, asyncio.TimerHandle] = {}  # backoffs before a retry
        self.crash: BaseException | None = None
        self.wake = asyncio.Event()
        self.per = {lane.name: ProviderCycle(lane.name) for lane in lanes}
        self.requests = self.errors = self.rate_limited = self.retries = self.failovers = 0
        self.start = loop_time()
        self.deadline = self.start + deadline_s if deadline_s is not None else math.inf

    def seed(self, plan: dict[str | None, list[str]]) -> None:
        for name, symbols in plan.items():
            symbols = [s for s in symbols if s not in self.final]
            if name is None:
                self.pool.update(dict.fromkeys(symbols))
            else:
                self.queues[name].update(dict.fromkeys(symbols))
                self.per[name].planned = len(symbols)

    # -- the loop

    async def run(self) -> list[tuple[str, pd.DataFrame]]:
        woke_at = -math.inf  # the time the loop last slept until
        try:
            while True:
                # A timer may fire a hair early (clock resolution, float rounding): it is its time all the same.
                now = max(loop_time(), woke_at)
                if now >= self.deadline:
                    self._expire()
                    break
                self._dispatch(now)
                if not self.tasks and not self.timers and not self._queued_work(now):
                    if self._second_chances():
                        continue
                    for s in self._queued():
                        self.finish(s, "no provider left to ask")
                    break
                self.wake.clear()
                until = min(self._next_wake(now), self.deadline)
                try:
                    await asyncio.wait_for(self.wake.wait(), None if math.isinf(until) else until - now)
                    woke_at = -math.inf
                except TimeoutError:
                    woke_at = until
                if self.crash is not None:
                    raise self.crash
        finally:
            await self._cancel()
        return self.frames

    def _dispatch(self, now: float) -> None:
        """Send every batch some provider may send now, one batch per provider per round."""
        cap = self.policy.max_in_flight
        progress = True
        while progress:
            progress = False
            for lane in self.lanes:
                if lane.in_flight >= cap or not lane.breaker.allows():
                    continue
                batch, source = self._peek(lane, now)
                if not batch:
                    continue
                cost = lane.cost(len(batch))
                if not lane.limiter.try_acquire(cost, now):
                    continue
                for s in batch:
                    del source[s]
                if source is not self.queues[lane.name]:
                    self.per[lane.name].taken += len(batch)
                self._send(lane, batch)
                progress = True

    def _peek(self, lane: Lane, now: float) -> tuple[list[str], dict[str, None]]:
        """The next batch for ``lane``: its own queue, else the pool, else the tail of a blocked provider's."""
        n = lane.batch_size
        own = self.queues[lane.name]
        if own:
            return _first(own, n, None), own
        take = self._eligible(lane)
        if self.pool:
            batch = _first(self.pool, n, take)
            if batch:
                return batch, self.pool
        victim, longest = None, 0.0
        for other in self.lanes:
            queue = self.queues[other.name]
            if other is lane or not queue or not self._blocked(other, now):
                continue
            rate = other.symbols_per_s(self.policy.max_in_flight, self.policy.unlimited_latency_s)
            remaining = len(queue) / rate if rate > 0 else math.inf
            if remaining > longest:
                victim, longest = other, remaining
        if victim is None:
            return [], own
        queue = self.queues[victim.name]
        return _first(queue, n, take, reverse=True), queue

    def _blocked(self, lane: Lane, now: float) -> bool:
        if lane.in_flight >= self.policy.max_in_flight or not lane.breaker.allows():
            return True
        n = min(len(self.queues[lane.name]), lane.batch_size) or 1
        return lane.limiter.free_at(lane.cost(n), now) > now

    def _eligible(self, lane: Lane) -> Callable[[str], bool]:
        name, unknown, state = lane.name, lane.unknown, self.state
        return lambda s: name not in state[s].excluded and s not in unknown

    def _queued(self) -> list[str]:
        return [s for q in (self.pool, *self.queues.values()) for s in q]

    def _queued_work(self, now: float) -> bool:
        """Whether some queued symbol can still be sent by a provider whose breaker is not open."""
        return any(self._peek(lane, now)[0] for lane in self.lanes if lane.breaker.state != OPEN)

    def _next_wake(self, now: float) -> float:
        """When a blocked provider with work may send again (completions and timers wake us anyway).

        Work is what ``_peek`` would hand the provider, so a provider that may send now has none
        (``_dispatch`` just ran) and the loop never spins.
        """
        at = math.inf
        for lane in self.lanes:
            if not self._peek(lane, now)[0]:
                continue
            if lane.breaker.state == OPEN:
                at = min(at, lane.breaker.reopens_at())
            elif lane.in_flight < self.policy.max_in_flight and lane.breaker.allows():
                n = min(len(self.queues[lane.name]), lane.batch_size) or lane.batch_size
                at = min(at, lane.limiter.free_at(lane.cost(n), now))
        return at if at > now else now + 0.01  # (never reached; a guard against spinning)

    # -- requests

    def _send(self, lane: Lane, batch: list[str]) -> None:
        lane.in_flight += 1
        lane.breaker.on_send()
        lane.stats.requests += 1
        self.per[lane.name].requests += 1
        self.requests += 1
        for s in batch:
            self.state[s].attempts += 1
        task = asyncio.get_running_loop().create_task(self._request(lane, batch))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        self.wake.set()

    async def _request(self, lane: Lane, batch: list[str]) -> None:
        t0 = loop_time()
        try:
            async with asyncio.timeout(lane.timeout_s):
                data = await self.call(lane.provider, batch)
        except RateLimited as exc:
            self._on_rate_limited(lane, batch, exc)
        except SymbolNotFound as exc:
            lane.stats.latencies_ms.append((loop_time() - t0) * 1e3)
            self._on_not_found(lane, batch, exc)
        except (ProviderError, TimeoutError) as exc:
            self._on_failure(lane, batch, exc)
        except asyncio.CancelledError:  # the cycle's deadline: a probe cut short says nothing
            lane.breaker.record_neutral()
            raise
        except Exception as exc:  # a provider bug: stop the cycle and show it, never swallow it
            self.crash = exc
        else:
            lane.stats.latencies_ms.append((loop_time() - t0) * 1e3)
            self._on_answer(lane, batch, data)
        finally:
            lane.in_flight -= 1

    def _on_answer(self, lane: Lane, batch: list[str], data: pd.DataFrame) -> None:
        lane.breaker.record_success()
        got = set(data["symbol"].to_numpy()) if len(data) else set()
        if not got <= set(batch):  # rows nobody asked this provider for are dropped
            data = data[data["symbol"].isin(batch)]
            got &= set(batch)
        if got:
            self.frames.append((lane.name, data))
            for s in got:
                self.answered[s] = lane.name
            self.per[lane.name].answered += len(got)
            lane.stats.symbols_answered += len(got)
        missing = [s for s in batch if s not in got]
        if not missing:
            return
        if got:  # a partial answer: the provider lost some of the batch
            self._count_error(lane)
            for s in missing:
                self._fail_over(lane, s, f"{lane.name} left it out of its answer")
        else:
            self.silent.append((lane, missing))

    def _on_not_found(self, lane: Lane, batch: list[str], exc: SymbolNotFound) -> None:
        lane.breaker.record_success()  # it answered: it is up
        names = [s for s in exc.symbols if s in self.state and s in batch] or list(batch)
        lane.unknown.update(names)
        lane.stats.not_found += 1
        self.per[lane.name].not_found += len(names)
        for s in names:
            st = self.state[s]
            st.not_found_on += 1
            if st.not_found_on >= 2:
                self.finish(s, NOT_FOUND)
            else:
                self._fail_over(lane, s, NOT_FOUND, count=False)
        for s in batch:
            if s not in names:  # the rest of the batch is fine: ask again, no attempt spent
                self.state[s].attempts -= 1
                self.queues[lane.name][s] = None

    def _on_rate_limited(self, lane: Lane, batch: list[str], exc: RateLimited) -> None:
        lane.breaker.record_neutral()
        lane.stats.rate_limited += 1
        self.per[lane.name].rate_limited += 1
        self.rate_limited += 1
        wait = exc.retry_after_s if exc.retry_after_s is not None else self.policy.default_retry_after_s
        lane.limiter.pause_until(loop_time() + wait)
        for s in batch:  # they wait for the pause (or a provider with room steals them)
            self.state[s].attempts -= 1
            self.queues[lane.name][s] = None

    def _on_failure(self, lane: Lane, batch: list[str], exc: BaseException) -> None:
        self._count_error(lane)
        lane.breaker.record_failure()
        why = f"{lane.name}: {exc or type(exc).__name__}"
        log.debug("%s failed for %d symbols: %s", lane.name, len(batch), why)
        if lane.breaker.state == OPEN:
            self.pool.update(self.queues[lane.name])  # its share goes to the others
            self.queues[lane.name].clear()
        again = []
        for s in batch:
            st = self.state[s]
            st.failures[lane.name] = failures = st.failures.get(lane.name, 0) + 1
            if st.attempts >= self.policy.max_attempts:
                self.finish(s, f"{st.attempts} attempts failed, last {why}")
            elif failures <= self.policy.retries and lane.breaker.state != OPEN:
                again.append(s)
            else:
                self._fail_over(lane, s, why)
        if again:
            self.retries += len(again)
            delay = self.m.backoff_s(max(self.state[s].failures[lane.name] for s in again))
            key = id(again)
            self.timers[key] = asyncio.get_running_loop().call_later(delay, self._retry, key, lane, again)

    def _retry(self, key: int, lane: Lane, symbols: list[str]) -> None:
        del self.timers[key]
        target = self.queues[lane.name] if lane.breaker.state != OPEN else self.pool
        target.update(dict.fromkeys(symbols))
        self.wake.set()

    def _fail_over(self, lane: Lane, s: str, why: str, *, count: bool = True) -> bool:
        """Move ``s`` to the pool for any other provider; False (and finished) when none is left."""
        st = self.state[s]
        st.excluded.add(lane.name)
        if count:
            self.failovers += 1
        others = [o for o in self.lanes if o.name not in st.excluded and s not in o.unknown and o.breaker.state != OPEN]
        if not others or st.attempts >= self.policy.max_attempts:
            self.finish(s, why)
            return False
        self.pool[s] = None
        return True

    def _second_chances(self) -> bool:
        """Symbols left out of empty answers: errors, and asked elsewhere, when the cycle found data."""
        silent, self.silent = self.silent, []
        moved = False
        found_data = bool(self.frames) and self.policy.retry_silent
        for lane, symbols in silent:
            if found_data:
                self._count_error(lane)
            for s in symbols:
                st = self.state[s]
                if not found_data:
                    self.finish(s, NO_DATA)
                elif st.second_chance:
                    self.finish(s, f"left out of empty answers ({lane.name} and another)")
                else:
                    st.second_chance = True
                    moved |= self._fail_over(lane, s, f"{lane.name} left it out of an empty answer")
        return moved

    def _count_error(self, lane: Lane) -> None:
        lane.stats.errors += 1
        self.per[lane.name].errors += 1
        self.errors += 1

    def finish(self, s: str, why: str) -> None:
        self.final[s] = why
        for q in (self.pool, *self.queues.values()):
            q.pop(s, None)

    def _expire(self) -> None:
        log.warning("%s cycle: deadline reached with %d requests in flight", self.kind, len(self.tasks))
        for s in self.symbols:
            if s not in self.answered and s not in self.final:
                self.final[s] = "deadline"

    async def _cancel(self) -> None:
        for h in self.timers.values():
            h.cancel()
        self.timers.clear()
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def report(self, rows: int) -> FetchReport:
        missing = [s for s in self.symbols if s not in self.answered and self.final.get(s) != NOT_FOUND]
        for s in missing:
            self.final.setdefault(s, "unanswered")
        for lane in self.lanes:
            self.per[lane.name].state = lane.breaker.state
        return FetchReport(
            kind=self.kind, cycle=self.m.cycles, asked=len(self.symbols), answered=len(self.answered),
            missing=missing, not_found=[s for s in self.symbols if self.final.get(s) == NOT_FOUND and s not in self.answered],
            reasons={s: self.final[s] for s in missing}, requests=self.requests, errors=self.errors,
            rate_limited=self.rate_limited, retries=self.retries, failovers=self.failovers, rows=rows,
            elapsed_s=loop_time() - self.start, by_provider=self.per,
        )


def _first(queue: dict[str, None], n: int, take: Callable[[str], bool] | None, *, reverse: bool = False) -> list[str]:
    """Up to ``n`` symbols of an ordered set (from its end when ``reverse``) that ``take`` accepts."""
    out = []
    for s in reversed(queue) if reverse else queue:
        if take is None or take(s):
            out.append(s)
            if len(out) == n:
                break
    return out
