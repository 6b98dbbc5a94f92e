"""A full disk and a read-only lake: the writer stops with one clear line naming the lake and the
problem, and what was there reads as before (every acknowledged bar, nothing half-written)."""

from __future__ import annotations

import subprocess

import pytest

from mintel.lake import Lake
from tests.reliability import disk
from tests.reliability.crash import COMPACT_EVERY, SEED, UNIVERSE, Oracle, check_lake, child_env, mintel_command, parse_acks, run_child

needs_private_mounts = pytest.mark.skipif(not disk.private_mounts_available(),
                                          reason="needs root and unshare -m (a private tmpfs / read-only bind mount)")


def ingest_argv(root, cycles: int) -> list[str]:
    return mintel_command("ingest", "--lake", str(root), "--universe", UNIVERSE, "--interval-s", "0", "--seed", str(SEED),
                          "--cycles", str(cycles))


def ingest(root, cycles: int, **kw):
    rc, out, err = run_child(ingest_argv(root, cycles), cwd=root.parent, env=child_env(), **kw)
    return rc, out, err


def assert_one_clear_line(err: str, root, *problems: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines and "Traceback" not in err, err
    last = lines[-1]
    assert last.startswith("mintel: ") and str(root) in last and any(p in last for p in problems), err


def lake_state(root) -> tuple:
    lake = Lake(root)
    return tuple(len(lake.read(t, interval=iv)) for t, iv in lake.tables()) + (len(lake.snapshot()),)


def first_ts(oracle: Oracle):  # the service's simulated clock starts where a fresh one does
    from mintel.providers.sim import SimClock

    return SimClock("NSE", mode="stepped").now


def test_a_file_size_limit_stops_ingest_and_compaction_cleanly_and_restart_resumes(tmp_path):
    """RLIMIT_FSIZE (any user): a write past the limit fails with EFBIG, like a disk that is full."""
    root = tmp_path / "lake"
    rc, out, err = ingest(root, 2 * COMPACT_EVERY + 1)
    assert rc == 0, err
    acked = max(a.market_ts for a in parse_acks(out))
    oracle = Oracle()
    start = first_ts(oracle)

    # The snapshot (~13 KB) no longer fits: the cycle's bars are in, the cycle is not acknowledged.
    rc, out, err = ingest(root, 5, preexec_fn=disk.file_size_limit(10_000))
    assert rc == 3 and not parse_acks(out)
    assert_one_clear_line(err, root, "File too large")
    check = check_lake(root, oracle, start, acked)
    assert not check.problems and check.temporaries == 0, check.problems

    # A merged file no longer fits: compaction stops, rolled back, nothing lost or doubled.
    before = lake_state(root)
    r = subprocess.run(mintel_command("lake", "compact", "--lake", str(root)), capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, env=child_env(), preexec_fn=disk.file_size_limit(6_000))
    assert r.returncode == 3, r.stderr
    assert_one_clear_line(r.stderr, root, "File too large")
    assert lake_state(root) == before
    assert not any((p.path / "_compacting.json").exists() for t, iv in Lake(root).tables() for p in Lake(root).partitions(t, iv))
    check = check_lake(root, oracle, start, acked)
    assert not check.problems and check.temporaries == 0, check.problems

    # Space again: the service resumes right after the newest bar in the lake.
    newest = Lake(root).read_bars(interval="1m")["ts"].max()
    rc, out, err = ingest(root, 2)
    assert rc == 0, err
    assert parse_acks(out)[0].market_ts == oracle.next_minute(start, newest)
    assert not check_lake(root, oracle, start, max(a.market_ts for a in parse_acks(out))).problems


@needs_private_mounts
def test_a_full_disk_stops_ingest_with_one_line_and_keeps_every_acknowledged_bar(tmp_path):
    """A real ENOSPC: the lake on a tiny tmpfs in a private mount namespace, filled by the service."""
    seed, lake, out = tmp_path / "seed", tmp_path / "lake", tmp_path / "out"
    rc, _, err = ingest(seed, 3)
    assert rc == 0, err
    lake.mkdir()
    out.mkdir()
    size_kb = sum(f.stat().st_size for f in seed.rglob("*") if f.is_file()) // 1024 + 160
    env = " ".join(f"{k}={disk.q(v)}" for k, v in child_env().items() if k.startswith(("MINTEL_", "PYTHON")))
    script = f"""
mount -t tmpfs -o size={size_kb}k tmpfs {disk.q(lake)}
cp -a {disk.q(seed)}/. {disk.q(lake)}/
set +e
env {env} {' '.join(map(disk.q, ingest_argv(lake, 2000)))} > {disk.q(out)}/stdout 2> {disk.q(out)}/stderr
echo $? > {disk.q(out)}/rc
env {env} {' '.join(map(disk.q, mintel_command('lake', 'compact', '--lake', str(lake))))} > {disk.q(out)}/compact.stdout 2> {disk.q(out)}/compact.stderr
echo $? > {disk.q(out)}/compact.rc
mkdir {disk.q(out)}/lake && cp -a {disk.q(lake)}/. {disk.q(out)}/lake/
"""
    r = disk.in_private_mounts(script)
    assert r.returncode == 0, r.stderr
    err = (out / "stderr").read_text()
    assert (out / "rc").read_text().strip() == "3", err
    assert_one_clear_line(err, lake, "No space left on device")
    acks = parse_acks((out / "stdout").read_text())
    assert len(acks) > 3  # it ran a while before the disk filled
    compact_err = (out / "compact.stderr").read_text()
    assert (out / "compact.rc").read_text().strip() in ("0", "3"), compact_err
    if compact_err.strip():
        assert_one_clear_line(compact_err, lake, "No space left on device")

    saved = out / "lake"  # the tmpfs is gone with the namespace; this is a byte copy of what it held
    oracle = Oracle()
    start = first_ts(oracle)
    check = check_lake(saved, oracle, start, max(a.market_ts for a in acks))
    assert not check.problems and check.temporaries == 0, check.problems
    newest = Lake(saved).read_bars(interval="1m")["ts"].max()
    rc, stdout, err = ingest(saved, 2)
    assert rc == 0, err
    assert parse_acks(stdout)[0].market_ts == oracle.next_minute(start, newest)


def test_a_read_only_lake_is_refused_at_start_and_still_reads(tmp_path):
    root = tmp_path / "lake"
    rc, _, err = ingest(root, 2)
    assert rc == 0, err
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    if disk.is_root():
        if not disk.private_mounts_available():
            pytest.skip("root ignores file modes and no private mount namespace is available")
        cmd = " ".join(map(disk.q, ingest_argv(root, 2)))
        r = disk.in_private_mounts(f"mount --bind {disk.q(root)} {disk.q(root)}\nmount -o remount,bind,ro {disk.q(root)}\n"
                                   f"set +e\nenv -u MINTEL_CRASH_AT {cmd}\necho rc=$?")
        rc, err = int(r.stdout.strip().rsplit("rc=", 1)[1]), r.stderr
        problem = "Read-only file system"
    else:
        disk.make_read_only(root)
        try:
            rc, _, err = ingest(root, 2)
        finally:
            disk.make_writable(root)
        problem = "Permission denied"
    assert rc == 3
    assert_one_clear_line(err, root, problem, "not writable")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    r = subprocess.run(mintel_command("bars", "--lake", str(root), "--format", "json"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("["), r.stderr


@needs_private_mounts
def test_a_lake_turning_read_only_mid_run_stops_ingest_cleanly(tmp_path):
    """The file system is remounted read-only under the running service (as ext4 does on I/O errors)."""
    root = tmp_path / "lake"
    rc, out, err = ingest(root, 2)
    assert rc == 0, err
    env = " ".join(f"{k}={disk.q(v)}" for k, v in child_env().items() if k.startswith(("MINTEL_", "PYTHON")))
    cmd = " ".join(map(disk.q, ingest_argv(root, 100_000)))
    log = tmp_path / "stdout"
    script = f"""
mount --bind {disk.q(root)} {disk.q(root)}
: > {disk.q(log)}
env {env} {cmd} >> {disk.q(log)} 2> {disk.q(tmp_path / 'stderr')} &
pid=$!
n=0
while [ "$(grep -c '^cycle' {disk.q(log)})" -lt 5 ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done
# "busy" while the service has a file open for writing: retry between its writes
n=0
until mount -o remount,bind,ro {disk.q(root)} 2>/dev/null || [ $n -ge 5000 ]; do n=$((n+1)); done
set +e
wait $pid
echo rc=$?
"""
    r = disk.in_private_mounts(script)
    assert "rc=3" in r.stdout, (r.stdout, r.stderr, (tmp_path / "stderr").read_text())
    err = (tmp_path / "stderr").read_text()
    assert_one_clear_line(err, root, "Read-only file system")
    acks = parse_acks(out) + parse_acks(log.read_text())
    assert len(acks) >= 5 + 2
    oracle = Oracle()
    start = first_ts(oracle)
    check = check_lake(root, oracle, start, max(a.market_ts for a in acks))
    assert not check.problems, check.problems
    newest = Lake(root).read_bars(interval="1m")["ts"].max()
    rc, stdout, err = ingest(root, 2)  # writable again (the namespace is gone): resumes
    assert rc == 0, err
    assert parse_acks(stdout)[0].market_ts == oracle.next_minute(start, newest)
