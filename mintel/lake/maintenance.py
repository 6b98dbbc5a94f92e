"""Compaction, retention and statistics of a `Lake`; safe while readers run.

Compaction of a partition, crash-safe at every step:

1. write ``_compacting.json`` naming the inputs and the output (atomic);
2. write the merged, de-duplicated, sorted file under a temporary name and rename it to the output;
3. delete the inputs, then the manifest.

While the manifest and the output both exist, readers skip the inputs, so no row is seen twice and
none is missed. A crash before step 2 leaves the inputs; after it, the next ``compact`` (or any
reader) finishes the job. An output that is itself an input (``superseded``) hides nothing.
Crash points for the crash-safety suite: mintel/lake/faults.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from mintel.errors import LakeError
from mintel.lake import faults, layout
from mintel.lake.catalog import MANIFEST, Lake, _timestamp, superseded
from mintel.lake.layout import Partition

log = logging.getLogger(__name__)

INTRADAY_DAYS = 30
TIER_FAN_IN = 8  # tiered compaction: compacted files a partition being written may hold
STALE_TMP_S = 600

# Days a partition is kept after it ends; None keeps it forever. Keys: "bars:<interval>",
# "bars:intraday", "bars:daily" (the same for "indicators:…") or a table name. The first key that matches wins.
DEFAULT_RETENTION: dict[str, int | None] = {
    "bars:intraday": INTRADAY_DAYS,
    "bars:daily": None,
    "indicators:intraday": INTRADAY_DAYS,  # no longer than the bars they are computed from
    "indicators:daily": None,
    "quotes": 7,
    "metrics": 90,
    "quarantine": 90,
    "runs": 365,
    "alerts": None,
    "opportunities": None,
}


@dataclass
class CompactResult:
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows_before: int = 0
    rows_after: int = 0
    details: list[dict] = field(default_factory=list)

    @property
    def duplicates_dropped(self) -> int:
        return self.rows_before - self.rows_after


def compact(lake: Lake, *, kind: str | None = None, interval: str | None = None, min_files: int = 2,
            tiered: bool = False, written_by: str | None = None) -> CompactResult:
    """Merge the files of each partition that has ``min_files`` or more into one sorted file.

    ``tiered``: in each table's newest partition (the one being written) merge only the files written
    since its last compacted file, so the cost follows what was appended, not the partition's size,
    until it holds ``TIER_FAN_IN`` compacted files (then it is merged whole); older partitions are
    merged whole as usual (once, when they stop being written). Readers
    de-duplicate across the files, so the result reads the same; the key is unique in every file and,
    once the partition is merged whole, in the partition.

    ``written_by``: a file id (``layout.new_file_id()``) taken when the pass was decided; only files
    written up to then are merged, so a pass run beside the writer (``BackgroundCompactor``) merges what
    was there when it was asked for, and files appended meanwhile wait for the next pass.
    """
    result = CompactResult()
    targets = [(kind, interval)] if kind is not None else lake.tables()
    if kind in (None, "snapshot"):  # a snapshot replace cut short leaves its temporary beside latest.parquet
        finish_interrupted(Partition(lake.root / "snapshot", "snapshot", None, "", "", lake.store))
    for table_name, iv in targets:
        if table_name == "snapshot":
            continue
        parts = lake.partitions(table_name, iv)
        for part in parts:
            finish_interrupted(part)
            files = part.files()
            if written_by is not None:
                files = [f for f in files if layout.FILE_RE.match(f.name).group("id") <= written_by]
            if tiered and part is parts[-1]:
                since = _since_last_compacted(files)
                if len(files) - len(since) < TIER_FAN_IN:  # else: merged whole, bounding the file count
                    files = since
            if len(files) < min_files:
                continue
            before, after = _compact_partition(lake, part, files)
            result.partitions += 1
            result.files_before += len(files)
            result.files_after += 1
            result.rows_before += before
            result.rows_after += after
            result.details.append({"partition": str(part.path.relative_to(lake.root)), "files": len(files),
                                   "rows_before": before, "rows_after": after})
    if result.partitions:
        log.info(
            "compacted %d partitions: %d -> %d files, %d -> %d rows",
            result.partitions, result.files_before, result.files_after, result.rows_before, result.rows_after,
        )
    return result


class BackgroundCompactor:
    """Compaction passes on a worker thread, off the writer's path, one at a time.

    The single writer keeps appending while a pass runs; the manifest protocol is what makes that safe
    (readers, in any process, hide a pass's inputs behind its published output; appended files are not
    among them). ``submit`` asks for a pass over the files written so far and returns at once; passes
    run in order, and when several wait behind a slow one they merge into one (over the newest
    cutoff). ``wait`` returns once none is running or waiting (the service calls it when it stops). A
    pass that fails is logged and left to the next one: the protocol leaves the partition readable at
    every step, and the next pass finishes or rolls back what it left.
    """

    def __init__(self, lake: Lake, *, tiered: bool = True) -> None:
        import threading

        self.lake, self.tiered = lake, tiered
        self._cond = threading.Condition()
        self._pending: str | None = None  # cutoff of the pass asked for and not started
        self._running = False
        self._thread = None
        self.passes: list[float] = []  # duration of each finished pass, ms
        self.merged = 0  # passes folded into a later one while waiting
        self.error: BaseException | None = None

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._running or self._pending is not None

    def submit(self) -> None:
        """Ask for a pass over the files written until now; returns at once."""
        import threading

        cutoff = layout.new_file_id()  # later than every file written so far, earlier than any to come
        with self._cond:
            if self._pending is not None:
                self.merged += 1
            self._pending = cutoff
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="mintel-compact", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._pending is None:  # nothing asked for: the thread ends (submit starts another)
                    self._thread = None
                    self._cond.notify_all()
                    return
                cutoff, self._pending, self._running = self._pending, None, True
            t0 = time.perf_counter()
            try:
                compact(self.lake, tiered=self.tiered, written_by=cutoff)
            except (LakeError, OSError) as exc:  # disk full, read-only: one line; the writer's next append says it too
                self.error = exc
                log.error("background compaction failed: %s (the next pass retries)", exc)
            except Exception as exc:  # noqa: BLE001 - a background pass must not take the writer down
                self.error = exc
                log.exception("background compaction failed; the next pass finishes or rolls it back")
            finally:
                with self._cond:
                    self.passes.append((time.perf_counter() - t0) * 1e3)
                    self._running = False
                    self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no pass runs or waits; True when done within ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._running and self._pending is None, timeout)


def _since_last_compacted(files: list) -> list:
    """The files written after the last compacted one (files are in write order)."""
    marks = [i for i, f in enumerate(files) if layout.FILE_RE.match(f.name).group("compacted")]
    return files[marks[-1] + 1:] if marks else files


def _compact_partition(lake: Lake, part: Partition, files: list) -> tuple[int, int]:
    table, rows_before = lake.read_files(part.table, files, with_count=True)  # one read: each file opened once
    store = part.store
    newest = layout.FILE_RE.match(files[-1].name).group("id")
    output = f"part-{newest}-c.parquet"
    manifest = part.path / MANIFEST
    store.write_json(manifest, {"output": output, "inputs": [f.name for f in files]})
    faults.reached("compact.manifest", part.table)
    try:
        lake._publish(table, part.path / output)
    except (LakeError, OSError):  # nothing published (disk full, read-only): roll back at once
        store.unlink(manifest)
        raise
    faults.reached("compact.published", part.table)
    for f in files:
        if f.name != output:
            store.unlink(f)
            faults.reached("compact.unlinked", part.table)
    store.unlink(manifest)
    return rows_before, table.num_rows


def finish_interrupted(part: Partition) -> None:
    """Complete or roll back a compaction that a crash interrupted; drop stale temporaries."""
    files, names = part.listing()
    if MANIFEST in names:
        m = part.store.read_json(part.path / MANIFEST) or {}
        for name in superseded(m, {f.name for f in files}):  # published: finish; else roll back
            part.store.unlink(part.path / name)
        part.store.unlink(part.path / MANIFEST)
    # A crash's leftovers; a younger one may be a write in progress in the writer process.
    part.store.drop_stale_temporaries(part.path, STALE_TMP_S)


def retain(lake: Lake, *, policy: dict[str, int | None] | None = None, now=None) -> list[str]:
    """Drop partitions that ended more than their table's retention days ago. Returns their paths."""
    rules = {**DEFAULT_RETENTION, **(policy or {})}
    now_ts = _timestamp(now, "now") if now is not None else pd.Timestamp.now(tz="UTC")
    removed: list[str] = []
    for table_name, iv in lake.tables():
        days = _retention_days(rules, table_name, iv)
        if days is None:
            continue
        cutoff = now_ts - pd.Timedelta(days=days)
        for part in lake.partitions(table_name, iv):
            if part.end is not None and part.end <= cutoff:
                lake.store.drop_dir(part.path)
                removed.append(str(part.path.relative_to(lake.root)))
    if removed:
        log.info("retention dropped %d partitions", len(removed))
    return removed


