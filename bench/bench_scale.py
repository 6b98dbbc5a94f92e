"""Scale benchmark: the scan on the local engine against a Dask LocalCluster of this machine.

    .venv/bin/python -m bench scale        (or: .venv/bin/python bench/bench_scale.py)

Data: the simulator's market for 5000 symbols, ~2 years of daily bars (500 sessions) and 20 sessions of
minute bars, written to a lake (built once into ``BENCH_SCALE_LAKE`` when set and kept there, else a
temporary directory). Figures, each the median of repeats:

- ``scan()`` on the local engine, and on a ``LocalCluster`` (2 worker processes x 1 thread, as the test
  suite's) at its address; the cluster's start-up is shown on its own line, as a long-lived cluster
  pays it once;
- how the Dask run splits: each lake partition in the window is read once on a worker and cut into
  the symbol groups' slices; then one task per group: tasks, bars per task (rows, MB in pandas),
  result bytes per task.

On one machine Dask is expected to be slower: the same cores do the same work, plus serialising the
pieces of partitions between processes, scheduling. On a cluster the analysis tasks are independent
(no shuffle; the only cross-symbol step is sorting the gathered rows), so they scale with workers
until the lake's read bandwidth is the limit.

Sizes: SCALE_SYMBOLS (5000), SCALE_DAYS (500), SCALE_SESSIONS (20), SCALE_REPEATS (3).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mintel.analytics.scan import scan
from mintel.lake import Lake
from mintel.providers.sim import SimClock, SimMarket

N_SYMBOLS = int(os.environ.get("SCALE_SYMBOLS", 5000))
N_DAYS = int(os.environ.get("SCALE_DAYS", 500))
N_SESSIONS = int(os.environ.get("SCALE_SESSIONS", 20))
REPEATS = int(os.environ.get("SCALE_REPEATS", 3))
NOW = pd.Timestamp("2026-12-01", tz="UTC")


def build(root: Path) -> Lake:
    """The lake: daily history, then the minute sessions one append each (as ingestion leaves them)."""
    lake = Lake(root, durable=False)
    marker = root / f".built-{N_SYMBOLS}-{N_DAYS}-{N_SESSIONS}"
    if marker.exists():
        return lake
    uni = pd.DataFrame({"symbol": [f"S{i:04d}" for i in range(N_SYMBOLS)],
                        "sector": [f"Sector{i % 12}" for i in range(N_SYMBOLS)]})
    m = SimMarket(uni, seed=42, clock=SimClock("NSE", "2026-10-01"))
    t = time.perf_counter()
    lake.append("bars", m.daily_history(N_DAYS), source="sim")
    print(f"{'build: daily bars':<52} {time.perf_counter() - t:9.1f} s  {N_SYMBOLS} x {N_DAYS}")
    t = time.perf_counter()
    for k in range(N_SESSIONS):
        s = m.clock.session(k)
        m.clock.advance(s.n)
        lake.append("bars", m.bars(start=pd.Timestamp(int(s.minutes[0]), tz="UTC")), source="sim")
    print(f"{'build: minute bars':<52} {time.perf_counter() - t:9.1f} s  {N_SYMBOLS} x {N_SESSIONS} sessions")
    marker.touch()
    return lake


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def line(name: str, seconds: float, extra: str = "") -> str:
    return f"{name:<52} {seconds:9.2f} s  {extra}".rstrip()


def main() -> None:
    from distributed import LocalCluster

    from mintel.engine import DaskEngine

    keep = os.environ.get("BENCH_SCALE_LAKE")
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="bench-scale-")
    root = Path(keep or tmp.name) / "lake"
    try:
        lake = build(root)
        t = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                DaskEngine(cluster.scheduler_address) as engine:
            engine.client.run(lambda: __import__("mintel.analytics.scan"))  # workers import mintel once, as a warm cluster has
            print(line("dask LocalCluster start (2 workers x 1 thread)", time.perf_counter() - t))
            for interval, label in (("1d", f"{N_SYMBOLS} x {N_DAYS} daily"), ("1m", f"{N_SYMBOLS} x {N_SESSIONS} sessions 1m")):
                local_s, local = timed(lambda: scan(lake, interval, now=NOW), REPEATS)
                dask_s, dask = timed(lambda: scan(lake, interval, now=NOW, engine=engine), REPEATS)
                pd.testing.assert_frame_equal(dask, local, check_exact=True)
                st = engine.stats  # of the last map: the analysis tasks
                print(line(f"scan local {label}", local_s, f"{len(local)} symbols"))
                print(line(f"scan dask  {label}", dask_s, f"x{dask_s / local_s:.2f} of local; identical rows and values"))
                rows, mb = sum(st.rows), [b / 2**20 for b in st.input_bytes]
                print(f"  {st.tasks} tasks, {rows / st.tasks:,.0f} bars ({statistics.median(mb):.1f} MB) read per task "
                      f"(min {min(mb):.1f}, max {max(mb):.1f}), results {statistics.median(st.result_bytes) / 1024:.0f} KB "
                      f"per task, {sum(st.input_bytes) / rows:.0f} bytes per bar, tasks {st.wall_s:.2f} s")
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
