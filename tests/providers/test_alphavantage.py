"""Alpha Vantage: parsers on its payloads (and its HTTP-200 errors); the adapter over real HTTP
against the local stand-in (round trips, outputsize, the key in the query, faults)."""

from __future__ import annotations


import httpx
import numpy as np
import pandas as pd
import pytest

from mintel import schema
from mintel.config import Secret
from mintel.errors import ProviderUnavailable, RateLimited, SymbolNotFound
from mintel.providers.alphavantage import AlphaVantageProvider, check_payload, parse_global_quote, parse_time_series
from tests.providers.servers import BAD_ROW, AlphaVantageServer, Limit
from tests.providers.client import assert_same_bars, calls_for

INTRADAY = {
    "Meta Data": {"1. Information": "Intraday (1min) open, high, low, close prices and volume", "2. Symbol": "IBM",
                  "3. Last Refreshed": "2026-11-24 09:31:00", "4. Interval": "1min", "5. Output Size": "Compact",
                  "6. Time Zone": "US/Eastern"},
    "Time Series (1min)": {
        "2026-11-24 09:31:00": {"1. open": "220.1000", "2. high": "220.5000", "3. low": "219.9000", "4. close": "220.2000",
                                "5. volume": "1500"},
        "2026-11-24 09:30:00": {"1. open": "219.8000", "2. high": "220.3000", "3. low": "219.7000", "4. close": "220.1000",
                                "5. volume": "9000"},
    },
}


with_provider, fetch_bars, fetch_quotes = calls_for(AlphaVantageProvider)
same_bars = assert_same_bars


# ------------------------------------------------------------------------------------ parsers


def test_parse_intraday_in_the_stated_time_zone():
    bars, rejected = parse_time_series(INTRADAY, "IBM", "1m")
    assert list(bars["ts"]) == [pd.Timestamp("2026-11-24 14:30", tz="UTC"), pd.Timestamp("2026-11-24 14:31", tz="UTC")]
    assert bars["open"].tolist() == [219.8, 220.1] and bars["volume"].tolist() == [9000, 1500]
    assert rejected.empty and bars.dtypes.to_dict() == schema.empty_frame("bars").dtypes.to_dict()


def test_parse_daily_keeps_the_date_and_rejects_incomplete_rows():
    daily = {"Meta Data": {"5. Time Zone": "US/Eastern"}, "Time Series (Daily)": {
        "2026-11-24": {"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1.5", "5. volume": "10"},
        "2026-11-23": {"1. open": "1", "2. high": "2", "3. low": "0.5", "5. volume": "10"},
    }}
    bars, rejected = parse_time_series(daily, "IBM", "1d")
    assert bars["ts"].tolist() == [pd.Timestamp("2026-11-24", tz="UTC")]
    assert rejected["reason"].tolist() == ["close missing in the payload"]


@pytest.mark.parametrize("body,error,retry", [
    ({"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute"}, RateLimited, 60.0),
    ({"Information": "Our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans"},
     RateLimited, None),
    ({"Information": "Thank you for using Alpha Vantage! This is a premium endpoint."}, ProviderUnavailable, None),
    ({"Error Message": "Invalid API call. Please retry or visit the documentation"}, SymbolNotFound, None),
    ({"Error Message": "the parameter apikey is invalid or missing."}, ProviderUnavailable, None),
])
def test_errors_in_the_body_map_to_mintel_errors(body, error, retry):
    with pytest.raises(error) as info:
        check_payload(body, "IBM")
    if error is RateLimited:
        assert info.value.retry_after_s == retry
    with pytest.raises(error):
        parse_time_series(body, "IBM", "1m")


def test_parse_global_quote():
    body = {"Global Quote": {"01. symbol": "RELIANCE.BSE", "02. open": "1030.0000", "03. high": "1040.0000",
                             "04. low": "1025.0000", "05. price": "1036.4100", "06. volume": "123456",
                             "07. latest trading day": "2026-11-23", "08. previous close": "1034.9300"}}
    q = parse_global_quote(body, "RELIANCE", exchange="NSE")
    assert q.loc[0, "price"] == 1036.41 and q.loc[0, "prev_close"] == 1034.93 and q.loc[0, "day_volume"] == 123456
    assert q.loc[0, "ts"] == pd.Timestamp("2026-11-23 10:00", tz="UTC")  # the session's close
    early = parse_global_quote(body, "RELIANCE", exchange="NSE", now=pd.Timestamp("2026-11-23 05:00", tz="UTC"))
    assert early.loc[0, "ts"] == pd.Timestamp("2026-11-23 05:00", tz="UTC")
    assert parse_global_quote(body, "RELIANCE").loc[0, "ts"] == pd.Timestamp("2026-11-23", tz="UTC")
    with pytest.raises(SymbolNotFound):
        parse_global_quote({"Global Quote": {}}, "NOPE")


def test_parsers_on_server_made_payloads(alphavantage_server):
    url, key = f"{alphavantage_server.url}/query", alphavantage_server.api_key
    raw = httpx.get(url, params={"function": "TIME_SERIES_DAILY", "symbol": "INFY.BSE", "apikey": key}).json()
    bars, rejected = parse_time_series(raw, "INFY", "1d")
    same_bars(bars, alphavantage_server.bars(["INFY"], "1d").tail(100))
    raw = httpx.get(url, params={"function": "GLOBAL_QUOTE", "symbol": "INFY.BSE", "apikey": key}).json()
    assert parse_global_quote(raw, "INFY").loc[0, "price"] == alphavantage_server.quotes(["INFY"]).loc[0, "price"]