def _retention_days(rules: dict[str, int | None], table: str, interval: str | None) -> int | None:
    if table in layout.INTERVAL_TABLES:
        span = "daily" if interval in layout.DAILY_INTERVALS else "intraday"
        for key in (f"{table}:{interval}", f"{table}:{span}"):
            if key in rules:
                return rules[key]
        return None
    return rules.get(table)


def stats(lake: Lake) -> pd.DataFrame:
    """One row per table (and interval): partitions, files, rows, bytes, first and last partition."""
    rows = []
    for table_name, iv in lake.tables():
        parts = lake.partitions(table_name, iv)
        files = [f for p in parts for f in p.files()]
        nrows = 0
        size = 0
        for f in files:
            try:
                nrows += lake.store.parquet_rows(f)
                size += lake.store.size(f)
            except (FileNotFoundError, OSError, LakeError, pa.ArrowInvalid):
                continue
        rows.append(
            {
                "table": table_name,
                "interval": iv,
                "partitions": len(parts),
                "files": len(files),
                "rows": nrows,
                "bytes": size,
                "first": parts[0].value if parts else None,
                "last": parts[-1].value if parts else None,
                "temporaries": sum(len(p.temporaries()) for p in parts),
            }
        )
    snap = lake.snapshot_path
    if lake.store.exists(snap):
        try:
            rows.append(
                {
                    "table": "snapshot", "interval": None, "partitions": 1, "files": 1,
                    "rows": lake.store.parquet_rows(snap), "bytes": lake.store.size(snap),
                    "first": None, "last": None, "temporaries": 0,
                }
            )
        except (FileNotFoundError, OSError, pa.ArrowInvalid):
            pass
    return pd.DataFrame(rows, columns=["table", "interval", "partitions", "files", "rows", "bytes", "first", "last", "temporaries"])
