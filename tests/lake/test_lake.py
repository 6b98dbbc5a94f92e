"""The lake against what was written: round trips, de-duplication, pruning, compaction, retention."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from mintel import schema
from mintel.errors import DataError, LakeError
from mintel.lake import Lake
from tests.conftest import make_bars


def sample(kind: str, n: int = 7, seed: int = 1) -> pd.DataFrame:
    """Rows of any table, with every column filled, spread over two days."""
    if kind == "bars":
        return make_bars(("AAA", "BBB"), periods=n, seed=seed)
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-11-23 09:00", periods=n, freq="7h", tz="UTC")
    cols = {}
    for field in schema.kind(kind).schema:
        t = field.type
        if pa.types.is_timestamp(t):
            cols[field.name] = ts if field.name == "ts" else ts + pd.Timedelta(seconds=1)
        elif pa.types.is_floating(t):
            cols[field.name] = rng.normal(size=n).astype(np.float32 if t == pa.float32() else float)
        elif pa.types.is_integer(t):
            cols[field.name] = rng.integers(0, 100, n)
        elif field.name == "symbol":
            cols[field.name] = [f"S{i % 3}" for i in range(n)]
        elif field.name == "interval" and kind == "indicators":  # a partition directory: a real interval
            cols[field.name] = "1m"
        else:
            cols[field.name] = [f"{field.name}-{i}" for i in range(n)]
    return pd.DataFrame(cols)


@pytest.mark.parametrize("kind", [k for k in schema.KINDS])
def test_round_trip_every_table(lake, kind):
    df = sample(kind)
    assert lake.append(kind, df) == len(df)
    back = lake.read(kind, interval="1m" if kind == "bars" else None)
    expected = schema.to_pandas(schema.conform(kind, df))
    key = list(schema.kind(kind).key) or ["ts"]
    pd.testing.assert_frame_equal(
        back.sort_values(key).reset_index(drop=True), expected.sort_values(key).reset_index(drop=True)
    )
    assert list(back.columns) == schema.kind(kind).schema.names


def test_layout_is_hive_and_readable_by_plain_pyarrow(lake):
    lake.append("bars", make_bars(periods=3))
    lake.append("bars", make_bars(periods=3, interval="1d", start="2025-12-30"))
    lake.append("quotes", sample("quotes"))
    files = sorted(p.relative_to(lake.root).as_posix() for p in lake.root.rglob("*.parquet"))
    assert any(f.startswith("bars/interval=1m/date=2026-11-23/part-") for f in files)
    assert any(f.startswith("bars/interval=1d/year=2025/part-") for f in files)
    assert any(f.startswith("bars/interval=1d/year=2026/part-") for f in files)
    assert any(f.startswith("quotes/date=2026-11-23/part-") for f in files)
    # Another engine reads the lake as it is, with hive partitions.
    t = ds.dataset(lake.root / "bars" / "interval=1m", format="parquet", partitioning="hive").to_table()
    assert t.num_rows == 6 and "date" in t.column_names


def test_read_bars_sorted_and_filtered(lake):
    df = make_bars(("CCC", "AAA", "BBB"), periods=30)
    lake.append("bars", df.sample(frac=1, random_state=3))  # written shuffled
    got = lake.read_bars(["AAA", "CCC"], "1m", start="2026-11-23 03:50", end="2026-11-23 04:00")
    assert list(got["symbol"].unique()) == ["AAA", "CCC"]
    assert got.groupby("symbol")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert got["ts"].min() == pd.Timestamp("2026-11-23 03:50", tz="UTC")
    assert got["ts"].max() == pd.Timestamp("2026-11-23 04:00", tz="UTC")
    assert len(got) == 2 * 11
    assert lake.read_bars("AAA", "1m").shape[0] == 30


def test_last_write_wins_across_many_files(lake):
    base = make_bars(("AAA", "BBB"), periods=20)
    lake.append("bars", base)
    for k in range(1, 76):  # 75 more appends, each rewriting some bars
        part = base.iloc[(k * 7) % 40 : (k * 7) % 40 + 3].copy()
        part["close"] = float(k)
        part["high"] = part[["open", "close", "high"]].max(axis=1)
        part["low"] = part[["open", "close", "low"]].min(axis=1)
        lake.append("bars", part)
        base.loc[part.index, ["close", "high", "low"]] = part[["close", "high", "low"]]
    got = lake.read_bars(interval="1m")
    assert len(got) == 40
    assert not got.duplicated(["symbol", "ts"]).any()
    want = base.sort_values(["symbol", "ts"]).reset_index(drop=True)
    np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())


def test_duplicates_inside_one_append_keep_the_last(lake):
    df = make_bars(("AAA",), periods=3)
    dup = df.iloc[[1]].assign(close=df["close"].iloc[1] * 1.001, high=df["high"].iloc[1] * 1.01)
    lake.append("bars", pd.concat([df, dup]))
    got = lake.read_bars("AAA", "1m")
    assert len(got) == 3
    assert got["close"].iloc[1] == dup["close"].iloc[0]


def test_partition_pruning_never_opens_partitions_outside_the_range(lake):
    for day in ("2026-11-16", "2026-11-17", "2026-11-18"):
        lake.append("bars", make_bars(periods=5, start=f"{day} 04:00"))
    # Damage the first day: a read that opened it would fail.
    broken = next((lake.root / "bars" / "interval=1m" / "date=2026-11-16").glob("part-*.parquet"))
    broken.write_bytes(b"not parquet")
    got = lake.read_bars(interval="1m", start="2026-11-17")
    assert set(got["ts"].dt.strftime("%Y-%m-%d")) == {"2026-11-17", "2026-11-18"}
    with pytest.raises(LakeError):
        lake.read_bars(interval="1m", end="2026-11-16 23:00")


def test_latest_returns_newest_row_per_symbol(lake):
    lake.append("bars", make_bars(("AAA", "BBB"), periods=5, start="2026-11-20 04:00"))
    lake.append("bars", make_bars(("AAA",), periods=3, start="2026-11-23 04:00", seed=5))
    latest = lake.latest("bars", interval="1m").set_index("symbol")
    assert latest.loc["AAA", "ts"] == pd.Timestamp("2026-11-23 04:02", tz="UTC")
    assert latest.loc["BBB", "ts"] == pd.Timestamp("2026-11-20 04:04", tz="UTC")
    quotes = sample("quotes", n=9)
    lake.append("quotes", quotes)
    lq = lake.latest("quotes")
    assert lq.set_index("symbol")["ts"].to_dict() == quotes.groupby("symbol")["ts"].max().to_dict()


def test_snapshot_replaced_whole(lake):
    snap = sample("snapshot", n=5)
    lake.write_snapshot(snap)
    assert len(lake.snapshot()) == 5
    lake.write_snapshot(sample("snapshot", n=3, seed=2))
    got = lake.snapshot()
    assert len(got) == 3 and list(got.columns) == schema.SNAPSHOT.names
    assert list((lake.root / "snapshot").iterdir()) == [lake.root / "snapshot" / "latest.parquet"]


def test_compact_keeps_every_row_and_drops_duplicates(lake):
    df = make_bars(("AAA", "BBB", "CCC"), periods=50)
    for k in range(0, 150, 10):
        lake.append("bars", df.iloc[k : k + 10])
    lake.append("bars", df.iloc[5:25])  # 20 duplicates
    before = lake.read_bars(interval="1m")
    part = lake.root / "bars" / "interval=1m" / "date=2026-11-23"
    assert len(list(part.glob("part-*.parquet"))) == 16
    result = lake.compact()
    assert result.files_before == 16 and result.files_after == 1
    assert result.rows_before == 170 and result.rows_after == 150 and result.duplicates_dropped == 20
    files = list(part.glob("*"))
    assert len(files) == 1 and files[0].name.endswith("-c.parquet")
    after = lake.read_bars(interval="1m")
    pd.testing.assert_frame_equal(before, after)
    # The compacted file is sorted by key, so a one-symbol read skips row groups.
    t = pa.parquet.read_table(files[0])
    assert t.column("symbol").to_pylist() == sorted(t.column("symbol").to_pylist())


def test_append_after_compaction_still_wins(lake):
    df = make_bars(("AAA",), periods=4)
    lake.append("bars", df)
    lake.append("bars", df)
    lake.compact()
    newer = df.iloc[[0]].assign(close=df["open"].iloc[0], high=df["high"].iloc[0] * 1.1)
    lake.append("bars", newer)
    assert lake.read_bars("AAA", "1m")["close"].iloc[0] == df["open"].iloc[0]
    lake.compact()
    assert lake.read_bars("AAA", "1m")["close"].iloc[0] == df["open"].iloc[0]


def test_interrupted_compaction_is_invisible_and_finished_later(lake):
    """A crash after the merged file is published but before the inputs are gone."""
    df = make_bars(("AAA", "BBB"), periods=10)
    lake.append("bars", df.iloc[:10])
    lake.append("bars", df.iloc[10:])
    part = lake.partitions("bars", "1m")[0]
    files = part.files()
    merged = lake.read_files("bars", files)
    out = f"part-{files[-1].name[5:37]}-c.parquet"
    (part.path / "_compacting.json").write_text(json.dumps({"output": out, "inputs": [f.name for f in files]}))
    lake._publish(merged, part.path / out)
    got = lake.read_bars(interval="1m")  # inputs and output both on disk: no row twice
    assert len(got) == 20
    lake.compact()
    assert [f.name for f in part.files()] == [out]
    assert not (part.path / "_compacting.json").exists()
    assert len(lake.read_bars(interval="1m")) == 20


def test_retain_drops_old_partitions_only(lake):
    now = pd.Timestamp("2026-11-25 12:00", tz="UTC")
    lake.append("bars", make_bars(periods=3, start="2026-10-01 04:00"))  # older than 30 days
    lake.append("bars", make_bars(periods=3, start="2026-11-20 04:00"))
    lake.append("bars", make_bars(periods=3, interval="1d", start="2015-01-05"))  # daily: kept forever
    q = sample("quotes")
    lake.append("quotes", q.assign(ts=q["ts"] - pd.Timedelta(days=10)))
    lake.append("quotes", q)
    removed = lake.retain(now=now)
    assert sorted(removed) == ["bars/interval=1m/date=2026-10-01", "quotes/date=2026-11-13", "quotes/date=2026-11-14", "quotes/date=2026-11-15"]
    assert lake.read_bars(interval="1m")["ts"].min() >= pd.Timestamp("2026-11-20", tz="UTC")
    assert len(lake.read_bars(interval="1d")) == 6
    removed = lake.retain({"bars:1d": 365}, now=now)
    assert removed == ["bars/interval=1d/year=2015"]


def test_stats_counts_files_and_rows(lake):
    lake.append("bars", make_bars(periods=5))
    lake.append("bars", make_bars(periods=5, seed=3))
    lake.write_snapshot(sample("snapshot", n=4))
    st = lake.stats().set_index("table")
    assert st.loc["bars", "files"] == 2 and st.loc["bars", "rows"] == 20
    assert st.loc["snapshot", "rows"] == 4


def test_bad_input_errors_name_the_input(lake, tmp_path):
    df = make_bars(periods=2).drop(columns=["close"])
    with pytest.raises(DataError, match="column 'close' missing"):
        lake.append("bars", df)
    with pytest.raises(DataError, match="'close' cannot be read"):
        lake.append("bars", make_bars(periods=2).assign(close="abc"))
    with pytest.raises(DataError, match="not an interval"):
        lake.append("bars", make_bars(periods=2).assign(interval="one minute"))
    with pytest.raises(DataError, match="nope: unknown table"):
        lake.append("nope", df)
    with pytest.raises(DataError, match="start .* is after end"):
        lake.read_bars(interval="1m", start="2026-11-24", end="2026-11-23")
    with pytest.raises(DataError, match="'yesterday-ish': not a date"):
        lake.read_bars(interval="1m", start="yesterday-ish")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = Lake(blocker / "lake")
    with pytest.raises(LakeError, match="a-file/lake"):
        bad.append("bars", make_bars(periods=2))
    with pytest.raises(LakeError, match="not writable"):
        bad.check_writable()
    assert lake.read_bars(interval="1m").empty  # nothing half-written


def test_failed_write_leaves_nothing_behind(lake, monkeypatch):
    import pyarrow.parquet as pq

    lake.append("bars", make_bars(periods=2))

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(LakeError, match="No space left"):
        lake.append("bars", make_bars(periods=2, seed=9))
    monkeypatch.undo()
    assert len(lake.read_bars(interval="1m")) == 4
    assert not [p for p in lake.root.rglob("*") if p.name.startswith(".part-")]


def test_bar_validity_rules_name_the_problem():
    df = make_bars(("A",), periods=8)
    df.loc[0, "close"] = np.nan
    df.loc[1, "open"] = -5
    df.loc[2, "high"] = df.loc[2, "low"] - 1
    df.loc[3, "low"] = max(df.loc[3, "open"], df.loc[3, "close"]) + 0.5
    df.loc[3, "high"] = df.loc[3, "low"] + 1
    df.loc[4, "volume"] = -1
    df.loc[5, "high"] = min(df.loc[5, "open"], df.loc[5, "close"])  # high below max(open, close)
    df.loc[5, "low"] = df.loc[5, "high"] - 1
    df.loc[6, "volume"] = np.inf
    reasons = schema.bar_problems(df).tolist()
    assert reasons[0] == "close is not a finite number"
    assert reasons[1] == "open -5 is not positive"
    assert reasons[2].startswith("high") and "< low" in reasons[2]
    assert reasons[3].startswith("low") and "> min(open, close)" in reasons[3]
    assert reasons[4] == "volume -1 is negative"
    assert reasons[5].startswith("high") and "< max(open, close)" in reasons[5]
    assert reasons[6] == "volume is not a finite number"
    assert reasons[7] is None
    good, bad = schema.split_valid_bars(df)
    assert len(good) == 1 and len(bad) == 7


def test_quarantine_keeps_rejected_rows_with_reason(lake):
    df = make_bars(("AAA",), periods=4)
    df.loc[2, "close"] = -1.0
    good, bad = schema.split_valid_bars(df)
    assert lake.quarantine("bars", bad, source="unit") == 1
    q = lake.read("quarantine")
    assert q["reason"].tolist() == ["close -1 is not positive"]
    assert q["symbol"].tolist() == ["AAA"] and q["source"].tolist() == ["unit"]
    assert q["row_ts"].iloc[0] == df.loc[2, "ts"]
    assert json.loads(q["payload"].iloc[0])["close"] == -1.0


def test_tiered_compaction_merges_only_new_files_of_the_partition_being_written(lake):
    df = make_bars(("AAA", "BBB", "CCC"), periods=60)  # one day
    older = df.assign(ts=df["ts"] - pd.Timedelta(days=1))  # the day before, still in pieces
    for k in range(0, 60, 20):
        lake.append("bars", older.iloc[k : k + 20])
    for k in range(0, 90, 10):
        lake.append("bars", df.iloc[k : k + 10])
    first = lake.compact(tiered=True)
    old_part, part = lake.partitions("bars", "1m")
    assert first.files_before == 3 + 9 and len(old_part.files()) == 1  # the closed day: merged whole
    [merged] = part.files()
    for k in range(90, 180, 10):
        lake.append("bars", df.iloc[k : k + 10])
    changed = df.iloc[[5, 100]].assign(close=df["low"].iloc[[5, 100]].to_numpy())  # rewrites across the tiers
    lake.append("bars", changed)
    before = lake.read_bars(interval="1m")
    second = lake.compact(tiered=True)
    assert second.files_before == 10 and second.rows_before == 92  # only what came after the merged file
    files = part.files()
    assert len(files) == 2 and files[0] == merged and all(f.name.endswith("-c.parquet") for f in files)
    after = lake.read_bars(interval="1m")
    pd.testing.assert_frame_equal(before, after)  # the later write wins across compacted files, no duplicates
    assert len(after) == 240 and after.set_index(["symbol", "ts"]).index.is_unique
    assert (after.set_index(["symbol", "ts"]).loc[list(zip(changed["symbol"], changed["ts"])), "close"].to_numpy()
            == changed["close"].to_numpy()).all()
    lake.compact()  # a whole merge: one file, the key unique in it
    assert len(part.files()) == 1
    pd.testing.assert_frame_equal(lake.read_bars(interval="1m"), after)


def test_tiered_compaction_bounds_the_file_count(lake):
    from mintel.lake.maintenance import TIER_FAN_IN

    df = make_bars(("AAA",), periods=4 * (TIER_FAN_IN + 1))
    part = None
    for k in range(TIER_FAN_IN + 1):
        lake.append("bars", df.iloc[4 * k : 4 * k + 2])
        lake.append("bars", df.iloc[4 * k + 2 : 4 * k + 4])
        lake.compact(tiered=True)
        part = lake.partitions("bars", "1m")[0]
        assert len(part.files()) == (k + 1 if k < TIER_FAN_IN else 1)
    pd.testing.assert_frame_equal(lake.read_bars(interval="1m"), lake.read_files("bars", part.files()).to_pandas())
