"""Batch indicators: equal to direct TA-Lib calls, warm-ups as declared, VWAP and volume ratio as defined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from mintel.analytics import indicators as ind
from mintel.analytics import intraday, keys
from mintel.analytics.indicators import INDICATOR_SPECS, SPECS, compute_indicators, output_columns
from mintel.errors import DataError
from mintel.schema import INDICATORS

PAYLOADS = Path(__file__).resolve().parents[1] / "providers" / "payloads"  # copies of ../shared/data/payloads
TALIB_COLUMNS = [c for c in INDICATORS if c not in ("vwap", "volume_ratio")] + ["sma_200"]


# --- data -----------------------------------------------------------------------------------------


def random_walk(n: int, rng: np.random.Generator, start: float = 100.0, vol: float = 0.02) -> dict[str, np.ndarray]:
    close = start * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = close * np.exp(rng.normal(0, vol / 3, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, vol / 2, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, vol / 2, n))
    volume = rng.integers(0, 1_000_000, n).astype(float)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def daily_frame(lengths, seed: int) -> pd.DataFrame:
    """One symbol per length, ending on the same day, sorted by (symbol, ts)."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2026-11-24", tz="UTC")
    frames = []
    for j, n in enumerate(lengths):
        ts = pd.date_range(end=end, periods=n, freq="D")
        frames.append(pd.DataFrame({"interval": "1d", "symbol": f"S{j:03d}", "ts": ts, **random_walk(n, rng)}))
    return pd.concat(frames, ignore_index=True)


def realistic_daily(n: int = 1250, seed: int = 7) -> dict[str, np.ndarray]:
    """An NSE-like daily series: 0.05 ticks, gaps, limit-locked (flat) days, volume spikes and zero volume,
    built on the last close of the Yahoo-shaped daily payload."""
    rng = np.random.default_rng(seed)
    start = yahoo("yahoo_chart_1d.json")["close"][-1]
    ret = rng.standard_t(3, n) * 0.012
    gaps = rng.random(n) < 0.03
    ret[gaps] += rng.normal(0, 0.05, gaps.sum())
    close = np.round(start * np.exp(np.cumsum(ret)) / 0.05) * 0.05
    open_ = np.round(np.r_[start, close[:-1]] * np.exp(rng.normal(0, 0.004, n)) / 0.05) * 0.05
    high = np.maximum(open_, close) + np.round(rng.exponential(0.006, n) * close / 0.05) * 0.05
    low = np.minimum(open_, close) - np.round(rng.exponential(0.006, n) * close / 0.05) * 0.05
    flat = np.zeros(n, bool)
    flat[300:330] = True  # a suspended stretch: nothing moves
    close[flat] = open_[flat] = high[flat] = low[flat] = close[299]
    volume = np.round(rng.lognormal(13, 0.5, n))
    volume[rng.random(n) < 0.02] *= 8
    volume[flat] = 0.0
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def yahoo(name: str) -> dict[str, np.ndarray]:
    """A Yahoo chart payload as arrays, bars with a null skipped."""
    result = json.loads((PAYLOADS / name).read_text())["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    keys = ("open", "high", "low", "close", "volume")
    rows = [i for i in range(len(result["timestamp"])) if all(quote[k][i] is not None for k in keys)]
    out = {k: np.array([quote[k][i] for i in rows], dtype=float) for k in keys}
    out["ts"] = pd.to_datetime(np.array(result["timestamp"])[rows], unit="s", utc=True)
    return out


def talib_reference(high, low, close, volume) -> dict[str, np.ndarray]:
    """Each TA-Lib indicator by a direct TA-Lib call, the way a user would write it."""
    upper, middle, lower = talib.BBANDS(close, 20, 2, 2, 0)
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    return {
        "rsi": talib.RSI(close, 14), "macd": macd, "macd_signal": signal, "macd_hist": hist,
        "bb_upper": upper, "bb_middle": middle, "bb_lower": lower, "sma_20": talib.SMA(close, 20),
        "sma_50": talib.SMA(close, 50), "ema_20": talib.EMA(close, 20), "atr": talib.ATR(high, low, close, 14),
        "obv": talib.OBV(close, volume), "sma_200": talib.SMA(close, 200),
    }


def assert_same(got, want, what: str, rtol: float = 1e-12) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN in other places")
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0, err_msg=what)


def check_against_talib(out: pd.DataFrame, bars: pd.DataFrame) -> None:
    for sym, rows in bars.groupby("symbol", sort=False).groups.items():
        b = bars.loc[rows]
        ref = talib_reference(*(b[c].to_numpy() for c in ("high", "low", "close", "volume")))
        for col, want in ref.items():
            if col not in out.columns:
                continue
            assert_same(out.loc[rows, col], want, f"{sym} {col} (n={len(b)})")


