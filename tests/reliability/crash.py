"""Crash harness: real ``python -m mintel ingest`` processes on the simulator, killed with SIGKILL.

A *round* starts one child (``mintel ingest`` or ``mintel lake compact``) on the same lake and ends
it one of three ways: the lake's fault hook kills it at a named point (``MINTEL_CRASH_AT``, see
mintel/lake/faults.py), a timer kills it at a random moment after its first cycle, or it finishes.
After every round ``check_lake`` looks at the lake only through what readers use (``Lake`` and
pyarrow.dataset on the directories) and compares the bars with the simulator's deterministic output.

Acknowledged: the service prints ``cycle N  market T ... rows R`` (mintel/cli.py) after the cycle's
bars were appended (the append returned: files fsynced and renamed into place), the snapshot
replaced and the metrics row appended. A bar is acknowledged once a line with ``market T >= its ts``
has been read whole from the child's stdout. Every acknowledged bar must survive any later kill,
restart and compaction, with the values the simulator produced for it.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mintel.lake import Lake
from mintel.lake.catalog import MANIFEST
from mintel.lake.layout import FILE_RE

UNIVERSE = "nifty50"
SEED = 42
INTERVAL = "1m"
KEY = ["interval", "symbol", "ts"]
VALUES = ["open", "high", "low", "close", "volume", "source", "quality"]
CYCLE_RE = re.compile(r"^cycle\s+(\d+)\s+market (\S+ \S+) UTC\s+symbols\s+(\d+)\s+rows\s+(\d+)")
COMPACT_EVERY = 3  # background compaction passes every 3 cycles, so kills land inside them often
CHILD_TIMEOUT_S = 120


@dataclass
class Ack:
    cycle: int
    market_ts: pd.Timestamp
    rows: int


@dataclass
class Round:
    """One child process and how it ended."""

    command: str  # "ingest" | "compact"
    point: str | None  # MINTEL_CRASH_AT, "timer" for a random kill, None for a clean run
    must_kill: bool = True
    returncode: int | None = None
    acks: list[Ack] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def mintel_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mintel", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINTEL_")}
    env.update(MINTEL_COMPACT_EVERY=str(COMPACT_EVERY), PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def run_child(argv: list[str], *, cwd: Path, env: dict[str, str], kill_after_first_cycle_s: float | None = None,
              preexec_fn=None, timeout_s: float = CHILD_TIMEOUT_S) -> tuple[int, str, str]:
    """Run ``argv``; with ``kill_after_first_cycle_s``, SIGKILL it that long after its first cycle line."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec_fn)
    out: list[str] = []
    err: list[str] = []
    first_cycle = threading.Event()

    def pump(stream, lines, watch):
        for line in stream:
            lines.append(line)
            if watch and line.startswith("cycle "):
                first_cycle.set()
        stream.close()

    threads = [threading.Thread(target=pump, args=(proc.stdout, out, True), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err, False), daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    if kill_after_first_cycle_s is not None:
        while not first_cycle.wait(0.05) and proc.poll() is None and time.monotonic() < deadline:
            pass
        time.sleep(kill_after_first_cycle_s)
        if proc.poll() is None:  # not yet reaped, so the pid is still this child's
            os.kill(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        err.append(f"harness: killed after the {timeout_s:.0f} s timeout\n")
    for t in threads:
        t.join(timeout=10)
    return proc.returncode, "".join(out), "".join(err)


def parse_acks(stdout: str) -> list[Ack]:
    """The cycles the child acknowledged: whole ``cycle`` lines (a line cut short by the kill does not count)."""
    acks = []
    for line in stdout.splitlines(keepends=True):
        m = CYCLE_RE.match(line)
        if m and line.endswith("\n"):
            acks.append(Ack(int(m.group(1)), pd.Timestamp(m.group(2), tz="UTC"), int(m.group(4))))
    return acks


class Oracle:
    """The simulator's bars from the lake's first bar on: what the children must have written."""

    STEP_MINUTES = 300  # less than a session: the simulator serves the current and the previous session only

    def __init__(self, universe: str = UNIVERSE, seed: int = SEED) -> None:
        from mintel.universe import load_universe

        self.universe = load_universe(universe)
        self.seed = seed
        self._start: pd.Timestamp | None = None
        self._frames: list[pd.DataFrame] = []
        self._bars: pd.DataFrame | None = None

    def _extend(self, first_ts: pd.Timestamp, done) -> pd.DataFrame:
        """Generate (as the service's clock does, from ``first_ts``'s session) until ``done(bars)``."""
        from mintel.providers.sim import SimClock, SimProvider

        if self._start != first_ts:
            self._clock = SimClock("NSE", start=first_ts.tz_convert("Asia/Kolkata").strftime("%Y-%m-%d"), mode="stepped")
            self._provider = SimProvider(universe=self.universe, seed=self.seed, clock=self._clock)
            self._start, self._frames, self._bars = first_ts, [], None
        symbols = self.universe["symbol"].tolist()
        while self._bars is None or not done(self._bars):
            self._clock.advance(self.STEP_MINUTES)
            after = self._bars["ts"].max() + pd.Timedelta(1, "ns") if self._bars is not None and len(self._bars) else first_ts
            self._frames.append(asyncio.run(self._provider.fetch_bars(symbols, INTERVAL, start=after)))
            self._bars = pd.concat(self._frames, ignore_index=True)
        return self._bars

    def bars(self, first_ts: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        """Bars with ``first_ts <= ts <= until``, sorted by (symbol, ts)."""
        b = self._extend(first_ts, lambda b: len(b) and b["ts"].max() >= until)
        b = b[(b["ts"] >= first_ts) & (b["ts"] <= until)]
        return b.sort_values(["symbol", "ts"], ignore_index=True)

    def next_minute(self, first_ts: pd.Timestamp, ts: pd.Timestamp) -> pd.Timestamp:
        """The bar open that follows ``ts`` in the simulated sessions."""
        b = self._extend(first_ts, lambda b: len(b) and b["ts"].max() > ts)
        return b.loc[b["ts"] > ts, "ts"].min()


@dataclass
class LakeCheck:
    problems: list[str]
    bars: int  # distinct (symbol, ts) readers see
    last_ts: pd.Timestamp | None
    temporaries: int  # hidden leftovers of killed writes (cleaned once stale)


def check_lake(root: Path, oracle: Oracle, first_ts: pd.Timestamp | None, acked_until: pd.Timestamp | None, *,
               compacted: bool = False) -> LakeCheck:
    """Everything a reader can see is whole and consistent, and no acknowledged bar is missing or changed.

    ``first_ts``: the first bar ever acknowledged; the lake must hold exactly the simulator's bars from
    it to its newest bar (no gap, no duplicate, no changed value), and at least up to ``acked_until``.
    """
    problems: list[str] = []
    lake = Lake(root)
    temporaries = 0
    for table, iv in lake.tables():  # every table reads cleanly through the Lake API
        try:
            lake.read(table, interval=iv)
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            problems.append(f"Lake.read({table!r}, interval={iv!r}) raised {type(exc).__name__}: {exc}")
        for part in lake.partitions(table, iv):
            temporaries += len(part.temporaries())
            for f in part.files():  # every visible file is a complete Parquet file
                if not FILE_RE.match(f.name):
                    problems.append(f"{f}: visible but not a data file name")
                try:
                    pq.ParquetFile(f).metadata
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{f}: visible but unreadable ({exc})")
            if compacted and (part.path / MANIFEST).exists():
                problems.append(f"{part.path}: {MANIFEST} left after compaction")
    try:
        lake.snapshot()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"Lake.snapshot() raised {type(exc).__name__}: {exc}")
    for top in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "snapshot") if root.exists() else ():
        try:  # what any hive-aware reader does with the directory: temporaries must stay out of it
            dataset = ds.dataset(top, format="parquet", partitioning="hive")
            hidden = [f for f in dataset.files if Path(f).name.startswith((".", "_"))]
            if hidden:
                problems.append(f"{top}: pyarrow.dataset lists hidden files {hidden[:2]}")
            dataset.count_rows()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"pyarrow.dataset({top.name}) raised {type(exc).__name__}: {exc}")

    try:
        bars = lake.read_bars(interval=INTERVAL)
    except Exception as exc:  # noqa: BLE001
        return LakeCheck(problems + [f"read_bars raised {exc}"], 0, None, temporaries)
    last = bars["ts"].max() if len(bars) else None
    if acked_until is not None and (last is None or last < acked_until):
        problems.append(f"acknowledged bars up to {acked_until} but the lake ends at {last}")
    if len(bars):
        per_minute = bars.groupby("ts").size()
        n = len(oracle.universe)
        if not per_minute.eq(n).all():
            bad = per_minute[per_minute != n]
            problems.append(f"{len(bad)} minute(s) without all {n} symbols (a partial append is visible): {bad.index[0]}")
        want = oracle.bars(first_ts if first_ts is not None else bars["ts"].min(), last)
        got = bars[KEY + VALUES].reset_index(drop=True)
        want = want.assign(interval=INTERVAL)[KEY + VALUES].reset_index(drop=True)
        if len(got) != len(want):
            missing = want.merge(got[KEY], on=KEY, how="left", indicator=True).query("_merge == 'left_only'")
            problems.append(f"lake has {len(got)} bars up to {last}, the simulator made {len(want)}"
                            f" (first missing: {missing[KEY].head(1).to_dict('records')})")
        else:
            diff = ~(got.astype(str) == want.astype(str)).all(axis=1)
            if diff.any():
                problems.append(f"{int(diff.sum())} bar(s) differ from what was written, first {got[diff].head(1).to_dict('records')}")
    if compacted:  # after compaction the key is unique in the files themselves, not only in what readers return
        for part in lake.partitions("bars", INTERVAL):
            raw = pd.concat([pq.read_table(f, columns=KEY).to_pandas() for f in part.files()] or [pd.DataFrame(columns=KEY)])
            dup = int(raw.duplicated(KEY).sum())
            if dup:
                problems.append(f"{part.path.name}: {dup} (interval, symbol, ts) stored more than once after compaction")
    return LakeCheck(problems, len(bars), last, temporaries)


