"""Exchange sessions against known dates.

NSE holidays asserted here (exchange_calendars XBOM, matching NSE's published lists):
2025-10-21 Diwali Laxmi Pujan (only the evening muhurat session), 2025-10-22 Diwali Balipratipada,
2025-11-05 Prakash Gurpurb Sri Guru Nanak Dev; 2026-11-10 Diwali Balipratipada, 2026-11-24 Guru Nanak Jayanti.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mintel import calendar
from mintel.errors import DataError


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


# --- NSE sessions -----------------------------------------------------------------------------


@pytest.mark.parametrize("holiday", ["2025-10-21", "2025-10-22", "2025-11-05", "2026-11-10", "2026-11-24"])
def test_nse_holidays(holiday):
    assert not calendar.is_session("NSE", holiday)
    with pytest.raises(DataError, match=f"{holiday}: not a NSE session"):
        calendar.session_bounds("NSE", holiday)


@pytest.mark.parametrize("weekend", ["2025-11-08", "2025-11-09", "2026-11-21", "2026-11-22"])
def test_nse_weekends_closed(weekend):
    assert not calendar.is_session("NSE", weekend)


def test_nse_sessions_of_november_2025():
    sessions = calendar.sessions("NSE", "2025-11-01", "2025-11-30")
    assert len(sessions) == 19  # 20 weekdays less Guru Nanak Jayanti
    assert day("2025-11-05") not in sessions
    assert sessions[0] == day("2025-11-03") and sessions[-1] == day("2025-11-28")
    assert all(s.day_of_week < 5 for s in sessions)


def test_nse_sessions_of_november_2026():
    sessions = calendar.sessions("NSE", "2026-11-01", "2026-11-30")
    assert len(sessions) == 19  # 21 weekdays less Balipratipada and Guru Nanak Jayanti
    assert day("2026-11-10") not in sessions and day("2026-11-24") not in sessions


def test_nse_session_bounds_in_utc():
    open_, close = calendar.session_bounds("NSE", "2025-11-04")
    assert (open_, close) == (utc("2025-11-04 03:45"), utc("2025-11-04 10:00"))
    local = open_.tz_convert(calendar.timezone("NSE"))
    assert (local.hour, local.minute) == (9, 15)
    assert (close.tz_convert("Asia/Kolkata").hour, close.tz_convert("Asia/Kolkata").minute) == (15, 30)


def test_nse_and_bse_share_sessions_and_exchange_is_case_insensitive():
    assert calendar.session_bounds("bse", "2025-11-04") == calendar.session_bounds("NSE", "2025-11-04")
    assert calendar.exchange_calendar("nse") is calendar.exchange_calendar("BSE")


def test_nse_session_has_375_minutes():
    minutes = calendar.session_minutes("NSE", "2025-11-04")
    assert len(minutes) == 375
    assert minutes[0] == utc("2025-11-04 03:45") and minutes[-1] == utc("2025-11-04 09:59")


def test_session_minutes_of_a_holiday():
    with pytest.raises(DataError, match="2025-11-05: not a NSE session"):
        calendar.session_minutes("NSE", "2025-11-05")


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2025-11-04 05:00", True),  # mid-session
        ("2025-11-04 03:45", True),  # the opening minute
        ("2025-11-04 03:44:59", False),  # just before the open
        ("2025-11-04 09:59:59", True),  # the last minute
        ("2025-11-04 10:00", False),  # at the close
        ("2025-11-05 05:00", False),  # Guru Nanak Jayanti
        ("2025-11-08 05:00", False),  # Saturday
    ],
)
def test_nse_is_open(at, expected):
    assert calendar.is_open("NSE", utc(at)) is expected


def test_is_open_accepts_exchange_local_and_naive_utc():
    assert calendar.is_open("NSE", pd.Timestamp("2025-11-04 09:15", tz="Asia/Kolkata"))
    assert not calendar.is_open("NSE", pd.Timestamp("2025-11-04 09:14", tz="Asia/Kolkata"))
    assert calendar.is_open("NSE", "2025-11-04 05:00")  # naive means UTC


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2025-11-10 02:00", "2025-11-07"),  # Monday before the open: back over the weekend
        ("2025-11-06 03:00", "2025-11-04"),  # Thursday before the open: back over the 5th (holiday)
        ("2025-11-05 06:00", "2025-11-04"),  # during the holiday
        ("2025-11-04 10:00", "2025-11-03"),  # at the close: the session has not closed strictly before
        ("2025-11-04 10:01", "2025-11-04"),
        ("2025-10-23 03:00", "2025-10-20"),  # back over both Diwali days
    ],
)
def test_nse_previous_session(at, expected):
    assert calendar.previous_session("NSE", utc(at)) == day(expected)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2025-11-04 05:00", "2025-11-04"),  # open now
        ("2025-11-04 02:00", "2025-11-04"),  # before today's open
        ("2025-11-04 10:30", "2025-11-06"),  # after the close, the 5th is a holiday
        ("2025-11-08 05:00", "2025-11-10"),  # Saturday
    ],
)
def test_nse_current_or_next_session(at, expected):
    assert calendar.current_or_next_session("NSE", utc(at)) == day(expected)


def test_next_session_near_the_end_of_the_calendar():
    # XBOM's holiday table ends with 2026; looking 15 days ahead from late December must not fail.
    last = calendar.exchange_calendar("NSE").last_session
    at = (last - pd.Timedelta(days=10)).tz_localize("UTC")
    assert calendar.current_or_next_session("NSE", at) <= last


def test_nse_runs_past_the_holidays_exchange_calendars_has_recorded():
    # XBOM's holiday table ends (2026 in exchange_calendars 4.13.2): the calendar still runs a year past
    # today, as XNYS's does, with weekday sessions, so a live NSE ingest keeps running in January.
    cal = calendar.exchange_calendar("NSE")
    assert cal.last_session >= (pd.Timestamp.now() + pd.DateOffset(years=1) - pd.Timedelta(days=7)).normalize()
    assert calendar.is_session("NSE", "2027-01-04")  # a Monday
    assert not calendar.is_session("NSE", "2027-01-09")  # a Saturday
    assert calendar.is_open("NSE", utc("2027-01-04 05:00"))  # 10:30 in Mumbai
    assert not calendar.is_open("NSE", utc("2027-01-04 11:00"))  # 16:30, after the close
    assert calendar.session_bounds("NSE", "2027-01-04") == (utc("2027-01-04 03:45"), utc("2027-01-04 10:00"))
    assert calendar.previous_session("NSE", utc("2027-01-05 05:00")) == day("2027-01-04")
    assert not calendar.is_session("NSE", "2026-10-02")  # the recorded holidays still hold (Gandhi Jayanti)


def test_dates_outside_the_calendar():
    with pytest.raises(DataError, match="2100-01-04: outside the NSE calendar"):
        calendar.is_session("NSE", "2100-01-04")
    with pytest.raises(DataError, match="outside the NYSE calendar"):
        calendar.session_bounds("NYSE", "2100-01-04")


# --- NYSE -------------------------------------------------------------------------------------


def test_nyse_bounds_winter_and_summer():
    assert calendar.session_bounds("NYSE", "2025-11-24") == (utc("2025-11-24 14:30"), utc("2025-11-24 21:00"))
    assert calendar.session_bounds("NYSE", "2025-07-15") == (utc("2025-07-15 13:30"), utc("2025-07-15 20:00"))
    assert calendar.session_bounds("NASDAQ", "2025-07-15") == calendar.session_bounds("US", "2025-07-15")
    assert calendar.timezone("NYSE") == "America/New_York"


def test_nyse_thanksgiving_and_early_close():
    assert not calendar.is_session("NYSE", "2025-11-27")
    assert calendar.session_bounds("NYSE", "2025-11-28")[1] == utc("2025-11-28 18:00")  # 13:00 New York


def test_session_of_a_zoned_instant_is_the_exchange_local_date():
    # Friday 22:00 in New York is already Saturday in UTC; the session date is still Friday.
    friday_evening = pd.Timestamp("2025-11-07 22:00", tz="America/New_York")
    assert calendar.is_session("NYSE", friday_evening)
    assert calendar.session_bounds("NYSE", friday_evening)[0] == utc("2025-11-07 14:30")


def test_nyse_is_open():
    assert calendar.is_open("NYSE", utc("2025-11-24 14:30"))
    assert not calendar.is_open("NYSE", utc("2025-11-24 14:29"))
    assert not calendar.is_open("NYSE", utc("2025-11-24 21:00"))


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("exchange", ["LSE", "", "XNSE"])
def test_unknown_exchange(exchange):
    with pytest.raises(DataError, match=rf"exchange '{exchange}': unknown \(known: .*NSE"):
        calendar.is_open(exchange, utc("2025-11-04 05:00"))


def test_exchange_none_is_a_data_error():
    with pytest.raises(DataError, match="exchange None: unknown"):
        calendar.session_bounds(None, "2025-11-04")