# --- declarations ---------------------------------------------------------------------------------


def test_declarations_cover_the_schema_columns_once():
    declared = [c for s in INDICATOR_SPECS if not s.extra for c in s.outputs]
    assert tuple(declared) == INDICATORS
    assert ind.EXTRA_OUTPUTS == ("sma_200",)
    assert output_columns() == INDICATORS
    assert output_columns(("sma_200",)) == INDICATORS + ("sma_200",)
    with pytest.raises(DataError, match="sma_100"):
        output_columns(("sma_100",))


def test_declared_warmups_are_talib_lookbacks():
    from talib import abstract

    params = {"RSI": {"timeperiod": 14}, "MACD": {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9},
              "BBANDS": {"timeperiod": 20}, "EMA": {"timeperiod": 20}, "ATR": {"timeperiod": 14}, "OBV": {}}
    for spec in INDICATOR_SPECS:
        if spec.talib is None:
            continue
        f = abstract.Function(spec.talib)
        f.parameters = params.get(spec.talib, {"timeperiod": spec.params.get("period", 0)})
        assert f.lookback == spec.warmup, spec.name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warmup_counts_equal_the_declaration(seed):
    bars = daily_frame([600], seed)
    out = compute_indicators(bars, "1d", extra=("sma_200",))
    for col in output_columns(("sma_200",)):
        spec = ind.SPEC_OF_OUTPUT[col]
        values = out[col].to_numpy()
        if not spec.daily:
            assert np.isnan(values).all(), col
            continue
        first = int(np.flatnonzero(~np.isnan(values))[0])
        assert first == spec.warmup, col
        assert not np.isnan(values[first:]).any(), col


def test_intraday_warmups_equal_the_declaration():
    bars = intraday_frame(["AAA"], sessions=2, seed=0, missing=0.0, idle=0.0)
    bars["volume"] += 1.0
    out = compute_indicators(bars, "1m")
    session = out["ts"].dt.tz_convert("Asia/Kolkata").dt.date
    first_day = (session == session.iloc[0]).to_numpy()
    assert SPECS["vwap"].warmup == 0 and not out["vwap"].isna().any()
    assert SPECS["volume_ratio"].warmup_sessions == 1
    assert out.loc[first_day, "volume_ratio"].isna().all()
    assert out.loc[~first_day, "volume_ratio"].notna().all()
    assert int(np.flatnonzero(out["rsi"].notna())[0]) == SPECS["rsi"].warmup


# --- batch equals TA-Lib ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_batch_equals_talib_on_random_walks(seed):
    rng = np.random.default_rng(100 + seed)
    lengths = [1, 2, 3, 13, 14, 15, 19, 20, 21, 26, 33, 34, 35, 49, 50, 51, 199, 200, 201, 600]
    lengths += list(rng.integers(1, 601, 12))
    bars = daily_frame(lengths, seed)
    out = compute_indicators(bars, "1d", extra=("sma_200",))
    assert len(out) == len(bars) and (out.index == bars.index).all()
    check_against_talib(out, bars)


def test_batch_equals_talib_on_a_realistic_series():
    data = realistic_daily()
    ts = pd.date_range(end="2026-11-24", periods=len(data["close"]), freq="B", tz="UTC")
    bars = pd.DataFrame({"symbol": "RELIANCE", "ts": ts, **data})
    out = compute_indicators(bars, "1d", extra=("sma_200",))
    check_against_talib(out, bars)
    # The suspension (bars 300-329): nothing moves, so Wilder's averages shrink together (RSI holds),
    # the deviation is 0 once the window is all flat, and the ratio has no volume to compare with.
    np.testing.assert_allclose(out["rsi"].iloc[301:330], out["rsi"].iloc[301], rtol=1e-12)
    assert (out["bb_upper"].iloc[319:330] == out["bb_middle"].iloc[319:330]).all()
    assert (out["volume_ratio"].iloc[300:320] == 0).all() and out["volume_ratio"].iloc[320:330].isna().all()


def test_batch_on_the_yahoo_payloads():
    daily = yahoo("yahoo_chart_1d.json")
    bars = pd.DataFrame({"symbol": "RELIANCE", **daily})
    out = compute_indicators(bars, "1d")
    check_against_talib(out, bars)  # 3 bars: everything but OBV is in warm-up
    assert out["obv"].notna().all() and out[[c for c in INDICATORS if c != "obv"]].isna().all().all()

    minute = yahoo("yahoo_chart_1m.json")  # 5 bars, one with nulls (skipped)
    bars = pd.DataFrame({"symbol": "INFY", **minute})
    out = compute_indicators(bars, "1m")
    tp = (bars.high + bars.low + bars.close) / 3
    assert_same(out["vwap"], (tp * bars.volume).cumsum() / bars.volume.cumsum(), "vwap")


