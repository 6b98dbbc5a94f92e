"""The one small protocol every market-data provider speaks, and the registry that finds them by name.

A provider says what it can do (`Capabilities`), how fast it may be asked (`RateLimit`), how a
canonical symbol maps to its own ticker, and fetches quotes and bars asynchronously. Parsing a
provider's payload is a pure function in the provider's module; network calls go through one
``httpx.AsyncClient`` per provider. Adding a provider is one module plus one line in ``REGISTRY``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from mintel.errors import ConfigError


@dataclass(frozen=True)
class Capabilities:
    quotes: bool = True
    intraday_bars: bool = True
    daily_bars: bool = True
    symbols_per_request: int = 1  # how many symbols one quote/bar request may carry
    intervals: tuple[str, ...] = ("1m", "1d")


@dataclass(frozen=True)
class RateLimit:
    requests_per_minute: float | None = None  # None: no limit (the simulator)
    requests_per_day: float | None = None


@runtime_checkable
class Provider(Protocol):
    name: str
    capabilities: Capabilities
    rate_limit: RateLimit

    def ticker(self, symbol: str, exchange: str | None = None) -> str:
        """The provider's own ticker for a canonical symbol (``RELIANCE`` -> ``RELIANCE.NS`` at Yahoo)."""
        ...

    async def fetch_quotes(self, symbols: list[str]) -> pd.DataFrame:
        """Latest quotes for ``symbols`` in the canonical quotes schema (mintel.schema.QUOTES)."""
        ...

    async def fetch_bars(
        self, symbols: list[str], interval: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Bars for ``symbols`` with ``start <= ts <= end`` in the canonical bars schema (mintel.schema.BARS)."""
        ...

    async def aclose(self) -> None:
        ...


# name -> "module:factory", imported lazily by ``provider_factory``.
#
# Every factory but the simulator's has one signature:
#
#     Factory(settings: ProviderSettings, *, universe: DataFrame | None = None,
#             client: httpx.AsyncClient | None = None) -> Provider
#
# ``settings`` (mintel.config.ProviderSettings) gives the base URL (default: the provider's real
# one, or MINTEL_<NAME>_BASE_URL), timeout_s, rate limits, the API key (MINTEL_<NAME>_API_KEY) and
# provider options; ``universe`` (columns symbol, exchange) maps symbols to exchanges; ``client``
# is a shared httpx client (tests pass one; otherwise the provider builds and closes its own).
# HTTP providers also expose ``cost(symbols, kind) -> int`` in units of ``rate_unit`` ("requests",
# or "credits" for twelvedata), a ``requests`` log and an ``on_request(name, latency_ms, status,
# error_kind)`` hook. The simulator keeps ``SimProvider(universe, seed, clock, **settings)``.
REGISTRY: dict[str, str] = {
    "sim": "mintel.providers.sim:SimProvider",
    "replay": "mintel.providers.replay:ReplayProvider",
    "yahoo": "mintel.providers.yahoo:YahooProvider",
    "twelvedata": "mintel.providers.twelvedata:TwelveDataProvider",
    "alphavantage": "mintel.providers.alphavantage:AlphaVantageProvider",
}


def provider_factory(name: str):
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ConfigError(f"provider {name!r}: unknown (known: {', '.join(sorted(REGISTRY))})") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
