"""The health dashboard, kernel-side: its figures are `mintel health`'s, its chart is the metrics
table, its data ages and lake sizes are pandas on the snapshot and `Lake.stats()`; an empty lake
renders."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from mintel.lake import Lake
from mintel.status import health
from mintel.ui.health import HealthView
from mintel.ui.source import Source

WINDOW = 10.0**7  # minutes: every metric of the test lake, however long the session has been running


class Grid(HTMLParser):
    """Rows of an m-grid as lists of cell texts (entities decoded), header first."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def records(self) -> list[dict]:
        head, *body = self.rows
        return [dict(zip(head, r)) for r in body]


def cards(markup: str) -> dict[str, str]:
    return dict(re.findall(r'data-key="([^"]+)"><div class="v">([^<]*)</div>', markup))


def provider_rows(now: pd.Timestamp) -> pd.DataFrame:
    """Three reports from each of two providers; twelvedata's breaker opens at the last one."""
    rows = []
    for i in range(3):
        ts = now - pd.Timedelta(seconds=60 * (3 - i))
        rows.append(dict(ts=ts, scope="provider", name="yahoo", requests=10 * (i + 1), errors=i, rate_limited=0,
                         capacity_per_min=120.0, used_per_min=30.0 + i, error_rate=i / (10 * (i + 1)),
                         latency_ms_p50=80.0 + i, latency_ms_p95=240.0 + i, state="closed"))
        rows.append(dict(ts=ts, scope="provider", name="twelvedata", requests=5 * (i + 1), errors=2 * i, rate_limited=i,
                         capacity_per_min=8.0, used_per_min=7.5, error_rate=0.5 * i / 2, latency_ms_p50=300.0,
                         latency_ms_p95=900.0 + 10 * i, state="open" if i == 2 else "closed"))
    return pd.DataFrame(rows)


@pytest.fixture
def view(ui_lake):
    ui_lake.append("metrics", provider_rows(pd.Timestamp.now(tz="UTC")))
    v = HealthView(Source(ui_lake), live=False, window_minutes=WINDOW, recompute_s=1e9)
    yield v
    v.close()


def test_summary_and_providers_are_mintel_health(ui_lake, view):
    want = health(ui_lake, window_minutes=WINDOW, now=view.now)
    assert want.summary["cycles"] == 80 and len(want.providers) == 2  # not an empty comparison
    assert view.health.summary == want.summary
    pd.testing.assert_frame_equal(view.health.providers, want.providers)

    s = want.summary
    shown = cards(view.cards.value)
    assert shown["cycles"] == f"{s['cycles']:,}"
    assert shown["rows_per_s"] == f"{s['rows_per_s']:,.0f}"
    assert shown["rows_written"] == f"{s['rows_written']:,}"
    assert shown["rows_quarantined"] == f"{s['rows_quarantined']:,}"
    assert shown["processing_ms_p95"] == f"{s['processing_ms_p95']:,.0f}"
    assert shown["last_cycle_at"] == s["last_cycle_at"][11:19]
    assert shown["lake_files"] == f"{s['lake_files']:,}"

    grid = {r["Provider"]: r for r in Grid(view.providers.value).records()}
    assert sorted(grid) == ["twelvedata", "yahoo"]
    last = provider_rows(pd.Timestamp.now(tz="UTC")).groupby("name").tail(1).set_index("name")  # the latest reports
    for name, r in grid.items():
        assert r["Breaker"] == last.loc[name, "state"]
        assert r["Requests"] == f"{last.loc[name, 'requests']:,}"
        assert r["Errors"] == f"{last.loc[name, 'errors']}"
        assert r["Rate ltd"] == f"{last.loc[name, 'rate_limited']}"
        assert r["Err %"] == f"{100 * last.loc[name, 'error_rate']:.1f}%"
        assert r["p95 ms"] == f"{last.loc[name, 'latency_ms_p95']:,.0f}"
    assert '<b class="m-providers">2</b> providers, <span class="m-stale">1 open</span>' in view.status.value


def cycles_of(lake: Lake) -> pd.DataFrame:
    m = lake.read("metrics")
    return m[m["scope"] == "cycle"].sort_values("ts")


def assert_traces_are(view, cycles: pd.DataFrame) -> None:
    by_name = {t.name: t for t in view.chart.data}
    assert set(by_name) == {"cycle_ms", "processing_ms", "rows_written", "rows_quarantined"}
    x = cycles["ts"].dt.tz_localize(None).to_numpy()
    for name, trace in by_name.items():
        np.testing.assert_array_equal(pd.to_datetime(np.asarray(trace.x)).to_numpy(), x)
        np.testing.assert_allclose(np.asarray(trace.y, dtype=float), cycles[name].to_numpy(dtype=float))


