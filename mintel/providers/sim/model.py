"""The market model: per-stock parameters derived from (seed, symbol), the daily history generated
backwards from the clock's first session, and ``SimMarket``, which generates the whole universe one
minute at a time (vectorized, lazily, as the clock moves) and serves it as canonical quotes and bars.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel import calendar, schema
from mintel.errors import ConfigError, DataError, SymbolNotFound
from mintel.providers.sim.clock import ClockSession, SimClock, _utc

NAME = "sim"
DAY_NS = 86_400 * 10**9

# Model constants (daily units unless named otherwise).
MARKET_VOL = 0.009
SECTOR_VOL = 0.008
OVERNIGHT_SHARE = 0.3  # share of a day's variance realised overnight, i.e. in the opening gap
NEWS_GAP_P = 0.03  # chance a stock opens on news: an extra gap of 1.5-5 %
TREND_SWITCH_DAILY = 1 / 25  # daily trend regimes last ~17 sessions (3 states)
TREND_SWITCH_MINUTE = 1 / 60
MARKET_TREND_SWITCH_MINUTE = 1 / 90
MARKET_TREND = 0.08  # market intraday drift in a trend, in market minute-vols
SPIKE_P_MINUTE = 0.0015  # ~0.5 volume spikes per stock per NSE session
SPIKE_P_DAILY = 0.02
SPIKE_DECAY = 0.5  # excitement after a spike halves every minute
HISTORY_BLOCK = 256  # daily history is generated backwards in blocks of this many sessions


# ----------------------------------------------------------------------------------------- universe


@dataclass(frozen=True)
class _Stocks:
    """Per-stock parameters, derived from (seed, symbol) so a symbol keeps them in any universe."""

    names: np.ndarray  # object, sorted
    sector: np.ndarray  # int index into sectors
    sectors: tuple[str, ...]
    price0: np.ndarray  # close of the session before the clock's first
    beta: np.ndarray
    gamma: np.ndarray
    sigma: np.ndarray  # idiosyncratic daily vol
    sigma_total: np.ndarray
    volume: np.ndarray  # typical daily volume, shares
    trend: np.ndarray  # daily drift in a trend regime
    kappa: np.ndarray  # intraday trend drift, in minute-vols
    half_spread: np.ndarray
    regime0: np.ndarray  # int8 trend regime of the last history session

    @property
    def n(self) -> int:
        return len(self.names)


def _universe_frame(universe) -> pd.DataFrame:
    if isinstance(universe, str):
        from mintel.universe import load_universe

        universe = load_universe(universe)
    if isinstance(universe, pd.DataFrame):
        if "symbol" not in universe:
            raise DataError("sim universe: column 'symbol' missing")
        frame = universe.reset_index(drop=True)
    else:
        frame = pd.DataFrame({"symbol": list(universe)})
    frame = frame.assign(symbol=frame["symbol"].astype(str).str.strip())
    if "sector" not in frame:
        frame["sector"] = "Unknown"
    frame["sector"] = frame["sector"].where(frame["sector"].notna(), "Unknown").astype(str)
    if frame.empty:
        raise DataError("sim universe: no symbols")
    dup = frame["symbol"][frame["symbol"].duplicated()]
    if len(dup):
        raise DataError(f"sim universe: duplicate symbols {', '.join(dup.unique()[:5])}")
    return frame.sort_values("symbol", kind="stable").reset_index(drop=True)


def _unit(keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniforms in [0, 1) from per-symbol keys (splitmix64), one independent value per stream."""
    with np.errstate(over="ignore"):
        x = keys + np.uint64((stream + 1) * 0x9E3779B97F4A7C15 % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _stocks(frame: pd.DataFrame, seed: int) -> _Stocks:
    names = frame["symbol"].to_numpy(dtype=object)
    keys = np.array(
        [int.from_bytes(hashlib.blake2b(f"{seed}:{s}".encode(), digest_size=8).digest(), "little") for s in names],
        dtype=np.uint64,
    )
    u = [_unit(keys, k) for k in range(9)]
    sectors = tuple(sorted(frame["sector"].unique()))
    beta, gamma, sigma = 0.6 + 0.8 * u[1], 0.5 + 0.8 * u[2], 0.010 + 0.007 * u[3]
    return _Stocks(
        names=names,
        sector=np.searchsorted(np.array(sectors, dtype=object), frame["sector"].to_numpy(dtype=object)),
        sectors=sectors,
        price0=np.exp(np.log(50) + np.log(100) * u[0]),
        beta=beta,
        gamma=gamma,
        sigma=sigma,
        sigma_total=np.sqrt((beta * MARKET_VOL) ** 2 + (gamma * SECTOR_VOL) ** 2 + sigma**2),
        volume=np.exp(np.log(3e4) + np.log(100) * u[4]),
        trend=0.0015 + 0.003 * u[5],
        kappa=0.03 + 0.07 * u[6],
        half_spread=0.0002 + 0.0006 * u[7],
        regime0=np.where(u[8] < 0.25, -1, np.where(u[8] >= 0.75, 1, 0)).astype(np.int8),
    )


def _switch(state: np.ndarray, u: np.ndarray, p: float) -> np.ndarray:
    """Markov step of a down/flat/up regime: with probability p, move to one of the two other states."""
    shift = (u < p).astype(np.int8) + (u < p / 2)
    return ((state + 1 + shift) % 3 - 1).astype(np.int8)


@functools.lru_cache(maxsize=8)
def _profiles(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(volume share of each minute, volatility scale of each minute) for an n-minute session: U-shaped."""
    x = (np.arange(n) + 0.5) / n
    shape = 1 + 2.5 * np.exp(-x / 0.05) + 1.5 * np.exp(-(1 - x) / 0.07)
    vol_share = np.sqrt(shape) / np.sqrt(shape).sum()
    return shape / shape.sum(), np.sqrt((1 - OVERNIGHT_SHARE) * vol_share)


# ------------------------------------------------------------------------------------------- market


class _Session:
    """One simulated session: (minutes, symbols) arrays filled a row at a time."""

    def __init__(self, index: int, clock_session: ClockSession, n_symbols: int, rng: np.random.Generator) -> None:
        self.index = index
        self.date = clock_session.date
        self.ts = clock_session.minutes
        self.n = clock_session.n
        self.rng = rng
        shape = (self.n, n_symbols)
        self.high, self.low, self.close, self.volume = (np.empty(shape) for _ in range(4))
        self.n_gen = 0  # rows generated
        self.n_agg = 0  # rows folded into the day aggregates below
        self.day_high = np.full(n_symbols, -np.inf)
        self.day_low = np.full(n_symbols, np.inf)
        self.day_volume = np.zeros(n_symbols)
        self.prev_close = self.open0 = self.day_volume_level = self.drift = np.empty(0)

    def opens(self, r0: int, r1: int) -> np.ndarray:
        """Opens of rows r0..r1: the previous row's close, the opening price for row 0."""
        if r0 == 0:
            return np.vstack([self.open0[None, :], self.close[: max(r1 - 1, 0)]])[: r1 - r0]
        return self.close[r0 - 1 : r1 - 1]

    def open_of(self, row: int) -> np.ndarray:
        return self.open0 if row == 0 else self.close[row - 1]

    def fold(self, upto: int) -> None:
        if upto > self.n_agg:
            rows = slice(self.n_agg, upto)
            np.maximum(self.day_high, self.high[rows].max(axis=0), out=self.day_high)
            np.minimum(self.day_low, self.low[rows].min(axis=0), out=self.day_low)
            self.day_volume += self.volume[rows].sum(axis=0)
            self.n_agg = upto


class SimMarket:
    """A deterministic market for a universe, generated minute by minute as its clock moves.

    ``universe``: a DataFrame with ``symbol`` and ``sector`` (optional ``exchange``), a list of
    symbols (sector "Unknown") or a universe name. Minute bars are kept for the current and the
    previous session; older minutes live in the lake, not here.
    """

    def __init__(self, universe, seed: int = 42, clock: SimClock | None = None, exchange: str | None = None) -> None:
        frame = _universe_frame(universe)
        if exchange is None:
            if clock is not None:
                exchange = clock.exchange
            elif "exchange" in frame and frame["exchange"].notna().any():
                exchange = Counter(frame["exchange"].dropna().astype(str)).most_common(1)[0][0]
            else:
                exchange = "NSE"
        self.exchange = exchange.upper()
        self.clock = clock if clock is not None else SimClock(self.exchange)
        if calendar.calendar_name(self.clock.exchange) != calendar.calendar_name(self.exchange):
            raise ConfigError(f"sim: clock runs on {self.clock.exchange}'s sessions, market on {self.exchange}'s")
        self.seed = int(seed) % 2**63
        self.universe = frame
        self.stocks = _stocks(frame, self.seed)
        self._index = {s: i for i, s in enumerate(self.stocks.names)}
        self._ticks_per_unit = 20.0 if calendar.calendar_name(self.exchange) == "XBOM" else 100.0
        self.tick = 1 / self._ticks_per_unit
        n = self.n
        # Running state: continuous log price, last printed close, regimes, volume excitement.
        self._logp = np.log(self.stocks.price0)
        self._last = self._round(self.stocks.price0)
        self._regime_day = self.stocks.regime0.copy()
        self._regime_min = np.zeros(n, dtype=np.int8)
        self._market_regime = 0
        self._excite = np.zeros(n)
        self._cur: _Session | None = None
        self._prev: _Session | None = None
        self._days: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._hist: dict[str, np.ndarray] = {}
        self._hist_carry: tuple[np.ndarray, np.ndarray] = (np.log(self.stocks.price0), self.stocks.regime0.copy())
        self._hist_sessions: pd.DatetimeIndex | None = None

    @property
    def n(self) -> int:
        return self.stocks.n

    @property
    def symbols(self) -> list[str]:
        return list(self.stocks.names)

    def _round(self, x: np.ndarray) -> np.ndarray:
        k = self._ticks_per_unit
        return np.maximum(np.round(x * k), 1.0) / k

    # -- generation

    def _sync(self) -> tuple[int, float]:
        """Generate everything up to the clock; returns the clock position it read."""
        i, m = self.clock.position()
        if self._cur is None:
            self._cur = self._open_session(0)
        while self._cur.index < i:
            self._finish(self._cur)
            self._prev, self._cur = self._cur, self._open_session(self._cur.index + 1)
        s = self._cur
        done = min(int(m), s.n)
        need = done + 1 if (done < s.n and m > done) else done  # the minute in progress, for quotes
        while s.n_gen < need:
            self._step(s)
        s.fold(done)
        return i, m

    def _finish(self, s: _Session) -> None:
        while s.n_gen < s.n:
            self._step(s)
        s.fold(s.n)
        self._days.append((s.date.value, s.open0, s.day_high.copy(), s.day_low.copy(), s.close[-1].copy(), s.day_volume.copy()))

    def _open_session(self, index: int) -> _Session:
        """Start a session: new daily regime, overnight gap (plus news gaps), the opening prints."""
        cs = self.clock.session(index)
        st, n, n_sec = self.stocks, self.n, len(self.stocks.sectors)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, 2, cs.date.value // DAY_NS])))
        s = _Session(index, cs, n, rng)
        z = rng.standard_normal(2 * n + n_sec + 1)
        u = rng.random(3 * n)
        self._regime_day = _switch(self._regime_day, u[:n], TREND_SWITCH_DAILY)
        gap = math.sqrt(OVERNIGHT_SHARE) * (
            st.beta * (MARKET_VOL * z[-1]) + st.gamma * (SECTOR_VOL * z[2 * n : 2 * n + n_sec])[st.sector] + st.sigma * z[:n]
        )
        news = u[n : 2 * n] < NEWS_GAP_P
        gap[news] += _signed_size(u[2 * n : 3 * n][news], 0.015, 0.05)
        s.prev_close = self._last
        self._logp = self._logp + gap
        s.open0 = self._last = self._round(np.exp(self._logp))
        s.day_volume_level = st.volume * np.exp(0.25 * z[n : 2 * n] - 0.03125)
        s.drift = st.trend * self._regime_day / s.n
        return s

    def _step(self, s: _Session) -> None:
        """Generate the next minute of session ``s`` for every symbol at once."""
        st, n, n_sec, j = self.stocks, self.n, len(self.stocks.sectors), s.n_gen
        vol_share, scale = _profiles(s.n)
        z = s.rng.standard_normal(4 * n + n_sec + 1)
        u = s.rng.random(4 * n + 1)
        self._regime_min = _switch(self._regime_min, u[:n], TREND_SWITCH_MINUTE)
        if u[-1] < MARKET_TREND_SWITCH_MINUTE:
            self._market_regime = (self._market_regime + 1 + (1 if u[-1] < MARKET_TREND_SWITCH_MINUTE / 2 else 2)) % 3 - 1
        sc = scale[j]
        sig = sc * st.sigma_total
        market = sc * MARKET_VOL * (z[-1] + MARKET_TREND * self._market_regime)
        sector = (sc * SECTOR_VOL) * z[4 * n : 4 * n + n_sec]
        r = st.beta * market + st.gamma * sector[st.sector] + sc * st.sigma * z[:n] + sig * st.kappa * self._regime_min + s.drift
        spikes = np.flatnonzero(u[n : 2 * n] < SPIKE_P_MINUTE)
        if spikes.size:
            mag = u[2 * n : 3 * n][spikes]
            sign = np.where(u[3 * n : 4 * n][spikes] < 0.5, -1.0, 1.0)
            r[spikes] += sign * (3 + 4 * mag) * sig[spikes]
            self._excite[spikes] += 3 + 9 * mag
            self._regime_min[spikes] = sign.astype(np.int8)  # a spike often starts a run
        self._logp += r
        o = self._last
        c = self._round(np.exp(self._logp))
        top, bottom = np.maximum(o, c), np.minimum(o, c)
        s.high[j] = np.maximum(self._round(top * np.exp(0.5 * np.abs(z[n : 2 * n]) * sig)), top)
        s.low[j] = np.minimum(self._round(bottom * np.exp(-0.5 * np.abs(z[2 * n : 3 * n]) * sig)), bottom)
        s.close[j] = c
        activity = 0.6 + 0.5 * np.minimum(np.abs(r) / sig, 6.0)
        s.volume[j] = np.rint(s.day_volume_level * vol_share[j] * np.exp(0.4 * z[3 * n : 4 * n] - 0.08) * (1 + self._excite) * activity)
        self._excite *= SPIKE_DECAY
        self._last = c
        s.n_gen = j + 1

    # -- reading

    def indices(self, symbols: Iterable[str] | None) -> np.ndarray:
        """Sorted positions of ``symbols`` (all when None); SymbolNotFound names the unknown ones."""
        if symbols is None:
            return np.arange(self.n)
        if isinstance(symbols, str):
            symbols = [symbols]
        idx, unknown = [], []
        for s in symbols:
            i = self._index.get(s)
            (unknown.append(s) if i is None else idx.append(i))
        if unknown:
            raise SymbolNotFound(f"sim: unknown symbols {', '.join(unknown[:10])}", provider=NAME, symbols=unknown)
        return np.unique(np.array(idx, dtype=np.int64))

    def bars(self, symbols: Iterable[str] | None = None, start=None, end=None) -> pd.DataFrame:
        """Completed 1-minute bars up to the clock with ``start <= ts <= end``, sorted by (symbol, ts)."""
        idx = self.indices(symbols)
        self._sync()
        lo, hi = _bound(start, -1), _bound(end, 1)
        parts = []
        for s in (self._prev, self._cur):
            if s is None:
                continue
            done = s.n_agg
            r0 = int(np.searchsorted(s.ts[:done], lo, side="left"))
            r1 = int(np.searchsorted(s.ts[:done], hi, side="right"))
            if r1 > r0:
                parts.append((s.ts[r0:r1], s.opens(r0, r1), s.high[r0:r1], s.low[r0:r1], s.close[r0:r1], s.volume[r0:r1]))
        if not parts:
            return schema.empty_frame("bars")
        ts, *fields = (np.concatenate(p) for p in zip(*parts))
        return self._frame("1m", idx, ts, fields)

    def quotes(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """Quotes at the clock: price, session open/high/low so far, prev_close, day_volume, bid/ask."""
        idx = self.indices(symbols)
        i, m = self._sync()
        s = self._cur
        done = min(int(m), s.n)
        frac = m - done if done < s.n else 0.0
        if done == s.n:
            price = s.close[-1]
        else:
            o = s.open_of(done)
            price = self._round(o + frac * (s.close[done] - o)) if frac > 0 else o
        high, low = np.maximum(s.day_high, price), np.minimum(s.day_low, price)
        volume = s.day_volume + (np.floor(frac * s.volume[done]) if frac > 0 else 0.0)
        k = self._ticks_per_unit
        hs = self.stocks.half_spread
        now = pd.Timestamp(self.clock.time_at(i, m), tz="UTC")
        return pd.DataFrame(
            {
                "symbol": pd.array(self.stocks.names[idx], dtype=_str_dtype()),
                "ts": pd.DatetimeIndex([now]).repeat(len(idx)),
                "price": price[idx],
                "open": s.open0[idx],
                "high": high[idx],
                "low": low[idx],
                "prev_close": s.prev_close[idx],
                "day_volume": volume[idx],
                "bid": np.maximum(np.floor(price * (1 - hs) * k), 1.0)[idx] / k,
                "ask": np.ceil(price * (1 + hs) * k)[idx] / k,
                "source": pd.array([NAME] * len(idx), dtype=_str_dtype()),
                "ingested_at": pd.DatetimeIndex([now]).repeat(len(idx)),
            }
        )

    # -- daily bars

    def daily_bars(self, symbols: Iterable[str] | None = None, start=None, end=None, days: int = 250) -> pd.DataFrame:
        """Daily bars (ts = session date 00:00 UTC): the history before the clock's first session, the
        sessions the clock has played and the current one so far. Without ``start``: the last ``days``."""
        idx = self.indices(symbols)
        self._sync()
        played = list(self._days)
        s = self._cur
        if s is not None and s.n_agg > 0 and (not played or played[-1][0] != s.date.value):
            played.append((s.date.value, s.open0, s.day_high, s.day_low, s.close[s.n_agg - 1], s.day_volume))
        hist_dates = self._history_sessions().asi8
        dates = np.concatenate([hist_dates, np.array([p[0] for p in played], dtype=np.int64)])
        r1 = int(np.searchsorted(dates, _bound(end, 1), side="right"))
        r0 = int(np.searchsorted(dates, _bound(start, -1), side="left")) if start is not None else max(r1 - days, 0)
        if r1 <= r0:
            return schema.empty_frame("bars")
        fields: list[list[np.ndarray]] = [[] for _ in range(5)]
        h = len(hist_dates)
        if r0 < h:
            hist = self._history(h - r0)
            k0, k1 = h - min(r1, h), h - r0  # history rows are stored newest first
            for f, name in zip(fields, ("open", "high", "low", "close", "volume")):
                f.append(hist[name][k0:k1][::-1])
        for p in played[max(r0 - h, 0) : max(r1 - h, 0)]:
            for f, a in zip(fields, p[1:]):
                f.append(a[None, :])
        return self._frame("1d", idx, dates[r0:r1], [np.concatenate(f) for f in fields])

    def daily_history(self, days: int = 250, end=None, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """The last ``days`` daily bars before the clock's first session (up to ``end`` when given)."""
        first = self.clock.session(0).date
        last = first - pd.Timedelta(days=1)
        if end is not None:
            last = min(last, _utc(end).tz_localize(None))
        return self.daily_bars(symbols, end=pd.Timestamp(last, tz="UTC"), days=days)

    def _history_sessions(self) -> pd.DatetimeIndex:
        if self._hist_sessions is None:
            cal = calendar.exchange_calendar(self.exchange)
            first = self.clock.session(0).date
            self._hist_sessions = cal.sessions[cal.sessions < first].tz_localize("UTC")
        return self._hist_sessions

    def _history(self, depth: int) -> dict[str, np.ndarray]:
        """At least ``depth`` daily bars before the clock's first session, newest first (row k = k sessions back)."""
        while not self._hist or len(self._hist["close"]) < depth:
            block = len(self._hist["close"]) // HISTORY_BLOCK if self._hist else 0
            new = self._history_block(block)
            self._hist = new if not self._hist else {k: np.concatenate([self._hist[k], new[k]]) for k in new}
        return self._hist

    def _history_block(self, block: int) -> dict[str, np.ndarray]:
        """Daily bars generated backwards from the close the intraday simulation starts from."""
        st, n, b, n_sec = self.stocks, self.n, HISTORY_BLOCK, len(self.stocks.sectors)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, 1, block])))
        z = rng.standard_normal((5, b, n))  # gap noise, intraday noise, high, low, volume
        zf = rng.standard_normal((b, 2 + 2 * n_sec))  # market gap, market intraday, sector gaps, sector intraday
        u = rng.random((4, b, n))  # regime switch, spike, news gap, size/sign
        log_close, state = self._hist_carry
        regime = np.empty((b, n), dtype=np.int8)
        for k in range(b):
            if block or k:
                state = _switch(state, u[0, k], TREND_SWITCH_DAILY)
            regime[k] = state
        g, d = math.sqrt(OVERNIGHT_SHARE), math.sqrt(1 - OVERNIGHT_SHARE)
        gap = g * (st.beta * (MARKET_VOL * zf[:, :1]) + st.gamma * (SECTOR_VOL * zf[:, 2 : 2 + n_sec])[:, st.sector] + st.sigma * z[0])
        gap += np.where(u[2] < NEWS_GAP_P, _signed_size(u[3], 0.015, 0.05), 0.0)
        spike = u[1] < SPIKE_P_DAILY
        intraday = d * (st.beta * (MARKET_VOL * zf[:, 1:2]) + st.gamma * (SECTOR_VOL * zf[:, 2 + n_sec :])[:, st.sector] + st.sigma * z[1])
        intraday += st.trend * regime + np.where(spike, _signed_size(u[3], 1.5, 4.0) * d * st.sigma_total, 0.0)
        ret = gap + intraday
        lc = log_close - np.vstack([np.zeros((1, n)), np.cumsum(ret, axis=0)[:-1]])
        self._hist_carry = (lc[-1] - ret[-1], state)
        close, open_ = self._round(np.exp(lc)), self._round(np.exp(lc - intraday))
        top, bottom = np.maximum(open_, close), np.minimum(open_, close)
        sig = d * st.sigma_total
        high = np.maximum(self._round(top * np.exp(0.5 * np.abs(z[2]) * sig)), top)
        low = np.minimum(self._round(bottom * np.exp(-0.5 * np.abs(z[3]) * sig)), bottom)
        activity = 0.6 + 0.5 * np.minimum(np.abs(ret) / st.sigma_total, 6.0)
        volume = np.rint(st.volume * np.exp(0.3 * z[4] - 0.045) * activity * np.where(spike, 3 + 5 * u[3], 1.0))
        return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}

    # -- frames

    def _frame(self, interval: str, idx: np.ndarray, ts: np.ndarray, fields: list[np.ndarray]) -> pd.DataFrame:
        """Canonical bars for symbols ``idx`` × rows ``ts``, ordered by (symbol, ts)."""
        rows, n = len(ts), len(idx)
        every = n == self.n  # idx is sorted and unique, so all symbols means all columns in order
        flat = [np.ascontiguousarray((f if every else f[:, idx]).T).reshape(-1) for f in fields]
        at = pd.Timestamp(self.clock.time_at(*self.clock.position()), tz="UTC")
        return pd.DataFrame(
            {
                "interval": _repeat_strings([interval], rows * n),
                "symbol": _repeat_strings(list(self.stocks.names[idx]), rows),
                "ts": pd.arrays.DatetimeArray._from_sequence(np.tile(ts, n).view("M8[ns]"), dtype=_UTC),
                "open": flat[0],
                "high": flat[1],
                "low": flat[2],
                "close": flat[3],
                "volume": flat[4],
                "source": _repeat_strings([NAME], rows * n),
                "quality": np.ones(rows * n, dtype=np.float32),
                "ingested_at": pd.DatetimeIndex([at]).repeat(rows * n),
            }
        )


