"""The sliding-window limiter: never over the limit in any rolling window, on a simulated clock."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mintel.errors import ConfigError
from mintel.ingest.limiter import SlidingWindowLimiter, VirtualTimeLoop, run_virtual


def max_in_window(sends: list[tuple[float, float]], window_s: float) -> float:
    """The most cost any half-open window [t, t + window_s) holds (it suffices to start at a send)."""
    sends = sorted(sends)
    best, j, total = 0.0, 0, 0.0
    for i, (t, _) in enumerate(sends):
        while j < len(sends) and sends[j][0] < t + window_s:
            total += sends[j][1]
            j += 1
        best = max(best, total)
        total -= sends[i][1]
    return best


async def replay(limiter: SlidingWindowLimiter, arrivals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each arrival (offset s, cost) acquires concurrently at its offset; returns (send time, cost)."""
    loop = asyncio.get_running_loop()
    sends = []

    async def one(at: float, cost: float) -> None:
        await asyncio.sleep(at)
        await limiter.acquire(cost)
        sends.append((loop.time(), cost))

    await asyncio.gather(*(one(at, cost) for at, cost in arrivals))
    return sends


class TokenBucket:
    """The naive design the limiter replaces: capacity ``limit``, refilled at limit/60 per second."""

    def __init__(self, limit: float) -> None:
        self.limit, self.tokens, self.t = limit, limit, 0.0

    async def acquire(self, cost: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.tokens = min(self.limit, self.tokens + (now - self.t) * self.limit / 60)
            self.t = now
            if self.tokens >= cost:
                self.tokens -= cost
                return
            await asyncio.sleep((cost - self.tokens) * 60 / self.limit)


arrival_patterns = st.lists(
    st.tuples(st.floats(min_value=0, max_value=400, allow_nan=False), st.sampled_from([1, 1, 1, 2, 3])),
    min_size=1, max_size=120,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals=arrival_patterns, limit=st.integers(min_value=3, max_value=25))
def test_no_rolling_minute_ever_holds_more_than_the_limit(arrivals, limit):
    sends = run_virtual(replay(SlidingWindowLimiter(limit), arrivals))
    assert len(sends) == len(arrivals)  # everyone got through
    assert max_in_window(sends, 60.0) <= limit
    # nobody was sent before it arrived
    assert sorted(t for t, _ in sends)[0] >= min(a for a, _ in arrivals)


@settings(max_examples=60, deadline=None)
@given(arrivals=arrival_patterns, per_day=st.integers(min_value=5, max_value=40))
# found by hypothesis: the last send's wait (1.1 + 60 - 2.0) ended 7e-15 s early on the float clock
@example(arrivals=[(2.0, 1), (2.0, 3), (2.0, 3), (1.1, 1), (2.504211800892225, 3)], per_day=11)
def test_no_rolling_day_ever_holds_more_than_the_day_limit(arrivals, per_day):
    sends = run_virtual(replay(SlidingWindowLimiter(10, per_day), arrivals))
    assert max_in_window(sends, 86_400.0) <= per_day
    assert max_in_window(sends, 60.0) <= 10


def test_the_window_checker_catches_a_token_bucket():
    # Burst (full bucket) then refill: 2 x limit within one minute, which a provider answers with 429s.
    sends = run_virtual(replay(TokenBucket(10), [(0.0, 1)] * 10 + [(59.0, 1)] * 10))
    assert max_in_window(sends, 60.0) > 10


def test_a_burst_is_served_one_limit_per_window():
    sends = run_virtual(replay(SlidingWindowLimiter(4), [(0.0, 1)] * 10))
    assert sorted(t for t, _ in sends) == [0, 0, 0, 0, 60, 60, 60, 60, 120, 120]


def test_costs_count_against_the_limit_and_a_cost_above_it_is_refused():
    sends = run_virtual(replay(SlidingWindowLimiter(8), [(0.0, 3)] * 5))
    assert sorted(t for t, _ in sends) == [0, 0, 60, 60, 120]  # 3 + 3 fit in 8, a third does not
    with pytest.raises(ConfigError, match="never fit"):
        run_virtual(SlidingWindowLimiter(8).acquire(9))


def test_day_limit_holds_sends_until_the_first_of_the_day_expires():
    sends = run_virtual(replay(SlidingWindowLimiter(10, 25), [(0.0, 1)] * 26))
    times = sorted(t for t, _ in sends)
    assert times[:25] == [0.0] * 10 + [60.0] * 10 + [120.0] * 5
    assert times[25] == 86_400.0


def test_pause_until_holds_every_send_until_the_retry_after():
    async def run():
        loop = asyncio.get_running_loop()
        lim = SlidingWindowLimiter(100)
        await lim.acquire()
        lim.pause_until(loop.time() + 7.5)  # a 429 said Retry-After: 7.5
        lim.pause_until(loop.time() + 2.0)  # a shorter pause does not shorten it
        assert lim.spare() == 0
        waited = await lim.acquire()
        return loop.time(), waited

    t, waited = run_virtual(run(), start=100.0)
    assert t == pytest.approx(107.5)
    assert waited == pytest.approx(7.5)


def test_injected_clock_runs_without_an_event_loop_clock():
    now = [0.0]

    async def sleep(s: float) -> None:
        now[0] += s

    lim = SlidingWindowLimiter(2, time_fn=lambda: now[0], sleep_fn=sleep)
    times = []

    async def run():
        for _ in range(5):
            await lim.acquire()
            times.append(now[0])

    asyncio.run(run())
    assert times == [0, 0, 60, 60, 120]
    assert lim.used() == 1 and lim.spare() == 1
    assert lim.free_at(2) == 180.0 and not lim.try_acquire(2) and lim.try_acquire(1)


def test_margin_lengthens_the_window():
    lim = SlidingWindowLimiter(1, margin_s=0.5, time_fn=lambda: 0.0)
    assert lim.try_acquire(now=0.0)
    assert lim.free_at(1, now=1.0) == 60.5


def test_unlimited_still_knows_its_rate():
    lim = SlidingWindowLimiter(None, time_fn=lambda: 5.0)
    assert lim.unlimited and all(lim.try_acquire(now=5.0) for _ in range(1000))
    assert lim.used(now=5.0) == 1000 and lim.used(now=65.0) == 0


def test_bad_limits_are_config_errors():
    with pytest.raises(ConfigError):
        SlidingWindowLimiter(0)
    with pytest.raises(ConfigError):
        SlidingWindowLimiter(5).free_at(0)


def test_virtual_time_loop_jumps_to_the_next_timer():
    async def run():
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        await asyncio.sleep(3600)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), 5)
        return loop.time()

    assert run_virtual(run(), start=10.0) == pytest.approx(3615.0)
