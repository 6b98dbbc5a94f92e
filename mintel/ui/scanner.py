"""Live market scanner: the whole universe in a filterable, sortable, paged grid.

``select(frame, state)`` is the pure part (filters, sort) that tests check against the lake;
``ScannerView`` wires it to widgets and refreshes from the snapshot without touching the user's
choices. Nothing typed by the user is evaluated: the text search is a plain substring match and the
expression box goes through ``mintel.analytics.filters`` (a parser, never ``eval``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mintel.analytics.filters import apply_filters
from mintel.ui.base import View
from mintel.ui.table import Column, render
from mintel.universe import Watchlists

COLUMNS = [
    Column("symbol", "Symbol"),
    Column("name", "Name"),
    Column("sector", "Sector"),
    Column("price", "Price", ",.2f"),
    Column("change_pct", "Chg %", "+.2f", signed=True),
    Column("volume_ratio", "Vol×", ".2f", title="volume / mean of the previous 20 bars"),
    Column("rsi", "RSI", ".1f"),
    Column("macd_hist", "MACD h", "+.3f", signed=True),
    Column("bb_pct_b", "BB %b", ".2f"),
    Column("dist_sma_50_pct", "vs SMA50 %", "+.2f", signed=True),
    Column("score", "Score", ".0f"),
    Column("signals", "Signals"),
]
SORTABLE = [(c.label, c.name) for c in COLUMNS if c.name not in ("signals",)]
PAGE_SIZES = [50, 100, 250, 500, 0]  # 0: all rows
ALL = "All"


@dataclass(frozen=True)
class ScannerState:
    sector: str = ALL
    rsi: tuple[float, float] = (0.0, 100.0)
    min_volume_ratio: float = 0.0
    min_score: float = 0.0
    text: str = ""
    watchlist: str | None = None
    expression: str = ""
    sort: str = "score"
    descending: bool = True
    page: int = 0
    page_size: int = 100


def select(frame: pd.DataFrame, state: ScannerState, watchlist: list[str] | None = None) -> pd.DataFrame:
    """The rows of ``frame`` passing ``state``'s filters, sorted (nulls last); not paged."""
    keep = np.ones(len(frame), dtype=bool)
    if state.sector != ALL:
        keep &= (frame["sector"] == state.sector).fillna(False).to_numpy(dtype=bool)
    lo, hi = state.rsi
    if lo > 0 or hi < 100:
        rsi = frame["rsi"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            keep &= (rsi >= lo) & (rsi <= hi)
    for col, minimum in (("volume_ratio", state.min_volume_ratio), ("score", state.min_score)):
        if minimum and minimum > 0:
            v = frame[col].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                keep &= v >= minimum
    text = state.text.strip().upper()
    if text:
        hay = frame["symbol"].fillna("").str.upper() + "\x00" + frame["name"].fillna("").str.upper()
        keep &= hay.str.contains(text, regex=False).to_numpy(dtype=bool)
    if watchlist is not None:
        keep &= frame["symbol"].isin(watchlist).to_numpy(dtype=bool)
    out = frame[keep]
    if state.expression.strip():
        out = apply_filters(out, [s for s in state.expression.split(",") if s.strip()])
    if state.sort in out:
        out = out.sort_values(state.sort, ascending=not state.descending, na_position="last", kind="stable")
    return out


def page_of(rows: pd.DataFrame, state: ScannerState) -> tuple[pd.DataFrame, int, int]:
    """The page to show, its (clamped) number and the page count."""
    if not state.page_size:
        return rows, 0, 1
    pages = max(1, math.ceil(len(rows) / state.page_size))
    page = min(max(state.page, 0), pages - 1)
    return rows.iloc[page * state.page_size:(page + 1) * state.page_size], page, pages


class ScannerView(View):
    title = "Live market scanner"

    def __init__(self, source=None, *, watchlists: Watchlists | None = None, state: ScannerState | None = None, **kw) -> None:
        self.watchlists = watchlists or Watchlists()
        self.state = state or ScannerState()
        self.shown = pd.DataFrame()  # the rows on screen (tests and the benchmark read it)
        self.matched = 0
        super().__init__(source, **kw)

    def build(self):
        import ipywidgets as w

        s = self.state
        narrow = w.Layout(width="auto")
        self.w_sector = w.Dropdown(options=[ALL], value=ALL, description="Sector", layout=w.Layout(width="230px"))
        self.w_rsi = w.FloatRangeSlider(value=list(s.rsi), min=0, max=100, step=1, description="RSI", continuous_update=False,
                                        layout=w.Layout(width="300px"))
        self.w_vol = w.BoundedFloatText(value=s.min_volume_ratio, min=0, max=1e6, step=0.5, description="Vol× ≥",
                                        layout=w.Layout(width="160px"))
        self.w_score = w.FloatSlider(value=s.min_score, min=0, max=100, step=5, description="Score ≥", continuous_update=False,
                                     layout=w.Layout(width="260px"))
        self.w_text = w.Text(value=s.text, placeholder="symbol or name", description="Search", layout=w.Layout(width="240px"))
        self.w_watch = w.Dropdown(options=[("—", "")], value="", description="Watchlist", layout=w.Layout(width="230px"))
        self.w_expr = w.Text(value=s.expression, placeholder="e.g. rsi<30, volume_ratio>=2, sector=IT", description="Filter",
                             continuous_update=False, layout=w.Layout(width="420px"))
        self.w_sort = w.Dropdown(options=SORTABLE, value=s.sort, description="Sort", layout=w.Layout(width="200px"))
        self.w_desc = w.ToggleButton(value=s.descending, description="desc", tooltip="descending", layout=narrow)
        self.w_size = w.Dropdown(options=_sizes(s.page_size), value=s.page_size,
                                 description="Rows", layout=w.Layout(width="150px"))
        self.w_prev = w.Button(description="◀", layout=w.Layout(width="40px"), tooltip="previous page")
        self.w_next = w.Button(description="▶", layout=w.Layout(width="40px"), tooltip="next page")
        self.w_page = w.HTML()
        self.grid = w.HTML()
        self.grid.add_class("m-scroll")
        for widget in (self.w_sector, self.w_rsi, self.w_vol, self.w_score, self.w_text, self.w_watch, self.w_expr,
                       self.w_sort, self.w_desc, self.w_size):
            widget.observe(self._on_control, "value")
        self.w_prev.on_click(lambda _: self._turn(-1))
        self.w_next.on_click(lambda _: self._turn(+1))
        for widget, cls in ((self.w_sector, "m-sector"), (self.w_text, "m-search"), (self.w_score, "m-score"),
                            (self.w_expr, "m-expr"), (self.w_sort, "m-sort"), (self.w_next, "m-next")):
            widget.add_class(cls)
        rows = [
            w.HBox([self.w_text, self.w_sector, self.w_watch, self.w_vol], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.w_rsi, self.w_score, self.w_expr], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.w_sort, self.w_desc, self.w_size, self.w_prev, self.w_next, self.w_page],
                   layout=w.Layout(align_items="center")),
            self.grid,
        ]
        return w.VBox(rows)

    # ------------------------------------------------------------------------------------
    def _read_controls(self) -> ScannerState:
        return replace(
            self.state, sector=self.w_sector.value, rsi=tuple(self.w_rsi.value), min_volume_ratio=self.w_vol.value or 0.0,
            min_score=self.w_score.value, text=self.w_text.value, watchlist=self.w_watch.value, expression=self.w_expr.value,
            sort=self.w_sort.value, descending=self.w_desc.value, page_size=self.w_size.value,
        )

    def _on_control(self, change) -> None:
        new = self._read_controls()
        if new != self.state:
            self.state = replace(new, page=0)
            self.refresh(force=True)

    def _turn(self, step: int) -> None:
        self.state = replace(self.state, page=self.state.page + step)
        self.refresh(force=True)

    def set_state(self, **changes) -> None:
        """Change filters from code (the widgets follow)."""
        self.state = replace(self.state, **changes)
        self._sync_options(self.source.snapshot().frame)
        if self.state.page_size not in [v for _, v in self.w_size.options]:
            self._set_options(self.w_size, _sizes(self.state.page_size), self.w_size.value)
        with self.grid.hold_sync():
            for name, widget in (("sector", self.w_sector), ("watchlist", self.w_watch), ("text", self.w_text), ("min_score", self.w_score),
                                 ("min_volume_ratio", self.w_vol), ("expression", self.w_expr), ("sort", self.w_sort),
                                 ("descending", self.w_desc), ("page_size", self.w_size)):
                if name in changes:
                    widget.unobserve(self._on_control, "value")
                    widget.value = changes[name] if changes[name] is not None else ""
                    widget.observe(self._on_control, "value")
        self.refresh(force=True)

    def update(self, force: bool = False) -> bool:
        snap = self.changed_snapshot(force)
        if snap is None:
            return False
        frame = snap.frame
        self._sync_options(frame)
        watch = None
        if self.state.watchlist:
            watch = self.watchlists.get(self.state.watchlist)
        self.error = None
        rows = select(frame, self.state, watch)
        shown, page, pages = page_of(rows, self.state)
        self.state = replace(self.state, page=page)
        self.shown, self.matched = shown, len(rows)
        first = page * self.state.page_size + 1 if len(shown) else 0
        self.w_page.value = f'<span class="m-page">rows {first}–{first + len(shown) - 1 if len(shown) else 0} of ' \
                            f'<b class="m-matched">{len(rows)}</b> (universe {len(frame)}) · page {page + 1}/{pages}</span>'
        self.grid.value = render(shown, COLUMNS, table_id="scanner-grid")
        return True

    def _sync_options(self, frame: pd.DataFrame) -> None:
        sectors = [ALL] + sorted(s for s in frame["sector"].dropna().unique().tolist() if s)
        if list(self.w_sector.options) != sectors:
            self._set_options(self.w_sector, sectors, self.state.sector if self.state.sector in sectors else ALL)
        names = [("—", "")] + [(n, n) for n in self.watchlists.names()]
        if [tuple(o) for o in self.w_watch.options] != names:
            self._set_options(self.w_watch, names, self.state.watchlist if (self.state.watchlist, self.state.watchlist) in names else "")

    def _set_options(self, widget, options, value) -> None:
        widget.unobserve(self._on_control, "value")
        widget.options = options
        widget.value = value
        widget.observe(self._on_control, "value")


def _sizes(extra: int) -> list[tuple[str, int]]:
    sizes = sorted(set(PAGE_SIZES) | {extra}, key=lambda n: n or float("inf"))
    return [("all" if n == 0 else str(n), n) for n in sizes]


def show(lake=None, **kw) -> ScannerView:
    """The scanner for ``lake`` (default: MINTEL_LAKE), displayed."""
    from IPython.display import display

    view = ScannerView(lake, **kw)
    display(view)
    return view