@dataclass
class Plan:
    """One round: ``command`` with ``point`` armed (None: clean run, "timer": a random-moment kill)."""

    command: str
    point: str | None
    cycles: int = 100  # more than a kill needs: a round that ends on its own is a problem
    must_kill: bool = True  # False: the point may not be reached (a compaction with nothing to merge)


def short_plan(rng: random.Random) -> list[Plan]:
    """Every named point once, two random-moment kills, a clean stop before the compactions (10 kills)."""
    return [
        Plan("ingest", f"append.tmp/bars:{rng.randint(2, 6)}"),
        Plan("ingest", "timer"),
        Plan("ingest", f"append.renamed/bars:{rng.randint(2, 6)}"),
        Plan("ingest", f"snapshot.tmp:{rng.randint(1, 6)}"),
        Plan("ingest", f"snapshot.renamed:{rng.randint(1, 6)}"),
        Plan("ingest", "compact.tmp/bars:1"),
        Plan("ingest", "compact.unlinked/bars:1"),
        Plan("ingest", None, cycles=2 * COMPACT_EVERY + 1),  # a clean stop; one bars file after the last pass
        Plan("compact", "compact.manifest/bars:1"),
        Plan("ingest", "timer"),
        Plan("ingest", None, cycles=2 * COMPACT_EVERY + 1),
        Plan("compact", "compact.published/bars:1"),
    ]


