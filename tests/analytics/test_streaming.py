"""Streaming indicators equal the batch (TA-Lib) values bar by bar, to 1e-9 relative."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mintel.analytics.indicators import compute_indicators, output_columns
from mintel.analytics.streaming import StreamingIndicators
from mintel.errors import DataError
from mintel.schema import INDICATORS

from .test_indicators import daily_frame, intraday_frame, random_walk

EXTRA = ("sma_200",)
COLUMNS = output_columns(EXTRA)


def assert_equal_to_batch(got: pd.DataFrame, want: pd.DataFrame, columns=COLUMNS) -> None:
    """Same NaN places; values within 1e-9 relative (absolute 1e-9 of the column's scale near 0)."""
    for col in columns:
        a, b = got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{col}: NaN in other places")
        scale = np.nanmax(np.abs(b), initial=0.0)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * scale, err_msg=col)


def stream(bars: pd.DataFrame, si: StreamingIndicators, *, by="ts", reupdates: int = 0, seed: int = 0) -> pd.DataFrame:
    """Feed ``bars`` one timestamp at a time (each time the symbols that have a bar then); with
    ``reupdates``, each bar first arrives that many times with other values (the forming bar)."""
    rng = np.random.default_rng(seed)
    results = []
    for ts, g in bars.groupby(by, sort=True):
        names = g["symbol"].to_numpy()
        for _ in range(reupdates):
            wiggle = np.exp(rng.normal(0, 0.01, len(g)))
            volume = g.volume * rng.uniform(0, 2, len(g))
            si.update(names, ts, None, g.high * wiggle * 1.01, g.low * wiggle, g.close * wiggle, volume)
        out = si.update(names, ts, None, g.high, g.low, g.close, g.volume)
        results.append(pd.DataFrame(out, index=g.index))
    return pd.concat(results).loc[bars.index]


def _latest(out: pd.DataFrame) -> pd.DataFrame:
    """The batch's last row per symbol (what ``values()`` should hold)."""
    return out.sort_values(["symbol", "ts"]).groupby("symbol").tail(1).set_index("symbol")


def random_universe(n_symbols: int, n_bars: int, seed: int) -> pd.DataFrame:
    """Symbols of varied lengths (some start later, some have 3 bars) over the same calendar."""
    rng = np.random.default_rng(seed)
    lengths = np.full(n_symbols, n_bars)
    lengths[::7] = rng.integers(1, n_bars, len(lengths[::7]))
    lengths[3] = 3
    return daily_frame(lengths, seed)


# --- equality with the batch --------------------------------------------------------------------------


def test_streaming_equals_batch_on_200_symbols_by_600_bars():
    bars = random_universe(200, 600, seed=1)
    got = stream(bars, StreamingIndicators(interval="1d", extra=EXTRA))
    assert_equal_to_batch(got, compute_indicators(bars, "1d", extra=EXTRA))


def test_streaming_equals_batch_on_intraday_bars():
    bars = intraday_frame([f"S{i}" for i in range(12)], sessions=22, seed=2, per_session=40)
    got = stream(bars, StreamingIndicators(interval="1m"))
    want = compute_indicators(bars, "1m")
    assert want["volume_ratio"].notna().mean() > 0.8 and want["vwap"].notna().mean() > 0.9
    assert_equal_to_batch(got, want, INDICATORS)


def test_reupdates_of_the_forming_bar_end_equal_to_the_final_bars():
    bars = random_universe(40, 300, seed=3)
    got = stream(bars, StreamingIndicators(interval="1d", extra=EXTRA), reupdates=3, seed=3)
    assert_equal_to_batch(got, compute_indicators(bars, "1d", extra=EXTRA))


def test_intraday_reupdates_leave_the_session_and_minute_history_alone():
    bars = intraday_frame(["A", "B", "C"], sessions=4, seed=4, per_session=30)
    got = stream(bars, StreamingIndicators(interval="1m"), reupdates=3, seed=4)
    assert_equal_to_batch(got, compute_indicators(bars, "1m"), INDICATORS)


def test_a_forming_bar_has_the_values_of_the_bars_so_far():
    bars = daily_frame([120, 120], 5)
    si = StreamingIndicators.from_history(bars, "1d", extra=EXTRA)
    last = bars.groupby("symbol").tail(1)
    tentative = last.assign(close=last.close * 1.03, high=last.high * 1.04)
    t = tentative
    out = si.update(t.symbol.to_numpy(), t.ts.iloc[0], None, t.high, t.low, t.close, t.volume)
    changed = pd.concat([bars.drop(index=last.index), tentative]).sort_index()
    want = compute_indicators(changed, "1d", extra=EXTRA).loc[last.index]
    assert_equal_to_batch(pd.DataFrame(out, index=last.index), want)


