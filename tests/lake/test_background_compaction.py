"""Compaction on a worker thread beside the writer: readers see each key once, stopping waits, failures heal."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from mintel import schema
from mintel.lake import Lake
from mintel.lake.catalog import MANIFEST, _visible_files
from tests.conftest import make_bars


def raw_visible(lake: Lake) -> pd.DataFrame:
    """Every row of the files a reader would read, NOT de-duplicated (what DuckDB or Spark would see)."""
    table = lake._scan(schema.BARS, lambda: [f for p in lake.partitions("bars", "1m") for f in _visible_files(p)], None)
    return table.select(["symbol", "ts"]).to_pandas()


def test_reads_during_background_compaction_see_each_key_exactly_once(lake):
    compactor = lake.background_compactor(tiered=True)
    written = 0
    for i in range(60):  # one new minute of 40 symbols per append, a pass asked for every 3
        lake.append("bars", make_bars([f"S{j:02d}" for j in range(40)], start=pd.Timestamp("2026-11-23 03:45") + pd.Timedelta(minutes=i),
                                      periods=1, seed=i))
        written += 40
        if i % 3 == 2:
            compactor.submit()
        seen = raw_visible(lake)
        assert len(seen) == written and not seen.duplicated().any(), i
    assert compactor.wait(timeout=60)
    assert compactor.error is None and len(compactor.passes) >= 1
    seen = raw_visible(lake)
    assert len(seen) == written and not seen.duplicated().any()
    part = lake.partitions("bars", "1m")[0]
    assert not (part.path / MANIFEST).exists() and not part.temporaries()
    assert sum(f.name.endswith("-c.parquet") for f in part.files()) >= 1


def test_a_pass_takes_only_files_written_before_it_was_asked_for(lake):
    lake.append("bars", make_bars(("AAA",), periods=3, seed=1))
    lake.append("bars", make_bars(("AAA",), start="2026-11-23 03:48", periods=3, seed=2))
    from mintel.lake import layout

    cutoff = layout.new_file_id()
    lake.append("bars", make_bars(("AAA",), start="2026-11-23 03:51", periods=3, seed=3))  # after the cutoff
    lake.compact(tiered=True, written_by=cutoff)
    names = [f.name for f in lake.partitions("bars", "1m")[0].files()]
    assert len(names) == 2 and names[0].endswith("-c.parquet") and not names[1].endswith("-c.parquet")
    assert len(lake.read_bars(interval="1m")) == 9


def test_a_failed_background_pass_leaves_the_lake_exact_and_the_next_pass_heals_it(lake, monkeypatch):
    for i in range(4):
        lake.append("bars", make_bars(("AAA", "BBB"), start=pd.Timestamp("2026-11-23 03:45") + pd.Timedelta(minutes=3 * i), periods=3, seed=i))
    want = lake.read_bars(interval="1m")
    compactor = lake.background_compactor()
    real = Lake._publish

    def crash(self, table, path):  # the merged file cannot be written: the manifest is left behind
        raise OSError("disk full")

    monkeypatch.setattr(Lake, "_publish", crash)
    compactor.submit()
    assert compactor.wait(timeout=30) and compactor.error is not None
    part = lake.partitions("bars", "1m")[0]
    assert len(part.files()) == 4
    pd.testing.assert_frame_equal(lake.read_bars(interval="1m"), want)
    monkeypatch.setattr(Lake, "_publish", real)
    compactor.submit()
    assert compactor.wait(timeout=30)
    assert len(part.files()) == 1 and not (part.path / MANIFEST).exists()
    pd.testing.assert_frame_equal(lake.read_bars(interval="1m"), want)


@pytest.mark.parametrize("background", [True, False])
def test_service_compaction_in_background_gives_the_same_lake_and_stopping_waits(tmp_path, background):
    from mintel.config import Settings
    from mintel.ingest.service import IngestService
    from mintel.providers.sim import SimClock, SimProvider
    from mintel.universe import load_universe

    universe = load_universe("nifty50")
    lake = Lake(tmp_path / "lake")
    settings = Settings(lake=lake.root, universe="nifty50", compact_every=3)
    clock = SimClock("NSE", start="2026-11-23", mode="stepped")
    svc = IngestService(settings, lake, SimProvider(universe=universe, clock=clock), universe, clock=clock,
                        compact_in_background=background)
    asyncio.run(svc.run(cycles=11))
    if background:
        assert not svc.compactor.busy and svc.compactor.error is None  # run() waited for the pass in flight
        assert len(svc.compactor.passes) + svc.compactor.merged == 3
    for part in lake.partitions("bars", "1m"):
        assert not (part.path / MANIFEST).exists() and not part.temporaries()
    names = [f.name for f in lake.partitions("bars", "1m")[0].files()]
    if not svc.compactor or not svc.compactor.merged:  # the same passes over the same files as inline
        assert len(names) == 5 and sum(n.endswith("-c.parquet") for n in names) == 3
    got = lake.read_bars(interval="1m")
    assert len(got) == 50 * 11 and not got.duplicated(["symbol", "ts"]).any()
