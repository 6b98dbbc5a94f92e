"""The ingestion service: the lake's single writer.

Each cycle: ask the provider for the bars completed since the last one -> validate (bad rows to
quarantine with a reason) -> append to the lake -> update the day state and write the snapshot ->
append a metrics row. On start the state is rebuilt from the lake, so a restart resumes where the
last acknowledged cycle ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel import calendar, schema
from mintel.analytics.engine import LiveEngine
from mintel.config import Settings
from mintel.ingest.bars import BarBuilder
from mintel.lake import Lake

log = logging.getLogger(__name__)

WARMUP_DAYS = 30  # calendar days of bars read on restart to rebuild the indicator state
CATCHUP_BARS = 60  # a symbol that missed bars is fetched again from its own last bar, this far back at most
_NAT = np.iinfo(np.int64).min


@dataclass
class CycleReport:
    cycle: int
    market_ts: pd.Timestamp | None  # open of the newest bar written
    symbols: int
    rows_written: int
    rows_quarantined: int
    fetch_ms: float
    processing_ms: float  # payload in hand -> rows in the lake, indicators, snapshot written
    compact_ms: float  # compaction, every `compact_every` cycles
    cycle_ms: float

    def line(self) -> str:
        when = self.market_ts.strftime("%Y-%m-%d %H:%M UTC") if self.market_ts is not None else "-"
        return (
            f"cycle {self.cycle:>5}  market {when}  symbols {self.symbols:>5}  rows {self.rows_written:>6}"
            f"  quarantined {self.rows_quarantined:>3}  fetch {self.fetch_ms:7.1f} ms"
            f"  processing {self.processing_ms:7.1f} ms  cycle {self.cycle_ms:7.1f} ms"
        )


class IngestService:
    """Polls the provider (or the API manager over several) for the universe's bars and keeps the lake current."""

    def __init__(self, settings: Settings, lake: Lake, provider, universe: pd.DataFrame, *, clock=None,
                 now_fn: Callable[[], pd.Timestamp] | None = None, alerts=None, compact_in_background: bool = True) -> None:
        self.settings = settings
        self.alerts = alerts  # mintel.alerts.AlertEngine: this cycle's opportunities and outages become alerts
        self._announced = None  # the cycle output whose opportunities the current cycle announced
        self._unalerted = None  # the last cycle's opportunities without an alert on record, found on start
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="mintel-lake-writer")  # see process()
        self.now_fn = now_fn or (lambda: pd.Timestamp.now(tz="UTC"))
        self.exchange = str(universe["exchange"].mode().iloc[0]) if "exchange" in universe and len(universe) else "NSE"
        self.builder = BarBuilder(settings.interval) if settings.source == "quotes" else None
        self.lake = lake
        self.provider = provider
        self.universe = universe
        self.symbols = universe["symbol"].tolist()
        self.clock = clock  # the simulator's clock, when the provider is the simulator
        self.interval = settings.interval
        self.engine = LiveEngine(universe, self.interval, cooldown=settings.cooldown)
        self.next_ts: pd.Timestamp | None = None  # first bar open not yet written
        # per symbol, the first bar open not yet written (ns; _NAT: none yet): a symbol that no provider
        # answered for a cycle is asked again from its own last bar, so its missed bars are not lost
        self._sym_index = pd.Index(self.symbols)
        self._next_ns = np.full(len(self.symbols), _NAT, dtype=np.int64)
        self._step_ns = pd.Timedelta(settings.interval).value
        self.last_output = None  # the engine's output of the last cycle with bars
        self.cycle_no = 0
        # Compaction runs beside the cycles on a worker thread (the lake's manifest protocol keeps
        # readers exact while the writer appends); False: inside the cycle, as before.
        self.compactor = lake.background_compactor(tiered=True) if compact_in_background else None
        self._resume()

    def _resume(self) -> None:
        """Rebuild the live state (day figures, indicators) and the resume point from the lake."""
        latest = self.lake.latest("bars", interval=self.interval, lookback_partitions=2)
        latest = latest[latest["symbol"].isin(self.symbols)]
        if latest.empty:
            return
        last_ts = latest["ts"].max()
        self.next_ts = last_ts + pd.Timedelta(self.interval)
        self._advance(latest)
        # Enough history for every indicator: the intraday volume ratio looks 20 sessions back.
        history = self.lake.read_bars(self.symbols, self.interval, start=last_ts - pd.Timedelta(days=WARMUP_DAYS))
        recent = self.lake.read("opportunities", start=last_ts - pd.Timedelta(days=2))
        # The engine as of the cycle before the last, then the last cycle's bars again: the state is the
        # same, and what that cycle announced is known, so the restart restores what a stop between its
        # bars and its opportunities (a kill, a full disk) left unwritten.
        last = (history["ts"] == last_ts).to_numpy()
        prior = recent[recent["ts"] < last_ts] if len(recent) else recent
        self.engine = LiveEngine.from_history(history[~last], self.universe, self.interval, recent=prior,
                                              cooldown=self.settings.cooldown)
        restored = self._restore_last_cycle(history[last], recent, last_ts) if last.any() else None
        if self.alerts is not None:
            self._realert(last_ts, [recent[recent["ts"] == last_ts] if len(recent) else None, restored])
        if self.clock is not None and hasattr(self.clock, "advance_to"):
            self.clock.advance_to(self.next_ts)
        log.info("resuming after %s (%d symbols, %d bars of history)", last_ts, len(latest), len(history))

    def _restore_last_cycle(self, bars: pd.DataFrame, recent: pd.DataFrame, last_ts: pd.Timestamp) -> pd.DataFrame | None:
        """The last cycle's bars through the engine again: writes the opportunities the lake lacks (returned)
        and the snapshot."""
        out = self.engine.update(bars, pd.Timestamp.now(tz="UTC"))
        self.last_output = out
        table = out.opportunities_table
        restored = None
        if table.num_rows:
            have = set(zip(recent["ts"], recent["symbol"], recent["kind"])) if len(recent) else set()
            new = out.opportunities
            keep = [(t, s, k) not in have for t, s, k in zip(new["ts"], new["symbol"], new["kind"])]
            if any(keep):
                self.lake.append("opportunities", table.filter(pa.array(keep)))
                restored = new[keep].reset_index(drop=True)
                log.warning("restored %d opportunities of the cycle at %s (the last run stopped before writing them)",
                            sum(keep), last_ts)
        self.lake.write_snapshot(out.snapshot_table)
        return restored

    def _realert(self, last_ts: pd.Timestamp, parts: list[pd.DataFrame | None]) -> None:
        """The last cycle's opportunities that qualify for an alert without one on record go to the alerts
        again, as their own cycle before the first new one (so the cooldown and the per-cycle cap apply
        as in an uninterrupted run): the last run stopped before raising or recording them."""
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            return
        pending = self.alerts.unrecorded(pd.concat(parts, ignore_index=True))
        if len(pending):
            self._unalerted = pending
            log.warning("%d opportunities of the cycle at %s have no alert on record (the last run stopped before "
                        "raising or recording them): alerting them again", len(pending), last_ts)

    async def cycle(self) -> CycleReport:
        t0 = time.perf_counter()
        self.cycle_no += 1
        if self.clock is not None and getattr(self.clock, "mode", None) == "stepped":
            self.clock.advance(minutes=1)
        bars, fetched = await self._fetch()
        t1 = time.perf_counter()
        written, quarantined, newest = self.process(bars)
        t2 = time.perf_counter()
        if self.settings.compact_every and self.cycle_no % self.settings.compact_every == 0:
            # Bounds the file count: the partitions being written merge only their new files (cheap);
            # a partition merges whole once, after it stops being written.
            if self.compactor is not None:
                self.compactor.submit()  # returns at once; runs after a pass still in flight
            else:
                self.lake.compact(tiered=True)
        t3 = time.perf_counter()
        report = CycleReport(
            cycle=self.cycle_no, market_ts=newest, symbols=int(bars["symbol"].nunique()) if len(bars) else 0,
            rows_written=written, rows_quarantined=quarantined, fetch_ms=(t1 - t0) * 1e3,
            processing_ms=(t2 - t1) * 1e3, compact_ms=(t3 - t2) * 1e3, cycle_ms=(t3 - t0) * 1e3,
        )
        metrics = self._write_metrics(report, fetched)
        if self.alerts is not None:  # queues network sends; never waits on them
            if self._unalerted is not None:  # as their own cycle would have, before this one's
                restored, self._unalerted = self._unalerted, None
                self.alerts.on_cycle(restored, None, self.now_fn())
            self.alerts.on_cycle(self.new_opportunities, metrics, self.now_fn())
        return report

    async def _fetch(self) -> tuple[pd.DataFrame, object | None]:
        """This cycle's bars, from one provider or through the API manager (then with its report).

        With ``source = "quotes"`` the cycle polls quote snapshots (batched: far fewer requests than
        one bar request per symbol), keeps them in the quotes table and builds 1-minute bars from them.
        """
        if self.builder is None:
            start = self._fetch_start()
            bars, report = _unpack(await self.provider.fetch_bars(self.symbols, self.interval, start=start))
            if start is not None and start != self.next_ts and len(bars):
                bars = self._drop_stored(bars)  # the others' bars before their own next one are in the lake
            return bars, report
        quotes, report = _unpack(await self.provider.fetch_quotes(self.symbols))
        if len(quotes):
            quotes = quotes.assign(ingested_at=self.now_fn())
            ok = np.isfinite(quotes["price"].to_numpy(dtype=float, na_value=np.nan)) & (quotes["price"] > 0).to_numpy() & quotes["ts"].notna().to_numpy()
            if (~ok).any():
                bad = quotes[~ok].assign(reason="quote price missing, not finite or not positive, or no time")
                self.lake.quarantine("quotes", bad, source=str(bad["source"].iloc[0]))
            self.lake.append("quotes", quotes[ok])
        return self.builder.add(quotes, now=self.now_fn()), report

    def _advance(self, bars: pd.DataFrame) -> None:
        """Move each symbol's resume point past its newest bar in ``bars``."""
        idx = self._sym_index.get_indexer(bars["symbol"])
        ts = pd.to_datetime(bars["ts"], utc=True).to_numpy(dtype="datetime64[ns]").view(np.int64) + self._step_ns
        ok = idx >= 0
        np.maximum.at(self._next_ns, idx[ok], ts[ok])

    def _fetch_start(self) -> pd.Timestamp | None:
        """``next_ts``, or earlier when a symbol is behind (at most CATCHUP_BARS back)."""
        if self.next_ts is None:
            return None
        known = self._next_ns[self._next_ns != _NAT]
        if not len(known):
            return self.next_ts
        floor = self.next_ts.value - CATCHUP_BARS * self._step_ns
        oldest = max(int(known.min()), floor)
        return self.next_ts if oldest >= self.next_ts.value else pd.Timestamp(oldest, tz="UTC")

    def _drop_stored(self, bars: pd.DataFrame) -> pd.DataFrame:
        """``bars`` without those before their symbol's resume point (already in the lake)."""
        idx = self._sym_index.get_indexer(bars["symbol"])
        nxt = np.where(idx >= 0, self._next_ns[idx], _NAT)
        ts = pd.to_datetime(bars["ts"], utc=True).to_numpy(dtype="datetime64[ns]").view(np.int64)
        keep = (nxt == _NAT) | (ts >= nxt)
        return bars if keep.all() else bars[keep].reset_index(drop=True)

    @property
    def new_opportunities(self) -> pd.DataFrame | None:
        """The opportunities announced by the current cycle (None without any)."""
        return None if self._announced is None else self._announced.opportunities

    def market_open(self) -> bool:
        """Real providers follow the exchange's sessions; the simulator's clock is always in session."""
        if self.clock is not None or self.settings.always_on:
            return True
        return calendar.is_open(self.exchange, self.now_fn())

    def process(self, bars: pd.DataFrame) -> tuple[int, int, pd.Timestamp | None]:
        """Validate, append, update state and snapshot. Returns (rows written, rows quarantined, newest ts)."""
        self._announced = None
        if bars.empty:
            return 0, 0, None
        bars = bars.assign(ingested_at=pd.Timestamp.now(tz="UTC"))
        good, bad = schema.split_valid_bars(bars)
        quarantined = 0
        for source, rows in bad.groupby(bad["source"].fillna("unknown"), sort=True) if len(bad) else ():
            quarantined += self.lake.quarantine("bars", rows, source=str(source))
        # The bars are written on the writer thread while the engine works on them (Parquet encoding and
        # fsync release the GIL); they are in the lake before anything derived from them is published.
        bars_written = self._writer.submit(self.lake.append, "bars", good, source="ingest") if len(good) else None
        try:
            out = self.engine.update(good, pd.Timestamp.now(tz="UTC")) if len(good) else None
        finally:
            written = bars_written.result() if bars_written is not None else 0  # raises what the write raised
        newest = None
        if len(bad):  # a bad bar was answered and quarantined: asking again would only quarantine it again
            bound = [t for t in (good["ts"].max() if len(good) else None, self.next_ts) if t is not None]
            if bound:  # never past this cycle: a bad bar with a skewed ts must not hide good ones
                ts = pd.to_datetime(bad["ts"], utc=True, errors="coerce")
                self._advance(bad[ts.notna() & (ts <= max(bound))])
        if out is not None:
            newest = good["ts"].max()
            self.next_ts = newest + pd.Timedelta(self.interval)
            self._advance(good)
            opportunities = None
            if out.opportunities_table.num_rows:  # beside the snapshot: two files, two directories
                opportunities = self._writer.submit(self.lake.append, "opportunities", out.opportunities_table)
                self._announced = out  # its pandas view is made when the alerts read it, off the processing time
            try:
                self.lake.write_snapshot(out.snapshot_table)
            finally:
                if opportunities is not None:
                    opportunities.result()
            self.last_output = out
        return written, quarantined, newest

    def _write_metrics(self, r: CycleReport, fetched=None) -> pd.DataFrame:
        row = {
            "ts": pd.Timestamp.now(tz="UTC"), "scope": "cycle", "name": "ingest", "cycle": r.cycle,
            "symbols_requested": len(self.symbols), "symbols_answered": r.symbols, "rows_written": r.rows_written,
            "rows_quarantined": r.rows_quarantined, "fetch_ms": r.fetch_ms, "processing_ms": r.processing_ms,
            "cycle_ms": r.cycle_ms,
        }
        if fetched is not None:
            row.update(requests=fetched.requests, errors=len(fetched.failed), rate_limited=fetched.rate_limited,
                       error_rate=fetched.error_rate, symbols_answered=fetched.answered)
        rows = [row]
        if hasattr(self.provider, "health"):  # per provider: capacity, used rate, errors, latency, breaker
            rows += self.provider.health(row["ts"])
        frame = pd.DataFrame(rows)
        self.lake.append("metrics", frame)
        return frame

    async def run(self, cycles: int | None = None, on_cycle: Callable[[CycleReport], None] | None = None,
                  on_idle: Callable[[pd.Timestamp], None] | None = None) -> list[CycleReport]:
        """Run cycles on a steady clock (every ``interval_s``; back to back when 0) until ``cycles`` are done."""
        interval_s = self.settings.interval_s
        reports: list[CycleReport] = []
        start = time.monotonic()
        k = 0
        idle_since = None
        try:
            while cycles is None or k < cycles:
                if not self.market_open():  # outside the session: idle, no requests spent
                    if idle_since is None:
                        idle_since = self.now_fn()
                        nxt = calendar.session_bounds(self.exchange, calendar.current_or_next_session(self.exchange, idle_since))[0]
                        log.warning("%s market closed; idling until %s (always_on = true to ingest anyway)", self.exchange, nxt)
                        if on_idle:
                            on_idle(nxt)
                    await asyncio.sleep(min(max(interval_s, 1.0), 30.0))
                    continue
                idle_since = None
                report = await self.cycle()
                k += 1
                if on_cycle:
                    on_cycle(report)
                if len(reports) < 10_000:
                    reports.append(report)
                if interval_s > 0 and (cycles is None or k < cycles):
                    # Steady clock: the next tick is start + k * interval; missed ticks are skipped.
                    now = time.monotonic()
                    ticks = max(k, int((now - start) / interval_s) + 1)
                    await asyncio.sleep(max(0.0, start + ticks * interval_s - now))
        finally:
            if self.compactor is not None:  # a pass in flight finishes (bounded: one pass); none is cut short
                await asyncio.to_thread(self.compactor.wait)
            await self.provider.aclose()
            if self.alerts is not None:
                await self.alerts.aclose()  # waits a bounded time for queued sends, records the rest
        return reports


