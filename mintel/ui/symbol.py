"""Symbol analysis: one symbol's candles and volume, SMA 20/50 (200 on daily), Bollinger Bands, RSI
and MACD, its support/resistance levels and the events the detectors found, live for the session.

The chart is one ``FigureWidget`` (rows price, volume, RSI, MACD; shared x) built once. A refresh
re-reads only the lake partitions whose files changed and, when the symbol's bars did change (a new
bar, or the still-forming one updated), sets the traces' data in place: the symbol, interval and zoom
the user picked stay. History is bounded (``SHOWN`` bars, read with ``WARMUP`` more so the indicators
are warm), so a refresh stays cheap. A typed symbol is only looked up among the known ones.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel import schema
from mintel.analytics.keys import is_intraday
from mintel.analytics.momentum import support_resistance
from mintel.analytics.scan import enrich
from mintel.ui.base import View
from mintel.ui.charts import (display_times, exchange_tz, figure_widget, gap_breaks, interval_step, segments,
                              sync_initial_state)
from mintel.ui.theme import ACCENT, DOWN, MUTED, UP

SHOWN = {"intraday": 375, "daily": 250}  # bars on the chart: a session of minutes, a year of days
WARMUP = {"intraday": 100, "daily": 200}  # bars read before them (MACD, SMA 50; SMA 200 on daily)
LEVELS_PER_SIDE = 3  # nearest support / resistance levels drawn, of those touched at least twice
MAX_PARTITIONS = 40  # newest partitions read at most for a symbol's bars (a day or a year each) and events (a day each)
LINES = {"bb_upper": ("BB upper", "#5b6b7c", "dot"), "bb_lower": ("BB lower", "#5b6b7c", "dot"),
         "sma_20": ("SMA 20", "#4aa3df", "solid"), "sma_50": ("SMA 50", ACCENT, "solid"), "sma_200": ("SMA 200", "#c678dd", "solid")}
EVENT_MARK = {"long": ("triangle-up", UP), "short": ("triangle-down", DOWN)}


def _kind(interval: str) -> str:
    return "intraday" if is_intraday(interval) else "daily"


class PartitionReader:
    """One symbol's rows of one lake table, newest partitions first. A partition is read again only
    when its file list changed (lake files are immutable: appends add files, compaction renames)."""

    def __init__(self, lake, kind: str, interval: str | None = None) -> None:
        self.lake, self.kind, self.interval = lake, kind, interval
        self._symbol: str | None = None
        self._cache: dict = {}  # partition path -> (file names, rows of the symbol)

    def rows(self, symbol: str, *, count: int | None = None, start: pd.Timestamp | None = None) -> pd.DataFrame:
        """The last ``count`` rows (or those from ``start``), in key order."""
        if symbol != self._symbol:
            self._symbol, self._cache = symbol, {}
        tables, n = [], 0
        for p in reversed(self.lake.partitions(self.kind, self.interval)[-MAX_PARTITIONS:]):
            if start is not None and p.end is not None and p.end <= start:
                break
            names = tuple(f.name for f in p.files())
            hit = self._cache.get(p.path)
            if hit is None or hit[0] != names:
                hit = (names, self.lake.read_arrow(self.kind, interval=self.interval, symbols=[symbol], partitions=[p]))
                self._cache[p.path] = hit
            tables.append(hit[1])
            n += hit[1].num_rows
            if count is not None and n >= count:
                break
        if not tables:
            return schema.empty_frame(self.kind)
        frame = schema.to_pandas(pa.concat_tables(tables[::-1]))
        if start is not None and len(frame):
            frame = frame[frame["ts"] >= start]
        return (frame.tail(count) if count is not None else frame).reset_index(drop=True)


class SymbolView(View):
    title = "Symbol analysis"

    def __init__(self, source=None, *, symbol: str | None = None, interval: str | None = None, **kw) -> None:
        self.symbol: str | None = None  # the symbol shown (always a known one)
        self.interval = interval
        self.symbols: list[str] = []
        self.bars = self.shown = schema.empty_frame("bars")  # bars read (with warm-up) / on the chart, with indicators
        self.levels = pd.DataFrame(columns=["symbol", "kind", "level", "touches", "last_ts", "distance_pct"])
        self.events = schema.empty_frame("opportunities")
        self.input_error: str | None = None  # what is wrong with the typed symbol, while it is
        self._requested = symbol
        self._readers: dict = {}
        self._version = None
        super().__init__(source, **kw)

    # widgets -----------------------------------------------------------------------------
    def build(self):
        import ipywidgets as w
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        self.w_symbol = w.Combobox(options=[], value="", placeholder="symbol", description="Symbol", ensure_option=False,
                                   continuous_update=False, layout=w.Layout(width="230px"))
        self.w_interval = w.ToggleButtons(options=[], style=dict(button_width="48px"))
        self.info = w.HTML()
        self.w_symbol.add_class("m-symbol")
        self.w_symbol.observe(self._on_symbol, "value")
        self.w_interval.observe(self._on_interval, "value")
        fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.015, row_heights=[0.55, 0.13, 0.16, 0.16])
        fig.add_trace(go.Candlestick(name="price", increasing_line_color=UP, decreasing_line_color=DOWN), row=1, col=1)
        for name, (label, color, dash) in LINES.items():
            fig.add_trace(go.Scatter(name=name, hovertemplate=f"{label} %{{y:,.2f}}<extra></extra>", mode="lines",
                                     line=dict(color=color, width=1, dash=dash),
                                     fill="tonexty" if name == "bb_lower" else None, fillcolor="rgba(91,107,124,0.08)"), row=1, col=1)
        for name, color in (("support", UP), ("resistance", DOWN)):
            fig.add_trace(go.Scatter(name=name, mode="lines", line=dict(color=color, width=1, dash="dash"), hoverinfo="text",
                                     hovertemplate=f"{name} %{{text}}<extra></extra>", connectgaps=False), row=1, col=1)
        fig.add_trace(go.Scatter(name="events", mode="markers", marker=dict(size=10, line=dict(width=1, color="#000")),
                                 hovertemplate="%{text}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Bar(name="volume", hovertemplate="vol %{y:,.0f}<extra></extra>"), row=2, col=1)
        fig.add_trace(go.Scatter(name="rsi", mode="lines", line=dict(color="#c678dd", width=1),
                                 hovertemplate="RSI %{y:.1f}<extra></extra>"), row=3, col=1)
        fig.add_trace(go.Bar(name="macd_hist", hovertemplate="hist %{y:+.3f}<extra></extra>"), row=4, col=1)
        fig.add_trace(go.Scatter(name="macd", mode="lines", line=dict(color="#4aa3df", width=1)), row=4, col=1)
        fig.add_trace(go.Scatter(name="macd_signal", mode="lines", line=dict(color=ACCENT, width=1)), row=4, col=1)
        for level in (30, 70):
            fig.add_hline(y=level, row=3, col=1, line=dict(color=MUTED, width=1, dash="dot"))
        fig.update_yaxes(range=[0, 100], row=3, col=1)
        fig.update_xaxes(rangeslider_visible=False, showspikes=True, spikemode="across", spikethickness=1)
        for row, title in ((1, "price"), (2, "vol"), (3, "RSI"), (4, "MACD")):
            fig.update_yaxes(title_text=title, title_font=dict(size=10), row=row, col=1)
        self.chart = figure_widget(fig, height=720, hovermode="x unified", bargap=0.1)
        self.traces = {t.name: t for t in self.chart.data}
        return w.VBox([w.HBox([self.w_symbol, self.w_interval, self.info], layout=w.Layout(align_items="center", grid_gap="10px")),
                       self.chart])

    def _on_symbol(self, change) -> None:
        self.select(change["new"])

    def _on_interval(self, change) -> None:
        if change["new"] and change["new"] != self.interval:
            self.interval = change["new"]
            self.refresh(force=True)

    # what the user picks -------------------------------------------------------------------
    def select(self, text: str) -> bool:
        """Show ``text``'s symbol when it is a known one; else say so in the status bar (the chart stays)."""
        self._pick(text)
        return self.refresh(force=self.input_error is None)

    def _pick(self, text) -> None:
        typed = str(text or "").strip().upper()
        if typed in set(self.symbols):
            self.symbol, self.input_error = typed, None
        else:
            shown = typed if len(typed) <= 24 else typed[:24] + "…"
            self.input_error = f"DataError: unknown symbol {shown!r} ({len(self.symbols)} symbols known)"

    def refresh(self, force: bool = False) -> bool:
        changed = super().refresh(force)
        if self.input_error and not self.error:  # the typed symbol stays wrong until it is changed
            self.error = self.input_error
            self.status.value = self._status_html()
        return changed

    # data ----------------------------------------------------------------------------------
    def _reader(self, kind: str, interval: str | None) -> PartitionReader:
        key = (kind, interval)
        if key not in self._readers:
            self._readers[key] = PartitionReader(self.source.lake, kind, interval)
        return self._readers[key]

    def _sync_choices(self, snap) -> None:
        frame = snap.frame
        symbols = sorted(frame["symbol"].dropna().astype(str).unique().tolist())
        if symbols != self.symbols:
            self.symbols = symbols
            self._quietly(self.w_symbol, self._on_symbol, options=symbols)
        intervals = sorted((iv for t, iv in self.source.lake.tables() if t == "bars"), key=interval_step)
        if self.interval not in intervals and intervals:
            self.interval = "1m" if "1m" in intervals else intervals[0]
        if list(self.w_interval.options) != intervals or (intervals and self.w_interval.value != self.interval):
            self._quietly(self.w_interval, self._on_interval, options=intervals, value=self.interval if intervals else None)
        if self.symbol is None and symbols:
            requested = self._requested
            self._requested = None
            if requested is not None:
                self._pick(requested)
            if self.symbol is None:
                scored = frame.dropna(subset=["score"]).sort_values(["score", "symbol"], ascending=[False, True])
                self.symbol = scored["symbol"].iloc[0] if len(scored) else symbols[0]
        if self.symbol is not None and self.w_symbol.value != self.symbol and not self.input_error:
            self._quietly(self.w_symbol, self._on_symbol, value=self.symbol)

    @staticmethod
    def _quietly(widget, handler, **values) -> None:
        """Set ``widget``'s traits from code without calling its ``handler`` (that is for the user's changes)."""
        widget.unobserve(handler, "value")
        try:
            for name, value in values.items():  # options before value
                setattr(widget, name, value)
        finally:
            widget.observe(handler, "value")

    def update(self, force: bool = False) -> bool:
        snap = self.source.snapshot()
        self._sync_choices(snap)
        if self.symbol is None or self.interval is None:
            self.info.value = f'<span style="color:{MUTED}">no snapshot: no symbols to show</span>'
            return self._draw(force)
        kind = _kind(self.interval)
        bars = self._reader("bars", self.interval).rows(self.symbol, count=SHOWN[kind] + WARMUP[kind])
        version = (self.symbol, self.interval, self.source.files_version("opportunities"))
        ohlcv = ["ts", "open", "high", "low", "close", "volume"]
        same = len(bars) == len(self.bars) and (not len(bars) or bars[ohlcv].equals(self.bars[ohlcv]))
        if not force and version == self._version and same:
            return False
        self._version = version
        self.bars = bars
        enriched = enrich(bars, self.interval, exchange_tz(self.symbol)) if len(bars) else bars
        self.shown = enriched.tail(SHOWN[kind]).reset_index(drop=True)
        self.levels = self._levels(enriched)
        events = schema.empty_frame("opportunities")
        if len(self.shown):
            events = self._reader("opportunities", None).rows(self.symbol, start=self.shown["ts"].iloc[0])
        self.events = events[events["interval"] == self.interval].reset_index(drop=True)
        self.info.value = self._info_html(snap.frame)
        return self._draw(True)

    def _levels(self, enriched: pd.DataFrame) -> pd.DataFrame:
        """The nearest ``LEVELS_PER_SIDE`` support and resistance levels touched at least twice."""
        if enriched.empty:
            return pd.DataFrame(columns=["symbol", "kind", "level", "touches", "last_ts", "distance_pct"])
        lv = support_resistance(enriched)
        lv = lv[lv["touches"] >= 2]
        sup = lv[lv["kind"] == "support"].sort_values("level", ascending=False).head(LEVELS_PER_SIDE)
        res = lv[lv["kind"] == "resistance"].sort_values("level").head(LEVELS_PER_SIDE)
        return pd.concat([sup, res], ignore_index=True)

    # drawing ---------------------------------------------------------------------------------
    def _draw(self, changed: bool) -> bool:
        if not changed:
            return False
        s, t, iv = self.shown, self.traces, self.interval or "1m"
        x = display_times(s["ts"], iv, exchange_tz(self.symbol)) if len(s) else pd.DatetimeIndex([])
        col = {c: s[c].to_numpy(dtype=np.float64) if c in s else np.empty(0) for c in
               ("open", "high", "low", "close", "volume", "rsi", "macd", "macd_signal", "macd_hist", *LINES)}
        up = col["close"] >= col["open"]
        ev = self.events
        ev_x = display_times(ev["ts"], iv, exchange_tz(self.symbol)) if len(ev) else []
        sx, ev_sx = _iso(x), _iso(ev_x)  # text, not datetime64: the widget would send bare integers
        with self.chart.batch_update():
            t["price"].update(x=sx, open=col["open"], high=col["high"], low=col["low"], close=col["close"])
            for name in LINES:
                t[name].update(x=sx, y=col[name], visible=name != "sma_200" or not is_intraday(iv))
            for name in ("support", "resistance"):
                xs, ys, text = segments(self.levels[self.levels["kind"] == name], sx[0] if len(sx) else None,
                                        sx[-1] if len(sx) else None)
                t[name].update(x=xs, y=ys, text=text)
            direction = ev["direction"].fillna("neutral")
            marks = [EVENT_MARK.get(d, ("circle", ACCENT)) for d in direction]
            t["events"].update(x=ev_sx, y=ev["price"].to_numpy(dtype=np.float64),
                               text=[html.escape(f"{k} ({d}, score {sc:.0f}): {m}") for k, d, sc, m in
                                     zip(ev["kind"], direction, ev["score"].fillna(0), ev["message"].fillna(""))],
                               marker=dict(symbol=[m[0] for m in marks], color=[m[1] for m in marks]))
            t["volume"].update(x=sx, y=col["volume"], marker_color=np.where(up, UP, DOWN))
            t["rsi"].update(x=sx, y=col["rsi"])
            t["macd"].update(x=sx, y=col["macd"])
            t["macd_signal"].update(x=sx, y=col["macd_signal"])
            t["macd_hist"].update(x=sx, y=col["macd_hist"], marker_color=np.where(col["macd_hist"] >= 0, UP, DOWN))
            self.chart.update_xaxes(rangebreaks=gap_breaks(x, iv))
            self.chart.layout.uirevision = f"{self.symbol}/{iv}"
            self.chart.layout.title.text = f"{self.symbol} · {iv}" if self.symbol else "no snapshot"
        sync_initial_state(self.chart)
        return True

    def _info_html(self, frame: pd.DataFrame) -> str:
        row = frame[frame["symbol"] == self.symbol]
        if row.empty:
            return ""
        r = row.iloc[0]
        chg = r["change_pct"]
        cls = "up" if chg > 0 else "down" if chg < 0 else ""
        parts = [f"<b>{html.escape(str(r['symbol']))}</b>", html.escape(str(r["name"] or "")), html.escape(str(r["sector"] or "")),
                 f"{r['price']:,.2f}", f'<span style="color:{UP if cls == "up" else DOWN if cls else MUTED}">{chg:+.2f}%</span>'
                 if pd.notna(chg) else "", f"score {r['score']:.0f}" if pd.notna(r["score"]) else "",
                 html.escape(str(r["signals"])) if isinstance(r["signals"], str) and r["signals"] else ""]
        return '<span class="m-bar">' + " · ".join(p for p in parts if p) + "</span>"

    def status_parts(self) -> list[str]:
        if self.symbol and self.interval and not len(self.shown):
            return [f"no {html.escape(self.interval)} bars for {html.escape(self.symbol)}"]
        return [f"{len(self.shown)} bars · {len(self.events)} events"] if self.symbol else []



def _iso(x) -> list[str]:
    return [] if len(x) == 0 else pd.DatetimeIndex(x).strftime("%Y-%m-%d %H:%M:%S").tolist()


def show(symbol: str | None = None, lake=None, **kw) -> SymbolView:
    """The analysis of ``symbol`` (default: the top-scored one) in ``lake`` (default: MINTEL_LAKE), displayed."""
    from IPython.display import display

    view = SymbolView(lake, symbol=symbol, **kw)
    display(view)
    return view
