"""End-to-end ingestion cycle: payload in hand -> validate -> lake -> indicators -> opportunities -> snapshot.

    .venv/bin/python -m bench cycle

The simulator stands in for the network (its fetch is timed separately), so the figures are the
processing cost per cycle. The service first warms up on one session, then p50/p95 over the next
cycles. Compaction runs on the service's background thread; its passes are timed there. Goals: p95 < 50 ms for 1000 symbols (issues 2 and 3).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mintel.config import Settings
from mintel.ingest.service import IngestService
from mintel.lake import Lake
from mintel.providers.sim import SimClock, SimProvider
from mintel.universe import load_universe


def universe(n: int):
    import pandas as pd

    base = load_universe("us1500")
    if n <= len(base):
        return base.head(n).reset_index(drop=True)
    extra = pd.DataFrame({"symbol": [f"X{i:05d}" for i in range(n - len(base))], "name": "", "sector": "Synthetic", "industry": "", "exchange": "NYSE"})
    return pd.concat([base, extra], ignore_index=True)


def run(n: int, warm: int = 60, cycles: int = 120) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mintel-cycle-"))
    try:
        u = universe(n)
        lake = Lake(tmp / "lake")
        settings = Settings(lake=lake.root, compact_every=30)
        clock = SimClock("NYSE", start="2026-11-23", mode="stepped")
        svc = IngestService(settings, lake, SimProvider(universe=u, clock=clock), u, clock=clock)
        asyncio.run(svc.run(cycles=warm))
        reports = asyncio.run(svc.run(cycles=cycles))
        proc = np.array([r.processing_ms for r in reports])
        fetch = np.array([r.fetch_ms for r in reports])
        total = np.array([r.cycle_ms for r in reports])
        passes = np.array(svc.compactor.passes) if svc.compactor is not None else np.zeros(0)
        print(
            f"{n:>5} symbols, {cycles} cycles: processing p50 {np.median(proc):6.1f} ms"
            f"  p95 {np.percentile(proc, 95):6.1f} ms | sim fetch p50 {np.median(fetch):5.1f} ms"
            f" | whole cycle p95 {np.percentile(total, 95):6.1f} max {total.max():6.1f} ms"
            f" | compaction (every 30 cycles, background thread) median {np.median(passes) if len(passes) else float('nan'):6.1f} ms"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    for n in (1000, 5000):
        run(n)


if __name__ == "__main__":
    main()
