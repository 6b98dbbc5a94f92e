"""The live engine's kernels split the symbols between threads (``_parallel``): the same results with one
thread or several, and from two threads at once, on a thread-safe threading layer and on numba's own
(``workqueue``, called under a lock)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import pandas as pd
import pyarrow as pa

from mintel.analytics import _parallel
from mintel.analytics.engine import LiveEngine
from mintel.providers.sim import SimClock, SimMarket

ROOT = Path(__file__).resolve().parents[2]
NOW = pd.Timestamp("2026-11-25 10:00", tz="UTC")


def run(seed: int, n: int = 400, cycles: int = 6) -> list[tuple[pa.Table, pa.Table]]:
    """(snapshot, new opportunities) of each cycle of an engine on a simulated market (several chunks per
    kernel: 64 rows each at least)."""
    universe = pd.DataFrame({"symbol": [f"P{i:03d}" for i in range(n)], "name": "", "sector": ["A", "B"] * (n // 2)})
    market = SimMarket(universe, seed=seed, clock=SimClock("NYSE", "2026-11-23"))
    market.clock.advance(390 + 150)
    engine = LiveEngine.from_history(market.bars(), universe, "1m")
    out = []
    for _ in range(cycles):
        market.clock.advance(1)
        bars = market.bars(start=market.clock.now - pd.Timedelta("3min"))
        result = engine.update(bars[bars["ts"] == bars["ts"].max()].reset_index(drop=True), NOW)
        out.append((result.snapshot_table, result.opportunities_table))
    return out


def digest(results: list[tuple[pa.Table, pa.Table]]) -> list[list[str]]:
    """Each cycle's tables as digests of their rows (every value exactly: floats by their repr)."""
    return [[hashlib.sha256(json.dumps(t.to_pylist(), default=str).encode()).hexdigest() for t in pair]
            for pair in results]


def test_two_threads_at_once_give_what_each_gives_alone():
    alone = [run(1), run(2)]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(run, (1, 2)))
    for a, b in zip(alone, together):
        assert len(a) == len(b)
        for (snap_a, opp_a), (snap_b, opp_b) in zip(a, b):
            assert snap_a.equals(snap_b) and opp_a.equals(opp_b)
    assert sum(o.num_rows for _, o in alone[0]) > 0


def in_subprocess(env: dict[str, str]) -> dict:
    code = textwrap.dedent("""
        import json, sys
        from concurrent.futures import ThreadPoolExecutor
        sys.path.insert(0, sys.argv[1])
        from tests.analytics.test_parallel import digest, run
        from mintel.analytics import _parallel
        import numba
        with ThreadPoolExecutor(2) as pool:  # two at once: the lock (or a safe layer) keeps this sound
            results = list(pool.map(run, (1, 2)))
        print(json.dumps({"layer": numba.threading_layer(), "safe": _parallel.SAFE, "threads": numba.get_num_threads(),
                          "digest": [digest(r) for r in results]}))
    """)
    done = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env}, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_thread_and_numbas_own_layer_give_the_same_bits():
    here = [digest(run(1)), digest(run(2))]
    assert _parallel.SAFE and numba.threading_layer() in ("omp", "tbb")
    one = in_subprocess({"NUMBA_NUM_THREADS": "1"})
    assert one["threads"] == 1 and one["digest"] == here
    own = in_subprocess({"NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"})
    assert own["layer"] == "workqueue" and own["safe"] is False and own["digest"] == here
