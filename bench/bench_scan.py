"""Scan benchmarks: the full batch analysis beside a plain loop of TA-Lib calls for the indicators alone.

    .venv/bin/python -m bench scan        (or: .venv/bin/python bench/bench_scan.py)

Data: the simulator's market (trends, gaps, volume spikes) for 1000 symbols x 1250 daily bars and
x 375 one-minute bars (one session). Figures, each the median of repeats:

- indicators: ``enrich`` (compute_indicators with sma_200, bb_pct_b, dist_sma_50_pct) against the
  plain loop of the same TA-Lib calls per symbol (goal: <= 1.5x);
- detectors over the whole history (every bar, as the signal lab runs them), with and without
  messages/factors, and on each symbol's last bar (the live path);
- scoring; the full batch (indicators + all detectors over the history + scoring), with and without
  messages/factors; ``scan()`` (indicators, detectors on the last bars, scoring, the latest rows).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import talib

from bench.common import median_s, row
from mintel.analytics.detectors import detect
from mintel.analytics.scan import enrich, scan
from mintel.analytics.scoring import score_symbols
from mintel.providers.sim import SimClock, SimMarket

N_SYMBOLS = 1000


def market(n_symbols: int = N_SYMBOLS) -> SimMarket:
    uni = pd.DataFrame({"symbol": [f"S{i:04d}" for i in range(n_symbols)],
                        "sector": [f"Sector{i % 12}" for i in range(n_symbols)]})
    return SimMarket(uni, seed=42, clock=SimClock("NSE", "2026-10-30"))


def talib_loop(bars: pd.DataFrame) -> list:
    """The plain loop: the indicators' TA-Lib calls (and SMA 200) per symbol on numpy slices, results kept."""
    high, low, close, volume = (bars[c].to_numpy() for c in ("high", "low", "close", "volume"))
    starts = bars["symbol"].ne(bars["symbol"].shift()).to_numpy().nonzero()[0].tolist() + [len(bars)]
    out = []
    for s, e in zip(starts[:-1], starts[1:]):
        c = close[s:e]
        out.append((
            talib.RSI(c, 14), talib.MACD(c, 12, 26, 9), talib.BBANDS(c, 20, 2, 2, 0), talib.SMA(c, 20),
            talib.SMA(c, 50), talib.EMA(c, 20), talib.ATR(high[s:e], low[s:e], c, 14), talib.OBV(c, volume[s:e]),
            talib.SMA(c, 200),
        ))
    return out


def bench(label: str, bars: pd.DataFrame, interval: str, repeats: int) -> None:
    loop_s = median_s(lambda: talib_loop(bars), repeats)
    ind_s = median_s(lambda: enrich(bars, interval), repeats)
    print(row(f"indicators (enrich) {label}", ind_s, loop_s, "ref: plain TA-Lib loop"))
    e = enrich(bars, interval)
    full = detect(e, interval=interval)
    det_s = median_s(lambda: detect(e, interval=interval), repeats)
    print(row(f"detectors, whole history {label}", det_s, extra=f"{len(full):,} rows, {full['kind'].nunique()} kinds"))
    quiet_s = median_s(lambda: detect(e, interval=interval, explain=False), repeats)
    print(row(f"detectors, whole history, no messages {label}", quiet_s))
    live = detect(e, last_only=True, interval=interval)
    live_s = median_s(lambda: detect(e, last_only=True, interval=interval), repeats)
    print(row(f"detectors, last bar (live path) {label}", live_s, extra=f"{len(live):,} rows"))
    score_s = median_s(lambda: score_symbols(e, live, interval=interval), repeats)
    print(row(f"scoring {label}", score_s))

    def batch(explain: bool):
        en = enrich(bars, interval)
        opp = detect(en, interval=interval, explain=explain)
        return score_symbols(en, opp, interval=interval)

    for explain, how in ((True, "with messages"), (False, "no messages")):
        batch_s = median_s(lambda: batch(explain), repeats)
        print(row(f"full batch ({how}): indicators + detectors + scoring {label}", batch_s, loop_s,
                  "ref: plain TA-Lib loop"))
    scan_s = median_s(lambda: scan(bars, interval), repeats)
    print(row(f"scan() {label}", scan_s, loop_s, "ref: plain TA-Lib loop"))


def main(repeats: int = 5) -> None:
    m = market()
    daily = m.daily_history(1250)
    bench(f"{N_SYMBOLS} x 1250 daily", daily, "1d", repeats)
    m.clock.advance(375)
    minute = m.bars()
    bench(f"{N_SYMBOLS} x 375 one-minute", minute, "1m", repeats)


if __name__ == "__main__":
    main()
