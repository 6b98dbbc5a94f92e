"""The live detectors' compiled pass (``_detect_kernel.live_detect`` through ``LivePanel.found``) against the
numpy detectors on the same ``LivePanel``: the same hits in the same order, bit for bit (rows, kinds,
directions, scores, confidences) and the same opportunity rows with their messages and factor JSON (each
factor's name and points: the kernel path makes both from its own numbers), cycle after cycle on simulated and random bars with holes, late symbols and forming bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mintel.analytics.detectors import DETECTORS, KINDS, DetectorParams, Found, opportunity_table
from mintel.analytics.engine import LiveEngine
from mintel.analytics.live_panel import LivePanel
from mintel.providers.sim import SimClock, SimMarket

NOW = pd.Timestamp("2026-11-25 10:00", tz="UTC")


def numpy_found(p: LivePanel, kinds) -> Found:
    return Found.of([(DETECTORS[k], h) for k in kinds if len((h := DETECTORS[k].find(p)).rows)])


def compare(engine: LiveEngine, rng: np.random.Generator, seen: set) -> int:
    """Both paths on the engine's window, every symbol wanted and a random half; the hits compared."""
    window = engine.window
    names = window.names
    hits = 0
    for want in (np.ones(len(names), bool), rng.random(len(names)) < 0.5):
        p = LivePanel(window, engine.interval, engine.params, want=want, history=engine.history, dense=window.dense())
        assert p._lists is not None and p._logv is not None  # the kernel's case
        got, ref = p.found(engine.kinds), numpy_found(p, engine.kinds)
        for f in ("rows", "kind", "direction", "score", "confidence"):
            a, b = getattr(got, f), getattr(ref, f)
            assert a.dtype.kind == b.dtype.kind and np.array_equal(a, b), f
        assert [ref.parts[q][0].name for q in ref.part] == list(KINDS[ref.kind])
        assert got.text is not None and not got.parts  # the kernel's hits: text from its numbers
        keep = rng.random(len(got.rows)) < 0.7
        for k in (None, keep):  # messages, and the factor JSON: each factor's name and points (to the cent)
            table = opportunity_table(p, got, True, NOW, k)
            assert table.equals(opportunity_table(p, ref, True, NOW, k))
            assert table.column("message").null_count == 0
        seen.update(KINDS[got.kind])
        hits += len(got.rows)
    return hits


def test_every_detector_declares_the_factors_its_numpy_rule_gives():
    uni = pd.DataFrame({"symbol": [f"D{i:02d}" for i in range(20)], "sector": "Any"})
    daily = SimMarket(uni, seed=2, clock=SimClock("NSE", "2026-10-30")).daily_history(300)
    for bars, interval in ((random_walks(20, 300, seed=3), "1m"), (daily, "1d")):
        engine = LiveEngine.from_history(bars, None, interval)
        p = LivePanel(engine.window, interval, engine.params, want=np.ones(20, bool), history=engine.history,
                      dense=engine.window.dense())
        for name in engine.kinds:
            assert tuple(DETECTORS[name].find(p).factors) == DETECTORS[name].factors, name


