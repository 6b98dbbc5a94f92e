"""Twelve Data: parsers on single, batch and error payloads; the adapter over real HTTP against the
local stand-in (batches, credits, in-body errors with HTTP 200 or with their status, faults)."""

from __future__ import annotations


import httpx
import numpy as np
import pandas as pd
import pytest

from mintel import schema
from mintel.errors import ProviderError, ProviderUnavailable, RateLimited, SymbolNotFound
from mintel.providers.twelvedata import TwelveDataProvider, error_of, parse_quotes, parse_time_series
from tests.providers.servers import BAD_ROW, Limit, TwelveDataServer
from tests.providers.client import assert_same_bars, calls_for

SERIES = {
    "meta": {"symbol": "TCS", "interval": "1min", "currency": "INR", "exchange_timezone": "Asia/Kolkata",
             "exchange": "NSE", "mic_code": "XNSE", "type": "Common Stock"},
    "values": [
        {"datetime": "2026-11-24 09:17:00", "open": "3501.5", "high": "3503", "low": "3500", "close": "3502.25", "volume": "900"},
        {"datetime": "2026-11-24 09:16:00", "open": "3500", "high": "3502", "low": "3499.5", "close": "3501.5", "volume": "1200"},
    ],
    "status": "ok",
}
NO_DATA = {"code": 400, "message": "No data is available on the specified dates. Try setting different start/end dates.",
           "status": "error"}


with_provider, fetch_bars, fetch_quotes = calls_for(TwelveDataProvider)
same_bars = assert_same_bars


# ------------------------------------------------------------------------------------ parsers


def test_parse_single_symbol_series_in_the_exchange_time_zone():
    bars, rejected, problems = parse_time_series(SERIES, ["TCS"], "1m")
    assert list(bars["ts"]) == [pd.Timestamp("2026-11-24 03:46", tz="UTC"), pd.Timestamp("2026-11-24 03:47", tz="UTC")]
    assert bars["close"].tolist() == [3501.5, 3502.25] and bars["volume"].tolist() == [1200, 900]
    assert rejected.empty and not problems
    assert bars.dtypes.to_dict() == schema.empty_frame("bars").dtypes.to_dict()


def test_parse_batch_keyed_by_symbol_with_per_symbol_errors():
    payload = {
        "TCS": SERIES,
        "NOPE": {"code": 404, "message": "**symbol** not found: NOPE.", "status": "error"},
        "INFY": NO_DATA,
    }
    bars, rejected, problems = parse_time_series(payload, ["TCS", "NOPE", "INFY", "GONE"], "1m")
    assert set(bars["symbol"]) == {"TCS"}
    assert isinstance(problems["NOPE"], SymbolNotFound) and isinstance(problems["GONE"], SymbolNotFound)
    assert "INFY" not in problems  # no data on those dates is an empty answer, not a failure


def test_parse_daily_keeps_the_date():
    daily = {**SERIES, "values": [{"datetime": "2026-11-24", "open": "1", "high": "2", "low": "0.5", "close": "1.5",
                                   "volume": "10"}]}
    bars, _, _ = parse_time_series(daily, ["TCS"], "1d")
    assert bars["ts"].tolist() == [pd.Timestamp("2026-11-24", tz="UTC")]


def test_parse_rejects_rows_with_missing_fields_and_unreadable_times():
    values = [dict(SERIES["values"][0]), dict(SERIES["values"][1], datetime="not a time")]
    del values[0]["close"]
    bars, rejected, _ = parse_time_series({**SERIES, "values": values}, ["TCS"], "1m")
    assert bars.empty
    assert sorted(rejected["reason"]) == ["close missing in the payload", "timestamp missing or unreadable"]


@pytest.mark.parametrize("code,message,error", [
    (429, "You have run out of API credits for the current minute. 9 API credits were used", RateLimited),
    (401, "**apikey** parameter is incorrect or not specified.", ProviderUnavailable),
    (404, "**symbol** not found: X.", SymbolNotFound),
    (400, "**symbol** or **figi** parameter is missing or invalid.", SymbolNotFound),
    (400, "**interval** parameter is missing or invalid.", ProviderError),
    (500, "internal error", ProviderUnavailable),
])
def test_top_level_errors_map_to_mintel_errors(code, message, error):
    with pytest.raises(error):
        parse_time_series({"code": code, "message": message, "status": "error"}, ["A", "B"], "1m")


