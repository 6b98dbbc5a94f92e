"""Live updates inside a dashboard kernel: a periodic task on the kernel's own event loop.

Voilà keeps the kernel of an open dashboard running; ipykernel runs an asyncio loop, so a task that
wakes every few seconds can update widgets in place (the browser receives only the changed
values). A failing refresh is shown by the view and retried on the next tick; it never kills the
loop. ``stop()`` ends it (also when the kernel is culled or the page closes, with the kernel).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class AutoRefresh:
    """Call ``tick()`` every ``every_s`` seconds while running; ``on_error(exc)`` when it raises."""

    def __init__(self, tick: Callable[[], object], every_s: float = 3.0,
                 on_error: Callable[[BaseException], object] | None = None) -> None:
        if every_s <= 0:
            raise ValueError(f"refresh every {every_s!r} s: must be > 0")
        self.tick = tick
        self.every_s = float(every_s)
        self.on_error = on_error
        self.ticks = 0
        self.errors = 0
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start on the running event loop (a kernel's); False when there is none (plain Python)."""
        if self.running:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                return False
        self._task = loop.create_task(self._run())
        return True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            self.step()

    def step(self) -> None:
        """One tick, errors caught and reported (also what tests and benchmarks call)."""
        self.ticks += 1
        try:
            self.tick()
        except Exception as exc:  # noqa: BLE001 - a dashboard must outlive one bad read
            self.errors += 1
            log.warning("refresh failed: %s", exc)
            if self.on_error is not None:
                self.on_error(exc)
