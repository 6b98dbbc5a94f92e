"""The scheduler's decisions on a simulated clock: sessions, holidays, overlap, failures, records."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from mintel import calendar
from mintel.errors import ConfigError
from mintel.lake import Lake
from mintel.schedule import DEFAULT_JOBS, Job, Scheduler, jobs_from_config, next_due, run_command

IST = "Asia/Kolkata"


def ist(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=IST).tz_convert("UTC")


SCAN = Job("scan", ("lake", "stats"), "session", every=pd.Timedelta(minutes=15), offset=pd.Timedelta(minutes=15))
CLOSE = Job("close", ("lake", "stats"), "after_close", offset=pd.Timedelta(minutes=10))
NIGHTLY = Job("nightly", ("lake", "maintain"), "daily", at="02:00")


def test_session_job_runs_every_15_minutes_in_session_only():
    assert next_due(SCAN, ist("2026-11-25 08:00"), "NSE") == ist("2026-11-25 09:30")  # open 09:15 + 15 min
    assert next_due(SCAN, ist("2026-11-25 09:30"), "NSE") == ist("2026-11-25 09:45")  # strictly after
    assert next_due(SCAN, ist("2026-11-25 10:07"), "NSE") == ist("2026-11-25 10:15")
    assert next_due(SCAN, ist("2026-11-25 15:29"), "NSE") == ist("2026-11-25 15:30")  # the close itself
    assert next_due(SCAN, ist("2026-11-25 15:30"), "NSE") == ist("2026-11-26 09:30")  # next session


def test_weekends_and_holidays_are_skipped():
    assert not calendar.is_session("NSE", "2026-11-24")  # a NSE holiday in the calendar
    assert next_due(SCAN, ist("2026-11-23 16:00"), "NSE") == ist("2026-11-25 09:30")
    assert next_due(SCAN, ist("2026-11-27 16:00"), "NSE") == ist("2026-11-30 09:30")  # Friday -> Monday
    assert next_due(CLOSE, ist("2026-11-23 15:45"), "NSE") == ist("2026-11-25 15:40")
    assert next_due(CLOSE, ist("2026-11-25 15:39"), "NSE") == ist("2026-11-25 15:40")


def test_daily_job_at_exchange_time():
    assert next_due(NIGHTLY, ist("2026-11-25 01:00"), "NSE") == ist("2026-11-25 02:00")
    assert next_due(NIGHTLY, ist("2026-11-25 02:00"), "NSE") == ist("2026-11-26 02:00")
    assert next_due(NIGHTLY, ist("2026-11-28 12:00"), "NSE") == ist("2026-11-29 02:00")  # weekends too


def test_beyond_the_calendar_weekday_sessions_are_assumed():
    assert next_due(SCAN, ist("2027-01-08 16:00"), "NSE") == ist("2027-01-11 09:30")  # Friday -> Monday


class Recorder:
    """A job runner that records calls; a job can be made to fail or to block until released."""

    def __init__(self):
        self.calls: list[str] = []
        self.fail: set[str] = set()
        self.block: dict[str, threading.Event] = {}

    def __call__(self, job, lake):
        self.calls.append(job.name)
        if job.name in self.block:
            self.block[job.name].wait(10)
        if job.name in self.fail:
            raise RuntimeError(f"exit 1: {job.name} broke")
        return f"{job.name} done", None


@pytest.fixture
def sched(tmp_path):
    runner = Recorder()
    s = Scheduler([SCAN, CLOSE, NIGHTLY], Lake(tmp_path / "lake", durable=False), runner=runner,
                  now=ist("2026-11-25 09:00"))
    s.recorder = runner
    return s


def test_jobs_start_when_due_and_are_recorded_in_the_lake(sched):
    assert sched.tick(ist("2026-11-25 09:29")) == []
    started = sched.tick(ist("2026-11-25 09:30"))
    assert [r.job for r in started] == ["scan"]
    sched.wait_idle()
    assert sched.recorder.calls == ["scan"]
    runs = sched.lake.read("runs")
    assert runs[["job", "status", "output"]].values.tolist() == [["scan", "ok", "scan done"]]
    assert runs["ts"].iloc[0] == ist("2026-11-25 09:30") and runs["ended_at"].iloc[0] >= runs["ts"].iloc[0]
    assert sched.next["scan"] == ist("2026-11-25 09:45")


def test_a_run_still_going_is_not_stacked(sched):
    release = threading.Event()
    sched.recorder.block["scan"] = release
    sched.tick(ist("2026-11-25 09:30"))
    skipped = sched.tick(ist("2026-11-25 09:45"))
    assert [(r.job, r.status) for r in skipped] == [("scan", "skipped")]
    release.set()
    sched.wait_idle()
    sched.tick(ist("2026-11-25 10:00"))
    sched.wait_idle()
    assert sched.recorder.calls == ["scan", "scan"]
    runs = sched.lake.read("runs").sort_values("ts")
    assert sorted(runs["status"]) == ["ok", "ok", "skipped"]
    assert "still running" in runs.loc[runs["status"] == "skipped", "detail"].iloc[0]


def test_a_failing_job_is_recorded_and_the_scheduler_goes_on(sched):
    sched.recorder.fail.add("scan")
    sched.tick(ist("2026-11-25 09:30"))
    sched.wait_idle()
    sched.tick(ist("2026-11-25 15:40"))  # scan (15:30 slot passed) and the close report
    sched.wait_idle()
    runs = sched.lake.read("runs")
    failed = runs[runs["status"] == "failed"]
    assert len(failed) == 2 and failed["detail"].str.contains("scan broke").all()
    assert runs.loc[runs["job"] == "close", "status"].tolist() == ["ok"]


def test_a_day_on_the_clock_runs_each_job_as_often_as_it_should(sched):
    t = ist("2026-11-25 09:00")
    while t <= ist("2026-11-26 03:00"):
        sched.tick(t)
        sched.wait_idle()
        t += pd.Timedelta(minutes=1)
    counts = pd.Series(sched.recorder.calls).value_counts().to_dict()
    assert counts == {"scan": 25, "close": 1, "nightly": 1}  # 09:30 .. 15:30 every 15 min


def test_missed_runs_are_not_replayed_on_start(tmp_path):
    s = Scheduler([SCAN], Lake(tmp_path / "lake"), runner=Recorder(), now=ist("2026-11-25 12:07"))
    assert s.next["scan"] == ist("2026-11-25 12:15")


def test_real_command_runs_as_a_child_process(tmp_path):
    lake = Lake(tmp_path / "lake")
    out, _ = run_command(Job("stats", ("universe", "list")), lake)
    assert out.split()[0] in {"nifty50", "nifty500", "sp500", "us1500"}  # the table's last line
    with pytest.raises(RuntimeError, match=r"exit \d+: mintel: .*nope"):
        run_command(Job("bad", ("universe", "show", "nope")), lake)


def test_config_jobs_and_their_errors():
    assert jobs_from_config([]) == DEFAULT_JOBS
    jobs = jobs_from_config([{"name": "r", "when": "session", "every": "5m", "command": ["report"]},
                             {"name": "n", "when": "daily", "at": "23:30", "command": "lake maintain"}])
    assert jobs[0].every == pd.Timedelta(minutes=5) and jobs[1].command == ("lake", "maintain")
    for bad, msg in (({"name": "x", "when": "hourly", "command": ["a"]}, "when='hourly'"),
                     ({"name": "x", "every": "soon", "command": ["a"]}, "not a duration"),
                     ({"name": "x", "when": "daily", "at": "25:00", "command": ["a"]}, "HH:MM"),
                     ({"name": "x", "command": ["a"], "cron": "*"}, "unknown key"),
                     ({"name": "x"}, "command")):
        with pytest.raises(ConfigError, match=msg):
            jobs_from_config([bad])


@pytest.mark.slow
def test_the_default_scan_report_job_runs_a_real_report(tmp_path, monkeypatch):
    """The scheduler's real path: a child `mintel report` on a small lake, recorded in `runs`."""
    from tests.ui.conftest import build_ui_lake

    lake = build_ui_lake(tmp_path / "lake", cycles=40)
    monkeypatch.chdir(tmp_path)  # the report lands in ./reports
    job = next(j for j in DEFAULT_JOBS if j.name == "scan_report")
    assert job.command[-4:] == ("-p", "interval", "1m", "--no-progress")  # what ingestion writes
    s = Scheduler([job], lake, now=ist("2026-11-25 09:00"))
    s.tick(ist("2026-11-25 09:30"))
    s.wait_idle(300)
    runs = lake.read("runs")
    assert runs["status"].tolist() == ["ok"], runs["detail"].tolist()
    assert (tmp_path / "reports" / "index.html").exists()
    assert list((tmp_path / "reports").rglob("*.html"))
