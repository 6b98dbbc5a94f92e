"""The real command line in a subprocess: output formats, exit codes and one-line errors."""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pytest

from mintel.cli import emit
from tests.conftest import make_bars, run_mintel


def one_line_error(proc, *fragments):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mintel: ")
    for f in fragments:
        assert f in err, err


def test_ingest_prints_one_line_per_cycle_and_fills_the_lake(tmp_path):
    lake = tmp_path / "lake"
    p = run_mintel("ingest", "--universe", "nifty50", "--cycles", "3", "--lake", lake)
    assert p.returncode == 0, p.stderr
    cycles = [line for line in p.stdout.splitlines() if line.startswith("cycle")]
    assert len(cycles) == 3 and all("symbols    50" in c and "rows     50" in c for c in cycles)
    stats = json.loads(run_mintel("lake", "stats", "--lake", lake, "--format", "json").stdout)
    bars = next(s for s in stats if s["table"] == "bars")
    assert bars["rows"] == 150
    snap = json.loads(run_mintel("snapshot", "--lake", lake, "--format", "json").stdout)
    assert len(snap) == 50 and {"symbol", "price", "change_pct", "sector"} <= set(snap[0])


def test_bars_json_csv_table_agree(tmp_path):
    from mintel.lake import Lake

    lake = Lake(tmp_path / "lake")
    lake.append("bars", make_bars(("AAA", "BBB"), periods=4))
    as_json = json.loads(run_mintel("bars", "AAA", "--lake", lake.root, "--format", "json").stdout)
    assert [r["symbol"] for r in as_json] == ["AAA"] * 4
    assert list(as_json[0]) == ["interval", "symbol", "ts", "open", "high", "low", "close", "volume", "source", "quality", "ingested_at"]
    as_csv = pd.read_csv(io.StringIO(run_mintel("bars", "AAA", "--lake", lake.root, "--format", "csv").stdout))
    assert as_csv["close"].tolist() == [r["close"] for r in as_json]  # both exact
    table = run_mintel("bars", "--tail", "1", "--lake", lake.root).stdout
    assert len(table.strip().splitlines()) == 3  # header + one row per symbol


def test_emit_json_is_one_array_of_records():
    buf = io.StringIO()
    emit(pd.DataFrame({"a": [1, 2], "ts": pd.to_datetime(["2026-11-23 03:45", "2026-11-23 03:46"], utc=True)}), "json", out=buf)
    records = json.loads(buf.getvalue())
    assert records == [{"a": 1, "ts": "2026-11-23T03:45:00Z"}, {"a": 2, "ts": "2026-11-23T03:46:00Z"}]


