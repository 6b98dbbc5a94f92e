"""The lake on an object store (moto's S3 server on 127.0.0.1) beside the same lake on the local disk,
and beside plain pyarrow reading the same objects, in the same run.

    .venv/bin/python -m bench objectstore

Figures (median of repeats): one ingestion cycle's append (1000 symbols, one bar each: one PUT);
a whole session's append (1000 symbols x 375 bars, one ~10 MB object: a multipart upload); reading that
session back (Lake.read_arrow vs listing + pyarrow.dataset over the same objects); compacting 30 small files; and the
daily scan of 500 symbols x 2 years read from the bucket vs from the disk. Loopback HTTP to moto (a
Python server) is the floor of an object store's cost, not a real S3's: expect tens of ms per request
on AWS.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs as pafs

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_lake import session_bars
from bench.common import median_s, row
from mintel import schema
from mintel.lake import Lake
from tests.scale.s3 import MotoServer, restore_env, set_env

DAY = pd.Timestamp("2026-11-23", tz="UTC")
SCAN_SYMBOLS = 500
SCAN_START = "2024-11-25"


def _lakes(server: MotoServer, tmp: Path, name: str) -> tuple[Lake, Lake]:
    return Lake(f"s3://{server.bucket()}/{name}"), Lake(tmp / name)


def main() -> int:
    server = MotoServer().start()
    old = set_env(server.env)
    tmp = Path(tempfile.mkdtemp(prefix="mintel-bench-s3-"))
    try:
        session = session_bars(DAY)
        minute = session[session["ts"] == session["ts"].min()]

        s3, local = _lakes(server, tmp, "cycle")
        for lake in (s3, local):
            lake.append("bars", minute)
        t_s3 = median_s(lambda: s3.append("bars", minute), repeats=15)
        t_local = median_s(lambda: local.append("bars", minute), repeats=15)
        print(row("append one cycle, 1000 bars: s3 vs local disk", t_s3, t_local))

        s3, local = _lakes(server, tmp, "session")
        t_s3 = median_s(lambda: s3.append("bars", session), repeats=3)
        t_local = median_s(lambda: local.append("bars", session), repeats=3)
        size = max(i.size for i in server.filesystem().get_file_info(
            pafs.FileSelector(str(s3.root), recursive=True)) if i.type == pafs.FileType.File)
        print(row("append one session, 375k bars: s3 vs local disk", t_s3, t_local,
                  f"{len(session) / t_s3 / 1e6:.2f} M rows/s to s3, objects of {size / 2**20:.1f} MB"))

        s3, _ = _lakes(server, tmp, "read")
        s3.append("bars", session)
        directory = str(s3.partitions("bars", "1m")[0].path)

        def plain() -> None:  # list the partition, read its files: what any pyarrow user would do
            fs = s3.store.filesystem
            files = [i.path for i in fs.get_file_info(pafs.FileSelector(directory)) if i.type == pafs.FileType.File]
            ds.dataset(files, schema=schema.BARS, format="parquet", filesystem=fs).to_table()

        t_lake = median_s(lambda: s3.read_arrow("bars", interval="1m"), repeats=5)
        t_pa = median_s(plain, repeats=5)
        print(row("read one session, 375k bars, from s3: Lake vs pyarrow", t_lake, t_pa, "(list + read, Arrow)"))
        t_pd = median_s(lambda: s3.read_bars(None, interval="1m"), repeats=5)
        print(row("read one session as pandas (Lake.read_bars) from s3", t_pd))

        def compaction(lake: Lake) -> float:
            times = []
            for _ in range(3):
                for k in range(30):
                    lake.append("bars", session.iloc[k * 1000:(k + 1) * 1000])
                t0 = time.perf_counter()
                lake.compact()
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        s3, local = _lakes(server, tmp, "compact")
        t_s3, t_local = compaction(s3), compaction(local)
        print(row("compact 30 files of 1000 bars: s3 vs local", t_s3, t_local))

        from mintel.config import Settings
        from mintel.ingest.backfill import run_backfill
        from mintel.analytics.scan import scan
        from mintel.universe import load_universe

        local = Lake(tmp / "daily", durable=False)
        u = load_universe("nifty500").iloc[:SCAN_SYMBOLS]
        run_backfill(Settings(lake=local.root, universe="nifty500"), local, u, providers=["sim"], interval="1d",
                     start=SCAN_START, progress=False)
        s3 = Lake(f"s3://{server.bucket()}/daily")
        pafs.copy_files(str(local.root), str(s3.root), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=server.filesystem())
        now = pd.Timestamp.now(tz="UTC")
        t_s3 = median_s(lambda: scan(s3, "1d", now=now), repeats=3)
        t_local = median_s(lambda: scan(local, "1d", now=now), repeats=3)
        bars = len(local.read_bars(None, interval="1d"))
        print(row(f"daily scan, {SCAN_SYMBOLS} symbols x 2 years ({bars} bars): s3 vs local", t_s3, t_local))
    finally:
        restore_env(old)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    main()
