"""Memory of the ingest process over several simulated sessions: flat once warm?

    .venv/bin/python -m bench memory        (MEM_SYMBOLS=5000, MEM_CYCLES=1200, MEM_EVERY=100)

The ingestion service runs in this process on the simulator, cycles back to back (a stepped clock:
one simulated minute a cycle, ~375 a session), writing a real lake with compaction on its background
thread and alerts to a file, as `mintel ingest` does. Every MEM_EVERY cycles it prints the RSS, the
bytes the Arrow pool holds, and the state whose pages become resident as a session's minutes are
first written: the intraday volume history (20 sessions of every (symbol, minute of day)), the
detectors' window and the simulator's sessions. All are bounded by the session length, so RSS should
rise through the first session or two and then stay flat; the bench reports a problem when the last
sample is more than 15% above the one after the second session. The Arrow pool is the one `mintel
ingest` sets (the system allocator; pyarrow's default mimalloc kept growing: see cli._long_running_memory_pool).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SESSION = 375  # NSE minutes: the simulator's universe is NSE


def main() -> int:
    import psutil
    import pyarrow as pa

    from mintel.config import load_config
    from mintel.ingest.service import build_service
    from mintel.lake import Lake
    from mintel.universe import load_universe
    from tests.reliability.load import universe_csv

    from mintel.cli import _long_running_memory_pool

    _long_running_memory_pool()  # as `mintel ingest` does (ARROW_DEFAULT_MEMORY_POOL=mimalloc: pyarrow's default)
    n = int(os.environ.get("MEM_SYMBOLS", "5000"))
    cycles = int(os.environ.get("MEM_CYCLES", "1200"))
    every = int(os.environ.get("MEM_EVERY", "100"))
    proc = psutil.Process()
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="mintel-memory-") as tmp:
        csv = universe_csv(Path(tmp) / "universe.csv", n)
        env = {**os.environ, "MINTEL_LAKE": str(Path(tmp) / "lake"), "MINTEL_COMPACT_EVERY": "30", "MINTEL_ALERT_SINKS": "file"}
        settings = load_config(None, env=env).with_overrides(universe=str(csv), interval_s=0.0, always_on=True)
        svc = build_service(settings, Lake(settings.lake), load_universe(settings.universe))
        print(f"memory: {n} symbols, {cycles} cycles back to back (~{cycles / SESSION:.1f} sessions), RSS every {every}, "
              f"Arrow pool {pa.default_memory_pool().backend_name}")
        print("   cycle   RSS MiB  arrow MiB  volume history MiB  window MiB  sim sessions MiB")

        async def run() -> None:
            for k in range(1, cycles + 1):
                await svc.cycle()
                if k % every == 0:
                    gc.collect()
                    rss = proc.memory_info().rss / 2**20
                    samples.append((k, rss))
                    ind = svc.engine.state.indicators
                    market = getattr(svc.provider, "market", None)
                    sim = sum(a.nbytes for s in (getattr(market, "_cur", None), getattr(market, "_prev", None)) if s is not None
                              for a in (s.high, s.low, s.close, s.volume))
                    print(f"  {k:6d}  {rss:8.0f}  {pa.total_allocated_bytes() / 2**20:9.0f}  "
                          f"{(ind._slot_volume.nbytes + ind._slot_count.nbytes) / 2**20:18.0f}  "
                          f"{svc.engine.window._data.nbytes / 2**20:10.0f}  {sim / 2**20:16.0f}", flush=True)
            if svc.compactor is not None:
                svc.compactor.wait()

        asyncio.run(run())
    warm = [rss for k, rss in samples if k >= 2 * SESSION]
    if len(warm) < 2:
        print("  (fewer than two samples after the second session: no verdict)")
        return 0
    growth = warm[-1] / warm[0] - 1
    after = [k for k, _ in samples if k >= 2 * SESSION]
    print(f"  after the second session: {warm[0]:.0f} -> {warm[-1]:.0f} MiB ({growth:+.1%}) over cycles {after[0]}..{after[-1]}")
    return int(growth > 0.15)


if __name__ == "__main__":
    raise SystemExit(main())
