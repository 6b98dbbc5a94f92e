"""What every dashboard view shares: a source, a status bar with data age, live refresh, display.

A view builds its widgets once (``build``) and then only changes their values (``update``), so a
refresh never resets what the user chose: filters, sort, page, the symbol picked.
"""

from __future__ import annotations

import html
import os

import pandas as pd

from mintel.ui.refresh import AutoRefresh
from mintel.ui.source import STALE_AFTER_S, Source
from mintel.ui.theme import style


class View:
    title = "mintel"
    refresh_s = 3.0

    def __init__(self, source: Source | str | None = None, *, live: bool = True, refresh_s: float | None = None,
                 stale_after_s: float = STALE_AFTER_S) -> None:
        import ipywidgets as w

        self.source = source if isinstance(source, Source) else Source(source)
        self.stale_after_s = stale_after_s
        self.error: str | None = None
        self.status = w.HTML(layout=w.Layout(flex="1"))
        self.live = w.ToggleButton(value=live, description="Live", tooltip="refresh automatically", icon="refresh",
                                   layout=w.Layout(width="80px"))
        self.live.observe(self._on_live, "value")
        every = refresh_s or float(os.environ.get("MINTEL_DASHBOARD_REFRESH_S") or self.refresh_s)
        self.auto = AutoRefresh(self.refresh, every, on_error=self._show_error)
        header = w.HBox([w.HTML(f"<h2>{html.escape(self.title)}</h2>"), self.status, self.live],
                        layout=w.Layout(align_items="baseline", grid_gap="12px"))
        self.widget = w.VBox([style(), header, self.build()])
        self.widget.add_class("mintel")
        self.refresh(force=True)
        if live:
            self.auto.start()

    # subclasses --------------------------------------------------------------------------
    def build(self):
        """The view's body widget (built once)."""
        raise NotImplementedError

    def update(self, force: bool = False) -> bool:
        """Bring the widgets up to date with the lake; True when something was redrawn."""
        raise NotImplementedError

    def status_parts(self) -> list[str]:
        """Extra HTML fragments for the status bar."""
        return []

    # shared ------------------------------------------------------------------------------
    def changed_snapshot(self, force: bool = False):
        """The snapshot when it changed since this view last drew it (or ``force``), else None."""
        snap = self.source.snapshot()
        if not force and snap.version == getattr(self, "_drawn_version", None):
            return None
        self._drawn_version = snap.version
        return snap

    def refresh(self, force: bool = False) -> bool:
        try:
            changed = self.update(force)
            self.error = None
        except Exception as exc:  # noqa: BLE001 - shown, retried on the next tick
            self._show_error(exc)
            return False
        self.status.value = self._status_html()
        return changed

    def close(self) -> None:
        self.auto.stop()
        self.widget.close()

    def _on_live(self, change) -> None:
        if change["new"]:
            self.refresh()
            self.auto.start()
        else:
            self.auto.stop()

    def _show_error(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        self.status.value = self._status_html()

    def _status_html(self) -> str:
        snap = self.source.snapshot()
        now = pd.Timestamp.now(tz="UTC")
        parts = []
        if snap.written_at is None:
            parts.append('<span class="m-stale">no snapshot yet: is ingestion running?</span>')
        else:
            age = snap.age_s(now)
            parts.append(f'updated <b data-age-s="{age:.1f}">{_age(age)}</b> ago '
                         f'({snap.written_at.tz_convert("UTC"):%H:%M:%S} UTC)')
            if snap.bars_at is not None:
                parts.append(f"bars to <b>{snap.bars_at:%Y-%m-%d %H:%M}</b>")
            if snap.stale(self.stale_after_s, now):
                parts.append('<span class="m-stale">STALE</span>')
        parts += self.status_parts()
        if self.error:
            parts.append(f'<span class="m-error">{html.escape(self.error)}</span>')
        return f'<div class="m-bar">{" · ".join(parts)}</div>'

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
