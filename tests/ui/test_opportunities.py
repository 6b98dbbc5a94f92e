"""The opportunities dashboard, kernel-side: what it shows equals pandas on the lake; live arrivals
come first and marked, the user's filters survive a refresh; bad input renders, never raises."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from mintel.lake import Lake
from mintel.ui.opportunities import OpportunitiesView, OpportunityFilter, factor_text
from mintel.ui.source import Source

ORDER = {"newest": (["detected_at", "ts", "score", "symbol", "kind"], [False, False, False, True, True]),
         "score": (["score", "detected_at", "ts", "symbol", "kind"], [False, False, False, True, True])}


class Grid(HTMLParser):
    """Rows of an m-grid: each row's class and its cells' text (entities decoded)."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict] = []
        self._cell: list[str] | None = None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append({"cls": dict(attrs).get("class", ""), "cells": []})
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def body(self) -> list[dict]:
        return self.rows[1:]  # the header row first


def column(view, label: str) -> int:
    from mintel.ui.opportunities import COLUMNS

    return [c.label for c in COLUMNS].index(label)


def expected(lake: Lake, state: OpportunityFilter) -> pd.DataFrame:
    """The rows the view should list, computed with pandas from the lake."""
    o = lake.read("opportunities")
    snap = lake.snapshot()
    now = max(o["ts"].max(), snap["ts"].max()) if len(snap) else o["ts"].max()
    start = now - pd.Timedelta(minutes=state.since_minutes) if state.since_minutes else now.floor("D")
    o = o[o["ts"] >= start]
    if state.kinds:
        o = o[o["kind"].isin(state.kinds)]
    if state.min_score:
        o = o[o["score"] >= state.min_score]
    if state.sector != "All":
        o = o[o["sector"] == state.sector]
    if state.direction != "All":
        o = o[o["direction"] == state.direction]
    by, asc = ORDER[state.sort]
    return o.sort_values(by, ascending=asc)


def keys(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(frame["ts"], frame["symbol"], frame["kind"]))


def shown_cells(view) -> list[tuple]:
    """(symbol, kind, score text) of each row on screen."""
    s, k, sc = column(view, "Symbol"), column(view, "Kind"), column(view, "Score")
    return [(r["cells"][s], r["cells"][k], r["cells"][sc]) for r in Grid(view.grid.value).body()]


@pytest.fixture
def view(ui_lake):
    v = OpportunitiesView(Source(ui_lake), live=False, state=OpportunityFilter(limit=0))
    yield v
    v.close()


def test_rows_and_order_are_the_lakes_newest_first(ui_lake, view):
    want = expected(ui_lake, OpportunityFilter())
    assert len(want) > 500  # the lake really has a session of opportunities
    assert keys(view.shown) == keys(want)
    assert shown_cells(view) == [(s, k, f"{v:.1f}") for s, k, v in zip(want["symbol"], want["kind"], want["score"])]
    assert view.reads == 1 and view.error is None
    assert "m-new" not in view.grid.value  # nothing is new on the first look
    assert f'<b class="m-matched">{len(want)}</b>' in view.status.value


