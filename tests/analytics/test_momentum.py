"""Momentum primitives: per-symbol windows, crosses, breakouts, gaps, pivots, divergences, levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mintel.analytics import momentum as mo
from mintel.analytics.momentum import Groups


def groups(*lengths: int) -> Groups:
    return Groups.of(np.repeat([f"S{i}" for i in range(len(lengths))], lengths))


def test_groups_positions_and_empty():
    g = groups(3, 1, 2)
    assert g.starts.tolist() == [0, 3, 4] and g.ends.tolist() == [3, 4, 6]
    assert g.pos.tolist() == [0, 1, 2, 0, 0, 1]
    assert g.rest.tolist() == [2, 1, 0, 0, 1, 0]
    assert g.last.tolist() == [2, 3, 5]
    e = Groups.of([])
    assert e.n == 0 and len(e.pos) == 0


def test_shift_and_rolling_never_cross_symbols():
    g = groups(3, 3)
    a = np.arange(6, dtype=float)
    np.testing.assert_array_equal(g.shift(a, 1), [np.nan, 0, 1, np.nan, 3, 4])
    np.testing.assert_array_equal(g.shift(a, -1), [1, 2, np.nan, 4, 5, np.nan])
    np.testing.assert_array_equal(g.rolling(a, 2, "max"), [np.nan, 1, 2, np.nan, 4, 5])
    np.testing.assert_array_equal(g.window_sum(a, 3), [np.nan, np.nan, 3, np.nan, np.nan, 12])


def test_crosses():
    g = groups(5)
    a = np.array([1.0, 2, 3, 2, 1])
    b = np.full(5, 2.5)
    up, down = mo.crosses(a, b, g)
    assert up.tolist() == [False, False, True, False, False]
    assert down.tolist() == [False, False, False, True, False]


def test_breakouts_use_previous_bars_only():
    g = groups(6)
    high = np.array([10.0, 11, 12, 11, 10, 13])
    low = high - 1
    close = high - 0.5
    b = mo.breakouts(close, high, low, g, window=3)
    assert np.isnan(b["level_high"][:3]).all()
    assert b["level_high"].iloc[5] == 12.0  # max of bars 2..4
    assert b["breakout"].tolist() == [False] * 5 + [True]
    assert b["breakdown"].tolist() == [False] * 4 + [True, False]  # 9.5 under the low 10 of bars 1..3


def test_gaps_by_percent_and_by_atr():
    g = groups(3)
    open_ = np.array([100.0, 103.0, 101.0])
    close = np.array([100.0, 102.0, 101.5])
    atr = np.array([0.5, 0.5, 0.5])
    gp = mo.gaps(open_, close, atr, g, pct=2.0, atr_mult=1.0)
    assert gp["gap_pct"].iloc[1] == pytest.approx(3.0)
    assert gp["gap_up"].tolist() == [False, True, False]
    assert gp["gap_down"].tolist() == [False, False, True]  # -1.0 is 2 ATR of 0.5


def zigzag(cycles: int = 4, lo: float = 100.0, hi: float = 110.0, half: int = 5) -> np.ndarray:
    leg = np.linspace(lo, hi, half + 1)
    one = np.r_[leg[:-1], leg[::-1][:-1]]
    return np.r_[np.tile(one, cycles), lo]


def test_pivots_of_a_zigzag():
    c = zigzag()
    g = groups(len(c))
    hi, lo = mo.pivots(c + 0.3, c - 0.3, g, k=3)
    assert np.flatnonzero(hi).tolist() == [5, 15, 25, 35]
    assert np.flatnonzero(lo).tolist() == [10, 20, 30]  # bar 0 and 40 lack neighbours on one side


def test_rsi_divergence_pairs():
    g = groups(40)
    low = np.full(40, 50.0)
    low[[10, 25]] = [40.0, 38.0]  # lower low
    rsi = np.full(40, 45.0)
    rsi[[10, 25]] = [20.0, 30.0]  # higher RSI low
    bull, bear = mo.rsi_divergences(low + 2, low, rsi, g, k=3)
    assert bull.rows.tolist() == [28] and bull.pivot.tolist() == [25] and bull.previous.tolist() == [10]
    assert len(bear.rows) == 0
    rsi[25] = 15.0  # RSI confirms the low: no divergence
    bull, _ = mo.rsi_divergences(low + 2, low, rsi, g, k=3)
    assert len(bull.rows) == 0


def test_support_resistance_clusters_touches():
    c = zigzag(cycles=6)
    n = len(c)
    bars = pd.DataFrame({"symbol": "A", "ts": pd.date_range("2026-01-01", periods=n, tz="UTC"),
                         "high": c + 0.3, "low": c - 0.3, "close": c, "atr": np.full(n, 2.0)})
    lv = mo.support_resistance(bars, k=3, lookback=120)
    sup = lv[lv["kind"] == "support"]
    res = lv[lv["kind"] == "resistance"]
    assert len(sup) == 1 and len(res) == 1
    assert sup["level"].iloc[0] == pytest.approx(99.7) and sup["touches"].iloc[0] == 5
    assert res["level"].iloc[0] == pytest.approx(110.3) and res["touches"].iloc[0] == 6
    assert mo.support_resistance(bars.iloc[:0]).empty


def test_level_events_need_known_touches():
    c = zigzag(cycles=4)
    c = np.r_[c, 103.0, 96.0]  # back up, then a close through the 99.7 support
    n = len(c)
    g = groups(n)
    open_ = np.r_[c[0], c[:-1]]
    ev = mo.level_events(open_, np.maximum(open_, c) + 0.3, np.minimum(open_, c) - 0.3, c, np.full(n, 2.0), g)
    assert ev["support_break"].rows.tolist() == [n - 1]
    assert ev["support_break"].level[0] == pytest.approx(min(c[9:12]) - 0.3)
    assert ev["support_break"].touches[0] >= 2
    # a single touch is no level: the same break in the first cycle does not fire
    assert not (ev["support_break"].rows < 20).any()


def _strongest_level_one_level_at_a_time(levels, rows, test, tol, close, min_touches):
    """The rule of strongest_level written as a plain scan over each row's levels, most recent first."""
    best_t, best_l = np.zeros(len(rows), np.int64), np.full(len(rows), np.nan)
    for j in range(levels.shape[1]):
        lvl = levels[:, j]
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(test(lvl, rows))
            if not len(hit):
                continue
            at = rows[hit]
            t = (np.abs(levels[hit] - lvl[hit, None]) <= tol[at, None]).sum(axis=1)
        dist_new, dist_old = np.abs(close[at] - lvl[hit]), np.abs(close[at] - best_l[hit])
        better = (t >= min_touches) & ((t > best_t[hit]) | ((t == best_t[hit]) & ~(dist_old <= dist_new)))
        best_t[hit[better]], best_l[hit[better]] = t[better], lvl[hit][better]
    found = np.flatnonzero(best_t > 0)
    return rows[found], best_l[found], best_t[found]


