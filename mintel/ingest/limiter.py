"""A per-provider rate limiter that never sends more than the limit in ANY rolling window.

A token bucket lets ``burst + refill`` requests through inside one minute, which a provider counting
a sliding minute answers with 429. ``SlidingWindowLimiter`` keeps a log of send times (and costs:
Twelve Data counts credits per symbol) per window, and admits a request only when every window
(the minute, and the day where set) has room for its cost. ``pause_until`` honours a 429's
``Retry-After``.

Time is injectable (``time_fn``, ``sleep_fn``); by default it is the running event loop's clock, so
``VirtualTimeLoop`` runs minutes of rate-limited traffic in milliseconds for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from mintel.errors import ConfigError

log = logging.getLogger(__name__)

MINUTE_S = 60.0
DAY_S = 86_400.0
_EPS = 1e-9

T = TypeVar("T")


def loop_time() -> float:
    """The running event loop's clock (virtual under ``VirtualTimeLoop``); ``time.monotonic`` outside a loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class _Window:
    """The send log of one rolling window: entries ``(t, cost)`` with ``t > now - length_s`` still count."""

    __slots__ = ("length_s", "limit", "log", "used")

    def __init__(self, length_s: float, limit: float) -> None:
        self.length_s = length_s
        self.limit = limit
        self.log: deque[tuple[float, float]] = deque()
        self.used = 0.0

    def expire(self, now: float) -> None:
        log_, length = self.log, self.length_s
        while log_ and log_[0][0] + length <= now:
            self.used -= log_.popleft()[1]
        if not log_:
            self.used = 0.0  # no float drift once empty

    def free_at(self, cost: float, now: float) -> float:
        """Earliest time at which ``cost`` fits, given the log as it stands (after ``expire(now)``)."""
        need = self.used + cost - self.limit
        if need <= _EPS:
            return now
        freed = 0.0
        for t, c in self.log:
            freed += c
            if freed >= need - _EPS:
                return t + self.length_s
        return float("inf")  # unreachable: cost <= limit is checked on entry


