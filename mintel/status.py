"""What the operator sees: provider health, ingestion rate and cycle times, data age, lake size.

Read-only: everything comes from the lake's metrics table, snapshot and files, so `mintel health`
and the health dashboard work from any process while the ingestion service writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mintel.lake import Lake

PROVIDER_COLUMNS = [
    "name", "state", "capacity_per_min", "used_per_min", "requests", "errors", "rate_limited", "error_rate",
    "latency_ms_p50", "latency_ms_p95", "ts",
]


@dataclass
class Health:
    providers: pd.DataFrame  # latest figures per provider
    cycles: pd.DataFrame  # recent cycles (ts, cycle, rows_written, processing_ms, cycle_ms, ...)
    summary: dict  # headline figures

    def records(self) -> list[dict]:
        """One flat list for --format json/csv: the summary row, then one row per provider."""
        rows = [{"scope": "ingest", **self.summary}]
        rows += [{"scope": "provider", **r} for r in self.providers.to_dict("records")]
        return rows


def health(lake: Lake, *, window_minutes: float = 15.0, now: pd.Timestamp | None = None) -> Health:
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    start = now - pd.Timedelta(minutes=window_minutes)
    metrics = lake.read("metrics", start=start.floor("D"))
    recent = metrics[metrics["ts"] >= start]
    cycles = recent[recent["scope"] == "cycle"].sort_values("ts")
    prov = recent[recent["scope"] == "provider"].sort_values("ts")
    providers = prov.groupby("name", sort=True).tail(1)[PROVIDER_COLUMNS].reset_index(drop=True) if len(prov) else pd.DataFrame(columns=PROVIDER_COLUMNS)

    snap = lake.snapshot()
    stats = lake.stats()
    span_s = (cycles["ts"].max() - cycles["ts"].min()).total_seconds() if len(cycles) > 1 else np.nan
    rows = float(cycles["rows_written"].sum()) if len(cycles) else 0.0

    def pct(col: str, q: float) -> float | None:
        v = cycles[col].dropna()
        return float(np.percentile(v, q)) if len(v) else None

    last_bar = snap["ts"].max() if len(snap) else None
    summary = {
        "window_minutes": window_minutes,
        "cycles": int(len(cycles)),
        "last_cycle_at": cycles["ts"].max().isoformat() if len(cycles) else None,
        "rows_written": int(rows),
        "rows_quarantined": int(cycles["rows_quarantined"].sum()) if len(cycles) else 0,
        "rows_per_s": rows / span_s if span_s and span_s > 0 else None,
        "processing_ms_p50": pct("processing_ms", 50),
        "processing_ms_p95": pct("processing_ms", 95),
        "cycle_ms_p95": pct("cycle_ms", 95),
        "symbols_in_snapshot": int(len(snap)),
        "newest_bar": last_bar.isoformat() if last_bar is not None and not pd.isna(last_bar) else None,
        "snapshot_age_s": (now - snap["updated_at"].max()).total_seconds() if len(snap) else None,
        "lake_files": int(stats["files"].sum()) if len(stats) else 0,
        "lake_bytes": int(stats["bytes"].sum()) if len(stats) else 0,
    }
    return Health(providers=providers, cycles=cycles.reset_index(drop=True), summary=summary)