# ------------------------------------------------------------------------------------ adapter


def test_intraday_round_trip_latest_100(alphavantage_server):
    bars = fetch_bars(alphavantage_server, ["RELIANCE", "M&M"])
    expected = alphavantage_server.bars(["RELIANCE", "M&M"], "1m").groupby("symbol").tail(100)
    same_bars(bars, expected)
    req = alphavantage_server.requests[0]
    assert req.params["function"] == "TIME_SERIES_INTRADAY" and req.params["interval"] == "1min"
    assert req.params["outputsize"] == "compact" and req.params["symbol"] in ("RELIANCE.BSE", "M&M.BSE")


def test_start_beyond_the_latest_100_asks_the_full_series(alphavantage_server):
    start = pd.Timestamp("2026-11-16 05:00", tz="UTC")
    bars = fetch_bars(alphavantage_server, ["TCS"], "1m", start)
    same_bars(bars, alphavantage_server.bars(["TCS"], "1m", start))
    assert alphavantage_server.requests[0].params["outputsize"] == "full"


def test_daily_round_trip(alphavantage_server):
    start = pd.Timestamp("2026-10-01", tz="UTC")
    bars = fetch_bars(alphavantage_server, ["TCS"], "1d", start)
    same_bars(bars, alphavantage_server.bars(["TCS"], "1d", start))
    assert alphavantage_server.requests[0].params["function"] == "TIME_SERIES_DAILY"


def test_quotes_round_trip(alphavantage_server):
    symbols = ["RELIANCE", "TCS", "BAJAJ-AUTO"]
    got = fetch_quotes(alphavantage_server, symbols).set_index("symbol").loc[symbols]
    expected = alphavantage_server.quotes(symbols).set_index("symbol").loc[symbols]
    for col in ("price", "open", "high", "low", "prev_close", "day_volume"):
        np.testing.assert_allclose(got[col], expected[col], rtol=0, atol=1e-9, err_msg=col)
    assert (got["ts"].dt.date == expected["ts"].dt.date).all()
    assert alphavantage_server.count("/query") == 3


def test_key_goes_in_the_query(alphavantage_server):
    fetch_quotes(alphavantage_server, ["TCS"])
    [req] = alphavantage_server.requests
    assert req.key_where == "query" and req.key_ok


def test_wrong_key_is_provider_unavailable(alphavantage_server):
    with pytest.raises(ProviderUnavailable, match="API key refused"):
        fetch_bars(alphavantage_server, ["TCS"], api_key=Secret("not-the-key"))


@pytest.mark.parametrize("style,retry", [("body", 60.0), ("information", None), ("http", 60)])
def test_rate_limits(style, retry):
    with AlphaVantageServer(limit=Limit(1, style=style)) as server:
        fetch_quotes(server, ["TCS"])
        with pytest.raises(RateLimited) as info:
            fetch_quotes(server, ["TCS"])
        if retry is None:
            assert info.value.retry_after_s is None
        else:
            assert info.value.retry_after_s == pytest.approx(retry, abs=1)


def test_unknown_symbols(alphavantage_server):
    alphavantage_server.faults.unknown = {"TCS"}
    assert set(fetch_bars(alphavantage_server, ["TCS", "INFY"])["symbol"]) == {"INFY"}
    assert fetch_quotes(alphavantage_server, ["TCS", "INFY"])["symbol"].tolist() == ["INFY"]
    with pytest.raises(SymbolNotFound):
        fetch_bars(alphavantage_server, ["TCS"])
    with pytest.raises(SymbolNotFound):
        fetch_quotes(alphavantage_server, ["TCS"])


@pytest.mark.parametrize("fault,match", [
    ({"server_error": -1, "server_status": 502}, "HTTP 502"),
    ({"truncate": True}, "malformed"),
    ({"delay_s": 1.0}, "timed out"),
    ({"disconnect": True}, "failed"),
])
def test_transport_faults(alphavantage_server, fault, match):
    for k, v in fault.items():
        setattr(alphavantage_server.faults, k, v)
    with pytest.raises(ProviderUnavailable, match=match):
        fetch_quotes(alphavantage_server, ["TCS"], timeout_s=0.3)


def test_empty_series_is_empty(alphavantage_server):
    alphavantage_server.faults.empty = True
    assert fetch_bars(alphavantage_server, ["TCS"]).empty


@pytest.mark.parametrize("fault", ["nan_price", "negative_price", "high_below_low", "null_minutes"])
def test_bad_rows_come_back_for_quarantine(alphavantage_server, fault):
    setattr(alphavantage_server.faults, fault, True)
    served = alphavantage_server.bars(["TCS"], "1m").tail(100).reset_index(drop=True)
    bars = fetch_bars(alphavantage_server, ["TCS"])
    _, bad = schema.split_valid_bars(bars)
    if fault == "null_minutes":
        assert len(bars) == 99 and bad["ts"].tolist() == [served["ts"][3]]
    else:
        assert len(bars) == 100 and bad["ts"].tolist() == [served["ts"][BAD_ROW]]
