"""Constructed markets whose right answers are known, and a small simulator lake for the lab's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

LAB_UNIVERSE = 12  # symbols of nifty50 in the small lake
LAB_START = "2024-06-01"  # its first bar; about 2.5 years of daily bars to the simulator's today


def random_walk(n_symbols: int, n_bars: int, *, seed: int = 1, vol: float = 0.01, drift: float = 0.0) -> pd.DataFrame:
    """Daily bars of independent random walks (open = the previous close moved by half a bar's noise)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2020-01-01", periods=n_bars, freq="B", tz="UTC")
    frames = []
    for i in range(n_symbols):
        close = 100 * np.exp(np.cumsum(rng.normal(drift, vol, n_bars)))
        prev = np.r_[100.0, close[:-1]]
        opn = prev * np.exp(rng.normal(0, vol / 2, n_bars))
        frames.append(pd.DataFrame({"symbol": f"S{i:03d}", "ts": ts, "open": opn,
                                    "high": np.maximum(opn, close) * 1.002, "low": np.minimum(opn, close) * 0.998,
                                    "close": close, "volume": 1e5}))
    return pd.concat(frames, ignore_index=True)


def forward_open_return(bars: pd.DataFrame, h: int) -> pd.Series:
    """open h bars after the next bar's open / the next bar's open - 1, per symbol (plain pandas)."""
    g = bars.groupby("symbol")["open"]
    return g.shift(-1 - h) / g.shift(-1) - 1


@pytest.fixture(scope="session")
def lab_lake(tmp_path_factory):
    from mintel.config import Settings
    from mintel.ingest.backfill import run_backfill
    from mintel.lake import Lake
    from mintel.universe import load_universe

    lake = Lake(tmp_path_factory.mktemp("lab") / "lake", durable=False)
    universe = load_universe("nifty50").head(LAB_UNIVERSE)
    run_backfill(Settings(lake=lake.root, universe="nifty50"), lake, universe, providers=["sim"], interval="1d",
                 start=LAB_START, progress=False)
    return lake
