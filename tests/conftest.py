"""Shared fixtures: a temporary lake and bar factories. Everything is real files in tmp dirs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mintel.lake import Lake

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(tmp_path / "lake")


def make_bars(symbols=("AAA", "BBB"), start="2026-11-23 03:45", periods=10, interval="1m", seed=0, source="test") -> pd.DataFrame:
    """Valid random-walk bars for ``symbols``; daily bars are stamped at 00:00 UTC of each day."""
    rng = np.random.default_rng(seed)
    freq = "1D" if interval == "1d" else interval.replace("m", "min")
    ts = pd.date_range(start, periods=periods, freq=freq, tz="UTC")
    if interval == "1d":
        ts = ts.normalize()
    frames = []
    for sym in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, periods)))
        open_ = close * np.exp(rng.normal(0, 0.003, periods))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, periods))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, periods))
        frames.append(
            pd.DataFrame(
                {
                    "interval": interval, "symbol": sym, "ts": ts, "open": open_, "high": high, "low": low,
                    "close": close, "volume": rng.integers(100, 10_000, periods).astype(float), "source": source,
                    "quality": np.float32(1.0), "ingested_at": pd.Timestamp("2026-11-25", tz="UTC"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def bars_factory():
    return make_bars


def run_mintel(*args, env=None, cwd=None, timeout=120):
    """Run the real command line in a subprocess; returns CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mintel", *map(str, args)], capture_output=True, text=True, env=full_env,
        cwd=cwd or REPO, timeout=timeout,
    )
