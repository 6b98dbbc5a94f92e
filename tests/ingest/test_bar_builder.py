"""Quote snapshots -> 1-minute bars, checked against a direct pandas resample of the same stream."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from mintel import schema
from mintel.errors import DataError
from mintel.ingest.bars import BarBuilder

T0 = pd.Timestamp("2026-11-02 03:45", tz="UTC")  # an NSE open


def quote_stream(n_symbols: int = 40, minutes: int = 30, seed: int = 0) -> pd.DataFrame:
    """Random quotes: 0-5 per symbol and minute at random seconds, random-walk prices, rising day volume."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_symbols):
        sym = f"S{k:03d}"
        per_minute = rng.integers(0, 6, minutes)
        offsets = np.concatenate([m * 60 + np.sort(rng.uniform(0, 60, c)) for m, c in enumerate(per_minute)])
        n = len(offsets)
        price = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
        volume = 5_000 + np.cumsum(rng.integers(0, 500, n)).astype(float)
        rows.append(pd.DataFrame({"symbol": sym, "ts": T0 + pd.to_timedelta(offsets, unit="s"), "price": price.round(2),
                                  "day_volume": volume, "source": "feed"}))
    return pd.concat(rows, ignore_index=True)


def resampled(quotes: pd.DataFrame) -> pd.DataFrame:
    """The reference: pandas resample per symbol; volume from the rise of the cumulative volume."""
    out = []
    for sym, q in quotes.sort_values("ts", kind="stable").groupby("symbol"):
        s = q.set_index("ts")
        ohlc = s["price"].resample("1min").ohlc().dropna()
        vmax = s["day_volume"].resample("1min").max().dropna()
        volume = vmax.diff()
        volume.iloc[0] = vmax.iloc[0] - s["day_volume"].resample("1min").min().dropna().iloc[0]  # joined mid-session
        out.append(ohlc.assign(volume=volume, symbol=sym).reset_index())
    return pd.concat(out, ignore_index=True).sort_values(["symbol", "ts"], ignore_index=True)


def feed(builder: BarBuilder, quotes: pd.DataFrame, every_s: int = 20, seed: int = 1) -> pd.DataFrame:
    """Deliver the stream in polls of ``every_s`` seconds, each poll's rows shuffled; then flush."""
    rng = np.random.default_rng(seed)
    poll = ((quotes["ts"] - T0).dt.total_seconds() // every_s).astype(int)
    done = []
    for _, batch in quotes.groupby(poll):
        done.append(builder.add(batch.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))))
    done.append(builder.flush())
    return pd.concat(done, ignore_index=True).sort_values(["symbol", "ts"], ignore_index=True)


