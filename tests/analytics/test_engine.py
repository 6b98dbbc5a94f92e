"""The live engine's fast path (detectors and scorer on the window's arrays, keyed cooldown) against the
general one it replaces: ``detect(window, last_only=True)``, ``score_symbols`` and ``dedupe`` over the
same window, cycle after cycle, on simulated and random bars with holes, late symbols and forming bars."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mintel.analytics.detectors import DetectorParams, detect
from mintel.analytics.engine import LiveEngine
from mintel.analytics.scoring import dedupe, score_symbols
from mintel.providers.sim import SimClock, SimMarket


def reference(engine: LiveEngine, bars: pd.DataFrame, now, recent: pd.DataFrame):
    """What the engine gave before the fast path: (standing, new, scores by symbol, signals by symbol)."""
    window = engine.window.frame()
    window["interval"] = engine.interval
    standing = detect(window, last_only=True, interval=engine.interval, params=engine.params, now=now, tz=engine.tz)
    standing = standing[standing["symbol"].isin(set(bars["symbol"]))]
    if len(standing) and engine.sectors is not None:
        standing = standing.assign(sector=standing["symbol"].map(engine.sectors))
    scores = score_symbols(window, standing, engine.weights, interval=engine.interval).set_index("symbol")["score"]
    signals = standing.groupby("symbol")["kind"].agg(lambda k: ",".join(sorted(set(k)))) if len(standing) else pd.Series(dtype=object)
    new = dedupe(standing, recent, 15, interval=engine.interval) if len(standing) else standing
    return standing.reset_index(drop=True), new.reset_index(drop=True), scores, signals


def check_cycle(engine: LiveEngine, bars: pd.DataFrame, recent: pd.DataFrame, now) -> pd.DataFrame:
    out = engine.update(bars, now)
    standing, new, scores, signals = reference(engine, bars, now, recent)
    assert_frame_equal(out.standing.reset_index(drop=True), standing, check_exact=False, rtol=1e-9)
    assert_frame_equal(out.opportunities, new, check_exact=False, rtol=1e-9)
    snap = out.snapshot.set_index("symbol")
    want = scores.reindex(snap.index)
    np.testing.assert_allclose(snap["score"].to_numpy(), want.to_numpy(dtype=float), rtol=1e-9, equal_nan=True)
    got_signals = snap["signals"].dropna().to_dict()
    assert got_signals == signals.to_dict()
    return pd.concat([recent, new], ignore_index=True) if len(new) else recent


def holes(bars: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """Drop a share of the bars (a symbol missing a minute)."""
    rng = np.random.default_rng(seed)
    return bars[rng.random(len(bars)) >= rate]


@pytest.mark.parametrize("seed", [1, 2])
def test_intraday_cycles_equal_the_general_path(seed):
    uni = pd.DataFrame({"symbol": [f"S{i:03d}" for i in range(40)], "sector": [f"Sec{i % 4}" for i in range(40)]})
    m = SimMarket(uni, seed=seed, clock=SimClock("NSE", "2026-11-23"))
    m.clock.advance(375 + 150)
    history = m.bars()
    late = {"S038", "S039"}  # symbols that join the window late
    history = holes(history[~history["symbol"].isin(late)], 0.01, seed)
    engine = LiveEngine.from_history(history, uni, "1m", cooldown=15)
    recent = pd.DataFrame(columns=["ts", "symbol", "kind", "direction"])
    rng = np.random.default_rng(seed)
    for step in range(45):
        m.clock.advance(1)
        now = m.clock.now
        bars = m.bars(start=now - pd.Timedelta("1min"))
        bars = holes(bars[bars["ts"] == bars["ts"].max()], 0.03, seed + step)
        if step < 20:
            bars = bars[~bars["symbol"].isin(late)]
        if step % 9 == 4:  # a forming bar first, then the finished one
            forming = bars.assign(close=bars["open"], high=bars[["open", "high"]].max(axis=1), volume=bars["volume"] / 2)
            forming["low"] = forming[["open", "low"]].min(axis=1)
            recent = check_cycle(engine, forming, recent, now)
        if rng.random() < 0.1:  # an invalid bar: unusable for the detectors
            bars = bars.copy()
            bars.loc[bars.index[0], "volume"] = np.nan
        recent = check_cycle(engine, bars, recent, now)
    assert len(recent) > 20  # the comparison saw announcements


def test_daily_cycles_with_52_week_detectors_equal_the_general_path():
    uni = pd.DataFrame({"symbol": [f"D{i:03d}" for i in range(30)], "sector": "Any"})
    m = SimMarket(uni, seed=5, clock=SimClock("NSE", "2026-10-30"))
    daily = m.daily_history(330).sort_values(["ts", "symbol"])
    days = sorted(daily["ts"].unique())
    engine = LiveEngine.from_history(daily[daily["ts"] < days[-25]], uni, "1d", cooldown=15)
    recent = pd.DataFrame(columns=["ts", "symbol", "kind", "direction"])
    for k, day in enumerate(days[-25:]):
        bars = holes(daily[daily["ts"] == day], 0.05, k)
        recent = check_cycle(engine, bars, recent, pd.Timestamp(day) + pd.Timedelta(hours=12))


def test_random_walks_with_jumps_equal_the_general_path():
    """Trends, jumps and volume bursts, so that channel, gap, level and divergence detectors fire."""
    rng = np.random.default_rng(11)
    n_sym, n_bars = 30, 260
    ts = pd.date_range("2026-11-24 03:45", periods=n_bars, freq="1min", tz="UTC")
    steps = rng.normal(0, 0.002, (n_sym, n_bars)) + np.where(rng.random((n_sym, n_bars)) < 0.02, rng.normal(0, 0.03, (n_sym, n_bars)), 0)
    close = 100 * np.exp(np.cumsum(steps, axis=1) + 0.1 * np.sin(np.arange(n_bars) / 9.0))
    open_ = np.c_[close[:, :1], close[:, :-1]] * (1 + np.where(rng.random((n_sym, n_bars)) < 0.02, rng.normal(0, 0.02, (n_sym, n_bars)), 0))
    spread = rng.uniform(0.0005, 0.004, (n_sym, n_bars)) * close
    volume = rng.lognormal(8, 0.4, (n_sym, n_bars)) * np.where(rng.random((n_sym, n_bars)) < 0.03, 6.0, 1.0)
    bars = pd.DataFrame({
        "interval": "1m", "symbol": np.repeat([f"R{i:02d}" for i in range(n_sym)], n_bars), "ts": np.tile(ts, n_sym),
        "open": open_.ravel(), "high": np.maximum(open_, close).ravel() + spread.ravel(),
        "low": np.minimum(open_, close).ravel() - spread.ravel(), "close": close.ravel(), "volume": volume.ravel(),
        "source": "t",
    })
    engine = LiveEngine.from_history(bars[bars["ts"] < ts[200]], None, "1m", cooldown=15)
    recent = pd.DataFrame(columns=["ts", "symbol", "kind", "direction"])
    for t in ts[200:]:
        recent = check_cycle(engine, holes(bars[bars["ts"] == t], 0.02, int(t.minute)), recent, t)
    assert len(recent) > 10


def test_window_pivot_flags_equal_the_panels_pivot_test():
    """The window keeps swing flags one slot at a time; the panel's swings from them equal the test run on
    its masked span every cycle, through holes, NaN highs, late symbols, partial cycles and forming bars."""
    from mintel.analytics.live_panel import LivePanel

    rng = np.random.default_rng(5)
    params = DetectorParams()
    engine = LiveEngine(None, "1m", params=params)
    window = engine.window
    assert window.pivot_k == params.pivot_k
    names = np.array([f"P{i:02d}" for i in range(25)], object)
    close = 100 + np.cumsum(rng.normal(0, 0.3, (len(names), 400)), axis=1)
    ts = pd.date_range("2026-11-24 03:45", periods=400, freq="1min", tz="UTC")
    for j, t in enumerate(ts):
        live = rng.random(len(names)) >= 0.03  # some symbols miss a minute
        live[20:] &= j >= 150  # late symbols
        sel = np.flatnonzero(live)
        c = close[sel, j] * (1 + rng.normal(0, 0.001, len(sel)))
        frame = pd.DataFrame({"symbol": names[sel], "ts": t, "open": c, "high": c + rng.uniform(0, 0.2, len(sel)),
                              "low": c - rng.uniform(0, 0.2, len(sel)), "close": c,
                              "volume": rng.uniform(-5, 1000, len(sel))})
        for col in window.columns[5:]:
            frame[col] = rng.normal(50, 10, len(sel))
        frame.loc[rng.random(len(sel)) < 0.01, "high"] = np.nan  # an unusable bar with a finite low
        halves = [frame] if j % 3 else [frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2:]]  # partial cycles
        for part in halves:
            window.push(part)
        if j % 4 == 0:  # the forming bar again, changed
            window.push(frame.assign(high=frame["high"] * 1.0005, low=frame["low"] * 0.9995, volume=frame["volume"] * 1.5))
        want = np.ones(len(window.names), bool)
        fast = LivePanel(window, "1m", params, want=want, history=engine.history, dense=window.dense())
        assert fast._piv is not None
        seq, price, listed, newest = window.pivot_lists()  # each symbol's latest swing points: the flags' newest
        data, _ = window.view()
        for side, flags in enumerate(window.pivots()):
            width = flags.shape[1]
            values = data[window.columns.index("high" if side == 0 else "low")]
            for i in range(len(window.names)):
                flagged = np.flatnonzero(flags[i])[::-1]  # view slots, newest first
                slots = seq[side, i, : listed[side, i]] - (newest - (width - 1))
                slots = slots[slots >= 0]  # the older ones have left the window
                np.testing.assert_array_equal(slots, flagged[: len(slots)])
                assert len(slots) >= min(window.pivot_keep - 1, len(flagged))
                np.testing.assert_array_equal(price[side, i, : len(slots)], values[i, slots])
        slow = LivePanel(window, "1m", params, want=want, history=engine.history, dense=window.dense())
        slow._piv = slow._logv = None  # the panel's own: swings, levels, divergences and volume z from the slots
        volume = window.view()[0][window.columns.index("volume")]  # the kept log volume is the volume's
        np.testing.assert_array_equal(window.log_volume(), np.log1p(np.clip(volume, 0, None)))
        np.testing.assert_array_equal(fast.volume_z, slow.volume_z)
        for a, b in zip(fast.swings, slow.swings):
            np.testing.assert_array_equal(a, b)
        for name in fast.levels:  # rows, levels and touches
            for f in fields(fast.levels[name]):
                np.testing.assert_array_equal(getattr(fast.levels[name], f.name), getattr(slow.levels[name], f.name))
        for a, b in zip(fast.divergences, slow.divergences):
            for f in fields(a):
                np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name))


def test_the_kept_tail_extrema_equal_a_reduce_over_the_window():
    """The scorer's range (highest high, lowest low of each symbol's last bars) kept from cycle to cycle by the
    window equals np.fmax/np.fmin over the masked slots, through holes, late symbols, forming bars and new
    extremes leaving the tail."""
    from mintel.analytics.live_panel import LivePanel

    rng = np.random.default_rng(9)
    engine = LiveEngine(None, "1m")
    window = engine.window
    names = np.array([f"E{i:02d}" for i in range(30)], object)
    close = 100 + np.cumsum(rng.normal(0, 0.4, (len(names), 420)), axis=1)
    close[:, 200:205] += 8  # a spike that later leaves every tail
    ts = pd.date_range("2026-11-24 03:45", periods=420, freq="1min", tz="UTC")
    checked = 0
    for j, t in enumerate(ts):
        live = rng.random(len(names)) >= 0.003  # a symbol misses a minute now and then: its run restarts
        live[25:] &= j >= 180  # late symbols
        sel = np.flatnonzero(live)
        c = close[sel, j]
        frame = pd.DataFrame({"symbol": names[sel], "ts": t, "open": c, "high": c + rng.uniform(0, 0.5, len(sel)),
                              "low": c - rng.uniform(0, 0.5, len(sel)), "close": c, "volume": 100.0})
        for col in window.columns[5:]:
            frame[col] = 1.0
        window.push(frame)
        if j % 5 == 0:  # the forming bar again, with a new high and low
            window.push(frame.assign(high=frame["high"] + 1.0, low=frame["low"] - 1.0))
        if j < 10 or j % 11 == 0:  # now and then a cycle without the question: two slots leave at once
            continue
        dense = window.dense()
        p = LivePanel(window, "1m", engine.params, want=np.ones(len(window.names), bool), history=engine.history,
                      dense=dense)
        r = np.flatnonzero(dense & (window.run > 0))
        for span in (252, 20) if j % 7 == 0 else (252,):  # the engine asks for one span; another now and then
            hi, lo, count = p.range_hilo(r, span)
            bars = np.minimum(p.run, min(span, DetectorParams().history_bars()))
            depth = min(span, p.width)
            want_hi = np.fmax.reduce(p.recent("high", depth, bars), axis=1)[r]
            want_lo = np.fmin.reduce(p.recent("low", depth, bars), axis=1)[r]
            assert np.array_equal(hi, want_hi) and np.array_equal(lo, want_lo) and np.array_equal(count, bars[r])
            checked += len(r)
    assert checked > 8_000
