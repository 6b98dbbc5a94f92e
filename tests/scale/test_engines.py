"""The Dask engine computes what the local one does: the same scan rows and values, the same scorecard,
on a 2-worker LocalCluster (processes) reading the lake on its workers."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mintel.analytics.scan import analyze, scan
from mintel.cli import main
from mintel.engine import DaskEngine, LocalEngine, get_engine, symbol_groups
from mintel.errors import ConfigError, DataError
from mintel.lab import SignalLab, scorecard

NOW = pd.Timestamp("2026-12-01", tz="UTC")
LAB_START = "2025-09-01"
LAB_DETECTORS = "breakout,volume_spike,rsi_oversold,gap_down,golden_cross"


def test_import_does_not_load_dask():
    code = ("import sys, mintel, mintel.engine, mintel.lab, mintel.analytics.scan, mintel.cli; "
            "mintel.cli.build_parser(); print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("interval", ["1d", "1m"])
def test_scan_is_the_same_on_dask(scale_lake, dask_engine, interval):
    local = scan(scale_lake, interval, now=NOW)
    dask = scan(scale_lake, interval, now=NOW, engine=dask_engine)
    assert_frame_equal(dask, local, check_exact=True)
    assert len(local) == (52 if interval == "1d" else 50)  # every symbol, the stopped and the young one too
    stats = dask_engine.stats
    assert stats.tasks >= 4  # at least two per worker thread
    assert sum(stats.rows) == len(scale_lake.read_bars(None, interval=interval, start=_window_start(scale_lake, interval)))


def _window_start(lake, interval):
    from mintel.analytics.scan import DEFAULT_LOOKBACK

    last = lake.read_bars(None, interval=interval)["ts"].max()
    return last - DEFAULT_LOOKBACK["daily" if interval == "1d" else "intraday"]


def test_scan_options_and_standing_signals_are_the_same(scale_lake, dask_engine):
    kw = dict(filters=["rsi>40"], sort="-change_pct", top=7, universe="nifty50", now=NOW, lookback="200D")
    assert_frame_equal(scan(scale_lake, "1d", engine=dask_engine, **kw), scan(scale_lake, "1d", **kw), check_exact=True)
    for interval in ("1d", "1m"):
        (f1, s1), (f2, s2) = analyze(scale_lake, interval, now=NOW), analyze(scale_lake, interval, now=NOW, engine=dask_engine)
        assert len(s1) > 0
        assert_frame_equal(s2, s1, check_exact=True)
    assert scan(scale_lake, "1h", now=NOW, engine=dask_engine).empty  # no bars of that interval


def test_local_engine_is_todays_path(scale_lake):
    assert_frame_equal(scan(scale_lake, "1d", now=NOW, engine=LocalEngine()), scan(scale_lake, "1d", now=NOW))


def test_scorecard_is_the_same_on_dask(scale_lake, dask_engine):
    """Detectors run on the workers; forward returns, universe averages and the vectorbt portfolios here."""
    local = scorecard(scale_lake, None, "1d", LAB_START, detectors=LAB_DETECTORS)
    dask = scorecard(scale_lake, None, "1d", LAB_START, detectors=LAB_DETECTORS, engine=dask_engine)
    assert_frame_equal(dask, local, check_exact=True)
    assert (local["signals"] > 0).all()


@pytest.mark.parametrize("interval, start", [("1d", LAB_START), ("1m", None)])
def test_lab_history_and_signals_are_the_same_on_dask(scale_lake, dask_engine, interval, start):
    a = SignalLab.from_lake(scale_lake, None, interval, start)
    b = SignalLab.from_lake(scale_lake, None, interval, start, engine=dask_engine)
    assert_frame_equal(b.bars, a.bars, check_exact=True)
    assert_frame_equal(b.signals(), a.signals(), check_exact=True)
    h = a.hold
    assert_frame_equal(b.outcomes(b.signals(), h), a.outcomes(a.signals(), h), check_exact=True)  # excess: universe means


def _json(argv, capsys) -> list[dict]:
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    for r in rows:
        r.pop("updated_at", None)  # the wall clock at the run
    return rows


def test_cli_scan_and_scorecard_print_the_same_json(scale_lake, cluster, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no mintel.toml around
    base = ["scan", "--lake", str(scale_lake.root), "--format", "json", "--top", "20"]
    local = _json(base, capsys)
    assert len(local) == 20
    assert _json(base + ["--engine", "dask", "--scheduler", cluster.scheduler_address], capsys) == local
    monkeypatch.setenv("MINTEL_DASK_SCHEDULER", cluster.scheduler_address)
    assert _json(base + ["--interval", "1m", "--engine", "dask"], capsys) == _json(base + ["--interval", "1m"], capsys)
    lab = ["lab", "scorecard", "--lake", str(scale_lake.root), "--start", LAB_START, "--detector", "breakout,gap_up",
           "--format", "json"]
    assert _json(lab + ["--engine", "dask"], capsys) == _json(lab, capsys)


def test_a_bad_scheduler_address_is_one_clear_line(scale_lake, capsys):
    assert main(["scan", "--lake", str(scale_lake.root), "--scheduler", "nonsense://nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("mintel: dask scheduler nonsense://nowhere: cannot connect")
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="dask scheduler tcp://127.0.0.1:1: cannot connect"):
        DaskEngine("tcp://127.0.0.1:1", timeout_s=1).client
    assert time.perf_counter() - t < 10


def test_choosing_an_engine(monkeypatch):
    monkeypatch.delenv("MINTEL_DASK_SCHEDULER", raising=False)
    assert isinstance(get_engine(), LocalEngine) and isinstance(get_engine("local"), LocalEngine)
    assert get_engine(scheduler="tcp://h:8786").address == "tcp://h:8786"  # a scheduler means dask
    assert get_engine("dask").address is None  # a LocalCluster, started on first use
    monkeypatch.setenv("MINTEL_DASK_SCHEDULER", "tcp://env:8786")
    assert get_engine("dask").address == "tcp://env:8786"
    assert isinstance(get_engine(), LocalEngine)  # the variable alone does not change the default
    with pytest.raises(DataError, match="engine 'spark'"):
        get_engine("spark")
    with pytest.raises(DataError, match="scheduler tcp://h:1: only the dask engine"):
        get_engine("local", "tcp://h:1")


def test_symbol_groups_are_contiguous_balanced_and_complete():
    rows = pd.Series({f"S{i:03d}": (1000 if i < 10 else 10) for i in range(100)}).sample(frac=1, random_state=1)
    groups = symbol_groups(rows, target_rows=2000, min_groups=4)
    assert [s for g in groups for s in g] == sorted(rows.index)
    sizes = [int(rows[g].sum()) for g in groups]
    assert len(groups) >= 5 and max(sizes) <= 2 * 2000
    assert symbol_groups(rows.head(3), target_rows=1, min_groups=8) == [[s] for s in sorted(rows.head(3).index)]
    assert symbol_groups(pd.Series(dtype="int64"), 10) == []
    assert len(symbol_groups(rows, target_rows=2000, min_groups=4, multiple_of=4)) % 4 == 0
