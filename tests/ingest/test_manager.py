"""The API manager against in-process vendors on a simulated clock.

A ``Vendor`` is a real provider object: the simulator's market behind a server-like rolling-minute
limit (over it: RateLimited, counted), a latency, and seeded faults (timeouts, 5xx, partial answers),
unknown symbols and an on/off switch. Everything runs on ``VirtualTimeLoop``: minutes in milliseconds.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque

import pandas as pd
import pytest

from mintel import schema
from mintel.config import ProviderSettings, Settings
from mintel.errors import ConfigError, ProviderUnavailable, RateLimited, SymbolNotFound
from mintel.ingest.health import CLOSED, HALF_OPEN, OPEN
from mintel.ingest.manager import ApiManager, Policy
from mintel.ingest.limiter import run_virtual
from mintel.providers.base import Capabilities, Provider, RateLimit
from mintel.providers.sim import SimClock, SimProvider

START = "2026-11-02"  # a fixed NSE session


class Vendor:
    """An in-process market-data vendor serving the simulator's data like a rate-limited HTTP API."""

    def __init__(self, name: str, sim: SimProvider, requests_per_minute: float, *, symbols_per_request: int = 1,
                 latency_s: float = 0.2, fault_rate: float = 0.0, faults=("timeout", "5xx", "partial"), unknown=(),
                 server_limit: float | None = None, retry_after_s: float | None = 5.0, seed: int = 0) -> None:
        self.name = name
        self.sim = sim
        self.capabilities = Capabilities(symbols_per_request=symbols_per_request, intervals=("1m", "1d"))
        self.rate_limit = RateLimit(requests_per_minute=requests_per_minute)
        self.server_limit = server_limit or requests_per_minute
        self.latency_s = latency_s
        self.fault_rate = fault_rate
        self.faults = faults
        self.unknown = set(unknown)
        self.retry_after_s = retry_after_s
        self.rng = random.Random(seed)
        self.down = False
        self.arrivals: list[tuple[float, tuple[str, ...]]] = []  # accepted requests: (time, symbols)
        self.rejections: list[float] = []  # times of 429 answers
        self.injected: Counter = Counter()  # faults injected, by kind
        self._window: deque[tuple[float, float]] = deque()

    def ticker(self, symbol: str, exchange: str | None = None) -> str:
        return symbol

    def cost(self, n_symbols: int) -> float:
        return 1.0

    async def fetch_bars(self, symbols, interval, start=None, end=None) -> pd.DataFrame:
        return await self._serve(symbols, lambda batch: self.sim.fetch_bars(batch, interval, start, end))

    async def fetch_quotes(self, symbols) -> pd.DataFrame:
        return await self._serve(symbols, self.sim.fetch_quotes)

    async def aclose(self) -> None:
        return None

    async def _serve(self, symbols, fetch) -> pd.DataFrame:
        now = asyncio.get_running_loop().time()
        self._window.append((now, self.cost(len(symbols))))
        while self._window[0][0] <= now - 60.0:
            self._window.popleft()
        if sum(c for _, c in self._window) > self.server_limit + 1e-9:
            self.rejections.append(now)
            raise RateLimited(f"{self.name}: 429", provider=self.name, retry_after_s=self.retry_after_s)
        self.arrivals.append((now, tuple(symbols)))
        unknown = [s for s in symbols if s in self.unknown]
        fault = self.rng.choice(self.faults) if self.fault_rate and self.rng.random() < self.fault_rate else None
        if self.down:
            fault = "5xx"
        elif fault:
            self.injected[fault] += 1
        if fault == "timeout":
            await asyncio.sleep(3600)
        await asyncio.sleep(self.latency_s)
        if fault == "5xx":
            raise ProviderUnavailable(f"{self.name}: 503", provider=self.name)
        if unknown:
            raise SymbolNotFound(f"{self.name}: unknown {unknown}", provider=self.name, symbols=unknown)
        data = await fetch(list(symbols))
        if fault == "partial":  # the payload lost the second half of the batch (all of a one-symbol batch)
            data = data[data["symbol"].isin(symbols[: len(symbols) // 2])]
        return data.assign(source=self.name)

    def requests(self) -> int:
        return len(self.arrivals) + len(self.rejections)


class CreditVendor(Vendor):
    """Twelve Data style: a request costs one credit per symbol."""

    def request_cost(self, n_symbols: int) -> float:
        return float(n_symbols)

    cost = request_cost


def sim_market(n: int = 1000, seed: int = 7) -> SimProvider:
    universe = pd.DataFrame({"symbol": [f"S{i:04d}" for i in range(n)], "sector": [f"Sector{i % 11}" for i in range(n)]})
    return SimProvider(universe, seed=seed, clock=SimClock("NSE", START, mode="stepped"))


def three_vendors(sim: SimProvider, **kw) -> list[Vendor]:
    return [Vendor("alpha", sim, 300, seed=1, **kw), Vendor("beta", sim, 200, seed=2, **kw),
            Vendor("gamma", sim, 90, seed=3, **kw)]


def settings_for(vendors, **kw) -> Settings:
    return Settings(provider={v.name: ProviderSettings(v.name, **kw) for v in vendors})


async def run_cycles(manager: ApiManager, sim: SimProvider, symbols: list[str], *, cycles: int | None = None,
                     until_s: float | None = None, on_cycle=None) -> list:
    """Service-like cycles: the market moves a minute, then the manager fetches the new bars."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    next_ts = sim.clock.now
    out = []
    while (cycles is None or len(out) < cycles) and (until_s is None or loop.time() - t0 < until_s):
        sim.clock.advance(1)
        fetched = await manager.fetch_bars(symbols, "1m", start=next_ts)
        out.append(fetched)
        next_ts += pd.Timedelta(minutes=1)
        if on_cycle:
            on_cycle(fetched)
    return out


def max_in_window(times: list[float], window_s: float = 60.0) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + window_s:
            j += 1
        best = max(best, j - i)
    return best


def assert_each_symbol_once(fetched, symbols) -> None:
    data = fetched.data
    counts = data.groupby("symbol").size()
    assert set(counts.index) == set(symbols), f"missing {sorted(set(symbols) - set(counts.index))[:5]}"
    assert (counts == 1).all(), counts[counts != 1].head()
    assert fetched.report.answered == len(symbols) and not fetched.report.missing


# -- capacity and routing


def test_three_vendors_are_used_to_their_combined_capacity_and_never_over_their_limits():
    sim = sim_market(1000)
    vendors = three_vendors(sim)
    symbols = sim.market.symbols

    async def main():
        manager = ApiManager(vendors, settings_for(vendors), policy=Policy(seed=1))
        runs = await run_cycles(manager, sim, symbols, cycles=3)
        return runs, asyncio.get_running_loop().time()

    runs, end = run_virtual(main())
    for fetched in runs:
        assert_each_symbol_once(fetched, symbols)
    for v in vendors:
        assert v.rejections == []  # the server never had to say 429
        assert max_in_window([t for t, _ in v.arrivals]) <= v.server_limit
    # Utilization over the whole minutes the run covered: requests served / what the limits allow.
    minutes = int(end // 60)
    assert minutes >= 4
    served = sum(1 for v in vendors for t, _ in v.arrivals if t < minutes * 60)
    capacity = sum(v.server_limit for v in vendors) * minutes
    assert served / capacity >= 0.95, (served, capacity)
    # Symbols spread in proportion to capacity.
    answered = Counter()
    for fetched in runs:
        for name, part in fetched.report.by_provider.items():
            answered[name] += part.answered
    total = sum(answered.values())
    for v in vendors:
        assert answered[v.name] / total == pytest.approx(v.server_limit / 590, abs=0.03)


def test_weights_shape_the_plan_and_batches_respect_symbols_per_request():
    sim = sim_market(1000)
    alpha = Vendor("alpha", sim, 600, symbols_per_request=50)
    beta = Vendor("beta", sim, 600, symbols_per_request=50)
    settings = Settings(provider={"alpha": ProviderSettings("alpha", weight=3.0), "beta": ProviderSettings("beta", weight=1.0)})

    async def main():
        sim.clock.advance(1)
        return await ApiManager([alpha, beta], settings).fetch_quotes(sim.market.symbols)

    fetched = run_virtual(main())
    assert fetched.data["symbol"].nunique() == 1000 and len(fetched.data) == 1000
    assert list(fetched.data.columns) == schema.QUOTES.names
    assert all(len(s) <= 50 for v in (alpha, beta) for _, s in v.arrivals)
    assert fetched.report.by_provider["alpha"].answered == 750
    assert fetched.report.by_provider["beta"].answered == 250
    assert fetched.report.requests == 20


def test_credits_per_symbol_are_counted_against_the_limit():
    sim = sim_market(60)
    vendor = CreditVendor("credits", sim, 20, symbols_per_request=8)

    async def main():
        sim.clock.advance(1)
        return await ApiManager([vendor], settings_for([vendor])).fetch_quotes(sim.market.symbols)

    fetched = run_virtual(main())
    assert fetched.report.answered == 60 and vendor.rejections == []
    assert all(len(s) <= 8 for _, s in vendor.arrivals)
    credits = [t for t, s in vendor.arrivals for _ in s]
    assert max_in_window(credits) <= 20


def test_a_day_limit_caps_a_vendors_share():
    sim = sim_market(100)
    capped = Vendor("capped", sim, 100)
    other = Vendor("other", sim, 100)
    settings = Settings(provider={"capped": ProviderSettings("capped", requests_per_day=20), "other": ProviderSettings("other")})

    async def main():
        sim.clock.advance(1)
        return await ApiManager([capped, other], settings).fetch_bars(sim.market.symbols, "1m")

    fetched = run_virtual(main())
    assert fetched.report.answered == 100 and fetched.report.elapsed_s < 60
    assert len(capped.arrivals) == 20 and fetched.report.by_provider["capped"].planned <= 20  # its day, no more


# -- failures


def test_a_vendor_that_dies_fails_over_in_the_same_cycle_and_is_probed_back_after_the_cooldown():
    sim = sim_market(1000)
    vendors = three_vendors(sim)
    alpha, beta, gamma = vendors
    symbols = sim.market.symbols
    policy = Policy(seed=2, cooldown_s=30.0)

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(20.0, setattr, beta, "down", True)
        loop.call_later(150.0, setattr, beta, "down", False)
        manager = ApiManager(vendors, settings_for(vendors), policy=policy)
        runs = await run_cycles(manager, sim, symbols, until_s=330.0)
        return manager, runs

    manager, runs = run_virtual(main())
    for fetched in runs:
        assert_each_symbol_once(fetched, symbols)  # nothing lost, nothing twice, even in the cycle it died
    first = runs[0].report.by_provider["beta"]
    assert first.errors >= policy.failure_threshold and runs[0].report.failovers > 0
    states = [s for _, s in manager.lanes["beta"].breaker.transitions]
    assert states[:3] == [OPEN, HALF_OPEN, OPEN]  # probed while still down, opened again
    assert states[-1] == CLOSED  # re-admitted once healthy
    reopened = [t for t, s in manager.lanes["beta"].breaker.transitions if s == CLOSED][-1]
    assert 150.0 <= reopened <= 150.0 + policy.cooldown_s + 1
    opened = manager.lanes["beta"].breaker.transitions[0][0]
    probes = [t for t, s in beta.arrivals if opened < t < 150.0]
    assert 1 <= len(probes) <= (150 - opened) // policy.cooldown_s + 1  # one probe per cooldown, not a stream
    assert all(b - a >= policy.cooldown_s for a, b in zip(probes, probes[1:]))
    assert runs[-1].report.by_provider["beta"].planned > 0 and runs[-1].report.by_provider["beta"].answered > 0
    for v in vendors:
        assert v.rejections == []
        assert max_in_window([t for t, _ in v.arrivals]) <= v.server_limit


def test_injected_faults_are_retried_away_and_reported_at_the_rate_injected():
    sim = sim_market(1000)
    vendors = three_vendors(sim, fault_rate=0.05)
    symbols = sim.market.symbols

    async def main():
        manager = ApiManager(vendors, settings_for(vendors, timeout_s=2.0), policy=Policy(seed=3))
        return manager, await run_cycles(manager, sim, symbols, cycles=3)

    manager, runs = run_virtual(main())
    asked = sum(f.report.asked for f in runs)
    failed = sum(len(f.report.failed) for f in runs)
    assert failed / asked < 0.01
    for fetched in runs:
        data = fetched.data
        assert not data.duplicated(["symbol", "ts"]).any()  # never twice, even after timeouts
    health = {row["name"]: row for row in manager.health()}
    for v in vendors:
        assert sum(v.injected.values()) > 0 and set(v.injected) == {"timeout", "5xx", "partial"}
        row = health[v.name]
        assert row["requests"] == v.requests()
        assert row["errors"] == sum(v.injected.values())  # every injected fault seen, nothing else counted
        assert row["error_rate"] == pytest.approx(0.05, abs=0.02)
        assert row["state"] == CLOSED
        assert v.rejections == []


def test_partial_answers_of_multi_symbol_batches_fail_over():
    sim = sim_market(200)
    vendors = [Vendor("alpha", sim, 120, symbols_per_request=10, fault_rate=0.3, faults=("partial",), seed=5),
               Vendor("beta", sim, 120, symbols_per_request=10, seed=6)]

    async def main():
        sim.clock.advance(1)
        manager = ApiManager(vendors, settings_for(vendors), policy=Policy(seed=4))
        return manager, await manager.fetch_bars(sim.market.symbols, "1m")

    manager, fetched = run_virtual(main())
    assert_each_symbol_once(fetched, sim.market.symbols)
    assert manager.lanes["alpha"].stats.errors == vendors[0].injected["partial"] > 0
    assert fetched.report.failovers >= 5 * vendors[0].injected["partial"]


def test_rate_limited_answers_pause_the_vendor_for_its_retry_after():
    sim = sim_market(300)
    tight = Vendor("tight", sim, 120, server_limit=60, retry_after_s=5.0)  # the key is shared: the server counts more
    roomy = Vendor("roomy", sim, 300)

    async def main():
        sim.clock.advance(1)
        manager = ApiManager([tight, roomy], settings_for([tight, roomy]), policy=Policy(seed=5))
        return manager, await manager.fetch_bars(sim.market.symbols, "1m")

    manager, fetched = run_virtual(main())
    assert_each_symbol_once(fetched, sim.market.symbols)
    assert tight.rejections and fetched.report.rate_limited == len(tight.rejections)
    assert manager.health()[0]["rate_limited"] == len(tight.rejections)
    sent = sorted([t for t, _ in tight.arrivals] + tight.rejections)
    for r in tight.rejections:  # nothing sent while Retry-After runs (same-instant sends were already on their way)
        assert not [t for t in sent if r < t < r + 5.0 - 1e-9]


def test_unknown_symbols_are_named_tried_on_one_other_vendor_and_not_asked_again():
    sim = sim_market(100)
    alpha = Vendor("alpha", sim, 300, unknown={"S0001", "NOPE"})
    beta = Vendor("beta", sim, 300, unknown={"S0002", "NOPE"})
    gamma = Vendor("gamma", sim, 300, unknown={"NOPE"})
    symbols = sim.market.symbols + ["NOPE"]

    async def main():
        manager = ApiManager([alpha, beta, gamma], settings_for([alpha, beta, gamma]))
        return await run_cycles(manager, sim, symbols, cycles=2)

    runs = run_virtual(main())
    for fetched in runs:
        assert fetched.report.not_found == ["NOPE"] and fetched.report.missing == []
        assert fetched.report.answered == 100 and {"S0001", "S0002"} <= set(fetched.data["symbol"])
    asked_nope = [t for v in (alpha, beta, gamma) for t, s in v.arrivals if "NOPE" in s]
    assert len(asked_nope) == 2  # the first vendor, one other; the next cycle asks nobody
    assert not [t for t, s in alpha.arrivals if "S0001" in s and t > 1.0]  # alpha is not asked again for it


def test_a_closed_market_answers_nothing_and_that_is_not_an_error():
    sim = sim_market(50)
    vendors = three_vendors(sim)

    async def main():
        manager = ApiManager(vendors, settings_for(vendors))
        return manager, await manager.fetch_bars(sim.market.symbols, "1m", start=pd.Timestamp("2030-01-01", tz="UTC"))

    manager, fetched = run_virtual(main())
    r = fetched.report
    assert fetched.data.empty and list(fetched.data.columns) == schema.BARS.names
    assert r.answered == 0 and len(r.missing) == 50 and set(r.reasons.values()) == {"no data"}
    assert r.error_rate == 0 and r.errors == 0 and r.requests == 50


def test_a_deadline_ends_the_cycle_and_names_what_is_missing():
    sim = sim_market(100)
    vendor = Vendor("slow", sim, 30)

    async def main():
        sim.clock.advance(1)
        return await ApiManager([vendor], settings_for([vendor])).fetch_bars(sim.market.symbols, "1m", deadline_s=70)

    fetched = run_virtual(main())
    assert fetched.report.answered == 60  # two windows of 30
    assert len(fetched.report.missing) == 40 and set(fetched.report.reasons.values()) == {"deadline"}


def test_a_provider_bug_is_not_swallowed():
    sim = sim_market(20)

    class Buggy(Vendor):
        async def fetch_bars(self, symbols, interval, start=None, end=None):
            raise KeyError("close")

    async def main():
        return await ApiManager([Buggy("buggy", sim, 60)]).fetch_bars(sim.market.symbols, "1m")

    with pytest.raises(KeyError):
        run_virtual(main())


# -- health and configuration


def test_health_rows_have_the_metrics_columns_and_the_figures():
    sim = sim_market(200)
    vendors = three_vendors(sim)

    async def main():
        manager = ApiManager(vendors, settings_for(vendors))
        await run_cycles(manager, sim, sim.market.symbols, cycles=1)
        return manager.health(), manager.health_frame()

    rows, frame = run_virtual(main())
    assert set(rows[0]) <= set(schema.METRICS.names)
    assert list(frame.columns) == schema.METRICS.names and len(frame) == 3
    schema.conform("metrics", frame)
    by_name = frame.set_index("name")
    assert (frame["scope"] == "provider").all() and (frame["state"] == CLOSED).all()
    assert by_name.loc["alpha", "capacity_per_min"] == 300 and by_name.loc["gamma", "capacity_per_min"] == 90
    assert by_name["requests"].sum() == 200 and by_name["errors"].sum() == 0
    assert by_name.loc["beta", "used_per_min"] == by_name.loc["beta", "requests"]  # all sent within the minute
    assert by_name["latency_ms_p50"].tolist() == pytest.approx([200.0] * 3)


def test_settings_limits_win_over_the_providers_own():
    sim = sim_market(10)
    vendor = Vendor("alpha", sim, 300)
    manager = ApiManager([vendor], Settings(provider={"alpha": ProviderSettings("alpha", requests_per_minute=45)}))
    assert manager.lanes["alpha"].limiter.requests_per_minute == 45
    assert isinstance(vendor, Provider)
    with pytest.raises(ConfigError):
        ApiManager([vendor, vendor])
    with pytest.raises(ConfigError):
        ApiManager([CreditVendor("c", sim, 5, symbols_per_request=8)], Settings(provider={"c": ProviderSettings("c", requests_per_minute=0.5)}))
