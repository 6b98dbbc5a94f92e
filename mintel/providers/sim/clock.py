"""The simulated market's clock: trading minutes elapsed since a start session's open, mapped onto
the exchange's real sessions (weekday sessions once past the end of its calendar). ``stepped`` advances
only when told; ``wall`` follows wall time × speed. The market model reads its position to know how far
to generate, and the UTC time conversions here are shared with it.
"""

from __future__ import annotations

import bisect
import functools
import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from mintel import calendar
from mintel.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MINUTE_NS = 60 * 10**9


@dataclass(frozen=True)
class ClockSession:
    """One session on the simulated clock: its date and the UTC open (ns) of each of its minutes."""

    date: pd.Timestamp
    minutes: np.ndarray  # int64 ns

    @property
    def n(self) -> int:
        return len(self.minutes)

    @property
    def close_ns(self) -> int:
        return int(self.minutes[-1]) + MINUTE_NS


class SimClock:
    """The simulated market's clock: trading minutes elapsed since ``start``'s open, mapped to UTC.

    Passing a session's close jumps to the next session's open. ``stepped``: time moves only by
    ``advance``. ``wall``: minutes elapsed = speed × wall seconds / 60 (plus any ``advance``).
    ``start`` is a session date (default: the last session that closed before the real now).
    """

    MODES = ("stepped", "wall")

    def __init__(self, exchange: str = "NSE", start=None, *, mode: str = "stepped", speed: float = 1.0,
                 time_fn: Callable[[], float] = time.monotonic) -> None:
        if mode not in self.MODES:
            raise ConfigError(f"sim clock mode {mode!r}: unknown (known: {', '.join(self.MODES)})")
        if not speed > 0:
            raise ConfigError(f"sim clock speed {speed!r}: must be > 0")
        calendar.calendar_name(exchange)  # validates
        self.exchange = exchange.upper()
        self.mode = mode
        self.speed = float(speed)
        self._time_fn = time_fn
        self._t0 = time_fn()
        self._offset = 0.0
        self.start_session = self._first_session(start)
        self._sessions: list[ClockSession] = []
        self._cum = [0]  # minutes elapsed at each session's open
        self._extend()

    def _first_session(self, start) -> pd.Timestamp:
        if start is None:
            return calendar.previous_session(self.exchange)
        ts = pd.Timestamp(start)
        if ts.tzinfo is None and ts == ts.normalize() and calendar.is_session(self.exchange, ts):
            return ts
        return calendar.current_or_next_session(self.exchange, ts)

    # -- sessions

    def session(self, index: int) -> ClockSession:
        while index >= len(self._sessions):
            self._extend()
        return self._sessions[index]

    def _extend(self) -> None:
        last = self._sessions[-1].date if self._sessions else self.start_session - pd.Timedelta(days=1)
        for date in _sessions_after(self.exchange, last):
            s = ClockSession(date, _session_minutes(self.exchange, date))
            self._sessions.append(s)
            self._cum.append(self._cum[-1] + s.n)

    # -- time

    @property
    def minutes_elapsed(self) -> float:
        if self.mode == "wall":
            return self._offset + self.speed * (self._time_fn() - self._t0) / 60.0
        return self._offset

    def position(self, minutes: float | None = None) -> tuple[int, float]:
        """(session index, minutes into that session in [0, n]) for ``minutes`` elapsed (default: now)."""
        k = self.minutes_elapsed if minutes is None else minutes
        while self._cum[-1] < k:
            self._extend()
        i = max(bisect.bisect_left(self._cum, k) - 1, 0)
        return i, k - self._cum[i]

    def time_at(self, index: int, minute: float) -> int:
        """UTC ns of ``minute`` minutes into session ``index``."""
        s = self.session(index)
        if minute >= s.n:
            return s.close_ns
        j = int(minute)
        return int(s.minutes[j]) + int(round((minute - j) * MINUTE_NS))

    @property
    def now(self) -> pd.Timestamp:
        """The current UTC time in the simulated market."""
        return pd.Timestamp(self.time_at(*self.position()), tz="UTC")

    def advance(self, minutes: float = 1) -> pd.Timestamp:
        if minutes < 0:
            raise DataError(f"sim clock: cannot go back {minutes} minutes")
        self._offset += minutes
        return self.now

    def advance_to(self, ts) -> pd.Timestamp:
        """Move forward to ``ts`` (bars that open before it are complete); never backwards."""
        target = self.minutes_at(ts)
        behind = target - self.minutes_elapsed
        if behind > 0:
            self._offset += behind
        return self.now

    def minutes_at(self, ts) -> float:
        """Trading minutes elapsed at UTC time ``ts`` (0 before the start, a close between sessions)."""
        t = _utc(ts).value
        i = 0
        while True:
            s = self.session(i)
            if t < s.minutes[0]:
                return float(self._cum[i])
            if t < s.close_ns:
                j = int(np.searchsorted(s.minutes, t, side="right")) - 1
                return self._cum[i] + j + min((t - int(s.minutes[j])) / MINUTE_NS, 1.0)
            i += 1
            if i > 20_000:
                raise DataError(f"{ts}: too far beyond the sim clock's start {self.start_session.date()}")

    def __repr__(self) -> str:
        return f"SimClock({self.exchange}, start={self.start_session.date()}, mode={self.mode}, now={self.now})"


def _sessions_after(exchange: str, last: pd.Timestamp) -> list[pd.Timestamp]:
    """The next sessions after ``last``; weekdays once past the end of the exchange calendar."""
    cal = calendar.exchange_calendar(exchange)
    first = last + pd.Timedelta(days=1)
    for span in (10, 40):
        if first <= cal.last_session:
            found = calendar.sessions(exchange, first, min(last + pd.Timedelta(days=span), cal.last_session))
            if len(found):
                return list(found)
    _warn_beyond_calendar(exchange, cal.last_session)
    return list(pd.bdate_range(first, periods=5))


@functools.lru_cache(maxsize=None)
def _warn_beyond_calendar(exchange: str, last_session: pd.Timestamp) -> None:
    log.warning("sim clock beyond %s's calendar (last session %s): assuming weekday sessions", exchange, last_session.date())


def _session_minutes(exchange: str, date: pd.Timestamp) -> np.ndarray:
    cal = calendar.exchange_calendar(exchange)
    if date <= cal.last_session:
        return calendar.session_minutes(exchange, date).asi8.copy()
    template = calendar.session_minutes(exchange, cal.last_session).asi8 - cal.last_session.value
    return template + date.value


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
