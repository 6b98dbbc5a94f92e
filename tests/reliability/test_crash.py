"""Crash safety: real ingestion processes killed with SIGKILL at named points and at random moments.

The long version (60+ kills) is ``make soak`` (bench/bench_crash.py); this is the short one.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pandas as pd
import pyarrow.dataset as ds
import pytest

from mintel.errors import ConfigError
from mintel.lake import Lake, faults
from mintel.lake.catalog import MANIFEST
from mintel.lake.maintenance import finish_interrupted
from tests.conftest import REPO, make_bars
from tests.reliability.crash import Campaign, child_env, mintel_command, short_plan

# ------------------------------------------------------------------------------------ the fault hook


def test_crash_spec_is_parsed_and_bad_ones_are_refused():
    assert faults.parse(None) is None and faults.parse("") is None
    assert faults.parse("append.tmp:3") == ("append.tmp", None, 3)
    assert faults.parse("compact.published/bars:1") == ("compact.published", "bars", 1)
    for bad in ("append.tmp", "append.tmp:0", "nowhere:1", "append.tmp:x", "snapshot:1"):
        with pytest.raises(ConfigError, match="MINTEL_CRASH_AT"):
            faults.parse(bad)


def test_the_hook_is_a_no_op_when_unset(lake):
    assert not faults.armed()
    for point in faults.POINTS:
        faults.reached(point, "bars")  # still alive
    lake.append("bars", make_bars())
    assert len(lake.read_bars(interval="1m")) == 20


WRITER = """
import sys
import pandas as pd
from tests.conftest import make_bars
from mintel.lake import Lake
lake = Lake(sys.argv[1])
for i in range(4):
    lake.append("bars", make_bars(("AAA", "BBB"), start=pd.Timestamp("2026-11-23 03:45") + pd.Timedelta(minutes=3 * i), periods=3, seed=i))
    print("ack", i, flush=True)
