"""The lake on an object store: an S3-compatible server (moto, its own process on 127.0.0.1) holds a lake
that ingestion writes and the scan reads, with the local lake's guarantees (last write wins, compaction,
retention, no reader ever sees a partial object) and the credentials nowhere but the environment."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from mintel import schema
from mintel.errors import ConfigError, LakeError
from mintel.lake import Lake
from tests.conftest import make_bars, run_mintel
from tests.lake.test_concurrency import start_writer
from tests.lake.test_lake import sample
from tests.scale.s3 import SECRET_KEY, MotoServer, restore_env, set_env

NOW = pd.Timestamp("2026-11-25 12:00", tz="UTC")


@pytest.fixture(scope="module")
def s3():
    server = MotoServer().start()
    old = set_env(server.env)  # the lake's filesystem (and every child process) finds the server by these
    try:
        yield server
    finally:
        restore_env(old)
        server.stop()


@pytest.fixture
def url(s3) -> str:
    return f"s3://{s3.bucket()}/mintel/lake"


def objects(s3, url: str) -> dict[str, int]:
    """Every object under the lake's prefix, by key relative to it, with its size (the server's view)."""
    prefix = url.removeprefix("s3://")
    infos = s3.filesystem().get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return {i.path[len(prefix) + 1:]: i.size for i in infos if i.type == pafs.FileType.File}


def copy_down(s3, url: str, dest) -> Lake:
    """The object-store lake copied to a local directory, as it is."""
    pafs.copy_files(url.removeprefix("s3://"), str(dest), source_filesystem=s3.filesystem(),
                    destination_filesystem=pafs.LocalFileSystem())
    return Lake(dest)


# ------------------------------------------------------------------------------ the lake's contract


@pytest.mark.parametrize("kind", [k for k in schema.KINDS])
def test_round_trip_every_table(url, kind):
    lake = Lake(url)
    df = sample(kind)
    assert lake.append(kind, df) == len(df)
    back = lake.read(kind, interval="1m" if kind == "bars" else None)
    expected = schema.to_pandas(schema.conform(kind, df))
    key = list(schema.kind(kind).key) or ["ts"]
    assert_frame_equal(back.sort_values(key).reset_index(drop=True), expected.sort_values(key).reset_index(drop=True))


def test_layout_is_hive_and_plain_pyarrow_reads_it(s3, url):
    lake = Lake(url)
    assert lake.location == url and repr(lake) == f"Lake({url!r})" and not lake.is_local
    lake.append("bars", make_bars(periods=3))
    lake.append("bars", make_bars(periods=3, interval="1d", start="2025-12-30"))
    lake.append("quotes", sample("quotes"))
    keys = sorted(objects(s3, url))
    assert any(k.startswith("bars/interval=1m/date=2026-11-23/part-") for k in keys)
    assert any(k.startswith("bars/interval=1d/year=2025/part-") for k in keys)
    assert any(k.startswith("quotes/date=2026-11-23/part-") for k in keys)
    assert not [k for k in keys if "/." in k or k.startswith(".")], "no temporaries on an object store"
    t = ds.dataset(url.removeprefix("s3://") + "/bars/interval=1m", format="parquet", partitioning="hive",
                   filesystem=s3.filesystem()).to_table()
    assert t.num_rows == 6 and "date" in t.column_names


def test_last_write_wins_and_compaction(s3, url):
    lake = Lake(url)
    df = make_bars(("AAA", "BBB", "CCC"), periods=50)
    for k in range(0, 150, 10):
        lake.append("bars", df.iloc[k : k + 10])
    lake.append("bars", df.iloc[5:25].assign(close=lambda d: d["open"], high=lambda d: d[["high", "open"]].max(axis=1)))
    before = lake.read_bars(interval="1m")
    assert len(before) == 150
    assert (before.set_index(["symbol", "ts"]).loc[df.iloc[5:25].set_index(["symbol", "ts"]).index, "close"].to_numpy()
            == df.iloc[5:25]["open"].to_numpy()).all()  # the later write wins
    assert len(objects(s3, url)) == 16
    result = lake.compact()
    assert (result.files_before, result.files_after, result.rows_before, result.rows_after) == (16, 1, 170, 150)
    keys = list(objects(s3, url))
    assert len(keys) == 1 and keys[0].endswith("-c.parquet")
    assert_frame_equal(lake.read_bars(interval="1m"), before)
    st = lake.stats().set_index("table")
    assert st.loc["bars", "files"] == 1 and st.loc["bars", "rows"] == 150


def test_an_interrupted_compaction_is_invisible_and_finished_later(s3, url):
    lake = Lake(url)
    df = make_bars(("AAA", "BBB"), periods=10)
    lake.append("bars", df.iloc[:10])
    lake.append("bars", df.iloc[10:])
    part = lake.partitions("bars", "1m")[0]
    files = part.files()
    out = f"part-{files[-1].name[5:37]}-c.parquet"
    lake.store.write_json(part.path / "_compacting.json", {"output": out, "inputs": [f.name for f in files]})
    lake._publish(lake.read_files("bars", files), part.path / out)  # a crash right after publishing
    assert len(lake.read_bars(interval="1m")) == 20  # inputs and output both there: no row twice
    lake.compact()
    assert sorted(objects(s3, url)) == [f"bars/interval=1m/date=2026-11-23/{out}"]
    assert_frame_equal(lake.read_bars(interval="1m"), schema.to_pandas(schema.conform("bars", df)).sort_values(
        ["symbol", "ts"]).reset_index(drop=True))


def test_retention_drops_whole_partitions_and_a_marked_one_reads_empty(s3, url):
    lake = Lake(url)
    lake.append("bars", make_bars(periods=3, start="2026-10-01 04:00"))  # older than 30 days
    lake.append("bars", make_bars(periods=3, start="2026-11-20 04:00"))
    lake.append("bars", make_bars(periods=3, interval="1d", start="2015-01-05"))
    # A drop cut short after its marker: readers and compaction see the partition as empty.
    old = lake.partitions("bars", "1m")[0]
    lake.store.write_json(old.path / "_dropped", {"at": 0})
    assert lake.read_bars(interval="1m")["ts"].min() >= pd.Timestamp("2026-11-20", tz="UTC")
    assert lake.compact().partitions == 0
    assert lake.retain(now=NOW) == ["bars/interval=1m/date=2026-10-01"]
    assert not [k for k in objects(s3, url) if "2026-10-01" in k]
    assert len(lake.read_bars(interval="1m")) == 6 and len(lake.read_bars(interval="1d")) == 6
    assert lake.retain({"bars:1d": 365}, now=NOW) == ["bars/interval=1d/year=2015"]
    assert lake.read_bars(interval="1d").empty


def test_snapshot_replace_and_the_dashboards_source(url):
    from mintel.ui.source import Source

    lake = Lake(url)
    source = Source(url)
    v0 = source.snapshot_version()
    lake.write_snapshot(sample("snapshot", n=5))
    v1 = source.snapshot_version()
    assert v1 != v0 and len(source.snapshot().frame) == 5
    lake.write_snapshot(sample("snapshot", n=3, seed=2))
    assert source.snapshot_version() != v1 and len(source.snapshot().frame) == 3
    assert len(lake.snapshot()) == 3


def test_errors_are_one_line_and_name_the_lake(s3):
    missing = Lake("s3://no-such-bucket-mintel/lake")
    with pytest.raises(LakeError, match=r"^s3://no-such-bucket-mintel/lake: lake is not writable") as e:
        missing.check_writable()
    assert "\n" not in str(e.value)
    with pytest.raises(LakeError, match="s3://no-such-bucket-mintel/lake/bars/interval=1m/date=2026-11-23/part-") as e:
        missing.append("bars", make_bars(periods=2))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="unsupported lake URL scheme 'gs'"):
        Lake("gs://bucket/lake")
    with pytest.raises(ConfigError, match="credentials and endpoint come from the AWS_"):
        Lake(f"s3://{SECRET_KEY}@bucket/lake")
    try:
        Lake(f"s3://key:{SECRET_KEY}@bucket/lake")
    except ConfigError as exc:
        assert SECRET_KEY not in str(exc)
    old = set_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})  # nothing listens there
    try:
        with pytest.raises(LakeError, match=r"^s3://b/lake: lake is not writable") as e:
            Lake("s3://b/lake").check_writable()
        assert "\n" not in str(e.value)
    finally:
        restore_env(old)


def test_settings_keep_the_url(monkeypatch, tmp_path):
    from mintel.config import load_config

    monkeypatch.setenv("MINTEL_LAKE", "s3://bucket/some/lake")
    (tmp_path / "mintel.toml").write_text('[mintel]\nuniverse = "nifty50"\n')
    settings = load_config(tmp_path / "mintel.toml")
    assert settings.lake == "s3://bucket/some/lake"
    assert Lake(settings.lake).location == "s3://bucket/some/lake" == Lake().location
    assert settings.with_overrides(lake="s3://other/x").lake == "s3://other/x"
    (tmp_path / "mintel.toml").write_text('[mintel]\nlake = "s3://from-file/lake"\n')
    monkeypatch.delenv("MINTEL_LAKE")
    assert load_config(tmp_path / "mintel.toml").lake == "s3://from-file/lake"


# ------------------------------------------------------------------------------ ingestion, scan, readers


def test_ingestion_writes_the_bucket_and_the_scan_reads_it(s3, url, tmp_path):
    run = run_mintel("-vv", "ingest", "--lake", url, "--universe", "nifty50", "--cycles", "40", "--always-on",
                     cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"rows written to {url}" in run.stdout
    lake = Lake(url)
    bars = lake.read_bars(None, interval="1m")
    assert bars.groupby("symbol").size().eq(40).all() and bars["symbol"].nunique() == 50
    assert len(lake.snapshot()) == 50
    local = copy_down(s3, url, tmp_path / "copy")
    assert_frame_equal(bars, local.read_bars(None, interval="1m"))
    assert_frame_equal(lake.read("metrics"), local.read("metrics"))

    scanned = run_mintel("scan", "--lake", url, "--interval", "1m", "--format", "json", cwd=tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    from mintel.analytics.scan import scan

    expected = scan(local, "1m")
    got = pd.DataFrame(json.loads(scanned.stdout))
    assert list(got["symbol"]) == list(expected["symbol"])
    np.testing.assert_allclose(got["rsi"].astype(float), expected["rsi"].astype(float), rtol=0, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["price"].astype(float), expected["price"].astype(float), rtol=0, atol=0)

    stats = run_mintel("lake", "stats", "--lake", url, "--format", "json", cwd=tmp_path)
    assert stats.returncode == 0 and any(r["table"] == "bars" and r["rows"] == 2000 for r in json.loads(stats.stdout))

    # The secret key is in no output, no log and no object of the lake.
    for text in (run.stdout, run.stderr, scanned.stdout, scanned.stderr, stats.stdout, stats.stderr, repr(lake)):
        assert SECRET_KEY not in text
    fs = s3.filesystem()
    prefix = url.removeprefix("s3://")
    for key in objects(s3, url):
        with fs.open_input_stream(f"{prefix}/{key}") as fh:
            assert SECRET_KEY.encode() not in fh.read()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET_KEY.encode() not in path.read_bytes(), path
    assert SECRET_KEY.encode() not in pickle.dumps(lake)  # what a Dask worker is sent


# A writer of big objects (each well over the multipart threshold), announcing each before it starts.
BIG_WRITER = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd
    from mintel.lake import Lake
    lake, rows = Lake(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(int(sys.argv[3]))
    for k in range(1000):
        ts = pd.Timestamp("2026-11-23 03:45", tz="UTC") + pd.Timedelta(minutes=k)
        px = rng.uniform(10, 1000, rows)  # random: the file does not compress below the threshold
        df = pd.DataFrame({"interval": "1m", "symbol": [f"S{i:07d}" for i in range(rows)], "ts": ts, "open": px,
                           "high": px * 1.01, "low": px * 0.99, "close": px, "volume": rng.uniform(1, 1e6, rows),
                           "source": "w", "quality": 1.0, "ingested_at": ts})
        print("start", k, flush=True)
        lake.append("bars", df)
        print("ack", k, flush=True)
    """
)


