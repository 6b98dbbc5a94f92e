"""The lab on a small simulator lake: the registry's detectors and `mintel lab`."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from mintel import lab as lab_module
from mintel.analytics.detectors import detect
from mintel.analytics.scan import enrich
from mintel.errors import DataError
from mintel.lab import SignalLab

START = "2025-06-02"
REQUIRED = ["detector", "signals", "hit_rate", "avg_return_1", "avg_return_5", "avg_return_20", "sharpe",
            "max_drawdown", "baseline_hit_rate", "baseline_avg_return_5"]


def test_registry_detectors_give_the_signals_detect_gives(lab_lake):
    lab = SignalLab.from_lake(lab_lake, None, "1d", start=START)
    assert lab.bars["ts"].min() < pd.Timestamp(START, tz="UTC")  # warm-up read before the window
    card = lab.scorecard("breakout,gap_up,volume_spike")
    assert list(card["detector"]) == ["breakout", "gap_up", "volume_spike"]
    assert set(REQUIRED) <= set(card.columns)
    found = detect(enrich(lab.bars, "1d"), ["breakout", "gap_up", "volume_spike"], explain=False)
    found = found[(found["ts"] >= pd.Timestamp(START, tz="UTC")) & (found["direction"] != "neutral")]
    assert card.set_index("detector")["signals"].to_dict() == found["kind"].value_counts().to_dict()
    assert (card["trades"] > 0).all() and (card["baseline_trades"] > 0).all()
    assert list(card["direction"]) == ["long", "long", "bar"]


def run_cli(argv, capsys) -> str:
    parser = argparse.ArgumentParser(prog="mintel")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_, data=True):  # as mintel.cli.build_parser's helper
        c = sub.add_parser(name, help=help_)
        c.set_defaults(func=func)
        c.add_argument("--lake")
        c.add_argument("--config")
        if data:
            c.add_argument("--format", choices=("table", "json", "csv"), default="table")
        return c

    lab_module.add_parser(sub, command)
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_cli_scorecard(lab_lake, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no mintel.toml around
    out = run_cli(["lab", "scorecard", "--lake", str(lab_lake.root), "--start", START, "--format", "json",
                   "--detector", "breakout", "--detector", "rsi_oversold,gap_down"], capsys)
    rows = json.loads(out)
    assert [r["detector"] for r in rows] == ["breakout", "rsi_oversold", "gap_down"]
    assert set(REQUIRED) <= set(rows[0])
    table = run_cli(["lab", "scorecard", "--lake", str(lab_lake.root), "--start", START, "--detector", "breakout"], capsys)
    assert "baseline_hit_rate" in table and "entry_price" in table  # one detector: its trades follow
    trades = run_cli(["lab", "trades", "--lake", str(lab_lake.root), "--start", START, "--detector", "breakout",
                      "--format", "csv", "--fees", "0", "--slippage", "0"], capsys)
    assert trades.splitlines()[0].startswith("detector,symbol,direction,entry_ts")
    assert len(trades.splitlines()) - 1 == rows[0]["trades"]


def test_cli_trades_needs_a_detector(lab_lake, capsys):
    with pytest.raises(DataError, match="--detector"):
        run_cli(["lab", "trades", "--lake", str(lab_lake.root)], capsys)
