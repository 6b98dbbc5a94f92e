"""Scoring: weights from config, scores explained by factors that sum to them, and the cooldown."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mintel.analytics.detectors import detect
from mintel.analytics.indicators import compute_indicators
from mintel.analytics.scoring import (FACTORS, Cooldown, ScoreWeights, dedupe, factor_points, factor_values, panel_factors,
                                      score_symbols)
from mintel.errors import DataError


def trend_bars(symbol: str, drift: float, n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(drift, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame({
        "interval": "1d", "symbol": symbol, "ts": pd.date_range(end="2026-11-24", periods=n, freq="D", tz="UTC"),
        "open": open_, "high": np.maximum(open_, close) * 1.003, "low": np.minimum(open_, close) * 0.997,
        "close": close, "volume": rng.integers(1000, 3000, n).astype(float),
    })


@pytest.fixture(scope="module")
def enriched() -> pd.DataFrame:
    bars = pd.concat([trend_bars("UP", 0.004), trend_bars("DOWN", -0.004, seed=1), trend_bars("TINY", 0.0, n=3, seed=2)],
                     ignore_index=True)
    return compute_indicators(bars, "1d", extra=("sma_200",))


def test_weights_defaults_overrides_and_errors():
    assert sum(ScoreWeights().normalized().values()) == pytest.approx(100)
    w = ScoreWeights.from_config({"volume": 30, "signals": "0"})
    assert w.volume == 30 and w.signals == 0 and w.trend == ScoreWeights().trend
    assert sum(w.normalized().values()) == pytest.approx(100)
    with pytest.raises(DataError, match="unknown factor 'mood'"):
        ScoreWeights.from_config({"mood": 1})
    with pytest.raises(DataError, match="trend=-1"):
        ScoreWeights.from_config({"trend": -1})
    with pytest.raises(DataError, match="not a number"):
        ScoreWeights.from_config({"trend": "lots"})
    with pytest.raises(DataError, match="all zero"):
        ScoreWeights.from_config(dict.fromkeys(FACTORS, 0)).normalized()


def test_scores_rank_trends_and_explain_themselves(enriched):
    s = score_symbols(enriched).set_index("symbol")
    assert s.loc["UP", "score"] > 60 and s.loc["UP", "direction"] == "long"
    assert s.loc["DOWN", "score"] < 40 and s.loc["DOWN", "direction"] == "short"
    for sym in ("UP", "DOWN"):
        parts = json.loads(s.loc[sym, "factors"])
        assert list(parts) == list(FACTORS)
        assert sum(parts.values()) == pytest.approx(s.loc[sym, "score"], abs=1e-6)


def test_too_little_history_gives_a_null_score(enriched):
    s = score_symbols(enriched).set_index("symbol")
    assert np.isnan(s.loc["TINY", "score"]) and pd.isna(s.loc["TINY", "direction"]) and pd.isna(s.loc["TINY", "factors"])
    assert score_symbols(enriched.iloc[:0]).empty


def test_weights_change_the_score(enriched):
    only_trend = score_symbols(enriched, weights={f: 0 for f in FACTORS if f != "trend"}).set_index("symbol")
    values = factor_values(enriched).set_index("symbol")
    assert only_trend.loc["UP", "score"] == pytest.approx(100 * values.loc["UP", "trend"], abs=0.01)


def test_signals_move_the_score(enriched):
    base = score_symbols(enriched).set_index("symbol")
    last = enriched.groupby("symbol")["ts"].max()
    signal = pd.DataFrame({"symbol": ["DOWN"], "ts": [last["DOWN"]], "kind": ["rsi_oversold"], "direction": ["long"],
                           "score": [90.0]})
    moved = score_symbols(enriched, signal).set_index("symbol")
    assert moved.loc["DOWN", "score"] > base.loc["DOWN", "score"]
    assert json.loads(moved.loc["DOWN", "factors"])["signals"] > json.loads(base.loc["DOWN", "factors"])["signals"]
    real = detect(enriched, last_only=True)
    assert len(real) and score_symbols(enriched, real)["score"].dropna().between(0, 100).all()


# --- cooldown --------------------------------------------------------------------------------------


def opp(ts, symbol="AAA", kind="breakout", direction="long") -> pd.DataFrame:
    ts = pd.to_datetime(list(ts), utc=True)
    return pd.DataFrame({"ts": ts, "symbol": symbol, "kind": kind, "direction": direction, "score": 50.0})


def test_cooldown_in_business_days():
    days = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-09", "2026-11-10"]
    new = opp(days)
    kept = dedupe(new, cooldown=3)
    assert kept["ts"].dt.strftime("%m-%d").tolist() == ["11-02", "11-05", "11-10"]
    recent = opp(["2026-10-30"])  # a Friday: blocks Mon and Tue (1 and 2 business days later)
    kept = dedupe(new, recent, cooldown=3)
    assert kept["ts"].dt.strftime("%m-%d").tolist() == ["11-04", "11-09"]


def test_cooldown_is_per_symbol_kind_and_direction():
    new = pd.concat([opp(["2026-11-02", "2026-11-03"]), opp(["2026-11-03"], kind="gap_up"),
                     opp(["2026-11-03"], symbol="BBB"), opp(["2026-11-03"], direction="short")], ignore_index=True)
    kept = dedupe(new, cooldown=5)
    assert len(kept) == 4 and kept.index.tolist() == [0, 2, 3, 4]


def test_cooldown_in_wall_time_and_intraday_bars():
    new = opp(["2026-11-24 03:45", "2026-11-24 03:50", "2026-11-24 04:20", "2026-11-24 04:14"])
    kept = dedupe(new, cooldown="30min", interval="1m")
    assert kept.index.tolist() == [0, 2]  # 04:14 is 29 minutes after 03:45; 04:20 is 35; order kept
    bars = dedupe(new, cooldown=6, interval="5m")  # 30 minutes of 5-minute bars
    assert bars.index.tolist() == [0, 2]


def test_cooldown_drops_same_bar_duplicates_and_handles_nothing():
    new = opp(["2026-11-02", "2026-11-02"])
    assert len(dedupe(new, cooldown=0)) == 1
    assert dedupe(new.iloc[:0], opp(["2026-11-02"])).empty
    assert len(dedupe(opp(["2026-11-03"]), opp(["2026-11-03"]).iloc[:0], cooldown=1)) == 1
    assert dedupe(opp(["2026-11-03"]), opp(["2026-11-03"]), cooldown=0).empty  # already announced on that bar
    with pytest.raises(DataError, match="cooldown"):
        dedupe(new, cooldown="soon")
    with pytest.raises(DataError, match="'kind' missing"):
        dedupe(new.drop(columns=["kind"]))


def test_cooldown_on_a_long_standing_condition_is_vectorized():
    days = pd.bdate_range("2021-01-01", periods=1250)
    new = pd.concat([opp(days, symbol=f"S{i}") for i in range(20)], ignore_index=True)
    kept = dedupe(new, cooldown=5)
    assert len(kept) == 20 * 250  # one announcement a week per symbol


def test_a_whole_history_of_signals_scores_like_the_last_bars(enriched):
    full, last = detect(enriched, explain=False), detect(enriched, last_only=True)
    pd.testing.assert_frame_equal(score_symbols(enriched, full), score_symbols(enriched, last))


@pytest.mark.parametrize("cooldown,interval", [(5, "1m"), (0, "1m"), ("7min", "1m"), (3, "1d")])
def test_the_streaming_cooldown_admits_what_dedupe_keeps(cooldown, interval):
    """Cooldown (the live engine's state) fed bar by bar, seeded with earlier announcements, keeps the
    rows dedupe keeps on the whole batch: random keys, symbols and kinds arriving late, repeated keys."""
    rng = np.random.default_rng(7)
    freq = "1min" if interval == "1m" else "B"
    times = pd.date_range("2026-11-02 03:45", periods=60, freq=freq, tz="UTC")
    if interval == "1d":
        times = times.normalize()
    symbols = np.array([f"S{i:02d}" for i in range(30)], dtype=object)
    kinds, sides = np.array(["breakout", "gap_up", "volume_spike"], dtype=object), np.array(["long", "short", "neutral"], dtype=object)
    rows = []
    for t in times:
        m = int(rng.integers(0, 40))
        hi = 10 + int((t - times[0]) / (times[-1] - times[0]) * 20)  # more symbols as time goes on
        rows.append(pd.DataFrame({"ts": t, "symbol": symbols[rng.integers(0, hi, m)],
                                  "kind": kinds[rng.integers(0, 3 if t > times[10] else 1, m)],
                                  "direction": sides[rng.integers(0, 3, m)]}))
    new = pd.concat(rows, ignore_index=True)
    recent = new.iloc[: len(new) // 5].sample(frac=0.5, random_state=1)  # announced before: seeds the state
    later = new.iloc[len(new) // 5:].reset_index(drop=True)
    expected = dedupe(later, recent, cooldown=cooldown, interval=interval)

    state = Cooldown(cooldown, interval)
    state.seed(recent)
    kept = []
    for t, rows_at in later.groupby("ts", sort=True):
        keep = state.admit(*(rows_at[c].to_numpy(dtype=object) for c in ("symbol", "kind", "direction")), t)
        kept += rows_at.index[keep].tolist()
    assert kept == expected.index.tolist()
    assert 0 < len(kept) < len(later)


class _Columns:
    """The part of the ``Panel`` interface ``panel_factors`` reads, over plain arrays."""

    def __init__(self, cols: dict, hi, lo, count):
        self.c, self.prev_close, self.ind, self._cols = cols["close"], cols["prev_close"], cols, cols
        self._range = hi, lo, count

    def lag(self, name, k):
        assert (name, k) == ("close", 20)
        return self._cols["close20"]

    def range_hilo(self, r, window):
        return tuple(a[r] for a in self._range)


def _numpy_factors(cols, r, hi, lo, count, signals):
    """The score's factors as numpy formulas (how they were computed before the compiled pass)."""
    c, ind = cols["close"][r], {k: v[r] for k, v in cols.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        def above(a, b):
            return np.where(np.isfinite(a) & np.isfinite(b), (a > b).astype(float), np.nan)

        def nanmean(parts):
            stack = np.vstack(parts)
            n = np.isfinite(stack).sum(axis=0)
            return np.where(n > 0, np.nansum(stack, axis=0) / n, np.nan)

        trend = nanmean([above(c, ind["sma_20"]), above(c, ind["sma_50"]), above(ind["sma_20"], ind["sma_50"]),
                         above(c, ind["sma_200"])])
        move = (c - ind["close20"]) / (ind["atr"] * np.sqrt(20.0))
        momentum = nanmean([0.5 + 0.5 * np.tanh(move), 0.5 + 0.5 * np.tanh(ind["macd_hist"] / (0.2 * ind["atr"]))])
        volume = 0.5 + 0.5 * np.sign(c - ind["prev_close"]) * np.tanh(np.maximum(ind["volume_ratio"] - 1.0, 0.0))
        pos = np.where(hi[r] > lo[r], (c - lo[r]) / (hi[r] - lo[r]), 0.5)
        breakout = np.where(count[r] >= 20, pos, np.nan)
        rsi = ind["rsi"]
        rsi_value = np.where(rsi <= 70, np.clip(0.5 + (rsi - 50.0) / 40.0, 0, 1), np.clip(1.0 - (rsi - 70.0) / 30.0, 0, 1))
    out = dict(zip(FACTORS, (trend, momentum, volume, breakout, rsi_value, signals)))
    return {f: np.where(np.isfinite(v), v, np.nan) for f, v in out.items()}


def test_the_compiled_factors_and_points_are_the_numpy_formulas():
    """Random columns with NaN, inf, zero ATR, flat ranges, ties and short histories: the factor values equal
    the numpy formulas, the points and scores (numpy's
    ``round`` and row sums over the same values)."""
    rng = np.random.default_rng(3)
    n = 20000
    close = rng.uniform(50, 150, n)
    cols = {"close": close, "prev_close": close * rng.choice([0.99, 1.0, 1.01], n),
            "close20": close * rng.uniform(0.8, 1.2, n), "atr": rng.choice([0.0, 0.5, 2.0, np.nan], n, p=[.05, .45, .45, .05]),
            "macd_hist": rng.normal(0, 1, n), "volume_ratio": rng.choice([0.5, 1.0, 2.5, np.inf, np.nan], n),
            "rsi": rng.choice([10.0, 30.0, 50.0, 70.0, 85.0, 100.0, np.nan], n) + rng.normal(0, 1, n) * (rng.random(n) < .5)}
    for c in ("sma_20", "sma_50", "sma_200"):
        cols[c] = np.where(rng.random(n) < 0.1, np.nan, close * rng.choice([0.95, 1.0, 1.05], n))
    for c in ("close", "close20", "macd_hist"):
        cols[c][rng.random(n) < 0.03] = np.nan
    hi = close * rng.choice([1.0, 1.2, np.nan], n)
    lo = np.where(rng.random(n) < 0.1, hi, close * 0.8)  # some flat ranges
    count = rng.integers(0, 300, n)
    empty = rng.random(n) < 0.03  # too little history: nothing known
    for v in cols.values():
        v[empty] = np.nan
    count[empty] = 0
    signals = np.where(rng.random(n) < 0.2, 0.5, rng.random(n))
    r = np.sort(rng.choice(n, n // 2, replace=False))
    got = panel_factors(_Columns(cols, hi, lo, count), r, signals[r])
    want = _numpy_factors(cols, r, hi, lo, count, signals[r])
    for f in FACTORS:
        np.testing.assert_array_equal(got[f], want[f], err_msg=f)
    weights = ScoreWeights(volume=17.0, signals=3.0).normalized()
    score, points, ok = factor_points(got, ScoreWeights(volume=17.0, signals=3.0))
    want_points = np.round(np.column_stack([weights[f] * np.where(np.isnan(got[f]), 0.5, got[f]) for f in FACTORS]), 2)
    known = np.sum([np.isfinite(got[f]) for f in FACTORS if f != "signals"], axis=0)
    np.testing.assert_array_equal(points, want_points)
    np.testing.assert_array_equal(ok, known >= 2)
    np.testing.assert_array_equal(score, np.where(known >= 2, np.round(want_points.sum(axis=1), 2), np.nan))
    assert 0 < ok.mean() < 1 and np.isnan(got["breakout"]).any() and (got["trend"] == 0.5).any()
