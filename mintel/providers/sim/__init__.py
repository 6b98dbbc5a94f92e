"""The embedded market simulator: the default provider, deterministic for a seed, for any universe.

A stock's log return over a minute (or a day) is

    beta_i * market + gamma_i * sector(i) + sigma_i * noise_i + trend drift + volume-spike impulse

with per-stock betas, volatilities, base prices and volumes derived from (seed, symbol). Trends are
Markov regimes (down / flat / up) that switch now and then, per session and per minute; volume follows
a U-shaped intraday profile; spikes multiply volume and kick the price; each session opens with an
overnight gap (sometimes a news gap). Prices sit on the exchange's tick grid and every bar is valid.

Pieces:

- ``SimClock`` counts trading minutes since a start session's open and maps them onto the
  exchange's real sessions; ``stepped`` advances when told, ``wall`` follows wall time × speed.
- ``SimMarket`` generates the whole universe one minute at a time (vectorized, lazily, when asked),
  keeps the current and previous session as (minutes, symbols) arrays, and a daily history that ends
  where the clock's first session starts, so the two join up.
- ``SimProvider`` puts the market behind the Provider protocol; one market serves every request, so
  a minute is generated once for the universe however the symbols are batched.
"""

from mintel.providers.sim.clock import ClockSession, SimClock
from mintel.providers.sim.model import SimMarket
from mintel.providers.sim.provider import SimProvider

__all__ = ["ClockSession", "SimClock", "SimMarket", "SimProvider"]
