"""Backfill: a universe's bar history from ``start`` to ``end``, within the providers' limits, resumable.

The steps:

1. coverage: what the lake already holds for (interval, symbols, start..end), as each symbol's first
   and last bar;
2. plan: a symbol whose stored bars reach both ends of the range is complete and skipped; otherwise
   the missing head (``start`` .. first stored bar) and tail (last stored bar .. ``end``) are
   fetched, or the whole range when nothing is stored. Holes inside the stored span are not looked for;
3. fetch: per range, chunks of ``chunk_symbols`` symbols through an ApiManager over the named
   providers, so rate limits, retries, breakers and failover apply;
4. write: rows are validated as each provider answers (bad ones go to quarantine with their
   reason, and never reach the manager), the good ones are appended chunk by chunk, so an interrupted backfill resumes where it stopped.

When a symbol's stored bars are complete (the "ends" above):

- ``1d``: its last bar is on or after the last session (per ``mintel.calendar``, the universe's
  exchange) that is on or before ``end`` and whose daily bar has closed; its first bar is on or
  before the first session on or after ``start``. Without the calendar (dates it does not cover):
  within 3 days of ``end``'s / ``start``'s date (weekends, holidays).
- ``1m``: its last bar is within an hour of the last trading minute closed by ``end``; its first
  bar within an hour of the first trading minute at or after ``start`` (illiquid minutes may be
  absent). Without the calendar: within an hour of ``end`` / ``start``.

Symbols no provider knows (``not_found``) and those that failed after retries and failover
(``failed``) are reported by name; they never stop the others.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from mintel import calendar, schema
from mintel.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["BackfillResult", "backfill", "run_backfill"]

TOLERANCE_1M = pd.Timedelta(hours=1)
TOLERANCE_1D = pd.Timedelta(days=3)


@dataclass
class BackfillResult:
    """What one backfill asked for, skipped, wrote and could not get."""

    interval: str
    start: pd.Timestamp
    end: pd.Timestamp
    symbols_asked: int = 0
    symbols_done: int = 0  # fetched (with rows, or none to have) this run
    symbols_skipped: int = 0  # already complete in the lake
    rows_written: int = 0
    rows_quarantined: int = 0
    requests: int = 0
    not_found: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # failed symbol -> why
    elapsed_s: float = 0.0

    def records(self) -> list[dict]:
        """One row for the CLI's ``emit``."""
        return [{
            "interval": self.interval, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "symbols_asked": self.symbols_asked, "symbols_done": self.symbols_done,
            "symbols_skipped": self.symbols_skipped, "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined, "requests": self.requests,
            "not_found": ", ".join(self.not_found), "failed": ", ".join(self.failed),
            "elapsed_s": round(self.elapsed_s, 3),
        }]


# ---------------------------------------------------------------------------------- the range


def _utc(value, what: str) -> pd.Timestamp:
    return schema.utc_timestamp(value, what)


def _step(interval: str) -> pd.Timedelta:
    return pd.Timedelta(days=1) if interval == "1d" else pd.Timedelta(interval.replace("m", "min"))


def resolve_range(interval: str, start, end=None, *, now: pd.Timestamp | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) in UTC; ``end`` defaults to now and is capped at now. For ``1m`` a bare date
    as ``end`` (midnight) means the whole of that day."""
    if interval not in ("1d", "1m"):
        raise DataError(f"interval {interval!r}: backfill takes 1d or 1m")
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    start_ts = _utc(start, "start")
    end_ts = now if end is None else _utc(end, "end")
    if interval == "1m" and end is not None and end_ts == end_ts.normalize():
        end_ts = end_ts + pd.Timedelta(days=1) - pd.Timedelta(minutes=1)
    end_ts = min(end_ts, now)
    if start_ts > end_ts:
        raise DataError(f"start {start_ts} is after end {end_ts}")
    return start_ts, end_ts


def expected_bounds(exchange: str, interval: str, start: pd.Timestamp, end: pd.Timestamp,
                    now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first, last) bar timestamps a complete symbol must reach, tolerance included (module doc)."""
    try:
        if interval == "1d":
            days = calendar.sessions(exchange, start, min(end, now - pd.Timedelta(days=1)))
            # Only sessions that had closed a day before now: the UTC instant ``now - 1 day`` read as an
            # exchange date is already tomorrow's date in the evening UTC (after 18:30 for NSE), which
            # asked for a bar of a session the providers may not publish yet, so a re-run never skipped.
            closed = calendar.previous_session(exchange, now - pd.Timedelta(days=1))
            days = days[days <= closed]
            if len(days) == 0:
                raise DataError("no session in range")
            return pd.Timestamp(days[0]).tz_localize("UTC"), pd.Timestamp(days[-1]).tz_localize("UTC")
        closed_by = min(end, now)
        days = calendar.sessions(exchange, start, closed_by)
        first = last = None
        for day in days:
            minutes = calendar.session_minutes(exchange, day)
            minutes = minutes[(minutes >= start) & (minutes + _step(interval) <= closed_by)]
            if len(minutes):
                first = minutes[0] if first is None else first
                last = minutes[-1]
        if first is None:
            raise DataError("no trading minute in range")
        return first + TOLERANCE_1M, last - TOLERANCE_1M
    except DataError:
        tol = TOLERANCE_1D if interval == "1d" else TOLERANCE_1M
        if interval == "1d":
            return start.normalize() + tol, end.normalize() - tol
        return start + tol, end - tol


