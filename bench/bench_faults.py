"""Soak: ingestion through three fault-injecting providers on 127.0.0.1 for many cycles (`make soak`).

The long version of tests/reliability/test_faults.py: the same seeded mix of faults (slow answers,
timeouts, 5xx, resets, truncated and malformed JSON, wrong symbols, 429 with and without Retry-After,
a server clock 10 minutes off, bad bars, duplicated and shuffled bars, one provider down for a
stretch) over ``--cycles`` cycles, the same accounting checks, and the process's RSS every
``--rss-every`` cycles. Prints figures; exits non-zero when a check fails.

    python -m bench.bench_faults --cycles 1500
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mintel.lake import Lake  # noqa: E402
from tests.reliability.test_faults import FaultRun  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=150)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--rss-every", type=int, default=50, dest="rss_every")
    args = ap.parse_args(argv if argv is not None else ([] if __name__ != "__main__" else None))
    with tempfile.TemporaryDirectory() as tmp, FaultRun(Lake(Path(tmp) / "lake"), cycles=args.cycles, seed=args.seed,
                                                        rss_every=args.rss_every) as run:
        figures = run.run()
        for line in figures.lines():
            print(line)
        print("RSS MB by sample:", " ".join(f"{x:.0f}" for x in figures.rss_mb))
        print("pyarrow pool MB by sample:", " ".join(f"{x:.1f}" for x in figures.arrow_mb))
        try:
            run.check()
        except AssertionError as exc:
            print(f"CHECK FAILED: {exc}")
            return 1
        print("checks: accounting, nothing lost, quarantine exact, breaker open -> closed: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
