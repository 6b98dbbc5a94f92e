"""Load soak: ingestion at 5000 symbols every 5 s on the simulator while scan reports run one after
another and three dashboard kernels refresh every 3 s, all on one lake (tests/reliability/load.py).

    .venv/bin/python -m bench load          (SOAK_LOAD_MINUTES=60 for the hour; default 10)

Prints reader errors (must be none), cycle p50/p95 from the metrics table, refresh p95, reports run,
and the ingest process's memory and the lake's file count over time (both should stay bounded).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from tests.reliability.load import run_load

    minutes = float(os.environ.get("SOAK_LOAD_MINUTES", "10"))
    symbols = int(os.environ.get("SOAK_LOAD_SYMBOLS", "5000"))
    with tempfile.TemporaryDirectory(prefix="mintel-load-") as tmp:
        r = run_load(Path(tmp) / "lake", symbols=symbols, interval_s=5.0, seconds=minutes * 60, kernels=3,
                     kernel_every_s=3.0, sample_every_s=60.0)
    print(f"load: {symbols} symbols every 5 s for {minutes:g} min, 3 dashboard kernels every 3 s, reports back to back")
    print(f"  cycles {r.cycles}: cycle p50 {r.cycle_p50_ms:.1f} ms, p95 {r.cycle_p95_ms:.1f} ms "
          f"(processing p95 {r.processing_p95_ms:.1f} ms)")
    print(f"  kernel refreshes {r.refreshes}, errors {len(r.refresh_errors)}, refresh p95 {r.refresh_p95_ms:.0f} ms")
    print(f"  reports ok {r.reports_ok}, failed {len(r.reports_failed)}")
    print("  t(min)  ingest RSS MiB  lake files")
    for t, rss, files in r.samples:
        print(f"  {t / 60:6.1f}  {rss:13.0f}  {files:10d}")
    for e in r.errors[:10]:
        print(f"  ERROR {e}")
    return len(r.errors)


if __name__ == "__main__":
    raise SystemExit(main())
