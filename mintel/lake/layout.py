"""Where the lake puts things: partition directories, file names and their write order.

Only `mintel.lake` builds lake paths. Layout (hive-style, readable by pyarrow.dataset, DuckDB,
Polars, Dask and Spark as it is)::

    bars/interval=1m/date=2026-11-24/part-<id>.parquet     intraday intervals: one partition a UTC day
    bars/interval=1d/year=2026/part-<id>.parquet           daily and longer: one partition a year
    quotes/date=2026-11-24/part-<id>.parquet               every other table: one partition a UTC day
    snapshot/latest.parquet                                replaced atomically

``<id>`` is a UUIDv7 (RFC 9562): time-ordered, so sorting file names sorts them in write order and
"last write wins" needs no extra column. A compacted file is named after the newest file it merged
(``part-<id>-c.parquet``) so that it stays older than anything appended while it was written.
Files are written as ``.part-….tmp`` (hidden from every reader) and renamed when complete.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DAILY_INTERVALS = frozenset({"1d", "1wk", "1mo"})
INTERVAL_RE = re.compile(r"^[1-9][0-9]*(s|m|h|d|wk|mo)$")
FILE_RE = re.compile(r"^part-(?P<id>[0-9a-f]{32})(?P<compacted>-c)?\.parquet$")
TMP_PREFIX = ".part-"
TMP_SUFFIX = ".tmp"
SNAPSHOT_FILE = "latest.parquet"

_lock = threading.Lock()
_last = [0, 0]  # (unix ms, counter) of the last id made in this process


def new_file_id() -> str:
    """A UUIDv7 as 32 hex digits, strictly increasing within this process."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms, counter = _last[0], _last[1] + 1
            if counter >= 1 << 12:  # 4096 ids in one millisecond: borrow the next one
                ms, counter = ms + 1, 0
        else:
            counter = 0
        _last[0], _last[1] = ms, counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value).hex


@dataclass(frozen=True)
class Partition:
    """One leaf directory of a table, e.g. ``bars/interval=1m/date=2026-11-24``."""

    path: Path
    table: str
    interval: str | None
    key: str  # "date" | "year" | "" (snapshot)
    value: str  # "2026-11-24" | "2026" | ""

    @property
    def start(self) -> pd.Timestamp | None:
        """The first instant (UTC) the partition may hold."""
        if self.key == "date":
            return pd.Timestamp(self.value, tz="UTC")
        if self.key == "year":
            return pd.Timestamp(f"{self.value}-01-01", tz="UTC")
        return None

    @property
    def end(self) -> pd.Timestamp | None:
        """The first instant (UTC) after the partition."""
        s = self.start
        if s is None:
            return None
        return s + (pd.Timedelta(days=1) if self.key == "date" else pd.DateOffset(years=1))

    def files(self) -> list[Path]:
        """Complete data files, oldest write first."""
        try:
            names = [e.name for e in os.scandir(self.path) if e.is_file() and FILE_RE.match(e.name)]
        except FileNotFoundError:
            return []
        return [self.path / n for n in sorted(names, key=file_sort_key)]

    def temporaries(self) -> list[Path]:
        try:
            # ".part-….tmp" data files and "._compacting.json.….tmp" manifests a crash left behind
            return [Path(e.path) for e in os.scandir(self.path) if e.name.startswith(".") and e.name.endswith(TMP_SUFFIX)]
        except FileNotFoundError:
            return []


def file_sort_key(name: str) -> tuple[str, int]:
    m = FILE_RE.match(name)
    if m is None:
        return (name, 0)
    return (m.group("id"), 1 if m.group("compacted") else 0)


def check_interval(interval: str) -> str:
    from mintel.errors import DataError

    if not isinstance(interval, str) or not INTERVAL_RE.match(interval):
        raise DataError(f"{interval!r}: not an interval (examples: 1m, 5m, 1h, 1d)")
    return interval


def partition_key(table: str, interval: str | None) -> str:
    if table == "bars" and interval in DAILY_INTERVALS:
        return "year"
    return "date"


def table_dir(root: Path, table: str, interval: str | None = None) -> Path:
    if table == "bars":
        return root / "bars" / f"interval={check_interval(interval or '')}"
    return root / table


def partition_dir(root: Path, table: str, interval: str | None, value: str) -> Path:
    return table_dir(root, table, interval) / f"{partition_key(table, interval)}={value}"


def list_partitions(root: Path, table: str, interval: str | None = None) -> list[Partition]:
    """Partitions of a table (of one interval for bars), oldest first."""
    base = table_dir(root, table, interval)
    key = partition_key(table, interval)
    prefix = key + "="
    try:
        entries = [e.name for e in os.scandir(base) if e.is_dir() and e.name.startswith(prefix)]
    except FileNotFoundError:
        return []
    return [Partition(base / n, table, interval, key, n[len(prefix) :]) for n in sorted(entries)]


def bar_intervals(root: Path) -> list[str]:
    try:
        names = [e.name for e in os.scandir(root / "bars") if e.is_dir() and e.name.startswith("interval=")]
    except FileNotFoundError:
        return []
    return sorted(n.split("=", 1)[1] for n in names)


def tmp_path(directory: Path) -> Path:
    return directory / f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet{TMP_SUFFIX}"
