"""The sections of the papermill reports (``notebooks/reports``): each a function of one ``ReportData``
returning a plotly figure, an HTML fragment or a DataFrame, so the notebooks stay a few lines a cell
and tests check the figures against the analytics.

``load`` reads the bars once and runs the analytics on them (``scan``, ``opportunities``,
``volume_analysis``; breadth and sentiment are ``market_breadth`` of the scan, the figures
``mintel sentiment`` prints). ``show`` displays any section; ``setup`` embeds plotly.js and the
stylesheet once, so an exported report draws its charts offline. ``record`` leaves the headline
figures in the executed notebook, where ``mintel.reports`` reads them for the report index.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mintel.analytics.breadth import Breadth, market_breadth
from mintel.analytics.keys import is_intraday
from mintel.analytics.scan import DEFAULT_LOOKBACK, enrich, load_bars, opportunities, scan, volume_analysis
from mintel.errors import DataError
from mintel.lake import Lake
from mintel.ui.table import Column, render

HEADLINE_MIME = "application/vnd.mintel.headline+json"  # read back by mintel.reports for the index
BREAKOUT_KINDS = ("breakout", "high_52w", "resistance_break", "breakdown", "low_52w", "support_break")
CHART_BARS = 120  # bars per top-pick chart
# JupyterLab lays rendered tables out fixed: the grid sizes its columns to the text instead, and long
# text (factors, messages) wraps.
REPORT_CSS = ".mintel table.m-grid { table-layout:auto; } .mintel table.m-grid td.t { white-space:normal; }"

OPPORTUNITY_COLUMNS = [Column("symbol", "Symbol"), Column("sector", "Sector"), Column("kind", "Signal"),
                       Column("direction", "Dir"), Column("score", "Score", ".1f"), Column("price", "Price", ",.2f"),
                       Column("confidence", "Conf", ".2f"), Column("factor_text", "Factors (points)"),
                       Column("message", "Why")]
VOLUME_COLUMNS = [Column("symbol", "Symbol"), Column("sector", "Sector"), Column("close", "Close", ",.2f"),
                  Column("change_pct", "Chg %", "+.2f", signed=True),
                  Column("volume_ratio", "Vol×", ".2f", title="volume / its usual volume"),
                  Column("volume_z", "Vol z", "+.2f"), Column("volume", "Volume", ",.0f")]
BREAKOUT_COLUMNS = [Column("symbol", "Symbol"), Column("sector", "Sector"), Column("kind", "Signal"),
                    Column("direction", "Dir"), Column("price", "Price", ",.2f"), Column("score", "Score", ".1f"),
                    Column("message", "Why")]
PART_COLUMNS = [Column("part", "Part"), Column("value", "Value 0..1", ".2f"), Column("weight", "Weight", ".1f"),
                Column("contribution", "Points", ".1f")]
SECTOR_COLUMNS = [Column("sector", "Sector"), Column("symbols", "#", ",.0f"), Column("advancers", "Adv", ",.0f"),
                  Column("decliners", "Dec", ",.0f"),
                  Column("weighted_change_pct", "Chg %", "+.2f", signed=True, title="turnover-weighted change"),
                  Column("mean_change_pct", "Mean chg %", "+.2f", signed=True),
                  Column("pct_above_sma_50", ">SMA50 %", ".0f"), Column("avg_rsi", "RSI", ".1f")]
MOVER_COLUMNS = [Column("symbol", "Symbol"), Column("sector", "Sector"), Column("price", "Price", ",.2f"),
                 Column("change_pct", "Chg %", "+.2f", signed=True), Column("volume_ratio", "Vol×", ".2f"),
                 Column("rsi", "RSI", ".1f"), Column("score", "Score", ".1f")]
SIGNAL_COUNT_COLUMNS = [Column("kind", "Signal"), Column("direction", "Dir"), Column("count", "Symbols", ",.0f"),
                        Column("best_score", "Best score", ".1f"), Column("symbols", "Top symbols")]


@dataclass
class ReportData:
    """What every section draws from: the bars read once and the analytics run on them."""

    lake: Lake
    interval: str
    universe: str | None
    as_of: pd.Timestamp  # the newest bar in the report
    bars: pd.DataFrame
    scan: pd.DataFrame  # one row per symbol, best score first
    opportunities: pd.DataFrame  # standing on each symbol's last bar, best first
    breadth: Breadth
    volume: pd.DataFrame  # each symbol's latest volume analysis, most unusual first


def load(lake=None, universe: str | None = None, interval: str = "1d", as_of=None, lookback=None) -> ReportData:
    """The report's data: ``interval`` bars of ``universe`` (None: every symbol in the lake) up to
    ``as_of`` (None: the newest), ``lookback`` of history (None: 420 days daily, 10 days intraday)."""
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    meta = None
    if universe:
        from mintel.universe import load_universe

        meta = load_universe(universe)  # DataError naming an unknown universe
    symbols = None if meta is None else list(meta["symbol"])
    if as_of is None:
        bars = load_bars(lake, interval, symbols, lookback)
    else:
        end = _utc(as_of, "as_of")
        span = pd.Timedelta(lookback) if lookback else DEFAULT_LOOKBACK["intraday" if is_intraday(interval) else "daily"]
        bars = lake.read_bars(symbols, interval, start=end - span, end=end)
    if bars.empty:
        what = f"universe {universe}" if universe else "any symbol"
        until = f" up to {as_of}" if as_of is not None else ""
        raise DataError(f"{lake.location}: no {interval} bars of {what}{until} (empty lake?)")
    frame = scan(bars, interval, universe=meta)
    return ReportData(
        lake=lake, interval=interval, universe=universe, as_of=pd.Timestamp(bars["ts"].max()), bars=bars, scan=frame,
        opportunities=opportunities(bars, interval, universe=meta), breadth=market_breadth(frame),
        volume=volume_analysis(None, bars, interval),
    )


def _utc(value, what: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError(f"{what} {value!r}: not a time (e.g. 2026-11-24 or 2026-11-24T10:00Z)") from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


# ---------------------------------------------------------------------- display


def setup() -> None:
    """Display the stylesheet and the full plotly.js once: every later chart is a ``<div>`` that
    draws with it, so the executed notebook and its HTML export need no network."""
    from IPython.display import HTML, display
    from plotly.offline import get_plotlyjs

    from mintel.ui.theme import CSS, plotly_template

    plotly_template()
    display(HTML(f"<style>{CSS}{REPORT_CSS}</style>\n<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>\n"
                 f"<script type=\"text/javascript\">{get_plotlyjs()}</script>"))


def figure_html(fig) -> str:
    """A figure as a ``<div>`` and its script, without plotly.js (``setup`` embedded it)."""
    return fig.to_html(include_plotlyjs=False, full_html=False, config={"displaylogo": False, "responsive": True})


def table(frame: pd.DataFrame, columns, empty: str = "none") -> str:
    """``frame`` as the house grid (every text cell escaped), or a line saying there is ``empty``."""
    if frame is None or frame.empty:
        return f'<div class="mintel"><p class="m-bar">{html.escape(empty)}</p></div>'
    return f'<div class="mintel">{render(frame, columns)}</div>'


def show(*parts) -> None:
    """Display each part: a plotly figure, an HTML string or (frame, columns) as a grid."""
    from IPython.display import HTML, display

    for part in parts:
        if isinstance(part, tuple):
            part = table(*part)
        display(HTML(part if isinstance(part, str) else figure_html(part)))


def record(headline: dict) -> None:
    """Leave the headline figures in the notebook's outputs (an export shows nothing of them)."""
    from IPython.display import display

    display({HEADLINE_MIME: headline}, raw=True)


