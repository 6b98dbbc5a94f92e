"""Figures for the API manager (mintel.ingest.manager) and the quote -> bar builder.

- utilization: in-process vendors limited to 300, 200 and 90 requests/min (one symbol per request,
  200 ms latency) serve 1000-symbol cycles back to back for a few simulated minutes; requests served
  in the whole minutes covered / what the limits allow, per vendor and together;
- manager overhead per cycle for 1000 and 5000 symbols, network excluded: three unlimited vendors
  answer at once from prepared frames, so the time is planning, dispatch, bookkeeping and combining;
- bar builder: one ``add`` of a quote snapshot of the universe, and a completed minute.

    .venv/bin/python bench/bench_manager.py [--minutes 5] [--sizes 1000,5000] [--cycles 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the in-process vendors live with the tests

from mintel.ingest.bars import BarBuilder  # noqa: E402
from mintel.ingest.limiter import run_virtual  # noqa: E402
from mintel.ingest.manager import ApiManager, Policy  # noqa: E402
from mintel.providers.base import Capabilities, RateLimit  # noqa: E402
from mintel.providers.sim import SimClock, SimMarket  # noqa: E402
from tests.ingest.test_manager import run_cycles, settings_for, sim_market, three_vendors  # noqa: E402


def utilization(minutes: int, n: int = 1000) -> None:
    sim = sim_market(n)
    vendors = three_vendors(sim)

    async def main():
        manager = ApiManager(vendors, settings_for(vendors), policy=Policy(seed=1))
        runs = await run_cycles(manager, sim, sim.market.symbols, until_s=minutes * 60.0)
        return runs

    t0 = time.perf_counter()
    runs = run_virtual(main())
    wall = time.perf_counter() - t0
    end = minutes * 60.0
    served = {v.name: sum(1 for t, _ in v.arrivals if t < end) for v in vendors}
    total = sum(served.values())
    capacity = sum(v.server_limit for v in vendors) * minutes
    print(f"utilization, {n} symbols/cycle, vendors 300/200/90 req/min, {minutes} simulated min "
          f"({len(runs)} cycles, {wall:.1f} s wall):")
    for v in vendors:
        print(f"  {v.name:<6} {served[v.name]:>5} requests / {v.server_limit * minutes:>5.0f} allowed"
              f"  = {served[v.name] / (v.server_limit * minutes):6.1%}   429s {len(v.rejections)}")
    print(f"  all    {total:>5} requests / {capacity:>5.0f} allowed  = {total / capacity:6.1%}")
    cycle_s = [f.report.elapsed_s for f in runs]
    print(f"  cycle length mean {statistics.mean(cycle_s):.1f} s simulated (ideal {n / 590 * 60:.1f} s at 590 req/min), "
          f"each {', '.join(f'{c:.1f}' for c in cycle_s)}")


class Instant:
    """An unlimited vendor answering at once from prepared frames (network and parsing excluded)."""

    def __init__(self, name: str, rows: pd.DataFrame, symbols_per_request: int) -> None:
        self.name = name
        self.capabilities = Capabilities(symbols_per_request=symbols_per_request)
        self.rate_limit = RateLimit()
        self.rows = rows.set_index("symbol", drop=False)
        self.cache: dict[tuple[str, ...], pd.DataFrame] = {}

    def ticker(self, symbol, exchange=None):
        return symbol

    async def fetch_bars(self, symbols, interval, start=None, end=None):
        key = tuple(symbols)
        if key not in self.cache:
            self.cache[key] = self.rows.loc[list(symbols)].reset_index(drop=True)
        return self.cache[key]

    async def aclose(self):
        return None


def overhead(n: int, cycles: int, symbols_per_request: int) -> tuple[float, float]:
    market = SimMarket(pd.DataFrame({"symbol": [f"S{i:05d}" for i in range(n)]}), clock=SimClock("NSE", "2026-11-02"))
    market.clock.advance(1)
    rows = market.bars()
    vendors = [Instant(name, rows, symbols_per_request) for name in ("alpha", "beta", "gamma")]
    manager = ApiManager(vendors, policy=Policy(seed=1, max_in_flight=64))
    symbols = market.symbols
    times = []

    async def main():
        for k in range(cycles + 2):
            t0 = time.perf_counter()
            fetched = await manager.fetch_bars(symbols, "1m")
            if k >= 2:  # the first cycles fill the vendors' caches
                times.append(time.perf_counter() - t0)
            assert fetched.report.answered == n

    asyncio.run(main())
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def bar_builder(n: int, minutes: int = 20, polls_per_minute: int = 4) -> tuple[float, float]:
    market = SimMarket(pd.DataFrame({"symbol": [f"S{i:05d}" for i in range(n)]}), clock=SimClock("NSE", "2026-11-02"))
    builder = BarBuilder()
    adds, completing = [], []
    for _ in range(minutes * polls_per_minute):
        market.clock.advance(1 / polls_per_minute)
        quotes = market.quotes()
        t0 = time.perf_counter()
        bars = builder.add(quotes)
        (completing if len(bars) else adds).append(time.perf_counter() - t0)
    return statistics.median(adds), statistics.median(completing)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args(argv if argv is not None else [])
    utilization(args.minutes)
    print("manager overhead per cycle (network excluded), three unlimited vendors:")
    for n in (int(s) for s in args.sizes.split(",")):
        for spr in (1, 100):
            p50, p95 = overhead(n, args.cycles, spr)
            print(f"  {n:>5} symbols, {spr:>3} per request ({-(-n // spr):>5} requests): p50 {p50 * 1e3:7.1f} ms  p95 {p95 * 1e3:7.1f} ms")
    print("bar builder (median per add):")
    for n in (int(s) for s in args.sizes.split(",")):
        quiet, completing = bar_builder(n)
        print(f"  {n:>5} quotes: {quiet * 1e3:6.1f} ms within a minute, {completing * 1e3:6.1f} ms when it completes the minute's bars")


if __name__ == "__main__":
    main(sys.argv[1:])
