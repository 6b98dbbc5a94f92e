"""Readers while a writer appends and compacts in another process; a writer killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from mintel.lake import Lake

# A writer process: each step appends one minute of bars for `n` symbols (every row key new), then
# prints "ack <minute>" once append() has returned; every `compact_every` steps it compacts.
WRITER = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd
    from mintel.lake import Lake
    root, n, steps, compact_every, snapshot = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
    lake = Lake(root)
    syms = [f"S{i:05d}" for i in range(n)]
    start = pd.Timestamp("2026-11-23 03:45", tz="UTC")
    done = lake.read_bars(interval="1m")
    first = 0 if done.empty else int((done["ts"].max() - start) / pd.Timedelta("1min")) + 1
    for k in range(first, first + steps):
        ts = start + pd.Timedelta(minutes=k)
        px = 100.0 + k
        df = pd.DataFrame({"interval": "1m", "symbol": syms, "ts": ts, "open": px, "high": px + 1, "low": px - 1,
                           "close": px, "volume": float(k), "source": "w", "quality": 1.0, "ingested_at": ts})
        lake.append("bars", df)
        if snapshot:
            lake.write_snapshot(pd.DataFrame({"symbol": syms, "ts": ts, "price": px}))
        print("ack", k, flush=True)
        if compact_every and (k + 1) % compact_every == 0:
            lake.compact()
            print("compacted", k, flush=True)
    """
)


def start_writer(root, n, steps, compact_every, snapshot=False):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(n), str(steps), str(compact_every), "1" if snapshot else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_reader_never_fails_while_writer_appends_and_compacts(tmp_path):
    root = tmp_path / "lake"
    n = 300
    writer = start_writer(root, n, steps=120, compact_every=7, snapshot=True)
    lake = Lake(root)
    reads = 0
    last_rows = 0
    try:
        while writer.poll() is None:
            bars = lake.read_bars(interval="1m")
            assert not bars.duplicated(["symbol", "ts"]).any()
            assert len(bars) % n == 0, "a reader saw part of an append"
            assert len(bars) >= last_rows, "rows disappeared between two reads"
            last_rows = len(bars)
            snap = lake.snapshot()
            assert len(snap) in (0, n), "a reader saw part of a snapshot"
            reads += 1
    finally:
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert "compacted" in out
    assert reads >= 5
    final = lake.read_bars(interval="1m")
    assert len(final) == 120 * n


def test_writer_killed_mid_write_leaves_a_readable_lake_and_loses_no_acknowledged_bar(tmp_path):
    root = tmp_path / "lake"
    n = 20_000  # big appends, so kills land inside writes and compactions
    rng = random.Random(7)
    kills = 0
    acked: set[int] = set()
    lake = Lake(root)
    for _ in range(8):
        writer = start_writer(root, n, steps=1000, compact_every=3)
        time.sleep(rng.uniform(0.8, 2.0))  # the interpreter and imports take most of a second
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate(timeout=30)
        kills += 1
        acked |= {int(line.split()[1]) for line in out.splitlines() if line.startswith("ack")}
        bars = lake.read_bars(interval="1m")  # must read cleanly after every kill
        minutes = set(((bars["ts"] - pd.Timestamp("2026-11-23 03:45", tz="UTC")) / pd.Timedelta("1min")).astype(int))
        assert acked <= minutes, f"acknowledged minutes lost: {sorted(acked - minutes)[:5]}"
        assert bars.groupby("ts").size().eq(n).all(), "a partial append became visible"
        assert not bars.duplicated(["symbol", "ts"]).any()
    assert kills == 8 and len(acked) > 0
    lake.compact()
    after = lake.read_bars(interval="1m")
    assert not after.duplicated(["interval", "symbol", "ts"]).any()
    assert len(after) == len(bars)
    # Leftover temporaries are hidden from readers and cleaned by compaction once stale.
    for part in lake.partitions("bars", "1m"):
        assert all(f.name.startswith("part-") for f in part.files())


@pytest.mark.parametrize("n", [50])
def test_snapshot_replacement_is_atomic_for_readers(tmp_path, n):
    root = tmp_path / "lake"
    writer = start_writer(root, n, steps=200, compact_every=0, snapshot=True)
    lake = Lake(root)
    seen = 0
    try:
        while writer.poll() is None:
            snap = lake.snapshot()
            if len(snap):
                assert len(snap) == n and snap["price"].nunique() == 1
                seen += 1
    finally:
        writer.communicate(timeout=60)
    assert seen > 0
