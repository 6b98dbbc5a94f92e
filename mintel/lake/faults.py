"""Opt-in crash points for the crash-safety suite (tests/reliability, bench/bench_crash.py).

``MINTEL_CRASH_AT=<point>[/<table>]:<n>`` (read once, when mintel.lake is imported) makes the process
kill itself with SIGKILL the ``n``-th time (1-based) it reaches ``point`` (for ``table`` when given):
no cleanup, no flush, no ``finally``, as the OOM killer or a ``kill -9`` would. Unset, ``reached`` is
one global test. The points, in the order a write passes them:

    append.tmp          a new data file is written (and fsynced) under its hidden temporary name
    append.renamed      ... renamed into place; its directory not yet fsynced
    snapshot.tmp        the new snapshot is written under its temporary name; the old one still in place
    snapshot.renamed    ... it replaced the old one; directory not yet fsynced
    compact.manifest    ``_compacting.json`` is written; the merged file not yet
    compact.tmp         the merged file is written under its temporary name
    compact.published   the merged file is published; its inputs not yet removed
    compact.unlinked    the first input is removed; the other inputs and the manifest not yet

``<table>`` narrows a point to one table (``append.tmp/bars:3``: the third bars file written).
"""

from __future__ import annotations

import os
import signal
import threading

from mintel.errors import ConfigError

ENV = "MINTEL_CRASH_AT"
POINTS = ("append.tmp", "append.renamed", "snapshot.tmp", "snapshot.renamed",
          "compact.manifest", "compact.tmp", "compact.published", "compact.unlinked")


def parse(spec: str | None) -> tuple[str, str | None, int] | None:
    """``"append.tmp/bars:3"`` -> ``("append.tmp", "bars", 3)``; None or "" -> None."""
    if not spec:
        return None
    where, _, count = spec.rpartition(":")
    point, _, table = where.partition("/")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise ConfigError(f"{ENV}={spec!r}: expected <point>[/<table>]:<n> with n >= 1 and a point among {', '.join(POINTS)}")
    return point, table or None, int(count)


try:
    _armed, _error = parse(os.environ.get(ENV)), None
except ConfigError as exc:  # raised at the first write, where the command line reports it in one line
    _armed, _error = None, exc
_seen = 0
_lock = threading.Lock()


def armed() -> bool:
    if _error is not None:
        raise _error
    return _armed is not None


def reached(point: str, table: str | None = None) -> None:
    """Kill this process now if ``MINTEL_CRASH_AT`` names this point (and table) and its count is up."""
    if _armed is None:
        if _error is not None:
            raise _error
        return
    global _seen
    want_point, want_table, n = _armed
    if point != want_point or (want_table is not None and table != want_table):
        return
    with _lock:
        _seen += 1
        if _seen == n:
            os.kill(os.getpid(), signal.SIGKILL)
