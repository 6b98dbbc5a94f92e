"""How bars are keyed: symbols to rows of the engines' arrays, timestamps to UTC nanoseconds and to
local sessions and minutes of the day.

Shared by the batch indicators, the streaming state, the live window and the scoring; none of it
knows an indicator.
"""

from __future__ import annotations

import datetime
import functools
import re
import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel.errors import DataError

DEFAULT_TZ = "Asia/Kolkata"
NS_PER_MINUTE = 60_000_000_000
NS_PER_DAY = 1440 * NS_PER_MINUTE


_INTERVAL = re.compile(r"^(\d+)\s*(s|m|min|h|d|wk|w|mo|y)$")


def is_intraday(interval: str) -> bool:
    """True for bars shorter than a day (``1m``, ``5m``, ``1h``); False for ``1d``, ``1wk``, ``1mo``."""
    m = _INTERVAL.match(str(interval).strip().lower())
    if not m:
        raise DataError(f"interval {interval!r}: not understood (expected e.g. 1m, 5m, 1h, 1d, 1wk)")
    return m.group(2) in ("s", "m", "min", "h")


def to_utc_ns(ts) -> np.ndarray:
    """Timestamps (array-like, naive = UTC; ints are ns) as int64 nanoseconds since the epoch, UTC. May be a
    view of the input's data (ns columns and arrays are taken as they are): do not modify it."""
    dtype = getattr(ts, "dtype", None)
    if isinstance(ts, np.ndarray) and dtype in (np.int64, np.dtype("M8[ns]")):  # ns since the epoch, UTC
        return ts.view(np.int64)
    if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns":  # stored as UTC ns already: no index
        return np.asarray(ts.array.asi8 if isinstance(ts, pd.Series) else pd.DatetimeIndex(ts).asi8)
    idx = pd.DatetimeIndex(ts)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return idx.as_unit("ns").asi8


def index_of(index: pd.Index, names) -> np.ndarray:
    """Positions of ``names`` in the object-dtype ``index`` (-1 where absent).

    Given a bare array, pandas infers the target's dtype on every call (object strings become its
    Arrow string dtype and back), which costs ~3 ms for 5000 symbols; an object Index skips that (~0.4 ms).
    """
    if not isinstance(names, pd.Index) or names.dtype != object:
        names = pd.Index(np.asarray(names, dtype=object), dtype=object)
    return index.get_indexer(names)


def object_index(*parts) -> pd.Index:
    """The values of ``parts`` (arrays or indexes) in order, as an object-dtype Index.

    ``Index.append`` infers pandas' str dtype for strings, and lookups in such an index pay the
    conversion ``index_of`` avoids; the symbol indexes that grow as symbols arrive stay object.
    """
    return pd.Index(np.concatenate([np.asarray(p, dtype=object) for p in parts]) if parts else [], dtype=object)


class Values:
    """A string column's values as an object array, remembered while the column's Arrow data stays equal:
    a live feed sends the same symbols (and source) in the same order every cycle, and comparing the
    Arrow buffers (~5 µs for 5000) is far cheaper than making 5000 Python strings (~0.15 ms).
    ``__call__`` returns the same array object while the column is unchanged (``Positions`` relies on it)."""

    def __init__(self) -> None:
        self._last: tuple[object, np.ndarray] | None = None

    def __call__(self, column: pd.Series) -> np.ndarray:
        if not isinstance(column.dtype, pd.StringDtype) or getattr(column.dtype, "storage", None) != "pyarrow":
            return column.to_numpy(dtype=object)
        data = pa.chunked_array(pa.array(column))  # zero copy
        last = self._last
        if last is not None and last[0].equals(data):
            return last[1]
        values = column.to_numpy(dtype=object)
        values.flags.writeable = False  # shared by every caller until the column changes
        self._last = data, values
        return values