_UTC = pd.DatetimeTZDtype("ns", "UTC")


def _signed_size(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A random sign and a size in [lo, hi) from one uniform (its first half picks the sign)."""
    return np.where(u < 0.5, -1.0, 1.0) * (lo + (hi - lo) * ((2 * u) % 1.0))


def _bound(value, side: int) -> int:
    if value is None:
        return np.iinfo(np.int64).max if side > 0 else np.iinfo(np.int64).min
    return _utc(value).value


@functools.lru_cache(maxsize=1)
def _str_dtype():
    return schema.empty_frame("bars")["symbol"].dtype


def _repeat_strings(strings: list[str], repeats: int):
    """Each string repeated ``repeats`` times, as the canonical pandas string array, built from buffers."""
    data = [s.encode() for s in strings]
    lengths = np.repeat(np.array([len(b) for b in data], dtype=np.int64), repeats)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] < 2**31 - 1:
        offsets = offsets.astype(np.int32)
        kind = pa.string()
    else:
        kind = pa.large_string()
    body = b"".join(b * repeats for b in data)
    arr = pa.Array.from_buffers(kind, len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(body)])
    dtype = _str_dtype()
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow" and kind == pa.string():
        return pd.arrays.ArrowStringArray(pa.chunked_array([arr]), dtype=dtype)
    return pd.array(arr.to_numpy(zero_copy_only=False), dtype=dtype)