def test_bars_match_a_pandas_resample_of_the_same_quotes():
    quotes = quote_stream()
    bars = feed(BarBuilder(), quotes)
    ref = resampled(quotes)
    assert list(bars.columns) == schema.BARS.names
    schema.conform("bars", bars)  # canonical types
    assert len(bars) == len(ref) and not bars.duplicated(["symbol", "ts"]).any()
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(bars[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    assert (bars["ts"] == ref["ts"]).all() and (bars["symbol"] == ref["symbol"]).all()
    assert (bars["interval"] == "1m").all() and (bars["source"] == "feed").all()
    assert schema.bar_problems(bars).isna().all()


def test_bars_complete_only_when_a_later_quote_arrives_and_forming_shows_the_rest():
    b = BarBuilder()
    q = pd.DataFrame({"symbol": ["A", "A", "B"], "ts": [T0 + pd.Timedelta(s, "s") for s in (5, 50, 10)],
                      "price": [10.0, 11.0, 20.0], "day_volume": [100.0, 160.0, 10.0]})
    assert b.add(q).empty
    forming = b.forming().set_index("symbol")
    assert forming.loc["A", ["open", "high", "low", "close", "volume"]].tolist() == [10, 11, 10, 11, 60]
    done = b.add(pd.DataFrame({"symbol": ["A"], "ts": [T0 + pd.Timedelta(61, "s")], "price": [12.0], "day_volume": [200.0]}))
    assert done["symbol"].tolist() == ["A"] and done["ts"].tolist() == [T0]
    assert b.forming()["symbol"].tolist() == ["A", "B"]
    # A clock (``now``) completes bars of symbols that went quiet.
    quiet = b.add(q.iloc[0:0], now=T0 + pd.Timedelta(minutes=2))
    assert quiet["symbol"].tolist() == ["A", "B"]
    assert quiet.set_index("symbol").loc["A", "volume"] == 40  # 200 - 160


def test_out_of_order_quotes_within_the_open_minute_give_the_same_bar():
    quotes = quote_stream(n_symbols=10, minutes=5, seed=3)
    ordered = feed(BarBuilder(), quotes, every_s=60)
    reversed_ = BarBuilder()
    done = [reversed_.add(batch.iloc[::-1]) for _, batch in quotes.groupby(quotes["ts"].dt.floor("1min"))]
    shuffled = pd.concat([*done, reversed_.flush()], ignore_index=True).sort_values(["symbol", "ts"], ignore_index=True)
    pd.testing.assert_frame_equal(ordered, shuffled)


def test_a_late_quote_for_an_emitted_bar_changes_nothing():
    b = BarBuilder()
    first = b.add(pd.DataFrame({"symbol": ["A", "A"], "ts": [T0 + pd.Timedelta(10, "s"), T0 + pd.Timedelta(70, "s")],
                                "price": [10.0, 10.5], "day_volume": [100.0, 120.0]}))
    assert first["ts"].tolist() == [T0]
    late = b.add(pd.DataFrame({"symbol": ["A"], "ts": [T0 + pd.Timedelta(30, "s")], "price": [99.0], "day_volume": [110.0]}))
    assert late.empty and b.late == 1
    forming = b.forming()
    assert forming["high"].tolist() == [10.5] and forming["ts"].tolist() == [T0 + pd.Timedelta(minutes=1)]


def test_lateness_keeps_a_bar_open_for_stragglers():
    b = BarBuilder(lateness_s=5)
    q = lambda s, p: pd.DataFrame({"symbol": ["A"], "ts": [T0 + pd.Timedelta(s, "s")], "price": [p], "day_volume": [float(s)]})
    assert b.add(q(10, 10.0)).empty and b.add(q(62, 10.2)).empty  # 2 s into the next minute: still open
    assert b.add(q(58, 9.0)).empty and b.late == 0  # a straggler for the first minute is taken
    done = b.add(q(66, 10.3))
    assert done["low"].tolist() == [9.0] and done["close"].tolist() == [9.0]


def test_volume_resets_at_a_new_session_and_never_goes_negative():
    b = BarBuilder()
    day1 = pd.DataFrame({"symbol": "A", "ts": [T0 + pd.Timedelta(m, "min") for m in range(3)],
                         "price": [10.0, 10.1, 10.2], "day_volume": [1_000.0, 1_500.0, 2_000.0]})
    day2_open = T0 + pd.Timedelta(days=1)
    day2 = pd.DataFrame({"symbol": "A", "ts": [day2_open + pd.Timedelta(m, "min") for m in range(3)],
                         "price": [10.3, 10.4, 10.5], "day_volume": [300.0, 700.0, 650.0]})
    bars = pd.concat([b.add(day1), b.add(day2), b.flush()], ignore_index=True)
    assert bars["volume"].tolist() == [0.0, 500.0, 500.0, 300.0, 400.0, 0.0]  # day 2 starts from 0; 650 < 700: 0
    assert b.corrections == 1 and (bars["volume"] >= 0).all()


def test_a_volume_correction_is_logged_and_the_running_maximum_kept(caplog):
    b = BarBuilder(mid_session_start=False)  # running since before the open: the first bar takes the day so far
    vol = [1_000.0, 1_100.0, 1_050.0, 1_200.0]
    q = pd.DataFrame({"symbol": "A", "ts": [T0 + pd.Timedelta(m, "min") for m in range(4)], "price": 10.0, "day_volume": vol})
    with caplog.at_level(logging.WARNING, logger="mintel.ingest.bars"):
        bars = pd.concat([b.add(q), b.flush()], ignore_index=True)
    assert bars["volume"].tolist() == [1_000.0, 100.0, 0.0, 100.0]
    assert bars["volume"].sum() == max(vol)
    assert "went down" in caplog.text and "A" in caplog.text


def test_bad_quotes_are_dropped_and_a_bad_interval_refused():
    b = BarBuilder()
    q = pd.DataFrame({"symbol": ["A", None, "B"], "ts": [T0, T0, pd.NaT], "price": [10.0, 11.0, 12.0], "day_volume": 1.0})
    b.add(q)
    assert b.dropped == 2 and b.forming()["symbol"].tolist() == ["A"]
    with pytest.raises(DataError, match="intraday"):
        BarBuilder("1d")
    assert BarBuilder("5m").add(quote_stream(3, 12)).groupby("symbol")["ts"].apply(lambda s: (s.dt.minute % 5 == 0).all()).all()


def test_thousands_of_symbols_in_one_batch():
    n = 3_000
    ts = [T0 + pd.Timedelta(s, "s") for s in (1, 30, 61)]
    q = pd.concat([pd.DataFrame({"symbol": [f"S{i:04d}" for i in range(n)], "ts": t, "price": 100.0 + k,
                                 "day_volume": 1_000.0 * (k + 1)}) for k, t in enumerate(ts)], ignore_index=True)
    bars = BarBuilder().add(q)
    assert len(bars) == n and (bars["open"] == 100).all() and (bars["close"] == 101).all() and (bars["volume"] == 1_000).all()
