"""`mintel health` figures against what the service wrote."""

from __future__ import annotations

import asyncio
import json

import pandas as pd

from mintel.config import Settings
from mintel.ingest.service import build_service
from mintel.status import health
from mintel.universe import load_universe
from tests.conftest import run_mintel


def test_health_summarises_the_cycles_written(lake):
    u = load_universe("nifty50")
    svc = build_service(Settings(lake=lake.root, compact_every=0), lake, u)
    reports = asyncio.run(svc.run(cycles=5))
    h = health(lake)
    s = h.summary
    assert s["cycles"] == 5
    assert s["rows_written"] == sum(r.rows_written for r in reports) == 250  # one simulated minute per cycle
    assert s["symbols_in_snapshot"] == 50
    assert s["processing_ms_p95"] >= s["processing_ms_p50"] > 0
    assert s["lake_files"] == int(lake.stats()["files"].sum())
    newest = pd.Timestamp(s["newest_bar"])
    assert newest == lake.read_bars(interval="1m")["ts"].max()
    # an old window sees nothing
    assert health(lake, now=pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=2)).summary["cycles"] == 0


def test_health_command_json(lake):
    u = load_universe("nifty50")
    asyncio.run(build_service(Settings(lake=lake.root), lake, u).run(cycles=3))
    p = run_mintel("health", "--lake", lake.root, "--format", "json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert rows[0]["scope"] == "ingest" and rows[0]["cycles"] == 3
