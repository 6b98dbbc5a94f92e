"""Kernels that split the symbols between cores (numba ``parallel=True``, ``prange`` over chunks of rows).

numba runs a parallel kernel on a threading layer. Its own (``workqueue``) must not be entered by two
threads at once, and mintel calls kernels from several (the ingestion service, a dashboard, the
compactor), so the layer is chosen among the thread-safe ones: GNU OpenMP (``libgomp1``, present wherever
gcc is) or Intel TBB. Where neither loads, ``kernel`` still compiles the parallel kernel, and every call
of one takes a process-wide lock so only one thread is inside ``workqueue`` at a time.

Each row's work is independent and done by one thread, so the results are the same bits whatever the
number of threads (``NUMBA_NUM_THREADS=1`` runs them on one core).
"""

from __future__ import annotations

import functools
import importlib
import os
import threading

import numba
from numba import config

JIT = {"cache": True, "nogil": True, "parallel": True}


# OpenMP's threads spin after each kernel, waiting for the next: by default for milliseconds, which on a
# small machine takes a core from the ingestion's writer and compaction threads (bench cycle p95 at 1000
# symbols 15 -> 21 ms); asleep at once (OMP_WAIT_POLICY=PASSIVE), each kernel of an update waits for them
# to wake (bench live +0.5 ms at 5000). A short spin, about the gap between two kernels of one update,
# keeps both (set before numba loads libgomp; values in the environment win).
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")


def _threadsafe_layer() -> str | None:
    """The thread-safe threading layer numba can load here, if any."""
    for layer, module in (("omp", "omppool"), ("tbb", "tbbpool")):
        try:
            importlib.import_module(f"numba.np.ufunc.{module}")
        except ImportError:
            continue
        return layer
    return None


LAYER = config.THREADING_LAYER if config.THREADING_LAYER not in ("default", "safe", "threadsafe", "forksafe") \
    else _threadsafe_layer() or "workqueue"
if config.THREADING_LAYER == "default":
    config.THREADING_LAYER = LAYER  # read once, when numba first launches a parallel kernel
SAFE = LAYER in ("omp", "tbb")
_LOCK = threading.Lock()


def kernel(fn=None, *, signature: str | None = None):
    """``njit(**JIT)`` (with ``signature``: compiled now, for it); on an unsafe threading layer, each call takes
    a process-wide lock. Every parallel kernel called from Python is made by this."""

    def make(fn):
        compiled = numba.njit(signature, **JIT)(fn) if signature else numba.njit(**JIT)(fn)
        if SAFE:
            return compiled

        @functools.wraps(fn)
        def locked(*args):
            with _LOCK:
                return compiled(*args)

        locked.compiled = compiled
        return locked

    return make(fn) if fn is not None else make


@numba.njit(cache=True, nogil=True)
def chunks(n: int) -> int:
    """How many chunks ``n`` rows are split into: up to 16 (the threads share them out), of 64 rows at least.
    Fixed rather than per thread: a kernel reading the thread count could not be cached."""
    return max(1, min(16, n // 64))


@numba.njit(cache=True, nogil=True)
def bounds(c: int, count: int, n: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of chunk ``c`` of ``count`` over ``n`` rows."""
    return c * n // count, (c + 1) * n // count
