"""Compile the analytics' numba kernels ahead of use: ``python -m mintel.analytics.warm``.

The kernels (``_stream_kernel``, ``_window_kernel``, ``_panel_kernel``, ``_detect_kernel``, ``_text_kernel``,
``_score_kernel``, ``_table_kernel``, ``_frame_kernel``; the parallel ones through ``_parallel``) compile on first
call, ~45 s of CPU, then load from
numba's on-disk cache (``__pycache__`` beside them) in milliseconds. ``make install`` runs this once,
so an ingestion process, a dashboard kernel or a test never pays the compile in the middle of its
work. The calls go through the live engine on a small simulated market, intraday and daily, so the
kernels compile for the array layouts the engine really passes.
"""

from __future__ import annotations

import time

import pandas as pd


def warm() -> float:
    """Run the live engine on a few simulated symbols and on one (1m and 1d); returns the seconds it took."""
    from mintel.analytics.engine import LiveEngine
    from mintel.providers.sim import SimClock, SimMarket

    t0 = time.perf_counter()
    from mintel.analytics import _text_kernel  # noqa: F401  (compiles on import: its signatures are declared)

    # Three symbols, and one: with a single symbol numpy calls the window's views contiguous, which numba
    # compiles as other array layouts (~3 s in the middle of a first cycle otherwise).
    for names in (["WARM1", "WARM2", "WARM3"], ["WARM1"]):
        universe = pd.DataFrame({"symbol": names, "name": "", "sector": "Warm-up"})
        market = SimMarket(universe, seed=1, clock=SimClock("NSE", "2026-11-23"))
        market.clock.advance(375 + 120)
        bars = market.bars()
        for interval in ("1m", "1d"):
            if interval == "1d":
                days = pd.date_range("2024-01-01", periods=260, freq="B", tz="UTC")
                bars = pd.concat([bars.iloc[: len(days)].assign(symbol=s, ts=days.values) for s in universe["symbol"]],
                                 ignore_index=True)
            last = bars["ts"].max()
            engine = LiveEngine.from_history(bars[bars["ts"] < last], universe, interval)
            for _ in range(2):  # a new bar, then the forming bar again
                engine.update(bars[bars["ts"] == last], pd.Timestamp.now(tz="UTC"))
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"numba kernels ready ({warm():.1f} s)")
