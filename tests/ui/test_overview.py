"""The market overview, kernel side: every number drawn is checked against the lake's snapshot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mintel.analytics.breadth import market_breadth
from mintel.analytics.scan import sentiment
from mintel.lake import Lake
from mintel.ui.overview import SPIKE_RATIO, TOP, OverviewView
from mintel.ui.source import Source


def overview(lake) -> OverviewView:
    return OverviewView(Source(lake), live=False)


def nodes(view) -> pd.DataFrame:
    t = view.heat_map.data[0]
    return pd.DataFrame({"id": t.ids, "parent": t.parents, "value": t.values, "color": t.marker.colors}).set_index("id")


def symbols_in(grid_html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in grid_html.split('data-symbol="')[1:]]


def same(a, b) -> bool:
    a, b = (None if x is None or (isinstance(x, float) and math.isnan(x)) else x for x in (a, b))
    return a == b if a is None or b is None else a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_heat_map_tiles_are_turnover_and_change_of_the_snapshot(ui_lake):
    view = overview(ui_lake)
    snap = ui_lake.snapshot()
    n = nodes(view)
    assert view.error is None
    leaves = n[n["parent"] != ""]
    assert len(leaves) == len(snap) == 50
    for row in snap.itertuples():
        tile = n.loc[f"{row.sector}/{row.symbol}"]
        assert tile["parent"] == row.sector
        assert tile["value"] == pytest.approx(row.price * row.day_volume, rel=1e-12)
        assert tile["color"] == pytest.approx(row.change_pct, rel=1e-12)
    for sector, rows in snap.groupby("sector"):
        turnover = rows["price"] * rows["day_volume"]
        assert n.loc[sector, "parent"] == ""
        assert n.loc[sector, "value"] == pytest.approx(turnover.sum(), rel=1e-9)
        assert n.loc[sector, "color"] == pytest.approx((rows["change_pct"] * turnover).sum() / turnover.sum(), rel=1e-9)
    # a red/green scale centred at 0: a falling symbol sits below the centre, a rising one above
    assert view.heat_map.data[0].marker.cmid == 0
    assert (leaves["color"] < 0).sum() == (snap["change_pct"] < 0).sum()


def test_gauges_show_market_breadth_as_mintel_sentiment_reports_it(ui_lake):
    view = overview(ui_lake)
    snap = ui_lake.snapshot()
    b = market_breadth(snap)
    report = sentiment(snap)  # what `mintel sentiment` prints for this frame
    g = {t.name: t for t in view.gauges.data}
    assert g["sentiment"].value == pytest.approx(report["sentiment"]) == pytest.approx(b.sentiment)
    assert b.label in g["sentiment"].title.text
    assert g["advancing"].value == report["advancers"] == int((snap["change_pct"] > 0).sum())
    assert g["advancing"].delta.reference == report["decliners"] == int((snap["change_pct"] < 0).sum())
    known = snap.dropna(subset=["price", "sma_50"])
    assert g["above_sma_50"].value == pytest.approx((known["price"] > known["sma_50"]).mean() * 100)
    assert snap["sma_200"].isna().all() and g["above_sma_200"].value is None  # 80 minutes: no SMA 200 yet
    assert view.breadth.advancers == b.advancers and view.breadth.sentiment == b.sentiment


def test_top_gainers_losers_and_sectors_are_the_snapshot_sorted(ui_lake):
    view = overview(ui_lake)
    snap = ui_lake.snapshot()
    up = snap[snap["change_pct"] > 0].sort_values("change_pct", ascending=False)
    down = snap[snap["change_pct"] < 0].sort_values("change_pct")
    assert list(view.gainers["symbol"]) == list(up["symbol"].head(TOP))
    assert list(view.losers["symbol"]) == list(down["symbol"].head(TOP))
    assert symbols_in(view.grids["gainers"].value) == list(up["symbol"].head(TOP))
    assert symbols_in(view.grids["losers"].value) == list(down["symbol"].head(TOP))
    top = up.iloc[0]
    assert f"{top['change_pct']:+.2f}" in view.grids["gainers"].value
    # no volume ratio in the first session: no spikes, said so
    assert view.spikes.empty and "none" in view.grids["spikes"].value
    sectors = sorted(snap["sector"].unique())
    assert sorted(market_breadth(snap).sectors["sector"]) == sectors
    assert all(f">{s.replace('&', '&amp;')}<" in view.grids["sectors"].value for s in sectors)


def test_a_new_snapshot_updates_the_figures_in_place(ui_lake):
    view = overview(ui_lake)
    trace, gauge = view.heat_map.data[0], view.gauges.data[1]
    assert view.refresh() is False  # nothing new
    snap = ui_lake.snapshot()
    mover, spikes = snap["symbol"].iloc[5], list(snap["symbol"].iloc[[1, 7, 9]])
    changed = snap.copy()
    changed.loc[changed["symbol"] == mover, ["change_pct", "day_volume"]] = [9.5, 4e7]
    changed["volume_ratio"] = np.nan
    changed.loc[changed["symbol"].isin(spikes), "volume_ratio"] = [2.5, 6.0, SPIKE_RATIO - 0.01]
    changed["updated_at"] = changed["updated_at"] + pd.Timedelta(seconds=60)
    ui_lake.write_snapshot(changed)

    assert view.refresh() is True
    assert view.heat_map.data[0] is trace and view.gauges.data[1] is gauge  # the same traces, new data
    row = changed.set_index("symbol").loc[mover]
    n = nodes(view)
    assert n.loc[f"{row['sector']}/{mover}", "value"] == pytest.approx(row["price"] * 4e7)
    assert n.loc[f"{row['sector']}/{mover}", "color"] == pytest.approx(9.5)
    assert view.gainers["symbol"].iloc[0] == mover
    assert list(view.spikes["symbol"]) == [spikes[1], spikes[0]]  # 6.0, 2.5; 1.99 is no spike
    assert symbols_in(view.grids["spikes"].value) == [spikes[1], spikes[0]]
    b = market_breadth(changed)
    assert gauge.value == b.advancers and view.gauges.data[0].value == pytest.approx(b.sentiment)


def test_empty_lake_shows_no_snapshot_then_fills_in(tmp_path, ui_lake):
    empty = Lake(tmp_path / "empty", durable=False)
    view = overview(empty)
    assert view.error is None and view.empty
    assert "no snapshot" in view.status.value
    assert "no snapshot" in view.grids["gainers"].value and "no snapshot" in view.heat_map.layout.title.text
    assert len(view.heat_map.data[0].ids) == 0
    assert all(g.value in (None, 0) for g in view.gauges.data)

    empty.write_snapshot(ui_lake.snapshot())  # ingestion starts
    assert view.refresh() is True
    assert not view.empty and len(view.heat_map.data[0].ids) > 50 and view.error is None
    assert "no snapshot" not in view.status.value
