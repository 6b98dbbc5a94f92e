"""Figures for the market simulator (mintel.providers.sim): median of repeats at 1000 and 5000 symbols.

    .venv/bin/python bench/bench_sim.py [--sizes 1000,5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import pandas as pd

from mintel.providers.sim import SimClock, SimMarket

START = "2026-11-02"  # a fixed NSE session, so runs compare


def universe(n: int) -> pd.DataFrame:
    return pd.DataFrame({"symbol": [f"SYM{i:05d}" for i in range(n)], "sector": [f"Sector{i % 12}" for i in range(n)]})


def market(n: int) -> SimMarket:
    return SimMarket(universe(n), seed=42, clock=SimClock("NSE", START))


def median_of(fn, repeats: int) -> float:
    """Median of the durations ``fn`` reports (each run times only its own part, not its setup)."""
    return statistics.median(fn() for _ in range(repeats))


def per_minute(n: int, what: str, minutes: int = 200) -> float:
    """Median seconds of one cycle: advance one minute, then read that minute's bars (or quotes)."""
    m = market(n)
    m.quotes()  # open the session outside the timing
    times = []
    for _ in range(minutes):
        t0 = time.perf_counter()
        now = m.clock.advance(1)
        if what == "bars":
            m.bars(start=now - pd.Timedelta(minutes=1))
        elif what == "quotes":
            m.quotes()
        else:
            m._sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def session_at_once(n: int) -> float:
    m = market(n)
    t0 = time.perf_counter()
    m.clock.advance(375)
    m.bars()
    return time.perf_counter() - t0


def session_stepped(n: int) -> float:
    """375 service-like cycles: advance one minute and fetch the new bars each time."""
    m = market(n)
    t0 = time.perf_counter()
    for _ in range(375):
        now = m.clock.advance(1)
        m.bars(start=now - pd.Timedelta(minutes=1))
    return time.perf_counter() - t0


def daily_history(n: int, days: int = 1250) -> tuple[float, float]:
    """(seconds to generate the arrays, seconds to build the frame as well) for ``days`` sessions."""
    m = market(n)
    t0 = time.perf_counter()
    m._history(days)
    t1 = time.perf_counter()
    frame = m.daily_history(days=days)
    t2 = time.perf_counter()
    assert len(frame) == days * n, len(frame)
    return t1 - t0, t2 - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,5000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv or [])
    market(10).quotes()  # warm the exchange calendar
    for n in (int(s) for s in args.sizes.split(",")):
        r = args.repeats
        print(f"--- {n} symbols (median of {r} repeats; per-minute figures: median of 200 minutes)")
        print(f"advance 1 minute (generate)           {per_minute(n, 'sync') * 1e3:8.3f} ms")
        print(f"advance 1 minute + bars of it         {per_minute(n, 'bars') * 1e3:8.3f} ms")
        print(f"advance 1 minute + quotes             {per_minute(n, 'quotes') * 1e3:8.3f} ms")
        print(f"session (375 min) at once + bars()    {median_of(lambda: session_at_once(n), r) * 1e3:8.1f} ms")
        print(f"session as 375 stepped cycles + bars  {median_of(lambda: session_stepped(n), r) * 1e3:8.1f} ms")
        gen = [daily_history(n) for _ in range(r)]
        print(f"5 years daily history (1250 sessions) {statistics.median(g[0] for g in gen) * 1e3:8.1f} ms arrays, "
              f"{statistics.median(g[1] for g in gen) * 1e3:.1f} ms with the DataFrame ({1250 * n:,} bars)")


if __name__ == "__main__":
    main(sys.argv[1:])