INGEST_POINTS = ("append.tmp/bars", "append.renamed/bars", "append.tmp", "snapshot.tmp", "snapshot.renamed",
                 "compact.manifest/bars", "compact.tmp/bars", "compact.published/bars", "compact.unlinked/bars",
                 "compact.published")
COMPACT_POINTS = ("compact.manifest/bars", "compact.tmp/bars", "compact.published/bars", "compact.unlinked/bars")


def soak_plan(rng: random.Random, kills: int = 60) -> list[Plan]:
    """``kills`` kills: named points in the service (3 each), in ``mintel lake compact`` (2 each), the rest at random moments."""
    blocks = [[Plan("ingest", f"{p}:{rng.randint(1, 3) if p.startswith('compact') else rng.randint(1, 8)}")]
              for p in INGEST_POINTS for _ in range(3)]
    for p in COMPACT_POINTS:  # a clean stop, then a compaction killed at the point
        for extra in (0, 1):
            # Ending right after a pass often leaves [X-c, Y-c]: the whole-partition merge then replaces
            # Y-c in place (the case that lost bars); one more cycle guarantees a file to merge.
            blocks.append([Plan("ingest", None, cycles=2 * COMPACT_EVERY + extra), Plan("compact", f"{p}:1", must_kill=bool(extra))])
    blocks += [[Plan("ingest", "timer")] for _ in range(max(0, kills - 3 * len(INGEST_POINTS) - 2 * len(COMPACT_POINTS)))]
    rng.shuffle(blocks)
    return [plan for block in blocks for plan in block]


