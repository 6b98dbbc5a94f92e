"""Indicator history: every bar's indicators, backfilled into the lake's ``indicators`` table.

``backfill_indicators`` computes the scan's indicator set (``scan.enrich``: every indicator, sma_200,
bb_pct_b, dist_sma_50_pct) over each symbol's bars in a window, warmed up on the ``warmup`` bars before
``start`` (rows before ``start`` are not written), and appends the rows. The table's key (interval,
symbol, ts) makes a re-run replace what an earlier one wrote (last write wins).

- Local engine: in this process, a chunk of symbols at a time (about ``CHUNK_ROWS`` bars each), so
  memory follows the chunk, not the universe.
- Dask engine: each group of symbols is computed AND written on a worker (``Lake(location).append``;
  file names are unique UUIDv7s, so concurrent appends are safe); only counts come back to the client.

Every figure is a symbol's own, so the rows do not depend on the engine or on how symbols are grouped.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from mintel import schema
from mintel.analytics.keys import DEFAULT_TZ, is_intraday
from mintel.analytics.scan import enrich
from mintel.errors import DataError
from mintel.lake import Lake, layout

log = logging.getLogger(__name__)

TABLE = "indicators"
# Bars read before ``start``: daily, enough for sma_200 and for the EMA-seeded indicators to settle;
# intraday, sma_200 and (for 1m bars) the whole previous session the same-minute volume ratio looks at.
DEFAULT_WARMUP = {"daily": 250, "intraday": 400}
CHUNK_ROWS = 1_000_000  # bars a local chunk computes at once: ~0.5 GB at the peak
SESSION_MINUTES = 360  # the shortest regular session we plan for (NSE: 375, NYSE: 390)


@dataclass(frozen=True)
class BackfillSummary:
    """What a backfill wrote: symbols and rows, the partitions they went to and the files written there."""

    interval: str
    engine: str
    symbols: int
    rows: int
    partitions: int
    files: int
    first: pd.Timestamp | None  # the earliest ts written
    last: pd.Timestamp | None
    seconds: float

    def record(self) -> dict:
        return asdict(self)


class _Written(NamedTuple):
    """One group's (or chunk's) part of the summary: what its task wrote."""

    symbols: int
    rows: int
    partitions: frozenset  # labels (year or date) of the partitions written, one file each
    first: pd.Timestamp | None
    last: pd.Timestamp | None


def backfill_indicators(lake: Lake | str | None = None, interval: str = "1d", start=None, end=None,
                        symbols: Sequence[str] | str | None = None, *, engine=None, tz: str = DEFAULT_TZ,
                        warmup: int | None = None) -> BackfillSummary:
    """Compute the indicator set over the bars of ``interval`` with ``start <= ts <= end`` (None: all; UTC,
    as the lake reads) of ``symbols`` (None: every symbol) and append it to the ``indicators`` table.

    ``warmup``: bars read before ``start`` for each symbol (default ``DEFAULT_WARMUP``) so the values at
    ``start`` are warmed up; those rows are not written. ``engine``: ``mintel.engine`` (None: this process).
    Bad input (an unknown interval, start after end, no bars) raises DataError naming it."""
    t0 = time.perf_counter()
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    layout.check_interval(interval)
    intraday = is_intraday(interval)
    start_ts = None if start is None else schema.utc_timestamp(start, "start")
    end_ts = None if end is None else schema.utc_timestamp(end, "end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise DataError(f"start {start_ts} is after end {end_ts}")
    warmup = DEFAULT_WARMUP["intraday" if intraday else "daily"] if warmup is None else int(warmup)
    if warmup < 0:
        raise DataError(f"warmup {warmup}: must be 0 or more bars")
    want = None if symbols is None else ([symbols] if isinstance(symbols, str) else [str(s) for s in symbols])
    if want is not None and not want:
        raise DataError("symbols: none given")
    read_from = None if start_ts is None else start_ts - warmup_span(interval, warmup)
    job = dict(interval=interval, start=start_ts, warmup=warmup, tz=tz, computed_at=pd.Timestamp.now(tz="UTC"))

    if getattr(engine, "distributed", False):
        from mintel.engine import lake_root

        # Positional: map_symbol_groups' own parameters; the keywords go to each task.
        written = engine.map_symbol_groups(_backfill_group, lake, interval, read_from, end_ts, want,
                                           lake=lake_root(lake), durable=lake.durable, **job)
    else:
        written = [_backfill_group(lake.read_bars(chunk, interval, read_from, end_ts), lake=lake, **job)
                   for chunk in _chunks(lake, interval, read_from, end_ts, want)]
    written = [w for w in written if w.rows]
    if not written:
        raise DataError(f"{interval}: no bars{_window(start_ts, end_ts)}{_among(want)} in {lake.location}")
    firsts, lasts = [w.first for w in written], [w.last for w in written]
    summary = BackfillSummary(
        interval=interval, engine=getattr(engine, "name", "local"), symbols=sum(w.symbols for w in written),
        rows=sum(w.rows for w in written), partitions=len(frozenset().union(*(w.partitions for w in written))),
        files=sum(len(w.partitions) for w in written), first=min(firsts), last=max(lasts),
        seconds=round(time.perf_counter() - t0, 3),
    )
    log.info("indicator history %s: %d symbols, %d rows, %d files in %d partitions, %.2f s (%s engine)",
             interval, summary.symbols, summary.rows, summary.files, summary.partitions, summary.seconds, summary.engine)
    return summary


def warmup_span(interval: str, warmup: int) -> pd.Timedelta:
    """A time before ``start`` that holds at least ``warmup`` bars of ``interval`` (weekends, holidays and
    the hours between sessions included); the bars beyond ``warmup`` are dropped after the read."""
    if warmup <= 0:
        return pd.Timedelta(0)
    m = re.fullmatch(r"(\d+)(s|m|h|d|wk|mo)", interval)
    n, unit = int(m.group(1)), m.group(2)
    if unit in ("d", "wk", "mo"):
        days = warmup * n * {"d": 1, "wk": 7, "mo": 31}[unit]
        return pd.Timedelta(days=math.ceil(days * 1.5) + 10)  # 5 sessions a week, ~15 holidays a year
    minutes = warmup * n * {"s": 1 / 60, "m": 1, "h": 60}[unit]
    sessions = math.ceil(minutes / SESSION_MINUTES)
    return pd.Timedelta(days=math.ceil(sessions * 1.5) + 5)


def _chunks(lake: Lake, interval: str, start, end, symbols: list[str] | None) -> list[list[str]]:
    """Groups of symbols (symbol order) of about ``CHUNK_ROWS`` bars in the window, planned from each
    partition's bars per symbol (read one partition at a time)."""
    from mintel.engine import symbol_groups

    counts = []
    for part in lake.partitions("bars", interval):
        if (end is not None and part.start is not None and part.start > end) or \
                (start is not None and part.end is not None and part.end <= start):
            continue
        t = lake.read_arrow("bars", interval=interval, symbols=symbols, start=start, end=end, partitions=[part],
                            columns=["symbol"])
        counts.append(t.column("symbol").to_pandas().value_counts())
    counts = [c for c in counts if len(c)]
    if not counts:
        return []
    return symbol_groups(pd.concat(counts).groupby(level=0).sum(), CHUNK_ROWS)