# ---------------------------------------------------------------------- sections


def _num(v, spec: str) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "–"
    return format(v, spec) if math.isfinite(v) else "–"


def _cards(cards: list[tuple[str, str]]) -> str:
    return '<div class="mintel"><div class="m-cards">' + "".join(
        f'<div class="m-card"><div class="k">{html.escape(k)}</div><div class="v">{html.escape(v)}</div></div>'
        for k, v in cards) + "</div></div>"


def title_html(data: ReportData, title: str) -> str:
    """One line: what the report is, of which universe and interval, as of which bar."""
    what = data.universe or "every symbol in the lake"
    return (f'<div class="mintel"><h2>{html.escape(title)}</h2><div class="m-bar"><span>universe <b>{html.escape(what)}</b>'
            f'</span><span>interval <b>{html.escape(data.interval)}</b></span><span>as of <b>{data.as_of:%Y-%m-%d %H:%M} UTC'
            f'</b></span><span>lake <b>{html.escape(data.lake.location)}</b></span></div></div>')


def summary_html(data: ReportData, min_score: float = 0.0) -> str:
    """The market in cards: symbols, sentiment, advancers/decliners, averages, 52-week extremes, opportunities."""
    b = data.breadth
    good = data.opportunities[data.opportunities["score"] >= min_score]
    pick = good.iloc[0] if len(good) else None
    return _cards([
        ("symbols", f"{b.symbols}"), ("sentiment", f"{_num(b.sentiment, '.1f')} {b.label or ''}".strip()),
        ("advancers / decliners", f"{b.advancers} / {b.decliners}"), ("A/D ratio", _num(b.ad_ratio, ".2f")),
        ("mean change %", _num(b.mean_change_pct, "+.2f")), ("above SMA 50 %", _num(b.pct_above_sma_50, ".0f")),
        ("above SMA 200 %", _num(b.pct_above_sma_200, ".0f")), ("avg RSI", _num(b.avg_rsi, ".1f")),
        ("52w highs / lows", f"{b.new_highs} / {b.new_lows}"), (f"opportunities ≥ {min_score:g}", f"{len(good)}"),
        ("top pick", "–" if pick is None else f"{pick['symbol']} {_num(pick['score'], '.0f')}"),
    ])


