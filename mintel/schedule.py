"""The scheduler: runs mintel jobs (reports, maintenance) at the right market times.

Jobs come from ``[[schedule]]`` tables in mintel.toml (else ``DEFAULT_JOBS``)::

    [[schedule]]
    name = "scan_report"
    when = "session"          # every `every` while the exchange is in session (open + offset, ...)
    every = "15m"
    command = ["report", "--notebook", "scan_report"]

    [[schedule]]
    name = "close_report"
    when = "after_close"      # once a session, `offset` after the close
    offset = "10m"
    command = ["report", "--notebook", "close_report"]

    [[schedule]]
    name = "maintenance"
    when = "daily"            # every day at `at`, exchange time
    at = "02:00"
    command = ["lake", "maintain"]

A job is a ``mintel`` command line run as a child process (with a timeout), so a crashing or hung
job can not take the scheduler down. Sessions and holidays come from the exchange calendar. A job
still running when it is due again is skipped, not stacked. Every run (ok, failed, skipped) is a
row of the lake's ``runs`` table: start, end, status, output (the command's last line), detail.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from mintel import calendar
from mintel.errors import ConfigError, DataError
from mintel.lake import Lake

log = logging.getLogger(__name__)
WHEN = ("session", "after_close", "daily")


@dataclass(frozen=True)
class Job:
    name: str
    command: tuple[str, ...]  # mintel's arguments, e.g. ("report", "--notebook", "scan_report")
    when: str = "session"
    every: pd.Timedelta = pd.Timedelta(minutes=15)  # "session" jobs
    offset: pd.Timedelta = pd.Timedelta(0)  # after the open ("session") or the close ("after_close")
    at: str = "02:00"  # "daily" jobs, exchange time
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.when not in WHEN:
            raise ConfigError(f"schedule {self.name!r}: when={self.when!r}, expected one of {', '.join(WHEN)}")
        if self.when == "session" and self.every <= pd.Timedelta(0):
            raise ConfigError(f"schedule {self.name!r}: every must be > 0")
        if not self.command:
            raise ConfigError(f"schedule {self.name!r}: no command")
        if self.when == "daily":
            _hhmm(self.name, self.at)


def jobs_from_config(entries: Sequence[Mapping] | None) -> tuple[Job, ...]:
    """Jobs from the ``[[schedule]]`` tables (none: ``DEFAULT_JOBS``); ConfigError naming a bad one."""
    if not entries:
        return DEFAULT_JOBS
    jobs = []
    for i, e in enumerate(entries):
        name = str(e.get("name") or f"job{i + 1}")
        unknown = set(e) - {"name", "command", "when", "every", "offset", "at", "timeout_s"}
        if unknown:
            raise ConfigError(f"schedule {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
        cmd = e.get("command")
        if isinstance(cmd, str):
            cmd = cmd.split()
        if not isinstance(cmd, (list, tuple)) or not all(isinstance(c, str) for c in cmd):
            raise ConfigError(f"schedule {name!r}: command must be a list of strings, e.g. [\"report\"]")
        kw = {k: _duration(name, k, e[k]) for k in ("every", "offset") if k in e}
        if "timeout_s" in e:
            kw["timeout_s"] = float(e["timeout_s"])
        jobs.append(Job(name, tuple(cmd), str(e.get("when", "session")), at=str(e.get("at", "02:00")), **kw))
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ConfigError(f"schedule: job names must be unique ({', '.join(names)})")
    return tuple(jobs)


def _duration(job: str, key: str, value) -> pd.Timedelta:
    try:
        td = pd.Timedelta(value) if not isinstance(value, (int, float)) else pd.Timedelta(seconds=value)
    except (ValueError, TypeError):
        raise ConfigError(f"schedule {job!r}: {key}={value!r} is not a duration (e.g. \"15m\", \"1h\")") from None
    if td < pd.Timedelta(0):
        raise ConfigError(f"schedule {job!r}: {key} must not be negative")
    return td


def _hhmm(job: str, at: str) -> tuple[int, int]:
    try:
        h, m = (int(x) for x in at.split(":"))
        if 0 <= h < 24 and 0 <= m < 60:
            return h, m
    except ValueError:
        pass
    raise ConfigError(f"schedule {job!r}: at={at!r}, expected HH:MM")


DEFAULT_JOBS = (
    # on the bars ingestion writes (1m); with daily history backfilled, a [[schedule]] job can add -p interval 1d
    Job("scan_report", ("report", "--notebook", "scan_report", "-p", "interval", "1m", "--no-progress"), "session",
        every=pd.Timedelta(minutes=15), offset=pd.Timedelta(minutes=15)),
    Job("close_report", ("report", "--notebook", "close_report", "-p", "interval", "1m", "--no-progress"), "after_close",
        offset=pd.Timedelta(minutes=10)),
    Job("maintenance", ("lake", "maintain"), "daily", at="02:00"),
)


# ----------------------------------------------------------------------------- when is a job due

def next_due(job: Job, after: pd.Timestamp, exchange: str) -> pd.Timestamp:
    """The first time strictly after ``after`` (UTC) at which ``job`` is due."""
    after = _utc(after)
    if job.when == "daily":
        h, m = _hhmm(job.name, job.at)
        tz = calendar.timezone(exchange)
        local = after.tz_convert(tz)
        t = local.normalize() + pd.Timedelta(hours=h, minutes=m)
        if t <= local:
            t += pd.Timedelta(days=1)
        return t.tz_convert("UTC")
    for open_, close in _sessions_from(after, exchange):
        if job.when == "after_close":
            t = close + job.offset
            if t > after:
                return t
            continue
        first = open_ + job.offset
        if first > close:
            continue
        if after < first:
            return first
        k = (after - first) // job.every + 1
        t = first + k * job.every
        if t <= close:
            return t
    raise DataError(f"schedule {job.name!r}: no {exchange} session found after {after}")


def _sessions_from(after: pd.Timestamp, exchange: str, days: int = 20):
    """(open, close) in UTC of the sessions from the one around ``after`` on; weekdays 09:15-15:30
    exchange time (with a warning) beyond the calendar's known years."""
    label = after.tz_convert(calendar.timezone(exchange)).tz_localize(None).normalize() - pd.Timedelta(days=1)
    for day in pd.date_range(label, periods=days, freq="D"):
        try:
            if calendar.is_session(exchange, day):
                yield calendar.session_bounds(exchange, day)
        except DataError:  # beyond the calendar's holiday table
            if day.weekday() < 5:
                _warn_unknown_calendar(exchange)
                tz = calendar.timezone(exchange)
                yield _weekday_bounds(day, tz, exchange)


