"""Backfill over real HTTP on 127.0.0.1: history into the lake within limits, resumable, unknowns reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mintel.config import Settings
from mintel.ingest.backfill import BackfillResult, run_backfill
from mintel.ingest.manager import Policy
from tests.providers.servers import SYMBOLS, Limit, TwelveDataServer, YahooServer

UNIVERSE = pd.DataFrame({"symbol": list(SYMBOLS), "name": "", "sector": "Test", "industry": "", "exchange": "NSE"})
POLICY = Policy(backoff_s=0.01, cooldown_s=0.5, seed=1)
PRICES = ["open", "high", "low", "close", "volume"]
CHART = "/v8/finance/chart/"

# The servers' market: 250 daily bars of history, then 2026-11-16 (a Monday) whole and 25 minutes of 11-17.
D_START, D_END = "2026-09-01", "2026-11-17"
M_START, M_END = "2026-11-16 03:45", "2026-11-17 04:10"  # NSE opens 03:45 UTC


@pytest.fixture
def yahoo():
    with YahooServer(limit=Limit(600)) as srv:
        yield srv


def settings_for(servers: dict) -> Settings:
    # A generous timeout: these tests count requests, and a retry after a timeout on a loaded machine
    # (the server answers from a thread of this process) would be counted as one more.
    return Settings(providers=tuple(servers), compact_every=0,
                    provider={name: srv.settings(timeout_s=10.0, requests_per_minute=600) for name, srv in servers.items()})


def go(servers: dict, lake, interval, start, end, universe=UNIVERSE, **kw) -> BackfillResult:
    return run_backfill(settings_for(servers), lake, universe, providers=tuple(servers), interval=interval, start=start,
                        end=end, progress=False, policy=POLICY, **kw)


def served(srv, interval, start, end, symbols=SYMBOLS) -> pd.DataFrame:
    want = srv.bars(list(symbols), interval)
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    return want[(want["ts"] >= lo) & (want["ts"] <= hi)]


def assert_lake_equals(lake, want: pd.DataFrame, interval: str, atol: float = 0.0) -> None:
    got = lake.read_bars(interval=interval)
    assert not got.duplicated(["symbol", "ts"]).any()
    assert len(got) == len(want)
    merged = got.merge(want, on=["symbol", "ts"], suffixes=("", "_want"))
    assert len(merged) == len(want)
    for c in PRICES:
        assert np.allclose(merged[c], merged[f"{c}_want"], rtol=0, atol=atol, equal_nan=True), c


@pytest.mark.parametrize("interval,start,end", [("1d", D_START, D_END), ("1m", M_START, M_END)])
def test_backfill_from_yahoo_lands_every_bar_exactly_once(lake, yahoo, interval, start, end):
    r = go({"yahoo": yahoo}, lake, interval, start, end)
    want = served(yahoo, interval, start, end)
    assert len(want) > 0
    assert_lake_equals(lake, want, interval)
    assert r.symbols_asked == r.symbols_done == len(SYMBOLS)
    assert r.rows_written == len(want) and r.rows_quarantined == 0
    assert r.not_found == [] and r.failed == [] and r.symbols_skipped == 0
    assert r.records()[0]["rows_written"] == len(want)


@pytest.mark.parametrize("interval,start,end", [("1d", D_START, D_END), ("1m", M_START, M_END)])
def test_backfill_from_two_providers_at_once(lake, interval, start, end):
    with YahooServer(limit=Limit(600)) as y, TwelveDataServer(limit=Limit(600)) as t:
        servers = {"yahoo": y, "twelvedata": t}
        r = go(servers, lake, interval, start, end, chunk_symbols=6)
        assert r.failed == [] and r.not_found == []
        assert_lake_equals(lake, served(y, interval, start, end), interval, atol=1e-4)  # Twelve Data: 5 decimals
        assert y.count(CHART, prefix=True) > 0 and t.count("/time_series") > 0  # the work was shared


def test_second_run_fetches_nothing_and_writes_nothing(lake, yahoo):
    first = go({"yahoo": yahoo}, lake, "1m", M_START, M_END)
    asked = yahoo.count(CHART, prefix=True)
    assert first.rows_written > 0 and asked >= len(SYMBOLS)
    again = go({"yahoo": yahoo}, lake, "1m", M_START, M_END)
    assert yahoo.count(CHART, prefix=True) == asked  # not one request
    assert again.rows_written == 0 and again.symbols_skipped == len(SYMBOLS) and again.symbols_done == 0


@pytest.mark.parametrize("interval,short_end,start,end", [
    ("1d", "2026-10-15", D_START, D_END),
    ("1m", "2026-11-16 08:00", M_START, M_END),
])
def test_resume_fetches_only_the_missing_tail(lake, yahoo, interval, short_end, start, end):
    short = go({"yahoo": yahoo}, lake, interval, start, short_end)
    assert short.rows_written == len(served(yahoo, interval, start, short_end))
    n = len(yahoo.requests)
    longer = go({"yahoo": yahoo}, lake, interval, start, end)
    new = [r for r in yahoo.requests[n:] if r.path.startswith(CHART)]
    assert len(new) == len(SYMBOLS)
    last = lake.read_bars(interval=interval, end=short_end)["ts"].max()
    assert all(int(r.params["period1"]) > last.timestamp() for r in new)  # from after the last stored bar
    assert longer.rows_written == len(served(yahoo, interval, start, end)) - short.rows_written
    assert_lake_equals(lake, served(yahoo, interval, start, end), interval)


def test_resume_fetches_a_missing_head_and_only_for_symbols_lacking_it(lake, yahoo):
    some = UNIVERSE.iloc[:2]
    go({"yahoo": yahoo}, lake, "1d", "2026-10-15", D_END, universe=some)
    go({"yahoo": yahoo}, lake, "1d", "2026-10-15", D_END)  # the other symbols, same range
    n = len(yahoo.requests)
    r = go({"yahoo": yahoo}, lake, "1d", D_START, D_END)
    new = [q for q in yahoo.requests[n:] if q.path.startswith(CHART)]
    assert len(new) == len(SYMBOLS)  # one head request per symbol, no tail
    assert all(int(q.params["period2"]) <= pd.Timestamp("2026-10-15", tz="UTC").timestamp() for q in new)
    assert r.rows_written == len(served(yahoo, "1d", D_START, "2026-10-14"))
    assert_lake_equals(lake, served(yahoo, "1d", D_START, D_END), "1d")


def test_unknown_symbols_are_reported_and_the_rest_land(lake, yahoo):
    yahoo.faults.unknown = {"TCS", "M&M"}
    universe = pd.concat([UNIVERSE, UNIVERSE.iloc[:1].assign(symbol="NOSUCH")], ignore_index=True)
    r = go({"yahoo": yahoo}, lake, "1d", D_START, D_END, universe=universe, chunk_symbols=3)
    assert r.not_found == ["TCS", "M&M", "NOSUCH"]
    assert r.failed == [] and r.symbols_done == len(SYMBOLS) - 2
    known = [s for s in SYMBOLS if s not in ("TCS", "M&M")]
    assert_lake_equals(lake, served(yahoo, "1d", D_START, D_END, known), "1d")


@pytest.mark.parametrize("fault,reason", [("nan_price", "close"), ("high_below_low", "high")])
def test_bad_rows_go_to_quarantine_with_reasons(lake, yahoo, fault, reason):
    setattr(yahoo.faults, fault, True)
    r = go({"yahoo": yahoo}, lake, "1d", D_START, D_END)
    q = lake.read("quarantine")
    assert r.rows_quarantined == len(q) == len(SYMBOLS)  # row BAD_ROW of each symbol's answer
    assert q["reason"].str.contains(reason).all()
    want = served(yahoo, "1d", D_START, D_END)
    assert r.rows_written == len(want) - len(SYMBOLS)
    got = lake.read_bars(interval="1d")
    assert len(got) == len(want) - len(SYMBOLS) and got[PRICES].notna().all().all()


@pytest.mark.parametrize("now, last", [
    ("2026-11-25 12:00", "2026-11-23"),  # 2026-11-24 is an NSE holiday; the 25th closed two hours ago
    ("2026-11-25 18:52", "2026-11-23"),  # after 18:30 UTC it is the 26th in India: still not the 25th
    ("2026-11-26 12:00", "2026-11-25"),  # the 25th closed a day ago
])
def test_a_daily_backfill_needs_only_sessions_closed_a_day_ago_at_any_hour(now, last):
    """Regression: in the evening UTC, `now - 1 day` read as an India date is today, so a complete
    backfill was asked for today's bar again and a re-run never skipped (CI failed at 18:52 UTC)."""
    from mintel.ingest.backfill import expected_bounds

    t = pd.Timestamp(now, tz="UTC")
    first, got = expected_bounds("NSE", "1d", pd.Timestamp("2026-06-01", tz="UTC"), t, t)
    assert got == pd.Timestamp(last, tz="UTC") and first == pd.Timestamp("2026-06-01", tz="UTC")
