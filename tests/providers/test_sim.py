"""The market simulator: determinism, valid canonical bars, its clock, and a model that is not wrong."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mintel import calendar, schema
from mintel.errors import ConfigError, DataError, SymbolNotFound
from mintel.providers.base import Provider, provider_factory
from mintel.providers.sim import SimClock, SimMarket, SimProvider

START = "2026-10-30"  # a Friday: the next NSE session is after a weekend


def universe(n: int, sectors: int = 10, exchange: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"symbol": [f"S{i:04d}" for i in range(n)], "sector": [f"Sector{i % sectors}" for i in range(n)]})
    if exchange:
        frame["exchange"] = exchange
    return frame


def market(n: int = 200, seed: int = 42, start: str = START, **clock) -> SimMarket:
    return SimMarket(universe(n), seed=seed, clock=SimClock("NSE", start, **clock))


def run(coro):
    return asyncio.run(coro)


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def played() -> SimMarket:
    """1000 symbols, one whole session played."""
    m = market(1000, seed=7)
    m.clock.advance(375)
    return m


@pytest.fixture(scope="module")
def long_run() -> tuple[SimMarket, list[pd.DataFrame]]:
    """300 symbols over 30 sessions: the quotes at each session's close."""
    m = market(300, seed=3, start="2026-08-03")
    closes = []
    for i in range(30):
        m.clock.advance(m.clock.session(i).n)  # to session i's close
        closes.append(m.quotes())
    return m, closes


# ------------------------------------------------------------------------------------- determinism


def test_same_seed_same_bars_quotes_and_history():
    a, b = market(seed=11), market(seed=11)
    a.clock.advance(120)
    b.clock.advance(120)
    assert_frame_equal(a.bars(), b.bars())
    assert_frame_equal(a.quotes(), b.quotes())
    assert_frame_equal(a.daily_bars(days=300), b.daily_bars(days=300))


def test_different_seed_different_market():
    a, b = market(seed=1), market(seed=2)
    a.clock.advance(30)
    b.clock.advance(30)
    assert not np.allclose(a.bars()["close"], b.bars()["close"])
    assert not np.allclose(a.daily_history(days=50)["close"], b.daily_history(days=50)["close"])


def test_batching_and_call_pattern_do_not_change_the_market():
    uni = universe(400)
    whole = SimProvider(uni, seed=5, clock=SimClock("NSE", START))
    halves = SimProvider(uni, seed=5, clock=SimClock("NSE", START))
    symbols = uni["symbol"].tolist()
    first, second = symbols[:150], symbols[150:]
    got_whole, got_halves = [], []
    for minute in range(40):
        whole.clock.advance(1)
        halves.clock.advance(1)
        got_whole.append(run(whole.fetch_bars(symbols, "1m", start=whole.clock.now - pd.Timedelta(minutes=1))))
        if minute % 7 == 0:
            run(halves.fetch_quotes(second))  # extra requests in between change nothing
        parts = [run(halves.fetch_bars(batch, "1m", start=halves.clock.now - pd.Timedelta(minutes=1))) for batch in (second, first)]
        got_halves.append(pd.concat(parts).sort_values(["symbol", "ts"]).reset_index(drop=True))
    assert_frame_equal(pd.concat(got_whole, ignore_index=True), pd.concat(got_halves, ignore_index=True))
    q_whole = run(whole.fetch_quotes(symbols))
    q_halves = pd.concat([run(halves.fetch_quotes(first)), run(halves.fetch_quotes(second))], ignore_index=True)
    assert_frame_equal(q_whole, q_halves)


def test_generation_is_the_same_minute_by_minute_or_at_once():
    a, b = market(seed=9), market(seed=9)
    a.clock.advance(375 + 50)
    for _ in range(375 + 50):
        b.clock.advance(1)
        b.quotes()
    assert_frame_equal(a.bars(), b.bars())
    assert_frame_equal(a.daily_bars(days=5), b.daily_bars(days=5))


