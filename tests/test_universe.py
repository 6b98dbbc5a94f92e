"""Bundled universes, user CSVs, provider ticker mapping and watchlists on disk."""

from __future__ import annotations

import pytest

from mintel.errors import DataError
from mintel.universe import (
    COLUMNS,
    Watchlists,
    canonical_symbol,
    list_universes,
    load_universe,
    provider_ticker,
)

# --- bundled universes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "low", "high", "exchanges"),
    [
        ("nifty50", 50, 50, {"NSE"}),
        ("nifty500", 500, 500, {"NSE"}),
        ("sp500", 495, 510, {"NYSE", "NASDAQ", "US"}),
        ("us1500", 1000, 1600, {"NYSE", "NASDAQ", "US"}),
    ],
)
def test_bundled_universe_counts_and_columns(name, low, high, exchanges):
    u = load_universe(name)
    assert list(u.columns) == COLUMNS
    assert low <= len(u) <= high
    assert u["symbol"].is_unique
    assert set(u["exchange"]) <= exchanges
    for col in COLUMNS:
        assert not u[col].isna().any(), col
        assert all(isinstance(v, str) for v in u[col]), col
    assert (u["symbol"] == u["symbol"].str.strip().str.upper()).all()
    assert (u["sector"] != "").all()


def test_nifty50_known_members():
    u = load_universe("nifty50").set_index("symbol")
    assert u.loc["RELIANCE", "sector"] == "Oil Gas & Consumable Fuels"
    assert u.loc["RELIANCE", "industry"] == ""
    assert u.loc["RELIANCE", "name"].startswith("Reliance Industries")
    assert {"ETERNAL", "JIOFIN", "M&M", "BAJAJ-AUTO"} <= set(u.index)


def test_nifty50_is_a_subset_of_nifty500():
    assert set(load_universe("nifty50")["symbol"]) <= set(load_universe("nifty500")["symbol"])


def test_nifty500_has_nse_sector_classes():
    assert load_universe("nifty500")["sector"].nunique() == 20


def test_us_lists_use_dot_share_classes_and_gics_sectors():
    sp500 = load_universe("sp500").set_index("symbol")
    assert "BRK.B" in sp500.index and "BRK-B" not in sp500.index
    assert sp500.loc["AAPL", "sector"] == "Information Technology"
    assert sp500.loc["AAPL", "exchange"] == "NASDAQ"
    assert sp500.loc["JPM", "sector"] == "Financials"
    assert sp500["sector"].nunique() == 11
    assert set(sp500.index) <= set(load_universe("us1500")["symbol"])


def test_bundled_loads_are_copies():
    first = load_universe("nifty50")
    first.loc[0, "symbol"] = "CHANGED"
    assert "CHANGED" not in set(load_universe("nifty50")["symbol"])


def test_list_universes():
    listing = list_universes().set_index("name")
    assert list(listing.columns) == ["symbols", "exchanges", "description"]
    assert set(listing.index) == {"nifty50", "nifty500", "sp500", "us1500"}
    assert listing.loc["nifty50", "symbols"] == 50
    assert listing.loc["nifty500", "exchanges"] == "NSE"


# --- user CSVs --------------------------------------------------------------------------------


