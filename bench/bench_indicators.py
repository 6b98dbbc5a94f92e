"""Indicator benchmarks, each beside the plain TA-Lib loop doing the same work in the same run.

    .venv/bin/python -m bench indicators        (or: .venv/bin/python bench/bench_indicators.py)

Figures: ``compute_indicators`` against a plain loop of the same TA-Lib calls (results kept, as a
caller would) for 1000 symbols x 1250 daily bars and x 375 one-minute bars (one session; four
sessions for context, where VWAP and the same-minute volume ratio have history to work on);
one ``StreamingIndicators.update`` for 1000 and 5000 symbols against recomputing them with TA-Lib;
``from_history`` warm-up. Goals (issue): batch <= 1.5x the loop, an update of 5000 symbols < 5 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import talib

from bench.common import median_s, row
from mintel.analytics.indicators import compute_indicators
from mintel.analytics.streaming import StreamingIndicators

N_SYMBOLS = 1000


def universe(n_symbols: int, n_bars: int, interval: str, sessions: int = 1, seed: int = 0) -> pd.DataFrame:
    """Random-walk bars sorted by (symbol, ts): daily, or 1-minute NSE sessions (09:15 IST)."""
    rng = np.random.default_rng(seed)
    if interval == "1d":
        ts = pd.date_range(end="2026-11-24", periods=n_bars, freq="B", tz="UTC")
        vol = 0.02
    else:
        days = pd.bdate_range(end="2026-11-24", periods=sessions)
        per = n_bars // sessions
        opens = [pd.date_range(d + pd.Timedelta("03:45:00"), periods=per, freq="1min") for d in days]
        ts = pd.DatetimeIndex(np.concatenate(opens), tz="UTC")
        vol = 0.001
    n = n_symbols * len(ts)
    close = 100 * np.exp(rng.normal(0, vol, (n_symbols, len(ts))).cumsum(axis=1)).ravel()
    spread = rng.uniform(0, vol, n)
    return pd.DataFrame(
        {
            "interval": interval, "symbol": np.repeat([f"SYM{i:04d}" for i in range(n_symbols)], len(ts)),
            "ts": np.tile(ts, n_symbols), "open": close, "high": close * (1 + spread), "low": close * (1 - spread),
            "close": close, "volume": rng.integers(1, 100_000, n).astype(float),
        }
    )


def talib_loop(bars: pd.DataFrame, n_symbols: int):
    """The plain loop: the same TA-Lib calls per symbol on numpy slices, results kept."""
    high, low, close, volume = (bars[c].to_numpy() for c in ("high", "low", "close", "volume"))
    per = len(bars) // n_symbols
    results = []
    for i in range(n_symbols):
        s = slice(i * per, (i + 1) * per)
        c = close[s]
        results.append((
            talib.RSI(c, 14), talib.MACD(c, 12, 26, 9), talib.BBANDS(c, 20, 2, 2, 0), talib.SMA(c, 20),
            talib.SMA(c, 50), talib.EMA(c, 20), talib.ATR(high[s], low[s], c, 14), talib.OBV(c, volume[s]),
        ))
    return results


def bench_batch() -> None:
    for label, n_bars, interval, sessions in (
        ("1000 x 1250 daily", 1250, "1d", 1),
        ("1000 x 375 one-minute (1 session)", 375, "1m", 1),
        ("1000 x 1500 one-minute (4 sessions)", 1500, "1m", 4),
    ):
        bars = universe(N_SYMBOLS, n_bars, interval, sessions)
        loop_s = median_s(lambda: talib_loop(bars, N_SYMBOLS))
        ours_s = median_s(lambda: compute_indicators(bars, interval))
        print(row(f"compute_indicators {label}", ours_s, loop_s, "ref: plain TA-Lib loop"))


def bench_streaming() -> None:
    for n_symbols in (1000, 5000):
        for interval in ("1d", "1m"):
            history = universe(n_symbols, 375 if interval == "1m" else 300, interval, seed=1)
            t0 = pd.Timestamp.now()
            si = StreamingIndicators.from_history(history, interval)
            warm_s = (pd.Timestamp.now() - t0).total_seconds()
            step = pd.Timedelta("1min" if interval == "1m" else "1D")
            ts = history["ts"].max() + step
            rng = np.random.default_rng(2)
            last = history.groupby("symbol")["close"].last().to_numpy()
            bars = [last * np.exp(rng.normal(0, 0.001, n_symbols)) for _ in range(8)]
            k = iter(range(10**9))

            def one_update():
                c = bars[next(k) % len(bars)]  # re-updates of the forming bar, as a live feed sends them
                si.update(None, ts, None, c * 1.001, c * 0.999, c, np.full(n_symbols, 500.0))

            ours_s = median_s(one_update, repeats=50, warmup=5)
            recompute_s = median_s(lambda: talib_loop(history, n_symbols), repeats=3)
            print(row(f"StreamingIndicators.update {n_symbols} symbols {interval}", ours_s, recompute_s,
                      f"ref: TA-Lib recompute of {len(history) // n_symbols} bars; from_history {warm_s:.2f} s"))


def main() -> None:
    bench_batch()
    bench_streaming()


if __name__ == "__main__":
    main()