# ------------------------------------------------------------------------------------ valid bars


def test_minute_bars_are_valid_and_canonical(played):
    bars = played.bars()
    assert len(bars) == 1000 * 375
    assert list(bars.columns) == schema.BARS.names
    assert (bars.dtypes == schema.empty_frame("bars").dtypes).all()
    assert schema.bar_problems(bars).isna().all()
    assert schema.conform("bars", bars).num_rows == len(bars)
    assert set(bars["interval"]) == {"1m"} and set(bars["source"]) == {"sim"} and (bars["quality"] == 1.0).all()
    assert bars.equals(bars.sort_values(["symbol", "ts"]).reset_index(drop=True))
    assert (bars["open"] > 0).all() and (bars["volume"] >= 0).all()


def test_daily_bars_are_valid_and_stamped_at_midnight(played):
    daily = played.daily_bars(days=500)
    assert len(daily) == 1000 * 500
    assert schema.bar_problems(daily).isna().all()
    assert schema.conform("bars", daily).num_rows == len(daily)
    assert set(daily["interval"]) == {"1d"}
    assert (daily["ts"] == daily["ts"].dt.normalize()).all()
    assert daily.equals(daily.sort_values(["symbol", "ts"]).reset_index(drop=True))
    assert daily.groupby("symbol")["ts"].is_monotonic_increasing.all()


def test_price_and_volume_magnitudes():
    m = market(2000)
    m.clock.advance(375)
    q = m.quotes()
    assert q["prev_close"].min() > 40 and q["prev_close"].max() < 6000
    assert q["prev_close"].quantile(0.1) < 150 and q["prev_close"].quantile(0.9) > 1500
    assert q["day_volume"].quantile(0.02) > 1e4 and q["day_volume"].quantile(0.98) < 1e7


# ------------------------------------------------------------------------------------------ clock


def test_stepped_clock_plays_one_session_then_jumps_to_the_next_open():
    m = market(300)
    session = pd.Timestamp(START)
    minutes = calendar.session_minutes("NSE", session)
    assert m.clock.now == minutes[0]
    for _ in range(375):
        m.clock.advance(minutes=1)
    assert m.clock.now == calendar.session_bounds("NSE", session)[1]
    bars = m.bars()
    assert pd.DatetimeIndex(sorted(bars["ts"].unique())).equals(minutes)
    last_close = bars.groupby("symbol")["close"].last()

    m.clock.advance(minutes=1)
    following = calendar.sessions("NSE", session + pd.Timedelta(days=1), session + pd.Timedelta(days=10))[0]
    new = m.bars(start=m.clock.now - pd.Timedelta(minutes=1))
    assert set(new["ts"]) == {calendar.session_minutes("NSE", following)[0]}
    opens = new.set_index("symbol")["open"]
    assert (opens != last_close).mean() > 0.8  # an overnight gap for most symbols
    q = m.quotes().set_index("symbol")
    assert (q["prev_close"] == last_close).all()
    assert len(m.bars()) == 300 * 376  # the previous session is still served


def test_wall_clock_at_speed_60_moves_a_minute_per_second():
    fake = FakeTime()
    clock = SimClock("NSE", START, mode="wall", speed=60, time_fn=fake)
    m = SimMarket(universe(50), clock=clock)
    open_ = calendar.session_minutes("NSE", START)[0]
    assert clock.now == open_
    fake.t += 1
    assert clock.now == open_ + pd.Timedelta(minutes=1)
    fake.t += 1.5
    assert clock.now == open_ + pd.Timedelta(minutes=2, seconds=30)
    assert sorted(m.bars()["ts"].unique()) == [open_, open_ + pd.Timedelta(minutes=1)]
    q = m.quotes()
    assert (q["ts"] == clock.now).all()
    fake.t += 375  # past the close at this speed: into the next session
    assert clock.now > calendar.session_bounds("NSE", START)[1] + pd.Timedelta(hours=12)


