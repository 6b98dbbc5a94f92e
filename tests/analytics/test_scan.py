"""The scanner and analysis views on a lake built from the simulator's history."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mintel import schema
from mintel.analytics import scan as sc
from mintel.analytics.detectors import DETECTORS
from mintel.analytics.indicators import compute_indicators
from mintel.errors import DataError
from mintel.lake import Lake
from mintel.providers.sim import SimClock, SimMarket

N = 50


@pytest.fixture(scope="module")
def universe() -> pd.DataFrame:
    return pd.DataFrame({"symbol": [f"S{i:03d}" for i in range(N)], "name": [f"Stock {i}" for i in range(N)],
                         "sector": [f"Sector{i % 5}" for i in range(N)]})


@pytest.fixture(scope="module")
def market(universe) -> SimMarket:
    return SimMarket(universe, seed=21, clock=SimClock("NSE", "2026-10-30"))


@pytest.fixture(scope="module")
def daily(market) -> pd.DataFrame:
    return market.daily_history(300)


@pytest.fixture(scope="module")
def lake(tmp_path_factory, daily) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("scan") / "lake", durable=False)
    lake.append("bars", daily)
    return lake


@pytest.fixture(scope="module")
def scanned(lake, universe) -> pd.DataFrame:
    return sc.scan(lake, universe=universe)


def test_scan_one_sensible_row_per_symbol(scanned, daily):
    s = scanned
    assert len(s) == N and s["symbol"].is_unique and list(s.columns) == sc.SCAN_COLUMNS
    assert s["score"].is_monotonic_decreasing and s["score"].between(0, 100).all()
    last = daily.groupby("symbol").tail(2).groupby("symbol")
    by = s.set_index("symbol")
    np.testing.assert_allclose(by["price"], last["close"].last().reindex(by.index))
    np.testing.assert_allclose(by["prev_close"], last["close"].first().reindex(by.index))
    np.testing.assert_allclose(by["change_pct"], (by["price"] / by["prev_close"] - 1) * 100)
    assert (s["ts"] == daily["ts"].max()).all() and (s["interval"] == "1d").all()
    assert s["rsi"].between(0, 100).all() and s["sma_200"].notna().all() and s["atr"].gt(0).all()
    np.testing.assert_allclose(s["bb_pct_b"], (s["price"] - s["bb_lower"]) / (s["bb_upper"] - s["bb_lower"]))
    np.testing.assert_allclose(s["dist_sma_50_pct"], (s["price"] / s["sma_50"] - 1) * 100)
    assert s["sector"].notna().all() and s["name"].str.startswith("Stock").all()
    kinds = {k for sig in s["signals"] for k in sig.split(",") if k}
    assert kinds and kinds <= set(DETECTORS)
    assert set(s["direction"]) <= {"long", "short", "neutral"}
    for f in s["factors"]:
        assert sum(json.loads(f).values()) == pytest.approx(s.loc[s["factors"] == f, "score"].iloc[0], abs=1e-6)
    assert (s["new_high_52w"] == s["signals"].str.contains("high_52w")).all()
    schema.conform("snapshot", s)  # the scan frame fits the snapshot's schema


def test_scan_filters_sort_and_top(lake, universe, scanned):
    f = sc.scan(lake, universe=universe, filters=["rsi>50", "sector=Sector1"], sort="+rsi", top=3)
    assert len(f) <= 3 and (f["rsi"] > 50).all() and (f["sector"] == "Sector1").all()
    assert f["rsi"].is_monotonic_increasing
    want = scanned[(scanned["rsi"] > 50) & (scanned["sector"] == "Sector1")].sort_values("rsi").head(3)
    assert f["symbol"].tolist() == want["symbol"].tolist()
    assert sc.scan(lake, universe=universe, sort="symbol")["symbol"].is_monotonic_increasing
    with pytest.raises(DataError, match="rsi<<30: unknown operator"):
        sc.scan(lake, universe=universe, filters="rsi<<30")
    with pytest.raises(DataError, match="sort 'mood'"):
        sc.scan(lake, universe=universe, sort="mood")


def test_scan_restricted_to_a_universe_and_from_a_frame(lake, universe, daily):
    assert len(sc.scan(lake, universe=universe.head(10))) == 10
    now = pd.Timestamp("2026-11-25", tz="UTC")
    from_lake = sc.scan(lake, universe=universe, lookback="3000D", now=now)
    from_frame = sc.scan(daily, universe=universe, now=now)
    assert_frame_equal(from_lake, from_frame)
    shuffled = daily.sample(frac=1.0, random_state=5)
    assert_frame_equal(sc.scan(shuffled, universe=universe, now=now), from_frame)
    e = sc.enrich(shuffled)
    assert e.index.equals(shuffled.index)  # enrich keeps the bars' order


def test_signals_are_the_opportunities_standing_now(lake, universe, scanned):
    opp = sc.opportunities(lake, universe=universe)
    assert list(opp.columns) == schema.OPPORTUNITIES.names
    assert opp["score"].is_monotonic_decreasing and (opp["ts"] == scanned["ts"].max()).all()
    assert opp["detected_at"].notna().all() and opp["sector"].notna().all()
    got = opp.groupby("symbol")["kind"].agg(lambda k: ",".join(sorted(k)))
    want = scanned.set_index("symbol")["signals"].map(lambda s: ",".join(sorted(s.split(","))) if s else "")
    assert (want[want != ""].sort_index() == got.sort_index()).all()
    strong = sc.opportunities(lake, universe=universe, min_score=70, direction="long", top=5)
    assert len(strong) <= 5 and (strong["score"] >= 70).all() and (strong["direction"] == "long").all()
    history = sc.opportunities(lake, universe=universe, kinds=["breakout"], last_only=False)
    assert history["ts"].nunique() > 50 and set(history["kind"]) == {"breakout"}


def test_indicators_of_one_symbol(lake, daily):
    got = sc.indicators("S003", lake, tail=20)
    assert len(got) == 20 and (got["symbol"] == "S003").all()
    want = compute_indicators(daily[daily["symbol"] == "S003"], "1d", extra=("sma_200",)).tail(20)
    np.testing.assert_allclose(got["sma_50"], want["sma_50"])
    np.testing.assert_allclose(got["sma_200"], want["sma_200"])
    assert {"bb_pct_b", "dist_sma_50_pct", "rsi", "macd"} <= set(got.columns)
    with pytest.raises(DataError, match="NOPE: no 1d bars"):
        sc.indicators("NOPE", lake)


def test_volume_analysis(lake):
    every = sc.volume_analysis(None, lake)
    assert len(every) == N and every["symbol"].is_unique
    assert every["volume_ratio"].dropna().is_monotonic_decreasing
    assert {"volume_z", "pv_corr", "ad", "adosc", "unusual", "return_pct"} <= set(every.columns)
    one = sc.volume_analysis("S001", lake, tail=30)
    assert len(one) == 30 and (one["symbol"] == "S001").all() and one["volume_z"].notna().all()


def test_sentiment(lake, universe, scanned):
    s = sc.sentiment(lake, universe=universe)
    assert s["advancers"] + s["decliners"] + s["unchanged"] == N
    assert 0 <= s["sentiment"] <= 100 and s["label"]
    assert len(s["sectors"]) == 5 and sum(r["symbols"] for r in s["sectors"]) == N
    json.dumps(s, allow_nan=False)
    assert sc.sentiment(scanned)["advancers"] == s["advancers"]  # a scan frame works too


def test_intraday_scan_uses_the_last_session(tmp_path, universe):
    m = SimMarket(universe.head(20), seed=4, clock=SimClock("NSE", "2026-10-30"))
    m.clock.advance(375 + 120)  # a whole session, then two hours of the next
    bars = m.bars()
    lake = Lake(tmp_path / "lake", durable=False)
    lake.append("bars", bars)
    s = sc.scan(lake, "1m", universe=universe).set_index("symbol")
    assert len(s) == 20
    day = bars["ts"].dt.floor("D")
    today = bars[day == day.max()].groupby("symbol")
    yesterday = bars[day < day.max()].groupby("symbol")
    np.testing.assert_allclose(s["day_volume"], today["volume"].sum().reindex(s.index))
    np.testing.assert_allclose(s["open"], today["open"].first().reindex(s.index))
    np.testing.assert_allclose(s["high"], today["high"].max().reindex(s.index))
    np.testing.assert_allclose(s["prev_close"], yesterday["close"].last().reindex(s.index))
    assert s["vwap"].notna().all() and s["score"].notna().all()


def test_first_session_change_is_against_the_open_as_in_the_live_snapshot(tmp_path, universe):
    # A lake holding one session has no previous close: the change is the session's so far, as the
    # live snapshot reports it, not blank.
    from mintel.analytics.live import LiveState

    m = SimMarket(universe.head(12), seed=9, clock=SimClock("NSE", "2026-10-30"))
    m.clock.advance(90)
    bars = m.bars()
    lake = Lake(tmp_path / "lake", durable=False)
    lake.append("bars", bars)
    s = sc.scan(lake, "1m", universe=universe).set_index("symbol")
    first = bars.groupby("symbol")
    assert s["prev_close"].isna().all()
    np.testing.assert_allclose(s["change_pct"], (s["price"] / first["open"].first().reindex(s.index) - 1) * 100, rtol=1e-12)
    live = schema.to_pandas(LiveState.from_history(bars, universe.head(12), "1m").snapshot()).set_index("symbol")
    np.testing.assert_allclose(s["change_pct"], live["change_pct"].reindex(s.index), rtol=1e-12)


def test_empty_lake(tmp_path):
    lake = Lake(tmp_path / "empty")
    s = sc.scan(lake)
    assert s.empty and list(s.columns) == sc.SCAN_COLUMNS
    assert sc.opportunities(lake).empty
    assert sc.volume_analysis(None, lake).empty
    assert sc.sentiment(lake)["symbols"] == 0
    with pytest.raises(DataError, match="no 1d bars"):
        sc.indicators("S001", lake)


def test_bad_bars_in_a_frame_give_nulls(daily, universe):
    bars = daily[daily["symbol"].isin(["S001", "S002"])].copy()
    bars = pd.concat([bars, daily[daily["symbol"] == "S003"].tail(3)], ignore_index=True)  # 3 bars only
    bars.loc[bars.index[5], "close"] = np.nan
    s = sc.scan(bars, universe=universe).set_index("symbol")
    assert len(s) == 3
    assert np.isnan(s.loc["S003", "score"]) and np.isnan(s.loc["S003", "rsi"])
    assert s.loc[["S001", "S002"], "score"].notna().all()