@pytest.mark.parametrize("interval", ["1d", "1m"])
def test_history_warm_up_then_streaming_the_rest(interval):
    if interval == "1d":
        bars = random_universe(60, 500, seed=6)
    else:
        bars = intraday_frame([f"S{i}" for i in range(8)], sessions=24, seed=6, per_session=25)
    cut = bars["ts"].sort_values().iloc[len(bars) * 2 // 3]
    si = StreamingIndicators.from_history(bars[bars.ts <= cut], interval, extra=EXTRA)
    want = compute_indicators(bars, interval, extra=EXTRA)
    assert_equal_to_batch(si.values().set_index("symbol"), _latest(want[want.ts <= cut]).reindex(si.symbols))
    rest = bars[bars.ts > cut]
    got = stream(rest, si)
    assert_equal_to_batch(got, want.loc[rest.index])
    assert_equal_to_batch(si.values().set_index("symbol"), _latest(want).reindex(si.symbols))


def test_history_warm_up_leaves_the_last_bar_forming():
    bars = daily_frame([80], 7)
    si = StreamingIndicators.from_history(bars, "1d")
    last = bars.iloc[-1]
    out = si.update(["S000"], last.ts, None, [last.high * 1.1], [last.low], [last.close * 1.1], [last.volume])
    changed = bars.copy()
    changed.loc[changed.index[-1], ["high", "close"]] = [last.high * 1.1, last.close * 1.1]
    want = compute_indicators(changed, "1d").iloc[[-1]]
    assert_equal_to_batch(pd.DataFrame(out, index=want.index), want, INDICATORS)


def test_nan_bars_in_the_middle_are_null_and_skipped():
    bars = random_universe(30, 200, seed=8)
    rng = np.random.default_rng(8)
    bars.loc[rng.choice(bars.index, 40, replace=False), "close"] = np.nan
    bars.loc[rng.choice(bars.index, 5, replace=False), "volume"] = np.inf
    got = stream(bars, StreamingIndicators(interval="1d", extra=EXTRA), reupdates=1, seed=8)
    want = compute_indicators(bars, "1d", extra=EXTRA)
    assert want.loc[bars.close.isna(), "rsi"].isna().all()
    assert_equal_to_batch(got, want)


def test_symbols_starting_later_and_with_three_bars():
    bars = daily_frame([3, 250, 40], 9)
    si = StreamingIndicators(["S001"], "1d", extra=EXTRA)  # the others are added when they first trade
    got = stream(bars, si)
    assert list(si.symbols) == ["S001", "S002", "S000"]  # in order of first bar
    assert_equal_to_batch(got, compute_indicators(bars, "1d", extra=EXTRA))
    values = si.values()
    assert list(values.columns) == ["symbol", *COLUMNS]
    assert values.set_index("symbol").loc["S000", "rsi"] != values.set_index("symbol").loc["S000", "rsi"]  # NaN


# --- API behaviour ----------------------------------------------------------------------------------


def test_update_by_rows_and_whole_universe_agree_with_by_names():
    rng = np.random.default_rng(10)
    names = ["X", "Y", "Z"]
    a, b, c = (StreamingIndicators(names, "1d") for _ in range(3))
    for t, ts in enumerate(pd.date_range("2026-01-01", periods=60, freq="D", tz="UTC")):
        data = random_walk(3, rng)
        args = (ts, None, data["high"], data["low"], data["close"], data["volume"])
        ra = a.update(names, *args)
        rb = b.update(b.rows(names), *args)
        rc = c.update(None, *args)
        for col in INDICATORS:
            np.testing.assert_array_equal(ra[col], rb[col])
            np.testing.assert_array_equal(ra[col], rc[col])
    pd.testing.assert_frame_equal(a.values(), c.values())


def test_an_older_bar_is_ignored_and_duplicates_are_refused():
    bars = daily_frame([60], 11)
    si = StreamingIndicators.from_history(bars, "1d")
    before = si.values()
    old = bars.iloc[10]
    out = si.update(["S000"], old.ts, None, [old.high], [old.low], [old.close * 2], [old.volume])
    assert np.isnan(out["rsi"]).all()
    pd.testing.assert_frame_equal(si.values(), before)
    assert si.latest_ts()["S000"] == bars.ts.iloc[-1]
    with pytest.raises(DataError, match="more than once"):
        si.update(["S000", "S000"], bars.ts.iloc[-1], None, [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(DataError, match="rows"):
        si.update(np.array([5]), bars.ts.iloc[-1], None, [1.0], [1.0], [1.0], [1.0])


def test_from_history_of_nothing_and_updates_of_nothing():
    empty = daily_frame([1], 12).iloc[:0]
    si = StreamingIndicators.from_history(empty, "1d")
    assert len(si.values()) == 0
    out = si.update([], pd.Timestamp("2026-01-01", tz="UTC"), None, [], [], [], [])
    assert all(len(v) == 0 for v in out.values())
