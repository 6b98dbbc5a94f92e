"""The ingestion service on the simulator: lake reads compared against what the provider produced."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from mintel.config import Settings
from mintel.ingest.service import IngestService, build_service
from mintel.lake import Lake
from mintel.providers.sim import SimClock, SimProvider
from mintel.universe import load_universe

START = "2026-11-23"  # a Monday session


@pytest.fixture(scope="module")
def universe():
    return load_universe("nifty50")


def service(lake, universe, seed=42, compact_every=0):
    settings = Settings(lake=lake.root, universe="nifty50", seed=seed, compact_every=compact_every)
    clock = SimClock("NSE", start=START, mode="stepped")
    provider = SimProvider(universe=universe, seed=seed, clock=clock)
    return IngestService(settings, lake, provider, universe, clock=clock)


def reference_bars(universe, minutes, seed=42):
    """What the simulator produces for the first ``minutes`` minutes, asked directly."""
    clock = SimClock("NSE", start=START, mode="stepped")
    provider = SimProvider(universe=universe, seed=seed, clock=clock)
    clock.advance(minutes=minutes)
    return asyncio.run(provider.fetch_bars(universe["symbol"].tolist(), "1m"))


def test_cycles_write_exactly_the_provider_bars_snapshot_and_metrics(lake, universe):
    svc = service(lake, universe, compact_every=4)
    reports = asyncio.run(svc.run(cycles=10))
    assert [r.rows_written for r in reports] == [50] * 10
    got = lake.read_bars(interval="1m")
    want = reference_bars(universe, 10).sort_values(["symbol", "ts"]).reset_index(drop=True)
    assert len(got) == 500
    cols = ["symbol", "ts", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), want[cols])
    assert got["ts"].min() == pd.Timestamp("2026-11-23 03:45", tz="UTC")

    snap = lake.snapshot().set_index("symbol")
    last = want.groupby("symbol").tail(1).set_index("symbol")
    assert len(snap) == 50
    np.testing.assert_array_equal(snap.loc[last.index, "price"], last["close"])
    first = want.groupby("symbol").head(1).set_index("symbol")
    np.testing.assert_array_equal(snap.loc[first.index, "open"], first["open"])
    np.testing.assert_allclose(snap.loc[last.index, "day_volume"], want.groupby("symbol")["volume"].sum().loc[last.index])
    assert snap.loc["RELIANCE", "sector"] == "Oil Gas & Consumable Fuels"

    metrics = lake.read("metrics")
    assert len(metrics) == 10 and metrics["rows_written"].sum() == 500
    assert (metrics["processing_ms"] > 0).all()
    # compaction ran every 4 cycles, merging what came since the last: one file per pass + the last 2 cycles'
    names = [f.name for f in lake.partitions("bars", "1m")[0].files()]
    assert len(names) == 4 and sum(n.endswith("-c.parquet") for n in names) == 2


def test_restart_resumes_without_gaps_or_duplicates(lake, universe):
    asyncio.run(service(lake, universe).run(cycles=6))
    asyncio.run(service(lake, universe).run(cycles=6))  # a new process would rebuild the same way
    got = lake.read_bars(interval="1m")
    assert got.groupby("symbol").size().eq(12).all()
    assert got["ts"].nunique() == 12
    want = reference_bars(universe, 12).sort_values(["symbol", "ts"]).reset_index(drop=True)
    np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())
    snap = lake.snapshot().set_index("symbol")
    first = want.groupby("symbol").head(1).set_index("symbol")
    np.testing.assert_array_equal(snap.loc[first.index, "open"], first["open"])  # the session's open survived the restart


class CorruptingSim(SimProvider):
    """The simulator with faults injected into known rows (a real provider object, not a mock)."""

    async def fetch_bars(self, symbols, interval, start=None, end=None):
        bars = await super().fetch_bars(symbols, interval, start, end)
        bars = bars.copy()
        bars.loc[bars.index[0], "close"] = np.nan
        bars.loc[bars.index[1], "high"] = bars.loc[bars.index[1], "low"] / 2
        bars.loc[bars.index[2], "volume"] = -10.0
        return bars


def test_bad_rows_are_quarantined_with_reasons_and_the_rest_written(lake, universe):
    settings = Settings(lake=lake.root, universe="nifty50", compact_every=0)
    clock = SimClock("NSE", start=START, mode="stepped")
    svc = IngestService(settings, lake, CorruptingSim(universe=universe, clock=clock), universe, clock=clock)
    reports = asyncio.run(svc.run(cycles=3))
    assert [r.rows_quarantined for r in reports] == [3, 3, 3]
    assert [r.rows_written for r in reports] == [47, 47, 47]
    q = lake.read("quarantine")
    assert len(q) == 9 and set(q["source"]) == {"sim"}
    assert q["reason"].str.startswith("close is not a finite").sum() == 3
    assert q["reason"].str.contains("< low").sum() == 3
    assert q["reason"].str.contains("volume -10 is negative").sum() == 3
    assert len(lake.read_bars(interval="1m")) + len(q) == 150  # nothing lost


def test_build_service_follows_settings(lake, universe):
    svc = build_service(Settings(lake=lake.root, universe="nifty50", interval_s=0), lake, universe)
    assert svc.clock.mode == "stepped"
    svc = build_service(Settings(lake=lake.root, universe="nifty50", interval_s=1, sim_speed=60), lake, universe)
    assert svc.clock.mode == "wall" and svc.clock.speed == 60


def test_cycles_announce_scored_opportunities_once_per_cooldown(lake, universe):
    svc = service(lake, universe)
    asyncio.run(svc.run(cycles=150))
    opp = lake.read("opportunities")
    assert len(opp) > 0
    assert opp["score"].between(0, 100).all() and opp["confidence"].between(0, 1).all()
    assert set(opp["symbol"]) <= set(universe["symbol"])
    assert opp["sector"].notna().all()
    # cooldown: the same (symbol, kind, direction) is not announced again within 15 bars
    for _, g in opp.sort_values("ts").groupby(["symbol", "kind", "direction"]):
        gaps = g["ts"].diff().dropna()
        assert (gaps >= pd.Timedelta(minutes=15)).all(), g
    # factors explain each score
    import json

    for row in opp.head(50).itertuples():
        assert abs(sum(json.loads(row.factors).values()) - row.score) < 0.05
    snap = lake.snapshot()
    assert snap["score"].notna().sum() >= 45
    last = svc.last_output
    standing = last.standing.groupby("symbol")["kind"].agg(lambda k: ",".join(sorted(set(k))))
    got = snap.set_index("symbol")["signals"].dropna()
    assert got.to_dict() == standing.to_dict()


def test_restart_does_not_reannounce_standing_opportunities(lake, universe):
    asyncio.run(service(lake, universe).run(cycles=120))
    before = lake.read("opportunities")
    svc = service(lake, universe)
    asyncio.run(svc.run(cycles=1))
    after = lake.read("opportunities")
    new = after[~after.set_index(["ts", "symbol", "kind"]).index.isin(before.set_index(["ts", "symbol", "kind"]).index)]
    clash = new.merge(before, on=["symbol", "kind", "direction"])
    clash = clash[clash["ts_x"] - clash["ts_y"] < pd.Timedelta(minutes=15)]  # within the cooldown
    assert clash.empty, clash[["ts_x", "ts_y", "symbol", "kind", "direction"]].to_string()


class Withholding(SimProvider):
    """The simulator, except that ``symbols`` get no answer in the given fetch calls (1-based)."""

    def __init__(self, *a, silent: dict[int, set[str]], **kw):
        super().__init__(*a, **kw)
        self.silent, self.calls = silent, 0

    async def fetch_bars(self, symbols, interval, start=None, end=None):
        self.calls += 1
        bars = await super().fetch_bars(symbols, interval, start=start, end=end)
        gone = self.silent.get(self.calls, set())
        return bars[~bars["symbol"].isin(gone)].reset_index(drop=True) if gone else bars


def test_a_symbol_no_provider_answered_is_caught_up_next_cycle(lake, universe):
    """A symbol missing from a cycle's answers is asked again from its own last bar: no bar lost."""
    settings = Settings(lake=lake.root, universe="nifty50", seed=42, compact_every=0)
    clock = SimClock("NSE", start=START, mode="stepped")
    provider = Withholding(universe=universe, seed=42, clock=clock, silent={5: {"TCS", "INFY"}, 6: {"TCS"}, 7: {"TCS"}})
    svc = IngestService(settings, lake, provider, universe, clock=clock, alerts=None)
    reports = asyncio.run(svc.run(cycles=12))
    # cycle 5 misses both; 6 brings INFY's minute 5 with its minute 6 (TCS still silent); 8 brings TCS's 5, 6, 7
    assert [r.rows_written for r in reports[4:8]] == [48, 49 + 1, 49, 50 + 3]
    stored = lake.read_bars(None, "1m")
    want = reference_bars(universe, 12)
    assert len(stored) == len(want) == 12 * 50  # every minute of every symbol, once
    key = ["symbol", "ts"]
    got = stored.sort_values(key).reset_index(drop=True)
    ref = want.sort_values(key).reset_index(drop=True)
    assert (got[key] == ref[key]).all().all() and np.allclose(got["close"], ref["close"])
    # the snapshot and the live indicators saw TCS's bars in order: the last one is the reference's
    snap = lake.snapshot("TCS")
    assert snap["price"].iloc[0] == pytest.approx(ref.loc[ref["symbol"] == "TCS", "close"].iloc[-1])