def test_chart_is_the_metrics_table_and_updates_in_place(ui_lake, view):
    cycles = cycles_of(ui_lake)
    assert len(cycles) == 80
    assert_traces_are(view, cycles)
    # what a page that connects now receives (plotly sends later edits only as messages)
    initial = {t["name"]: t for t in view.chart._widget_data}
    assert np.allclose(np.asarray(initial["cycle_ms"]["y"], dtype=float), cycles["cycle_ms"].to_numpy(dtype=float))
    assert pd.to_datetime(list(initial["cycle_ms"]["x"])).equals(pd.DatetimeIndex(cycles["ts"].dt.tz_localize(None)))

    chart, traces = view.chart, list(view.chart.data)
    assert view.refresh() is False and view.computed == 1  # nothing written: nothing recomputed
    last = cycles.iloc[-1]
    more = pd.DataFrame({"ts": [last["ts"] + pd.Timedelta(seconds=s) for s in (1, 2)], "scope": "cycle", "name": "ingest",
                         "cycle": [81, 82], "rows_written": [50, 47], "rows_quarantined": [0, 3],
                         "processing_ms": [41.0, 97.5], "cycle_ms": [44.0, 120.25]})
    ui_lake.append("metrics", more)
    assert view.refresh() is True and view.computed == 2
    assert view.chart is chart and list(view.chart.data) == traces  # the same widget, new values
    assert_traces_are(view, cycles_of(ui_lake))
    assert cards(view.cards.value)["rows_quarantined"] == "3"


def test_data_age_per_sector(ui_lake, view):
    snap = ui_lake.snapshot()
    assert Grid(view.age_panel.value).records()[0]["Max age s"] == "0"  # the simulator answers every symbol
    lagging = {snap["symbol"].iloc[0]: 5, snap["symbol"].iloc[7]: 12, snap["symbol"].iloc[8]: 3}
    for symbol, minutes in lagging.items():
        snap.loc[snap["symbol"] == symbol, "ts"] -= pd.Timedelta(minutes=minutes)
    ui_lake.write_snapshot(snap)
    assert view.refresh() is True

    age = (snap["ts"].max() - snap["ts"]).dt.total_seconds()
    want = pd.DataFrame({"sector": snap["sector"], "age": age}).groupby("sector")["age"].agg(["size", "median", "max"])
    rows = Grid(view.age_panel.value).records()
    assert rows[0]["Sector"] == "All" and rows[0]["Max age s"] == f"{age.max():,.0f}" == "720"
    assert rows[0]["Lagging"] == "3" and rows[0]["Median age s"] == f"{age.median():,.0f}"
    got = {r["Sector"]: r for r in rows[1:]}
    assert set(got) == set(want.index)
    for sector, r in got.items():
        assert r["Symbols"] == str(want.loc[sector, "size"])
        assert r["Median age s"] == f"{want.loc[sector, 'median']:,.0f}"
        assert r["Max age s"] == f"{want.loc[sector, 'max']:,.0f}"
    maxima = [float(r["Max age s"].replace(",", "")) for r in rows[1:]]
    assert maxima == sorted(maxima, reverse=True)  # the worst sector first
    worst = snap.loc[age.idxmax()]
    assert got[worst["sector"]]["Oldest"] == worst["symbol"]


def test_lake_size_is_lake_stats(ui_lake, view):
    stats = ui_lake.stats()
    rows = Grid(view.lake_panel.value).records()
    assert len(rows) == len(stats) + 1
    for r, (_, s) in zip(rows, stats.iterrows()):
        assert r["Table"].split(" ")[0] == s["table"]
        assert (r["Files"], r["Rows"], r["Bytes"]) == (f"{s['files']:,}", f"{s['rows']:,}", f"{s['bytes']:,}")
    total = rows[-1]
    assert total["Table"] == "total"
    assert (total["Files"], total["Bytes"]) == (f"{stats['files'].sum():,}", f"{stats['bytes'].sum():,}")
    pd.testing.assert_frame_equal(view.lake_stats, stats)


def test_window_choice_recomputes_and_stays(ui_lake, view):
    view.w_window.value = 15.0
    assert view.window_minutes == 15.0 and view.computed == 2
    want = health(ui_lake, window_minutes=15.0, now=view.now)
    assert view.health.summary == want.summary
    ui_lake.append("metrics", provider_rows(pd.Timestamp.now(tz="UTC")))
    assert view.refresh() is True and view.w_window.value == 15.0


def test_empty_lake_renders_an_empty_state(tmp_path):
    v = HealthView(Source(Lake(tmp_path / "empty", durable=False)), live=False)
    assert v.error is None
    shown = cards(v.cards.value)
    assert shown["cycles"] == "0" and shown["rows_per_s"] == "–" and shown["last_cycle_at"] == "–"
    assert "no providers reported" in v.providers.value
    assert all(len(t.y) == 0 for t in v.chart.data)
    assert "no cycles" in v.chart.layout.annotations[0].text
    assert "no snapshot yet" in v.age_panel.value and "the lake is empty" in v.lake_panel.value
    assert "no snapshot yet" in v.status.value
    v.close()
