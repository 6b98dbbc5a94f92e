"""History benchmark: the indicator backfill (``mintel indicators-backfill``) on the local engine against a
Dask LocalCluster of this machine.

    .venv/bin/python -m bench history        (or: .venv/bin/python bench/bench_history.py)

Data: the simulator's market for HISTORY_SYMBOLS symbols (1000) and HISTORY_DAYS daily bars each (1250:
~5 years), written to a lake once (into ``BENCH_HISTORY_LAKE`` when set and kept there, else a temporary
directory) and copied, so each engine writes its own ``indicators`` table. Figures, each the median of
HISTORY_REPEATS (3) runs (a re-run replaces the rows it wrote, so every run does the same work):

- ``backfill_indicators`` over the whole daily history on the local engine (in this process, in chunks
  of symbols), and on a ``LocalCluster`` (2 worker processes x 1 thread, as the test suite's) where each
  task reads its symbols' bars, computes the indicators AND appends them to the lake on its worker;
- how the Dask run splits: tasks, bars read per task (rows, MB in pandas), bytes each task returns to the
  client (counts only: no rows are gathered), files written;
- that both engines stored the same rows and values.

On one machine Dask is expected to be slower (the same cores, plus moving the partitions' slices between
processes). On a cluster the tasks are independent reads, computations and writes, so the backfill scales
with workers until the lake's read and write bandwidth is the limit.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_scale import line, timed
from mintel.analytics.history import backfill_indicators
from mintel.lake import Lake
from mintel.providers.sim import SimClock, SimMarket

N_SYMBOLS = int(os.environ.get("HISTORY_SYMBOLS", 1000))
N_DAYS = int(os.environ.get("HISTORY_DAYS", 1250))
REPEATS = int(os.environ.get("HISTORY_REPEATS", 3))


def build(root: Path) -> Lake:
    """The bars: ``N_DAYS`` daily bars of ``N_SYMBOLS`` symbols, one append (as a backfill leaves them)."""
    lake = Lake(root, durable=False)
    marker = root / f".built-{N_SYMBOLS}-{N_DAYS}"
    if marker.exists():
        return lake
    uni = pd.DataFrame({"symbol": [f"S{i:04d}" for i in range(N_SYMBOLS)],
                        "sector": [f"Sector{i % 12}" for i in range(N_SYMBOLS)]})
    m = SimMarket(uni, seed=42, clock=SimClock("NSE", "2026-10-01"))
    t = time.perf_counter()
    lake.append("bars", m.daily_history(N_DAYS), source="sim")
    print(f"{'build: daily bars':<52} {time.perf_counter() - t:9.1f} s  {N_SYMBOLS} x {N_DAYS}")
    marker.touch()
    return lake


def copy(lake: Lake, root: Path) -> Lake:
    """The lake's bars only, in a lake of their own at ``root``."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(lake.root / "bars", root / "bars")
    return Lake(root, durable=False)


def main() -> None:
    from distributed import LocalCluster

    from mintel.engine import DaskEngine

    keep = os.environ.get("BENCH_HISTORY_LAKE")
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="bench-history-")
    base = Path(keep or tmp.name)
    try:
        bars = build(base / "lake")
        here, there = copy(bars, base / "local"), copy(bars, base / "dask")
        t = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                DaskEngine(cluster.scheduler_address) as engine:
            engine.client.run(lambda: __import__("mintel.analytics.history"))  # workers import mintel once, as a warm cluster has
            print(line("dask LocalCluster start (2 workers x 1 thread)", time.perf_counter() - t))
            label = f"{N_SYMBOLS} x {N_DAYS} daily"
            local_s, local = timed(lambda: backfill_indicators(here, "1d"), REPEATS)
            dask_s, dask = timed(lambda: backfill_indicators(there, "1d", engine=engine), REPEATS)
            st = engine.stats  # of the last run
            print(line(f"indicator backfill local {label}", local_s,
                       f"{local.rows:,} rows, {local.rows / local_s:,.0f} rows/s, {local.files} files"))
            print(line(f"indicator backfill dask  {label}", dask_s,
                       f"x{dask_s / local_s:.2f} of local, {dask.files} files"))
            mb = [b / 2**20 for b in st.input_bytes]
            print(f"  {st.tasks} tasks, {sum(st.rows) / st.tasks:,.0f} bars ({statistics.median(mb):.1f} MB) read per task "
                  f"(min {min(mb):.1f}, max {max(mb):.1f}), {statistics.median(st.result_bytes):.0f} bytes returned "
                  f"per task, tasks {st.wall_s:.2f} s")
            a, b = (x.read("indicators", interval="1d").drop(columns="computed_at") for x in (here, there))
            pd.testing.assert_frame_equal(b, a, check_exact=True)
            print(f"  identical rows and values ({len(a):,} rows, {a['symbol'].nunique()} symbols)")
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