def test_rate_limit_waits_for_the_next_minute():
    err = error_of({"code": 429, "message": "run out of API credits for the current minute", "status": "error"}, ["A"],
                   now=1_800_000_015.0)
    assert isinstance(err, RateLimited) and err.retry_after_s == pytest.approx(45.0)
    assert error_of(NO_DATA, ["A"]) is None


def test_parse_quotes_single_and_batch():
    item = {"symbol": "TCS", "close": "3502.25", "open": "3490", "high": "3510", "low": "3480", "volume": "123456",
            "previous_close": "3470", "timestamp": 1795449600, "last_quote_at": 1795514340, "datetime": "2026-11-24"}
    q, problems = parse_quotes(item, ["TCS"])
    assert q.loc[0, "price"] == 3502.25 and q.loc[0, "day_volume"] == 123456 and q.loc[0, "prev_close"] == 3470
    assert q.loc[0, "ts"] == pd.Timestamp(1795514340, unit="s", tz="UTC") and np.isnan(q.loc[0, "bid"])
    q, problems = parse_quotes({"TCS": item, "X": {"code": 404, "message": "not found", "status": "error"}}, ["TCS", "X"])
    assert q["symbol"].tolist() == ["TCS"] and isinstance(problems["X"], SymbolNotFound)


def test_parsers_on_server_made_payloads(twelvedata_server):
    auth = {"Authorization": f"apikey {twelvedata_server.api_key}"}
    params = {"symbol": "TCS,INFY", "interval": "1min", "exchange": "NSE", "outputsize": "50"}
    raw = httpx.get(f"{twelvedata_server.url}/time_series", params=params, headers=auth).json()
    bars, rejected, problems = parse_time_series(raw, ["TCS", "INFY"], "1m")
    same_bars(bars, twelvedata_server.bars(["TCS", "INFY"], "1m").groupby("symbol").tail(50))
    assert rejected.empty and not problems
    raw = httpx.get(f"{twelvedata_server.url}/quote", params={"symbol": "TCS"}, headers=auth).json()
    quotes, _ = parse_quotes(raw, ["TCS"])
    assert quotes.loc[0, "price"] == twelvedata_server.quotes(["TCS"]).loc[0, "price"]


# ------------------------------------------------------------------------------------ adapter


SYMBOLS = ["RELIANCE", "M&M", "BAJAJ-AUTO"]
START = pd.Timestamp("2026-11-17 03:45", tz="UTC")


def test_batch_bars_round_trip_in_one_request(twelvedata_server):
    bars = fetch_bars(twelvedata_server, SYMBOLS, start=START)
    same_bars(bars, twelvedata_server.bars(SYMBOLS, "1m", START))
    [req] = twelvedata_server.requests
    assert req.path == "/time_series" and req.params["symbol"] == "RELIANCE,M&M,BAJAJ-AUTO"
    assert req.params["exchange"] == "NSE" and req.params["interval"] == "1min"
    assert req.params["start_date"] == "2026-11-17 09:15:00"  # the exchange's local time
    assert req.cost == 3


def test_single_symbol_and_daily_bars(twelvedata_server):
    bars = fetch_bars(twelvedata_server, ["TCS"], start=START, end=START + pd.Timedelta(minutes=4))
    same_bars(bars, twelvedata_server.bars(["TCS"], "1m", START, START + pd.Timedelta(minutes=4)))
    start = pd.Timestamp("2026-10-01", tz="UTC")
    daily = fetch_bars(twelvedata_server, ["TCS", "INFY"], "1d", start)
    same_bars(daily, twelvedata_server.bars(["TCS", "INFY"], "1d", start))
    assert twelvedata_server.requests[-1].params["start_date"] == "2026-10-01"


def test_without_start_asks_an_output_size(twelvedata_server):
    bars = fetch_bars(twelvedata_server, ["TCS"], options={"outputsize_1m": 30})
    assert len(bars) == 30 and twelvedata_server.requests[0].params["outputsize"] == "30"


def test_quotes_round_trip(twelvedata_server):
    quotes = fetch_quotes(twelvedata_server, SYMBOLS).set_index("symbol").loc[SYMBOLS]
    expected = twelvedata_server.quotes(SYMBOLS).set_index("symbol").loc[SYMBOLS]
    for col in ("price", "open", "high", "low", "prev_close", "day_volume"):
        np.testing.assert_allclose(quotes[col], expected[col], rtol=0, atol=1e-9, err_msg=col)
    assert (quotes["ts"] == expected["ts"]).all()
    assert twelvedata_server.requests[0].cost == 3