def breadth_figure(data: ReportData):
    """A sentiment gauge beside the points each breadth part gives the score."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from mintel.ui.theme import ACCENT, DOWN, UP, plotly_template

    b = data.breadth
    parts = b.parts
    fig = make_subplots(rows=1, cols=2, column_widths=[0.35, 0.65], specs=[[{"type": "indicator"}, {"type": "xy"}]])
    fig.add_trace(go.Indicator(mode="gauge+number", value=b.sentiment if math.isfinite(b.sentiment) else None,
                               title={"text": f"Sentiment · {b.label or 'n/a'}"},
                               gauge={"axis": {"range": [0, 100]}, "bar": {"color": ACCENT}}), 1, 1)
    colours = [UP if v >= 0.5 else DOWN for v in np.nan_to_num(parts["value"].to_numpy(dtype=float), nan=0.5)]
    fig.add_trace(go.Bar(x=parts["contribution"], y=parts["part"], orientation="h", marker_color=colours,
                         customdata=parts["value"], hovertemplate="%{y}: %{x:.1f} points (value %{customdata:.2f})"
                                                                   "<extra></extra>"), 1, 2)
    fig.update_layout(template=plotly_template(), height=300, showlegend=False, margin=dict(l=40, r=20, t=50, b=40))
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_xaxes(title_text="points of the score", row=1, col=2)
    return fig


def sentiment_parts(data: ReportData) -> pd.DataFrame:
    return data.breadth.parts


def sector_table(data: ReportData) -> pd.DataFrame:
    """Per sector breadth, best turnover-weighted change first."""
    return data.breadth.sectors


def sector_heat_map(data: ReportData):
    """Sectors and their symbols sized by turnover (price × volume), coloured by change %."""
    import plotly.graph_objects as go

    from mintel.ui.charts import DIVERGING
    from mintel.ui.overview import heat_map_frame
    from mintel.ui.theme import plotly_template

    t = heat_map_frame(data.scan)
    sectors = t.groupby("sector", sort=True)["turnover"].sum()
    weighted = data.breadth.sectors.set_index("sector")["weighted_change_pct"] if len(data.breadth.sectors) else {}
    sector_change = [float(np.nan_to_num(weighted.get(s, 0.0))) for s in sectors.index]
    change = np.nan_to_num(t["change_pct"].to_numpy(dtype=np.float64))
    span = max(1.0, float(np.abs(change).max()) if len(change) else 1.0)
    fig = go.Figure(go.Treemap(
        ids=list(sectors.index) + [f"{s}/{y}" for s, y in zip(t["sector"], t["symbol"])],
        labels=list(sectors.index) + t["symbol"].tolist(), parents=[""] * len(sectors) + t["sector"].tolist(),
        values=sectors.tolist() + t["turnover"].tolist(), branchvalues="total",
        marker=dict(colors=sector_change + change.tolist(), colorscale=DIVERGING, cmid=0, cmin=-span, cmax=span,
                    colorbar=dict(title="chg %")),
        customdata=sector_change + change.tolist(), texttemplate="%{label}<br>%{customdata:+.2f}%",
        hovertemplate="%{label}: %{customdata:+.2f}%<extra></extra>"))
    fig.update_layout(template=plotly_template(), height=520, title="Sectors by turnover (price × volume)",
                      margin=dict(l=10, r=10, t=36, b=10))
    return fig


def top_opportunities(data: ReportData, min_score: float = 0.0, top_n: int = 10) -> pd.DataFrame:
    """The best ``top_n`` opportunities scoring at least ``min_score``, with their factors as text."""
    from mintel.ui.opportunities import factor_text

    o = data.opportunities
    o = o[o["score"] >= min_score].head(int(top_n)).reset_index(drop=True)
    return o.assign(factor_text=o["factors"].map(factor_text) if len(o) else pd.Series(dtype=object))


def top_picks(top: pd.DataFrame) -> list[str]:
    """The symbols of the top opportunities, best first, each once."""
    return list(dict.fromkeys(top["symbol"].tolist()))


def unusual_volume(data: ReportData, top_n: int = 10) -> pd.DataFrame:
    """Symbols whose latest volume is unusual (ratio ≥ 2 or z ≥ 2), most unusual first."""
    v = data.volume[data.volume["unusual"].fillna(False).astype(bool)]
    meta = data.scan.set_index("symbol")
    return v.head(int(top_n)).assign(sector=lambda f: f["symbol"].map(meta["sector"]),
                                     change_pct=lambda f: f["symbol"].map(meta["change_pct"])).reset_index(drop=True)


def breakouts(data: ReportData, top_n: int | None = None) -> pd.DataFrame:
    """Channel, 52-week and support/resistance breaks standing on the last bar, best score first."""
    o = data.opportunities
    o = o[o["kind"].isin(BREAKOUT_KINDS)].reset_index(drop=True)
    return o if top_n is None else o.head(int(top_n))


def pick_chart(data: ReportData, symbol: str, bars: int = CHART_BARS):
    """A top pick's last ``bars`` candles with SMA 20/50 and Bollinger bands, and its volume below."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from mintel.ui.charts import display_times, exchange_tz, gap_breaks
    from mintel.ui.theme import ACCENT, DOWN, MUTED, UP, plotly_template

    e = enrich(data.bars[data.bars["symbol"] == symbol], data.interval).tail(int(bars))
    x = display_times(e["ts"], data.interval, exchange_tz(symbol))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03)
    fig.add_trace(go.Candlestick(x=x, open=e["open"], high=e["high"], low=e["low"], close=e["close"], name=symbol,
                                 increasing_line_color=UP, decreasing_line_color=DOWN), 1, 1)
    for col, colour, dash in (("sma_20", ACCENT, None), ("sma_50", "#5fa8d3", None), ("bb_upper", MUTED, "dot"),
                              ("bb_lower", MUTED, "dot")):
        fig.add_trace(go.Scatter(x=x, y=e[col], name=col, mode="lines", line=dict(color=colour, width=1, dash=dash)), 1, 1)
    up = (e["close"] >= e["open"]).to_numpy()
    fig.add_trace(go.Bar(x=x, y=e["volume"], name="volume", marker_color=np.where(up, UP, DOWN).tolist()), 2, 1)
    o = data.opportunities[data.opportunities["symbol"] == symbol]  # best first
    signals = " · ".join(f"{k} {_num(v, '.0f')}" for k, v in zip(o["kind"], o["score"])) or "no signal"
    fig.update_layout(template=plotly_template(), height=420, showlegend=False, xaxis_rangeslider_visible=False,
                      title=f"{symbol} · {signals}")
    fig.update_xaxes(rangebreaks=gap_breaks(x, data.interval))
    return fig


