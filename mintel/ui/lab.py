"""The signal lab's notebook pieces: the scorecard grid, equity curves, return distributions, the
parameter-sweep heat map and an explorer (ipywidgets) that ties them to a choice of detectors.

Figures are plain plotly figures in the house template, so they render in JupyterLab, in a Voilà
page and in a papermill report's HTML export alike; the numbers all come from ``mintel.lab``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mintel.lab import SignalLab
from mintel.ui.table import Column, render
from mintel.ui.theme import ACCENT, MUTED, plotly_template

SCORECARD_COLUMNS = [
    Column("detector", "detector"), Column("direction", "dir"), Column("signals", "signals", ",.0f"),
    Column("hit_rate", "hit rate", ".1%", title="share of signals whose direction-adjusted return at the holding period is > 0"),
    Column("avg_return_1", "ret 1", "+.2%", True), Column("avg_return_5", "ret 5", "+.2%", True),
    Column("avg_return_20", "ret 20", "+.2%", True),
    Column("avg_excess_5", "excess 5", "+.2%", True, "direction x (return - the universe's average), 5 bars"),
    Column("median_excess_5", "med excess 5", "+.2%", True), Column("trades", "trades", ",.0f"),
    Column("total_return", "total", "+.1%", True), Column("sharpe", "sharpe", "+.2f", True),
    Column("max_drawdown", "max dd", ".1%"),
    Column("baseline_hit_rate", "base hit", ".1%", title="random entries, as many, same directions"),
    Column("baseline_avg_return_5", "base ret 5", "+.2%", True), Column("baseline_sharpe", "base sharpe", "+.2f", True),
]


def load(lake=None, universe=None, interval: str = "1d", start=None, end=None, **kw) -> SignalLab:
    """The lab on ``lake``'s history (None: ``MINTEL_LAKE``, else data/lake); ``kw``: ``SignalLab``'s."""
    from mintel.config import load_config
    from mintel.lake import Lake

    settings = load_config()
    source = Lake(lake) if lake is not None else Lake()
    return SignalLab.from_lake(source, universe, interval, start, end, settings=settings, **kw)


def scorecard_html(card: pd.DataFrame) -> str:
    """The scorecard as the house grid, best Sharpe first."""
    card = card.sort_values("sharpe", ascending=False, na_position="last")
    return f'<div class="mintel">{render(card.assign(symbol=card["detector"]), SCORECARD_COLUMNS)}</div>'


def _figure(height: int, title: str, **layout):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(template=plotly_template(), height=height, title=dict(text=title, font=dict(size=13)),
                      margin=dict(l=50, r=20, t=36, b=36), **layout)
    return fig


def equity_figure(lab: SignalLab, detectors, min_score: float | None = None, hold: int | None = None):
    """Each detector's portfolio value (starting at 1) beside its random-entry baseline (dotted)."""
    eq = lab.equity(detectors, min_score, hold)
    fig = _figure(380, "Equity: detector (solid) vs random entries (dotted)", showlegend=True)
    for name in eq.columns:
        base = name.endswith(":baseline")
        fig.add_scatter(x=eq.index, y=eq[name], name=name, mode="lines",
                        line=dict(width=1 if base else 1.6, dash="dot" if base else "solid"), opacity=0.6 if base else 1)
    return fig


def distribution_figure(lab: SignalLab, detector, h: int | None = None, min_score: float | None = None):
    """Histogram of one detector's direction-adjusted ``h``-bar returns against its baseline's."""
    r = lab.returns(detector, h, min_score).dropna(subset=["return"])
    kind = str(r["detector"].iloc[0]) if len(r) else str(detector)
    fig = _figure(320, f"{kind}: {h or lab.hold}-bar returns, direction-adjusted", showlegend=True, barmode="overlay")
    for sample, color in (("baseline", MUTED), ("signal", ACCENT)):
        x = r.loc[r["sample"] == sample, "return"]
        lo, hi = np.nanpercentile(r["return"], [0.5, 99.5]) if len(r) else (-0.1, 0.1)
        fig.add_histogram(x=x.clip(lo, hi), name=f"{sample} (n={len(x):,})", histnorm="probability",
                          nbinsx=60, opacity=0.6, marker_color=color)
    fig.add_vline(x=0, line=dict(color=MUTED, width=1))
    fig.update_xaxes(tickformat=".1%")
    return fig


def sweep_figure(grid: pd.DataFrame, metric: str = "sharpe", detector: str = ""):
    """A heat map of ``SignalLab.sweep``: holding period down, score threshold across."""
    from mintel.ui.charts import DIVERGING

    fig = _figure(320, f"{detector} {metric}: holding period x score threshold".strip())
    z = grid.to_numpy(dtype=np.float64)
    fig.add_heatmap(z=z, x=[f"≥ {c:g}" for c in grid.columns], y=[f"{i} bars" for i in grid.index],
                    colorscale=DIVERGING, zmid=0 if metric != "trades" else None,
                    text=np.vectorize(lambda v: "" if v != v else f"{v:.2f}")(z), texttemplate="%{text}")
    fig.update_xaxes(title="min score", type="category")
    fig.update_yaxes(title="hold", type="category")
    return fig


def explorer(lab: SignalLab, detectors=None, *, run: bool = False):
    """Pick detectors, holding period and score threshold; Run shows the scorecard, the equity curves
    and the return distribution of the first detector picked (``run``: once now; a scheduled,
    non-interactive run leaves it for the reader, since the sections above show the same)."""
    import ipywidgets as w

    from mintel.analytics.detectors import DETECTORS, kinds_of
    from mintel.report_views import show as display
    from mintel.ui.theme import style

    names = list(DETECTORS)
    pick = w.SelectMultiple(options=names, value=tuple(kinds_of(detectors))[:3] or tuple(names[:3]), rows=8,
                            description="detectors")
    hold = w.IntSlider(value=lab.hold, min=1, max=40, description="hold (bars)")
    score = w.FloatSlider(value=0, min=0, max=100, step=5, description="min score")
    button = w.Button(description="Run", button_style="warning")
    out = w.Output()

    def show(_=None) -> None:
        out.clear_output(wait=True)
        with out:
            chosen, h, m = list(pick.value), hold.value, score.value or None
            display(scorecard_html(lab.scorecard(chosen, m, h)), equity_figure(lab, chosen, m, h),
                    distribution_figure(lab, chosen[0], h, m))

    button.on_click(show)
    box = w.VBox([style(), w.HBox([pick, w.VBox([hold, score, button])]), out])
    box.add_class("mintel")
    if run:  # (the button was once named `run` too, which made every papermill run compute here and hang)
        show()
    return box
