"""Calling a provider adapter against a local test server, shared by the adapter tests."""

from __future__ import annotations

import asyncio

import pandas as pd

PRICES = ["open", "high", "low", "close", "volume"]


def run(coro):
    return asyncio.run(coro)


def calls_for(provider_cls):
    """(with_provider, fetch_bars, fetch_quotes) for one adapter class; each opens and closes a provider."""

    async def with_provider(server, fn, **settings):
        provider = provider_cls(server.settings(**settings))
        try:
            return await fn(provider)
        finally:
            await provider.aclose()

    def fetch_bars(server, symbols, interval="1m", start=None, end=None, **settings) -> pd.DataFrame:
        return run(with_provider(server, lambda p: p.fetch_bars(symbols, interval, start, end), **settings))

    def fetch_quotes(server, symbols, **settings) -> pd.DataFrame:
        return run(with_provider(server, lambda p: p.fetch_quotes(symbols), **settings))

    return with_provider, fetch_bars, fetch_quotes


def assert_same_bars(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    cols = ["interval", "symbol", "ts", *PRICES]
    g = got[cols].sort_values(["symbol", "ts"]).reset_index(drop=True)
    e = expected[cols].sort_values(["symbol", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(g, e, check_dtype=False)