def test_key_goes_in_the_header_never_the_url(twelvedata_server):
    fetch_bars(twelvedata_server, ["TCS"], start=START)
    [req] = twelvedata_server.requests
    assert req.key_where == "header" and req.key_ok and "apikey" not in req.params


def test_wrong_key_is_provider_unavailable(twelvedata_server):
    with pytest.raises(ProviderUnavailable, match="API key refused") as info:
        fetch_bars(twelvedata_server, ["TCS"], start=START, api_key=__import__("mintel.config").config.Secret("wrong"))
    assert "wrong" not in str(info.value)


def test_credits_are_counted_per_symbol(twelvedata_server):
    provider = TwelveDataProvider(twelvedata_server.settings(requests_per_minute=55))
    assert provider.rate_unit == "credits" and provider.cost(SYMBOLS) == 3 and provider.cost(SYMBOLS, "quotes") == 3
    assert provider.capabilities.symbols_per_request == 55 and provider.rate_limit.requests_per_minute == 55
    assert TwelveDataProvider(twelvedata_server.settings()).capabilities.symbols_per_request == 8


@pytest.mark.parametrize("http_errors", [False, True])
def test_credit_limit_in_body_is_rate_limited(http_errors):
    with TwelveDataServer(limit=Limit(5, style="body")) as server:
        server.http_errors = http_errors
        fetch_bars(server, SYMBOLS, start=START)  # 3 credits
        with pytest.raises(RateLimited) as info:
            fetch_bars(server, SYMBOLS, start=START)  # 3 more: over 5
        assert 0 < info.value.retry_after_s <= 60
        assert server.requests[-1].status == 200 and server.requests[-1].cost == 3
        fetch_bars(server, ["TCS", "INFY"], start=START)  # 2 credits still fit


def test_credit_limit_as_http_429_with_retry_after():
    with TwelveDataServer(limit=Limit(2, window_s=30, style="http")) as server:
        with pytest.raises(RateLimited) as info:
            fetch_bars(server, SYMBOLS, start=START)
        assert info.value.retry_after_s == 30 and server.requests[-1].status == 429


@pytest.mark.parametrize("http_errors", [False, True])
def test_unknown_symbols(twelvedata_server, http_errors):
    twelvedata_server.http_errors = http_errors
    twelvedata_server.faults.unknown = {"TCS"}
    bars = fetch_bars(twelvedata_server, ["TCS", "INFY"], start=START)
    assert set(bars["symbol"]) == {"INFY"}
    with pytest.raises(SymbolNotFound) as info:
        fetch_bars(twelvedata_server, ["TCS"], start=START)
    assert info.value.symbols == ["TCS"]
    with pytest.raises(SymbolNotFound):
        fetch_quotes(twelvedata_server, ["TCS", "NOPE"])


def test_no_data_on_the_dates_is_an_empty_answer(twelvedata_server):
    twelvedata_server.faults.empty = True
    assert fetch_bars(twelvedata_server, ["TCS", "INFY"], start=START).empty
    assert fetch_bars(twelvedata_server, ["TCS"], start=START).empty


@pytest.mark.parametrize("fault,match", [
    ({"server_error": 1}, "server error"),
    ({"truncate": True}, "malformed or truncated"),
    ({"delay_s": 1.0}, "timed out"),
])
def test_transport_faults_are_provider_unavailable(twelvedata_server, fault, match):
    for k, v in fault.items():
        setattr(twelvedata_server.faults, k, v)
    with pytest.raises(ProviderUnavailable, match=match):
        fetch_bars(twelvedata_server, ["TCS"], start=START, timeout_s=0.3)


@pytest.mark.parametrize("fault", ["nan_price", "negative_price", "high_below_low"])
def test_bad_prices_come_back_for_quarantine(twelvedata_server, fault):
    setattr(twelvedata_server.faults, fault, True)
    served = twelvedata_server.bars(["TCS", "INFY"], "1m", START)
    bars = fetch_bars(twelvedata_server, ["TCS", "INFY"], start=START)
    assert len(bars) == len(served)
    _, bad = schema.split_valid_bars(bars)
    assert sorted(bad["ts"]) == sorted(served.groupby("symbol")["ts"].nth(BAD_ROW))
    assert bad["reason"].notna().all()
