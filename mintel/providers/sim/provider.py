"""``SimProvider`` puts the simulated market behind the Provider protocol: quotes, 1m and 1d bars, no
rate limit, no network. One market serves every request, so a minute is generated once for the
universe however the symbols are batched; unknown symbols are skipped unless none are known.
"""

from __future__ import annotations

import logging
from collections import Counter

import pandas as pd

from mintel.errors import DataError, SymbolNotFound
from mintel.providers.base import Capabilities, RateLimit
from mintel.providers.sim.clock import SimClock
from mintel.providers.sim.model import NAME, SimMarket, _universe_frame

log = logging.getLogger(__name__)


class SimProvider:
    """The simulator behind the Provider protocol: quotes, 1m and 1d bars, no rate limit, no network.

    ``universe``: a universe name (loaded with mintel.universe), a DataFrame or a list of symbols.
    Settings: ``exchange``, ``mode`` ("stepped" | "wall"), ``speed``, ``start`` (for the clock it
    makes when none is given) and ``history_days`` (daily bars returned when no start is given).
    """

    name = NAME
    capabilities = Capabilities(quotes=True, intraday_bars=True, daily_bars=True, symbols_per_request=10_000, intervals=("1m", "1d"))
    rate_limit = RateLimit()

    def __init__(self, universe="nifty500", seed: int = 42, clock: SimClock | None = None, *, exchange: str | None = None,
                 mode: str = "stepped", speed: float = 1.0, start=None, history_days: int = 250, **settings) -> None:
        if settings:
            log.debug("sim: ignoring settings %s", ", ".join(sorted(settings)))
        frame = _universe_frame(universe)
        if clock is None:
            if exchange is None and "exchange" in frame and frame["exchange"].notna().any():
                exchange = Counter(frame["exchange"].dropna().astype(str)).most_common(1)[0][0]
            clock = SimClock(exchange or "NSE", start, mode=mode, speed=speed)
        self.market = SimMarket(frame, seed=seed, clock=clock, exchange=exchange)
        self.clock = clock
        self.history_days = history_days

    def ticker(self, symbol: str, exchange: str | None = None) -> str:
        return symbol

    def _known(self, symbols: list[str]) -> list[str]:
        known = [s for s in symbols if s in self.market._index]
        if len(known) < len(symbols):
            unknown = [s for s in symbols if s not in self.market._index]
            if not known:
                raise SymbolNotFound(f"sim: unknown symbols {', '.join(unknown[:10])}", provider=NAME, symbols=unknown)
            log.debug("sim: %d unknown symbols skipped (%s ...)", len(unknown), unknown[0])
        return known

    async def fetch_quotes(self, symbols: list[str]) -> pd.DataFrame:
        return self.market.quotes(self._known(symbols))

    async def fetch_bars(self, symbols: list[str], interval: str, start: pd.Timestamp | None = None,
                         end: pd.Timestamp | None = None) -> pd.DataFrame:
        known = self._known(symbols)
        if interval == "1m":
            return self.market.bars(known, start, end)
        if interval == "1d":
            return self.market.daily_bars(known, start, end, days=self.history_days)
        raise DataError(f"interval {interval!r}: the simulator provides 1m and 1d bars")

    async def aclose(self) -> None:
        return None
