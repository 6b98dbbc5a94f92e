"""Ingestion over real HTTP on 127.0.0.1: three providers behind the API manager, one dying mid-run."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from mintel.config import Settings
from mintel.ingest.manager import Policy
from mintel.ingest.service import build_service
from tests.providers.servers import SYMBOLS, AlphaVantageServer, Limit, TwelveDataServer, YahooServer

UNIVERSE = pd.DataFrame({"symbol": list(SYMBOLS), "name": "", "sector": "Test", "industry": "", "exchange": "NSE"})


@pytest.fixture
def servers():
    with YahooServer(limit=Limit(120)) as y, TwelveDataServer(limit=Limit(120)) as t, AlphaVantageServer(limit=Limit(120)) as a:
        yield {"yahoo": y, "twelvedata": t, "alphavantage": a}


def settings_for(servers, lake) -> Settings:
    return Settings(
        lake=lake.root, providers=tuple(servers), compact_every=0,
        provider={name: srv.settings(timeout_s=1.0, requests_per_minute=100) for name, srv in servers.items()},
    )


def live_from(svc, servers, minutes_back=10) -> pd.Timestamp:
    """Start the service a few minutes back from the servers' market time, as a live run resumes."""
    start = servers["yahoo"].bars(list(SYMBOLS), "1m")["ts"].max() - pd.Timedelta(minutes=minutes_back)
    svc.next_ts = start
    return start


def expected(servers, got, start):
    want = servers["yahoo"].bars(list(SYMBOLS), "1m")
    return want[(want["ts"] >= start) & (want["ts"] <= got["ts"].max())]


def run_cycles(svc, servers, n, between=None):
    async def go():
        for k in range(n):
            if between:
                between(k)
            await svc.cycle()
            for srv in servers.values():
                srv.advance(1)

    asyncio.run(go())


def test_three_providers_fill_the_lake_exactly_once_and_report_health(lake, servers):
    svc = build_service(settings_for(servers, lake), lake, UNIVERSE, policy=Policy(cooldown_s=0.5, backoff_s=0.01, seed=1))
    start = live_from(svc, servers)
    run_cycles(svc, servers, 6)
    got = lake.read_bars(interval="1m")
    want = expected(servers, got, start)
    assert len(got) == len(want) and not got.duplicated(["symbol", "ts"]).any()
    merged = got.merge(want, on=["symbol", "ts"], suffixes=("", "_want"))
    assert len(merged) == len(want)
    assert (merged["close"] == merged["close_want"]).all()
    sources = set(got["source"])
    assert len(sources) >= 2, sources  # the work is spread, not all on one provider
    metrics = lake.read("metrics")
    prov = metrics[metrics["scope"] == "provider"]
    assert set(prov["name"]) == set(servers)
    assert prov["requests"].max() > 0 and prov["latency_ms_p50"].notna().any()
    # keys travel to the servers but land nowhere in the lake
    for srv in servers.values():
        assert all(r.key_ok for r in srv.requests)
    blob = b"".join(p.read_bytes() for p in lake.root.rglob("*.parquet"))
    assert b"srv-secret-key" not in blob


def test_a_provider_dying_mid_run_is_routed_around_and_probed_again(lake, servers):
    svc = build_service(settings_for(servers, lake), lake, UNIVERSE,
                        policy=Policy(cooldown_s=0.3, backoff_s=0.01, failure_threshold=2, seed=2))
    start = live_from(svc, servers)

    def faults(k):
        if k == 2:
            servers["twelvedata"].faults.server_error = -1  # dies: every request answers 503

    async def go():
        for k in range(6):
            faults(k)
            await svc.cycle()
            for srv in servers.values():
                srv.advance(1)
            await asyncio.sleep(0.05)
        servers["twelvedata"].faults.server_error = 0  # recovers
        # keep cycling until the half-open probe has re-admitted it (bounded)
        for _ in range(60):
            await svc.cycle()
            for srv in servers.values():
                srv.advance(1)
            if svc.provider.lanes["twelvedata"].breaker.state == "closed":
                break
            await asyncio.sleep(0.1)

    asyncio.run(go())
    got = lake.read_bars(interval="1m")
    want = expected(servers, got, start)
    assert len(got) == len(want), "a symbol's bars went missing while a provider was down"
    per_cycle = lake.read("metrics")
    cycles = per_cycle[per_cycle["scope"] == "cycle"].sort_values("cycle")
    assert (cycles["errors"] == 0).all()  # failures were retried or failed over within each cycle
    td = per_cycle[(per_cycle["scope"] == "provider") & (per_cycle["name"] == "twelvedata")].sort_values("ts")
    states = td["state"].tolist()
    # its breaker opened while it was down (the transitions, not the metrics' samples: a cycle slower than
    # the 0.3 s cooldown finds it half-open already when the metrics row is written)...
    assert "open" in [state for _, state in svc.provider.lanes["twelvedata"].breaker.transitions]
    assert {"open", "half_open"} & set(states)  # ...and the health rows showed it out of service
    assert states[-1] == "closed"  # probed again after the cooldown and re-admitted
    assert any(r.status == 503 for r in servers["twelvedata"].requests)  # it really was down meanwhile


