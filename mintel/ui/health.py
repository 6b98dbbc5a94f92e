"""Health: providers, ingestion rate and cycle times, data age per sector, lake size.

The headline figures and the providers table are ``mintel.status.health`` — the very figures
``mintel health`` prints — so the dashboard and the CLI never disagree. ``data_age`` is the pure
part (each symbol's last bar against the newest one in the snapshot, per sector). The view
recomputes only when the metrics partition gained files, the snapshot was republished or the window
changed (and every ``RECOMPUTE_S`` otherwise, as the window slides); the chart is updated
in place.
"""

from __future__ import annotations

import html
import time

import numpy as np
import pandas as pd

from mintel.status import Health, health
from mintel.ui.base import View
from mintel.ui.charts import sync_initial_state
from mintel.ui.table import Column, fmt_number, render
from mintel.ui.theme import ACCENT, DOWN, UP, plotly_template

WINDOWS = [("15 min", 15.0), ("1 h", 60.0), ("4 h", 240.0), ("24 h", 1440.0)]
RECOMPUTE_S = 30.0  # recompute even when nothing was written: the window slides
NO_SECTOR = "(none)"

PROVIDER_COLUMNS = [
    Column("name", "Provider"),
    Column("state", "Breaker", title="circuit breaker: closed (healthy), open (resting), half_open (probing)"),
    Column("capacity_per_min", "Cap/min", ",.0f"),
    Column("used_per_min", "Used/min", ",.1f"),
    Column("requests", "Requests", ",.0f"),
    Column("errors", "Errors", ",.0f"),
    Column("rate_limited", "Rate ltd", ",.0f"),
    Column("error_rate", "Err %", ".1%"),
    Column("latency_ms_p50", "p50 ms", ",.0f"),
    Column("latency_ms_p95", "p95 ms", ",.0f"),
    Column("seen", "Last report UTC"),
]
AGE_COLUMNS = [
    Column("sector", "Sector"),
    Column("symbols", "Symbols", ",.0f"),
    Column("lagging", "Lagging", ",.0f", title="symbols whose last bar is older than the newest"),
    Column("median_age_s", "Median age s", ",.0f"),
    Column("max_age_s", "Max age s", ",.0f"),
    Column("oldest", "Oldest"),
]
LAKE_COLUMNS = [
    Column("label", "Table"),
    Column("partitions", "Parts", ",.0f"),
    Column("files", "Files", ",.0f"),
    Column("rows", "Rows", ",.0f"),
    Column("bytes", "Bytes", ",.0f"),
    Column("first", "First"),
    Column("last", "Last"),
]
CARDS = [  # summary key, label, number format ("time": an ISO timestamp shown as HH:MM:SS)
    ("cycles", "cycles", ",.0f"),
    ("rows_per_s", "rows / s", ",.0f"),
    ("rows_written", "rows written", ",.0f"),
    ("rows_quarantined", "quarantined", ",.0f"),
    ("processing_ms_p50", "processing p50 ms", ",.0f"),
    ("processing_ms_p95", "processing p95 ms", ",.0f"),
    ("cycle_ms_p95", "cycle p95 ms", ",.0f"),
    ("last_cycle_at", "last cycle UTC", "time"),
    ("symbols_in_snapshot", "symbols", ",.0f"),
    ("lake_files", "lake files", ",.0f"),
    ("lake_bytes", "lake MB", "MB"),
]
TRACES = [  # metrics column, subplot row, colour
    ("cycle_ms", 1, ACCENT),
    ("processing_ms", 1, UP),
    ("rows_written", 2, "#4ea1d3"),
    ("rows_quarantined", 2, DOWN),
]


