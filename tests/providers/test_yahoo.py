"""Yahoo: the chart/quote parsers on the shared payload samples, and the adapter over real HTTP
against the local stand-in (round trips, batches, the crumb handshake, every fault mode)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mintel import schema
from mintel.errors import ProviderError, ProviderUnavailable, RateLimited, SymbolNotFound
from mintel.providers.yahoo import YahooProvider, parse_chart, parse_quote
from tests.providers.servers import BAD_ROW, Limit, YahooServer
from tests.providers.client import PRICES, assert_same_bars, calls_for, run

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


with_provider, fetch_bars, fetch_quotes = calls_for(YahooProvider)
assert_same_bars = assert_same_bars


# ------------------------------------------------------------------------------------ parsers


def test_parse_chart_1m_sample_skips_nothing_and_rejects_the_half_null_minute():
    bars, rejected = parse_chart(payload("yahoo_chart_1m.json"), "RELIANCE", "1m")
    assert list(bars["ts"]) == [pd.Timestamp(t, unit="s", tz="UTC") for t in (1795491900, 1795491960, 1795492080, 1795492140)]
    assert bars["open"].tolist() == [1035, 1034.93, 1036.97, 1037.92]
    assert bars["volume"].tolist() == [1338, 3409, 1268, 2953]
    assert (bars["symbol"] == "RELIANCE").all() and (bars["source"] == "yahoo").all()
    assert len(rejected) == 1
    assert rejected.loc[0, "ts"] == pd.Timestamp(1795492020, unit="s", tz="UTC")
    assert rejected.loc[0, "reason"] == "open, close missing in the payload"
    assert rejected.loc[0, "high"] == 1037.2
    assert list(bars.columns) == list(schema.empty_frame("bars").columns)
    assert bars.dtypes.to_dict() == schema.empty_frame("bars").dtypes.to_dict()


def test_parse_chart_daily_is_keyed_by_session_date_at_midnight_utc():
    bars, rejected = parse_chart(payload("yahoo_chart_1d.json"), "RELIANCE", "1d")
    assert list(bars["ts"].dt.strftime("%Y-%m-%d %H:%M %Z")) == ["2026-11-20 00:00 UTC", "2026-11-23 00:00 UTC",
                                                               "2026-11-24 00:00 UTC"]
    assert bars["close"].tolist() == [2149.92, 2131.69, 2173.19]
    assert (bars["interval"] == "1d").all() and rejected.empty


def test_parse_chart_daily_uses_the_exchange_time_zone():
    # 2026-11-24 00:30 in Kolkata is still 2026-11-23 in UTC: the session date is the local one.
    p = payload("yahoo_chart_1d.json")
    p["chart"]["result"][0]["timestamp"] = [1795890600 - 86400 * 2, 1795890600 - 86400, 1795890600]
    bars, _ = parse_chart(p, "RELIANCE", "1d")
    assert bars["ts"].iloc[-1] == pd.Timestamp("2026-11-29", tz="UTC")


def test_parse_chart_skips_minutes_without_trades():
    p = payload("yahoo_chart_1m.json")
    q = p["chart"]["result"][0]["indicators"]["quote"][0]
    for f in PRICES:
        q[f][0] = None
    bars, rejected = parse_chart(p, "RELIANCE", "1m")
    assert len(bars) == 3 and len(rejected) == 1  # the empty minute is neither a bar nor rejected


def test_parse_chart_volume_missing_alone_is_rejected():
    p = payload("yahoo_chart_1m.json")
    p["chart"]["result"][0]["indicators"]["quote"][0]["volume"][0] = None
    bars, rejected = parse_chart(p, "RELIANCE", "1m")
    assert "volume missing in the payload" in rejected["reason"].tolist()


@pytest.mark.parametrize("mutate", [
    lambda r: r.pop("timestamp"),
    lambda r: r["indicators"].update(quote=[{}]),
    lambda r: (r.pop("timestamp"), r["indicators"].update(quote=[{}])),
])
def test_parse_chart_without_data_is_empty(mutate):
    p = payload("yahoo_chart_1m.json")
    mutate(p["chart"]["result"][0])
    bars, rejected = parse_chart(p, "RELIANCE", "1m")
    assert bars.empty and rejected.empty
    assert list(bars.columns) == list(schema.empty_frame("bars").columns)


def test_parse_chart_error_payload_is_symbol_not_found():
    p = {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}}
    with pytest.raises(SymbolNotFound) as info:
        parse_chart(p, "NOPE", "1m")
    assert info.value.symbols == ["NOPE"] and "delisted" in str(info.value)
    with pytest.raises(ProviderError):
        parse_chart({"chart": {"result": None, "error": {"code": "Bad Request", "description": "bad"}}}, "X", "1m")


def test_parse_chart_rejects_malformed_payloads():
    with pytest.raises(ProviderUnavailable):
        parse_chart({"unexpected": 1}, "X", "1m")
    p = payload("yahoo_chart_1m.json")
    p["chart"]["result"][0]["indicators"]["quote"][0]["close"].pop()
    with pytest.raises(ProviderUnavailable, match="malformed"):
        parse_chart(p, "RELIANCE", "1m")


def test_parse_chart_keys_the_live_tick_by_its_minute():
    p = payload("yahoo_chart_1m.json")
    r = p["chart"]["result"][0]
    r["timestamp"][-1] += 37  # the last point stamped at the last trade
    bars, _ = parse_chart(p, "RELIANCE", "1m")
    assert bars["ts"].iloc[-1] == pd.Timestamp(1795492140, unit="s", tz="UTC")


def test_parse_quote_maps_the_fields():
    body = {"quoteResponse": {"error": None, "result": [{
        "symbol": "TCS.NS", "regularMarketPrice": 3500.5, "regularMarketTime": 1795514340, "regularMarketOpen": 3490.0,
        "regularMarketDayHigh": 3510.0, "regularMarketDayLow": 3480.0, "regularMarketPreviousClose": 3470.0,
        "regularMarketVolume": 123456, "bid": 3500.4, "ask": 3500.6}, {"symbol": "X.NS"}]}}
    q = parse_quote(body)
    assert q["symbol"].tolist() == ["TCS.NS", "X.NS"]
    row = q.iloc[0]
    assert row["ts"] == pd.Timestamp(1795514340, unit="s", tz="UTC")
    assert (row["price"], row["open"], row["high"], row["low"]) == (3500.5, 3490.0, 3510.0, 3480.0)
    assert (row["prev_close"], row["day_volume"], row["bid"], row["ask"]) == (3470.0, 123456.0, 3500.4, 3500.6)
    assert np.isnan(q.iloc[1]["price"]) and pd.isna(q.iloc[1]["ts"])
    assert q.dtypes.to_dict() == schema.empty_frame("quotes").dtypes.to_dict()


def test_parse_chart_on_a_server_made_payload(yahoo_server):
    raw = httpx.get(f"{yahoo_server.url}/v8/finance/chart/M%26M.NS", params={"interval": "1m", "range": "1d"}).json()
    bars, rejected = parse_chart(raw, "M&M", "1m")
    assert_same_bars(bars, yahoo_server.bars(["M&M"], "1m"))
    assert rejected.empty


# ------------------------------------------------------------------------------------ adapter: data


SYMBOLS = ["RELIANCE", "M&M", "BAJAJ-AUTO"]


def test_intraday_bars_round_trip(yahoo_server):
    bars = fetch_bars(yahoo_server, SYMBOLS)
    assert_same_bars(bars, yahoo_server.bars(SYMBOLS, "1m"))
    paths = sorted(r.path for r in yahoo_server.requests)
    assert paths == ["/v8/finance/chart/BAJAJ-AUTO.NS", "/v8/finance/chart/M&M.NS", "/v8/finance/chart/RELIANCE.NS"]
    assert all(r.params["interval"] == "1m" and r.params["range"] == "1d" for r in yahoo_server.requests)
    assert bars["ingested_at"].notna().all()


def test_bars_between_start_and_end_ask_the_period(yahoo_server):
    start, end = pd.Timestamp("2026-11-17 04:00", tz="UTC"), pd.Timestamp("2026-11-17 04:09", tz="UTC")
    bars = fetch_bars(yahoo_server, ["TCS"], "1m", start, end)
    assert len(bars) == 10 and bars["ts"].min() == start and bars["ts"].max() == end
    assert_same_bars(bars, yahoo_server.bars(["TCS"], "1m", start, end))
    params = yahoo_server.requests[0].params
    assert int(params["period1"]) == int(start.timestamp()) and int(params["period2"]) > int(end.timestamp())


def test_daily_bars_round_trip_keyed_by_session_date(yahoo_server):
    start = pd.Timestamp("2026-10-01", tz="UTC")
    bars = fetch_bars(yahoo_server, ["INFY", "TCS"], "1d", start)
    expected = yahoo_server.bars(["INFY", "TCS"], "1d", start)
    assert_same_bars(bars, expected)
    assert (bars["ts"] == bars["ts"].dt.normalize()).all()


def test_bars_still_forming_are_held_back(yahoo_server):
    expected = yahoo_server.bars(["TCS"], "1m")
    last = expected["ts"].max()

    async def go(p):
        p.now = lambda: last + pd.Timedelta(seconds=30)
        return await p.fetch_bars(["TCS"], "1m")

    bars = run(with_provider(yahoo_server, go))
    assert bars["ts"].max() == last - pd.Timedelta(minutes=1)


def test_quotes_round_trip_in_batches_with_one_handshake(yahoo_server):
    symbols = ["RELIANCE", "TCS", "INFY", "HDFCBANK", "M&M", "BAJAJ-AUTO"]

    async def go(p):
        first = await p.fetch_quotes(symbols)
        second = await p.fetch_quotes(symbols[:2])
        return first, second

    quotes, _ = run(with_provider(yahoo_server, go, options={"symbols_per_request": 4}))
    expected = yahoo_server.quotes(symbols).set_index("symbol")
    got = quotes.set_index("symbol").loc[expected.index]
    for col in ("price", "open", "high", "low", "prev_close", "day_volume", "bid", "ask"):
        np.testing.assert_array_equal(got[col].to_numpy(), expected[col].to_numpy(), err_msg=col)
    assert (got["ts"] == expected["ts"].dt.floor("s")).all()
    assert (quotes["source"] == "yahoo").all()
    assert yahoo_server.count("/v7/finance/quote") == 3  # 4 + 2 symbols, then 2
    assert yahoo_server.count("/v1/test/getcrumb") == 1 and yahoo_server.count("/") == 1
    batches = [r.params for r in yahoo_server.requests if r.path == "/v7/finance/quote"]
    assert sorted(b["symbols"] for b in batches[:2]) == ["M&M.NS,BAJAJ-AUTO.NS", "RELIANCE.NS,TCS.NS,INFY.NS,HDFCBANK.NS"]
    assert all(b["crumb"] == yahoo_server.crumb for b in batches)


def test_refused_crumb_is_refreshed_once(yahoo_server):
    async def go(p):
        await p.fetch_quotes(["TCS"])
        yahoo_server.invalidate_crumb()
        return await p.fetch_quotes(["TCS", "INFY"])

    quotes = run(with_provider(yahoo_server, go))
    assert sorted(quotes["symbol"]) == ["INFY", "TCS"]
    statuses = [r.status for r in yahoo_server.requests if r.path == "/v7/finance/quote"]
    assert statuses == [200, 401, 200]
    assert yahoo_server.count("/v1/test/getcrumb") == 2


def test_a_crumb_refused_twice_is_an_error(yahoo_server):
    yahoo_server.refuse_crumbs = True
    with pytest.raises(ProviderUnavailable, match="access refused"):
        fetch_quotes(yahoo_server, ["TCS"])
    assert yahoo_server.count("/v7/finance/quote") == 2 and yahoo_server.count("/v1/test/getcrumb") == 2


# ------------------------------------------------------------------------------------ adapter: faults


def test_unknown_symbols_are_skipped_unless_none_is_known(yahoo_server):
    yahoo_server.faults.unknown = {"TCS"}
    bars = fetch_bars(yahoo_server, ["TCS", "INFY"])
    assert set(bars["symbol"]) == {"INFY"}
    quotes = fetch_quotes(yahoo_server, ["TCS", "INFY"])
    assert quotes["symbol"].tolist() == ["INFY"]
    with pytest.raises(SymbolNotFound) as info:
        fetch_bars(yahoo_server, ["TCS", "NOSUCH"])
    assert sorted(info.value.symbols) == ["NOSUCH", "TCS"]
    with pytest.raises(SymbolNotFound):
        fetch_quotes(yahoo_server, ["TCS"])


def test_server_errors_are_provider_unavailable(yahoo_server):
    yahoo_server.faults.server_error = 1
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        fetch_bars(yahoo_server, ["TCS"])
    assert len(fetch_bars(yahoo_server, ["TCS"])) > 0  # the burst is over


def test_timeouts_are_provider_unavailable(yahoo_server):
    yahoo_server.faults.delay_s = 1.0
    with pytest.raises(ProviderUnavailable, match="timed out"):
        fetch_bars(yahoo_server, ["TCS"], timeout_s=0.2)


def test_truncated_json_is_provider_unavailable(yahoo_server):
    yahoo_server.faults.truncate = True
    with pytest.raises(ProviderUnavailable, match="malformed or truncated"):
        fetch_bars(yahoo_server, ["TCS"])


def test_a_dropped_connection_is_provider_unavailable(yahoo_server):
    yahoo_server.faults.disconnect = True
    with pytest.raises(ProviderUnavailable):
        fetch_bars(yahoo_server, ["TCS"])


def test_empty_results_are_empty_frames(yahoo_server):
    yahoo_server.faults.empty = True
    bars = fetch_bars(yahoo_server, ["TCS", "INFY"])
    assert bars.empty and list(bars.columns) == list(schema.empty_frame("bars").columns)
    with pytest.raises(SymbolNotFound):  # Yahoo answers an unknown batch with no results
        fetch_quotes(yahoo_server, ["TCS"])


@pytest.mark.parametrize("style,check", [
    ("seconds", lambda s: 1 <= s <= 60),
    ("date", lambda s: 0 <= s <= 61),
    (None, lambda s: s is None),
])
def test_rate_limit_is_rate_limited_with_retry_after(style, check):
    with YahooServer(limit=Limit(2, retry_after=style)) as server:
        fetch_bars(server, ["TCS", "INFY"])
        with pytest.raises(RateLimited) as info:
            fetch_bars(server, ["TCS"])
        assert check(info.value.retry_after_s)
        assert [r.status for r in server.requests][-1] == 429


def test_null_minutes_are_skipped_or_come_back_for_quarantine(yahoo_server):
    yahoo_server.faults.null_minutes = True
    served = yahoo_server.bars(["TCS"], "1m")
    bars = fetch_bars(yahoo_server, ["TCS"])
    assert len(bars) == len(served) - 1  # the minute without trades is not a bar
    assert served["ts"].iloc[2] not in set(bars["ts"])
    good, bad = schema.split_valid_bars(bars)
    assert bad["ts"].tolist() == [served["ts"].iloc[3]]
    assert bad["reason"].iloc[0] == "open is not a finite number"


@pytest.mark.parametrize("fault,reason", [
    ("nan_price", "close is not a finite number"),
    ("negative_price", "low -"),
    ("high_below_low", "high "),
])
def test_bad_prices_come_back_for_quarantine_with_a_reason(yahoo_server, fault, reason):
    setattr(yahoo_server.faults, fault, True)
    served = yahoo_server.bars(["TCS", "INFY"], "1m")
    bars = fetch_bars(yahoo_server, ["TCS", "INFY"])
    assert len(bars) == len(served)  # nothing dropped on the way
    _, bad = schema.split_valid_bars(bars)
    assert sorted(bad["symbol"]) == ["INFY", "TCS"]
    bad_ts = served.groupby("symbol")["ts"].nth(BAD_ROW).tolist()
    assert sorted(bad["ts"]) == sorted(bad_ts)
    assert all(r.startswith(reason) for r in bad["reason"]), bad["reason"].tolist()
    if fault == "high_below_low":
        assert all("< low" in r for r in bad["reason"])


def test_request_log_and_hook_see_every_request(yahoo_server):
    seen = []

    async def go(p):
        p.on_request = lambda *args: seen.append(args)
        yahoo_server.faults.unknown = {"INFY"}
        await p.fetch_bars(["TCS", "INFY"], "1m")
        await p.fetch_quotes(["TCS"])
        return p.requests.frame()

    log = run(with_provider(yahoo_server, go))
    assert len(seen) == len(log) == 5  # 2 charts, cookie, crumb, quote
    kinds = {(r[0], r[2], r[3]) for r in seen}
    assert ("yahoo", 404, "not_found") in kinds and ("yahoo", 200, None) in kinds
    assert (log["latency_ms"] > 0).all() and set(log["endpoint"]) >= {"/v8/finance/chart/INFY.NS", "/v7/finance/quote"}


def test_the_crumb_never_leaks_into_the_chart_requests(yahoo_server):
    run(with_provider(yahoo_server, lambda p: p.fetch_quotes(["TCS"])))
    fetch_bars(yahoo_server, ["TCS"])
    assert "crumb" not in yahoo_server.requests[-1].params

