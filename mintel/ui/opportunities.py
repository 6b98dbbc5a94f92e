"""Trading opportunities: today's ranked detections with their factor breakdown, new arrivals marked.

``select(frame, state, now)`` is the pure part (filters, window, order) that tests check against the
lake; ``factor_text`` turns the ``factors`` JSON into "depth 30.0 · base 40.0". ``OpportunitiesView``
re-reads the lake only when the opportunities (or alerts) partitions gained files, and marks the rows
that were not there at the previous read. Nothing typed by the user is evaluated: every control is a
choice from a list or a number.

"Since" windows are measured in market time: back from the newest bar the lake has (the snapshot's,
or the newest opportunity's), so replayed and simulated sessions behave like live ones; "today" is
that bar's UTC date.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mintel import schema
from mintel.ui.base import View
from mintel.ui.table import Column, render

COLUMNS = [
    Column("time", "Bar UTC"),
    Column("symbol", "Symbol"),
    Column("kind", "Kind"),
    Column("direction", "Dir"),
    Column("score", "Score", ".1f"),
    Column("confidence", "Conf", ".2f"),
    Column("price", "Price", ",.2f"),
    Column("sector", "Sector"),
    Column("factor_text", "Factors", title="each input's contribution to the score, largest first"),
    Column("message", "Message"),
]
ALERT_COLUMNS = [
    Column("time", "UTC"),
    Column("symbol", "Symbol"),
    Column("kind", "Kind"),
    Column("direction", "Dir"),
    Column("score", "Score", ".1f"),
    Column("status", "Status"),
    Column("message", "Message"),
]
ALL = "All"
DIRECTIONS = [ALL, "long", "short", "neutral"]
SINCE = [("today", 0.0), ("last 5 min", 5.0), ("last 15 min", 15.0), ("last 30 min", 30.0), ("last 1 h", 60.0),
         ("last 2 h", 120.0), ("last 4 h", 240.0)]
SORTS = {  # order -> (columns, ascending); the trailing keys make the order total
    "newest": (["detected_at", "ts", "score", "symbol", "kind"], [False, False, False, True, True]),
    "score": (["score", "detected_at", "ts", "symbol", "kind"], [False, False, False, True, True]),
}
LIMITS = [100, 200, 500, 0]  # 0: all rows
DAYS = 2  # partitions read: a "since" window may reach back over midnight UTC


@dataclass(frozen=True)
class OpportunityFilter:
    kinds: tuple[str, ...] = ()  # empty: every kind
    min_score: float = 0.0
    sector: str = ALL
    direction: str = ALL
    since_minutes: float = 0.0  # 0: today
    sort: str = "newest"  # a key of SORTS
    limit: int = 200  # rows shown; 0: all


def select(frame: pd.DataFrame, state: OpportunityFilter, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """The rows of ``frame`` passing ``state``'s filters and window, in its order; not limited.

    ``now``: the market's present (the newest bar); defaults to the newest ``ts`` in ``frame``.
    """
    if not len(frame):
        return frame
    if now is None or pd.isna(now):
        now = frame["ts"].max()
    keep = np.ones(len(frame), dtype=bool)
    start = now - pd.Timedelta(minutes=state.since_minutes) if state.since_minutes > 0 else now.floor("D")
    keep &= (frame["ts"] >= start).to_numpy(dtype=bool)
    if state.kinds:
        keep &= frame["kind"].isin(state.kinds).to_numpy(dtype=bool)
    if state.min_score > 0:
        keep &= (frame["score"] >= state.min_score).fillna(False).to_numpy(dtype=bool)
    for col, wanted in (("sector", state.sector), ("direction", state.direction)):
        if wanted != ALL:
            keep &= (frame[col] == wanted).fillna(False).to_numpy(dtype=bool)
    by, ascending = SORTS.get(state.sort, SORTS["newest"])
    return frame[keep].sort_values(by, ascending=ascending, na_position="last", kind="stable")


def factor_text(raw) -> str:
    """``'{"rsi": 12, "volume": 8.5}'`` as ``"rsi 12.0 · volume 8.5"``, largest contribution first.

    Anything that is not a JSON object comes back as it was (the grid escapes it); never raises.
    """
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return ""
    try:
        factors = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return str(raw)
    if not isinstance(factors, dict):
        return str(raw)

    def size(item) -> float:
        v = item[1]
        return -abs(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else math.inf

    return " · ".join(f"{k} {_value(v)}" for k, v in sorted(factors.items(), key=size))


def _value(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:.1f}"
    return "–" if v is None else str(v)


def row_keys(frame: pd.DataFrame) -> pd.Index:
    """The table's key (ts, symbol, kind) of each row, comparable across reads."""
    return pd.MultiIndex.from_arrays([frame["ts"], frame["symbol"], frame["kind"]]) if len(frame) else pd.Index([])


