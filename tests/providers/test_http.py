"""The shared HTTP plumbing: Retry-After, redaction, the request log, base URLs, the registry, and
that an API key never reaches a log line, an error or a repr (with httpx/httpcore at DEBUG)."""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import logging
import socket
import time

import httpx
import pandas as pd
import pytest

from mintel.config import ProviderSettings, Secret
from mintel.errors import MintelError, ProviderUnavailable, SymbolNotFound
from mintel.providers.alphavantage import AlphaVantageProvider
from mintel.providers.base import REGISTRY, Provider, provider_factory
from mintel.providers.http import HttpProvider, RequestLog, RequestRecord, parse_retry_after, redact, redact_url
from mintel.providers.twelvedata import TwelveDataProvider
from mintel.providers.yahoo import YahooProvider
from tests.providers.servers import AlphaVantageServer, Limit, TwelveDataServer

KEY = "sk-live-9f8e7d6c5b4a"


def run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------------------------------ pieces


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("17") == 17.0
    assert parse_retry_after(" 2.5 ") == 2.5
    now = time.time()
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("") is None and parse_retry_after("soon") is None


def test_redact_secret_params_headers_and_known_keys():
    url = "https://x.test/query?function=GLOBAL_QUOTE&apikey=abc123&symbol=IBM&token=t0k&api_key=k&crumb=c"
    assert redact_url(url) == "https://x.test/query?function=GLOBAL_QUOTE&apikey=***&symbol=IBM&token=***&api_key=***&crumb=c"
    assert redact("headers: {'Authorization': 'apikey abc123'}") == "headers: {'Authorization': 'apikey ***'}"
    assert redact(f"some text with {KEY} inside", [KEY]) == "some text with *** inside"


def test_request_log_keeps_the_latest():
    assert len(YahooProvider().requests) == 0
    log = RequestLog(maxlen=2)
    for i in range(3):
        log.append(RequestRecord(pd.Timestamp.now(tz="UTC"), "x", f"/{i}", 200, 1.0, None))
    assert [r.endpoint for r in log] == ["/1", "/2"] and list(log.frame()["endpoint"]) == ["/1", "/2"]


def test_base_url_from_settings_env_or_default(monkeypatch):
    assert YahooProvider().base_url == "https://query2.finance.yahoo.com"
    assert TwelveDataProvider().base_url == "https://api.twelvedata.com"
    assert AlphaVantageProvider().base_url == "https://www.alphavantage.co"
    monkeypatch.setenv("MINTEL_TWELVEDATA_BASE_URL", "http://127.0.0.1:9/")
    assert TwelveDataProvider().base_url == "http://127.0.0.1:9"
    assert TwelveDataProvider(ProviderSettings(name="twelvedata", base_url="http://127.0.0.1:8")).base_url == "http://127.0.0.1:8"
    monkeypatch.setenv("MINTEL_ALPHAVANTAGE_API_KEY", KEY)
    p = AlphaVantageProvider()
    assert p._api_key.reveal() == KEY and KEY not in repr(p)


def test_registry_finds_every_provider_with_one_factory_signature():
    assert set(REGISTRY) >= {"sim", "replay", "yahoo", "twelvedata", "alphavantage"}
    for name in ("yahoo", "twelvedata", "alphavantage"):
        factory = provider_factory(name)
        params = inspect.signature(factory).parameters
        assert list(params)[:3] == ["settings", "universe", "client"]
        assert params["universe"].kind is inspect.Parameter.KEYWORD_ONLY
        provider = factory(ProviderSettings(name=name), universe=pd.DataFrame({"symbol": ["A"], "exchange": ["NYSE"]}))
        assert isinstance(provider, Provider) and provider.name == name
        assert provider.exchange_of("A") == "NYSE" and provider.exchange_of("B") == "NSE"


def test_tickers_follow_the_universe_mapping():
    assert YahooProvider().ticker("RELIANCE") == "RELIANCE.NS"
    assert YahooProvider().ticker("BRK.B", "NYSE") == "BRK-B"
    assert AlphaVantageProvider().ticker("RELIANCE") == "RELIANCE.BSE"
    assert TwelveDataProvider().ticker("RELIANCE") == "RELIANCE"


