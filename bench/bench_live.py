"""The live engine's update of one bar for the whole universe: streaming indicators, the window, all
detectors on each symbol's last bar, scoring, cooldown and the snapshot table.

    .venv/bin/python -m bench live

The simulator's market for 1000 and 5000 symbols, one-minute bars: the engine is warmed up on a
session and a half, then each update is one new minute (or the forming bar of the same minute, as
a live feed re-sends it). Figures: median and p95 over the updates, the indicators alone
(``LiveState.update``), and, measured in the same run as the reference the issue names, a plain loop
of TA-Lib calls recomputing the indicators over every symbol's history in the engine (the bars the
engine was warmed up on), with the ratio. Goal (issue 4): < 5 ms for 5000 symbols.

The compiled kernels split the symbols between numba's threads (``mintel.analytics._parallel``); the
line ends with the threading layer and the thread count (``NUMBA_NUM_THREADS=1`` measures one core).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_cycle import universe
from bench.bench_indicators import talib_loop
from bench.common import median_s
from mintel.analytics.engine import LiveEngine
from mintel.providers.sim import SimClock, SimMarket


def minutes(m: SimMarket, count: int) -> list[pd.DataFrame]:
    out = []
    for _ in range(count):
        m.clock.advance(1)
        bars = m.bars(start=m.clock.now - pd.Timedelta("3min"))
        out.append(bars[bars["ts"] == bars["ts"].max()].reset_index(drop=True))
    return out


def run(n: int, updates: int = 40) -> None:
    u = universe(n)
    m = SimMarket(u, seed=42, clock=SimClock("NYSE", "2026-11-23"))
    m.clock.advance(390 + 200)
    history = m.bars().sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    engine = LiveEngine.from_history(history, u, "1m")
    cycles = minutes(m, updates)
    whole, state = [], []
    for bars in cycles:
        t0 = time.perf_counter()
        engine.update(bars, pd.Timestamp.now(tz="UTC"))
        whole.append(time.perf_counter() - t0)
    last = cycles[-1]
    for _ in range(updates):  # the indicators alone, re-sending the forming bar
        t0 = time.perf_counter()
        engine.state.update(last)
        state.append(time.perf_counter() - t0)
    per = history.groupby("symbol", sort=False).size()
    assert (per == per.iloc[0]).all(), "talib_loop slices equal histories"
    recompute = median_s(lambda: talib_loop(history, n), repeats=3) * 1e3
    w, s = np.array(whole) * 1e3, np.array(state) * 1e3
    print(f"{n:>5} symbols: LiveEngine.update (indicators + detectors + scoring + snapshot) median {np.median(w):6.2f} ms"
          f"  p95 {np.percentile(w, 95):6.2f} ms | LiveState.update alone median {np.median(s):5.2f} ms"
          f" | ref: TA-Lib recompute of {per.iloc[0]} bars {recompute:7.2f} ms, ratio {np.median(w) / recompute:5.3f}x"
          f" | numba {numba.threading_layer()} x {numba.get_num_threads()}")


def main() -> None:
    for n in (1000, 5000):
        run(n)


if __name__ == "__main__":
    main()
