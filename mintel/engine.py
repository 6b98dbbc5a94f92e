"""Engines: where batch work over a universe runs (the scan, the signal lab's detections, the indicator
history backfill).

- ``LocalEngine``: in this process, the code path mintel always had. The default, and the fastest on
  one machine.
- ``DaskEngine``: on a ``dask.distributed`` cluster (a scheduler address, or a ``LocalCluster`` of
  this machine when none is given). Each lake partition in the window is read once, on a worker, and
  cut into groups of symbols (contiguous in symbol order, sized by their rows: ``TASK_BYTES`` of bars
  each, and at least two tasks per worker thread); one task per group gathers its pieces and runs the
  per-symbol analytics there; the client gathers the per-symbol results and does the cross-symbol
  parts (sorting, filters, the lab's universe averages) exactly as the local engine.

Workers open the lake by its absolute path (the same on every worker: a shared file system) or,
for a lake on an object store, by its ``s3://`` URL with their own AWS credentials (never sent by mintel). dask is imported only when a DaskEngine
connects: ``import mintel`` and the local engine never load it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mintel.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["ENGINES", "SCHEDULER_ENV", "LocalEngine", "DaskEngine", "MapStats", "get_engine", "engine_from_args",
           "add_engine_arguments", "symbol_groups"]

ENGINES = ("local", "dask")
SCHEDULER_ENV = "MINTEL_DASK_SCHEDULER"
TASK_BYTES = 32 * 2**20  # bars read per task: big enough that scheduling (~1 ms a task) is noise
BAR_BYTES = 100  # a bar row in pandas (8 numeric/time columns, 3 short strings), measured by bench_scale
CONNECT_TIMEOUT_S = 10.0  # to a scheduler: a wrong address fails in this long


@dataclass
class MapStats:
    """What the last ``map`` did: tasks, their bars read (rows, bytes) and results, wall time."""

    tasks: int = 0
    rows: list[int] = field(default_factory=list)
    input_bytes: list[int] = field(default_factory=list)
    result_bytes: list[int] = field(default_factory=list)
    wall_s: float = 0.0


class LocalEngine:
    """This process: callers keep their single-process code path (``distributed`` is False)."""

    name = "local"
    distributed = False

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "LocalEngine()"


class DaskEngine:
    """A dask.distributed cluster: ``address`` (``tcp://host:8786``), or None for a LocalCluster of this
    machine (``n_workers`` processes; default: one per core). Connects on first use; ``close()`` (or
    ``with``) disconnects and stops a LocalCluster it started."""

    name = "dask"
    distributed = True

    def __init__(self, address: str | None = None, *, n_workers: int | None = None, threads_per_worker: int = 1,
                 task_bytes: int = TASK_BYTES, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.address = address.strip() if isinstance(address, str) and address.strip() else None
        self.n_workers, self.threads_per_worker = n_workers, int(threads_per_worker)
        self.task_bytes, self.timeout_s = int(task_bytes), float(timeout_s)
        self._client = None
        self._cluster = None
        self.stats = MapStats()

    def __repr__(self) -> str:
        return f"DaskEngine({self.address or 'LocalCluster'!r})"

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def client(self):
        """The ``distributed.Client`` (connecting, or starting the LocalCluster, on first use)."""
        if self._client is None:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise ConfigError("engine dask: dask.distributed is not installed (pip install 'mintel[dask]')") from None
            # distributed logs every connection at INFO: one level quieter than mintel's own log.
            logging.getLogger("distributed").setLevel(max(logging.getLogger().getEffectiveLevel() + 10, logging.INFO))
            if self.address is None:
                self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=self.threads_per_worker,
                                             processes=True, dashboard_address=":0")
                self._client = Client(self._cluster)
            else:
                try:
                    self._client = Client(self.address, timeout=self.timeout_s)
                except (OSError, TimeoutError, ValueError, TypeError) as exc:
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    raise ConfigError(f"dask scheduler {self.address}: cannot connect ({reason})") from None
            log.info("dask engine: %s, %d worker thread(s)", self._client.scheduler.address, self.threads)
        return self._client

    @property
    def threads(self) -> int:
        """Worker threads in the cluster (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def map_symbol_groups(self, func: Callable, lake, interval: str, start: pd.Timestamp | None = None,
                          end: pd.Timestamp | None = None, symbols: Sequence[str] | None = None, /,
                          **shared: Any) -> list:
        """``func(bars, **shared)`` for each group of symbols, on the workers, in symbol order: ``bars``
        is what ``lake.read_bars(group, interval, start, end)`` gives (``symbols``: only these).

        Each lake partition in the window is read once, on a worker, and cut into the groups' rows
        (the lake keeps a partition sorted by symbol, so the pieces are slices); a group's task gathers
        its pieces and runs ``func``. The groups are planned from the partitions' rows per symbol:
        contiguous in symbol order, ``task_bytes`` of bars each, at least two per worker thread. DataFrames
        in ``shared`` go to each worker once. Figures of the run: ``stats``."""
        import operator

        client = self.client
        t0 = time.perf_counter()
        parts = [p for p in lake.partitions("bars", interval) if _overlaps(p, start, end)]
        root = lake_root(lake)
        tables = [client.submit(_read_partition, root, interval, p, start, end, pure=False) for p in parts]
        counts = client.gather([client.submit(_symbol_counts, t, pure=False) for t in tables])
        rows = pd.concat(counts).groupby(level=0).sum() if any(len(c) for c in counts) else pd.Series(dtype="int64")
        if symbols is not None:
            rows = rows[rows.index.isin(list(symbols))]
        groups = symbol_groups(rows, max(1, self.task_bytes // BAR_BYTES), min_groups=2 * self.threads,
                               multiple_of=self.threads)
        if not groups:
            self.stats = MapStats(wall_s=time.perf_counter() - t0)
            return []
        group_of = {s: g for g, names in enumerate(groups) for s in names}
        cuts = [client.submit(_cut, t, group_of, len(groups), pure=False) for t in tables]
        shared = {k: client.scatter(v, broadcast=True, hash=False) if isinstance(v, pd.DataFrame) else v
                  for k, v in shared.items()}
        futures = [client.submit(_group_task, func, [client.submit(operator.getitem, c, g, pure=False) for c in cuts],
                                 pure=False, **shared) for g in range(len(groups))]
        out = client.gather(futures)
        del tables, cuts, futures
        self.stats = MapStats(len(groups), [r for _, r, _, _ in out], [b for _, _, b, _ in out],
                              [z for _, _, _, z in out], time.perf_counter() - t0)
        log.info("dask %s: %d partitions read once, %d tasks, %d rows, %.1f MB, %.2f s", getattr(func, "__name__", func),
                 len(parts), self.stats.tasks, sum(self.stats.rows), sum(self.stats.input_bytes) / 2**20, self.stats.wall_s)
        return [v for v, _, _, _ in out]


def symbol_groups(rows: pd.Series, target_rows: int, min_groups: int = 1, multiple_of: int = 1) -> list[list[str]]:
    """Symbols (``rows``: bars per symbol) in contiguous groups of symbol order, about ``target_rows``
    rows each (never fewer than ``min_groups`` groups while there are symbols to split), as many groups
    as a multiple of ``multiple_of`` (the worker threads: every wave of tasks keeps them all busy)."""
    if len(rows) == 0:
        return []
    rows = rows.sort_index()
    total = int(rows.sum())
    n = max(int(min_groups), math.ceil(total / max(int(target_rows), 1)), 1)
    n = min(len(rows), math.ceil(n / max(int(multiple_of), 1)) * max(int(multiple_of), 1))
    # Cut where the running total of rows crosses each n-th of the whole: groups of balanced rows.
    cum = rows.cumsum().to_numpy()
    cuts = sorted({int(i) for i in pd.Series(cum).searchsorted([total * k / n for k in range(1, n)], side="left")})
    bounds = [0] + [c + 1 for c in cuts if c + 1 < len(rows)] + [len(rows)]
    names = [str(s) for s in rows.index]
    return [names[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _read_partition(root: str, interval: str, partition, start, end):
    """One lake partition's bars in the window, as the lake reads them (de-duplicated, in key order)."""
    from mintel.lake import Lake

    return Lake(root).read_arrow("bars", interval=interval, start=start, end=end, partitions=[partition])


def _symbol_counts(table) -> pd.Series:
    return table.column("symbol").to_pandas().value_counts()


def _cut(table, group_of: dict[str, int], n_groups: int) -> list:
    """``table`` (sorted by symbol) as one slice per group (rows of symbols in no group left out)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(table.column("symbol")).combine_chunks()
    lookup = np.array([group_of.get(s, -1) for s in enc.dictionary.to_pylist()], dtype=np.int64)
    gid = lookup[np.asarray(enc.indices)] if len(enc.dictionary) else np.zeros(0, np.int64)
    if (gid < 0).any():
        keep = gid >= 0
        table, gid = table.filter(pa.array(keep)), gid[keep]
    if (np.diff(gid) < 0).any():  # not in symbol order (the lake's is): put it in order
        order = np.argsort(gid, kind="stable")
        table, gid = table.take(pa.array(order)), gid[order]
    bounds = np.searchsorted(gid, np.arange(n_groups + 1), side="left")
    return [table.slice(int(a), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:])]


def _group_task(func: Callable, pieces: list, **shared: Any) -> tuple:
    """(``func(bars, **shared)``, rows, bytes of the bars, bytes of the result): a group's pieces (one per
    partition, in partition order) as the lake would read them together, then ``func``."""
    import pyarrow as pa
    from dask.sizeof import sizeof

    from mintel import schema

    table = pa.concat_tables(pieces)
    if sum(p.num_rows > 0 for p in pieces) > 1:  # partitions hold disjoint times: no key repeats across them
        table = table.sort_by([("symbol", "ascending"), ("ts", "ascending")])
    bars = schema.to_pandas(table)
    value = func(bars, **shared)
    return value, len(bars), int(bars.memory_usage(deep=True).sum()), int(sizeof(value))


def _overlaps(p, start, end) -> bool:
    if p.start is None:
        return True
    return not ((end is not None and p.start > end) or (start is not None and p.end <= start))


def lake_root(lake) -> str:
    """The lake's absolute path, or its object-store URL: workers open it by this name."""
    from mintel.lake.catalog import absolute_lake

    return absolute_lake(lake.location)


# -------------------------------------------------------------------------------- choosing one


def get_engine(name: str | None = None, scheduler: str | None = None, **kw) -> LocalEngine | DaskEngine:
    """``local`` (the default) or ``dask`` (at ``scheduler``, else ``MINTEL_DASK_SCHEDULER``, else a
    LocalCluster). A scheduler without a name means dask."""
    name = (name or ("dask" if scheduler else "local")).strip().lower()
    if name not in ENGINES:
        raise DataError(f"engine {name!r}: expected {' or '.join(ENGINES)}")
    if name == "local":
        if scheduler:
            raise DataError(f"scheduler {scheduler}: only the dask engine uses one (--engine dask)")
        return LocalEngine()
    return DaskEngine(scheduler or os.environ.get(SCHEDULER_ENV) or None, **kw)


def add_engine_arguments(c) -> None:
    """``--engine`` and ``--scheduler`` on a command's parser."""
    c.add_argument("--engine", choices=ENGINES, help="where the work runs: local (default, this process) or dask")
    c.add_argument("--scheduler", help=f"dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: {SCHEDULER_ENV}, "
                                       "else a LocalCluster of this machine); implies --engine dask")


def engine_from_args(args) -> LocalEngine | DaskEngine:
    return get_engine(getattr(args, "engine", None), getattr(args, "scheduler", None))