def test_a_reader_never_sees_a_partial_object_and_a_killed_upload_leaves_none(s3, url):
    rows = 300_000  # ~14 MB a file: a multipart upload
    fs, prefix = s3.filesystem(), url.removeprefix("s3://")
    rng = random.Random(3)
    acked, started = set(), set()
    checked = 0
    for round_ in range(3):
        writer = subprocess.Popen([sys.executable, "-c", BIG_WRITER, url, str(rows), str(round_)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + rng.uniform(4.0, 7.0)
        while time.monotonic() < deadline and writer.poll() is None:
            # Every object a listing shows is whole: its footer reads and it holds every row of its append.
            for info in fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True)):
                if info.type == pafs.FileType.File:
                    with fs.open_input_file(info.path) as fh:
                        assert pq.ParquetFile(fh).metadata.num_rows == rows, info.path
                    checked += 1
            time.sleep(0.05)
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate(timeout=30)
        acked |= {int(x.split()[1]) for x in out.splitlines() if x.startswith("ack")}
        started |= {int(x.split()[1]) for x in out.splitlines() if x.startswith("start")}
    assert checked > 0 and acked, "the writer never got an object out"
    bars = Lake(url).read_bars(None, interval="1m")
    minutes = {int((t - pd.Timestamp("2026-11-23 03:45", tz="UTC")) / pd.Timedelta("1min")) for t in bars["ts"].unique()}
    assert acked <= minutes <= started  # every acknowledged append is there; nothing not begun is
    assert bars.groupby("ts").size().eq(rows).all(), "a partial object became visible"
    assert set(objects(s3, url).values()) and all(size > 5 * 2**20 for size in objects(s3, url).values())