def test_sorted_by_score_and_limited(ui_lake, view):
    view.w_limit.value = 100
    view.w_sort.value = "score"
    want = expected(ui_lake, OpportunityFilter(sort="score")).head(100)
    assert keys(view.shown) == keys(want)
    scores = [float(c[2]) for c in shown_cells(view)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 100


def test_factor_text_lists_every_factor_escaped(ui_lake, view):
    col = column(view, "Factors")
    rows = Grid(view.grid.value).body()
    for raw, row in zip(view.shown["factors"], rows):
        factors = json.loads(raw)
        text = row["cells"][col]
        for name, value in factors.items():
            assert f"{name} {value:.1f}" in text
        assert text.count(" · ") == len(factors) - 1
    assert factor_text('{"rsi": 2, "volume": -8.5, "trend": 4}') == "volume -8.5 · trend 4.0 · rsi 2.0"
    assert factor_text('{"<b>": 1}') == "<b> 1.0"  # raw here: the grid escapes every text cell


@pytest.mark.parametrize("change", [
    {"kinds": ("breakout", "rsi_oversold")},
    {"min_score": 60.0},
    {"sector": "Financial Services"},
    {"direction": "short"},
    {"since_minutes": 15.0},
    {"kinds": ("macd_cross_up", "breakout"), "direction": "long", "min_score": 40.0, "sort": "score"},
])
def test_filters_change_rows_as_pandas_says(ui_lake, view, change):
    widgets = {"kinds": view.w_kinds, "min_score": view.w_score, "sector": view.w_sector, "direction": view.w_dir,
               "since_minutes": view.w_since, "sort": view.w_sort}
    for name, value in change.items():
        widgets[name].value = value  # as the user would
    state = OpportunityFilter(**change)
    want = expected(ui_lake, state)
    every = expected(ui_lake, OpportunityFilter())
    assert 0 < len(want) < len(every)  # the filter really filters
    assert keys(view.shown) == keys(want)
    assert [c[:2] for c in shown_cells(view)] == list(zip(want["symbol"], want["kind"]))
    assert view.state == OpportunityFilter(limit=0, **change)


def new_rows(lake: Lake, n_long: int = 2) -> pd.DataFrame:
    """Schema-conformant arrivals on the next bar: ``n_long`` long breakouts and one short one."""
    snap = lake.snapshot()
    ts = snap["ts"].max() + pd.Timedelta(minutes=1)
    symbols = snap["symbol"].tolist()[: n_long + 1]
    return pd.DataFrame({
        "ts": [ts] * len(symbols), "symbol": symbols, "kind": ["breakout"] * len(symbols),
        "direction": ["long"] * n_long + ["short"], "score": [55.0 + i for i in range(len(symbols))],
        "confidence": 0.7, "message": [f"{s} broke out" for s in symbols],
        "factors": [json.dumps({"base": 40, "range": 15.0 + i}) for i in range(len(symbols))], "interval": "1m",
        "price": 100.0, "sector": snap["sector"].tolist()[: n_long + 1],
        "detected_at": pd.Timestamp.now(tz="UTC"),
    })


def test_live_arrivals_come_first_marked_new_and_filters_stay(ui_lake, view):
    view.w_dir.value = "long"
    view.w_kinds.value = ("breakout", "macd_cross_up")
    before = keys(view.shown)
    assert view.refresh() is False and view.reads == 1  # nothing written: nothing re-read or redrawn

    arrivals = new_rows(ui_lake)
    ui_lake.append("opportunities", arrivals)
    assert view.refresh() is True
    assert view.reads == 2
    assert view.w_dir.value == "long" and view.w_kinds.value == ("breakout", "macd_cross_up")  # the user's choice stayed
    longs = arrivals[arrivals["direction"] == "long"].sort_values(["score"], ascending=False)
    rows = Grid(view.grid.value).body()
    assert [r["cells"][column(view, "Symbol")] for r in rows[:2]] == longs["symbol"].tolist()
    assert [r["cls"] for r in rows[:2]] == ["m-new", "m-new"]
    assert all(r["cls"] == "" for r in rows[2:])
    assert keys(view.shown)[2:] == before  # the old rows follow, unchanged
    assert keys(view.shown) == keys(expected(ui_lake, OpportunityFilter(kinds=("breakout", "macd_cross_up"), direction="long")))
    assert '<b class="m-new-count">2</b> new (3 arrived)' in view.status.value  # the short one is filtered out

    assert view.refresh() is False and view.reads == 2  # the marks stay until the next arrival
    assert Grid(view.grid.value).body()[0]["cls"] == "m-new"


def test_alerts_panel_shows_latest_alerts_escaped(ui_lake, view):
    before = ui_lake.read("alerts")  # ingestion raised some already (the service's alert engine)
    now = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1)  # newer than any of them
    alerts = pd.DataFrame({"ts": [now - pd.Timedelta(seconds=30), now], "symbol": ["TCS", None],
                           "kind": ["breakout", "provider_down"], "direction": ["long", None], "score": [80.0, None],
                           "message": ["TCS <b>breakout</b>", "yahoo unavailable"], "sinks": "console", "status": "sent",
                           "detail": None})
    ui_lake.append("alerts", alerts)
    assert view.refresh() is True
    assert view.reads == 1  # alerts alone do not re-read the opportunities
    rows = Grid(view.alert_panel.value).body()
    assert [r["cells"][-1] for r in rows][:2] == ["yahoo unavailable", "TCS <b>breakout</b>"]  # newest first
    assert "TCS &lt;b&gt;breakout&lt;/b&gt;" in view.alert_panel.value
    assert f'<b class="m-alert-count">{min(len(before) + 2, 15)}</b> alerts' in view.status.value  # the 15 shown


