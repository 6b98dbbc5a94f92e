"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time


def median_s(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def row(name: str, ours_s: float, ref_s: float | None = None, extra: str = "") -> str:
    ratio = f"  ratio {ours_s / ref_s:5.2f}x" if ref_s else ""
    ref = f"  ref {ref_s * 1e3:9.2f} ms" if ref_s else ""
    return f"{name:<52} {ours_s * 1e3:9.2f} ms{ref}{ratio}  {extra}".rstrip()
