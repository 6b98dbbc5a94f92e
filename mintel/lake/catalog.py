"""`Lake`: the partitioned Parquet store. The only object that knows where files go.

Writers: ``append`` (new files, atomically published), ``write_snapshot`` (atomic replace),
``compact`` / ``retain`` (see maintenance.py). Readers: ``read``, ``read_bars``, ``latest``,
``snapshot``. Readers may run in other processes while the single writer works: they never see a
partial file, and a file removed by compaction between listing and opening makes them list again.
The root is a directory or an object-store URL (``s3://bucket/prefix``); ``store.py`` holds what differs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from mintel import schema
from mintel.errors import DataError, LakeError
from mintel.lake import faults, layout
from mintel.lake.layout import Partition
from mintel.lake.store import COMPRESSION, ROW_GROUP_ROWS, is_url, open_store  # noqa: F401 (COMPRESSION, ROW_GROUP_ROWS: re-exported)

log = logging.getLogger(__name__)

MANIFEST = "_compacting.json"
READ_ATTEMPTS = 8

TimeLike = str | pd.Timestamp | None


def default_root() -> Path | str:
    """``MINTEL_LAKE`` (a directory or an ``s3://`` URL), else ``data/lake``."""
    value = os.environ.get("MINTEL_LAKE") or "data/lake"
    return value if is_url(value) else Path(value)


def lake_location(value: str | os.PathLike) -> Path | str:
    """A lake setting as given: URLs stay strings (``Path`` would fold ``s3://`` into ``s3:/``)."""
    return value if is_url(value) else Path(value)


def absolute_lake(location: str | os.PathLike) -> str:
    """How another process (a report kernel, a Dask worker, a child command) names this lake."""
    location = lake_location(location) if isinstance(location, str) else Path(location)
    return location if isinstance(location, str) else str(Path(location).resolve())


class Lake:
    """A lake rooted at ``root``: a directory or ``s3://bucket/prefix`` (default: ``MINTEL_LAKE``, else
    ``data/lake``). ``root`` is a ``Path`` (local) or ``PurePosixPath("bucket/prefix")``; ``location`` is
    how to name the lake to a user or another process."""

    def __init__(self, root: str | os.PathLike | None = None, *, durable: bool = True) -> None:
        location = root if root is not None else default_root()
        self.store, self.root = open_store(location if is_url(location) else Path(location), durable=durable)
        self.durable = durable  # fsync each file before publishing it (local lakes)

    @property
    def location(self) -> str:
        """The directory, or the ``s3://`` URL."""
        return self.store.location(self.root)

    @property
    def is_local(self) -> bool:
        return self.store.kind == "local"

    def __repr__(self) -> str:
        return f"Lake({self.location!r})"

    # ------------------------------------------------------------------ writing

    def check_writable(self) -> None:
        """LakeError naming the root when the lake cannot be created or written."""
        self.store.check_writable(self.root)

    def append(self, kind: str, data: pd.DataFrame | pa.Table, *, source: str | None = None) -> int:
        """Write rows of table ``kind`` as new files, one per partition. Returns rows written."""
        if kind == "snapshot":
            return self.write_snapshot(data)
        table = schema.conform(kind, data, source=source)
        if table.num_rows == 0:
            return 0
        key = schema.kind(kind).key
        if key:
            table = _dedup_sorted(table, key)
        written = 0
        for interval, value, part in _split_partitions(kind, table):
            directory = layout.partition_dir(self.root, kind, interval, value)
            self._publish(part, directory / f"part-{layout.new_file_id()}.parquet")
            written += part.num_rows
        return written

    def write_snapshot(self, data: pd.DataFrame | pa.Table) -> int:
        """Replace ``snapshot/latest.parquet`` atomically: readers see the old or the new one, whole."""
        table = schema.conform("snapshot", data, source="snapshot")
        self._publish(table, self.root / "snapshot" / layout.SNAPSHOT_FILE)
        return table.num_rows

    def quarantine(self, table: str, rejected: pd.DataFrame, *, source: str | None) -> int:
        """Keep rejected rows (with a ``reason`` column) in the quarantine table."""
        if len(rejected) == 0:
            return 0
        rows = schema.quarantine_rows(table, rejected, source=source)
        for reason, count in rows["reason"].value_counts().head(5).items():
            log.warning("quarantined %d %s row(s) from %s: %s", count, table, source, reason)
        return self.append("quarantine", rows)

    def _publish(self, table: pa.Table, path: PurePath) -> None:
        """Publish ``table`` at ``path`` whole (local: temporary + rename; object store: one object)."""
        crash = (lambda stage: self._crash_point(stage, path)) if faults.armed() else None
        self.store.publish(table, path, self.root, crash, durable=self.durable)

    def _crash_point(self, stage: str, path: PurePath) -> None:
        """The opt-in fault hook (mintel.lake.faults) at ``stage`` of publishing ``path``; a no-op unless armed."""
        if faults.armed():
            m = layout.FILE_RE.match(path.name)
            what = "snapshot" if path.name == layout.SNAPSHOT_FILE else "compact" if m and m.group("compacted") else "append"
            faults.reached(f"{what}.{stage}", path.relative_to(self.root).parts[0])

    # ------------------------------------------------------------------ reading

    def partitions(self, kind: str, interval: str | None = None) -> list[Partition]:
        schema.kind(kind)
        if kind in layout.INTERVAL_TABLES and interval is None:  # every interval's
            return [p for iv in layout.intervals(self.root, kind, self.store)
                    for p in layout.list_partitions(self.root, kind, iv, self.store)]
        return layout.list_partitions(self.root, kind, interval, self.store)

    def read(
        self,
        kind: str,
        *,
        interval: str | None = None,
        symbols: Sequence[str] | str | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of ``kind`` with ``start <= ts <= end``, de-duplicated on the table's key (last write wins)."""
        return schema.to_pandas(self.read_arrow(kind, interval=interval, symbols=symbols, start=start, end=end, columns=columns))

    def read_arrow(
        self,
        kind: str,
        *,
        interval: str | None = None,
        symbols: Sequence[str] | str | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
        partitions: Sequence[Partition] | None = None,
    ) -> pa.Table:
        k = schema.kind(kind)
        if kind == "snapshot":
            return self._read_snapshot(symbols)
        if kind == "bars" and interval is None:  # (indicators: every interval's, the key tells them apart)
            raise DataError("bars: give an interval (e.g. 1m, 1d)")
        start_ts, end_ts = _timestamp(start, "start"), _timestamp(end, "end")
        if start_ts is not None and end_ts is not None and start_ts > end_ts:
            raise DataError(f"start {start_ts} is after end {end_ts}")
        if partitions is None:
            partitions = [p for p in self.partitions(kind, interval) if _overlaps(p, start_ts, end_ts)]
        parts = list(partitions)
        table = self._scan(k.schema, lambda: [f for p in parts for f in _visible_files(p)], _filter(symbols, start_ts, end_ts))
        table = _in_key_order(table, k.key)
        if columns is not None:
            missing = [c for c in columns if c not in k.schema.names]
            if missing:
                raise DataError(f"{kind}: unknown column(s) {', '.join(missing)}")
            table = table.select(list(columns))
        return table

    def read_bars(
        self,
        symbols: Sequence[str] | str | None = None,
        interval: str = "1m",
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pd.DataFrame:
        """Bars sorted by ``(symbol, ts)``, partitions pruned, unique on ``(interval, symbol, ts)``."""
        return self.read("bars", interval=interval, symbols=symbols, start=start, end=end)

    def latest(self, kind: str = "bars", *, interval: str | None = "1m", lookback_partitions: int | None = 5) -> pd.DataFrame:
        """The newest row per symbol, looking at the newest ``lookback_partitions`` partitions (None: all)."""
        if kind == "snapshot":
            return self.snapshot()
        k = schema.kind(kind)
        if "symbol" not in k.schema.names:
            raise DataError(f"{kind}: has no symbol column")
        parts = self.partitions(kind, interval if kind in layout.INTERVAL_TABLES else None)
        if lookback_partitions is not None:
            parts = parts[-lookback_partitions:]
        table = self.read_arrow(kind, interval=interval, partitions=parts)
        if kind != "bars":  # bars come sorted by (symbol, ts) already
            table = table.sort_by([("symbol", "ascending"), ("ts", "ascending")])
        return schema.to_pandas(_last_per(table, ("symbol",)))

    def snapshot(self, symbols: Sequence[str] | str | None = None) -> pd.DataFrame:
        return schema.to_pandas(self._read_snapshot(symbols))

    def _read_snapshot(self, symbols) -> pa.Table:
        path = self.snapshot_path
        try:
            table = self.store.read_parquet(path, schema.SNAPSHOT)
        except FileNotFoundError:
            return schema.empty("snapshot")
        except (OSError, pa.ArrowInvalid) as exc:
            raise LakeError(f"{self.store.location(path)}: cannot read ({exc})") from exc
        if symbols is not None:
            table = table.filter(pc.field("symbol").isin(_symbol_list(symbols)))
        return table

    @property
    def snapshot_path(self) -> PurePath:
        return self.root / "snapshot" / layout.SNAPSHOT_FILE

    def read_files(self, kind: str, files: Sequence[PurePath], *, with_count: bool = False):
        """Exactly these files of ``kind``, de-duplicated and in key order (for compaction); with
        ``with_count``, ``(table, rows in the files before de-duplication)`` from the same read."""
        k = schema.kind(kind)
        raw = self._scan(k.schema, lambda: list(files), None, attempts=1)
        table = _in_key_order(raw, k.key)
        return (table, raw.num_rows) if with_count else table

    def _scan(self, sch: pa.Schema, list_files, expr, attempts: int = READ_ATTEMPTS) -> pa.Table:
        for attempt in range(attempts):
            files = [str(f) for f in list_files()]
            if not files:
                return sch.empty_table()
            try:
                # Rows come back in file order (files are listed oldest write first), which the
                # last-write-wins de-duplication relies on.
                return ds.dataset(files, schema=sch, format="parquet", filesystem=self.store.filesystem).to_table(filter=expr)
            except FileNotFoundError:
                # Compaction or retention removed a file between listing and opening: list again.
                log.debug("lake file vanished during read (attempt %d); listing again", attempt + 1)
            except (OSError, pa.ArrowInvalid) as exc:
                if _vanished(exc):
                    continue
                raise LakeError(f"{self.location}: cannot read {sch.names[0]}… ({exc})") from exc
        raise LakeError(f"{self.location}: files kept changing during {attempts} read attempts")

    # ------------------------------------------------------------------ maintenance

    def compact(self, kind: str | None = None, *, interval: str | None = None, min_files: int = 2,
                tiered: bool = False, written_by: str | None = None):
        from mintel.lake.maintenance import compact

        return compact(self, kind=kind, interval=interval, min_files=min_files, tiered=tiered, written_by=written_by)

    def background_compactor(self, *, tiered: bool = True):
        """A ``BackgroundCompactor``: compaction passes on a worker thread beside this (the writer's) appends."""
        from mintel.lake.maintenance import BackgroundCompactor

        return BackgroundCompactor(self, tiered=tiered)

    def retain(self, policy: dict[str, int | None] | None = None, *, now: TimeLike = None):
        from mintel.lake.maintenance import retain

        return retain(self, policy=policy, now=now)

    def stats(self) -> pd.DataFrame:
        from mintel.lake.maintenance import stats

        return stats(self)

    def tables(self) -> list[tuple[str, str | None]]:
        """(table, interval) pairs that hold partitions."""
        out: list[tuple[str, str | None]] = []
        present, _ = self.store.listdir(self.root)
        for name in schema.KINDS:
            if name == "snapshot" or name not in present:
                continue
            if name in layout.INTERVAL_TABLES:
                out += [(name, iv) for iv in layout.intervals(self.root, name, self.store)]
            else:
                out.append((name, None))
        return out


# ---------------------------------------------------------------------- helpers


def _vanished(exc: BaseException) -> bool:
    """A file listed a moment ago is gone (local: ENOENT; S3: NO_SUCH_KEY / NoSuchKey / RESOURCE_NOT_FOUND,
    as GetObject or HeadObject says it)."""
    text = str(exc)
    return (any(s in text for s in ("No such file", "RESOURCE_NOT_FOUND", "NO_SUCH_KEY", "NoSuchKey"))
            or "not found" in text.lower() or "key does not exist" in text.lower())


def _visible_files(p: Partition) -> list[Path]:
    """Files a reader should read: inputs of a published compaction are hidden behind its output."""
    files, names = p.listing()
    if MANIFEST not in names:
        return files
    m = p.store.read_json(p.path / MANIFEST)
    if not m:
        return files
    hidden = superseded(m, {f.name for f in files})
    return [f for f in files if f.name not in hidden] if hidden else files


def superseded(manifest: dict, names: set[str]) -> set[str]:
    """The inputs a compaction manifest hides: all of them once its output exists, none before.

    An output that is also an input (re-merging a partition whose newest file is already compacted
    replaces that file in place) proves nothing: it existed before the merge was written, so nothing is
    hidden; readers de-duplicate the inputs, which are then read as they are, old or merged.
    """
    output, inputs = manifest.get("output"), set(manifest.get("inputs", []))
    if not output or output not in names or output in inputs:
        return set()
    return inputs


def _symbol_list(symbols: Sequence[str] | str) -> list[str]:
    if isinstance(symbols, str):
        return [symbols]
    return [str(s) for s in symbols]


def _timestamp(value: TimeLike, what: str) -> pd.Timestamp | None:
    return None if value is None else schema.utc_timestamp(value, what)


def _overlaps(p: Partition, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
    if p.start is None:
        return True
    if end is not None and p.start > end:
        return False
    if start is not None and p.end <= start:
        return False
    return True


def _filter(symbols, start: pd.Timestamp | None, end: pd.Timestamp | None):
    expr = None

    def both(a, b):
        return b if a is None else a & b

    if symbols is not None:
        syms = _symbol_list(symbols)
        expr = both(expr, pc.field("symbol") == syms[0] if len(syms) == 1 else pc.field("symbol").isin(syms))
    if start is not None:
        expr = both(expr, pc.field("ts") >= pa.scalar(start.value, schema.TS))
    if end is not None:
        expr = both(expr, pc.field("ts") <= pa.scalar(end.value, schema.TS))
    return expr


def _split_partitions(kind: str, table: pa.Table):
    """Yield (interval, partition value, rows) for each partition the rows fall in."""
    intervals = [None]
    if kind in layout.INTERVAL_TABLES:
        intervals = pc.unique(table.column("interval")).to_pylist()
        for iv in intervals:
            layout.check_interval(iv)
    for iv in intervals:
        rows = table if iv is None or len(intervals) == 1 else table.filter(pc.field("interval") == iv)
        ts = rows.column("ts")
        if layout.partition_key(kind, iv) == "year":
            values = pc.year(ts)
            labels = [str(v) for v in pc.unique(values).to_pylist()]
            cast = pa.int64()
        else:
            values = pc.cast(ts, pa.date32())
            labels = None
            cast = pa.date32()
        uniques = pc.unique(values).to_pylist()
        if labels is None:
            labels = [u.isoformat() for u in uniques]
        for u, label in zip(uniques, labels):
            part = rows if len(uniques) == 1 else rows.filter(pc.equal(values, pa.scalar(u, cast)))
            yield iv, label, part


def _in_key_order(table: pa.Table, key: Sequence[str]) -> pa.Table:
    if key:
        return _dedup_sorted(table, key)
    if "ts" in table.column_names and table.num_rows:
        return table.sort_by([("ts", "ascending")])
    return table


def _dedup_sorted(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """Sort by ``key`` and keep the last row of each key (rows later in ``table`` are later writes)."""
    n = table.num_rows
    if n <= 1:
        return table
    codes = [_sort_codes(table.column(c)) for c in key]
    # Fast path: rows already strictly increasing by key (one sorted file, one sorted append).
    greater = np.zeros(n - 1, dtype=bool)
    equal = np.ones(n - 1, dtype=bool)
    for a in codes:
        d = a[1:] - a[:-1]
        greater |= equal & (d > 0)
        equal &= d == 0
    if greater.all():
        return table
    order = np.lexsort(codes[::-1])  # stable: among equal keys, later rows stay later
    sorted_codes = [a[order] for a in codes]
    last = np.ones(n, dtype=bool)
    same_as_next = np.ones(n - 1, dtype=bool)
    for a in sorted_codes:
        same_as_next &= a[1:] == a[:-1]
    last[:-1] = ~same_as_next
    return table.take(pa.array(order[last]))


def _sort_codes(col: pa.ChunkedArray) -> np.ndarray:
    """int64 codes that sort like the column's values (strings by their sorted dictionary rank)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_dictionary(arr.type):
        enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
        dictionary = enc.dictionary
        rank = np.empty(len(dictionary), dtype=np.int64)
        rank[np.asarray(pc.array_sort_indices(dictionary))] = np.arange(len(dictionary), dtype=np.int64)
        return rank[np.asarray(enc.indices.fill_null(0))]
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.int64())
    return np.asarray(arr.fill_null(0) if arr.null_count else arr).astype(np.int64, copy=False)


def _last_per(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """Rows whose key differs from the next row's key (the table is sorted by key)."""
    n = table.num_rows
    if n <= 1:
        return table
    differs = None
    for c in key:
        col = table.column(c)
        d = pc.not_equal(col.slice(0, n - 1), col.slice(1))
        differs = d if differs is None else pc.or_(differs, d)
    if pc.all(differs).as_py():
        return table
    mask = pa.concat_arrays([differs.combine_chunks() if isinstance(differs, pa.ChunkedArray) else differs, pa.array([True])])
    return table.filter(mask)