def build_service(settings: Settings, lake: Lake, universe: pd.DataFrame, *, policy=None, alerts=None) -> IngestService:
    """The service for the settings' providers: the simulator alone, or several behind the API manager
    (``policy``: its retry/breaker policy, mintel.ingest.manager.Policy; ``alerts``: an AlertEngine,
    default one from the settings, False for none)."""
    from mintel.providers.base import provider_factory
    from mintel.providers.sim import SimClock, SimProvider

    exchange = str(universe["exchange"].mode().iloc[0]) if "exchange" in universe and len(universe) else "NSE"
    clock = None
    providers = []
    for name in settings.providers:
        provider_factory(name)  # unknown names fail here, with the list of known ones
        if name == "sim":
            clock = SimClock(mode="stepped" if settings.interval_s <= 0 else "wall", speed=settings.sim_speed, exchange=exchange)
            providers.append(SimProvider(universe=universe, seed=settings.seed, clock=clock))
        else:
            providers.append(provider_factory(name)(settings.provider_settings(name), universe=universe))
    from mintel.alerts import AlertEngine

    alerts = AlertEngine(settings, lake) if alerts is None else alerts or None
    if len(providers) == 1 and settings.providers[0] == "sim":
        return IngestService(settings, lake, providers[0], universe, clock=clock, alerts=alerts)
    from mintel.ingest.manager import ApiManager

    return IngestService(settings, lake, ApiManager(providers, settings, policy=policy), universe, clock=clock, alerts=alerts)


def _unpack(result) -> tuple[pd.DataFrame, object | None]:
    if hasattr(result, "report"):  # ApiManager: rows plus what it asked, answered, retried, failed over
        return result.data, result.report
    return result, None


def report_dict(r: CycleReport) -> dict:
    d = asdict(r)
    d["market_ts"] = r.market_ts.isoformat() if r.market_ts is not None else None
    return d