def test_import_and_universe_and_watchlist_commands(tmp_path):
    csv = tmp_path / "goog.csv"
    csv.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,100\n2024-01-03,10,9,11,10.5,100\n")
    p = run_mintel("import", csv, "--symbol", "GOOG", "--lake", tmp_path / "lake", "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)[0]
    assert (r["rows_written"], r["rows_quarantined"]) == (1, 1)
    unis = json.loads(run_mintel("universe", "list", "--format", "json").stdout)
    assert {"nifty50", "nifty500", "sp500", "us1500"} <= {u["name"] for u in unis}
    env = {"MINTEL_WATCHLISTS": str(tmp_path / "wl")}
    assert run_mintel("watchlist", "create", "desk", "TCS", "infy", env=env).returncode == 0
    assert run_mintel("watchlist", "add", "desk", "RELIANCE", env=env).returncode == 0
    shown = json.loads(run_mintel("watchlist", "show", "desk", "--format", "json", env=env).stdout)
    assert [s["symbol"] for s in shown] == ["TCS", "INFY", "RELIANCE"]


@pytest.mark.parametrize(
    "args,fragments",
    [
        (("ingest", "--universe", "nifty5000", "--cycles", "1"), ("nifty5000", "unknown universe")),
        (("import", "{tmp}/missing.csv", "--symbol", "X"), ("missing.csv: no such file",)),
        (("import", "{tmp}/bad.csv", "--symbol", "X"), ("bad.csv: column 'close' missing",)),
        (("bars", "--interval", "1x"), ("'1x': not an interval",)),
        (("bars", "--interval", "1m", "--start", "tomorrowish"), ("start 'tomorrowish': not a date",)),
        (("ingest", "--cycles", "1", "--lake", "{tmp}/file/lake"), ("file/lake", "not writable")),
        (("ingest", "--provider", "nosuch", "--cycles", "1"), ("nosuch",)),
        (("watchlist", "create", "bad name!"), ("bad name!",)),
        (("universe", "show", "{tmp}/nope.csv"), ("nope.csv",)),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(tmp_path, args, fragments):
    (tmp_path / "bad.csv").write_text("Date,Open,High,Low\n2024-01-02,1,2,0.5\n")
    (tmp_path / "file").write_text("a file where a directory should be")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--lake" not in args:
        args += ["--lake", str(tmp_path / "lake")]
    p = run_mintel(*args, env={"MINTEL_WATCHLISTS": str(tmp_path / "wl")})
    one_line_error(p, *fragments)


def test_analysis_commands_on_an_ingested_lake(tmp_path):
    lake = tmp_path / "lake"
    assert run_mintel("ingest", "--universe", "nifty50", "--cycles", "90", "--lake", lake).returncode == 0
    scan = json.loads(run_mintel("scan", "--interval", "1m", "--lake", lake, "--format", "json", "--filter", "rsi<50").stdout)
    assert scan and all(r["rsi"] < 50 for r in scan)
    assert [r["score"] for r in scan] == sorted((r["score"] for r in scan), reverse=True)
    opp = json.loads(run_mintel("opportunities", "--lake", lake, "--format", "json").stdout)
    assert opp and {"symbol", "kind", "direction", "score", "factors"} <= set(opp[0])
    ind = json.loads(run_mintel("indicators", "TCS", "--interval", "1m", "--tail", "3", "--lake", lake, "--format", "json").stdout)
    assert len(ind) == 3 and ind[-1]["rsi"] is not None
    sent = json.loads(run_mintel("sentiment", "--interval", "1m", "--lake", lake, "--format", "json").stdout)[0]
    assert 0 <= sent["sentiment"] <= 100 and sent["symbols"] == 50
    bad = run_mintel("scan", "--lake", lake, "--filter", "__import__('os')")
    one_line_error(bad, "__import__")


def test_backfill_command_is_resumable(tmp_path):
    # Up to a session a week ago: the simulator's daily history ends before its clock's first session (the
    # last one closed), which on a weekend or a Monday morning is a session a real provider has published.
    from mintel import calendar

    end = calendar.previous_session("NSE", pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=7))
    lake = tmp_path / "lake"
    args = ("backfill", "--provider", "sim", "--interval", "1d", "--start", "2026-06-01", "--end", f"{end:%Y-%m-%d}",
            "--universe", "nifty50", "--lake", lake, "--no-progress", "--format", "json")
    first = json.loads(run_mintel(*args).stdout)[0]
    assert first["symbols_done"] == 50 and first["rows_written"] > 50 * 100
    again = json.loads(run_mintel(*args).stdout)[0]
    assert again["symbols_skipped"] == 50 and again["rows_written"] == 0
    # no snapshot in a backfilled lake: names and sectors come from the bundled lists
    scan = json.loads(run_mintel("scan", "--lake", lake, "--format", "json").stdout)
    assert {r["symbol"]: r["sector"] for r in scan}["RELIANCE"] == "Oil Gas & Consumable Fuels"


def test_ingest_gives_arrow_the_system_allocator_unless_told_otherwise():
    import subprocess
    import sys

    code = "import pyarrow as pa; from mintel.cli import _long_running_memory_pool as f; f(); print(pa.default_memory_pool().backend_name)"
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    run = lambda e: subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True).stdout.strip()
    assert run(env) == "system"  # pyarrow's default (mimalloc) kept growing in long runs
    assert run({**env, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}) == "jemalloc"
