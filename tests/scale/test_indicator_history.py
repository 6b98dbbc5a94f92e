"""The indicator history backfill: the rows it stores are the scan's indicators (and TA-Lib's), warmed
up before ``start``, the same on the local engine and on a 2-worker Dask LocalCluster, and a re-run
replaces them rather than adding any."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mintel import schema
from mintel.analytics.history import backfill_indicators
from mintel.analytics.scan import enrich
from mintel.cli import main
from mintel.errors import DataError
from mintel.lake import Lake
from tests.conftest import run_mintel

STORED = ["interval", "symbol", "ts", "close", *schema.INDICATOR_SET]


@pytest.fixture
def lake(scale_lake, tmp_path) -> Lake:
    """A copy of the scale lake to write indicators into (the session's lake stays as built)."""
    shutil.copytree(scale_lake.root, tmp_path / "lake")
    return Lake(tmp_path / "lake", durable=False)


def stored(lake: Lake, interval: str) -> pd.DataFrame:
    return lake.read("indicators", interval=interval).drop(columns=["computed_at"])


def expected(bars: pd.DataFrame, interval: str) -> pd.DataFrame:
    """What the scan computes on ``bars``, as the table stores it."""
    e = enrich(bars, interval, "Asia/Kolkata").assign(interval=interval)
    return e[STORED].reset_index(drop=True)


@pytest.mark.parametrize("interval", ["1d", "1m"])
def test_the_table_holds_the_scans_indicators(lake, interval):
    s = backfill_indicators(lake, interval)
    bars = lake.read_bars(None, interval=interval)
    assert (s.rows, s.symbols, s.engine) == (len(bars), bars["symbol"].nunique(), "local")
    assert (s.first, s.last) == (bars["ts"].min(), bars["ts"].max())
    got = stored(lake, interval)
    assert list(lake.read("indicators", interval=interval).columns) == schema.INDICATOR_HISTORY.names
    names = sorted(bars["symbol"].unique())
    # daily: too short to warm up, stopped early, and plain ones (the minute bars have only plain ones)
    few = [s for s in ("AAYOUNG", "ZZGONE") if s in names] + names[5:7]
    assert len(few) == (4 if interval == "1d" else 2)
    for sym in few:
        one = got[got["symbol"] == sym].reset_index(drop=True)
        assert_frame_equal(one, expected(lake.read_bars(sym, interval=interval), interval), check_exact=True)
    assert got["rsi"].notna().any() and got["vwap"].notna().any() == (interval == "1m")


def test_rsi_is_talibs(lake):
    import talib

    backfill_indicators(lake, "1d")
    sym = sorted(lake.read_bars(None, interval="1d")["symbol"].unique())[3]
    close = lake.read_bars(sym, interval="1d")["close"].to_numpy(dtype=np.float64)
    rsi = lake.read("indicators", interval="1d", symbols=sym)["rsi"].to_numpy()
    np.testing.assert_allclose(rsi, talib.RSI(close, timeperiod=14), rtol=0, atol=1e-9, equal_nan=True)
    assert np.isnan(rsi[:14]).all() and not np.isnan(rsi[14:]).any()


@pytest.mark.parametrize("interval, start, warmup", [("1d", "2025-09-01", 250), ("1m", "2026-10-27 05:00", 400)])
def test_values_at_start_are_warmed_up_on_the_bars_before_it(lake, interval, start, warmup):
    s = backfill_indicators(lake, interval, start=start)
    got = stored(lake, interval)
    start_ts = pd.Timestamp(start, tz="UTC")
    assert got["ts"].min() >= start_ts and s.first == got["ts"].min()  # nothing before start is written
    first = got.groupby("symbol").head(1)
    young = first["symbol"] == "AAYOUNG"  # 30 bars in all: never warm (daily); no minute bars
    assert first.loc[~young, "rsi"].notna().all() and first.loc[~young, "macd"].notna().all()
    if interval == "1d":
        assert first.loc[~young, "sma_200"].notna().all()
    else:  # the whole previous session is in the warm-up: the same-minute volume ratio has it
        assert first["volume_ratio"].notna().all()
    sym = sorted(got["symbol"].unique())[7]
    bars = lake.read_bars(sym, interval=interval)
    at = int((bars["ts"] < start_ts).sum())
    want = expected(bars.iloc[max(at - warmup, 0):], interval)
    assert_frame_equal(got[got["symbol"] == sym].reset_index(drop=True),
                       want[want["ts"] >= start_ts].reset_index(drop=True), check_exact=True)


def test_a_rerun_replaces_rows_and_compaction_keeps_them(lake):
    first = backfill_indicators(lake, "1d", start="2025-01-01")
    before = lake.read("indicators", interval="1d")
    again = backfill_indicators(lake, "1d", start="2025-01-01")
    after = lake.read("indicators", interval="1d")
    assert again.rows == first.rows == len(after) == len(before)
    assert (after["computed_at"] > before["computed_at"]).all()  # the newer write won
    assert_frame_equal(after.drop(columns="computed_at"), before.drop(columns="computed_at"), check_exact=True)
    assert sum(len(p.files()) for p in lake.partitions("indicators", "1d")) == first.files + again.files
    lake.compact("indicators", interval="1d")
    assert sum(len(p.files()) for p in lake.partitions("indicators", "1d")) == first.partitions
    assert_frame_equal(lake.read("indicators", interval="1d"), after, check_exact=True)
    assert lake.read("bars", interval="1d").shape == lake.read_bars(None, interval="1d").shape  # bars untouched


def test_a_universe_and_retention(lake):
    syms = sorted(lake.read_bars(None, interval="1d")["symbol"].unique())[:4] + ["NOSUCH"]
    s = backfill_indicators(lake, "1d", symbols=syms, start="2026-01-01")
    assert s.symbols == 4 and sorted(lake.read("indicators", interval="1d")["symbol"].unique()) == syms[:4]
    backfill_indicators(lake, "1m")
    now = pd.Timestamp("2027-06-01", tz="UTC")
    dropped = lake.retain(now=now)  # intraday indicators go with the intraday bars; daily ones stay
    assert {p.split("/")[0] for p in dropped} == {"bars", "indicators"}
    assert all("interval=1m" in p for p in dropped)
    assert lake.read("indicators", interval="1m").empty and len(lake.read("indicators", interval="1d")) == s.rows


def test_bad_input_names_it(lake):
    with pytest.raises(DataError, match="'1x': not an interval"):
        backfill_indicators(lake, "1x")
    with pytest.raises(DataError, match="start 2026-02-01 00:00:00\\+00:00 is after end 2026-01-01"):
        backfill_indicators(lake, "1d", start="2026-02-01", end="2026-01-01")
    with pytest.raises(DataError, match=r"^1h: no bars in "):
        backfill_indicators(lake, "1h")
    with pytest.raises(DataError, match="1d: no bars between 2030-01-01 00:00:00\\+00:00 and the last bar"):
        backfill_indicators(lake, "1d", start="2030-01-01")
    with pytest.raises(DataError, match="1d: no bars for NOSUCH in"):
        backfill_indicators(lake, "1d", symbols=["NOSUCH"])
    with pytest.raises(DataError, match="start 'soon': not a date"):
        backfill_indicators(lake, "1d", start="soon")
    with pytest.raises(DataError, match="warmup -1"):
        backfill_indicators(lake, "1d", warmup=-1)
    assert not lake.partitions("indicators")


@pytest.mark.parametrize("interval, start", [("1d", None), ("1d", "2025-09-01"), ("1m", "2026-10-27 05:00")])
def test_dask_writes_the_same_rows_and_values(scale_lake, dask_engine, tmp_path, interval, start):
    shutil.copytree(scale_lake.root, tmp_path / "a")
    shutil.copytree(scale_lake.root, tmp_path / "b")
    here, there = Lake(tmp_path / "a", durable=False), Lake(tmp_path / "b", durable=False)
    local = backfill_indicators(here, interval, start=start)
    dask = backfill_indicators(there, interval, start=start, engine=dask_engine)
    assert_frame_equal(stored(there, interval), stored(here, interval), check_exact=True)
    assert (dask.engine, dask.rows, dask.symbols, dask.partitions, dask.first, dask.last) == \
           ("dask", local.rows, local.symbols, local.partitions, local.first, local.last)
    stats = dask_engine.stats
    assert stats.tasks >= 4 and dask.files >= stats.tasks  # every task wrote its own files
    assert max(stats.result_bytes) < 4096  # only counts come back to the client, no rows


def test_cli(lake, tmp_path):
    r = run_mintel("indicators-backfill", "--lake", lake.root, "--start", "2026-01-01", "--universe", "nifty50",
                   "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert (row["interval"], row["engine"], row["symbols"]) == ("1d", "local", 50)
    assert row["rows"] == len(lake.read("indicators", interval="1d")) > 0 and row["first"].startswith("2026-01-01")
    for argv, message in [(["--interval", "1x"], "mintel: '1x': not an interval"),
                          (["--start", "2026-02-01", "--end", "2026-01-01"], "mintel: start 2026-02-01 00:00:00+00:00 is after end"),
                          (["--interval", "1h"], "mintel: 1h: no bars in ")]:
        r = run_mintel("indicators-backfill", "--lake", lake.root, *argv, cwd=tmp_path)
        err = r.stderr.strip()
        assert r.returncode == 2 and "\n" not in err and err.startswith(message), err


def test_cli_on_dask_prints_the_same_summary(lake, cluster, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no mintel.toml around
    argv = ["indicators-backfill", "--lake", str(lake.root), "--interval", "1m", "--format", "json"]
    runs = []
    for extra in ([], ["--scheduler", cluster.scheduler_address]):
        assert main(argv + extra) == 0
        (row,) = json.loads(capsys.readouterr().out)
        runs.append(row)
    local, dask = runs
    assert dask["engine"] == "dask" and local["engine"] == "local"
    for k in ("rows", "symbols", "partitions", "first", "last"):
        assert dask[k] == local[k]
    assert len(lake.read("indicators", interval="1m")) == local["rows"]  # the second run replaced the first's rows