def test_direct_talib_calls_and_the_python_wrapper_agree():
    rng = np.random.default_rng(9)
    bars = daily_frame([1, 5, 30, 250, 600], 9)
    cols = [c for c in output_columns(("sma_200",)) if c != "sma_20"]
    row = {c: i for i, c in enumerate(cols)}
    starts = np.flatnonzero(np.r_[True, bars.symbol.to_numpy()[1:] != bars.symbol.to_numpy()[:-1]])
    ends = np.r_[starts[1:], len(bars)]
    arrays = [np.ascontiguousarray(bars[c].to_numpy()) for c in ("high", "low", "close", "volume")]
    direct, wrapped = np.full((len(cols), len(bars)), rng.random()), np.full((len(cols), len(bars)), rng.random())
    assert ind._talib_c() is not None
    ind._talib_groups_direct(ind._talib_c(), direct, row, starts, ends, *arrays)
    ind._talib_groups_wrapped(wrapped, row, starts, ends, *arrays)
    vwap = row["vwap"]
    direct[vwap] = wrapped[vwap] = 0.0
    np.testing.assert_array_equal(direct, wrapped)


# --- VWAP and volume ratio -------------------------------------------------------------------------


def intraday_frame(symbols, sessions: int, seed: int, missing=0.1, per_session=375, idle=0.05) -> pd.DataFrame:
    """1-minute NSE bars (09:15 IST = 03:45 UTC) for a few sessions, with missing minutes."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2026-11-02", periods=sessions)
    opens = [pd.date_range(d + pd.Timedelta("03:45:00"), periods=per_session, freq="1min") for d in days]
    stamps = pd.DatetimeIndex(np.concatenate(opens), tz="UTC")
    frames = []
    for sym in symbols:
        ts = stamps[rng.random(len(stamps)) >= missing]
        data = random_walk(len(ts), rng, vol=0.002)
        data["volume"][rng.random(len(ts)) < idle] = 0.0
        frames.append(pd.DataFrame({"interval": "1m", "symbol": sym, "ts": ts, **data}))
    return pd.concat(frames, ignore_index=True)


def pandas_vwap(bars: pd.DataFrame, tz: str = "Asia/Kolkata") -> pd.Series:
    day = bars["ts"].dt.tz_convert(tz).dt.date
    pv = ((bars.high + bars.low + bars.close) / 3 * bars.volume).groupby([bars.symbol, day]).cumsum()
    v = bars.volume.groupby([bars.symbol, day]).cumsum()
    return (pv / v).where(v > 0)


def pandas_volume_ratio_intraday(bars: pd.DataFrame, tz: str = "Asia/Kolkata") -> pd.Series:
    local = bars["ts"].dt.tz_convert(tz)
    minute = local.dt.hour * 60 + local.dt.minute
    mean = bars.groupby([bars.symbol, minute])["volume"].transform(lambda s: s.shift(1).rolling(20, min_periods=1).mean())
    return (bars.volume / mean).where(mean > 0)


def test_vwap_and_intraday_volume_ratio_match_their_definitions():
    bars = intraday_frame(["AAA", "BBB", "CCC"], sessions=24, seed=4, per_session=60)
    bars.loc[[50, 900], "close"] = np.nan  # unusable bars: null and skipped
    out = compute_indicators(bars, "1m")
    usable = bars[["high", "low", "close", "volume"]].notna().all(axis=1)
    assert out.loc[~usable, list(INDICATORS)].isna().all().all()
    good = bars[usable]
    assert_same(out.loc[usable, "vwap"], pandas_vwap(good), "vwap")
    want = pandas_volume_ratio_intraday(good)
    assert_same(out.loc[usable, "volume_ratio"], want, "volume_ratio")
    assert want.notna().sum() > 0.8 * len(good) * 23 / 24  # the window and the history were exercised


def test_daily_volume_ratio_matches_its_definition():
    bars = daily_frame([5, 21, 300], 11)
    bars.loc[bars.index[40:45], "volume"] = 0.0
    out = compute_indicators(bars, "1d")
    mean = bars.groupby("symbol")["volume"].transform(lambda s: s.shift(1).rolling(20).mean())
    assert_same(out["volume_ratio"], (bars.volume / mean).where(mean > 0), "volume_ratio")
    assert out["vwap"].isna().all()


def test_vwap_sessions_from_a_key_or_another_time_zone():
    bars = intraday_frame(["AAA"], sessions=3, seed=5, missing=0.0, per_session=30)
    by_key = compute_indicators(bars.assign(sess=1), "1m", session="sess")  # one session for all bars
    tp = (bars.high + bars.low + bars.close) / 3
    assert_same(by_key["vwap"], (tp * bars.volume).cumsum() / bars.volume.cumsum(), "vwap by key")
    # In New York all three IST mornings (04:15-04:44 UTC) are still the night before, one day each.
    ny = compute_indicators(bars, "1m", tz="America/New_York")
    assert_same(ny["vwap"], pandas_vwap(bars, "America/New_York"), "vwap NY")


def test_local_time_across_a_daylight_saving_change():
    ts = pd.date_range("2026-03-08 05:00", "2026-03-08 08:00", freq="1min", tz="UTC")  # NY springs forward at 07:00
    got = keys.local_ns(keys.to_utc_ns(ts), "America/New_York")
    assert (got == ts.tz_convert("America/New_York").tz_localize(None).as_unit("ns").asi8).all()
    assert len(np.unique(got - keys.to_utc_ns(ts))) == 2


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kathmandu",
                                "UTC", "+05:30"])
def test_one_timestamps_session_and_minute_equal_the_arrays(tz):
    """The live path's one-value conversion (zoneinfo's offset) equals the array one (pandas), 1900-2100 and
    every minute of the days the clocks change."""
    rng = np.random.default_rng(1)
    ts = rng.integers(pd.Timestamp("1900-01-01", tz="UTC").value, pd.Timestamp("2100-01-01", tz="UTC").value, 3000)
    for day in ("2026-03-08", "2026-11-01", "2026-03-29", "2026-10-25", "2026-04-05", "2026-10-04"):
        ts = np.r_[ts, pd.Timestamp(day, tz="UTC").value + np.arange(-1440, 2880) * keys.NS_PER_MINUTE + 17]
    day, minute = keys.session_and_minute(ts, tz)
    keys.session_and_minute_of.cache_clear()
    assert [keys.session_and_minute_of(int(t), tz) for t in ts] == list(zip(day.tolist(), minute.tolist()))


# --- bad input --------------------------------------------------------------------------------------


def test_empty_frame_gets_the_columns():
    bars = daily_frame([3], 0).iloc[:0]
    out = compute_indicators(bars, "1d", extra=("sma_200",))
    assert list(out.columns) == list(bars.columns) + list(output_columns(("sma_200",)))
    assert len(out) == 0 and all(out[c].dtype == np.float64 for c in INDICATORS)


def test_nan_and_infinite_bars_are_null_and_skipped():
    bars = daily_frame([300, 300], 12)
    bars.loc[[10, 150, 151], "close"] = np.nan
    bars.loc[420, "high"] = np.inf
    bars.loc[421, "volume"] = np.nan
    out = compute_indicators(bars, "1d", extra=("sma_200",))
    bad = [10, 150, 151, 420, 421]
    assert out.loc[bad, list(output_columns(("sma_200",)))].isna().all().all()
    good = bars.drop(index=bad)
    check_against_talib(out.loc[good.index], good)  # the series continues as if those bars were absent


def test_gaps_short_symbols_and_all_nan_symbols_give_nulls_not_errors():
    bars = daily_frame([3, 40, 2], 13)
    bars = bars.drop(index=range(10, 25))  # a gap of 15 days
    bars.loc[bars.symbol == "S002", ["close", "high", "low"]] = np.nan
    bars = pd.concat([bars, bars.iloc[[0]].assign(symbol=None)], ignore_index=True)  # a bar without a symbol
    out = compute_indicators(bars, "1d")
    assert out.iloc[-1][list(INDICATORS)].isna().all()
    bars, out = bars.iloc[:-1], out.iloc[:-1]
    assert out.loc[bars.symbol == "S002", list(INDICATORS)].isna().all().all()
    assert out.loc[bars.symbol == "S000", "rsi"].isna().all()
    check_against_talib(out[bars.symbol != "S002"], bars[bars.symbol != "S002"])


@pytest.mark.parametrize("interval", ["1d", "1m"])
def test_a_frame_without_one_usable_bar_gives_nulls(interval):
    bars = intraday_frame(["AAA", "BBB"], sessions=2, seed=1, per_session=5).assign(close=np.nan)
    out = compute_indicators(bars, interval, extra=("sma_200",))
    assert out[list(output_columns(("sma_200",)))].isna().all().all() and len(out) == len(bars)


def test_unsorted_input_gives_the_same_rows():
    bars = daily_frame([50, 80, 10], 14)
    out = compute_indicators(bars, "1d")
    shuffled = bars.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(compute_indicators(shuffled, "1d").loc[bars.index], out)


def test_time_running_backwards_inside_one_symbol_is_sorted_too():
    # symbols already in order, so only the ts test within a symbol can tell the frame is unsorted
    bars = daily_frame([50, 80, 10], 14)
    out = compute_indicators(bars, "1d")
    s1 = bars.index[bars.symbol == "S001"]
    mixed = bars.loc[[*bars.index[bars.symbol == "S000"], *s1[::-1], *bars.index[bars.symbol == "S002"]]]
    pd.testing.assert_frame_equal(compute_indicators(mixed, "1d").loc[bars.index], out)
    swap = bars.index.to_numpy().copy()
    swap[[60, 61]] = swap[[61, 60]]  # one pair of neighbours out of order
    pd.testing.assert_frame_equal(compute_indicators(bars.loc[swap], "1d").loc[bars.index], out)


def test_a_bar_without_a_time_is_unusable_on_intraday_bars():
    bars = intraday_frame(["AAA", "BBB"], sessions=2, seed=4, per_session=60)
    bars["ts"] = bars["ts"].astype("datetime64[ns, UTC]")
    bad = bars.index[[5, 70]]
    with_nat = bars.copy()
    with_nat.loc[bad, "ts"] = pd.NaT
    out = compute_indicators(with_nat, "1m")
    assert out.loc[bad, list(INDICATORS)].isna().all().all()
    expected = compute_indicators(bars.drop(index=bad), "1m")
    pd.testing.assert_frame_equal(out.drop(index=bad)[list(INDICATORS)], expected[list(INDICATORS)])


def test_input_is_left_alone_and_existing_indicator_columns_are_replaced():
    bars = daily_frame([60], 15)
    before = bars.copy()
    out = compute_indicators(bars.assign(rsi=-1.0), "1d")
    pd.testing.assert_frame_equal(bars, before)
    assert list(out.columns) == list(bars.columns) + list(INDICATORS)
    assert (out["rsi"].dropna() >= 0).all()


def test_bad_arguments_raise_data_errors():
    bars = daily_frame([10], 16)
    with pytest.raises(DataError, match="'close'"):
        compute_indicators(bars.drop(columns=["close"]), "1d")
    with pytest.raises(DataError, match="interval"):
        compute_indicators(bars, "fortnightly")
    with pytest.raises(DataError, match="'ts'"):
        compute_indicators(bars.drop(columns=["ts"]), "5m")
    assert compute_indicators(bars.drop(columns=["ts"]), "1d")["obv"].notna().all()  # daily: row order suffices
    assert keys.is_intraday("1m") and keys.is_intraday("1h") and not keys.is_intraday("1d") and not keys.is_intraday("1wk")


@pytest.mark.parametrize("case", ["clean", "one_session", "unusable_bar", "missing_minute", "dst_change", "night_session"])
def test_session_grid_path_equals_the_general_path(case, monkeypatch):
    """A clean universe (same sessions and minutes for every symbol) takes reshaped VWAP / volume ratio;
    anything else must fall back, and both give the same values bit for bit."""
    tz = "Asia/Kolkata"
    bars = intraday_frame(["AAA", "BBB", "CCC"], sessions=1 if case == "one_session" else 23, seed=8, missing=0.0,
                          per_session=45)
    if case == "unusable_bar":  # dropped from every indicator: no longer a grid
        bars.loc[100, "volume"] = np.nan
    elif case == "missing_minute":
        bars = bars.drop(index=200).reset_index(drop=True)
    elif case == "dst_change":  # 2026-11-01 New York falls back: the minute of the day moves for later sessions
        tz = "America/New_York"
        bars["ts"] = bars["ts"] - pd.Timedelta(days=3) + pd.Timedelta(hours=10, minutes=45)  # 14:30 UTC
    elif case == "night_session":  # 23:50-00:34 local: one run of bars spans two calendar days
        bars["ts"] = bars["ts"] + pd.Timedelta(hours=14, minutes=35)
    grid = intraday.session_grid
    calls = []
    monkeypatch.setattr(ind, "session_grid", lambda *a: calls.append(grid(*a)) or calls[-1])
    fast = compute_indicators(bars, "1m", tz)
    monkeypatch.setattr(ind, "session_grid", lambda *a: None)
    general = compute_indicators(bars, "1m", tz)
    pd.testing.assert_frame_equal(fast, general, check_exact=True)
    assert (calls[0] is not None) == (case in ("clean", "one_session"))