def test_user_csv_with_odd_column_case(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("SYMBOL,Sector,EXCHANGE\n infy ,IT,\naapl,Tech,nasdaq\nINFY,dup,NSE\n\n")
    u = load_universe(str(path))
    assert list(u.columns) == COLUMNS
    assert list(u["symbol"]) == ["INFY", "AAPL"]
    assert list(u["exchange"]) == ["NSE", "NASDAQ"]
    assert list(u["sector"]) == ["IT", "Tech"]
    assert list(u["name"]) == ["", ""] and list(u["industry"]) == ["", ""]


def test_user_csv_symbol_only_takes_default_exchange(tmp_path):
    path = tmp_path / "us.csv"
    path.write_text("Symbol\nmsft\nbrk.b\n")
    u = load_universe(path, default_exchange="US")
    assert list(u["symbol"]) == ["MSFT", "BRK.B"]
    assert set(u["exchange"]) == {"US"}


def test_user_nse_format_file(tmp_path):
    path = tmp_path / "ind_mylist.csv"
    path.write_text(
        "Company Name,Industry,Symbol,Series,ISIN Code\n"
        "Mahindra & Mahindra Ltd.,Automobile and Auto Components,M&M,EQ,INE101A01026\n"
        "Reliance Industries Ltd.,Oil Gas & Consumable Fuels,RELIANCE,EQ,INE002A01018\n"
    )
    u = load_universe(str(path)).set_index("symbol")
    assert u.loc["M&M", "name"] == "Mahindra & Mahindra Ltd."
    assert u.loc["M&M", "sector"] == "Automobile and Auto Components"
    assert u.loc["M&M", "industry"] == ""
    assert u.loc["RELIANCE", "exchange"] == "NSE"


def test_unknown_universe_names_it_and_lists_known():
    with pytest.raises(DataError, match=r"nifty51: unknown universe.*nifty50.*sp500"):
        load_universe("nifty51")


def test_missing_file(tmp_path):
    path = tmp_path / "missing.csv"
    with pytest.raises(DataError, match="missing.csv: no such file"):
        load_universe(str(path))


def test_no_symbol_column(tmp_path):
    path = tmp_path / "nosym.csv"
    path.write_text("name,sector\nInfosys,IT\n")
    with pytest.raises(DataError, match=r"nosym\.csv: no symbol column"):
        load_universe(str(path))


@pytest.mark.parametrize("content", ["", "symbol\n", "symbol\n  \n,\n"])
def test_empty_list(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=r"empty\.csv: .*no symbols"):
        load_universe(str(path))


def test_unreadable_file(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81symbol\n\x00\x9f\n")
    with pytest.raises(DataError, match=r"binary\.csv: unreadable"):
        load_universe(str(path))


# --- provider tickers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "exchange", "provider", "ticker"),
    [
        ("RELIANCE", "NSE", "yahoo", "RELIANCE.NS"),
        ("M&M", "NSE", "yahoo", "M&M.NS"),
        ("BAJAJ-AUTO", "NSE", "yahoo", "BAJAJ-AUTO.NS"),
        ("RELIANCE", "BSE", "yahoo", "RELIANCE.BO"),
        ("BRK.B", "NYSE", "yahoo", "BRK-B"),
        ("BRK.B", "US", "yahoo", "BRK-B"),
        ("AAPL", "NASDAQ", "yahoo", "AAPL"),
        ("RELIANCE", "NSE", "twelvedata", "RELIANCE"),
        ("BRK.B", "NYSE", "twelvedata", "BRK.B"),
        ("RELIANCE", "NSE", "alphavantage", "RELIANCE.BSE"),
        ("RELIANCE", "BSE", "alphavantage", "RELIANCE.BSE"),
        ("IBM", "NYSE", "alphavantage", "IBM"),
        ("M&M", "NSE", "sim", "M&M"),
        ("BRK.B", "US", "replay", "BRK.B"),
        ("RELIANCE", "NSE", "someoneelse", "RELIANCE"),
    ],
)
def test_provider_ticker(symbol, exchange, provider, ticker):
    assert provider_ticker(symbol, exchange, provider) == ticker


@pytest.mark.parametrize(
    ("ticker", "provider", "expected"),
    [
        ("RELIANCE.NS", "yahoo", ("RELIANCE", "NSE")),
        ("M&M.NS", "yahoo", ("M&M", "NSE")),
        ("BAJAJ-AUTO.NS", "yahoo", ("BAJAJ-AUTO", "NSE")),
        ("RELIANCE.BO", "yahoo", ("RELIANCE", "BSE")),
        ("BRK-B", "yahoo", ("BRK.B", "US")),
        ("AAPL", "yahoo", ("AAPL", "US")),
        ("^NSEI", "yahoo", ("^NSEI", None)),
        ("RELIANCE.BSE", "alphavantage", ("RELIANCE", "BSE")),
        ("IBM", "alphavantage", ("IBM", "US")),
        ("M&M", "twelvedata", ("M&M", None)),
        ("M&M", "sim", ("M&M", None)),
    ],
)
def test_canonical_symbol(ticker, provider, expected):
    assert canonical_symbol(ticker, provider) == expected


@pytest.mark.parametrize("universe", ["nifty500", "sp500"])
def test_yahoo_round_trip_for_every_bundled_symbol(universe):
    for row in load_universe(universe).itertuples():
        assert canonical_symbol(provider_ticker(row.symbol, row.exchange, "yahoo"), "yahoo")[0] == row.symbol


# --- watchlists -------------------------------------------------------------------------------


def test_watchlist_round_trip_on_disk(tmp_path):
    lists = Watchlists(tmp_path / "wl")
    assert lists.names() == []
    assert lists.create("momentum", ["infy", " TCS ", "INFY"]) == ["INFY", "TCS"]
    assert (tmp_path / "wl" / "momentum.txt").read_text() == "INFY\nTCS\n"
    assert lists.add("momentum", ["M&M", "tcs"]) == ["INFY", "TCS", "M&M"]
    assert lists.add("momentum", "BRK.B") == ["INFY", "TCS", "M&M", "BRK.B"]
    assert lists.remove("momentum", ["TCS", "NOTTHERE"]) == ["INFY", "M&M", "BRK.B"]
    lists.create("empty_one")
    assert lists.get("empty_one") == []
    assert lists.names() == ["empty_one", "momentum"]
    lists.delete("empty_one")
    assert lists.names() == ["momentum"]
    assert not (tmp_path / "wl" / "empty_one.txt").exists()
    assert [p.name for p in (tmp_path / "wl").iterdir()] == ["momentum.txt"]  # no temp files left


def test_watchlists_persist_across_objects(tmp_path):
    Watchlists(tmp_path).create("swing-2026", ["RELIANCE", "HDFCBANK"])
    again = Watchlists(tmp_path)
    assert again.names() == ["swing-2026"]
    assert again.get("swing-2026") == ["RELIANCE", "HDFCBANK"]


def test_watchlists_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MINTEL_WATCHLISTS", str(tmp_path / "from_env"))
    Watchlists().create("x", ["AAPL"])
    assert (tmp_path / "from_env" / "x.txt").read_text() == "AAPL\n"


def test_hand_edited_watchlist_is_read_leniently(tmp_path):
    (tmp_path / "manual.txt").write_text("# my picks\n infy\n\nTCS\ninfy\n")
    assert Watchlists(tmp_path).get("manual") == ["INFY", "TCS"]


@pytest.mark.parametrize("name", ["", "has space", "../escape", "a/b", "x" * 65, "dot.txt", "ünï"])
def test_bad_watchlist_names_rejected(tmp_path, name):
    lists = Watchlists(tmp_path)
    with pytest.raises(DataError, match="bad name") as info:
        lists.create(name, ["AAPL"])
    assert repr(name) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unknown_watchlist(tmp_path):
    lists = Watchlists(tmp_path)
    for call in (lambda: lists.get("nope"), lambda: lists.add("nope", ["A"]), lambda: lists.delete("nope")):
        with pytest.raises(DataError, match="'nope': no such watchlist"):
            call()


def test_create_existing_watchlist_refused(tmp_path):
    lists = Watchlists(tmp_path)
    lists.create("dup", ["A"])
    with pytest.raises(DataError, match="'dup': already exists"):
        lists.create("dup", ["B"])
    assert lists.get("dup") == ["A"]


def test_symbol_with_whitespace_rejected(tmp_path):
    lists = Watchlists(tmp_path)
    with pytest.raises(DataError, match="whitespace"):
        lists.create("w", ["AA PL"])