class SlidingWindowLimiter:
    """At most ``requests_per_minute`` (and ``requests_per_day``) cost units in any rolling window.

    ``margin_s`` lengthens each window a little, so a provider that stamps requests on arrival
    (a few hundred ms of jitter after we send) still never counts more than its limit. ``None``
    limits mean unlimited. Costs may be fractional or above 1 (credits per symbol).
    """

    def __init__(self, requests_per_minute: float | None = None, requests_per_day: float | None = None, *,
                 margin_s: float = 0.0, name: str = "", time_fn: Callable[[], float] | None = None,
                 sleep_fn: Callable[[float], Awaitable[Any]] | None = None) -> None:
        self.name = name
        self.requests_per_minute = requests_per_minute
        self.requests_per_day = requests_per_day
        self.margin_s = margin_s
        self._windows: list[_Window] = []
        for length, limit in ((MINUTE_S, requests_per_minute), (DAY_S, requests_per_day)):
            if limit is not None:
                if not limit > 0:
                    raise ConfigError(f"limiter {name or '?'}: limit {limit!r} per {length:g} s must be > 0")
                self._windows.append(_Window(length + margin_s, float(limit)))
            elif length == MINUTE_S:
                self._windows.append(_Window(length + margin_s, float("inf")))  # unlimited, but the used rate is known
        self._time = time_fn or loop_time
        self._sleep = sleep_fn or asyncio.sleep
        self._lock: asyncio.Lock | None = None
        self.paused_until = float("-inf")
        self.sent = 0  # requests admitted, ever
        self.waited_s = 0.0  # total time ``acquire`` callers spent waiting

    # -- queries

    @property
    def unlimited(self) -> bool:
        return all(w.limit == float("inf") for w in self._windows)

    def now(self) -> float:
        return self._time()

    def max_cost(self) -> float:
        """The largest cost one request may have (the smallest limit)."""
        return min((w.limit for w in self._windows), default=float("inf"))

    def used(self, window_s: float = MINUTE_S, now: float | None = None) -> float:
        """Cost sent in the last ``window_s`` (a window of this limiter, the minute by default)."""
        now = self._time() if now is None else now
        w = self._window(window_s)
        if w is None:
            return 0.0
        w.expire(now)
        return w.used

    def spare(self, now: float | None = None) -> float:
        """Cost that could be sent right now: the least room over all windows (inf when unlimited)."""
        now = self._time() if now is None else now
        if now < self.paused_until:
            return 0.0
        room = float("inf")
        for w in self._windows:
            w.expire(now)
            room = min(room, w.limit - w.used)
        return max(room, 0.0)

    def free_at(self, cost: float = 1.0, now: float | None = None) -> float:
        """Earliest time a request of ``cost`` may be sent (``now`` when it may be sent at once)."""
        self._check(cost)
        now = self._time() if now is None else now
        at = max(now, self.paused_until)
        for w in self._windows:
            w.expire(now)
            at = max(at, w.free_at(cost, now))
        return at

    # -- sending

    def try_acquire(self, cost: float = 1.0, now: float | None = None) -> bool:
        """Record a send of ``cost`` now if every window has room; False (nothing recorded) otherwise."""
        now = self._time() if now is None else now
        if self.free_at(cost, now) > now:
            return False
        self._record(now, cost)
        return True

    async def acquire(self, cost: float = 1.0) -> float:
        """Wait until ``cost`` fits in every window (and any pause is over), record it, return the wait in s.

        Callers are served first come, first served.
        """
        self._check(cost)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            start = now = self._time()
            while (at := self.free_at(cost, now)) > now:
                await self._sleep(at - now)
                # A sleep may end a hair early (asyncio runs timers within the clock's resolution; float
                # rounding of ``at - now``): then wait the rest. The send is recorded at the clock's time, so
                # no window measured by that clock ever holds more than the limit (hypothesis found a send
                # 7e-15 s early, recorded as on time, making 11 in a rolling minute of 10).
                now = self._time()
            self._record(now, cost)
            self.waited_s += now - start
            return now - start

    def pause_until(self, t: float) -> None:
        """Send nothing before ``t`` (a 429's Retry-After); a pause never shortens one already set."""
        if t > self.paused_until:
            self.paused_until = t
            log.info("limiter %s: paused for %.1f s", self.name, t - self._time())

    def _record(self, now: float, cost: float) -> None:
        for w in self._windows:
            w.log.append((now, cost))
            w.used += cost
        self.sent += 1

    def _check(self, cost: float) -> None:
        if not cost > 0:
            raise ConfigError(f"limiter {self.name or '?'}: cost {cost!r} must be > 0")
        for w in self._windows:
            if cost > w.limit + _EPS:
                raise ConfigError(
                    f"limiter {self.name or '?'}: a request costing {cost:g} can never fit {w.limit:g} per {w.length_s:g} s"
                )

    def _window(self, window_s: float) -> _Window | None:
        for w in self._windows:
            if abs(w.length_s - self.margin_s - window_s) < 1e-6:
                return w
        return None

    def __repr__(self) -> str:
        limits = ", ".join(f"{w.limit:g}/{w.length_s - self.margin_s:g}s" for w in self._windows if w.limit < float("inf"))
        limits = limits or "unlimited"
        return f"SlidingWindowLimiter({self.name or '?'}: {limits})"


# -- simulated time ---------------------------------------------------------------------------


class _VirtualSelector:
    """Polls the real selector without blocking; when nothing is ready, time jumps to the next timer."""

    def __init__(self, selector: selectors.BaseSelector, loop: "VirtualTimeLoop") -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None):
        if timeout is None:  # nothing scheduled: only I/O (a thread's wake-up) can move the loop on
            events = self._selector.select(self._loop.deadlock_after_s)
            if not events:
                raise RuntimeError("virtual time: every task is waiting and no timer is set (a deadlock)")
            return events
        events = self._selector.select(0)
        loop = self._loop
        if not events and not loop._ready and not loop._stopping and loop._scheduled:
            # Jump exactly to the next timer, so it is due however its delay was rounded.
            loop._now = max(loop._now, loop._scheduled[0]._when)
        return events

    def __getattr__(self, name: str):
        return getattr(self._selector, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever every task is waiting.

    ``asyncio.sleep``, ``wait_for`` timeouts and ``loop.time()`` all run on simulated seconds, so
    minutes of rate-limited traffic take milliseconds and timing is exact and repeatable.
    """

    deadlock_after_s = 10.0  # wall seconds to wait for I/O when no timer is set before calling it a deadlock

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now = float(start)
        self._selector = _VirtualSelector(self._selector, self)

    def time(self) -> float:
        return self._now


def run_virtual(coro: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """``asyncio.run`` on a ``VirtualTimeLoop`` starting at ``start`` simulated seconds."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(coro)
