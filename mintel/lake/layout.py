"""Where the lake puts things: partition directories, file names and their write order.

Only `mintel.lake` builds lake paths. Layout (hive-style, readable by pyarrow.dataset, DuckDB,
Polars, Dask and Spark as it is)::

    bars/interval=1m/date=2026-11-24/part-<id>.parquet     intraday intervals: one partition a UTC day
    bars/interval=1d/year=2026/part-<id>.parquet           daily and longer: one partition a year
    indicators/interval=1d/year=2026/part-<id>.parquet     indicator history: partitioned as bars are
    quotes/date=2026-11-24/part-<id>.parquet               every other table: one partition a UTC day
    snapshot/latest.parquet                                replaced atomically

``<id>`` is a UUIDv7 (RFC 9562): time-ordered, so sorting file names sorts them in write order and
"last write wins" needs no extra column. A compacted file is named after the newest file it merged
(``part-<id>-c.parquet``) so that it stays older than anything appended while it was written.
Files are written as ``.part-….tmp`` (hidden from every reader) and renamed when complete; on an object
store they are sent whole as one object instead (mintel.lake.store). Paths are ``Path`` for a local lake,
``PurePosixPath("bucket/prefix/…")`` for an object store; every listing goes through the lake's store.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import pandas as pd

from mintel.lake.store import DROPPED, LocalStore

DAILY_INTERVALS = frozenset({"1d", "1wk", "1mo"})
INTERVAL_TABLES = frozenset({"bars", "indicators"})  # tables with an ``interval=`` level (and year partitions when daily)
INTERVAL_RE = re.compile(r"^[1-9][0-9]*(s|m|h|d|wk|mo)$")
FILE_RE = re.compile(r"^part-(?P<id>[0-9a-f]{32})(?P<compacted>-c)?\.parquet$")
LOCAL = LocalStore()  # the store of a Partition made without one
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

    path: PurePath
    table: str
    interval: str | None
    key: str  # "date" | "year" | "" (snapshot)
    value: str  # "2026-11-24" | "2026" | ""
    store: Any = field(default=LOCAL, compare=False, repr=False)

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

    def files(self) -> list[PurePath]:
        """Complete data files, oldest write first (none while retention drops the partition)."""
        return self.listing()[0]

    def listing(self) -> tuple[list[PurePath], set[str]]:
        """(``files()``, every name in the partition) from one listing."""
        _, names = self.store.listdir(self.path)
        if DROPPED in names:
            return [], set(names)
        return [self.path / n for n in sorted((n for n in names if FILE_RE.match(n)), key=file_sort_key)], set(names)

    def temporaries(self) -> list[PurePath]:
        """".part-….tmp" data files and "._compacting.json.….tmp" manifests a crash left behind (local)."""
        return self.store.temporaries(self.path)


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
    if table in INTERVAL_TABLES and interval in DAILY_INTERVALS:
        return "year"
    return "date"


def table_dir(root: PurePath, table: str, interval: str | None = None) -> PurePath:
    if table in INTERVAL_TABLES:
        return root / table / f"interval={check_interval(interval or '')}"
    return root / table


def partition_dir(root: PurePath, table: str, interval: str | None, value: str) -> PurePath:
    return table_dir(root, table, interval) / f"{partition_key(table, interval)}={value}"


def list_partitions(root: PurePath, table: str, interval: str | None = None, store=LOCAL) -> list[Partition]:
    """Partitions of a table (of one interval for ``INTERVAL_TABLES``), oldest first."""
    base = table_dir(root, table, interval)
    key = partition_key(table, interval)
    prefix = key + "="
    dirs, _ = store.listdir(base)
    entries = [n for n in dirs if n.startswith(prefix)]
    return [Partition(base / n, table, interval, key, n[len(prefix) :], store) for n in sorted(entries)]


def intervals(root: PurePath, table: str = "bars", store=LOCAL) -> list[str]:
    """The intervals an ``INTERVAL_TABLES`` table holds partitions of."""
    dirs, _ = store.listdir(root / table)
    return sorted(n.split("=", 1)[1] for n in dirs if n.startswith("interval="))
