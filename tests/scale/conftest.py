"""A simulated universe in a lake (nifty50: ~2.5 years of daily bars, 3 sessions of minute bars, plus a
symbol that stopped trading and one with a short history) and a 2-worker dask LocalCluster."""

from __future__ import annotations

import pandas as pd
import pytest

from mintel.lake import Lake

SCALE_UNIVERSE = "nifty50"
DAILY_START = "2024-06-01"
MINUTE_SESSIONS = 3


def build_scale_lake(root) -> Lake:
    from mintel.config import Settings
    from mintel.ingest.backfill import run_backfill
    from mintel.providers.sim import SimClock, SimMarket
    from mintel.universe import load_universe

    lake = Lake(root, durable=False)
    u = load_universe(SCALE_UNIVERSE)
    run_backfill(Settings(lake=lake.root, universe=SCALE_UNIVERSE), lake, u, providers=["sim"], interval="1d",
                 start=DAILY_START, progress=False)
    daily = lake.read_bars(None, interval="1d")
    first = sorted(daily["symbol"].unique())[:2]
    # Symbols only a whole-universe read sees right: one whose bars stop 20 sessions before the others
    # (its last bar is still in the scan's window), one with 30 bars only (indicators not warmed up).
    gone = daily[daily["symbol"] == first[0]].iloc[:-20].assign(symbol="ZZGONE")
    young = daily[daily["symbol"] == first[1]].iloc[-30:].assign(symbol="AAYOUNG")
    lake.append("bars", pd.concat([gone, young]), source="sim")

    m = SimMarket(u, seed=7, clock=SimClock("NSE", "2026-10-26"))
    for k in range(MINUTE_SESSIONS):
        s = m.clock.session(k)
        m.clock.advance(s.n)
        lake.append("bars", m.bars(start=pd.Timestamp(int(s.minutes[0]), tz="UTC")), source="sim")
    return lake


@pytest.fixture(scope="session")
def scale_lake(tmp_path_factory) -> Lake:
    return build_scale_lake(tmp_path_factory.mktemp("scale") / "lake")


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def dask_engine(cluster):
    from mintel.engine import DaskEngine

    with DaskEngine(cluster.scheduler_address) as engine:
        yield engine
