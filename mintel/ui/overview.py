"""Market overview: where the money moves (sector heat map), how broad the move is (breadth and
sentiment gauges) and who moves most (top gainers, losers and volume spikes).

Heat-map tiles are sized by **turnover = price × day_volume** (the bundled universe lists carry no
market cap) and coloured by change % on a red/green scale centred at 0; a sector's colour is its
turnover-weighted change. Breadth and sentiment are ``market_breadth`` of the snapshot, the figures
``mintel sentiment`` prints for that frame. ``heat_map_frame`` and ``movers`` are the pure parts tests
check against the lake; ``OverviewView`` redraws only when the snapshot changed, setting the figures'
data in place.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from mintel.analytics.breadth import Breadth, market_breadth
from mintel.ui.base import View
from mintel.ui.charts import DIVERGING, figure_widget, finite, sync_initial_state
from mintel.ui.table import Column, render
from mintel.ui.theme import ACCENT, DOWN, MUTED, UP

TOP = 10  # rows per movers grid
SPIKE_RATIO = 2.0  # volume_ratio from which a symbol is listed as a volume spike
UNKNOWN_SECTOR = "Unknown"

MOVERS = [Column("symbol", "Symbol"), Column("price", "Price", ",.2f"),
          Column("change_pct", "Chg %", "+.2f", signed=True), Column("volume_ratio", "Vol×", ".2f")]
SPIKES = [Column("symbol", "Symbol"), Column("volume_ratio", "Vol×", ".2f", title="volume / its usual volume"),
          Column("change_pct", "Chg %", "+.2f", signed=True), Column("day_volume", "Day vol", ",.0f")]
SECTORS = [Column("sector", "Sector"), Column("symbols", "#", ",.0f"), Column("advancers", "Adv", ",.0f"),
           Column("decliners", "Dec", ",.0f"), Column("weighted_change_pct", "Chg %", "+.2f", signed=True,
                                                      title="turnover-weighted change"),
           Column("pct_above_sma_50", ">SMA50 %", ".0f")]
SENTIMENT_STEPS = [(0, 20, "#5a1f1d"), (20, 40, "#3d2220"), (40, 60, "#262c33"), (60, 80, "#1d3a2a"), (80, 100, "#1a4d31")]


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def heat_map_frame(snapshot: pd.DataFrame) -> pd.DataFrame:
    """One tile per symbol with a positive turnover: symbol, name, sector, price, change_pct, turnover
    (price × day_volume, else × the last bar's volume, as ``market_breadth`` counts it), by sector."""
    cols = ["symbol", "name", "sector", "price", "change_pct", "turnover"]
    if snapshot is None or snapshot.empty:
        return pd.DataFrame(columns=cols)
    volume = "day_volume" if "day_volume" in snapshot and snapshot["day_volume"].notna().any() else "volume"
    with np.errstate(invalid="ignore"):
        turnover = _numbers(snapshot, "price") * _numbers(snapshot, volume)
    sector = snapshot["sector"].astype(object).where(snapshot["sector"].notna() & (snapshot["sector"] != ""),
                                                     UNKNOWN_SECTOR)
    out = pd.DataFrame({"symbol": snapshot["symbol"].astype(object).to_numpy(),
                        "name": snapshot["name"].astype(object).to_numpy() if "name" in snapshot else None,
                        "sector": sector.to_numpy(), "price": _numbers(snapshot, "price"),
                        "change_pct": _numbers(snapshot, "change_pct"), "turnover": turnover})
    out = out[np.isfinite(turnover) & (turnover > 0)]
    return out.sort_values(["sector", "symbol"], kind="stable").reset_index(drop=True)[cols]


def movers(snapshot: pd.DataFrame, top: int = TOP) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(gainers: change > 0, largest first; losers: change < 0, largest fall first; volume spikes:
    volume_ratio >= SPIKE_RATIO, largest first), ``top`` rows each, ties by symbol."""
    if snapshot is None or snapshot.empty:
        empty = pd.DataFrame(columns=["symbol", "price", "change_pct", "volume_ratio", "day_volume"])
        return empty, empty.copy(), empty.copy()
    change, ratio = _numbers(snapshot, "change_pct"), _numbers(snapshot, "volume_ratio")
    frame = snapshot.assign(change_pct=change, volume_ratio=ratio)
    with np.errstate(invalid="ignore"):
        up, down, spike = frame[change > 0], frame[change < 0], frame[ratio >= SPIKE_RATIO]
    gainers = up.sort_values(["change_pct", "symbol"], ascending=[False, True], kind="stable").head(top)
    losers = down.sort_values(["change_pct", "symbol"], ascending=[True, True], kind="stable").head(top)
    spikes = spike.sort_values(["volume_ratio", "symbol"], ascending=[False, True], kind="stable").head(top)
    return gainers.reset_index(drop=True), losers.reset_index(drop=True), spikes.reset_index(drop=True)


class OverviewView(View):
    title = "Market overview"
    refresh_s = 5.0

    def __init__(self, source=None, *, top: int = TOP, **kw) -> None:
        self.top = top
        self.breadth = Breadth()
        self.tiles = heat_map_frame(None)
        self.gainers = self.losers = self.spikes = pd.DataFrame()
        self.empty = True
        super().__init__(source, **kw)

    def build(self):
        import ipywidgets as w
        import plotly.graph_objects as go

        self.heat_map = figure_widget(go.Figure(go.Treemap(
            ids=[], labels=[], parents=[], values=[], branchvalues="total", sort=True, maxdepth=2,
            marker=dict(colors=[], colorscale=DIVERGING, cmid=0, showscale=True,
                        colorbar=dict(title="chg %", thickness=10, len=0.8)),
            texttemplate="<b>%{label}</b><br>%{customdata[0]:+.2f}%",
            hovertemplate="<b>%{label}</b> %{customdata[2]}<br>change %{customdata[0]:+.2f}%<br>"
                          "price %{customdata[1]:,.2f}<br>turnover %{value:,.0f}<extra></extra>",
            pathbar=dict(visible=True, thickness=16), tiling=dict(pad=1))), height=430, uirevision="heat-map",
            margin=dict(l=4, r=4, t=24, b=4))
        gauges = []
        for i, (name, title, ceiling) in enumerate((("sentiment", "Sentiment", 100), ("advancing", "Advancers vs decliners", 1),
                                                    ("above_sma_50", "% above SMA 50", 100),
                                                    ("above_sma_200", "% above SMA 200", 100))):
            gauges.append(go.Indicator(
                mode="gauge+number+delta" if name == "advancing" else "gauge+number", name=name, value=None,
                title=dict(text=title, font=dict(size=12)), domain=dict(x=[i / 4 + 0.02, (i + 1) / 4 - 0.02], y=[0, 1]),
                number=dict(valueformat=".1f" if name != "advancing" else ",d", font=dict(size=22)),
                delta=dict(reference=0, increasing=dict(color=UP), decreasing=dict(color=DOWN), valueformat=",d"),
                gauge=dict(axis=dict(range=[0, ceiling], tickfont=dict(size=9)), bar=dict(color=ACCENT, thickness=0.3),
                           bgcolor="#121821", borderwidth=0,
                           steps=[dict(range=[a, b], color=c) for a, b, c in SENTIMENT_STEPS] if name == "sentiment" else [])))
        self.gauges = figure_widget(go.Figure(gauges), height=200, uirevision="gauges", margin=dict(l=16, r=16, t=58, b=6))
        self.cards = w.HTML()
        self.grids = {k: w.HTML() for k in ("gainers", "losers", "spikes", "sectors")}
        for k, box in self.grids.items():
            box.add_class("m-scroll")
            box.add_class(f"m-{k}")
        titled = [w.VBox([w.HTML(f"<b style='color:{ACCENT}'>{t}</b>"), self.grids[k]], layout=w.Layout(flex="1", min_width="220px"))
                  for k, t in (("gainers", "Top gainers"), ("losers", "Top losers"), ("spikes", f"Volume spikes (≥ {SPIKE_RATIO:g}×)"),
                               ("sectors", "Sectors"))]
        return w.VBox([self.cards, self.gauges, self.heat_map, w.HBox(titled, layout=w.Layout(grid_gap="10px", flex_flow="row wrap"))])

    def update(self, force: bool = False) -> bool:
        snap = self.changed_snapshot(force)
        if snap is None:
            return False
        frame = snap.frame
        self.empty = frame.empty
        self.breadth = market_breadth(frame)
        self.tiles = heat_map_frame(frame)
        self.gainers, self.losers, self.spikes = movers(frame, self.top)
        self._draw_heat_map()
        self._draw_gauges()
        self.cards.value = self._cards_html()
        none = f'<span style="color:{MUTED}">{"no snapshot" if self.empty else "none"}</span>'
        for key, rows, cols in (("gainers", self.gainers, MOVERS), ("losers", self.losers, MOVERS),
                                ("spikes", self.spikes, SPIKES), ("sectors", self.breadth.sectors, SECTORS)):
            self.grids[key].value = render(rows, cols, table_id=f"overview-{key}") if len(rows) else none
        sync_initial_state(self.heat_map)
        sync_initial_state(self.gauges)
        return True

    # ------------------------------------------------------------------------------------
    def _draw_heat_map(self) -> None:
        t = self.tiles
        sectors = t.groupby("sector", sort=True)["turnover"].sum() if len(t) else pd.Series(dtype=float)
        counts = t.groupby("sector", sort=True).size() if len(t) else pd.Series(dtype=int)
        weighted = self.breadth.sectors.set_index("sector")["weighted_change_pct"] if len(self.breadth.sectors) else {}
        sector_change = [finite(weighted.get(s)) for s in sectors.index]
        change = t["change_pct"].to_numpy(dtype=np.float64)
        names = t["name"].fillna("").astype(str).tolist() if len(t) else []
        trace = self.heat_map.data[0]
        with self.heat_map.batch_update():
            trace.ids = list(sectors.index) + [f"{s}/{y}" for s, y in zip(t["sector"], t["symbol"])]
            trace.labels = list(sectors.index) + t["symbol"].tolist()
            trace.parents = [""] * len(sectors) + t["sector"].tolist()
            trace.values = sectors.tolist() + t["turnover"].tolist()
            # a tile without a known change is drawn neutral; its hover shows no number
            trace.marker.colors = [c if c is not None else 0.0 for c in sector_change] + np.nan_to_num(change).tolist()
            trace.customdata = [[c, None, f"{counts[s]} symbols"] for s, c in zip(sectors.index, sector_change)] + \
                [[finite(c), finite(p), html.escape(n)] for c, p, n in zip(change.tolist(), t["price"].tolist(), names)]
            self.heat_map.layout.title.text = "no snapshot" if self.empty else "Sectors by turnover (price × day volume)"

    def _draw_gauges(self) -> None:
        b = self.breadth
        g = {t.name: t for t in self.gauges.data}
        with self.gauges.batch_update():
            g["sentiment"].value = finite(b.sentiment)
            g["sentiment"].title.text = f"Sentiment<br><span style='font-size:11px;color:{ACCENT}'>{b.label or 'n/a'}</span>"
            g["advancing"].value = b.advancers
            g["advancing"].delta.reference = b.decliners
            g["advancing"].gauge.axis.range = [0, max(b.symbols, 1)]
            g["advancing"].title.text = f"Advancers vs decliners<br><span style='font-size:11px'>{b.advancers} up · " \
                                        f"{b.decliners} down · {b.unchanged} flat</span>"
            for name, value, label in (("above_sma_50", b.pct_above_sma_50, "% above SMA 50"),
                                       ("above_sma_200", b.pct_above_sma_200, "% above SMA 200")):
                g[name].value = finite(value)
                note = "price above the average" if finite(value) is not None else "no average yet"
                g[name].title.text = f"{label}<br><span style='font-size:11px'>{note}</span>"

    def _cards_html(self) -> str:
        b = self.breadth

        def num(v, spec):
            v = finite(v)
            return "–" if v is None else format(v, spec)

        share = b.up_volume / (b.up_volume + b.down_volume) * 100 if b.up_volume + b.down_volume > 0 else None
        cards = [("symbols", f"{b.symbols}"), ("A/D ratio", num(b.ad_ratio, ".2f")),
                 ("mean change %", num(b.mean_change_pct, "+.2f")), ("up volume %", num(share, ".0f")),
                 ("avg RSI", num(b.avg_rsi, ".1f")), ("52w highs / lows", f"{b.new_highs} / {b.new_lows}"),
                 ("sentiment", f"{num(b.sentiment, '.0f')} {html.escape(b.label or '')}")]
        return '<div class="m-cards">' + "".join(
            f'<div class="m-card"><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in cards) + "</div>"


def show(lake=None, **kw) -> OverviewView:
    """The market overview for ``lake`` (default: MINTEL_LAKE), displayed."""
    from IPython.display import display

    view = OverviewView(lake, **kw)
    display(view)
    return view