def data_age(snapshot: pd.DataFrame) -> pd.DataFrame:
    """Per sector (an "All" row first): symbols, how many lag, median and max age in seconds of each
    symbol's last bar behind the newest bar in the snapshot, and the oldest symbol; worst first."""
    columns = ["sector", "symbols", "lagging", "median_age_s", "max_age_s", "oldest"]
    if not len(snapshot):
        return pd.DataFrame(columns=columns)
    age = (snapshot["ts"].max() - snapshot["ts"]).dt.total_seconds().to_numpy(dtype=np.float64)
    frame = pd.DataFrame({"sector": snapshot["sector"].fillna(NO_SECTOR).replace("", NO_SECTOR).to_numpy(dtype=object),
                          "symbol": snapshot["symbol"].to_numpy(dtype=object), "age": age})

    def summarize(name: str, g: pd.DataFrame) -> dict:
        worst = g.sort_values(["age", "symbol"], ascending=[False, True], na_position="first").iloc[0]
        lag = g["age"].fillna(np.inf) > 0  # a symbol without a bar lags too
        return {"sector": name, "symbols": len(g), "lagging": int(lag.sum()), "median_age_s": g["age"].median(),
                "max_age_s": g["age"].max(), "oldest": worst["symbol"] if lag.any() else ""}

    rows = [summarize(name, g) for name, g in frame.groupby("sector", sort=True)]
    rows.sort(key=lambda r: -(r["max_age_s"] if np.isfinite(r["max_age_s"]) else np.inf))  # stable: sector order within
    return pd.DataFrame([summarize("All", frame)] + rows, columns=columns)


def lake_table(stats: pd.DataFrame) -> pd.DataFrame:
    """``Lake.stats()`` with a label per table (``bars 1m``) and a total row last."""
    out = stats.copy()
    out["label"] = [f"{t} {iv}" if isinstance(iv, str) and iv else t for t, iv in zip(out["table"], out["interval"])]
    total = {"label": "total", **{c: out[c].sum() for c in ("partitions", "files", "rows", "bytes")}}
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True) if len(out) else out


