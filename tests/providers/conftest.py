"""Fixtures: local stand-ins of the HTTP providers (see servers.py), one fresh server per test."""

from __future__ import annotations

import pytest

from tests.providers.servers import AlphaVantageServer, TwelveDataServer, YahooServer


@pytest.fixture
def yahoo_server():
    with YahooServer() as server:
        yield server


@pytest.fixture
def twelvedata_server():
    with TwelveDataServer() as server:
        yield server


@pytest.fixture
def alphavantage_server():
    with AlphaVantageServer() as server:
        yield server