def test_no_alerts_is_said(tmp_path, ui_lake):
    import shutil

    shutil.rmtree(ui_lake.root / "alerts", ignore_errors=True)
    v = OpportunitiesView(ui_lake, live=False)
    assert "no alerts" in v.alert_panel.value
    v.close()


def test_malformed_factors_shown_raw_and_escaped(ui_lake, view):
    bad = new_rows(ui_lake, n_long=2)
    bad["factors"] = ['{"rsi": 12', "<script>alert(1)</script>", "[1, 2]"]
    ui_lake.append("opportunities", bad)
    assert view.refresh() is True and view.error is None
    col = column(view, "Factors")
    texts = {r["cells"][column(view, "Symbol")]: r["cells"][col] for r in Grid(view.grid.value).body()[:3]}
    assert sorted(texts.values()) == sorted(bad["factors"])
    assert "<script>" not in view.grid.value and "&lt;script&gt;" in view.grid.value


def test_empty_lake_renders_an_empty_state(tmp_path):
    v = OpportunitiesView(Source(Lake(tmp_path / "empty", durable=False)), live=False)
    assert v.error is None and v.matched == 0 and len(v.shown) == 0
    assert "no opportunities yet" in v.grid.value
    assert "no alerts" in v.alert_panel.value
    v.w_since.value = 15.0
    v.w_score.value = 50.0
    assert v.error is None and "no opportunities" in v.grid.value
    v.close()


def test_first_rows_into_an_empty_lake_are_new(tmp_path, ui_lake):
    lake = Lake(tmp_path / "empty", durable=False)
    v = OpportunitiesView(Source(lake), live=False)
    rows = new_rows(ui_lake)
    lake.append("opportunities", rows)
    assert v.refresh() is True
    assert [r["cls"] for r in Grid(v.grid.value).body()] == ["m-new"] * len(rows)
    assert keys(v.shown) == keys(rows.sort_values("score", ascending=False))
    v.close()


def test_factor_text_never_raises():
    for raw in (None, np.nan, "", "null", "3", '"x"', "{", '{"a": null, "b": "<i>", "c": true}', "{" * 5000):
        assert isinstance(factor_text(raw), str)
    assert factor_text('{"a": null, "b": "<i>", "c": 0.25}') == "c 0.2 · a – · b <i>"


def test_today_and_since_are_market_time(ui_lake):
    """"today" is the newest bar's date (yesterday's rows are read but not listed); "last N min"
    counts back from the newest bar the lake has, even when it has no opportunity on it."""
    yesterday = new_rows(ui_lake).assign(ts=lambda f: f["ts"] - pd.Timedelta(days=1),
                                         detected_at=lambda f: f["detected_at"] - pd.Timedelta(days=1))
    ui_lake.append("opportunities", yesterday)
    v = OpportunitiesView(Source(ui_lake), live=False, state=OpportunityFilter(limit=0))
    assert len(v.frame) == len(ui_lake.read("opportunities"))  # two partitions read
    assert keys(v.shown) == keys(expected(ui_lake, OpportunityFilter()))
    assert not set(keys(yesterday)) & set(keys(v.shown))

    snap = ui_lake.snapshot()
    ui_lake.write_snapshot(snap.assign(ts=snap["ts"] + pd.Timedelta(minutes=10)))  # the market moved on, quietly
    v.w_since.value = 15.0
    want = expected(ui_lake, OpportunityFilter(since_minutes=15.0))
    assert 0 < len(want) < len(expected(ui_lake, OpportunityFilter(since_minutes=15.0 + 10.0)))
    assert keys(v.shown) == keys(want)
    v.close()


def test_a_late_detection_on_an_older_bar_is_newest(ui_lake, view):
    late = new_rows(ui_lake, n_long=0).assign(ts=lambda f: f["ts"] - pd.Timedelta(minutes=20))
    ui_lake.append("opportunities", late)
    assert view.refresh() is True
    assert keys(view.shown)[0] == keys(late)[0]
    assert Grid(view.grid.value).body()[0]["cls"] == "m-new"
    assert keys(view.shown) == keys(expected(ui_lake, OpportunityFilter()))
