"""Signal lab benchmark: the scorecard of all 19 detectors for nifty500 over 5 years of daily bars.

    .venv/bin/python -m bench lab        (or: .venv/bin/python bench/bench_lab.py)

The lake: the simulator's daily history of the bundled nifty500 list, backfilled (as `mintel backfill
--provider sim --interval 1d`) from 5 years and ~14 months of warm-up ago (the 52-week detectors need
a year). Figure: wall time of ``mintel.lab.scorecard`` as `mintel lab scorecard` runs it (read the
lake, indicators, the detectors over every bar, forward returns, 38 vectorbt portfolios: every
detector and its random-entry baseline), median of 3 runs after a warm-up (numba's JIT cache warm;
goal < 60 s). Then the parts of one run, and the scorecard itself.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mintel.config import Settings
from mintel.ingest.backfill import run_backfill
from mintel.lab import TABLE_COLUMNS, SignalLab, scorecard
from mintel.lake import Lake
from mintel.universe import load_universe

UNIVERSE = "nifty500"
YEARS = 5
REPEATS = 3


def build_lake(root: Path) -> tuple[Lake, str]:
    """The lake and the first signal date (5 years before today)."""
    today = pd.Timestamp.now(tz="UTC").normalize()
    start = (today - pd.DateOffset(years=YEARS)).strftime("%Y-%m-%d")
    lake = Lake(root, durable=False)
    run_backfill(Settings(lake=lake.root, universe=UNIVERSE), lake, load_universe(UNIVERSE), providers=["sim"],
                 interval="1d", start=(today - pd.DateOffset(years=YEARS, months=14)).strftime("%Y-%m-%d"),
                 progress=False)
    return lake, start


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lake, start = build_lake(Path(tmp) / "lake")
        card, warm_s = timed(lambda: scorecard(lake, UNIVERSE, "1d", start))  # warm-up: imports, JIT cache load
        runs = [timed(lambda: scorecard(lake, UNIVERSE, "1d", start))[1] for _ in range(REPEATS)]
        lab, load_s = timed(lambda: SignalLab.from_lake(lake, UNIVERSE, "1d", start))
        sig, sig_s = timed(lambda: lab.signals())
        _, pf_s = timed(lambda: lab.scorecard())
        n_sym, n_bars = len(lab.names), int(lab.in_window.sum() / max(len(lab.names), 1))
        print(f"scorecard, {n_sym} symbols x {n_bars} daily bars ({YEARS} years from {start}, "
              f"{len(lab.bars):,} bars read), 19 detectors + baselines:")
        print(f"  median of {REPEATS} runs  {statistics.median(runs):7.2f} s   (goal < 60 s; first run in this "
              f"process {warm_s:.2f} s incl. imports)")
        print(f"  parts of one run: read {load_s:.2f} s, indicators + detectors {sig_s:.2f} s "
              f"({len(sig):,} signals), figures + 38 portfolios {pf_s:.2f} s")
        print(f"  entry {lab.entry}, hold {lab.hold} bars, fees {lab.fees:g}, slippage {lab.slippage:g}; "
              f"returns are fractions")
        with pd.option_context("display.width", 250, "display.max_columns", 40):
            floats = card.select_dtypes("float").columns
            print(card[TABLE_COLUMNS].assign(**{c: card[c].round(4) for c in floats if c in TABLE_COLUMNS})
                  .to_string(index=False))


if __name__ == "__main__":
    main()