def test_connection_refused_is_provider_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nobody listens
    p = YahooProvider(ProviderSettings(name="yahoo", base_url=f"http://127.0.0.1:{port}", timeout_s=1))
    seen = []
    p.on_request = lambda *a: seen.append(a)

    async def go():
        try:
            await p.fetch_bars(["TCS"], "1m")
        finally:
            await p.aclose()

    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        run(go())
    assert seen[0][0] == "yahoo" and seen[0][2] is None and seen[0][3] == "connection"


def test_a_shared_client_is_used_and_left_open():
    async def go():
        with TwelveDataServer() as server:
            async with httpx.AsyncClient() as client:
                p = TwelveDataProvider(server.settings(), client=client)
                await p.fetch_quotes(["TCS"])
                await p.aclose()
                assert not client.is_closed
                return len(server.requests)

    assert run(go()) == 1


def test_get_json_maps_404_to_symbol_not_found():
    class Plain(HttpProvider):
        name = "plain"

    async def go(server):
        p = Plain(ProviderSettings(name="plain", base_url=server.url))
        try:
            await p.get_json("/nowhere", symbols=["ABC"])
        finally:
            await p.aclose()

    with AlphaVantageServer(api_key=None) as server:
        with pytest.raises(SymbolNotFound) as info:
            run(go(server))
    assert info.value.symbols == ["ABC"]


# ------------------------------------------------------------------------------------ secrets


@pytest.fixture
def debug_logs(caplog):
    for name in ("httpx", "httpcore", "mintel"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _exercise(provider_cls, server) -> list[str]:
    """Fetch bars and quotes, then make it fail every way it can; the text of every error raised."""
    errors: list[str] = []

    async def go():
        p = provider_cls(server.settings())
        try:
            await p.fetch_bars(["TCS", "INFY"], "1m", pd.Timestamp("2026-11-17 04:00", tz="UTC"))
            await p.fetch_quotes(["TCS", "INFY"])
            for fault in ({"unknown": {"TCS", "INFY"}}, {"server_error": 1}, {"truncate": True}, {"disconnect": True}):
                server.reset()
                for k, v in fault.items():
                    setattr(server.faults, k, v)
                try:
                    await p.fetch_bars(["TCS", "INFY"], "1m")
                except MintelError as exc:
                    errors.append(f"{exc!s} {exc!r} {exc.__cause__!r}")
            server.reset()
            server.limit = Limit(0, style="http")
            try:
                await p.fetch_quotes(["TCS"])
            except MintelError as exc:
                errors.append(f"{exc!s} {exc!r}")
        finally:
            await p.aclose()
        errors.append(repr(p))

    run(go())
    return errors


@pytest.mark.parametrize("provider_cls,server_cls", [
    (TwelveDataProvider, TwelveDataServer),
    (AlphaVantageProvider, AlphaVantageServer),
])
def test_api_key_is_sent_but_never_logged_or_raised(debug_logs, provider_cls, server_cls):
    with server_cls(api_key=KEY) as server:
        errors = _exercise(provider_cls, server)
        last_phase = server.requests  # the log was reset before each fault
    assert len(errors) == 6
    assert all(KEY not in e for e in errors), [e for e in errors if KEY in e]
    assert debug_logs.records, "the DEBUG capture saw nothing"
    assert any(r.name.startswith(("httpx", "httpcore")) for r in debug_logs.records)
    assert KEY not in debug_logs.text
    assert all(KEY not in r.getMessage() for r in debug_logs.records)
    assert last_phase and all(r.key_where is not None and r.key_ok for r in last_phase)


def test_httpx_request_lines_are_redacted_even_at_debug(debug_logs):
    with AlphaVantageServer(api_key=KEY) as server:
        run(_quotes(AlphaVantageProvider(server.settings())))
    lines = [r.getMessage() for r in debug_logs.records if r.name == "httpx"]
    assert lines and all("apikey=***" in line for line in lines)


async def _quotes(p):
    try:
        await p.fetch_quotes(["TCS"])
    finally:
        await p.aclose()


def test_settings_and_secret_reprs_hide_the_key():
    s = ProviderSettings(name="twelvedata", api_key=Secret(KEY))
    assert KEY not in repr(s) and KEY not in str(s.api_key) and KEY not in repr(TwelveDataProvider(s))