class Positions:
    """``index_of`` that remembers its last answer: live cycles ask for the same symbols, in the same
    order, of the same index every time, and comparing them (~0.2 ms for 5000) is cheaper than a lookup."""

    def __init__(self) -> None:
        self._last: tuple[pd.Index, np.ndarray, np.ndarray, object] | None = None

    def __call__(self, index: pd.Index, names) -> np.ndarray:
        given = names
        names = np.asarray(names, dtype=object)
        last = self._last
        if last is not None and last[0] is index and (last[3] is given and not given.flags.writeable or len(last[1]) == len(names) and (last[1] == names).all()):
            return last[2].copy()
        rows = index_of(index, names)
        self._last = index, names.copy(), rows.copy(), given if isinstance(given, np.ndarray) else None
        return rows


def session_and_minute(ts_ns: np.ndarray, tz: str = DEFAULT_TZ) -> tuple[np.ndarray, np.ndarray]:
    """(session, minute of day) of UTC nanosecond timestamps in the exchange's time zone.

    The session is the local calendar day (days since 1970-01-01); the minute is minutes since local
    midnight, so the same bar time on different days shares it.
    """
    local = local_ns(np.asarray(ts_ns, dtype=np.int64), tz)
    day = local // NS_PER_DAY
    return day, (local - day * NS_PER_DAY) // NS_PER_MINUTE


@functools.lru_cache(maxsize=64)
def session_and_minute_of(ts_ns: int, tz: str = DEFAULT_TZ) -> tuple[int, int]:
    """``session_and_minute`` of one timestamp, remembered: the live case, where every symbol's bar of a cycle
    opens at the same time and the forming bar comes back with it. The offset is the zone's own
    (``zoneinfo``, the database pandas reads too): ~5 us, where a pandas conversion of one value is ~0.2 ms."""
    try:
        offset = datetime.datetime.fromtimestamp(ts_ns // 10**9, datetime.timezone.utc).astimezone(_zone(tz)).utcoffset()
    except (ValueError, KeyError, OSError):  # not a zone name zoneinfo knows (e.g. a fixed offset): pandas
        day, minute = session_and_minute(np.array([ts_ns], np.int64), tz)
        return int(day[0]), int(minute[0])
    local = ts_ns + (offset.days * 86_400 + offset.seconds) * 10**9 + offset.microseconds * 1000
    day = local // NS_PER_DAY
    return int(day), int((local - day * NS_PER_DAY) // NS_PER_MINUTE)


@functools.lru_cache(maxsize=16)
def _zone(tz: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tz)


_QUARTER_HOUR = 15 * NS_PER_MINUTE
_NAT = np.iinfo(np.int64).min  # NaT as int64


def local_ns(ts_ns: np.ndarray, tz: str) -> np.ndarray:
    """Wall-clock time in ``tz`` of UTC nanosecond timestamps, as nanoseconds.

    Offsets are looked up on a quarter-hour grid (time-zone changes happen on quarter hours in UTC),
    which is ~5x faster than converting every timestamp; the rows of a quarter hour with a change
    in it are converted exactly.
    """
    if ts_ns.size == 0:
        return ts_ns.copy()
    if (ts_ns == _NAT).any():
        raise DataError("ts: missing timestamps (NaT) cannot be placed in a session")

    def convert(values: np.ndarray) -> np.ndarray:
        return pd.DatetimeIndex(values.view("M8[ns]"), tz="UTC").tz_convert(tz).tz_localize(None).asi8

    lo = int(ts_ns.min()) // _QUARTER_HOUR * _QUARTER_HOUR
    cells = (int(ts_ns.max()) - lo) // _QUARTER_HOUR + 2
    if cells > 4 * ts_ns.size + 1000:  # sparse over a long span: converting each is cheaper
        return convert(ts_ns)
    grid = lo + _QUARTER_HOUR * np.arange(cells, dtype=np.int64)
    offset = convert(grid) - grid
    if (offset == offset[0]).all():
        return ts_ns + offset[0]
    cell = (ts_ns - lo) // _QUARTER_HOUR
    local = ts_ns + offset[cell]
    changing = np.flatnonzero((offset[:-1] != offset[1:])[cell])
    if changing.size:
        local[changing] = convert(ts_ns[changing])
    return local
