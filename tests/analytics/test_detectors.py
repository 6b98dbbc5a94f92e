"""Detectors: each fires on a constructed case and stays silent on its negative twin; rows explain
themselves (factors sum to the score); the live path (last_only) equals the full run's last bars;
bad input gives empty results, not exceptions."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import talib
from pandas.testing import assert_frame_equal

from mintel import schema
from mintel.analytics.detectors import DETECTORS, DetectorParams, detect
from mintel.analytics.indicators import compute_indicators
from mintel.errors import DataError
from mintel.providers.sim import SimClock, SimMarket

REQUIRED = ("breakout", "breakdown", "high_52w", "low_52w", "volume_spike", "golden_cross", "death_cross",
            "macd_cross_up", "macd_cross_down", "rsi_oversold", "rsi_overbought", "rsi_divergence_bull",
            "rsi_divergence_bear", "support_bounce", "resistance_break", "gap_up", "gap_down")


# --- constructed bars ------------------------------------------------------------------------------


def frame(close, *, open_=None, high=None, low=None, volume=None, symbol="AAA") -> pd.DataFrame:
    """Daily bars from closes: open at the previous close, a 0.2 wick each side, gently varying volume."""
    close = np.asarray(close, dtype=float)
    n = len(close)
    o = np.r_[close[0], close[:-1]] if open_ is None else np.asarray(open_, dtype=float)
    return pd.DataFrame({
        "interval": "1d", "symbol": symbol, "ts": pd.date_range("2025-01-01", periods=n, freq="D", tz="UTC"),
        "open": o, "high": np.maximum(o, close) + 0.2 if high is None else high,
        "low": np.minimum(o, close) - 0.2 if low is None else low, "close": close,
        "volume": 1000 + 50 * np.sin(np.arange(n)) if volume is None else np.asarray(volume, dtype=float),
    })


def ranging(n: int) -> np.ndarray:
    return 100 + np.sin(np.arange(n) / 2.0)


def fired(bars: pd.DataFrame, kind: str) -> pd.DataFrame:
    e = compute_indicators(bars, "1d", extra=("sma_200",))
    return detect(e, [kind])


def fires_last(bars: pd.DataFrame, kind: str) -> bool:
    return bool((fired(bars, kind)["ts"] == bars["ts"].iloc[-1]).any())


def with_last(close: np.ndarray, last: float, **overrides) -> pd.DataFrame:
    b = frame(np.r_[close, last])
    for col, value in overrides.items():
        b.loc[b.index[-1], col] = value
    return b


# --- each detector: fires / silent twin ------------------------------------------------------------


@pytest.mark.parametrize("kind,last,twin", [("breakout", 104.0, 100.5), ("breakdown", 96.0, 99.5)])
def test_channel_breaks(kind, last, twin):
    assert fires_last(with_last(ranging(40), last), kind)
    assert not fires_last(with_last(ranging(40), twin), kind)


def test_breakout_message_and_factors():
    b = with_last(ranging(40), 104.0, volume=3000.0)
    row = fired(b, "breakout").iloc[-1]
    assert row["message"].startswith("AAA broke its 20-day high 101.")
    assert re.search(r"at 104.00 on 3\.\d× volume$", row["message"])
    factors = json.loads(row["factors"])
    assert set(factors) == {"base", "volume", "margin", "trend", "momentum"}
    assert sum(factors.values()) == pytest.approx(row["score"])
    assert row["direction"] == "long" and 0 <= row["confidence"] <= 1


@pytest.mark.parametrize("kind,last,twin", [("high_52w", 104.0, 100.5), ("low_52w", 96.0, 99.5)])
def test_52_week_extremes(kind, last, twin):
    assert fires_last(with_last(ranging(270), last), kind)
    assert not fires_last(with_last(ranging(270), twin), kind)
    assert not fires_last(with_last(ranging(200), last), kind)  # less than a year of history: no verdict
    row = fired(with_last(ranging(270), last), kind).iloc[-1]
    assert "52-week" in row["message"]


@pytest.mark.parametrize("move,direction", [(1.02, "long"), (0.98, "short")])
def test_volume_spike_fires_with_direction(move, direction):
    base = ranging(40)
    b = with_last(base, base[-1] * move, volume=5000.0)
    rows = fired(b, "volume_spike")
    last = rows[rows["ts"] == b["ts"].iloc[-1]]
    assert len(last) == 1 and last["direction"].iloc[0] == direction
    assert "traded 4." in last["message"].iloc[0] or "traded 5." in last["message"].iloc[0]
    assert not fires_last(with_last(base, base[-1] * move, volume=1500.0), "volume_spike")


def cross_rows(a: np.ndarray, b: np.ndarray, up: bool) -> set[int]:
    pa, pb = np.r_[np.nan, a[:-1]], np.r_[np.nan, b[:-1]]
    with np.errstate(invalid="ignore"):
        hit = (a > b) & (pa <= pb) if up else (a < b) & (pa >= pb)
    return set(np.flatnonzero(hit).tolist())


@pytest.mark.parametrize("kind,close,twin", [
    ("golden_cross", np.r_[np.linspace(120, 100, 60), np.linspace(100, 130, 30)[1:]], np.linspace(120, 90, 90)),
    ("death_cross", np.r_[np.linspace(100, 120, 60), np.linspace(120, 90, 30)[1:]], np.linspace(90, 120, 90)),
])
def test_sma_crosses(kind, close, twin):
    want = cross_rows(talib.SMA(close, 20), talib.SMA(close, 50), kind == "golden_cross")
    assert len(want) == 1
    b = frame(close)
    got = fired(b, kind)
    assert set(got["ts"]) == {b["ts"].iloc[i] for i in want}
    assert fired(frame(twin), kind).empty


@pytest.mark.parametrize("kind,close,twin", [
    # twins: accelerating moves, so MACD keeps running away from its signal line
    ("macd_cross_up", np.r_[np.linspace(120, 100, 50), np.linspace(100, 120, 30)[1:]], 120 - 0.01 * np.arange(80) ** 2),
    ("macd_cross_down", np.r_[np.linspace(100, 120, 50), np.linspace(120, 100, 30)[1:]], 60 + 0.01 * np.arange(80) ** 2),
])
def test_macd_crosses(kind, close, twin):
    macd, signal, _ = talib.MACD(close, 12, 26, 9)
    want = cross_rows(macd, signal, kind == "macd_cross_up")
    assert want
    b = frame(close)
    assert set(fired(b, kind)["ts"]) == {b["ts"].iloc[i] for i in want}
    assert not cross_rows(*talib.MACD(twin, 12, 26, 9)[:2], kind == "macd_cross_up")
    assert fired(frame(twin), kind).empty


@pytest.mark.parametrize("kind,close,twin", [
    ("rsi_oversold", np.linspace(100, 70, 40) + 0.3 * (-1) ** np.arange(40), np.linspace(70, 100, 40)),
    ("rsi_overbought", np.linspace(70, 100, 40) + 0.3 * (-1) ** np.arange(40), np.linspace(100, 70, 40)),
])
def test_rsi_extremes(kind, close, twin):
    b = frame(close)
    got = fired(b, kind)
    rsi = talib.RSI(close, 14)
    with np.errstate(invalid="ignore"):
        want = rsi < 30 if kind == "rsi_oversold" else rsi > 70
    assert want.any() and set(got["ts"]) == set(b["ts"][want])
    assert fired(frame(twin), kind).empty


def divergence_closes(second_low: float) -> np.ndarray:
    """A sharp fall to 90 (RSI very low), a bounce to 98, a slow slide to ``second_low``, a bounce."""
    up = 100 + np.arange(30) * 0.33 + 0.4 * (-1) ** np.arange(30)
    legs = [up, np.linspace(up[-1], 90, 6)[1:], np.linspace(90, 98, 9)[1:], np.linspace(98, second_low, 16)[1:],
            np.linspace(second_low, 95, 9)[1:]]
    return np.concatenate(legs)


@pytest.mark.parametrize("kind,flip", [("rsi_divergence_bull", False), ("rsi_divergence_bear", True)])
def test_rsi_divergences(kind, flip):
    def shape(c):
        return 200 - c if flip else c

    close = shape(divergence_closes(89.0))  # lower low (bear: higher high), RSI disagrees
    rsi = talib.RSI(close, 14)
    a, b = 34, 57
    assert (rsi[b] > rsi[a]) if not flip else (rsi[b] < rsi[a])
    bars = frame(close)
    got = fired(bars, kind)
    assert got["ts"].tolist() == [bars["ts"].iloc[b + 3]]  # confirmed 3 bars after the second pivot
    assert "RSI divergence" in got["message"].iloc[0]
    assert fired(frame(shape(divergence_closes(91.0))), kind).empty  # no new extreme: no divergence


def zigzag(cycles: int = 4) -> np.ndarray:
    leg = np.linspace(100, 110, 6)
    return np.r_[np.tile(np.r_[leg[:-1], leg[::-1][:-1]], cycles), 100.0, 102.0, 104.0]


@pytest.mark.parametrize("kind,bar,twin", [
    # support at 99.8 (lows of the 100 closes), resistance at 110.2
    ("support_bounce", dict(open=100.6, low=100.0, high=101.7, close=101.5), dict(open=102.0, low=100.0, high=102.2, close=101.5)),
    ("support_break", dict(open=100.5, low=96.8, high=100.7, close=97.0), dict(open=100.5, low=100.2, high=100.7, close=100.4)),
    ("resistance_break", dict(open=108.0, low=107.8, high=113.2, close=113.0), dict(open=108.0, low=107.8, high=109.2, close=109.0)),
    ("resistance_reject", dict(open=109.5, low=108.3, high=110.1, close=108.5), dict(open=108.8, low=108.3, high=108.9, close=108.5)),
])
def test_support_and_resistance(kind, bar, twin):
    base = zigzag()
    if kind.startswith("resistance"):
        base = np.r_[base, 106.0, 108.0]

    def bars(last):
        b = frame(np.r_[base, last["close"]])
        for col, value in last.items():
            b.loc[b.index[-1], col] = value
        return b

    got = fired(bars(bar), kind)
    hit = got[got["ts"] == bars(bar)["ts"].iloc[-1]]
    assert len(hit) == 1, got
    assert "touches" in hit["message"].iloc[0]
    assert not fires_last(bars(twin), kind)


@pytest.mark.parametrize("kind,open_,close", [("gap_up", 104.0, 105.0), ("gap_down", 96.0, 95.0)])
def test_gaps(kind, open_, close):
    base = ranging(30)
    b = with_last(base, close, open=open_, high=max(open_, close) + 0.2, low=min(open_, close) - 0.2)
    row = fired(b, kind).iloc[-1]
    assert row["ts"] == b["ts"].iloc[-1] and "holding the gap" in row["message"]
    nudge = base[-1] + (0.2 if kind == "gap_up" else -0.2)
    twin = with_last(base, nudge, open=nudge, high=nudge + 0.2, low=nudge - 0.2)
    assert not fires_last(twin, kind)


# --- registry, explanation, live path ------------------------------------------------------------


def test_registry_names_and_descriptions():
    assert set(REQUIRED) <= set(DETECTORS)
    for name, d in DETECTORS.items():
        assert d.name == name and d.description and d.direction in ("long", "short", "neutral", "bar")


@pytest.fixture(scope="module")
def sim_daily() -> pd.DataFrame:
    uni = pd.DataFrame({"symbol": [f"S{i:03d}" for i in range(50)], "sector": [f"Sector{i % 5}" for i in range(50)]})
    m = SimMarket(uni, seed=3, clock=SimClock("NSE", "2026-10-30"))
    bars = m.daily_history(300)
    bars["sector"] = bars["symbol"].map(uni.set_index("symbol")["sector"])
    return compute_indicators(bars, "1d", extra=("sma_200",))


@pytest.fixture(scope="module")
def sim_full(sim_daily) -> pd.DataFrame:
    return detect(sim_daily)


def test_every_detector_fires_on_simulated_history(sim_full):
    assert set(REQUIRED) <= set(sim_full["kind"])


def test_rows_explain_their_scores(sim_full):
    o = sim_full
    assert list(o.columns) == schema.OPPORTUNITIES.names
    assert o["score"].between(0, 100).all() and o["confidence"].between(0, 1).all()
    assert set(o["direction"]) <= {"long", "short", "neutral"}
    sums = o["factors"].map(lambda s: sum(json.loads(s).values()))
    np.testing.assert_allclose(sums, o["score"], atol=1e-6)
    assert o["message"].str.len().gt(10).all() and o["sector"].notna().all()
    assert not o.duplicated(["symbol", "ts", "kind"]).any()


def last_rows(full: pd.DataFrame, enriched: pd.DataFrame) -> pd.DataFrame:
    last_ts = enriched.groupby("symbol")["ts"].max()
    return full[full["ts"].to_numpy() == last_ts.reindex(full["symbol"]).to_numpy()].reset_index(drop=True)


def test_last_only_equals_the_full_runs_last_bars(sim_daily, sim_full):
    live = detect(sim_daily, last_only=True)
    assert len(live) > 0
    assert_frame_equal(live.reset_index(drop=True), last_rows(sim_full, sim_daily))


def test_last_only_at_every_cut_of_history(sim_daily):
    """The live path as the days go by: at each cut, the last bars agree with the full run."""
    for cut in (120, 200, 253, 254, 299):
        part = sim_daily.groupby("symbol", group_keys=False).head(cut)
        full = detect(part)
        assert_frame_equal(detect(part, last_only=True).reset_index(drop=True), last_rows(full, part))
        some = ["breakout", "support_bounce", "resistance_break", "rsi_divergence_bull"]  # no 52-week: a shorter tail
        assert_frame_equal(detect(part, some, last_only=True).reset_index(drop=True),
                           last_rows(full[full["kind"].isin(some)].reset_index(drop=True), part))


def test_last_only_on_intraday_bars():
    uni = pd.DataFrame({"symbol": [f"M{i:02d}" for i in range(30)], "sector": "X"})
    m = SimMarket(uni, seed=9, clock=SimClock("NSE", "2026-10-30"))
    m.clock.advance(375 + 200)  # a whole session and part of the next
    e = compute_indicators(m.bars(), "1m")
    full = detect(e)
    assert len(full) and "high_52w" not in set(full["kind"])  # daily-only detectors stay out
    assert_frame_equal(detect(e, last_only=True).reset_index(drop=True), last_rows(full, e))
    assert "bar" in " ".join(full.loc[full["kind"] == "breakout", "message"].head(1))


def test_explain_false_and_unsorted_input(sim_daily, sim_full):
    quiet = detect(sim_daily, explain=False)
    assert quiet["message"].isna().all() and quiet["factors"].isna().all()
    cols = ["ts", "symbol", "kind", "direction", "score", "confidence", "price"]
    assert_frame_equal(quiet[cols], sim_full[cols])
    shuffled = sim_daily.sample(frac=1.0, random_state=1)
    assert_frame_equal(detect(shuffled), sim_full)


def test_bad_input_gives_empty_or_null_not_exceptions():
    empty = detect(frame(ranging(5)).iloc[:0])
    assert empty.empty and list(empty.columns) == schema.OPPORTUNITIES.names
    short = frame(ranging(3), symbol="TINY")
    assert detect(short).empty  # 3 bars: nothing to say
    b = pd.concat([frame(ranging(60), symbol="AAA"), short], ignore_index=True)
    b.loc[[10, 30], "close"] = np.nan  # NaN bars are skipped
    b = b.drop(index=[40, 41])  # gaps in time
    out = detect(compute_indicators(b, "1d"))
    assert set(out["symbol"]) <= {"AAA"}
    last_nan = frame(ranging(40))
    last_nan.loc[39, "close"] = np.nan
    assert detect(last_nan, last_only=True).empty  # the last bar is unusable: no live signal
    with pytest.raises(DataError, match="unknown detector 'nope'"):
        detect(frame(ranging(30)), ["breakout", "nope"])
    with pytest.raises(DataError, match="'volume' missing"):
        detect(frame(ranging(30)).drop(columns=["volume"]))


def test_params_change_thresholds():
    b = with_last(ranging(40), 104.0, volume=2500.0)
    e = compute_indicators(b, "1d")
    assert detect(e, "volume_spike").empty
    assert len(detect(e, "volume_spike", params=DetectorParams(spike_ratio=2.0))) >= 1
    assert DetectorParams().history_bars() >= 253
