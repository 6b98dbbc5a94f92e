"""A long run with mixed provider faults: three local providers on 127.0.0.1 (tests/providers/servers.py)
behind the real API manager and ingestion service, with a seeded schedule of faults.

What is injected (``FaultRun.schedule``), per provider and cycle at most one scripted fault (the
next request it gets: slow, timeout, 5xx, reset, disconnect, truncated/garbage/wrong-shape JSON,
another symbol's series, 429 with seconds, without and with an HTTP-date Retry-After from a server
whose clock is 10 minutes off, duplicated or shuffled bars), bad bars by ``(symbol, ts)`` (NaN close,
negative low, zero open, high below low; at most one symbol a minute, served alike by every
provider), and one provider down (every request 503) for a stretch of cycles.

The accounting checked afterwards, from what the servers say they served (``srv.injected``):

- per provider, the manager's ``errors`` equal the failure faults served: each failed request is
  one error (timeout, 5xx, reset, disconnect, malformed JSON, wrong symbol; an empty wrong-shape
  answer from Alpha Vantage is one error when the symbols are asked elsewhere), and the retry or
  failover that follows is not an error; ``rate_limited`` equals the 429s served;
- no cycle loses a symbol (retries and failover absorb every fault), so the lake holds every good
  bar served, once, with the served values; the quarantine holds exactly the bad bars, once each,
  with the reason of their fault;
- the provider that went down has its breaker open and closed again, and answers again at the end.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pytest

from mintel.config import Settings
from mintel.errors import ProviderError
from mintel.ingest.manager import Policy
from mintel.ingest.service import build_service
from mintel.lake import Lake
from tests.providers.servers import OHLCV, SYMBOLS, AlphaVantageServer, TwelveDataServer, YahooServer

UNIVERSE = pd.DataFrame({"symbol": list(SYMBOLS), "name": "", "sector": "Test", "industry": "", "exchange": "NSE"})
FAILURES = ("timeout", "500", "502", "503", "reset", "disconnect", "truncate", "garbage", "wrong_shape", "wrong_symbol")
RATE_LIMITS = ("429", "429_bare", "429_date")
HARMLESS = ("slow", "duplicate", "shuffle")
# Twelve Data's credits reset at the top of the minute: a 429 without Retry-After waits for it (up to 60 s).
FAULTS = {"yahoo": FAILURES + RATE_LIMITS + HARMLESS, "alphavantage": FAILURES + RATE_LIMITS + HARMLESS,
          "twelvedata": FAILURES + ("429",) + HARMLESS}
REASONS = {  # row fault -> the quarantine reason it must produce
    "nan_close": r"^close is not a finite number$", "negative_low": r"^low -[\d.]+ is not positive$",
    "zero_open": r"^open 0 is not positive$", "high_below_low": r"^high [\d.]+ < low [\d.]+$",
}
SKEW_S = {"alphavantage": 600.0, "yahoo": -300.0}  # servers whose clocks are off
TIMEOUT_S = 1.0  # a "timeout" fault answers after twice this; an answer under load takes far less


@dataclass
class Figures:
    cycles: int = 0
    elapsed_s: float = 0.0
    injected: dict[str, Counter] = field(default_factory=dict)  # provider -> fault -> served
    bad_rows: Counter = field(default_factory=Counter)  # row fault -> bars corrupted (in the ingested range)
    quarantined: Counter = field(default_factory=Counter)  # row fault -> quarantined rows
    errors: dict[str, int] = field(default_factory=dict)  # provider -> manager errors
    rate_limited: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    transitions: dict[str, list[str]] = field(default_factory=dict)  # provider -> breaker states in order
    cycles_with_losses: int = 0
    timeouts: Counter = field(default_factory=Counter)  # provider -> requests that timed out, injected or not
    recovered_answers: int = 0  # symbols the provider that was down answered after the run's faults
    bars_expected: int = 0
    bars_in_lake: int = 0
    rss_mb: list[float] = field(default_factory=list)  # every rss_every cycles
    arrow_mb: list[float] = field(default_factory=list)  # pyarrow's memory pool, at the same samples

    def spurious_timeouts(self, name: str) -> int:
        return self.timeouts[name] - self.injected[name]["timeout"]

    def survived(self) -> Counter:
        total = Counter()
        for c in self.injected.values():
            total.update(c)
        return total

    def lines(self) -> list[str]:
        out = [f"{self.cycles} cycles in {self.elapsed_s:.1f} s ({self.elapsed_s / max(self.cycles, 1) * 1e3:.0f} ms a cycle)"]
        total = self.survived()
        out.append("faults injected (all survived: no cycle lost a symbol): "
                   + ", ".join(f"{k} {v}" for k, v in sorted(total.items())) + f"  = {sum(total.values())}")
        out.append("bad bars injected / quarantined: " + ", ".join(
            f"{k} {self.bad_rows[k]}/{self.quarantined[k]}" for k in REASONS))
        for p in self.errors:
            out.append(f"{p:>12}: requests {self.requests[p]}, errors {self.errors[p]} (timeouts not injected: "
                       f"{self.spurious_timeouts(p)}), rate limited {self.rate_limited[p]}, "
                       f"breaker {_breaker_story(self.transitions[p])}")
        out.append(f"bars: {self.bars_in_lake} in the lake of {self.bars_expected} good bars served; "
                   f"cycles that lost a symbol: {self.cycles_with_losses}")
        if self.rss_mb:
            out.append(f"RSS MB: start {self.rss_mb[0]:.0f}, after warm-up {self.rss_mb[min(2, len(self.rss_mb) - 1)]:.0f}, "
                       f"end {self.rss_mb[-1]:.0f}, max {max(self.rss_mb):.0f}; pyarrow pool MB end {self.arrow_mb[-1]:.1f}")
        return out


def _breaker_story(states: list[str]) -> str:
    if not states:
        return "closed throughout"
    c = Counter(states)
    return f"opened {c['open']}x, probed {c['half_open']}x, closed again {c['closed']}x, ends {states[-1]}"


class FaultRun:
    """Servers, service and schedule of one mixed-fault run (``run()`` then ``check()``)."""

    def __init__(self, lake: Lake, *, cycles: int, seed: int = 8, fault_rate: float = 0.5, bad_row_rate: float = 0.3,
                 down: str = "twelvedata", rss_every: int = 0) -> None:
        self.lake, self.cycles, self.rss_every = lake, cycles, rss_every
        self.rng = random.Random(seed)
        self.fault_rate, self.bad_row_rate, self.down = fault_rate, bad_row_rate, down
        self.down_from, self.down_to = cycles // 3, cycles // 3 + max(8, cycles // 10)
        self.servers = {"yahoo": YahooServer(), "twelvedata": TwelveDataServer(), "alphavantage": AlphaVantageServer()}
        self.figures = Figures()

    def __enter__(self) -> "FaultRun":
        for name, srv in self.servers.items():
            srv.start()
            srv.faults.clock_skew_s = SKEW_S.get(name, 0.0)
            srv.faults.timeout_s = TIMEOUT_S * 2
        yahoo = self.servers["yahoo"]
        self.start = yahoo.bars(list(SYMBOLS), "1m")["ts"].max() - pd.Timedelta(minutes=10)
        # What the servers serve (they keep two sessions of bars): recorded as their clocks move.
        self.served = [yahoo.bars(list(SYMBOLS), "1m", start=self.start)[["symbol", "ts", *OHLCV]]]
        self.newest = self.served[0]["ts"].max()
        # Bad bars, the same at every server: the newest minute of a cycle, at most one symbol a minute
        # (the others move the resume point past it, so each is served in one cycle's answers).
        self.bad: dict = {}
        for srv in self.servers.values():
            srv.faults.bad_rows = self.bad
        settings = Settings(lake=self.lake.root, providers=tuple(self.servers), compact_every=0,
                            provider={n: s.settings(timeout_s=TIMEOUT_S, requests_per_minute=6000, requests_per_day=1e7) for n, s in self.servers.items()})
        policy = Policy(retries=1, backoff_s=0.02, failure_threshold=3, cooldown_s=0.25, default_retry_after_s=0.5, seed=8)
        self.svc = build_service(settings, self.lake, UNIVERSE, policy=policy, alerts=False)
        self.svc.next_ts = self.start
        for lane in self.manager.lanes.values():
            lane.provider.fetch_bars = self._timed(lane.name, lane.provider.fetch_bars)
        return self

    def _timed(self, name: str, fetch):
        """``fetch`` counting the calls that timed out (the manager's timeout cancels them; or httpx's)."""
        timeouts = self.figures.timeouts

        async def fetch_bars(*args, **kwargs):
            try:
                return await fetch(*args, **kwargs)
            except asyncio.CancelledError:
                timeouts[name] += 1
                raise
            except ProviderError as exc:
                timeouts[name] += getattr(exc, "error_kind", None) == "timeout"
                raise

        return fetch_bars

    def __exit__(self, *exc) -> None:
        for srv in self.servers.values():
            srv.stop()

    @property
    def manager(self):
        return self.svc.provider

    def _record_served(self) -> None:
        new = self.servers["yahoo"].bars(list(SYMBOLS), "1m", start=self.newest + pd.Timedelta(seconds=1))
        if len(new):
            self.served.append(new[["symbol", "ts", *OHLCV]])
            self.newest = new["ts"].max()

    def _arm(self, k: int) -> None:
        if k:
            self._record_served()
        if self.rng.random() < self.bad_row_rate:
            self.bad[(self.rng.choice(SYMBOLS), self.newest)] = self.rng.choice(list(REASONS))
        for name, srv in self.servers.items():
            down = name == self.down and self.down_from <= k < self.down_to
            srv.faults.server_error = -1 if down else 0
            if not down and not srv.faults.script and self.rng.random() < self.fault_rate:
                srv.faults.script = [self.rng.choice(FAULTS[name])]  # at most one fault waiting per provider

    async def _run(self) -> None:
        import psutil

        proc = psutil.Process()
        t0 = time.perf_counter()
        for k in range(self.cycles):
            self._arm(k)
            report = await self.svc.cycle()  # ingestion never stops: every cycle returns its report
            assert report.cycle == k + 1
            for srv in self.servers.values():
                srv.advance(1)
            if self.down_from <= k < self.down_to + 3:
                await asyncio.sleep(0.04)  # wall time for the breaker's cooldown to pass while it is down
            if self.rss_every and k % self.rss_every == 0:
                for srv in self.servers.values():  # the test servers' own log is not mintel's memory
                    srv.forget_requests()
                gc.collect()
                self.figures.rss_mb.append(proc.memory_info().rss / 2**20)
                self.figures.arrow_mb.append(pa.total_allocated_bytes() / 2**20)
        for srv in self.servers.values():  # a fault still waiting was never served
            srv.faults.script = []
        mark = self.manager.lanes[self.down].stats.symbols_answered
        # The provider that was down is probed again and answers: a few clean cycles to see it.
        for _ in range(40):
            self._record_served()
            await self.svc.cycle()
            for srv in self.servers.values():
                srv.advance(1)
            self.figures.recovered_answers = self.manager.lanes[self.down].stats.symbols_answered - mark
            if self.manager.lanes[self.down].breaker.state == "closed" and self.figures.recovered_answers:
                break
            await asyncio.sleep(0.05)
        self.figures.elapsed_s = time.perf_counter() - t0
        self.figures.cycles = self.svc.cycle_no
        if self.rss_every:
            self.figures.rss_mb.append(proc.memory_info().rss / 2**20)
            self.figures.arrow_mb.append(pa.total_allocated_bytes() / 2**20)
        await self.manager.aclose()

    def run(self) -> Figures:
        logger = logging.getLogger("mintel")
        level = logger.level
        logger.setLevel(logging.ERROR)  # thousands of expected warnings
        try:
            asyncio.run(self._run())
        finally:
            logger.setLevel(level)  # later tests read mintel's log (caplog)
        f = self.figures
        for name, srv in self.servers.items():
            lane = self.manager.lanes[name]
            f.injected[name] = Counter(srv.injected)
            f.errors[name], f.rate_limited[name], f.requests[name] = lane.stats.errors, lane.stats.rate_limited, lane.stats.requests
            f.transitions[name] = [state for _, state in lane.breaker.transitions]
        bars = self.lake.read_bars(interval="1m")
        last = bars["ts"].max()
        want = pd.concat(self.served, ignore_index=True)
        want = want[want["ts"] <= last]
        self.bad_in_range = {key: kind for key, kind in self.bad.items() if key[1] <= last}
        bad_keys = pd.MultiIndex.from_tuples(list(self.bad_in_range)) if self.bad_in_range else None
        self.want = want[~want.set_index(["symbol", "ts"]).index.isin(bad_keys)] if bad_keys is not None else want
        self.bars = bars
        f.bars_expected, f.bars_in_lake = len(self.want), len(bars)
        f.bad_rows = Counter(self.bad_in_range.values())
        self.quarantine = self.lake.read("quarantine")
        for (sym, ts), kind in self.bad_in_range.items():
            rows = self.quarantine[(self.quarantine["symbol"] == sym) & (self.quarantine["row_ts"] == ts)]
            f.quarantined[kind] += int(rows["reason"].str.match(REASONS[kind]).sum())
        metrics = self.lake.read("metrics")
        cycles = metrics[metrics["scope"] == "cycle"]
        f.cycles_with_losses = int((cycles["errors"] > 0).sum())  # symbols a cycle failed to get (after retries)
        self.metrics = metrics
        return f

    def check(self) -> None:
        f = self.figures
        # Accounting: every failure fault served is one manager error; every 429 one rate-limited answer.
        # A request may also time out without an injected fault when the machine is loaded: counted apart.
        for name in self.servers:
            served = f.injected[name]
            assert f.timeouts[name] >= served["timeout"], (name, f.timeouts[name], served)
            expected = sum(served[x] for x in FAILURES) + f.spurious_timeouts(name)
            assert f.errors[name] == expected, (name, f.errors[name], expected, f.timeouts[name], served)
            assert f.rate_limited[name] == sum(served[x] for x in RATE_LIMITS), (name, f.rate_limited[name], served)
        # Nothing lost: every good bar served is in the lake once, with the served values.
        assert f.cycles_with_losses == 0
        assert not self.bars.duplicated(["symbol", "ts"]).any()
        merged = self.want.merge(self.bars, on=["symbol", "ts"], how="left", suffixes=("_want", ""), indicator=True)
        assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][["symbol", "ts"]].head()
        assert len(self.bars) == len(self.want)
        for c in ("open", "high", "low", "close", "volume"):
            assert (merged[c] == merged[f"{c}_want"]).all(), c
        # Bad bars: each quarantined once, with its reason; nothing else quarantined.
        assert f.quarantined == f.bad_rows, (f.quarantined, f.bad_rows)
        assert len(self.quarantine) == len(self.bad_in_range)
        # The provider that went down: routed around (its breaker opened), probed, closed, answering again.
        states = f.transitions[self.down]
        assert "open" in states and states[-1] == "closed", states
        prov = self.metrics[(self.metrics["scope"] == "provider") & (self.metrics["name"] == self.down)]
        seen = prov.sort_values("ts")["state"].tolist()
        # The health rows sample the state once a cycle: a cycle slower than the cooldown sees it half-open.
        assert {"open", "half_open"} & set(seen) and seen[-1] == "closed", seen
        assert f.recovered_answers > 0, "the provider that was down never answered again"


def test_mixed_faults_long_run(tmp_path):
    with FaultRun(Lake(tmp_path / "lake"), cycles=80, seed=8) as run:
        figures = run.run()
        print("\n".join(figures.lines()))
        run.check()
    total = figures.survived()
    assert sum(total[x] for x in FAILURES) >= 10 and sum(total[x] for x in RATE_LIMITS) >= 3
    assert sum(figures.bad_rows.values()) >= 10


# ------------------------------------------------------------------------------ single faults the run found

def _fetch(srv, cls, symbols, **settings):
    async def go():
        p = cls(srv.settings(timeout_s=TIMEOUT_S, **settings))
        try:
            start = srv.bars(list(SYMBOLS), "1m")["ts"].max() - pd.Timedelta(minutes=3)
            return await p.fetch_bars(symbols, "1m", start=start)
        finally:
            await p.aclose()
    return asyncio.run(go())


PROVIDER_CLASSES = {"yahoo": ("mintel.providers.yahoo", "YahooProvider", YahooServer),
                    "twelvedata": ("mintel.providers.twelvedata", "TwelveDataProvider", TwelveDataServer),
                    "alphavantage": ("mintel.providers.alphavantage", "AlphaVantageProvider", AlphaVantageServer)}


def _provider(name):
    import importlib

    module, cls, server = PROVIDER_CLASSES[name]
    return getattr(importlib.import_module(module), cls), server


@pytest.mark.parametrize("name", ["yahoo", "alphavantage"])
@pytest.mark.parametrize("skew_s", [600.0, -600.0])
def test_http_date_retry_after_is_read_on_the_servers_clock(name, skew_s):
    from mintel.errors import RateLimited

    cls, server = _provider(name)
    with server() as srv:
        srv.faults.clock_skew_s = skew_s  # its Date header and its Retry-After date are both 10 minutes off
        srv.faults.script = ["429_date"]
        with pytest.raises(RateLimited) as info:
            _fetch(srv, cls, ["TCS"])
    assert 0 <= info.value.retry_after_s <= 2  # "one second from now" on its clock, not 10 minutes (or none)


@pytest.mark.parametrize("name", ["yahoo", "twelvedata", "alphavantage"])
def test_another_symbols_series_is_never_stored_as_the_asked_one(name):
    from mintel.errors import ProviderUnavailable

    cls, server = _provider(name)
    with server() as srv:
        srv.faults.script = ["wrong_symbol"]
        if name == "twelvedata":  # a batch: that symbol is left out (the manager fails it over), the rest kept
            bars = _fetch(srv, cls, ["TCS", "INFY"])
            assert set(bars["symbol"]) == {"INFY"}
            got = bars.set_index("ts")["close"]
            want = srv.bars(["INFY"], "1m").set_index("ts")["close"]
            assert (got == want.loc[got.index]).all()
            srv.faults.script = ["wrong_symbol"]
        with pytest.raises(ProviderUnavailable, match="TCS"):
            _fetch(srv, cls, ["TCS"])


def test_a_twelvedata_answer_of_another_shape_is_malformed_not_unknown_symbols():
    from mintel.errors import ProviderUnavailable, SymbolNotFound
    from mintel.providers.twelvedata import TwelveDataProvider

    with TwelveDataServer() as srv:
        for symbols in (["TCS", "INFY"], ["TCS"]):
            srv.faults.script = ["wrong_shape"]
            with pytest.raises(ProviderUnavailable) as info:
                _fetch(srv, TwelveDataProvider, symbols)
            assert not isinstance(info.value, SymbolNotFound)  # would be remembered as unknown for the run