def _backfill_group(bars: pd.DataFrame, *, lake: Lake | str, interval: str, start: pd.Timestamp | None, warmup: int,
                    tz: str, computed_at: pd.Timestamp, durable: bool = True) -> _Written:
    """Indicator rows of a group of symbols' bars (sorted by symbol, ts), appended to the lake (opened by
    its location on a worker). Returns only what was written."""
    bars = warm_window(bars, start, warmup)
    if bars.empty:
        return _Written(0, 0, frozenset(), None, None)
    e = enrich(bars, interval, tz)
    if start is not None:
        e = e[(e["ts"] >= start).to_numpy()]
    if e.empty:
        return _Written(0, 0, frozenset(), None, None)
    rows = e[["symbol", "ts", "close", *schema.INDICATOR_SET]].assign(interval=interval, computed_at=computed_at)
    if isinstance(lake, str):
        lake = Lake(lake, durable=durable)
    n = lake.append(TABLE, rows, source=f"{TABLE} {interval}")
    ts = rows["ts"]
    return _Written(int(rows["symbol"].nunique()), n, _partition_labels(ts, interval), ts.min(), ts.max())


def warm_window(bars: pd.DataFrame, start: pd.Timestamp | None, warmup: int) -> pd.DataFrame:
    """``bars`` (sorted by symbol, ts) from each symbol's ``warmup``-th last bar before ``start`` on."""
    if start is None or bars.empty:
        return bars
    before = (bars["ts"] < start).to_numpy()
    if not before.any():
        return bars
    codes = pd.factorize(bars["symbol"])[0]
    new_run = np.r_[True, codes[1:] != codes[:-1]]
    run_start = np.flatnonzero(new_run)
    run = np.cumsum(new_run) - 1
    pos = np.arange(len(bars)) - run_start[run]  # a bar's place in its symbol's bars; those before start come first
    n_before = np.add.reduceat(before.astype(np.int64), run_start)[run]
    keep = ~before | (pos >= n_before - warmup)
    return bars if keep.all() else bars.loc[keep].reset_index(drop=True)


def _partition_labels(ts: pd.Series, interval: str) -> frozenset:
    """The lake partitions rows at ``ts`` go to (a year, or a UTC date), as ``Lake.append`` splits them."""
    if layout.partition_key(TABLE, interval) == "year":
        return frozenset(str(y) for y in ts.dt.year.unique())
    return frozenset(d.date().isoformat() for d in ts.dt.normalize().unique())


def _window(start, end) -> str:
    if start is None and end is None:
        return ""
    return f" between {start if start is not None else 'the first bar'} and {end if end is not None else 'the last bar'}"


def _among(symbols: list[str] | None) -> str:
    if symbols is None:
        return ""
    return f" for {', '.join(symbols[:5])}{f' (+{len(symbols) - 5} more)' if len(symbols) > 5 else ''}"
