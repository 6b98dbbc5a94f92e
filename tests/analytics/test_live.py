"""The live state against direct computations: day figures by pandas, indicators by TA-Lib batch."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from mintel import schema
from mintel.analytics.indicators import compute_indicators
from mintel.analytics.live import LiveState
from mintel.providers.sim import SimClock, SimProvider
from mintel.universe import load_universe


@pytest.fixture(scope="module")
def session_bars():
    """Two NSE sessions plus a bit (400 minutes) of the simulator for the NIFTY 50."""
    u = load_universe("nifty50")
    clock = SimClock("NSE", start="2026-11-23", mode="stepped")
    provider = SimProvider(universe=u, clock=clock)
    clock.advance(minutes=400)
    return u, asyncio.run(provider.fetch_bars(u["symbol"].tolist(), "1m"))


def streamed(u, bars) -> LiveState:
    state = LiveState(u, "1m")
    for _, minute in bars.groupby("ts"):
        state.update(minute)
    return state


def test_day_figures_equal_a_direct_pandas_computation(session_bars):
    u, bars = session_bars
    snap = streamed(u, bars).snapshot().to_pandas().set_index("symbol")
    day = bars["ts"].dt.floor("D")
    today = bars[day == day.max()].groupby("symbol")
    yesterday_close = bars[day < day.max()].groupby("symbol")["close"].last()
    want = pd.DataFrame(
        {
            "price": today["close"].last(), "open": today["open"].first(), "high": today["high"].max(),
            "low": today["low"].min(), "day_volume": today["volume"].sum(), "prev_close": yesterday_close,
            "volume": today["volume"].last(),
        }
    )
    want["change_pct"] = (want["price"] / want["prev_close"] - 1) * 100
    for c in want.columns:
        np.testing.assert_allclose(snap[c], want.loc[snap.index, c], rtol=1e-12, err_msg=c)
    assert snap.loc["RELIANCE", "sector"] == "Oil Gas & Consumable Fuels"
    assert list(snap.reset_index().columns) == schema.SNAPSHOT.names


def test_indicators_equal_the_batch_engine(session_bars):
    u, bars = session_bars
    snap = streamed(u, bars).snapshot().to_pandas().set_index("symbol")
    batch = compute_indicators(bars.sort_values(["symbol", "ts"]), "1m", "Asia/Kolkata", extra=("sma_200",))
    last = batch.groupby("symbol").tail(1).set_index("symbol")
    for c in [*schema.INDICATORS, "sma_200"]:
        np.testing.assert_allclose(snap[c], last.loc[snap.index, c], rtol=1e-9, err_msg=c)
    width = last["bb_upper"] - last["bb_lower"]
    np.testing.assert_allclose(snap["bb_pct_b"], ((last["close"] - last["bb_lower"]) / width).loc[snap.index], rtol=1e-9)


def test_a_cycles_bars_in_any_order_give_the_same_state_and_values(session_bars):
    # each symbol once (applied in the order given) in state-row order and shuffled; and with one bar twice
    # (sorted, the last one kept): the same state and values
    u, bars = session_bars
    minutes = [m.reset_index(drop=True) for _, m in bars.groupby("ts")]
    rng = np.random.default_rng(1)
    ordered, shuffled, twice = LiveState(u, "1m"), LiveState(u, "1m"), LiveState(u, "1m")
    for minute in minutes:
        minute = minute.iloc[np.argsort(ordered.indicators.rows(minute["symbol"].to_numpy(object)))].reset_index(drop=True)
        perm = rng.permutation(len(minute))
        a, b = ordered.apply(minute), shuffled.apply(minute.iloc[perm].reset_index(drop=True))
        c = twice.apply(pd.concat([minute.iloc[:1].assign(close=minute["close"].iloc[0] * 2), minute], ignore_index=True))
        assert np.array_equal(a.index, np.arange(len(minute))) and np.array_equal(b.index, np.arange(len(minute)))
        assert np.array_equal(c.index, np.arange(1, len(minute) + 1))  # sorted by row: the minute's own order here
        assert np.array_equal(a.rows[perm], b.rows) and np.array_equal(a.symbols[perm], b.symbols)
        for col in a.columns:
            np.testing.assert_array_equal(a.columns[col][perm], b.columns[col], err_msg=col)
            np.testing.assert_array_equal(a.columns[col], c.columns[col], err_msg=col)
    now = pd.Timestamp("2026-11-24 10:00", tz="UTC")
    assert ordered.snapshot(now).equals(shuffled.snapshot(now)) and ordered.snapshot(now).equals(twice.snapshot(now))


def test_the_same_minute_volume_history_is_sized_to_the_session_at_once(session_bars):
    """One slot per minute of an NSE session (375), allocated at the first bar and never copied again."""
    u, bars = session_bars
    state = LiveState(u, "1m")
    minutes = list(bars.groupby("ts"))
    state.update(minutes[0][1])
    first = state.indicators._slot_volume
    assert first.shape[0] == 375
    for _, minute in minutes[1:]:
        state.update(minute)
    assert state.indicators._slot_volume is first  # never reallocated over 400 minutes (two sessions)
    hinted = state.snapshot().to_pandas().set_index("symbol")
    plain = LiveState(u.drop(columns="exchange"), "1m")  # no exchange: the history grows as minutes appear
    for _, minute in minutes:
        plain.update(minute)
    assert plain.indicators._slot_volume.shape[0] == 512  # doubling past 375
    unhinted = plain.snapshot().to_pandas().set_index("symbol")
    np.testing.assert_array_equal(hinted["volume_ratio"].to_numpy(), unhinted["volume_ratio"].to_numpy())


def test_rebuilt_from_history_equals_streamed(session_bars):
    u, bars = session_bars
    a = streamed(u, bars).snapshot().to_pandas().drop(columns="updated_at")
    b = LiveState.from_history(bars, u, "1m").snapshot().to_pandas().drop(columns="updated_at")
    pd.testing.assert_frame_equal(a, b)
    first = bars[bars["ts"] == bars["ts"].min()].reset_index(drop=True)  # a lake holding one bar time
    a = streamed(u, first).snapshot().to_pandas().drop(columns="updated_at")
    b = LiveState.from_history(first, u, "1m").snapshot().to_pandas().drop(columns="updated_at")
    pd.testing.assert_frame_equal(a, b)


def test_forming_bar_updates_do_not_double_count(session_bars):
    u, bars = session_bars
    head = bars[bars["ts"] < bars["ts"].max()]
    last = bars[bars["ts"] == bars["ts"].max()]
    state = streamed(u, head)
    partial = last.assign(close=last["open"], high=last[["open", "high"]].min(axis=1).clip(lower=last["open"]),
                          low=last["open"].where(last["open"] < last["low"], last["low"]), volume=last["volume"] / 3)
    partial["high"] = partial[["open", "close", "high"]].max(axis=1)
    partial["low"] = partial[["open", "close", "low"]].min(axis=1)
    state.update(partial)
    state.update(last)  # the finished bar replaces the forming one
    a = state.snapshot().to_pandas().drop(columns="updated_at")
    b = streamed(u, bars).snapshot().to_pandas().drop(columns="updated_at")
    pd.testing.assert_frame_equal(a, b)


def test_bad_input_gives_nulls_not_exceptions():
    state = LiveState(None, "1d")
    three = pd.DataFrame(
        {"interval": "1d", "symbol": "NEW", "ts": pd.date_range("2026-11-20", periods=3, tz="UTC"),
         "open": [1.0, 2.0, 3.0], "high": [1.5, 2.5, 3.5], "low": [0.5, 1.5, 2.5], "close": [1.2, 2.2, 3.2],
         "volume": [10.0, 20.0, 30.0], "source": "t"}
    )
    state.update(three)
    snap = state.snapshot().to_pandas()
    assert snap["price"].tolist() == [3.2] and snap["prev_close"].tolist() == [2.2]
    assert snap[["rsi", "sma_50", "macd"]].isna().all().all()
    state.update(three.iloc[:0])
    assert len(state.snapshot()) == 1


def test_bar_window_keeps_the_last_bars_in_order(session_bars):
    from mintel.analytics.engine import BarWindow

    u, bars = session_bars
    w = BarWindow(30, ("open", "close", "volume"))
    for _, minute in bars.groupby("ts"):
        w.push(minute.iloc[:-1] if minute["ts"].iloc[0].minute % 7 == 0 else minute)  # one symbol skips some bars
    f = w.frame()
    want = bars.sort_values(["symbol", "ts"])
    want = want[want["ts"].isin(sorted(bars["ts"].unique())[-30:])]
    got = f[f["close"].notna()]
    assert list(got["symbol"].astype(str).unique()) == sorted(u["symbol"])
    merged = got.merge(want, on=["symbol", "ts"], suffixes=("", "_want"))
    assert len(merged) == len(got)
    np.testing.assert_array_equal(merged["close"], merged["close_want"])
    assert (f.groupby("symbol", observed=True)["ts"].apply(lambda s: s.is_monotonic_increasing)).all()
    # the skipped bars are NaN holes, not someone else's values
    skipped = len(want) - len(got)
    assert skipped == f["close"].isna().sum() > 0


def test_a_string_columns_values_are_remembered_only_while_the_column_is_equal():
    """``Values`` hands back the same object array while the cycle's column is equal (Arrow compare), a new
    one when a single symbol differs; ``Positions`` trusts that array by identity, and a writable array
    (which a caller could change in place) only by its contents."""
    from mintel.analytics.keys import Positions, Values

    names = pd.Index(np.array(["AAA", "BBB", "CCC", "DDD"], object), dtype=object)
    values, positions = Values(), Positions()
    a = pd.Series(["CCC", "AAA", "DDD"], dtype="str")
    first = values(a)
    assert list(first) == ["CCC", "AAA", "DDD"] and not first.flags.writeable
    again = values(pd.Series(["CCC", "AAA", "DDD"], dtype="str"))  # another frame, equal column
    assert again is first
    assert list(positions(names, again)) == [2, 0, 3]
    changed = values(pd.Series(["CCC", "BBB", "DDD"], dtype="str"))
    assert changed is not first and list(changed) == ["CCC", "BBB", "DDD"]
    assert list(positions(names, changed)) == [2, 1, 3]
    mine = np.array(["CCC", "BBB", "DDD"], object)
    assert list(positions(names, mine)) == [2, 1, 3]
    mine[1] = "AAA"  # changed in place: looked up again, not taken by identity
    assert list(positions(names, mine)) == [2, 0, 3]
    assert list(values(pd.Series(["x", None], dtype=object))) == ["x", None]  # not Arrow-backed: converted each time


def test_the_snapshot_keeps_each_symbols_source_and_nulls_where_values_are_missing(session_bars):
    """Sources change per symbol and cycle (a failover) and may be missing; NaN values are nulls in the table."""
    u, bars = session_bars
    minutes = [m for _, m in bars.groupby("ts")]
    state = LiveState(u, "1m")
    for m in minutes[:30]:
        state.update(m)
    first, second = minutes[30].copy(), minutes[31].copy()
    first["source"] = np.where(np.arange(len(first)) % 3 == 0, "yahoo", "sim")
    first.loc[first.index[1], "source"] = None
    state.update(first)
    second = second.iloc[: len(second) // 2].assign(source="twelvedata")  # half the symbols fail over
    state.update(second)
    snap = state.snapshot().to_pandas().set_index("symbol")
    want = first.set_index("symbol")["source"].astype(object)
    want.loc[second["symbol"]] = "twelvedata"
    assert snap["source"].astype(object).where(snap["source"].notna(), None).to_dict() == \
        want.where(want.notna(), None).reindex(snap.index).to_dict()
    table = state.snapshot()
    for c in ("rsi", "sma_50", "sma_200", "prev_close"):  # warm-up: NaN values are nulls, the rest equal
        col = table.column(c)
        values = snap[c].to_numpy(dtype=float)
        assert col.null_count == np.isnan(values).sum() > 0 or c == "rsi"
        np.testing.assert_array_equal(col.to_numpy(zero_copy_only=False), values)


def test_the_snapshots_validity_bitmaps_equal_numpys():
    from mintel.analytics import _table_kernel

    rng = np.random.default_rng(2)
    for n in (1, 7, 8, 9, 64, 5003):
        columns = tuple(np.where(rng.random(n) < p, np.nan, rng.normal(size=n)) for p in (0.0, 0.01, 0.5, 1.0))
        bits, whole = _table_kernel.validity(columns)
        valid = ~np.isnan(np.stack(columns))
        assert np.array_equal(bits, np.packbits(valid, axis=1, bitorder="little")), n
        assert np.array_equal(whole, valid.all(axis=1)), n
    matrix = rng.normal(size=(50, 6))
    sel = rng.permutation(50)[:31]
    assert np.array_equal(_table_kernel.gather_t(matrix, sel), matrix[sel].T)


def test_a_bar_older_than_its_symbols_latest_is_ignored_among_fresh_ones(session_bars):
    u, bars = session_bars
    minutes = [m.reset_index(drop=True) for _, m in bars.groupby("ts")]
    a_sym = minutes[0]["symbol"].iloc[0]
    state, ref = LiveState(u, "1m"), LiveState(u, "1m")
    for minute in minutes[:30]:
        state.apply(minute)
        ref.apply(minute)
    newer = minutes[31][minutes[31]["symbol"] == a_sym].reset_index(drop=True)
    state.apply(newer)  # one symbol has moved on a minute
    got = state.apply(minutes[30])  # one bar time, each symbol once: A's bar is stale
    want = ref.apply(minutes[30][minutes[30]["symbol"] != a_sym].reset_index(drop=True))
    stale = got.symbols == a_sym
    assert stale.sum() == 1
    for c in state.indicators.columns:
        assert np.isnan(got.columns[c][stale]).all(), c
        np.testing.assert_array_equal(got.columns[c][~stale], want.columns[c], err_msg=c)
