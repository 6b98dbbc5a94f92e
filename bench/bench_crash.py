"""Crash soak: 60+ SIGKILLs of real `mintel ingest` / `mintel lake compact` processes on the simulator.

Each named point of the lake's fault hook (mintel/lake/faults.py) three times in the service and twice
in `mintel lake compact`, the rest at random moments; after every kill the lake is checked through its
readers against the simulator's bars (tests/reliability/crash.py), then a restart resumes. Prints kills
survived per point, bars acknowledged vs found after a final compaction, and the time taken.
`make soak` runs it; `SOAK_CRASH_KILLS=N` changes the number of kills (default 60).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path


def main() -> int:
    """Print the figures; returns the number of problems found (`make soak` fails on any)."""
    from mintel.lake.maintenance import STALE_TMP_S
    from tests.reliability.crash import Campaign, soak_plan

    kills = int(os.environ.get("SOAK_CRASH_KILLS", "60"))
    seed = int(os.environ.get("SOAK_CRASH_SEED", "2026"))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mintel-crash-") as tmp:
        campaign = Campaign(Path(tmp) / "lake", seed=seed)
        plans = soak_plan(random.Random(seed), kills=kills)
        for i, plan in enumerate(plans, 1):
            campaign.run(plan)
            if campaign.checks[-1].problems:
                print(f"  round {i:3d} {plan.command:7s} {plan.point or 'clean'}: {campaign.checks[-1].problems[0]}")
        final = campaign.finish()
        elapsed = time.perf_counter() - t0
        by_point = campaign.kills_by_point()
        acked, found = campaign.acknowledged_vs_found()
        problems = campaign.problems()
        print(f"{'crash point':<44} {'survived':>8} / {'kills':<5}")
        for name, (ok, total) in by_point.items():
            print(f"{name:<44} {ok:>8} / {total:<5}")
        survived, total = sum(ok for ok, _ in by_point.values()), sum(t for _, t in by_point.values())
        print(f"{'all':<44} {survived:>8} / {total:<5}")
        print(f"rounds {len(campaign.rounds)} (clean runs and compactions included), cycles acknowledged {campaign.acked_cycles}")
        print(f"bars acknowledged {acked}, found with the values written {found}; bars in the lake {final.bars}")
        print(f"hidden temporaries left by kills {final.temporaries} (cleaned by compaction once {STALE_TMP_S} s old)")
        print(f"time {elapsed:.1f} s ({elapsed / max(1, len(campaign.rounds)):.2f} s a round)")
        print(f"problems {len(problems)}")
        for p in problems[:20]:
            print(f"  {p}")
        return len(problems) + (found != acked)


if __name__ == "__main__":
    raise SystemExit(1 if main() else 0)