def plan(stored: pd.DataFrame, symbols: Sequence[str], interval: str, start: pd.Timestamp, end: pd.Timestamp,
         first_needed: pd.Timestamp, last_needed: pd.Timestamp) -> tuple[dict[tuple[pd.Timestamp, pd.Timestamp], list[str]], list[str]]:
    """({(fetch start, fetch end): symbols}, complete symbols) from the stored ``symbol``/``ts`` rows."""
    step = _step(interval)
    spans = stored.groupby("symbol")["ts"].agg(["min", "max"]) if len(stored) else pd.DataFrame(columns=["min", "max"])
    ranges: dict[tuple[pd.Timestamp, pd.Timestamp], list[str]] = {}
    complete: list[str] = []
    for s in symbols:
        if s not in spans.index:
            ranges.setdefault((start, end), []).append(s)
            continue
        first, last = spans.at[s, "min"], spans.at[s, "max"]
        head, tail = first > first_needed, last < last_needed
        if not head and not tail:
            complete.append(s)
            continue
        if head:
            ranges.setdefault((start, first - step), []).append(s)
        if tail:
            ranges.setdefault((last + step, end), []).append(s)
    return ranges, complete


# ---------------------------------------------------------------------------------- the run


def _providers(settings, universe: pd.DataFrame, names: Sequence[str]) -> list:
    """The named providers, built as ``mintel.ingest.service.build_service`` builds them."""
    from mintel.providers.base import provider_factory

    out = []
    for name in names:
        provider_factory(name)  # unknown names fail here, with the list of known ones
        if name == "sim":
            from mintel.providers.sim import SimProvider

            out.append(SimProvider(universe=universe, seed=settings.seed))
        else:
            out.append(provider_factory(name)(settings.provider_settings(name), universe=universe))
    return [_Validating(p) for p in out]


class _Validating:
    """A provider whose answers are validated before the manager sees them: the invalid rows are kept
    aside (``take_rejected``) for quarantine under the provider's own name, and do not count as
    answers for their symbols (the manager may then ask another provider for them)."""

    def __init__(self, provider) -> None:
        self._provider = provider
        self._rejected: list[pd.DataFrame] = []

    def __getattr__(self, name: str):
        return getattr(self._provider, name)

    async def fetch_bars(self, symbols, interval, start=None, end=None) -> pd.DataFrame:
        bars = await self._provider.fetch_bars(symbols, interval, start, end)
        if bars.empty:
            return bars
        good, bad = schema.split_valid_bars(bars)
        if len(bad):
            self._rejected.append(bad.assign(source=bad["source"].fillna(self._provider.name)) if "source" in bad
                                  else bad.assign(source=self._provider.name))
        return good

    def take_rejected(self) -> pd.DataFrame | None:
        rejected, self._rejected = self._rejected, []
        return pd.concat(rejected, ignore_index=True) if rejected else None


def _write(lake, bars: pd.DataFrame, rejected: pd.DataFrame | None = None) -> tuple[int, int]:
    """Validate and append; (rows written, rows quarantined). ``rejected``: rows already found invalid."""
    now = pd.Timestamp.now(tz="UTC")
    good, bad = schema.split_valid_bars(bars.assign(ingested_at=now)) if len(bars) else (bars, bars.iloc[:0])
    if rejected is not None and len(rejected):
        bad = pd.concat([bad, rejected.assign(ingested_at=now)], ignore_index=True) if len(bad) else rejected.assign(ingested_at=now)
    quarantined = 0
    for source, rows in bad.groupby(bad["source"].fillna("unknown"), sort=True) if len(bad) else ():
        quarantined += lake.quarantine("bars", rows, source=str(source))
    written = lake.append("bars", good, source="backfill") if len(good) else 0
    return written, quarantined


