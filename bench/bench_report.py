"""Report benchmark: a scan report for 1000 symbols, papermill run plus HTML export and index update.

    .venv/bin/python -m bench report

The lake: the first 1000 symbols of the bundled us1500 list ingested from the simulator through the
real service (``bench_dashboard.build_lake``) plus a year of daily bars backfilled from it, which the
report reads. Figure: wall time of ``run_report("scan_report")`` (a fresh kernel each time: start,
read 1000 x ~285 bars, indicators, detectors, scoring, breadth, volume, 8 figures, export of the
executed notebook to self-contained HTML), median of 3 runs after one warm-up (goal < 30 s).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_dashboard import N_SYMBOLS, build_lake
from mintel.config import Settings
from mintel.ingest.backfill import run_backfill
from mintel.universe import load_universe

REPEATS = 3


def build_report_lake(root: Path):
    lake = build_lake(root, N_SYMBOLS, cycles=5)
    csv = root.parent / "universe.csv"
    settings = Settings(lake=lake.root, universe=str(csv), interval_s=0, seed=5)
    run_backfill(settings, lake, load_universe(csv), providers=["sim"], interval="1d",
                 start=_days_ago(400), progress=False)
    return lake


def _days_ago(days: int) -> str:
    import pandas as pd

    return (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=days)).strftime("%Y-%m-%d")


def main() -> None:
    from mintel.reports import run_report

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        lake = build_report_lake(Path(tmp) / "lake")
        bars = lake.read_bars(interval="1d")
        print(f"lake: {bars['symbol'].nunique()} symbols, {len(bars):,} daily bars in {time.perf_counter() - t:.1f} s")
        out = Path(tmp) / "reports"
        times, result = [], None
        for i in range(REPEATS + 1):  # the first warms the OS caches and imports
            t = time.perf_counter()
            result = run_report("scan_report", out, lake=lake.root, progress=False)
            times.append(time.perf_counter() - t)
        size = result.html_path.stat().st_size / 2**20
        print(f"scan report, {result.headline.get('symbols')} symbols, run + HTML export + index: median "
              f"{statistics.median(times[1:]):.1f} s of {', '.join(f'{x:.1f}' for x in times[1:])} "
              f"(warm-up {times[0]:.1f} s; HTML {size:.1f} MiB)  (goal < 30 s)")


if __name__ == "__main__":
    main()
