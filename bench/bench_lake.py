"""Lake benchmarks, each beside plain pyarrow doing the same work in the same run.

    .venv/bin/python -m bench lake        (or: .venv/bin/python bench/bench_lake.py)

Figures: append throughput for 1000 symbols x 375 one-minute bars; reading one symbol across 30
daily partitions; ``latest`` for all symbols; the same reads over 75 small appends before and after
``compact()``. Goals (issue 1): append >= 1 M rows/s, one-symbol 30-day read < 30 ms, overhead <= 1.5x.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median_s, row
from mintel import schema
from mintel.lake import Lake
from mintel.lake.catalog import COMPRESSION, ROW_GROUP_ROWS

N_SYMBOLS = 1000
MINUTES = 375


def session_bars(day: pd.Timestamp, n_symbols: int = N_SYMBOLS, minutes: int = MINUTES, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    syms = np.array([f"SYM{i:04d}" for i in range(n_symbols)])
    ts = pd.date_range(day + pd.Timedelta(hours=3, minutes=45), periods=minutes, freq="1min", tz="UTC")
    n = n_symbols * minutes
    close = 100 * np.exp(rng.normal(0, 0.001, n).cumsum())
    return pd.DataFrame(
        {
            "interval": "1m",
            "symbol": np.repeat(syms, minutes),
            "ts": np.tile(ts, n_symbols),
            "open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
            "volume": rng.integers(1, 10_000, n).astype(float), "source": "bench", "quality": np.float32(1),
            "ingested_at": pd.Timestamp("2026-11-25", tz="UTC"),
        }
    )


def raw_write(df: pd.DataFrame, path: Path) -> None:
    """Reference: what any careful writer does: pandas -> Arrow in the schema, one Parquet file."""
    table = pa.Table.from_pandas(df, schema=schema.BARS, preserve_index=False)
    pq.write_table(table, path, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)


def raw_read(files: list[str], expr=None) -> pd.DataFrame:
    return ds.dataset(files, schema=schema.BARS, format="parquet").to_table(filter=expr).to_pandas()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mintel-bench-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path) -> None:
    day0 = pd.Timestamp("2026-10-01", tz="UTC")
    one = session_bars(day0)
    rows = len(one)
    print(f"append: {N_SYMBOLS} symbols x {MINUTES} one-minute bars = {rows:,} rows")

    k = [0]

    def ours_append():
        k[0] += 1
        Lake(tmp / f"a{k[0]}", durable=False).append("bars", one)

    def ref_append():
        k[0] += 1
        (tmp / f"r{k[0]}").mkdir()
        raw_write(one, tmp / f"r{k[0]}" / "part.parquet")

    t_ours = median_s(ours_append, repeats=5)
    t_ref = median_s(ref_append, repeats=5)
    print(row("append 375k rows (lake.append, no fsync)", t_ours, t_ref, f"{rows / t_ours / 1e6:.2f} M rows/s (pyarrow {rows / t_ref / 1e6:.2f})"))
    t_dur = median_s(lambda: (k.__setitem__(0, k[0] + 1), Lake(tmp / f"d{k[0]}").append("bars", one)), repeats=5)
    print(row("append 375k rows (lake.append, fsync)", t_dur, t_ref, f"{rows / t_dur / 1e6:.2f} M rows/s"))

    # 30 daily partitions of 1m bars, one compacted file each.
    lake = Lake(tmp / "lake30", durable=False)
    for d in range(30):
        lake.append("bars", session_bars(day0 + pd.Timedelta(days=d), seed=d))
    files = [str(f) for p in lake.partitions("bars", "1m") for f in p.files()]
    sym = "SYM0500"
    t_ours = median_s(lambda: lake.read_bars(sym, "1m"), repeats=7)
    t_ref = median_s(lambda: raw_read(files, pc.field("symbol") == sym), repeats=7)
    got = lake.read_bars(sym, "1m")
    assert len(got) == 30 * MINUTES
    print(row(f"read one symbol x 30 partitions ({len(got):,} rows)", t_ours, t_ref))

    t_ours = median_s(lambda: lake.latest("bars", interval="1m", lookback_partitions=1), repeats=5)

    def ref_latest():
        df = raw_read(files[-1:])
        return df.sort_values(["symbol", "ts"]).drop_duplicates("symbol", keep="last")

    t_ref = median_s(ref_latest, repeats=5)
    print(row(f"latest for all {N_SYMBOLS} symbols (newest partition)", t_ours, t_ref))

    # 75 small appends into one partition (one session, 5 minutes each), then compaction.
    small = Lake(tmp / "small", durable=False)
    day = session_bars(day0, seed=99)
    for i in range(75):
        small.append("bars", day[(day["ts"] >= day["ts"].min() + pd.Timedelta(minutes=5 * i)) & (day["ts"] < day["ts"].min() + pd.Timedelta(minutes=5 * i + 5))])
    for label in ("75 files", "compacted"):
        part_files = [str(f) for p in small.partitions("bars", "1m") for f in p.files()]
        t_ours = median_s(lambda: small.read_bars(sym, "1m"), repeats=7)
        t_ref = median_s(lambda: raw_read(part_files, pc.field("symbol") == sym), repeats=7)
        print(row(f"read one symbol, one session, {label}", t_ours, t_ref))
        t_ours = median_s(lambda: small.latest("bars", interval="1m"), repeats=5)

        def ref_latest_small():
            df = raw_read(part_files)
            return df.sort_values(["symbol", "ts"]).drop_duplicates("symbol", keep="last")

        t_ref = median_s(ref_latest_small, repeats=5)
        print(row(f"latest all symbols, one session, {label}", t_ours, t_ref))
        if label == "75 files":
            t = median_s(lambda: None, repeats=1)
            import time

            t0 = time.perf_counter()
            r = small.compact()
            print(row(f"compact {r.files_before} files -> {r.files_after} ({r.rows_after:,} rows)", time.perf_counter() - t0))


if __name__ == "__main__":
    main()
