"""Importing a user's history file: columns matched loosely, bad rows quarantined, errors named."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mintel.errors import DataError
from mintel.ingest.files import import_file

GOOD = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-03,10,11,9,10.5,10.5,100
2024-01-02,10,11,9,10.2,10.2,200
"""


def write(tmp_path, text, name="h.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_import_csv_sorts_and_stamps_daily_bars_at_utc_midnight(lake, tmp_path):
    r = import_file(lake, write(tmp_path, GOOD), symbol="goog", interval="1d")
    assert (r.rows_read, r.rows_written, r.rows_quarantined) == (2, 2, 0)
    bars = lake.read_bars("GOOG", "1d")
    assert bars["ts"].tolist() == [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")]
    assert bars["close"].tolist() == [10.2, 10.5]
    assert bars["source"].iloc[0] == "import:h.csv"


def test_columns_matched_case_insensitively_and_volume_optional(lake, tmp_path):
    text = "TIMESTAMP,OPEN,high,Low,CLOSE\n2026-11-23T09:15:00+05:30,5,6,4,5.5\n2026-11-23T09:16:00+05:30,5.5,6,5,5.8\n"
    r = import_file(lake, write(tmp_path, text), symbol="INFY", interval="1m")
    assert r.rows_written == 2
    bars = lake.read_bars("INFY", "1m")
    assert bars["ts"].iloc[0] == pd.Timestamp("2026-11-23 03:45", tz="UTC")
    assert (bars["volume"] == 0).all()


def test_naive_intraday_times_read_in_the_given_zone(lake, tmp_path):
    text = "datetime,open,high,low,close,volume\n2026-11-23 09:15:00,5,6,4,5.5,10\n"
    import_file(lake, write(tmp_path, text), symbol="TCS", interval="1m", tz="Asia/Kolkata")
    assert lake.read_bars("TCS", "1m")["ts"].iloc[0] == pd.Timestamp("2026-11-23 03:45", tz="UTC")


def test_epoch_seconds_and_parquet_input(lake, tmp_path):
    t = pa.table({"ts": [1763870400, 1763956800], "open": [1.0, 2.0], "high": [2.0, 3.0], "low": [0.5, 1.5], "close": [1.5, 2.5], "volume": [1.0, 2.0]})
    p = tmp_path / "h.parquet"
    pq.write_table(t, p)
    r = import_file(lake, p, symbol="X", interval="1d")
    assert r.rows_written == 2
    assert lake.read_bars("X", "1d")["ts"].dt.strftime("%Y-%m-%d").tolist() == ["2025-11-23", "2025-11-24"]


def test_bad_rows_go_to_quarantine_with_reason_and_original_values(lake, tmp_path):
    text = GOOD + "\n".join(
        [
            "2024-01-04,10,9,11,10.5,10.5,100",  # high < low
            "2024-01-05,abc,11,9,10.5,10.5,100",  # unreadable open
            "notadate,10,11,9,10.6,10.5,100",
            "2024-01-08,10,11,9,-1,10.5,100",  # negative close
            "2024-01-09,10,11,9,nan,10.5,100",
            "2024-01-10,10,11,9,10,10,-5",  # negative volume
            "2024-01-03,10,12,9,11,11,300",  # duplicate of the first row: this later row wins
        ]
    ) + "\n"
    r = import_file(lake, write(tmp_path, text), symbol="goog", interval="1d")
    assert (r.rows_read, r.rows_written, r.rows_quarantined) == (9, 2, 7)
    bars = lake.read_bars("GOOG", "1d")
    assert bars.set_index(bars["ts"].dt.strftime("%Y-%m-%d"))["close"].to_dict() == {"2024-01-02": 10.2, "2024-01-03": 11.0}
    q = lake.read("quarantine")
    reasons = sorted(q["reason"])
    assert reasons == sorted(
        [
            "high 9 < low 11", "open is not a finite number", "time 'notadate' is not a date or time",
            "close -1 is not positive", "close is not a finite number", "volume -5 is negative",
            "duplicate timestamp; a later row in the file wins",
        ]
    )
    kept = {json.loads(p)["Open"] for p in q["payload"]}
    assert "abc" in kept  # original text preserved
    assert set(q["symbol"]) == {"GOOG"} and set(q["source"]) == {"import:h.csv"}


@pytest.mark.parametrize(
    "text,name,message",
    [
        ("", "empty.csv", "empty.csv: the file is empty"),
        ("Date,Open,High,Low\n2024-01-02,1,2,0.5\n", "noclose.csv", "noclose.csv: column 'close' missing"),
        ("Open,High,Low,Close\n1,2,0.5,1\n", "notime.csv", "notime.csv: no time column"),
        ('a,b\n"unterminated,1\n', "broken.csv", "broken.csv: not a readable CSV file"),
        ("not parquet", "bad.parquet", "bad.parquet: not a readable Parquet file"),
    ],
)
def test_unreadable_files_give_one_line_errors_and_write_nothing(lake, tmp_path, text, name, message):
    with pytest.raises(DataError) as exc:
        import_file(lake, write(tmp_path, text, name), symbol="X", interval="1d")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert lake.read_bars(interval="1d").empty


def test_missing_file_and_bad_interval(lake, tmp_path):
    with pytest.raises(DataError, match="nope.csv: no such file"):
        import_file(lake, tmp_path / "nope.csv", symbol="X")
    with pytest.raises(DataError, match="'daily': not an interval"):
        import_file(lake, write(tmp_path, GOOD), symbol="X", interval="daily")


def test_reimport_is_harmless(lake, tmp_path):
    p = write(tmp_path, GOOD)
    import_file(lake, p, symbol="G", interval="1d")
    import_file(lake, p, symbol="G", interval="1d")
    assert len(lake.read_bars("G", "1d")) == 2