def test_wall_clock_default_speed_is_real_time():
    fake = FakeTime()
    clock = SimClock("NSE", START, mode="wall", time_fn=fake)
    fake.t += 120
    assert clock.minutes_elapsed == pytest.approx(2.0)


def test_clock_advance_to_and_default_start():
    clock = SimClock("NSE", START)
    target = calendar.session_minutes("NSE", START)[100]
    assert clock.advance_to(target) == target
    assert clock.advance_to(target - pd.Timedelta(minutes=30)) == target  # never backwards
    assert clock.position() == (0, 100)
    with pytest.raises(DataError):
        clock.advance(-1)
    default = SimClock("NSE")
    assert default.start_session == calendar.previous_session("NSE")
    with pytest.raises(ConfigError):
        SimClock("NSE", START, mode="sometimes")


# ------------------------------------------------------------------------------------ statistics


def test_returns_share_a_market_factor_and_more_within_sectors(played):
    close = played.bars().pivot(index="ts", columns="symbol", values="close")
    returns = np.log(close).diff().dropna().to_numpy()
    corr = np.corrcoef(returns.T)
    sector = played.stocks.sector[played.indices(close.columns)]
    same = sector[:, None] == sector[None, :]
    off_diagonal = ~np.eye(len(sector), dtype=bool)
    within, across = corr[same & off_diagonal].mean(), corr[~same].mean()
    assert across > 0.05
    assert within > across + 0.05


def test_volume_is_u_shaped_with_spikes(played):
    volume = played.bars().pivot(index="ts", columns="symbol", values="volume")
    relative = (volume / volume.median()).mean(axis=1).to_numpy()
    midday = relative[150:225].mean()
    assert relative[:30].mean() > 1.5 * midday
    assert relative[-30:].mean() > 1.3 * midday
    spikes = (volume > 5 * volume.median()).sum()
    assert spikes.sum() > 100 and (spikes > 0).mean() > 0.2


def test_daily_return_std_in_range_for_history_and_played_sessions(long_run):
    m, closes = long_run
    history = m.daily_history(days=500)
    r = np.log(history.pivot(index="ts", columns="symbol", values="close")).diff().dropna()
    assert 0.015 < r.std().median() < 0.025
    played = np.log(np.array([q["price"] for q in closes]) / np.array([q["prev_close"] for q in closes]))
    assert 0.014 < np.median(played.std(axis=0)) < 0.026
    assert np.abs(played.mean()) < 0.01


def test_daily_trends_persist_and_reverse():
    m = market(300)
    daily = m.daily_history(days=750).pivot(index="ts", columns="symbol", values="close")
    r = np.log(daily).diff().dropna()
    trend = r.rolling(20).sum().dropna()
    # Drift regimes make 20-day moves wider than a random walk's (variance ratio ~1 there) ...
    assert (trend.var() / (20 * r.var())).median() > 1.08
    # ... and the trends reverse.
    assert (np.sign(trend).diff().abs() > 0).sum().median() > 5


# -------------------------------------------------------------------------- quotes and joining up


def test_quotes_agree_with_bars_on_a_minute_boundary():
    m = market(300)
    m.clock.advance(375 + 90)
    bars = m.bars(start=m.clock.now.normalize())
    q = m.quotes().set_index("symbol")
    g = bars.groupby("symbol")
    assert (q["price"] == g["close"].last()).all()
    assert (q["day_volume"] == g["volume"].sum()).all()
    assert (q["open"] == g["open"].first()).all()
    assert (q["high"] == g["high"].max()).all() and (q["low"] == g["low"].min()).all()
    assert (q["bid"] < q["price"]).all() and (q["ask"] > q["price"]).all()
    assert (q["ts"] == m.clock.now).all()
    assert list(m.quotes().columns) == schema.QUOTES.names
    assert schema.conform("quotes", m.quotes()).num_rows == 300


