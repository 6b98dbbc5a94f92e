"""Load: ingestion, scan reports and three dashboard kernels on one lake at once, no reader error."""

from __future__ import annotations

import pytest

from tests.reliability.load import run_load

pytestmark = pytest.mark.slow


def test_readers_never_fail_while_ingestion_writes_and_compacts(tmp_path):
    r = run_load(tmp_path / "lake", symbols=1000, interval_s=1.0, seconds=40, kernels=3, kernel_every_s=1.0,
                 compact_every=5)
    assert r.errors == [], r.errors[:5]
    assert r.ingest_rc == 0 and r.cycles >= 15
    assert r.refreshes >= 3 * 15 and r.reports_ok >= 1
    files = [f for _, _, f in r.samples]
    # compaction bounds the file count: far fewer files than the cycles' appends (bars, metrics, opportunities...)
    assert files[-1] < r.cycles * 2, files
