"""Alert latency: from the cycle that detects an opportunity to a webhook on 127.0.0.1 receiving it.

    .venv/bin/python -m bench alerts      (or: .venv/bin/python bench/bench_alerts.py [--alerts 50])

Figures, over ``--alerts`` alerts (goal, issue 6: < 1 s):
- one alert per cycle: ``on_cycle`` called -> the receiver has the JSON body (median, p95);
- a burst: all alerts raised in one cycle, queued behind each other on the sink's thread;
- ``on_cycle`` time itself, with the webhook answering and with it holding every request (it must not
  change: delivery is on another thread).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, and the receiver of the tests

from mintel.alerts import AlertEngine, AlertSettings, FileSink, WebhookSink  # noqa: E402
from mintel.lake import Lake  # noqa: E402
from tests.test_alerts import Receiver  # noqa: E402

T0 = pd.Timestamp("2026-11-24 04:00", tz="UTC")


def _opps(symbols: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"ts": T0, "symbol": symbols, "kind": "breakout", "direction": "long", "score": 80.0,
                         "confidence": 0.8, "message": [f"{s} broke its 20-min high" for s in symbols],
                         "interval": "1m", "price": 100.0, "sector": "IT"})


def _q(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _engine(root: Path, receiver: Receiver, n: int, timeout_s: float = 5.0) -> AlertEngine:
    cfg = AlertSettings(sinks=(), max_per_cycle=n, queue_size=max(n, 1), attempts=1, cooldown_s=0)
    lake = Lake(root / "lake", durable=False)
    return AlertEngine(cfg, lake, [FileSink(root / "alerts.jsonl"), WebhookSink(receiver.url("/hook/token"), timeout_s=timeout_s)])


def latency(n: int) -> None:
    arrived: dict[str, float] = {}
    got = threading.Condition()
    receiver = Receiver()

    def on_request(path, body):
        with got:
            arrived[body["symbol"]] = time.perf_counter()
            got.notify_all()

    receiver.on_request = on_request
    with tempfile.TemporaryDirectory() as tmp:
        engine = _engine(Path(tmp), receiver, n)
        engine.on_cycle(_opps(["WARMUP"]), now=T0)  # connection set up, imports done
        with got:
            got.wait_for(lambda: "WARMUP" in arrived, timeout=10)

        one, calls = [], []
        for i in range(n):
            sym = f"S{i:03d}"
            t = time.perf_counter()
            engine.on_cycle(_opps([sym]), now=T0 + pd.Timedelta(minutes=i + 1))
            calls.append(time.perf_counter() - t)
            with got:
                got.wait_for(lambda: sym in arrived, timeout=10)
            one.append(arrived[sym] - t)

        burst_syms = [f"B{i:03d}" for i in range(n)]
        t = time.perf_counter()
        engine.on_cycle(_opps(burst_syms), now=T0 + pd.Timedelta(hours=2))
        burst_call = time.perf_counter() - t
        with got:
            got.wait_for(lambda: all(s in arrived for s in burst_syms), timeout=30)
        burst = [arrived[s] - t for s in burst_syms]
        engine.close()
    receiver.close()
    ms = lambda xs: [x * 1e3 for x in xs]  # noqa: E731
    print(f"alert latency, cycle -> webhook on 127.0.0.1 received ({n} alerts, goal < 1000 ms):")
    print(f"  one per cycle   median {statistics.median(ms(one)):7.2f} ms   p95 {_q(ms(one), 95):7.2f} ms   max {max(ms(one)):7.2f} ms")
    print(f"  burst of {n:<4}   median {statistics.median(ms(burst)):7.2f} ms   p95 {_q(ms(burst), 95):7.2f} ms   "
          f"last {max(ms(burst)):7.2f} ms   (on_cycle {burst_call * 1e3:.2f} ms)")
    print(f"  on_cycle, webhook answering   median {statistics.median(ms(calls)):7.2f} ms   p95 {_q(ms(calls), 95):7.2f} ms")


def blocked(n: int) -> None:
    """on_cycle while the webhook holds every request: the call must cost the same."""
    receiver = Receiver(block=True)
    calls = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = _engine(Path(tmp), receiver, n, timeout_s=60)
        for i in range(n):
            t = time.perf_counter()
            engine.on_cycle(_opps([f"S{i:03d}"]), now=T0 + pd.Timedelta(minutes=i))
            calls.append(time.perf_counter() - t)
        answered = receiver.answered.is_set()
        receiver.release.set()
        engine.close(timeout_s=10)
    receiver.close()
    ms = [x * 1e3 for x in calls]
    print(f"  on_cycle, webhook holding     median {statistics.median(ms):7.2f} ms   p95 {_q(ms, 95):7.2f} ms"
          f"   (webhook had answered none: {not answered})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=50)
    args = p.parse_args(argv if argv is not None else ([] if __package__ else None))
    latency(args.alerts)
    blocked(args.alerts)


if __name__ == "__main__":
    main()
