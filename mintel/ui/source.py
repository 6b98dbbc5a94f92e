"""What the dashboards read, and whether it changed since the last look.

A ``Source`` wraps a ``Lake`` for the views: the snapshot with its age, recent opportunities and
alerts, metrics and bars. Reading is cheap when nothing changed: ``snapshot()`` re-reads the file
only when its identity (inode, size, mtime) moved, which is how a view that refreshes every few
seconds costs almost nothing between ingestion cycles.
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass

import pandas as pd

from mintel import schema
from mintel.lake import Lake

STALE_AFTER_S = 60.0  # the snapshot is called stale when its last write is older than this


@dataclass(frozen=True)
class Snapshot:
    frame: pd.DataFrame  # one row per symbol (mintel.schema.SNAPSHOT)
    version: tuple  # the file's identity; changes with every publish
    written_at: pd.Timestamp | None  # newest updated_at: when ingestion last wrote it
    bars_at: pd.Timestamp | None  # newest bar ts in it

    def age_s(self, now: pd.Timestamp | None = None) -> float | None:
        if self.written_at is None:
            return None
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        return max(0.0, (now - self.written_at).total_seconds())

    def stale(self, after_s: float = STALE_AFTER_S, now: pd.Timestamp | None = None) -> bool:
        age = self.age_s(now)
        return age is None or age > after_s


EMPTY_VERSION = ("missing",)


def find_lake() -> Path | str:
    """``MINTEL_LAKE``, else the ``lake`` of the settings (mintel.toml), found from the working
    directory or its parents: a notebook's kernel runs in ``notebooks/dashboards``, not the project.
    An object-store URL is returned as it is."""
    from mintel.lake.catalog import lake_location

    if os.environ.get("MINTEL_LAKE"):
        return lake_location(os.environ["MINTEL_LAKE"])
    from mintel.config import load_config

    lake = load_config().lake
    if isinstance(lake, str):
        return lake
    if lake.is_absolute():
        return lake
    here = Path.cwd()
    for base in (here, *here.parents[:3]):
        if (base / lake).is_dir():
            return base / lake
    return lake


class Source:
    """The lake as the dashboards see it (read-only)."""

    def __init__(self, lake: Lake | str | os.PathLike | None = None) -> None:
        self.lake = lake if isinstance(lake, Lake) else Lake(lake if lake is not None else find_lake())
        self._snap: Snapshot | None = None

    @property
    def snapshot_path(self):
        return self.lake.snapshot_path

    def snapshot_version(self) -> tuple:
        """What changes when the snapshot is replaced (local: inode, size, mtime; object store: size, mtime)."""
        return self.lake.store.version(self.snapshot_path) or EMPTY_VERSION

    def snapshot(self) -> Snapshot:
        """The latest snapshot; the cached one when the file has not changed."""
        version = self.snapshot_version()
        if self._snap is not None and self._snap.version == version:
            return self._snap
        frame = self.lake.snapshot()
        written = frame["updated_at"].max() if len(frame) else None
        bars_at = frame["ts"].max() if len(frame) else None
        self._snap = Snapshot(frame, self.snapshot_version() if version != EMPTY_VERSION else version,
                              None if pd.isna(written) else written, None if pd.isna(bars_at) else bars_at)
        return self._snap

    def files_version(self, kind: str, days: int = 1) -> tuple:
        """The identity of the last ``days`` partitions of ``kind`` (what ``opportunities(days)`` etc.
        read): their data files' names. A file is published once under a new name and never
        rewritten (appends and compactions add names), so this changes exactly when the data may
        have; it costs one directory listing per partition."""
        parts = self.lake.partitions(kind)[-days:] if days else self.lake.partitions(kind)
        return tuple((p.value, tuple(f.name for f in p.files())) for p in parts)

    def opportunities(self, days: int = 1) -> pd.DataFrame:
        """Opportunities of the last ``days`` partitions, newest first."""
        return self._recent("opportunities", days, "detected_at")

    def alerts(self, days: int = 1) -> pd.DataFrame:
        return self._recent("alerts", days, "ts")

    def metrics(self, minutes: float = 60.0) -> pd.DataFrame:
        start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=minutes)
        m = self.lake.read("metrics", start=start.floor("D"))
        return m[m["ts"] >= start].sort_values("ts").reset_index(drop=True)

    def bars(self, symbol: str, interval: str = "1m", lookback: str | None = None) -> pd.DataFrame:
        from mintel.analytics.scan import load_bars

        return load_bars(self.lake, interval, [symbol], lookback)

    def _recent(self, kind: str, days: int, order: str) -> pd.DataFrame:
        parts = self.lake.partitions(kind)[-days:] if days else self.lake.partitions(kind)
        if not parts:
            return schema.empty_frame(kind)
        frame = schema.to_pandas(self.lake.read_arrow(kind, partitions=parts))
        if order in frame and len(frame):
            frame = frame.sort_values([order, "ts"] if order != "ts" else ["ts"], ascending=False, kind="stable")
        return frame.reset_index(drop=True)

