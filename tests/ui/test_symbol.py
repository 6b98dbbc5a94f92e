"""Symbol analysis, kernel side: candles, indicators, levels and events against the lake and TA-Lib."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from mintel.analytics.momentum import support_resistance
from mintel.analytics.scan import enrich
from mintel.lake import Lake
from mintel.ui.source import Source
from mintel.ui.symbol import SHOWN, WARMUP, SymbolView

TZ = "Asia/Kolkata"  # NSE: nifty50's exchange


def view_of(lake, **kw) -> SymbolView:
    return SymbolView(Source(lake), live=False, **kw)


def lake_bars(lake, symbol, interval) -> pd.DataFrame:
    """What the view should read: the symbol's last bars, warm-up included."""
    kind = "intraday" if interval == "1m" else "daily"
    return lake.read_bars(symbol, interval=interval).tail(SHOWN[kind] + WARMUP[kind]).reset_index(drop=True)


def shown_x(bars: pd.DataFrame, interval: str) -> pd.DatetimeIndex:
    ts = pd.DatetimeIndex(bars["ts"])
    return (ts.tz_convert(TZ) if interval == "1m" else ts.tz_convert("UTC")).tz_localize(None)


def y(trace) -> np.ndarray:
    return np.asarray(trace.y, dtype=np.float64)


def assert_series(actual, expected, tol=1e-9):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    assert (np.isnan(actual) == np.isnan(expected)).all()
    np.testing.assert_allclose(actual[~np.isnan(actual)], expected[~np.isnan(expected)], rtol=0, atol=tol)


def busiest(lake) -> str:
    """The symbol with the most opportunities in the lake."""
    return lake.read("opportunities")["symbol"].value_counts().sort_index().idxmax()


@pytest.mark.parametrize("interval", ["1m", "1d"])
def test_candles_and_indicators_are_the_lake_bars_and_talib(ui_lake, interval):
    symbol = "RELIANCE"
    view = view_of(ui_lake, symbol=symbol, interval=interval)
    assert view.error is None and (view.symbol, view.interval) == (symbol, interval)
    bars = lake_bars(ui_lake, symbol, interval)
    n = min(len(bars), SHOWN["intraday" if interval == "1m" else "daily"])
    assert n == (80 if interval == "1m" else 250)  # the daily history is longer than what is shown
    shown = bars.tail(n)
    t = view.traces
    assert (pd.DatetimeIndex(t["price"].x) == shown_x(shown, interval)).all()
    for col in ("open", "high", "low", "close"):
        assert list(getattr(t["price"], col)) == shown[col].tolist()
    assert y(t["volume"]).tolist() == shown["volume"].tolist()

    close = bars["close"].to_numpy(dtype=np.float64)
    assert_series(y(t["rsi"]), talib.RSI(close, 14)[-n:])
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    assert_series(y(t["macd"]), macd[-n:])
    assert_series(y(t["macd_signal"]), signal[-n:])
    assert_series(y(t["macd_hist"]), hist[-n:])
    upper, _, lower = talib.BBANDS(close, 20, 2.0, 2.0)
    assert_series(y(t["bb_upper"]), upper[-n:])
    assert_series(y(t["bb_lower"]), lower[-n:])
    assert_series(y(t["sma_20"]), talib.SMA(close, 20)[-n:])
    assert_series(y(t["sma_50"]), talib.SMA(close, 50)[-n:])
    if interval == "1d":
        assert t["sma_200"].visible is not False
        assert_series(y(t["sma_200"]), talib.SMA(close, 200)[-n:])
        assert np.isfinite(y(t["sma_200"])).sum() == len(bars) - 199  # warm from the bars before the window
    else:
        assert t["sma_200"].visible is False


def test_default_symbol_is_the_top_scored_and_the_lake_intervals_are_offered(ui_lake):
    view = view_of(ui_lake)
    snap = ui_lake.snapshot()
    top = snap.sort_values(["score", "symbol"], ascending=[False, True])["symbol"].iloc[0]
    assert view.symbol == top and view.w_symbol.value == top
    assert view.interval == "1m" and list(view.w_interval.options) == ["1m", "1d"]
    assert sorted(view.w_symbol.options) == sorted(snap["symbol"])


def test_events_are_the_lake_opportunities_of_the_symbol(ui_lake):
    symbol = busiest(ui_lake)
    view = view_of(ui_lake, symbol=symbol)
    opp = ui_lake.read("opportunities", symbols=[symbol])
    opp = opp[(opp["interval"] == "1m") & (opp["ts"] >= view.shown["ts"].iloc[0])]
    assert len(opp) >= 5
    ev = view.traces["events"]
    drawn = sorted(zip(pd.DatetimeIndex(ev.x), y(ev).tolist(), [t.split(" ", 1)[0] for t in ev.text]))
    want = sorted(zip(shown_x(opp, "1m"), opp["price"].tolist(), opp["kind"].tolist()))
    assert drawn == want
    shorts = [m for m, t in zip(ev.marker.symbol, ev.text) if "(short," in t]
    assert shorts and set(shorts) == {"triangle-down"}


def test_events_are_those_of_the_interval_shown(ui_lake):
    symbol = busiest(ui_lake)
    daily = ui_lake.read("opportunities", symbols=[symbol]).iloc[[0]].assign(
        interval="1d", kind="daily_test_event", message="found on the daily bars")
    ui_lake.append("opportunities", daily)
    view = view_of(ui_lake, symbol=symbol)
    assert "daily_test_event" not in " ".join(view.traces["events"].text) and len(view.events) > 0
    view.w_interval.value = "1d"
    assert [t.split(" ", 1)[0] for t in view.traces["events"].text] == ["daily_test_event"]