lake.compact()
print("compacted", flush=True)
"""


def run_writer(root, crash_at: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRITER, str(root)], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=child_env({"MINTEL_CRASH_AT": crash_at}))


def test_a_kill_between_temporary_write_and_rename_leaves_the_file_invisible(tmp_path):
    root = tmp_path / "lake"
    r = run_writer(root, "append.tmp/bars:2")
    assert r.returncode == -9 and r.stdout.split() == ["ack", "0"], r.stderr
    lake = Lake(root)
    part = lake.partitions("bars", "1m")[0]
    assert len(part.files()) == 1 and len(part.temporaries()) == 1  # the killed write, hidden
    assert len(lake.read_bars(interval="1m")) == 6
    assert ds.dataset(root / "bars", format="parquet", partitioning="hive").count_rows() == 6  # other readers too


def test_a_kill_after_the_output_is_published_is_finished_by_the_next_pass(tmp_path):
    root = tmp_path / "lake"
    r = run_writer(root, "compact.published/bars:1")
    assert r.returncode == -9 and r.stdout.count("ack") == 4 and "compacted" not in r.stdout, r.stderr
    lake = Lake(root)
    part = lake.partitions("bars", "1m")[0]
    assert (part.path / MANIFEST).exists() and len(part.files()) == 5  # 4 inputs + the merged output
    want = pd.concat([make_bars(("AAA", "BBB"), start=pd.Timestamp("2026-11-23 03:45") + pd.Timedelta(minutes=3 * i), periods=3, seed=i)
                      for i in range(4)])
    got = lake.read_bars(interval="1m")
    assert len(got) == 24 and not got.duplicated(["symbol", "ts"]).any()
    assert got["close"].sort_values().tolist() == want["close"].sort_values().tolist()
    finish_interrupted(part)
    assert len(part.files()) == 1 and not (part.path / MANIFEST).exists()
    assert len(lake.read_bars(interval="1m")) == 24


def test_a_manifest_whose_output_is_one_of_its_inputs_hides_nothing(lake):
    """Found by the crash suite: re-merging a partition whose newest file is already compacted names the
    output after that file. A kill after the manifest, before the merged file replaced it, made readers
    hide every other input (they took the old file for the output) and the next pass delete them."""
    for i in range(4):
        lake.append("bars", make_bars(("AAA",), start=pd.Timestamp("2026-11-23 03:45") + pd.Timedelta(minutes=3 * i), periods=3, seed=i))
        if i % 2:
            lake.compact(tiered=True)  # the partition ends as [X-c, Y-c]
    part = lake.partitions("bars", "1m")[0]
    names = [f.name for f in part.files()]
    assert len(names) == 2 and all(n.endswith("-c.parquet") for n in names)
    (part.path / MANIFEST).write_text(json.dumps({"output": names[-1], "inputs": names}))  # as a kill leaves it
    assert len(lake.read_bars(interval="1m")) == 12
    finish_interrupted(part)
    assert [f.name for f in part.files()] == names and len(lake.read_bars(interval="1m")) == 12
    lake.compact()
    assert len(part.files()) == 1 and len(lake.read_bars(interval="1m")) == 12


def test_a_bad_crash_spec_stops_ingest_with_one_line(tmp_path):
    r = subprocess.run(mintel_command("ingest", "--lake", str(tmp_path / "lake"), "--universe", "nifty50", "--interval-s", "0", "--cycles", "1"),
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=child_env({"MINTEL_CRASH_AT": "append:1"}))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "MINTEL_CRASH_AT='append:1'" in r.stderr


# ------------------------------------------------------------------------------------ the campaign


def test_ingest_killed_at_every_named_point_and_at_random_loses_no_acknowledged_bar(tmp_path, capsys):
    """10 SIGKILLs of real `mintel ingest` / `mintel lake compact` processes: each named point once, two
    random moments; after each the lake reads cleanly, restart resumes right after the newest bar, and
    after a final compaction every (interval, symbol, ts) is stored once with the values written."""
    campaign = Campaign(tmp_path / "lake", seed=11)
    for plan in short_plan(random.Random(11)):
        campaign.run(plan)
    final = campaign.finish()
    problems = campaign.problems()
    by_point = campaign.kills_by_point()
    acked, found = campaign.acknowledged_vs_found()
    with capsys.disabled():
        print(f"\ncrash (short): {sum(t for _, t in by_point.values())} kills, "
              f"{sum(ok for ok, _ in by_point.values())} survived; bars acknowledged {acked}, found {found}")
    assert not problems, "\n".join(problems)
    assert sum(t for _, t in by_point.values()) == 10
    named = {k.split(" ", 2)[-1] for k in by_point}
    assert {p + "/bars" if p.startswith(("append", "compact")) else p for p in faults.POINTS} <= named | {"timer"}
    assert acked > 0 and found == acked
    assert final.bars >= acked and not final.problems


# ------------------------------------------------------------------------------------ opportunities


def _ingest(lake, cycles: int, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = child_env({"MINTEL_CRASH_AT": crash_at} if crash_at else None)
    return subprocess.run(mintel_command("ingest", "--lake", str(lake), "--universe", "nifty50", "--interval-s", "0",
                                         "--cycles", str(cycles), "--always-on"),
                          capture_output=True, text=True, timeout=300, cwd=lake.parent, env=env)


def _keys(lake) -> set[tuple]:
    o = Lake(lake).read("opportunities")
    return set(zip(o["ts"], o["symbol"], o["kind"]))


def test_a_kill_after_the_bars_before_the_opportunities_loses_no_opportunity(tmp_path):
    """The cycle's bars are in the lake, its opportunities, snapshot and alerts are not: the restart finds
    the cycle's opportunities again (and its snapshot and alerts), so the lake ends as an uninterrupted run's."""
    cycles = 45
    ref = tmp_path / "ref" / "lake"
    ref.parent.mkdir()
    assert _ingest(ref, cycles).returncode == 0
    expected = _keys(ref)
    bar_ts = sorted(Lake(ref).read_bars(None, interval="1m")["ts"].unique())
    # The kill: at a cycle that announced opportunities, after its bars file is published.
    alerts = _alerted(ref)
    k = next(i for i, t in enumerate(bar_ts, 1) if i >= 15 and any(key[0] == t for key in alerts))
    lake = tmp_path / "crash" / "lake"
    lake.parent.mkdir()
    killed = _ingest(lake, cycles, crash_at=f"append.renamed/bars:{k}")
    assert killed.returncode == -9, killed.stderr[-1000:]
    assert Lake(lake).read_bars(None, interval="1m")["ts"].max() == bar_ts[k - 1]
    assert not any(key[0] == bar_ts[k - 1] for key in _keys(lake))  # lost, for now
    done = _ingest(lake, cycles - k)
    assert done.returncode == 0, done.stderr[-1000:]
    assert_frame = Lake(lake).read_bars(None, interval="1m")
    assert sorted(assert_frame["ts"].unique()) == bar_ts
    assert _keys(lake) == expected
    snap, ref_snap = Lake(lake).snapshot(), Lake(ref).snapshot()
    assert list(snap["symbol"]) == list(ref_snap["symbol"]) and (snap["price"].to_numpy() == ref_snap["price"].to_numpy()).all()
    # ... and raises the alerts of those opportunities, which the killed run never did.
    assert any(key[0] == bar_ts[k - 1] for key in expected)
    assert {key for key in _alerted(lake) if key[0] == bar_ts[k - 1]} == {key for key in alerts if key[0] == bar_ts[k - 1]}


def test_a_kill_after_the_opportunities_before_their_alerts_loses_no_alert(tmp_path):
    """The cycle's opportunities are in the lake, its alerts were never raised: the restart finds them
    without an alert on record and raises them, so the cycle's alerts end as an uninterrupted run's."""
    cycles = 40
    ref = tmp_path / "ref" / "lake"
    ref.parent.mkdir()
    assert _ingest(ref, cycles).returncode == 0
    bar_ts = sorted(Lake(ref).read_bars(None, interval="1m")["ts"].unique())
    alerts = _alerted(ref)
    # One opportunities file per cycle that announced any: the j-th is the j-th such bar's.
    announced = sorted(Lake(ref).read("opportunities")["ts"].unique())
    j = next(i for i, t in enumerate(announced, 1) if i >= 10 and any(key[0] == t for key in alerts))
    bar = announced[j - 1]
    lake = tmp_path / "crash" / "lake"
    lake.parent.mkdir()
    killed = _ingest(lake, cycles, crash_at=f"append.renamed/opportunities:{j}")
    assert killed.returncode == -9, killed.stderr[-1000:]
    assert Lake(lake).read("opportunities")["ts"].max() == bar
    assert not any(key[0] == bar for key in _alerted(lake))  # never raised
    done = _ingest(lake, cycles - bar_ts.index(bar) - 1)
    assert done.returncode == 0, done.stderr[-1000:]
    assert "no alert on record" in done.stderr
    assert {key for key in _alerted(lake) if key[0] == bar} == {key for key in alerts if key[0] == bar}
    assert _keys(lake) == _keys(ref)


def _alerted(lake) -> set[tuple]:
    a = Lake(lake).read("alerts")
    a = a[a["symbol"].notna()]
    bar = [pd.Timestamp(json.loads(d)["bar_ts"]) for d in a["detail"]]
    return set(zip(bar, a["symbol"], a["kind"], a["status"]))
