"""Breadth and sentiment, checked by hand on a five-symbol market."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mintel.analytics.breadth import market_breadth

nan = np.nan


@pytest.fixture
def market() -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": ["A", "B", "C", "D", "E"],
        "sector": ["IT", "IT", "Banks", "Banks", "Energy"],
        "change_pct": [2.0, -1.0, 0.0, 3.0, -4.0],
        "price": [110.0, 50.0, 200.0, 20.0, 80.0],
        "sma_50": [100.0, 55.0, nan, 18.0, 90.0],
        "sma_200": [90.0, 45.0, nan, 25.0, 100.0],
        "rsi": [60.0, 40.0, nan, 70.0, 30.0],
        "day_volume": [1000.0, 2000.0, 500.0, 10000.0, 3000.0],
        "new_high_52w": [False, False, False, True, False],
        "new_low_52w": [False, False, False, False, True],
    })


def test_market_figures_by_hand(market):
    b = market_breadth(market)
    assert (b.symbols, b.advancers, b.decliners, b.unchanged) == (5, 2, 2, 1)
    assert b.ad_ratio == 1.0
    assert b.pct_above_sma_50 == 50.0  # A, D of A, B, D, E (C unknown)
    assert b.pct_above_sma_200 == 50.0  # A, B of A, B, D, E
    assert (b.new_highs, b.new_lows) == (1, 1)
    assert (b.up_volume, b.down_volume) == (11000.0, 5000.0)
    assert b.avg_rsi == 50.0 and b.mean_change_pct == 0.0


def test_sentiment_by_hand(market):
    b = market_breadth(market)
    parts = b.parts.set_index("part")
    assert parts.loc["up_volume", "value"] == pytest.approx(11 / 16)
    assert parts.loc["up_volume", "contribution"] == pytest.approx(10.31)
    assert (parts.drop(index="up_volume")["value"] == 0.5).all()
    assert b.sentiment == pytest.approx(52.81)
    assert parts["contribution"].sum() == pytest.approx(b.sentiment)
    assert b.label == "neutral"


def test_sectors_by_hand(market):
    s = market_breadth(market).sectors.set_index("sector")
    assert list(s.index) == ["Banks", "IT", "Energy"]  # by turnover-weighted change
    assert s.loc["IT", "mean_change_pct"] == pytest.approx(0.5)
    assert s.loc["IT", "weighted_change_pct"] == pytest.approx((2 * 110_000 - 100_000) / 210_000)
    assert s.loc["Banks", "weighted_change_pct"] == pytest.approx(2.0)
    assert (s.loc["Banks", "advancers"], s.loc["Banks", "unchanged"]) == (1, 1)
    assert s.loc["Banks", "pct_above_sma_50"] == 100.0
    assert s.loc["IT", "pct_advancing"] == 50.0


def test_flags_from_signals_and_change_from_prev_close(market):
    m = market.drop(columns=["new_high_52w", "new_low_52w", "change_pct"])
    m["signals"] = ["", "breakout", "", "breakout,high_52w", "low_52w"]
    m["prev_close"] = m["price"] / np.array([1.02, 0.99, 1.0, 1.03, 0.96])
    b = market_breadth(m)
    assert (b.new_highs, b.new_lows, b.advancers, b.decliners, b.unchanged) == (1, 1, 2, 2, 1)


def test_unknown_parts_are_left_out_and_empty_gives_nulls():
    only = pd.DataFrame({"symbol": ["A", "B"], "change_pct": [1.0, 1.0]})
    b = market_breadth(only)
    # only "advancing" (2 of 2: 1.0, weight 20) and "mean_change" (+1 %, weight 15) are known
    want = (20 * 1.0 + 15 * (0.5 + 0.5 * np.tanh(1.0))) / 35 * 100
    assert np.isnan(b.ad_ratio) and b.sentiment == pytest.approx(want, abs=0.02)
    assert b.parts["contribution"].sum() == pytest.approx(b.sentiment)
    empty = market_breadth(pd.DataFrame())
    assert empty.symbols == 0 and np.isnan(empty.sentiment) and empty.label is None
    d = empty.to_dict()
    json.dumps(d, allow_nan=False)
    json.dumps(market_breadth(only).to_dict(), allow_nan=False)


def test_flat_threshold():
    m = pd.DataFrame({"symbol": ["A", "B", "C"], "change_pct": [0.05, -0.05, 0.5]})
    b = market_breadth(m, flat_pct=0.1)
    assert (b.advancers, b.decliners, b.unchanged) == (1, 0, 2)
