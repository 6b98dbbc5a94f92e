"""Volume analysis: z-scores, price-volume correlation, TA-Lib AD/ADOSC, spikes with their context."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from mintel.analytics import volume as vol
from mintel.analytics.indicators import compute_indicators
from mintel.analytics.momentum import Groups


def bars(lengths=(60, 45), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for j, n in enumerate(lengths):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = close * np.exp(rng.normal(0, 0.003, n))
        frames.append(pd.DataFrame({
            "symbol": f"S{j}", "ts": pd.date_range(end="2026-11-24", periods=n, freq="D", tz="UTC"),
            "open": open_, "high": np.maximum(open_, close) * 1.004, "low": np.minimum(open_, close) * 0.996,
            "close": close, "volume": rng.integers(1000, 5000, n).astype(float),
        }))
    return pd.concat(frames, ignore_index=True)


def test_volume_zscore_against_previous_window():
    b = bars()
    g = Groups.of(b["symbol"])
    z = vol.volume_zscore(b["volume"].to_numpy(), g, window=20)
    lv = np.log1p(b["volume"].to_numpy())
    i = 30  # within S0
    prev = lv[i - 20 : i]
    assert z[i] == pytest.approx((lv[i] - prev.mean()) / prev.std(ddof=1))
    assert np.isnan(z[:20]).all() and np.isnan(z[60:80]).all()  # warm-up of each symbol
    assert np.isfinite(z[80:]).all()


def test_volume_zscore_constant_volume_is_null():
    g = Groups.of(["A"] * 30)
    assert np.isnan(vol.volume_zscore(np.full(30, 500.0), g)).all()


def test_price_volume_correlation_matches_pandas_per_symbol():
    b = bars()
    g = Groups.of(b["symbol"])
    got = vol.price_volume_correlation(b["close"].to_numpy(), b["volume"].to_numpy(), g, window=10)
    for sym, part in b.groupby("symbol"):
        ret = part["close"].pct_change()
        dv = np.log1p(part["volume"]).diff()
        want = ret.rolling(10).corr(dv).to_numpy()
        np.testing.assert_allclose(got[part.index.to_numpy()], want, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_accumulation_distribution_is_talib_per_symbol():
    b = bars()
    g = Groups.of(b["symbol"])
    h, lo, c, v = (b[k].to_numpy() for k in ("high", "low", "close", "volume"))
    ad, osc = vol.accumulation_distribution(h, lo, c, v, g)
    for s, e in zip(g.starts, g.ends):
        np.testing.assert_allclose(ad[s:e], talib.AD(h[s:e], lo[s:e], c[s:e], v[s:e]))
        np.testing.assert_allclose(osc[s:e], talib.ADOSC(h[s:e], lo[s:e], c[s:e], v[s:e], 3, 10), equal_nan=True)


def test_volume_spike_has_its_price_context():
    b = bars(lengths=(40,))
    i = 35
    b.loc[i, "volume"] = 50_000.0
    b.loc[i, "close"] = b.loc[i - 1, "close"] * 1.03
    b.loc[i, "high"] = b.loc[i, "close"]
    e = compute_indicators(b, "1d")
    spikes = vol.volume_spikes(e)
    assert spikes["ts"].tolist() == [b.loc[i, "ts"]]
    row = spikes.iloc[0]
    assert row["direction"] == "long"
    assert row["return_pct"] == pytest.approx(3.0)
    assert row["close_location"] == pytest.approx(1.0)
    assert row["volume_ratio"] > 10 and row["volume_z"] > 3
    assert row["vs_sma_20_pct"] == pytest.approx((b.loc[i, "close"] / e.loc[i, "sma_20"] - 1) * 100)
    assert np.isnan(row["vs_vwap_pct"])  # daily bars have no VWAP
    unusual = vol.unusual_volume(e)
    assert b.loc[i, "ts"] in set(unusual["ts"])


def test_short_nan_and_empty_input_give_nulls():
    b = bars(lengths=(3, 30))
    b.loc[10, ["close", "volume"]] = np.nan
    e = compute_indicators(b, "1d")
    f = vol.volume_frame(e)
    assert len(f) == len(b)
    assert f.loc[:2, ["volume_z", "pv_corr", "adosc"]].isna().all().all()
    assert f.loc[10].isna().all()  # the NaN bar gets nulls and does not break the series after it
    assert np.isfinite(f.loc[11:, "ad"]).all() and np.isfinite(f.loc[32:, "volume_z"]).all()
    assert vol.volume_spikes(e.iloc[:0]).empty
    assert vol.volume_frame(e.iloc[:0]).empty


def test_any_row_order_gives_the_same_values():
    b = bars()
    e = compute_indicators(b, "1d")
    want = vol.volume_frame(e)
    shuffled = e.sample(frac=1.0, random_state=3)
    got = vol.volume_frame(shuffled)
    pd.testing.assert_frame_equal(got.sort_index(), want)