def test_strongest_level_picks_most_touches_then_nearest_then_most_recent():
    rng = np.random.default_rng(3)
    n, count = 400, 8
    o, c = rng.uniform(95, 105, n), rng.uniform(95, 105, n)
    h, lo = np.maximum(o, c) + rng.uniform(0, 2, n), np.minimum(o, c) - rng.uniform(0, 2, n)
    tol = rng.uniform(0.2, 1.5, n)
    tol[::50] = np.nan
    floor, ceiling = np.minimum(o, c) - rng.uniform(-1, 2, n), np.maximum(o, c) + rng.uniform(-1, 2, n)
    rows = np.sort(rng.choice(n, 300, replace=False))
    levels = np.round(rng.uniform(94, 106, (len(rows), count)) * 2) / 2  # on a 0.5 grid: equal levels and distances
    levels[rng.random(levels.shape) < 0.2] = np.nan  # rows with fewer known pivots
    grid = rng.random(n) < 0.5  # prices, floors and ceilings on the levels' grid: every comparison's tie happens
    for a in (c, lo, h, floor, ceiling):
        a[grid] = np.round(a[grid] * 2) / 2
    found = 0
    tests = {  # each event's test of a level L at rows r, as numpy writes it
        "support_bounce": lambda L, r: (np.abs(lo[r] - L) <= tol[r]) & (c[r] > L) & (floor[r] > L),
        "support_break": lambda L, r: (c[r] < L) & (floor[r] >= L),
        "resistance_break": lambda L, r: (c[r] > L) & (ceiling[r] <= L),
        "resistance_reject": lambda L, r: (np.abs(h[r] - L) <= tol[r]) & (c[r] < L) & (ceiling[r] < L),
    }
    assert set(tests) == set(mo.level_tests(o, h, lo, c, tol, floor, ceiling)) == set(mo.LEVEL_EVENTS)
    for name, test in tests.items():
        for min_touches in (1, 2, 3):
            got = mo.strongest_level(name, levels, rows, h, lo, c, tol, floor, ceiling, min_touches)
            want = _strongest_level_one_level_at_a_time(levels, rows, test, tol, c, min_touches)
            np.testing.assert_array_equal(got.rows, want[0], err_msg=name)
            np.testing.assert_array_equal(got.level, want[1], err_msg=name)
            np.testing.assert_array_equal(got.touches, want[2], err_msg=name)
            found += len(got.rows)
    assert found > 100