async def _fetch(manager, lake, result: BackfillResult, symbols: list[str], interval: str, lo: pd.Timestamp,
                 hi: pd.Timestamp, not_found: set[str], failed: dict[str, str]):
    """One manager cycle for ``symbols`` over ``lo..hi``, written to the lake; returns its report."""
    data, report = await manager.fetch_bars(symbols, interval, lo, hi)
    result.requests += report.requests
    if len(data):
        data = data[(data["ts"] >= lo) & (data["ts"] <= hi)]
    rejected = [r for lane in manager.lanes.values() if (r := lane.provider.take_rejected()) is not None]
    written, quarantined = _write(lake, data, pd.concat(rejected, ignore_index=True) if rejected else None)
    result.rows_written += written
    result.rows_quarantined += quarantined
    not_found.update(report.not_found)
    for s in report.failed:
        failed.setdefault(s, report.reasons.get(s, "failed"))
    return report


async def backfill(settings, lake, universe: pd.DataFrame, *, providers: Sequence[str], interval: str, start,
                   end=None, chunk_symbols: int = 50, progress: bool = True, policy=None) -> BackfillResult:
    """Fetch the universe's ``interval`` bars from ``start`` to ``end`` (default now) into ``lake``,
    skipping what it already holds (module doc). ``policy``: the manager's mintel.ingest.manager.Policy."""
    from tqdm import tqdm

    from mintel.ingest.manager import ApiManager

    t0 = time.perf_counter()
    if chunk_symbols < 1:
        raise DataError(f"chunk_symbols {chunk_symbols}: must be at least 1")
    now = pd.Timestamp.now(tz="UTC")
    start_ts, end_ts = resolve_range(interval, start, end, now=now)
    symbols = list(dict.fromkeys(universe["symbol"].astype(str)))
    exchange = str(universe["exchange"].mode().iloc[0]) if "exchange" in universe and len(universe) else "NSE"
    result = BackfillResult(interval=interval, start=start_ts, end=end_ts, symbols_asked=len(symbols))

    stored = lake.read("bars", interval=interval, symbols=symbols, start=start_ts, end=end_ts, columns=["symbol", "ts"]) \
        if symbols else pd.DataFrame(columns=["symbol", "ts"])
    first_needed, last_needed = expected_bounds(exchange, interval, start_ts, end_ts, now)
    ranges, complete = plan(stored, symbols, interval, start_ts, end_ts, first_needed, last_needed)
    result.symbols_skipped = len(complete)
    todo = {s for group in ranges.values() for s in group}
    log.info("backfill %s %s..%s: %d symbols, %d complete, %d to fetch in %d range(s)", interval, start_ts, end_ts,
             len(symbols), len(complete), len(todo), len(ranges))

    not_found: set[str] = set()
    failed: dict[str, str] = {}
    bar = tqdm(total=len(symbols), desc=f"backfill {interval}", unit="sym", file=sys.stderr, disable=not progress)
    bar.update(len(complete))
    left = {s: sum(s in g for g in ranges.values()) for s in todo}  # ranges still to fetch per symbol
    manager = ApiManager(_providers(settings, universe, providers), settings, policy=policy) if ranges else None
    try:
        for (lo, hi), group in ranges.items():
            if lo > hi:  # nothing between the stored bars and the bound (rounding at the edges)
                for s in group:
                    left[s] -= 1
                    bar.update(left[s] == 0)
                continue
            for i in range(0, len(group), chunk_symbols):
                chunk = [s for s in group[i : i + chunk_symbols] if s not in not_found]
                report = await _fetch(manager, lake, result, chunk, interval, lo, hi, not_found, failed) if chunk else None
                if report is not None and len(chunk) > 1:
                    # A provider answering a batch may leave out the symbols it does not know (rather
                    # than say so): each failed symbol gets one more try alone, where it can say so.
                    for s in report.failed:
                        failed.pop(s, None)
                        await _fetch(manager, lake, result, [s], interval, lo, hi, not_found, failed)
                for s in group[i : i + chunk_symbols]:
                    left[s] -= 1
                    bar.update(left[s] == 0)
    finally:
        bar.close()
        if manager is not None:
            await manager.aclose()

    result.not_found = [s for s in symbols if s in not_found]
    result.failed = [s for s in symbols if s in failed and s not in not_found]
    result.reasons = {s: failed[s] for s in result.failed}
    result.symbols_done = len(todo) - len(result.not_found) - len(result.failed)
    result.elapsed_s = time.perf_counter() - t0
    if result.not_found:
        log.warning("backfill: %d symbol(s) no provider knows: %s", len(result.not_found), ", ".join(result.not_found[:20]))
    if result.failed:
        log.warning("backfill: %d symbol(s) failed: %s", len(result.failed), ", ".join(result.failed[:20]))
    return result


def run_backfill(settings, lake, universe: pd.DataFrame, **kw) -> BackfillResult:
    """``backfill`` on a fresh event loop (for the CLI)."""
    return asyncio.run(backfill(settings, lake, universe, **kw))