def test_readers_while_a_writer_appends_compacts_and_replaces_the_snapshot(url):
    n = 200
    writer = start_writer(url, n, steps=60, compact_every=7, snapshot=True)
    lake = Lake(url)
    reads, last_rows = 0, 0
    try:
        while writer.poll() is None:
            bars = lake.read_bars(interval="1m")
            assert not bars.duplicated(["symbol", "ts"]).any()
            assert len(bars) % n == 0, "a reader saw part of an append"
            assert len(bars) >= last_rows, "rows disappeared between two reads"
            last_rows = len(bars)
            assert len(lake.snapshot()) in (0, n), "a reader saw part of a snapshot"
            reads += 1
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert "compacted" in out and reads >= 3
    assert len(lake.read_bars(interval="1m")) == 60 * n


# ------------------------------------------------------------------------------ Dask workers on the bucket


@pytest.fixture(scope="module")
def scale_url(s3, scale_lake) -> str:
    """The scale suite's lake (nifty50, 2.5 years daily, 3 minute sessions) uploaded to a bucket."""
    url = f"s3://{s3.bucket()}/scale"
    pafs.copy_files(str(scale_lake.root), url.removeprefix("s3://"), source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=s3.filesystem())
    return url


def test_a_report_runs_on_the_bucket(scale_url, scale_lake, tmp_path):
    from mintel import reports
    from mintel.analytics.scan import sentiment

    result = reports.run_report("scan_report", tmp_path / "reports", {"top_n": "5"}, lake=scale_url, progress=False)
    assert result.ok, result.error
    assert result.parameters["lake"] == scale_url
    page = result.html_path.read_text()
    assert scale_url in page
    expected = sentiment(scale_lake, "1d")  # the figures are the lake's
    assert result.headline["sentiment"] == pytest.approx(expected["sentiment"])
    assert f"{expected['sentiment']:.1f} {expected['label']}" in page
    for path in (tmp_path / "reports").rglob("*"):
        if path.is_file():
            assert SECRET_KEY not in path.read_text(errors="replace"), path


def test_the_dask_scan_reads_the_bucket_on_its_workers(scale_url, scale_lake):
    from distributed import LocalCluster

    from mintel.analytics.scan import scan
    from mintel.engine import DaskEngine

    local, lake = scale_lake, Lake(scale_url)
    now = pd.Timestamp("2026-12-01", tz="UTC")
    # Workers are started with the environment that names the server and the credentials: mintel sends neither.
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as cluster, \
            DaskEngine(cluster.scheduler_address) as engine:
        for interval in ("1d", "1m"):
            got = scan(lake, interval, now=now, engine=engine)
            assert_frame_equal(got, scan(local, interval, now=now), check_exact=True)
            assert engine.stats.tasks >= 4 and sum(engine.stats.rows) > 0