def card_text(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if fmt == "time":
        return f"{pd.Timestamp(value).tz_convert('UTC'):%H:%M:%S}"
    if fmt == "MB":
        return f"{value / 1e6:,.1f}"
    return fmt_number(value, fmt)


class HealthView(View):
    title = "Health"
    refresh_s = 5.0

    def __init__(self, source=None, *, window_minutes: float = 15.0, recompute_s: float = RECOMPUTE_S, **kw) -> None:
        self.window_minutes = float(window_minutes)
        self.recompute_s = recompute_s
        self.health: Health | None = None  # what is on screen, and the clock it was computed at
        self.now: pd.Timestamp | None = None
        self.lake_stats = pd.DataFrame()
        self.ages = pd.DataFrame()
        self.computed = 0  # recomputations (tests check refresh stays cheap)
        self._version = None
        self._at = 0.0
        super().__init__(source, **kw)

    def build(self):
        import ipywidgets as w
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        windows = [(label, m) for label, m in WINDOWS] + ([] if self.window_minutes in dict(WINDOWS).values()
                                                          else [(f"{self.window_minutes:g} min", self.window_minutes)])
        self.w_window = w.Dropdown(options=windows, value=self.window_minutes, description="Window",
                                   layout=w.Layout(width="180px"))
        self.w_window.add_class("m-window")
        self.w_window.observe(self._on_window, "value")
        self.cards = w.HTML()
        self.providers = w.HTML()
        self.age_panel = w.HTML()
        self.lake_panel = w.HTML()
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                            subplot_titles=("cycle and processing time (ms)", "rows per cycle"))
        for name, row, colour in TRACES:
            fig.add_scatter(x=[], y=[], name=name, mode="lines", line=dict(color=colour, width=1.5), row=row, col=1)
        fig.update_xaxes(type="date")
        fig.update_layout(template=plotly_template(), height=380, legend=dict(orientation="h", x=1, xanchor="right", y=1.14),
                          margin=dict(l=50, r=20, t=50, b=30))
        self.chart = go.FigureWidget(fig)
        panel = w.Layout(flex="1 1 420px")
        return w.VBox([
            w.HBox([self.w_window], layout=w.Layout(align_items="center")),
            self.cards,
            w.HTML('<h2>Providers</h2>'), self.providers,
            self.chart,
            w.HBox([w.VBox([w.HTML("<h2>Data age by sector</h2>"), self.age_panel], layout=panel),
                    w.VBox([w.HTML("<h2>Lake</h2>"), self.lake_panel], layout=panel)],
                   layout=w.Layout(flex_flow="row wrap", grid_gap="12px")),
        ])

    def _on_window(self, change) -> None:
        self.window_minutes = float(change["new"])
        self.refresh(force=True)

    def update(self, force: bool = False) -> bool:
        src = self.source
        version = (src.files_version("metrics", 2), src.snapshot_version(), self.window_minutes)
        if not force and version == self._version and time.monotonic() - self._at < self.recompute_s:
            return False
        self._version, self._at = version, time.monotonic()
        self.now = pd.Timestamp.now(tz="UTC")
        h = self.health = health(src.lake, window_minutes=self.window_minutes, now=self.now)
        self.lake_stats = src.lake.stats()
        self.ages = data_age(src.snapshot().frame)
        self.computed += 1
        self._draw_cards(h.summary)
        self._draw_providers(h.providers)
        self._draw_chart(h.cycles)
        self.age_panel.value = (render(self.ages, AGE_COLUMNS, table_id="age-grid") if len(self.ages)
                                else '<div class="m-empty">no snapshot yet</div>')
        self.lake_panel.value = (render(lake_table(self.lake_stats), LAKE_COLUMNS, table_id="lake-grid")
                                 if len(self.lake_stats) else '<div class="m-empty">the lake is empty</div>')
        return True

    def _draw_cards(self, summary: dict) -> None:
        window = f"{self.window_minutes:g} min"
        cards = "".join(f'<div class="m-card" data-key="{key}"><div class="v">{html.escape(card_text(summary.get(key), fmt))}'
                        f'</div><div class="k">{html.escape(label)}</div></div>' for key, label, fmt in CARDS)
        self.cards.value = f'<div class="m-cards" title="last {window}">{cards}</div>'

    def _draw_providers(self, providers: pd.DataFrame) -> None:
        if not len(providers):
            self.providers.value = '<div class="m-empty">no providers reported in the window (the simulator has no limits)</div>'
            return
        shown = providers.assign(seen=providers["ts"].dt.strftime("%H:%M:%S"))
        self.providers.value = render(shown, PROVIDER_COLUMNS, table_id="providers-grid")

    def _draw_chart(self, cycles: pd.DataFrame) -> None:
        # ISO text, not datetime64: the widget would send those as bare integers
        x = cycles["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%f").tolist() if len(cycles) else []
        with self.chart.batch_update():
            for trace, (name, _, _) in zip(self.chart.data, TRACES):
                trace.x = x
                trace.y = cycles[name].to_numpy(dtype=np.float64) if len(cycles) else []
            empty = "" if len(cycles) else f" · no cycles in the last {self.window_minutes:g} min"
            self.chart.layout.annotations[0].text = f"cycle and processing time (ms){empty}"
        sync_initial_state(self.chart)

    def status_parts(self) -> list[str]:
        if self.health is None:
            return []
        parts = [f"window <b>{self.window_minutes:g} min</b>"]
        p = self.health.providers
        if len(p):
            bad = int((p["state"].fillna("closed") != "closed").sum())
            parts.append(f'<b class="m-providers">{len(p)}</b> providers' + (f', <span class="m-stale">{bad} open</span>' if bad else ""))
        return parts


def show(lake=None, **kw) -> HealthView:
    """The health dashboard for ``lake`` (default: MINTEL_LAKE), displayed."""
    from IPython.display import display

    view = HealthView(lake, **kw)
    display(view)
    return view
