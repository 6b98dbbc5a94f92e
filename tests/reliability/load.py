"""Load harness: ingestion on the simulator while reports run and dashboard kernels refresh.

Every part is a real process on one lake: `mintel ingest` (the only writer), `mintel report` runs
one after another, and N "kernels", each a Python process running a dashboard view's refresh the way
its Voilà kernel does (`view.auto.step()` every few seconds). Readers record every error; the harness
samples the ingest process's memory and the lake's file count as it goes, and reads cycle times from
the lake's metrics. Used by tests/reliability/test_load.py (short) and bench/bench_load.py (soak).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SECTORS = ["Financial Services", "Information Technology", "Healthcare", "Capital Goods", "Chemicals",
           "Automobile and Auto Components", "Fast Moving Consumer Goods", "Metals & Mining", "Power",
           "Oil Gas & Consumable Fuels", "Consumer Services", "Realty"]

KERNEL = """
import json, sys, time
from mintel.ui.{module} import {cls}
view = {cls}(live=False)
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    t = time.perf_counter()
    view.auto.step()
    print(json.dumps({{"ok": view.error is None, "error": view.error, "ms": (time.perf_counter() - t) * 1e3}}), flush=True)
    time.sleep({every})
"""
VIEWS = [("scanner", "ScannerView"), ("overview", "OverviewView"), ("opportunities", "OpportunitiesView"),
         ("health", "HealthView")]


def universe_csv(path: Path, n: int) -> Path:
    pd.DataFrame({"symbol": [f"S{i:04d}" for i in range(n)], "name": [f"Sim {i}" for i in range(n)],
                  "sector": [SECTORS[i % len(SECTORS)] for i in range(n)], "exchange": "NSE"}).to_csv(path, index=False)
    return path


def count_files(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.parquet"))


@dataclass
class LoadResult:
    seconds: float
    cycles: int = 0
    cycle_p50_ms: float = float("nan")
    cycle_p95_ms: float = float("nan")
    processing_p95_ms: float = float("nan")
    refreshes: int = 0
    refresh_errors: list[str] = field(default_factory=list)
    refresh_p95_ms: float = float("nan")
    reports_ok: int = 0
    reports_failed: list[str] = field(default_factory=list)
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t s, ingest RSS MiB, lake files)
    ingest_rc: int | None = None

    @property
    def errors(self) -> list[str]:
        return self.refresh_errors + self.reports_failed + ([] if self.ingest_rc in (0, None) else [f"ingest rc {self.ingest_rc}"])


def run_load(lake: Path, *, symbols: int, interval_s: float, seconds: float, kernels: int = 3,
             kernel_every_s: float = 3.0, reports: bool = True, sample_every_s: float = 5.0,
             compact_every: int = 30) -> LoadResult:
    import psutil

    lake = Path(lake)
    lake.parent.mkdir(parents=True, exist_ok=True)
    csv = universe_csv(lake.parent / "load-universe.csv", symbols)
    env = {**os.environ, "MINTEL_LAKE": str(lake), "MINTEL_COMPACT_EVERY": str(compact_every),
           "MINTEL_ALERT_SINKS": "file"}
    speed = 60.0 / interval_s  # one simulated minute (one bar) per cycle
    ingest = subprocess.Popen(
        [sys.executable, "-m", "mintel", "ingest", "--universe", str(csv), "--interval-s", str(interval_s),
         "--speed", str(speed)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    result = LoadResult(seconds=seconds)
    t0 = time.monotonic()
    snapshot = lake / "snapshot" / "latest.parquet"
    while not snapshot.exists():  # readers start once there is something to read
        if ingest.poll() is not None or time.monotonic() - t0 > 120:
            raise RuntimeError(f"ingest did not start: {ingest.stderr.read()[-2000:]}")
        time.sleep(0.2)
    views = []
    for i in range(kernels):
        module, cls = VIEWS[i % len(VIEWS)]
        code = KERNEL.format(module=module, cls=cls, seconds=seconds, every=kernel_every_s)
        views.append(subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    report_dir = lake.parent / "reports"
    report = None
    proc = psutil.Process(ingest.pid)
    start = time.monotonic()
    next_sample = start
    try:
        while time.monotonic() - start < seconds:
            now = time.monotonic()
            if now >= next_sample:
                result.samples.append((now - start, proc.memory_info().rss / 2**20, count_files(lake)))
                next_sample += sample_every_s
            if reports and (report is None or report.poll() is not None):
                if report is not None:
                    _collect_report(report, result)
                report = subprocess.Popen(
                    [sys.executable, "-m", "mintel", "report", "--out", str(report_dir), "-p", "interval", "1m",
                     "--no-progress"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if ingest.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        if report is not None:
            report.wait(300)
            _collect_report(report, result)
        ingest.send_signal(signal.SIGTERM)
        try:
            result.ingest_rc = ingest.wait(60)
        except subprocess.TimeoutExpired:
            ingest.kill()
            result.ingest_rc = ingest.wait()
        for v in views:
            out, err = v.communicate(timeout=120)
            lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
            result.refreshes += len(lines)
            result.refresh_errors += [ln["error"] for ln in lines if not ln["ok"]]
            if v.returncode != 0:
                result.refresh_errors.append(f"kernel exited {v.returncode}: {err.strip().splitlines()[-1:]}")
            ms = [ln["ms"] for ln in lines]
            if ms:
                result.refresh_p95_ms = max(np.nan_to_num(result.refresh_p95_ms), float(np.percentile(ms, 95)))
    from mintel.lake import Lake

    m = Lake(lake).read("metrics")
    cyc = m[(m["scope"] == "cycle") & (m["rows_written"] > 0)]
    result.cycles = len(cyc)
    if len(cyc):
        result.cycle_p50_ms = float(np.percentile(cyc["cycle_ms"], 50))
        result.cycle_p95_ms = float(np.percentile(cyc["cycle_ms"], 95))
        result.processing_p95_ms = float(np.percentile(cyc["processing_ms"], 95))
    result.samples.append((time.monotonic() - start, float("nan"), count_files(lake)))
    return result


def _collect_report(p: subprocess.Popen, result: LoadResult) -> None:
    out, err = p.communicate()
    if p.returncode == 0:
        result.reports_ok += 1
    else:
        result.reports_failed.append(f"report rc {p.returncode}: {(err.strip().splitlines() or [''])[-1][:300]}")
