"""Plotly pieces the chart views share: figure widgets in the house template, display times, gaps
between sessions, the red/green scale and plain values for gauges.

Figures are ``FigureWidget``s built once; views set their traces' data in place inside
``fig.batch_update()``, so a refresh sends the browser only what changed and keeps the user's zoom
(``uirevision``).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

from mintel.analytics.keys import DEFAULT_TZ, is_intraday
from mintel.errors import DataError
from mintel.schema import finite  # noqa: F401 - the charts' name for it (plotly shows None as blank)
from mintel.ui.theme import DOWN, UP, plotly_template

# Red below 0, green above, a dark neutral at 0 (plotly centres it with ``cmid=0``).
DIVERGING = [[0.0, DOWN], [0.5, "#2a323c"], [1.0, UP]]
MAX_BREAKS = 80  # rangebreaks beyond this slow the browser down; the widest gaps are kept


def figure_widget(fig=None, *, height: int, uirevision: str = "mintel", **layout):
    """``fig`` (or an empty figure) as a dense, dark ``FigureWidget``."""
    import plotly.graph_objects as go

    widget = go.FigureWidget(fig) if fig is not None else go.FigureWidget()
    layout = {"margin": dict(l=44, r=12, t=26, b=20), "showlegend": False, **layout}
    widget.update_layout(template=plotly_template(), height=height, uirevision=uirevision, **layout)
    return widget


def interval_step(interval: str) -> pd.Timedelta:
    """The length of one bar (``1m``, ``5m``, ``1h``, ``1d``; a week or month counts as 7 or 30 days)."""
    m = re.fullmatch(r"(\d+)(s|m|h|d|wk|mo)", interval)
    if m is None:
        return pd.Timedelta(days=1)
    unit = {"s": "s", "m": "min", "h": "h", "d": "D", "wk": "7D", "mo": "30D"}[m.group(2)]
    return int(m.group(1)) * pd.Timedelta(unit if unit[0].isdigit() else f"1{unit}")


@lru_cache(maxsize=256)
def exchange_tz(symbol: str) -> str:
    """The time zone ``symbol``'s intraday bars are shown in: its exchange's (bundled lists), else the default."""
    from mintel import calendar
    from mintel.universe import bundled_metadata

    meta = bundled_metadata()
    exchange = meta.loc[meta["symbol"] == symbol, "exchange"]
    try:
        return calendar.timezone(exchange.iloc[0]) if len(exchange) and exchange.iloc[0] else DEFAULT_TZ
    except DataError:
        return DEFAULT_TZ


def display_times(ts: pd.Series | pd.DatetimeIndex, interval: str, tz: str) -> pd.DatetimeIndex:
    """Bar times as shown: intraday in the exchange's time zone, daily as the (UTC) date; tz-naive,
    because plotly draws naive times as they are."""
    idx = pd.DatetimeIndex(ts)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    if is_intraday(interval):
        return idx.tz_convert(tz).tz_localize(None)
    return idx.tz_convert("UTC").tz_localize(None)


def gap_breaks(x: pd.DatetimeIndex, interval: str, limit: int = MAX_BREAKS) -> list[dict]:
    """Axis rangebreaks hiding the time between bars more than 1.5 bars apart (nights, weekends,
    holidays), so candles sit next to each other."""
    if len(x) < 2:
        return []
    step = interval_step(interval)
    t = x.asi8
    gap = np.diff(t)
    wide = np.flatnonzero(gap > 1.5 * step.value)
    if len(wide) > limit:
        wide = np.sort(wide[np.argsort(gap[wide])[-limit:]])
    return [dict(bounds=[x[i] + step, x[i + 1]]) for i in wide.tolist()]


def segments(levels: pd.DataFrame, x0, x1) -> tuple[list, list, list]:
    """Horizontal lines from ``x0`` to ``x1`` at each row's ``level`` as one scatter trace's x, y, text
    (segments separated by None)."""
    xs, ys, text = [], [], []
    for level, touches in zip(levels["level"].tolist(), levels["touches"].tolist()):
        label = f"{level:,.2f} · {touches} touches"
        xs += [x0, x1, None]
        ys += [level, level, None]
        text += [label, label, None]
    return xs, ys, text


def sync_initial_state(fig) -> None:
    """Make what a browser gets on connecting the figure as it is now.

    plotly's FigureWidget sends later changes as one-off restyle messages and hands a newly
    connected page only the figure it was created with; a Voilà page connects after the first
    refresh, so without this it would show empty axes until the next change. Open pages ignore
    these two values (they follow the messages)."""
    from copy import deepcopy

    fig._widget_data = deepcopy(fig._data)
    fig._widget_layout = deepcopy(fig._layout_obj._props)