@dataclass
class Campaign:
    """Runs plans against one lake, checking it after every round; keeps the figures."""

    root: Path
    seed: int = 7
    oracle: Oracle = field(default_factory=Oracle)
    rounds: list[Round] = field(default_factory=list)
    checks: list[LakeCheck] = field(default_factory=list)
    acked_until: pd.Timestamp | None = None
    acked_cycles: int = 0
    resume_problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from mintel.providers.sim import SimClock

        self.rng = random.Random(self.seed)
        self.workdir = self.root.parent
        # The service's simulated clock starts at the open of the last session before today, as this one.
        self.first_ts = SimClock("NSE", mode="stepped").now

    def run(self, plan: Plan) -> Round:
        before = Lake(self.root).read_bars(interval=INTERVAL)["ts"].max() if self.root.exists() else None
        t0 = time.perf_counter()
        r = Round(plan.command, plan.point, must_kill=plan.must_kill)
        extra = {"MINTEL_CRASH_AT": plan.point} if plan.point not in (None, "timer") else {}
        if plan.command == "ingest":
            argv = mintel_command("ingest", "--lake", str(self.root), "--universe", UNIVERSE, "--interval-s", "0",
                                  "--seed", str(SEED), "--cycles", str(plan.cycles))
        else:
            argv = mintel_command("lake", "compact", "--lake", str(self.root))
        delay = self.rng.uniform(0.0, 0.4) if plan.point == "timer" else None
        r.returncode, r.stdout, r.stderr = run_child(argv, cwd=self.workdir, env=child_env(extra), kill_after_first_cycle_s=delay)
        r.seconds = time.perf_counter() - t0
        r.acks = parse_acks(r.stdout)
        if r.acks:
            self.acked_cycles += len(r.acks)
            newest = max(a.market_ts for a in r.acks)
            self.acked_until = newest if self.acked_until is None else max(self.acked_until, newest)
            if before is not None and not pd.isna(before):  # restart resumes right after the newest bar in the lake
                want = self.oracle.next_minute(self.first_ts, before)
                if r.acks[0].market_ts != want:
                    self.resume_problems.append(f"round {len(self.rounds) + 1}: resumed at {r.acks[0].market_ts}, expected {want}")
        self.rounds.append(r)
        self.checks.append(check_lake(self.root, self.oracle, self.first_ts, self.acked_until, compacted=plan.command == "compact" and not r.killed))
        return r

    def finish(self) -> LakeCheck:
        """A last clean run, a clean ``mintel lake compact``, and the strict check (unique key in the files)."""
        self.run(Plan("ingest", None, cycles=COMPACT_EVERY + 1))
        self.run(Plan("compact", None))
        return self.checks[-1]

    # -------------------------------------------------------------- figures

    def problems(self) -> list[str]:
        out = list(self.resume_problems)
        for i, (r, c) in enumerate(zip(self.rounds, self.checks), 1):
            expected_kill = r.point is not None
            if expected_kill and r.must_kill and not r.killed:
                out.append(f"round {i} ({r.command}, {r.point}): not killed (exit {r.returncode}); stderr: {r.stderr.strip()[-300:]}")
            if not r.killed and r.returncode != 0:
                out.append(f"round {i} ({r.command}): exit {r.returncode}; stderr: {r.stderr.strip()[-300:]}")
            out += [f"round {i} ({r.command}, {r.point}): {p}" for p in c.problems]
        return out

    def kills_by_point(self) -> dict[str, tuple[int, int]]:
        """point -> (kills survived, kills), a kill survived when the check after it found nothing."""
        total: Counter = Counter()
        ok: Counter = Counter()
        for r, c in zip(self.rounds, self.checks):
            if not r.killed:
                continue
            name = r.point if r.point == "timer" else r.point.rsplit(":", 1)[0]
            name = f"{'lake compact' if r.command == 'compact' else 'ingest'} {name}"
            total[name] += 1
            ok[name] += not c.problems
        return {k: (ok[k], total[k]) for k in sorted(total)}

    def acknowledged_vs_found(self) -> tuple[int, int]:
        """(bars acknowledged, of them found in the lake with the values written)."""
        if self.acked_until is None or self.first_ts is None:
            return 0, 0
        want = self.oracle.bars(self.first_ts, self.acked_until).assign(interval=INTERVAL)
        got = Lake(self.root).read_bars(interval=INTERVAL)
        both = want[KEY + VALUES].astype(str).merge(got[KEY + VALUES].astype(str), on=KEY + VALUES, how="inner")
        return len(want), len(both)