# ---------------------------------------------------------------------- close report


def movers(data: ReportData, top_n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(gainers, losers) of the session: largest change first, ``top_n`` each."""
    from mintel.ui.overview import movers as overview_movers

    gainers, losers, _ = overview_movers(data.scan, int(top_n))
    return gainers, losers


def signal_counts(data: ReportData, per_kind: int = 5) -> pd.DataFrame:
    """How many symbols each detector fired on at the session's last bar, with the best few."""
    o = data.opportunities
    if o.empty:
        return pd.DataFrame(columns=["kind", "direction", "count", "best_score", "symbols"])
    g = o.groupby("kind", sort=False)
    out = g.agg(direction=("direction", "first"), count=("symbol", "nunique"), best_score=("score", "max"))
    out["symbols"] = g["symbol"].agg(lambda s: ", ".join(list(dict.fromkeys(s))[:per_kind]))
    return out.reset_index().sort_values(["count", "kind"], ascending=[False, True], kind="stable").reset_index(drop=True)


def extremes(data: ReportData) -> pd.DataFrame:
    """Symbols at a new 52-week high or low on the last bar."""
    s = data.scan
    hit = (s["new_high_52w"].fillna(0) > 0) | (s["new_low_52w"].fillna(0) > 0)
    return s[hit].sort_values("change_pct", ascending=False, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------- headline


def headline(data: ReportData, top: pd.DataFrame | None = None, min_score: float = 0.0) -> dict:
    """The figures the report index lists (``top``: the top opportunities shown): plain JSON values only."""
    b = data.breadth
    count = int((data.opportunities["score"] >= min_score).sum())
    pick = top.iloc[0] if top is not None and len(top) else None
    return json.loads(json.dumps({
        "universe": data.universe, "interval": data.interval,
        "as_of": data.as_of.isoformat().replace("+00:00", "Z"), "symbols": b.symbols,
        "sentiment": None if not math.isfinite(b.sentiment) else b.sentiment, "label": b.label,
        "advancers": b.advancers, "decliners": b.decliners, "opportunities": count,
        "top_pick": None if pick is None else pick["symbol"],
        "top_score": None if pick is None else float(pick["score"]),
        "top_kind": None if pick is None else pick["kind"],
    }))
