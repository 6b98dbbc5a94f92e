"""Dashboard benchmarks: a rendered scanner in a real browser, refresh cost in the kernel, memory.

    .venv/bin/python -m bench dashboard     (needs /usr/bin/chromium; never `playwright install`)

A lake of 1000 symbols (the first 1000 of the bundled us1500 list) is ingested from the simulator
through the real service. Figures:

- request to rendered scanner: Playwright opens the scanner served by a real Voilà on 127.0.0.1 and
  waits until the grid's rows are in the DOM (a fresh kernel each time; median of repeats; goal < 5 s);
- refresh cost in the kernel per cycle: a new snapshot is published, then ``view.refresh()``
  (stat, read, filter, sort, render) for 1000 rows, with the default page (100 rows) and all rows
  (goal < 300 ms);
- memory of one dashboard kernel over an hour of refreshes: 1200 refreshes (one every 3 s), each
  with a new snapshot, RSS sampled along the way (goal: flat).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mintel.config import Settings
from mintel.ingest.service import build_service
from mintel.lake import Lake
from mintel.universe import load_universe

N_SYMBOLS = 1000
CHROMIUM = "/usr/bin/chromium"


def build_lake(root: Path, n: int = N_SYMBOLS, cycles: int = 60) -> Lake:
    csv = root.parent / "universe.csv"
    load_universe("us1500").head(n).to_csv(csv, index=False)
    lake = Lake(root, durable=False)
    settings = Settings(lake=lake.root, universe=str(csv), interval_s=0, seed=5)
    asyncio.run(build_service(settings, lake, load_universe(csv)).run(cycles=cycles))
    return lake


def republish(lake: Lake, snap: pd.DataFrame, i: int) -> None:
    """A new snapshot as ingestion would publish it: prices moved, a new updated_at."""
    lake.write_snapshot(snap.assign(price=snap["price"] * (1 + 0.0001 * (i % 7)), updated_at=pd.Timestamp.now(tz="UTC")))


def refresh_cost(lake: Lake, page_size: int, repeats: int = 40) -> tuple[float, float]:
    from mintel.ui.scanner import ScannerState, ScannerView

    view = ScannerView(lake, live=False, state=ScannerState(page_size=page_size))
    snap = lake.snapshot()
    times = []
    for i in range(repeats):
        republish(lake, snap, i)
        t = time.perf_counter()
        assert view.refresh()
        times.append(time.perf_counter() - t)
    view.close()
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def memory_over_an_hour(lake: Lake, refreshes: int = 1200, view_class=None) -> list[tuple[int, float]]:
    import psutil

    from mintel.ui.scanner import ScannerView

    proc = psutil.Process()
    view = (view_class or ScannerView)(lake, live=False)
    snap = lake.snapshot()
    samples = []
    for i in range(refreshes + 1):
        if i % 300 == 0:
            gc.collect()
            samples.append((i, proc.memory_info().rss / 2**20))
        republish(lake, snap, i)
        view.auto.step()  # what the live loop does every tick
    view.close()
    return samples


def render_time(lake: Lake, repeats: int = 5, preheat: bool = False) -> list[float]:
    from playwright.sync_api import sync_playwright

    from mintel.ui.serve import DashboardServer

    server = DashboardServer(lake=lake.root, port=0, preheat=preheat)
    server.start()
    times = []
    try:
        server.wait_ready(90)
        time.sleep(20 if preheat else 0)  # the pool renders every dashboard ahead
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                       "--disable-dev-shm-usage"])
            for _ in range(repeats + 1):  # the first warms the OS caches
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                t = time.perf_counter()
                page.goto(server.url("scanner"))
                page.wait_for_selector("#scanner-grid tbody tr", timeout=60_000)
                times.append(time.perf_counter() - t)
                page.close()
                time.sleep(10.0 if preheat else 1.0)  # the closed page's kernel shuts down; the pool refills
            browser.close()
    finally:
        server.stop()
    return times[1:]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        lake = build_lake(Path(tmp) / "lake")
        print(f"lake: {len(lake.snapshot())} symbols in {time.perf_counter() - t:.1f} s")
        for size, label in ((100, "page of 100"), (0, "all rows")):
            med, p95 = refresh_cost(lake, size)
            print(f"scanner refresh, 1000 symbols, {label:<12} median {med * 1e3:7.1f} ms  p95 {p95 * 1e3:7.1f} ms  (goal < 300 ms)")
        from mintel.ui.overview import OverviewView
        from mintel.ui.scanner import ScannerView

        for cls in (ScannerView, OverviewView):  # one process each would be cleaner; growth is what counts
            samples = memory_over_an_hour(lake, view_class=cls)
            print(f"{cls.__name__} kernel RSS over 1200 refreshes (an hour at 3 s): "
                  + ", ".join(f"{i}: {m:.0f} MiB" for i, m in samples)
                  + f"  (growth {samples[-1][1] - samples[1][1]:+.1f} MiB after the first 300)")
        if Path(CHROMIUM).exists():
            for preheat in (False, True):
                times = render_time(lake, preheat=preheat)
                print(f"request to rendered scanner (Voilà + Chromium, 1000 symbols{', --preheat' if preheat else ''}): "
                      f"median {statistics.median(times):.2f} s of {', '.join(f'{x:.2f}' for x in times)}  (goal < 5 s)")
        else:
            print(f"request to rendered scanner: skipped, {CHROMIUM} missing")


if __name__ == "__main__":
    main()