def _weekday_bounds(day: pd.Timestamp, tz: str, exchange: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    cal = calendar.exchange_calendar(exchange)
    last = cal.last_session
    o, c = cal.session_open(last).tz_convert(tz), cal.session_close(last).tz_convert(tz)
    open_ = pd.Timestamp(day.date()).tz_localize(tz) + (o - o.normalize())
    close = pd.Timestamp(day.date()).tz_localize(tz) + (c - c.normalize())
    return open_.tz_convert("UTC"), close.tz_convert("UTC")


_warned: set[str] = set()


def _warn_unknown_calendar(exchange: str) -> None:
    if exchange not in _warned:
        _warned.add(exchange)
        log.warning("%s calendar: beyond its known holidays; assuming weekday sessions", exchange)


def _utc(t) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


# ----------------------------------------------------------------------------- running jobs

@dataclass
class Run:
    job: str
    started: pd.Timestamp
    ended: pd.Timestamp | None = None
    status: str = "running"  # running, ok, failed, skipped
    output: str | None = None
    detail: str | None = None

    def row(self) -> dict:
        return {"ts": self.started, "job": self.job, "ended_at": self.ended, "status": self.status,
                "output": self.output, "detail": self.detail}


def run_command(job: Job, lake: Lake) -> tuple[str, str | None]:
    """Run ``mintel <job.command> --lake <lake>`` as a child process: (last output line, None) or
    raises RuntimeError with the reason (exit code and last error line)."""
    argv = [sys.executable, "-m", "mintel", *job.command]
    if "--lake" not in job.command:
        argv += ["--lake", lake.location]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=job.timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {job.timeout_s:.0f} s") from None
    out = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0:
        err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise RuntimeError(f"exit {proc.returncode}: {(err or out or ['no output'])[-1][:300]}")
    return (out[-1][:500] if out else ""), None


class Scheduler:
    """Decides and starts runs; ``tick(now)`` is the whole decision (tests drive it with a clock)."""

    def __init__(self, jobs: Sequence[Job], lake: Lake, *, exchange: str = "NSE",
                 runner: Callable[[Job, Lake], tuple[str, str | None]] = run_command,
                 now: pd.Timestamp | None = None, on_run: Callable[[Run], object] | None = None) -> None:
        self.jobs = {j.name: j for j in jobs}
        self.lake = lake
        self.exchange = exchange
        self.runner = runner
        self.on_run = on_run
        start = _utc(now if now is not None else pd.Timestamp.now(tz="UTC"))
        self.next = {j.name: next_due(j, start, exchange) for j in jobs}  # missed runs before start are not replayed
        self.running: dict[str, threading.Thread] = {}
        self.runs: list[Run] = []
        self._lock = threading.Lock()

    def tick(self, now: pd.Timestamp | None = None) -> list[Run]:
        """Start every job due at ``now`` (skip one still running); returns the runs started or skipped."""
        now = _utc(now if now is not None else pd.Timestamp.now(tz="UTC"))
        started = []
        for name, job in self.jobs.items():
            if self.next[name] > now:
                continue
            self.next[name] = next_due(job, now, self.exchange)
            thread = self.running.get(name)
            if thread is not None and thread.is_alive():
                run = Run(name, now, now, "skipped", None, "previous run still running")
                self._record(run)
            else:
                run = Run(name, now)
                thread = threading.Thread(target=self._execute, args=(job, run), name=f"job-{name}", daemon=True)
                self.running[name] = thread
                thread.start()
            started.append(run)
        return started

    def _execute(self, job: Job, run: Run) -> None:
        try:
            run.output, run.detail = self.runner(job, self.lake)
            run.status = "ok"
        except Exception as exc:  # noqa: BLE001 - a failing job is recorded, the scheduler goes on
            run.status = "failed"
            run.detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        run.ended = pd.Timestamp.now(tz="UTC")
        self._record(run)

    def _record(self, run: Run) -> None:
        with self._lock:
            self.runs.append(run)
            try:
                self.lake.append("runs", pd.DataFrame([run.row()]))
            except Exception as exc:  # noqa: BLE001 - the run happened; say the record failed
                log.error("schedule: cannot record run of %s: %s", run.job, exc)
        log.info("job %s: %s %s", run.job, run.status, run.detail or run.output or "")
        if self.on_run is not None:
            self.on_run(run)

    def wait_idle(self, timeout_s: float | None = None) -> None:
        for thread in list(self.running.values()):
            thread.join(timeout_s)

    def seconds_to_next(self, now: pd.Timestamp | None = None) -> float:
        now = _utc(now if now is not None else pd.Timestamp.now(tz="UTC"))
        return max(0.0, (min(self.next.values()) - now).total_seconds()) if self.next else 3600.0

    async def run(self, stop: asyncio.Event | None = None, *, poll_s: float = 30.0) -> None:
        """Tick until ``stop`` is set (or cancelled); sleeps to the next due time, at most ``poll_s``."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            self.tick()
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.5, min(poll_s, self.seconds_to_next())))
            except asyncio.TimeoutError:
                pass

    def start(self, poll_s: float = 30.0) -> threading.Thread:
        """Tick in a background thread until ``stop()`` (how ``mintel up`` runs it beside ingestion)."""
        self._stop = threading.Event()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception as exc:  # noqa: BLE001 - the scheduler outlives one bad decision
                    log.error("schedule: %s", exc)
                self._stop.wait(max(0.5, min(poll_s, self.seconds_to_next())))

        self._thread = threading.Thread(target=loop, name="mintel-scheduler", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 5.0) -> None:
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
            self._thread.join(timeout_s)

    def table(self, now: pd.Timestamp | None = None) -> pd.DataFrame:
        """One row per job: what it runs, when, and when next (for `mintel schedule --list`)."""
        rows = []
        for name, job in self.jobs.items():
            when = {"session": f"every {_fmt(job.every)} in session from open+{_fmt(job.offset)}",
                    "after_close": f"close+{_fmt(job.offset)}", "daily": f"daily {job.at} {calendar.timezone(self.exchange)}"}[job.when]
            rows.append({"job": name, "command": "mintel " + " ".join(job.command), "when": when,
                         "next_run_utc": self.next[name].isoformat()})
        return pd.DataFrame(rows)


def _fmt(td: pd.Timedelta) -> str:
    s = int(td.total_seconds())
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m" if s % 60 == 0 else f"{s}s"
