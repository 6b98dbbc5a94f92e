"""Replay: recorded bars released by a stepped or wall clock, from a frame, a CSV or the lake;
quotes derived from the latest bar; and the ingestion service driving it like the simulator."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from mintel import schema
from mintel.config import ConfigError, ProviderSettings, Settings
from mintel.errors import DataError, SymbolNotFound
from mintel.providers.base import Provider, provider_factory
from mintel.providers.replay import ReplayClock, ReplayProvider
from tests.conftest import make_bars


def run(coro):
    return asyncio.run(coro)


def two_days() -> pd.DataFrame:
    """AAA and BBB: 5 minutes on 2026-11-23 and 5 on 2026-11-24 (NSE's first minutes)."""
    return pd.concat([make_bars(start="2026-11-23 03:45", periods=5, seed=1),
                      make_bars(start="2026-11-24 03:45", periods=5, seed=2)], ignore_index=True)


def settings(**options) -> ProviderSettings:
    return ProviderSettings(name="replay", options=options)


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_nothing_is_released_before_the_clock_moves():
    p = ReplayProvider(bars=two_days())
    assert isinstance(p, Provider)
    assert run(p.fetch_bars(["AAA", "BBB"], "1m")).empty
    assert run(p.fetch_quotes(["AAA"])).empty


def test_stepped_clock_releases_one_bar_time_per_step():
    source = two_days()
    p = ReplayProvider(bars=source)
    p.clock.advance(3)
    bars = run(p.fetch_bars(["AAA", "BBB"], "1m"))
    assert len(bars) == 6 and bars["ts"].max() == pd.Timestamp("2026-11-23 03:47", tz="UTC")
    expected = source[source["ts"] <= "2026-11-23 03:47"].sort_values(["symbol", "ts"]).reset_index(drop=True)
    for col in ("symbol", "ts", "open", "high", "low", "close", "volume"):
        assert bars[col].tolist() == expected[col].tolist(), col
    assert (bars["source"] == "replay").all() and (bars["ingested_at"] == p.clock.now).all()
    assert p.clock.now == pd.Timestamp("2026-11-23 03:48", tz="UTC")
    p.clock.advance(3)  # across the night: the next step is the next session's first minute
    assert p.clock.cursor == pd.Timestamp("2026-11-24 03:45", tz="UTC")
    newer = run(p.fetch_bars(["AAA"], "1m", start=pd.Timestamp("2026-11-23 03:48", tz="UTC")))
    assert newer["ts"].tolist() == [pd.Timestamp("2026-11-23 03:48", tz="UTC"), pd.Timestamp("2026-11-23 03:49", tz="UTC"),
                                    pd.Timestamp("2026-11-24 03:45", tz="UTC")]
    assert bars.dtypes.to_dict() == schema.empty_frame("bars").dtypes.to_dict()


def test_start_option_releases_the_history_before_it():
    p = ReplayProvider(settings(start="2026-11-24"), bars=two_days())
    assert len(run(p.fetch_bars(["AAA"], "1m"))) == 5
    p.clock.advance_to(pd.Timestamp("2026-11-24 03:47", tz="UTC"))
    assert run(p.fetch_bars(["AAA"], "1m"))["ts"].max() == pd.Timestamp("2026-11-24 03:46", tz="UTC")
    p.clock.advance_to(pd.Timestamp("2026-11-23", tz="UTC"))  # never backwards
    assert p.clock.position == 7
    p.clock.advance(100)
    assert p.clock.done and len(run(p.fetch_bars(["AAA", "BBB"], "1m"))) == 20


def test_wall_clock_releases_speed_bars_per_minute():
    fake = FakeTime()
    p = ReplayProvider(settings(mode="wall", speed=2.0), bars=two_days(), time_fn=fake)
    assert p.clock.position == 0
    fake.t += 90  # 1.5 wall minutes at 2 bars a minute
    assert p.clock.position == 3
    fake.t += 10_000
    assert p.clock.done


def test_quotes_come_from_the_latest_bar_and_the_session_so_far():
    source = two_days()
    p = ReplayProvider(bars=source)
    p.clock.advance(8)  # all of the first day and 3 minutes of the second
    q = run(p.fetch_quotes(["AAA", "BBB"])).set_index("symbol")
    day2 = source[(source["symbol"] == "AAA") & (source["ts"] >= "2026-11-24") & (source["ts"] <= "2026-11-24 03:47")]
    day1 = source[(source["symbol"] == "AAA") & (source["ts"] < "2026-11-24")]
    a = q.loc["AAA"]
    assert a["price"] == day2["close"].iloc[-1] and a["open"] == day2["open"].iloc[0]
    assert a["high"] == day2["high"].max() and a["low"] == day2["low"].min()
    assert a["day_volume"] == day2["volume"].sum() and a["prev_close"] == day1["close"].iloc[-1]
    assert a["ts"] == pd.Timestamp("2026-11-24 03:48", tz="UTC") and np.isnan(a["bid"])


def test_daily_bars_are_built_from_the_released_minutes():
    source = two_days()
    p = ReplayProvider(bars=source)
    p.clock.advance(7)
    daily = run(p.fetch_bars(["BBB"], "1d"))
    assert daily["ts"].tolist() == [pd.Timestamp("2026-11-23", tz="UTC"), pd.Timestamp("2026-11-24", tz="UTC")]
    b2 = source[(source["symbol"] == "BBB") & (source["ts"] >= "2026-11-24")].head(2)
    assert daily["close"].iloc[-1] == b2["close"].iloc[-1] and daily["volume"].iloc[-1] == b2["volume"].sum()
    with pytest.raises(DataError):
        run(p.fetch_bars(["BBB"], "5m"))


def test_unknown_symbols_like_the_simulator():
    p = ReplayProvider(bars=two_days())
    p.clock.advance(1)
    assert set(run(p.fetch_bars(["AAA", "ZZZ"], "1m"))["symbol"]) == {"AAA"}
    with pytest.raises(SymbolNotFound):
        run(p.fetch_bars(["ZZZ"], "1m"))


def test_csv_source_through_the_registry(tmp_path):
    path = tmp_path / "bars.csv"
    two_days().drop(columns=["source", "quality", "ingested_at"]).to_csv(path, index=False)
    universe = pd.DataFrame({"symbol": ["AAA"]})
    p = provider_factory("replay")(settings(source=str(path), start="2026-11-24"), universe=universe)
    bars = run(p.fetch_bars(["AAA"], "1m"))
    assert len(bars) == 5 and set(bars["symbol"]) == {"AAA"}
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,ts,close\nAAA,2026-11-23,1\n")
    with pytest.raises(DataError, match="open, high, low, volume missing"):
        ReplayProvider(settings(source=str(bad)))
    with pytest.raises(ConfigError):
        ReplayProvider(settings())


def test_lake_source(lake):
    lake.append("bars", two_days(), source="test")
    p = ReplayProvider(settings(source=str(lake.root), start="2026-11-24"))
    assert len(run(p.fetch_bars(["AAA", "BBB"], "1m"))) == 10
    p2 = ReplayProvider(bars=None, lake=lake)
    assert p2.clock.position == 0 and len(p2.bars) == 20


def test_bad_rows_are_replayed_for_quarantine():
    source = two_days()
    source.loc[2, "high"] = source.loc[2, "low"] / 2
    p = ReplayProvider(bars=source)
    p.clock.advance(10)
    _, bad = schema.split_valid_bars(run(p.fetch_bars(["AAA"], "1m")))
    assert len(bad) == 1 and bad["reason"].iloc[0].startswith("high ")


def test_clock_rejects_bad_settings():
    with pytest.raises(ConfigError):
        ReplayClock(np.array([0]), mode="fast")
    with pytest.raises(ConfigError):
        ReplayClock(np.array([0]), speed=0)


def test_the_ingestion_service_plays_a_replay(lake, tmp_path):
    from mintel.ingest.service import IngestService
    from mintel.lake import Lake

    p = ReplayProvider(bars=two_days())
    out = Lake(tmp_path / "out")
    service = IngestService(Settings(lake=out.root), out, p, pd.DataFrame({"symbol": ["AAA", "BBB"], "sector": "X"}),
                            clock=p.clock)
    run(service.run(cycles=4))
    written = out.read_bars(["AAA", "BBB"], "1m")
    assert len(written) == 8 and written["ts"].max() == pd.Timestamp("2026-11-23 03:48", tz="UTC")