def for_display(frame: pd.DataFrame, new: np.ndarray | None = None) -> pd.DataFrame:
    """``frame`` with the display columns: bar time, factor text and the ``new`` marks."""
    out = frame.copy()
    out["time"] = out["ts"].dt.strftime("%H:%M") if len(out) else pd.Series(dtype=object)
    if "factors" in out:
        texts = {raw: factor_text(raw) for raw in out["factors"].dropna().unique().tolist()}
        out["factor_text"] = out["factors"].map(texts)
    out["new"] = new if new is not None else np.zeros(len(out), dtype=bool)
    return out


class OpportunitiesView(View):
    title = "Trading opportunities"

    def __init__(self, source=None, *, state: OpportunityFilter | None = None, alerts_shown: int = 15, **kw) -> None:
        self.state = state or OpportunityFilter()
        self.alerts_shown = alerts_shown
        self.frame = for_display(schema.empty_frame("opportunities"))  # what was read (days of partitions), with display columns
        self.shown = self.frame  # the rows on screen
        self.matched = 0
        self.arrived = 0  # rows new at the last re-read
        self.new_shown = 0  # of those, matching the filters
        self.alerts = pd.DataFrame()
        self.reads = 0  # lake reads of the opportunities (tests check refresh stays cheap)
        self._versions: dict[str, object] = {}
        super().__init__(source, **kw)

    def build(self):
        import ipywidgets as w

        s = self.state
        self.w_kinds = w.SelectMultiple(options=[], value=[], rows=5, description="Kinds",
                                        tooltip="none selected: every kind", layout=w.Layout(width="280px"))
        self.w_score = w.FloatSlider(value=s.min_score, min=0, max=100, step=5, description="Score ≥", continuous_update=False,
                                     layout=w.Layout(width="260px"))
        self.w_sector = w.Dropdown(options=[ALL], value=ALL, description="Sector", layout=w.Layout(width="260px"))
        self.w_dir = w.Dropdown(options=DIRECTIONS, value=s.direction, description="Direction", layout=w.Layout(width="200px"))
        self.w_since = w.Dropdown(options=SINCE, value=s.since_minutes, description="Since", layout=w.Layout(width="200px"))
        self.w_sort = w.Dropdown(options=[("newest first", "newest"), ("score", "score")], value=s.sort, description="Sort",
                                 layout=w.Layout(width="200px"))
        self.w_limit = w.Dropdown(options=[("all" if n == 0 else str(n), n) for n in LIMITS], value=s.limit,
                                  description="Rows", layout=w.Layout(width="150px"))
        self.w_info = w.HTML()
        self.grid = w.HTML()
        self.grid.add_class("m-scroll")
        self.alert_panel = w.HTML()
        self._controls = {"kinds": self.w_kinds, "min_score": self.w_score, "sector": self.w_sector, "direction": self.w_dir,
                          "since_minutes": self.w_since, "sort": self.w_sort, "limit": self.w_limit}
        for name, widget in self._controls.items():
            widget.observe(self._on_control, "value")
            widget.add_class(f"m-{name.replace('_', '-')}")
        filters = w.VBox([w.HBox([self.w_sector, self.w_dir, self.w_since]),
                          w.HBox([self.w_score, self.w_sort, self.w_limit]), self.w_info])
        return w.VBox([w.HBox([self.w_kinds, filters], layout=w.Layout(flex_flow="row wrap")), self.grid,
                       w.HTML("<h2>Alerts</h2>"), self.alert_panel])

    # controls ----------------------------------------------------------------------------
    def _read_controls(self) -> OpportunityFilter:
        return replace(self.state, kinds=tuple(self.w_kinds.value), min_score=self.w_score.value, sector=self.w_sector.value,
                       direction=self.w_dir.value, since_minutes=self.w_since.value, sort=self.w_sort.value,
                       limit=self.w_limit.value)

    def _on_control(self, change) -> None:
        new = self._read_controls()
        if new != self.state:
            self.state = new
            self.refresh(force=True)

    def set_state(self, **changes) -> None:
        """Change filters from code (the widgets follow)."""
        self.state = replace(self.state, **changes)
        self._sync_options()
        for name, widget in self._controls.items():
            if name in changes:
                self._set(widget, value=tuple(changes[name]) if name == "kinds" else changes[name])
        self.refresh(force=True)

    def _set(self, widget, **traits) -> None:
        widget.unobserve(self._on_control, "value")
        try:
            for k, v in traits.items():
                setattr(widget, k, v)
        finally:
            widget.observe(self._on_control, "value")

    def _sync_options(self) -> None:
        kinds = sorted(set(self.frame["kind"].dropna().tolist()) | set(self.state.kinds))
        if list(self.w_kinds.options) != kinds:
            self._set(self.w_kinds, options=kinds, value=tuple(k for k in self.state.kinds if k in kinds))
        sectors = [ALL] + sorted((set(self.frame["sector"].dropna().tolist()) | {self.state.sector}) - {ALL, ""})
        if list(self.w_sector.options) != sectors:
            self._set(self.w_sector, options=sectors, value=self.state.sector)

    # data --------------------------------------------------------------------------------
    def _changed(self, name: str, version) -> bool:
        if name in self._versions and self._versions[name] == version:
            return False
        self._versions[name] = version
        return True

    def update(self, force: bool = False) -> bool:
        src = self.source
        first = "opportunities" not in self._versions
        opp_changed = self._changed("opportunities", src.files_version("opportunities", DAYS))
        alerts_changed = self._changed("alerts", src.files_version("alerts", 1))
        snap = src.snapshot()
        snap_changed = self._changed("snapshot", snap.version)
        if opp_changed:
            self._read_opportunities(first)
        if alerts_changed:
            self._read_alerts()
        if not (force or opp_changed or alerts_changed or snap_changed):
            return False
        self._sync_options()
        now = self.frame["ts"].max() if len(self.frame) else None
        if snap.bars_at is not None and (now is None or snap.bars_at > now):
            now = snap.bars_at
        rows = select(self.frame, self.state, now)
        self.shown = rows.head(self.state.limit) if self.state.limit else rows
        self.matched, self.new_shown = len(rows), int(rows["new"].sum())
        self.w_info.value = (f'<span class="m-page">showing {len(self.shown)} of <b class="m-matched">{len(rows)}</b> '
                             f'matching (of {len(self.frame)} read)</span>')
        if len(self.shown):
            self.grid.value = render(self.shown, COLUMNS, row_class=lambda f: np.where(f["new"], "m-new", "").tolist(),
                                     table_id="opportunities-grid")
        else:
            self.grid.value = ('<div class="m-empty">no opportunities match' if len(self.frame) else
                               '<div class="m-empty">no opportunities yet: is ingestion running?') + "</div>"
        return True

    def _read_opportunities(self, first: bool) -> None:
        old = row_keys(self.frame)
        frame = self.source.opportunities(DAYS)
        self.reads += 1
        new = np.zeros(len(frame), dtype=bool) if first else ~row_keys(frame).isin(old)
        self.frame = for_display(frame, new)
        self.arrived = int(new.sum())

    def _read_alerts(self) -> None:
        alerts = self.source.alerts(1).head(self.alerts_shown)
        self.alerts = alerts
        if not len(alerts):
            self.alert_panel.value = '<div class="m-empty m-alerts">no alerts today</div>'
            return
        alerts = alerts.assign(time=alerts["ts"].dt.strftime("%H:%M:%S"))
        self.alert_panel.value = render(alerts, ALERT_COLUMNS, table_id="alerts-grid")

    def status_parts(self) -> list[str]:
        parts = [f'<b class="m-matched">{self.matched}</b> opportunities']
        new = f'<b class="m-new-count">{self.new_shown}</b> new'
        if self.arrived != self.new_shown:
            new += f" ({self.arrived} arrived)"
        parts.append(new)
        if len(self.alerts):
            parts.append(f'<b class="m-alert-count">{len(self.alerts)}</b> alerts')
        return parts


def show(lake=None, **kw) -> OpportunitiesView:
    """The opportunities dashboard for ``lake`` (default: MINTEL_LAKE), displayed."""
    from IPython.display import display

    view = OpportunitiesView(lake, **kw)
    display(view)
    return view