def random_walks(n_sym: int, n_bars: int, seed: int, days: int = 3) -> pd.DataFrame:
    """Trends, jumps, gaps and volume bursts over ``days`` sessions of the same minutes (so that the volume
    ratio has history), so that every intraday detector fires."""
    rng = np.random.default_rng(seed)
    per_day = -(-n_bars // days)
    ts = pd.DatetimeIndex(np.concatenate([
        pd.date_range(pd.Timestamp("2026-11-24 03:45", tz="UTC") + pd.Timedelta(days=d), periods=per_day, freq="1min")
        for d in range(days)])[:n_bars])
    steps = rng.normal(0, 0.002, (n_sym, n_bars)) + np.where(rng.random((n_sym, n_bars)) < 0.02,
                                                             rng.normal(0, 0.03, (n_sym, n_bars)), 0)
    close = 100 * np.exp(np.cumsum(steps, axis=1) + 0.1 * np.sin(np.arange(n_bars) / 9.0))
    open_ = np.c_[close[:, :1], close[:, :-1]] * (1 + np.where(rng.random((n_sym, n_bars)) < 0.03,
                                                               rng.normal(0, 0.02, (n_sym, n_bars)), 0))
    spread = rng.uniform(0.0005, 0.004, (n_sym, n_bars)) * close
    volume = rng.lognormal(8, 0.4, (n_sym, n_bars)) * np.where(rng.random((n_sym, n_bars)) < 0.04, 6.0, 1.0)
    return pd.DataFrame({
        "symbol": np.repeat([f"R{i:02d}" for i in range(n_sym)], n_bars), "ts": np.tile(ts, n_sym),
        "open": open_.ravel(), "high": np.maximum(open_, close).ravel() + spread.ravel(),
        "low": np.minimum(open_, close).ravel() - spread.ravel(), "close": close.ravel(), "volume": volume.ravel(),
    })


def swings(names: list[str], ts, seed: int, k: int = 3, period: int = 10) -> pd.DataFrame:
    """Symbols that join at ``ts[0]`` and swing between the same levels every ``period`` bars, their first
    swing low on their ``k + 1``-th bar: the first swing point a short tail may count (its ``k`` bars before
    it are the tail's first), touched again and again."""
    rng = np.random.default_rng(seed)
    j = np.arange(len(ts))
    frames = []
    for i, name in enumerate(names):
        close = 100 * (1 - 0.02 * np.cos(2 * np.pi * (j - k) / period)) * (1 + rng.normal(0, 0.0005, len(ts)))
        open_ = np.r_[close[0] * 1.001, close[:-1]]
        frames.append(pd.DataFrame({"symbol": name, "ts": ts, "open": open_, "high": np.maximum(open_, close) * 1.0005,
                                    "low": np.minimum(open_, close) * 0.9995, "close": close,
                                    "volume": rng.lognormal(8, 0.3, len(ts))}))
    return pd.concat(frames, ignore_index=True)


def test_random_walks_every_intraday_detector_equals_the_numpy_path():
    bars = random_walks(50, 390, seed=11)
    ts = np.sort(bars["ts"].unique())
    late = bars["symbol"] >= "R40"  # ten symbols join when the live cycles start: their tails are short
    bars = pd.concat([bars[~late], swings(sorted(set(bars.loc[late, "symbol"])), ts[260:], seed=4)], ignore_index=True)
    engine = LiveEngine.from_history(bars[bars["ts"] < ts[260]], None, "1m")
    rng, seen, hits = np.random.default_rng(1), set(), 0
    for j, t in enumerate(ts[260:]):
        cycle = bars[bars["ts"] == t]
        cycle = cycle[rng.random(len(cycle)) >= 0.02]  # some symbols miss a minute: holes
        if j % 7 == 3:  # the forming bar first
            engine.update(cycle.assign(close=cycle["open"], high=cycle[["open", "high"]].max(axis=1),
                                       low=cycle[["open", "low"]].min(axis=1), volume=cycle["volume"] / 3), t)
            hits += compare(engine, rng, seen)
        engine.update(cycle, t)
        hits += compare(engine, rng, seen)
    assert seen == {k for k, d in DETECTORS.items() if not d.daily_only}, sorted(set(DETECTORS) - seen)
    assert hits > 1000


@pytest.mark.parametrize("seed", [1, 2])
def test_simulated_minutes_equal_the_numpy_path(seed):
    uni = pd.DataFrame({"symbol": [f"S{i:03d}" for i in range(60)], "sector": "Any"})
    m = SimMarket(uni, seed=seed, clock=SimClock("NSE", "2026-11-23"))
    m.clock.advance(375 + 150)
    history = m.bars()
    late = {"S058", "S059"}
    engine = LiveEngine.from_history(history[~history["symbol"].isin(late)], uni, "1m")
    rng, seen = np.random.default_rng(seed), set()
    for step in range(30):
        m.clock.advance(1)
        bars = m.bars(start=m.clock.now - pd.Timedelta("1min"))
        bars = bars[(bars["ts"] == bars["ts"].max()) & (rng.random(len(bars)) >= 0.03)]
        if step < 12:
            bars = bars[~bars["symbol"].isin(late)]
        if rng.random() < 0.2:  # an unusable bar
            bars = bars.copy()
            bars.loc[bars.index[0], "volume"] = np.nan
        engine.update(bars, m.clock.now)
        compare(engine, rng, seen)
    assert len(seen) >= 8


def test_daily_bars_with_the_52_week_detectors_equal_the_numpy_path():
    uni = pd.DataFrame({"symbol": [f"D{i:03d}" for i in range(40)], "sector": "Any"})
    m = SimMarket(uni, seed=5, clock=SimClock("NSE", "2026-10-30"))
    daily = m.daily_history(330).sort_values(["ts", "symbol"])
    days = sorted(daily["ts"].unique())
    engine = LiveEngine.from_history(daily[daily["ts"] < days[-30]], uni, "1d")
    rng, seen = np.random.default_rng(3), set()
    for day in days[-30:]:
        bars = daily[daily["ts"] == day]
        engine.update(bars[rng.random(len(bars)) >= 0.05], pd.Timestamp(day))
        compare(engine, rng, seen)
    assert {"high_52w", "low_52w"} & seen


def test_other_parameters_equal_the_numpy_path():
    """Thresholds and windows are the kernel's arguments, not its constants (a hold longer than a swing
    takes to confirm, so that the bounds of short tails are tested too)."""
    params = DetectorParams(breakout_window=10, spike_ratio=2.0, gap_pct=1.0, gap_atr=0.5, rsi_low=40, rsi_high=60,
                            pivot_k=2, level_lookback=60, level_count=5, level_tol_atr=0.8, min_touches=3,
                            level_hold=8, divergence_min_bars=3, divergence_max_bars=40, volume_window=15)
    bars = random_walks(40, 300, seed=8)
    ts = np.sort(bars["ts"].unique())
    late = bars["symbol"] >= "R30"  # late symbols: short tails
    bars = pd.concat([bars[~late], swings(sorted(set(bars.loc[late, "symbol"])), ts[180:], seed=5, k=2)], ignore_index=True)
    engine = LiveEngine.from_history(bars[bars["ts"] < ts[180]], None, "1m", params=params)
    rng, seen = np.random.default_rng(2), set()
    for t in ts[180:]:
        engine.update(bars[bars["ts"] == t], t)
        compare(engine, rng, seen)
    assert len(seen) >= 12


def test_a_template_and_the_kernels_message_columns_must_agree(monkeypatch):
    from mintel.analytics import _detect_kernel as dk
    from mintel.analytics import detectors

    engine = LiveEngine.from_history(random_walks(4, 200, seed=9), None, "1m")
    p = LivePanel(engine.window, "1m", engine.params, want=np.ones(4, bool), history=engine.history,
                  dense=engine.window.dense())
    assert len(detectors.kernel_programs(p)) == len(KINDS)
    swapped = list(dk.MESSAGE)
    swapped[list(KINDS).index("gap_up")] = (("atr", "pct", "open", "prev"), ("hold",))  # two numbers swapped
    monkeypatch.setattr(dk, "MESSAGE", tuple(swapped))
    monkeypatch.setattr(detectors, "_PROGRAMS", {})
    with pytest.raises(RuntimeError, match="gap_up's message reads"):
        detectors.kernel_programs(p)
