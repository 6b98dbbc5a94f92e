"""The signal lab on constructed markets where the right answer is known."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mintel.errors import DataError
from mintel.lab import SignalLab, costs
from tests.lab.conftest import forward_open_return, random_walk

HORIZONS = (1, 5, 20)


def rows_to_signals(bars: pd.DataFrame, mask, direction="long", score=50.0) -> pd.DataFrame:
    picked = bars.loc[np.asarray(mask, bool)]
    return pd.DataFrame({"ts": picked["ts"], "symbol": picked["symbol"], "direction": direction, "score": score})


def test_import_does_not_load_vectorbt():
    code = "import sys, mintel, mintel.lab; print(sorted(m for m in ('vectorbt', 'numba') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("side", [1, -1])
def test_a_detector_that_sees_the_future_hits_every_time(side):
    bars = random_walk(30, 260, seed=2)

    def oracle(b: pd.DataFrame) -> pd.DataFrame:  # fires exactly before moves its way, at every horizon
        fwd = pd.concat([forward_open_return(b, h) for h in HORIZONS], axis=1)
        return rows_to_signals(b, (side * fwd > 0.005).all(axis=1), "long" if side > 0 else "short")

    lab = SignalLab(bars, fees=0.0005, slippage=0.0005)
    card = lab.scorecard({"oracle": oracle}).iloc[0]
    assert card["signals"] > 300
    for h in HORIZONS:
        assert card[f"hit_rate_{h}"] == 1.0
        assert card[f"avg_return_{h}"] > 0.005
    assert card["hit_rate"] == 1.0 and card["avg_excess_5"] > 0 and card["median_excess_5"] > 0
    assert card["trades"] > 0 and card["total_return"] > 0 and card["sharpe"] > 0
    assert card["direction"] == ("long" if side > 0 else "short")
    assert 0.4 < card["baseline_hit_rate"] < 0.6  # random entries on a driftless market: a coin


def test_a_random_detector_matches_the_baseline_within_noise():
    bars = random_walk(150, 400, seed=3)
    n = 5000

    def coin(b: pd.DataFrame) -> pd.DataFrame:
        rng = np.random.default_rng(99)
        mask = np.zeros(len(b), bool)
        mask[rng.choice(len(b), n, replace=False)] = True
        return rows_to_signals(b, mask, np.where(rng.random(len(b)) < 0.5, "long", "short")[mask])

    lab = SignalLab(bars, seed=7)
    card = lab.scorecard({"coin": coin}).iloc[0]
    r = lab.returns({"coin": coin}, h=5).dropna(subset=["return"])
    sig, base = r[r["sample"] == "signal"]["return"], r[r["sample"] == "baseline"]["return"]
    assert len(sig) > 0.9 * n and len(base) > 0.9 * n
    p = (card["hit_rate_5"] + card["baseline_hit_rate_5"]) / 2
    se_hit = math.sqrt(p * (1 - p) * (1 / len(sig) + 1 / len(base)))
    assert abs(card["hit_rate_5"] - card["baseline_hit_rate_5"]) <= 4 * se_hit
    se_mean = math.sqrt(sig.var() / len(sig) + base.var() / len(base))
    assert abs(card["avg_return_5"] - card["baseline_avg_return_5"]) <= 4 * se_mean
    assert card["avg_return_5"] == pytest.approx(sig.mean()) and card["baseline_avg_return_5"] == pytest.approx(base.mean())


def test_the_baseline_is_seeded_and_the_same_size():
    bars = random_walk(5, 100, seed=4)
    sig = SignalLab(bars).signals({"x": lambda b: rows_to_signals(b, np.arange(len(b)) % 7 == 0)})
    a, b, c = (SignalLab(bars, seed=s).baseline(sig, "x") for s in (1, 1, 2))
    assert len(a) == len(sig) and not a.duplicated(["symbol", "ts"]).any()
    pd.testing.assert_frame_equal(a, b)
    assert not a["row"].equals(c["row"])


@pytest.mark.parametrize("entry", ["next_open", "close"])
def test_figures_match_a_direct_pandas_computation(entry):
    bars = random_walk(3, 30, seed=5)
    picks = [("S000", 3, "long"), ("S001", 3, "short"), ("S002", 10, "long"), ("S000", 25, "short"), ("S001", 28, "long")]
    ts = sorted(bars["ts"].unique())
    wanted = pd.DataFrame([{"symbol": s, "ts": ts[i], "direction": d, "score": 10.0 * k} for k, (s, i, d) in enumerate(picks)])
    lab = SignalLab(bars.sample(frac=1, random_state=0), entry=entry)  # any row order
    sig = lab.signals({"hand": lambda b: wanted})
    got = lab.outcomes(sig)
    edge = lab.edge(sig)

    b = bars.sort_values(["symbol", "ts"]).reset_index(drop=True)
    side = wanted["direction"].map({"long": 1, "short": -1}).to_numpy()
    assert edge["signals"] == len(picks)
    for h in HORIZONS:
        if entry == "next_open":
            fwd = forward_open_return(b, h)
        else:
            fwd = b.groupby("symbol")["close"].shift(-h) / b["close"] - 1
        mkt = fwd.groupby(b["ts"]).transform("mean")
        at = b.assign(fwd=fwd, mkt=mkt).set_index(["symbol", "ts"]).loc[list(zip(wanted["symbol"], wanted["ts"]))]
        ret = side * at["fwd"].to_numpy()
        excess = side * (at["fwd"] - at["mkt"]).to_numpy()
        np.testing.assert_allclose(got[f"return_{h}"].to_numpy(), ret, equal_nan=True)
        np.testing.assert_allclose(got[f"excess_{h}"].to_numpy(), excess, equal_nan=True)
        known = ~np.isnan(ret)
        assert edge[f"hit_rate_{h}"] == pytest.approx((ret[known] > 0).mean())
        assert edge[f"avg_return_{h}"] == pytest.approx(ret[known].mean())
        assert edge[f"avg_excess_{h}"] == pytest.approx(excess[known].mean())
        assert edge[f"median_excess_{h}"] == pytest.approx(np.median(excess[known]))
    assert np.isnan(got["return_5"].iloc[-1]) and np.isnan(got["return_20"].iloc[3])  # past the history's end
    assert edge["hit_rate"] == edge["hit_rate_5"]


def tiny_market() -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=12, freq="B", tz="UTC")
    a = np.array([10, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], float)
    b = np.array([20, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10], float)
    frames = [pd.DataFrame({"symbol": s, "ts": ts, "open": o, "high": o + 1, "low": o - 1, "close": o + 0.5, "volume": 1.0})
              for s, o in (("A", a), ("B", b))]
    return pd.concat(frames, ignore_index=True)


def tiny_signals(bars: pd.DataFrame) -> pd.DataFrame:
    ts = sorted(bars["ts"].unique())
    return pd.DataFrame([
        {"symbol": "A", "ts": ts[1], "direction": "long"},   # enters at bar 2's open 11, exits at bar 5's 14
        {"symbol": "A", "ts": ts[2], "direction": "long"},   # a position is open: not taken
        {"symbol": "A", "ts": ts[5], "direction": "long"},   # enters at bar 6's 15 (after the exit bar), exits at 18
        {"symbol": "A", "ts": ts[9], "direction": "long"},   # its holding period runs past the history: not taken
        {"symbol": "B", "ts": ts[0], "direction": "short"},  # sells at bar 1's 20, buys back at bar 4's 17
    ])


def test_portfolio_trades_and_total_return_by_hand():
    bars = tiny_market()
    lab = SignalLab(bars, hold=3, fees=0.0, slippage=0.0)
    card = lab.scorecard({"hand": tiny_signals}).iloc[0]
    sleeve_a = 100 * (14 / 11) * (18 / 15)
    sleeve_b = 100 * (1 + (20 - 17) / 20)
    assert card["trades"] == 3
    assert card["total_return"] == pytest.approx((sleeve_a + sleeve_b) / 200 - 1)
    trades = lab.trades({"hand": tiny_signals})
    ts = sorted(bars["ts"].unique())
    assert trades[["symbol", "direction"]].values.tolist() == [["B", "Short"], ["A", "Long"], ["A", "Long"]]
    assert trades["entry_ts"].tolist() == [ts[1], ts[2], ts[6]] and trades["exit_ts"].tolist() == [ts[4], ts[5], ts[9]]
    assert trades["entry_price"].tolist() == [20, 11, 15] and trades["exit_price"].tolist() == [17, 14, 18]
    eq = lab.equity({"hand": tiny_signals}, baseline=False)["hand"]
    assert eq.iloc[-1] == pytest.approx(1 + card["total_return"])


def test_fees_and_slippage_by_hand():
    bars = tiny_market()
    f, s = 0.001, 0.002
    longs = lambda b: tiny_signals(b).query("symbol == 'A'")  # noqa: E731
    lab = SignalLab(bars, hold=3, fees=f, slippage=s)
    card = lab.scorecard({"longs": longs}).iloc[0]
    leg = lambda p_in, p_out: (p_out * (1 - s) * (1 - f)) / (p_in * (1 + s) * (1 + f))  # noqa: E731
    sleeve_a = 100 * leg(11, 14) * leg(15, 18)
    assert card["trades"] == 2
    assert card["total_return"] == pytest.approx((sleeve_a + 100) / 200 - 1)


def test_settings_give_the_costs():
    assert costs() == (0.0005, 0.0005)
    assert costs(SimpleNamespace(lab_fees=0.001, lab_slippage=0.0)) == (0.001, 0.0)
    assert costs(SimpleNamespace(lab_fees=0.001), fees=0.002) == (0.002, 0.0005)
    with pytest.raises(DataError):
        costs(fees=-1)


def test_the_sweep_broadcasts_the_same_portfolios():
    bars = random_walk(8, 120, seed=6)
    rng = np.random.default_rng(3)

    def scored(b: pd.DataFrame) -> pd.DataFrame:
        mask = rng.random(len(b)) < 0.08
        return rows_to_signals(b, mask, np.where(rng.random(mask.sum()) < 0.5, "long", "short"),
                               rng.uniform(0, 100, mask.sum()))

    lab = SignalLab(bars, fees=0.0005, slippage=0.0005)
    sig = lab.signals({"scored": scored})
    grid = lab.sweep({"scored": scored}, holds=(2, 5), min_scores=(0, 50), metric="total_return")
    assert grid.shape == (2, 2) and list(grid.index) == [2, 5] and list(grid.columns) == [0, 50]
    for h in (2, 5):
        for m in (0, 50):
            one = lab.performance(lab.portfolio(sig[sig["score"] >= m], h))
            assert grid.loc[h, m] == pytest.approx(one["total_return"])


def test_bad_inputs_are_named():
    bars = random_walk(2, 20)
    with pytest.raises(DataError, match="entry"):
        SignalLab(bars, entry="tomorrow")
    with pytest.raises(DataError, match="close"):
        SignalLab(bars.drop(columns="close"))
    lab = SignalLab(bars)
    with pytest.raises(DataError, match="nonsense"):
        lab.signals("nonsense")
    with pytest.raises(DataError, match="direction"):
        lab.signals({"bad": lambda b: b[["ts", "symbol"]]})


def test_explorer_waits_for_run_and_computes_when_asked(monkeypatch):
    """A scheduled (papermill) run must not compute inside the Output widget on load: it hung."""
    import mintel.ui.lab as ui_lab

    calls = []
    real = ui_lab.scorecard_html
    monkeypatch.setattr(ui_lab, "scorecard_html", lambda card: calls.append(len(card)) or real(card))
    lab = SignalLab(random_walk(3, 120, seed=3))
    ui_lab.explorer(lab, ["breakout"])
    assert calls == []
    ui_lab.explorer(lab, ["breakout"], run=True)
    assert len(calls) == 1
