"""Import a user's history file (CSV or Parquet) as canonical bars.

Columns are matched case-insensitively: a time column (date, datetime, timestamp, time, ts), open,
high, low, close, volume (volume optional: 0 when absent). Rows that cannot be bars go to
quarantine with the reason and their original values; the file as a whole fails only when it cannot
be read or lacks a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mintel import schema
from mintel.errors import DataError
from mintel.lake import Lake
from mintel.lake.layout import DAILY_INTERVALS, check_interval

TIME_COLUMNS = ("timestamp", "datetime", "date", "time", "ts")


@dataclass
class ImportResult:
    path: str
    symbol: str
    interval: str
    rows_read: int
    rows_written: int
    rows_quarantined: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None


def read_table_file(path: Path) -> pd.DataFrame:
    """The file's rows as strings/objects, untouched, so quarantine can keep them as they were."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a CSV or Parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path).to_pandas()
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pa.ArrowInvalid, OSError) as exc:
        kind = "Parquet" if suffix in (".parquet", ".pq") else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable {kind} file ({first})") from None


def parse_bars(raw: pd.DataFrame, *, symbol: str, interval: str, label: str, tz: str = "UTC", source: str = "import") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid canonical bars, rejected raw rows with a ``reason``) from a table of raw values."""
    check_interval(interval)
    if not symbol or not str(symbol).strip():
        raise DataError(f"{label}: give the symbol the file holds (--symbol)")
    columns = {str(c).strip().lower(): c for c in raw.columns}
    time_col = next((columns[c] for c in TIME_COLUMNS if c in columns), None)
    if time_col is None:
        raise DataError(f"{label}: no time column (expected one of: {', '.join(TIME_COLUMNS)}); found {', '.join(map(str, raw.columns)) or 'none'}")
    for need in ("open", "high", "low", "close"):
        if need not in columns:
            raise DataError(f"{label}: column '{need}' missing")
    raw = raw.reset_index(drop=True)
    ts = _parse_times(raw[time_col], interval=interval, tz=tz)
    bars = pd.DataFrame(
        {
            "interval": interval,
            "symbol": str(symbol).strip().upper(),
            "ts": ts,
            **{c: pd.to_numeric(_blank_to_nan(raw[columns[c]]), errors="coerce") for c in ("open", "high", "low", "close")},
            "volume": pd.to_numeric(_blank_to_nan(raw[columns["volume"]]), errors="coerce") if "volume" in columns else 0.0,
            "source": source,
            "quality": 1.0,
        }
    )
    reasons = schema.bar_problems(bars)
    unreadable = ts.isna() & raw[time_col].notna()
    reasons[unreadable.to_numpy()] = [f"time {v!r} is not a date or time" for v in raw.loc[unreadable, time_col]]
    ok = reasons.isna()
    # Duplicate timestamps: the last row in the file wins, earlier ones are kept in quarantine.
    dup = ok & bars["ts"].duplicated(keep="last") & bars["ts"].notna()
    reasons[dup.to_numpy()] = "duplicate timestamp; a later row in the file wins"
    ok = reasons.isna()
    rejected = raw.loc[~ok].copy()
    rejected["reason"] = reasons[~ok].to_numpy()
    rejected["symbol"] = str(symbol).strip().upper()
    good = bars.loc[ok].sort_values("ts", kind="stable").reset_index(drop=True)
    return good, rejected


def import_file(lake: Lake, path: str | Path, *, symbol: str, interval: str = "1d", tz: str = "UTC") -> ImportResult:
    path = Path(path)
    raw = read_table_file(path)
    good, rejected = parse_bars(raw, symbol=symbol, interval=interval, label=str(path), tz=tz, source=f"import:{path.name}")
    good = good.assign(ingested_at=pd.Timestamp.now(tz="UTC"))
    quarantined = lake.quarantine("bars", rejected, source=f"import:{path.name}") if len(rejected) else 0
    written = lake.append("bars", good) if len(good) else 0
    return ImportResult(
        path=str(path), symbol=str(symbol).upper(), interval=interval, rows_read=len(raw), rows_written=written,
        rows_quarantined=quarantined, first=good["ts"].min() if len(good) else None, last=good["ts"].max() if len(good) else None,
    )


def _blank_to_nan(col: pd.Series) -> pd.Series:
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        return col.astype(object).where(col.astype(str).str.strip() != "", np.nan)
    return col


def _parse_times(col: pd.Series, *, interval: str, tz: str) -> pd.Series:
    """UTC timestamps; daily bars become their session date at 00:00 UTC (the lake's convention).

    Naive times are read in ``tz``; a date written without a time is the session date as written.
    """
    values = _blank_to_nan(col)
    numeric = pd.to_numeric(values, errors="coerce")
    daily = interval in DAILY_INTERVALS
    if len(values) and numeric.notna().all():
        unit = "ms" if numeric.abs().max() > 1e11 else "s"  # epoch seconds or milliseconds
        stamps = [(t, False) for t in pd.to_datetime(numeric, unit=unit, utc=True)]
    else:
        stamps = [_one_time(v, tz) for v in values]
    out = []
    for t, date_only in stamps:
        if t is pd.NaT or not daily:
            out.append(t)
        else:
            day = t.date() if date_only else t.tz_convert(tz).date()
            out.append(pd.Timestamp(day, tz="UTC"))
    return pd.Series(pd.to_datetime(out, utc=True), index=col.index).astype("datetime64[ns, UTC]")


def _one_time(v, tz: str) -> tuple[pd.Timestamp, bool]:
    """(UTC timestamp or NaT, whether the value was a date without a time)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return pd.NaT, False
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT, False
    if t is pd.NaT:
        return pd.NaT, False
    date_only = isinstance(v, str) and len(v.strip()) <= 10
    if t.tzinfo is None:
        return t.tz_localize("UTC" if date_only else tz).tz_convert("UTC"), date_only
    return t.tz_convert("UTC"), date_only
