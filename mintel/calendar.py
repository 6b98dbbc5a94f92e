"""Exchange sessions and holidays, from exchange_calendars.

NSE keeps BSE's sessions and holidays, so NSE and BSE both use ``XBOM`` (09:15-15:30 Asia/Kolkata);
US exchanges use ``XNYS``. Everything in and out is UTC; the exchange's zone is for display only.

XBOM's holidays are a table that ends with the last year exchange_calendars has recorded (2026 in
4.13.2), and the library will not build it further. A calendar built from rules (XNYS) runs a year
past today; XBOM is extended the same way, its unrecorded year's weekdays taken as sessions, so a
live NSE ingest does not stop on January 1 (it would poll on an unrecorded holiday and get no new
bars). A newer exchange_calendars brings the real holidays.
"""

from __future__ import annotations

import functools
import logging

import pandas as pd

from mintel.errors import DataError

CALENDAR_OF_EXCHANGE = {
    "NSE": "XBOM",
    "BSE": "XBOM",
    "XBOM": "XBOM",
    "NYSE": "XNYS",
    "NASDAQ": "XNYS",
    "US": "XNYS",
    "XNYS": "XNYS",
}

TIMEZONE_OF_CALENDAR = {"XBOM": "Asia/Kolkata", "XNYS": "America/New_York"}

log = logging.getLogger(__name__)


def calendar_name(exchange: str) -> str:
    try:
        return CALENDAR_OF_EXCHANGE[exchange.upper()]
    except (KeyError, AttributeError):
        raise DataError(f"exchange {exchange!r}: unknown (known: {', '.join(sorted(CALENDAR_OF_EXCHANGE))})") from None


def exchange_calendar(exchange: str):
    """The exchange_calendars calendar for an exchange (cached; building one takes ~100 ms)."""
    return _calendar(calendar_name(exchange))


@functools.lru_cache(maxsize=8)
def _calendar(name: str):
    # Cached by calendar name, so NSE, BSE and nse share one XBOM.
    import exchange_calendars as xcals
    from exchange_calendars.precomputed_exchange_calendar import PrecomputedExchangeCalendar

    cal = xcals.get_calendar(name)
    end = (pd.Timestamp.now() + pd.DateOffset(years=1)).normalize()  # the library's own default end
    if isinstance(cal, PrecomputedExchangeCalendar) and cal.last_session < end - pd.Timedelta(days=7):
        recorded = cal.last_session
        extended = type(type(cal).__name__, (type(cal),), {"bound_max": classmethod(lambda cls: end)})
        cal = extended(start=cal.first_session, end=end)
        log.info("%s: exchange_calendars %s records holidays to %s; weekdays after it are taken as sessions",
                 name, xcals.__version__, recorded.date())
    return cal


def timezone(exchange: str) -> str:
    return TIMEZONE_OF_CALENDAR[calendar_name(exchange)]


def _utc(at) -> pd.Timestamp:
    ts = pd.Timestamp.now(tz="UTC") if at is None else pd.Timestamp(at)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _session_label(value, exchange: str) -> pd.Timestamp:
    """The naive session date of a date, or of an instant read in the exchange's time zone."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(timezone(exchange)).tz_localize(None)
    return ts.normalize()


def _check_bounds(cal, exchange: str, *labels: pd.Timestamp) -> None:
    # exchange_calendars raises its own DateOutOfBounds; XBOM's holiday table ends with the last year it knows.
    for label in labels:
        if not cal.first_session <= label <= cal.last_session:
            raise DataError(
                f"{label.date()}: outside the {exchange} calendar "
                f"({cal.first_session.date()} to {cal.last_session.date()}; a newer exchange_calendars may know more)"
            )


def is_open(exchange: str, at=None) -> bool:
    """Is the market open at ``at`` (default: now)? Closed on weekends, holidays and outside hours."""
    cal = exchange_calendar(exchange)
    ts = _utc(at).floor("min")
    if ts < cal.first_minute or ts > cal.last_minute:
        return False
    return bool(cal.is_open_on_minute(ts))


def is_session(exchange: str, day) -> bool:
    cal = exchange_calendar(exchange)
    label = _session_label(day, exchange)
    _check_bounds(cal, exchange, label)
    return bool(cal.is_session(label))


def session_bounds(exchange: str, session) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(open, close) in UTC of a session date; DataError when the exchange is closed that day."""
    cal = exchange_calendar(exchange)
    label = _session_label(session, exchange)
    _check_bounds(cal, exchange, label)
    if not cal.is_session(label):
        raise DataError(f"{label.date()}: not a {exchange} session (weekend or holiday)")
    return cal.session_open(label), cal.session_close(label)


def sessions(exchange: str, start, end) -> pd.DatetimeIndex:
    """Session dates (naive, midnight) from ``start`` to ``end`` inclusive."""
    cal = exchange_calendar(exchange)
    first, last = _session_label(start, exchange), _session_label(end, exchange)
    _check_bounds(cal, exchange, first, last)
    return cal.sessions_in_range(first, last)


def previous_session(exchange: str, at=None) -> pd.Timestamp:
    """The last session that closed strictly before ``at`` (default: now)."""
    cal = exchange_calendar(exchange)
    ts = _utc(at)
    label = _session_label(ts, exchange)
    if label < cal.first_session:
        raise DataError(f"{ts}: before the {exchange} calendar starts ({cal.first_session.date()})")
    label = min(label, cal.last_session)
    candidates = cal.sessions_in_range(max(label - pd.Timedelta(days=15), cal.first_session), label)
    for s in reversed(candidates):
        if cal.session_close(s) < ts:
            return s
    raise DataError(f"{ts}: no {exchange} session in the 15 days before")


def current_or_next_session(exchange: str, at=None) -> pd.Timestamp:
    """The session open at ``at``, else the next one to open."""
    cal = exchange_calendar(exchange)
    ts = _utc(at)
    label = _session_label(ts, exchange)
    if label > cal.last_session:
        raise DataError(f"{ts}: after the {exchange} calendar ends ({cal.last_session.date()})")
    label = max(label, cal.first_session)
    start = max(label - pd.Timedelta(days=1), cal.first_session)
    for s in cal.sessions_in_range(start, min(label + pd.Timedelta(days=15), cal.last_session)):
        if cal.session_close(s) > ts:
            return s
    raise DataError(f"{ts}: no {exchange} session in the 15 days after")


def session_minutes(exchange: str, session) -> pd.DatetimeIndex:
    """The UTC open time of every one-minute bar of a session (375 for NSE)."""
    cal = exchange_calendar(exchange)
    label = _session_label(session, exchange)
    _check_bounds(cal, exchange, label)
    if not cal.is_session(label):
        raise DataError(f"{label.date()}: not a {exchange} session (weekend or holiday)")
    return cal.session_minutes(label)