@pytest.mark.parametrize("symbol, interval", [("RELIANCE", "1d"), ("TCS", "1m")])
def test_levels_are_the_nearest_analytics_support_and_resistance(ui_lake, symbol, interval):
    view = view_of(ui_lake, symbol=symbol, interval=interval)
    bars = lake_bars(ui_lake, symbol, interval)
    lv = support_resistance(enrich(bars, interval, TZ))
    lv = lv[lv["touches"] >= 2]
    close = bars["close"].iloc[-1]
    count = 0
    for kind, nearest in (("support", lambda s: s.nlargest(3)), ("resistance", lambda s: s.nsmallest(3))):
        levels = lv.loc[lv["kind"] == kind, "level"]
        want = sorted(nearest(levels).tolist())
        drawn = sorted({v for v in view.traces[kind].y if v is not None})
        assert drawn == pytest.approx(want, rel=1e-12)
        assert all((v < close) if kind == "support" else (v > close) for v in drawn)
        count += len(want)
    # The simulated market follows the date the lake was built on, so how many levels there are varies;
    # the view lists the nearest three of each kind, no more (and there are some to list).
    assert len(view.levels) == count and count >= 2


def new_bar(last: pd.Series, ts, close: float, volume: float) -> pd.DataFrame:
    return pd.DataFrame([{
        "interval": "1m", "symbol": last["symbol"], "ts": ts, "open": last["close"], "high": max(last["close"], close) + 0.5,
        "low": min(last["close"], close) - 0.5, "close": close, "volume": volume, "source": "sim", "quality": 1.0,
        "ingested_at": pd.Timestamp.now(tz="UTC"),
    }])


def test_a_new_bar_and_a_forming_bar_update_the_chart_in_place(ui_lake):
    view = view_of(ui_lake, symbol="TCS")
    view.select("infy")  # the user's pick (typed in lower case)
    assert view.symbol == "INFY" and view.error is None
    candles = view.traces["price"]
    assert view.refresh() is False  # nothing new
    last = ui_lake.read_bars("INFY", interval="1m").iloc[-1]
    ts = last["ts"] + pd.Timedelta(minutes=1)
    ui_lake.append("bars", new_bar(last, ts, last["close"] * 1.01, 1234.0))

    assert view.refresh() is True
    assert view.chart.data[0] is candles  # same trace, new data
    assert (view.symbol, view.interval, view.w_symbol.value, view.w_interval.value) == ("INFY", "1m", "INFY", "1m")
    assert len(candles.x) == 81 and pd.Timestamp(candles.x[-1]) == ts.tz_convert(TZ).tz_localize(None)
    assert candles.close[-1] == pytest.approx(last["close"] * 1.01) and view.traces["volume"].y[-1] == 1234.0
    close = lake_bars(ui_lake, "INFY", "1m")["close"].to_numpy()
    assert_series(y(view.traces["rsi"]), talib.RSI(close, 14)[-81:])

    ui_lake.append("bars", new_bar(last, ts, last["close"] * 0.98, 2000.0))  # the same minute, still forming
    assert view.refresh() is True
    assert len(candles.x) == 81 and candles.close[-1] == pytest.approx(last["close"] * 0.98)
    assert view.traces["rsi"].y[-1] == pytest.approx(talib.RSI(lake_bars(ui_lake, "INFY", "1m")["close"].to_numpy(), 14)[-1])
    assert view.refresh() is False


def test_switching_interval_keeps_the_symbol(ui_lake):
    view = view_of(ui_lake, symbol="SBIN")
    view.w_interval.value = "1d"
    assert (view.symbol, view.interval) == ("SBIN", "1d")
    bars = ui_lake.read_bars("SBIN", interval="1d").tail(SHOWN["daily"])
    assert (pd.DatetimeIndex(view.traces["price"].x) == shown_x(bars, "1d")).all()
    assert view.chart.layout.xaxis.rangebreaks  # weekends hidden


@pytest.mark.parametrize("typed", ["NOPE", "x' onerror='alert(1)", "<script>alert(1)</script>", "A\nB"])
def test_unknown_symbol_is_a_one_line_error_and_the_chart_stays(ui_lake, typed):
    view = view_of(ui_lake, symbol="TCS")
    x = list(view.traces["price"].x)
    view.w_symbol.value = typed  # as the user types it
    assert view.symbol == "TCS" and list(view.traces["price"].x) == x
    assert view.error.startswith("DataError: unknown symbol") and "\n" not in view.error
    assert "m-error" in view.status.value and "<script>" not in view.status.value
    view.refresh()
    assert view.error.startswith("DataError: unknown symbol")  # stays while the box holds it
    view.w_symbol.value = "tcs"
    assert view.error is None and "m-error" not in view.status.value


def test_unknown_symbol_asked_for_in_code_falls_back_to_the_top_one(ui_lake):
    view = view_of(ui_lake, symbol="NOSUCH")
    assert view.error == "DataError: unknown symbol 'NOSUCH' (50 symbols known)"
    assert view.symbol is not None and len(view.traces["price"].x) == 80


def test_empty_lake_renders_a_no_snapshot_state(tmp_path):
    view = view_of(Lake(tmp_path / "empty", durable=False))
    assert view.error is None and view.symbol is None
    assert "no snapshot" in view.status.value and "no snapshot" in view.info.value
    assert len(view.traces["price"].x) == 0 and view.refresh() in (True, False)
    assert view.error is None