def test_quotes_inside_a_minute_move_within_the_bar():
    fake = FakeTime()
    m = SimMarket(universe(100), clock=SimClock("NSE", START, mode="wall", speed=60, time_fn=fake))
    fake.t += 10.5
    q = m.quotes().set_index("symbol")
    fake.t += 0.5
    bar = m.bars(start=m.clock.now - pd.Timedelta(minutes=1)).set_index("symbol")
    assert (q["price"] <= bar["high"]).all() and (q["price"] >= bar["low"]).all()
    assert (q["day_volume"] <= m.quotes().set_index("symbol")["day_volume"]).all()


def test_history_joins_the_intraday_session(long_run):
    m, closes = long_run
    history = m.daily_history(days=10)
    first = closes[0].set_index("symbol")
    assert (history.groupby("symbol")["close"].last() == first["prev_close"]).all()
    assert history["ts"].max() < pd.Timestamp("2026-08-03", tz="UTC")
    daily = m.daily_bars(start="2026-08-01").set_index(["symbol", "ts"])
    assert daily.index.get_level_values("ts").nunique() == 30
    for q in (closes[0], closes[-1]):
        day = daily.xs(q["ts"].iloc[0].normalize(), level="ts")
        q = q.set_index("symbol")
        assert (day["close"] == q["price"]).all() and (day["volume"] == q["day_volume"]).all()
        assert (day["open"] == q["open"]).all() and (day["high"] == q["high"]).all()


def test_daily_bars_include_the_session_in_progress():
    m = market(50)
    m.clock.advance(375 + 60)
    today = m.daily_bars(days=1)
    minutes = m.bars(start=m.clock.now.normalize())
    assert (today["ts"] == m.clock.now.normalize()).all()
    assert (today.set_index("symbol")["volume"] == minutes.groupby("symbol")["volume"].sum()).all()


# -------------------------------------------------------------------------------------- provider


def test_provider_protocol_and_registry():
    p = provider_factory("sim")(universe=["AAA", "BBB"], clock=SimClock("NSE", START))
    assert isinstance(p, SimProvider) and isinstance(p, Provider)
    assert p.name == "sim" and p.capabilities.symbols_per_request >= 10_000
    assert p.capabilities.quotes and p.capabilities.intraday_bars and p.capabilities.daily_bars
    assert p.rate_limit.requests_per_minute is None
    assert p.ticker("RELIANCE", "NSE") == "RELIANCE"
    assert set(p.market.universe["sector"]) == {"Unknown"}
    p.clock.advance(5)
    bars = run(p.fetch_bars(["BBB", "AAA", "NOPE"], "1m"))
    assert list(bars["symbol"].unique()) == ["AAA", "BBB"] and len(bars) == 10
    daily = run(p.fetch_bars(["AAA"], "1d", start=pd.Timestamp("2026-10-01", tz="UTC")))
    assert daily["ts"].min() >= pd.Timestamp("2026-10-01", tz="UTC") and daily["ts"].max() == pd.Timestamp(START, tz="UTC")
    with pytest.raises(SymbolNotFound):
        run(p.fetch_quotes(["NOPE"]))
    with pytest.raises(DataError):
        run(p.fetch_bars(["AAA"], "5m"))
    run(p.aclose())


def test_provider_loads_a_universe_by_name(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("symbol\nAAPL\nMSFT\n")
    p = SimProvider(str(csv), seed=1, clock=SimClock("NYSE", "2026-11-02"))
    p.clock.advance(1)
    q = run(p.fetch_quotes(["AAPL", "MSFT"]))
    assert list(q["symbol"]) == ["AAPL", "MSFT"]
    assert (np.round(q["price"] * 100) == q["price"] * 100).all()  # a cent tick on US exchanges


def test_us_universe_follows_nyse_sessions():
    p = SimProvider(universe(20, exchange="NYSE"), start="2026-11-02")
    assert p.clock.exchange == "NYSE"
    p.clock.advance(390)
    bars = run(p.fetch_bars(p.market.symbols, "1m"))
    assert pd.DatetimeIndex(sorted(bars["ts"].unique())).equals(calendar.session_minutes("NYSE", "2026-11-02"))