def test_quote_mode_builds_bars_from_batched_snapshots(lake, servers):
    yahoo = {"yahoo": servers["yahoo"]}
    settings = Settings(lake=lake.root, providers=("yahoo",), compact_every=0, source="quotes",
                        provider={"yahoo": yahoo["yahoo"].settings(timeout_s=1.0, requests_per_minute=100)})
    svc = build_service(settings, lake, UNIVERSE, policy=Policy(backoff_s=0.01, seed=3))
    svc.now_fn = lambda: yahoo["yahoo"].market.clock.now  # the server's market time is "now"
    seen = []

    async def go():
        for _ in range(5):
            seen.append(yahoo["yahoo"].quotes(list(SYMBOLS)).set_index("symbol"))
            await svc.cycle()
            yahoo["yahoo"].advance(1)

    asyncio.run(go())
    quotes = lake.read("quotes")
    assert len(quotes) == 5 * len(SYMBOLS)
    requests = [r for r in yahoo["yahoo"].requests if r.path.startswith("/v7/finance/quote")]
    assert len(requests) == 5  # one batched request a cycle for all six symbols
    bars = lake.read_bars(interval="1m")
    assert bars.groupby("symbol").size().eq(4).all()  # the fifth minute is still forming
    for k in range(1, 4):  # a bar's close is the last quote of its minute; volume the rise of the day volume
        minute = bars[bars["ts"] == bars["ts"].min() + pd.Timedelta(minutes=k)].set_index("symbol")
        assert (minute["close"] == seen[k].loc[minute.index, "price"]).all()
        rise = seen[k]["day_volume"] - seen[k - 1]["day_volume"]
        assert (minute["volume"] == rise.loc[minute.index]).all()
    assert (bars["quality"] < 1).all()  # snapshots miss trades between polls


def test_real_providers_idle_outside_market_hours(lake, servers):
    settings = settings_for({"yahoo": servers["yahoo"]}, lake)
    svc = build_service(Settings(**{**settings.__dict__, "providers": ("yahoo",)}), lake, UNIVERSE)
    svc.now_fn = lambda: pd.Timestamp("2026-11-28 06:00", tz="UTC")  # a Saturday
    idle = []

    async def go():
        try:
            await asyncio.wait_for(svc.run(cycles=1, on_idle=idle.append), timeout=0.5)
        except asyncio.TimeoutError:
            pass

    asyncio.run(go())
    assert servers["yahoo"].requests == []  # no request spent while the market is closed
    assert idle == [pd.Timestamp("2026-11-30 03:45", tz="UTC")]  # Monday's open
    svc.now_fn = lambda: pd.Timestamp("2026-11-30 05:00", tz="UTC")
    assert svc.market_open()


def test_bad_rows_from_providers_are_quarantined_not_fatal(lake, servers):
    svc = build_service(settings_for(servers, lake), lake, UNIVERSE, policy=Policy(backoff_s=0.01, seed=4))
    start = live_from(svc, servers)
    for srv in servers.values():
        srv.faults.nan_price = True  # one row of every answer has a NaN close
    run_cycles(svc, servers, 2)
    q = lake.read("quarantine")
    assert len(q) > 0 and (q["reason"] == "close is not a finite number").all()
    assert set(q["source"]) <= set(servers)
    got = lake.read_bars(interval="1m")
    want = expected(servers, got, start)
    assert len(got) + q.drop_duplicates(["symbol", "row_ts"]).shape[0] >= len(want)  # nothing lost
