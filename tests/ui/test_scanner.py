"""The scanner view against the lake: what it shows, how filters and refresh behave."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

from mintel.ui.scanner import COLUMNS, ScannerState, ScannerView, page_of, select
from mintel.ui.source import Source
from mintel.ui.table import Column, render
from mintel.universe import Watchlists


def grid_rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1]
    return [[unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)] for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]


@pytest.fixture
def view(ui_lake, tmp_path):
    v = ScannerView(ui_lake, watchlists=Watchlists(tmp_path / "wl"), live=False)
    yield v
    v.close()


def test_grid_shows_the_snapshot_sorted_by_score(view, ui_lake):
    snap = ui_lake.snapshot()
    want = snap.sort_values("score", ascending=False, na_position="last", kind="stable").head(100)
    rows = grid_rows(view.grid.value)
    assert len(rows) == min(100, len(snap)) == len(view.shown)
    assert [r[0] for r in rows] == want["symbol"].tolist()
    price_col = [c.name for c in COLUMNS].index("price")
    assert [float(r[price_col].replace(",", "")) for r in rows] == pytest.approx(want["price"].round(2).tolist(), abs=0.006)
    assert view.matched == len(snap)


def test_filters_match_pandas(ui_lake):
    snap = ui_lake.snapshot()
    sector = snap["sector"].mode().iloc[0]
    state = ScannerState(sector=sector, rsi=(40, 70), min_score=20, sort="change_pct", descending=False)
    got = select(snap, state)
    want = snap[(snap["sector"] == sector) & snap["rsi"].between(40, 70) & (snap["score"] >= 20)]
    want = want.sort_values("change_pct", na_position="last", kind="stable")
    assert got["symbol"].tolist() == want["symbol"].tolist()
    assert len(got) < len(snap)


def test_text_search_is_plain_substring_never_code(ui_lake):
    snap = ui_lake.snapshot()
    sym = snap["symbol"].iloc[0]
    assert select(snap, ScannerState(text=sym[:3].lower()))["symbol"].str.contains(sym[:3]).any()
    for hostile in ("__import__('os').system('x')", ".*", "[", "a|b"):  # regex and code are just text
        assert select(snap, ScannerState(text=hostile)).empty


def test_expression_filter_is_parsed_and_bad_ones_say_why(view, ui_lake):
    snap = ui_lake.snapshot()
    view.set_state(expression="rsi<45, score>=10")
    assert view.error is None
    want = snap[(snap["rsi"] < 45) & (snap["score"] >= 10)]
    assert view.matched == len(want) > 0
    view.set_state(expression="rsi<<45")
    assert view.error is not None and "rsi<<45" in view.error and "\n" not in view.error
    view.set_state(expression="__import__('os')")
    assert view.error is not None  # a parse error, not an evaluation


def test_filters_survive_a_refresh_with_a_new_snapshot(view, ui_lake):
    snap = ui_lake.snapshot()
    sector = snap["sector"].mode().iloc[0]
    view.set_state(sector=sector, sort="price", descending=True)
    before = view.shown["symbol"].tolist()
    assert view.refresh() is False  # nothing changed: no redraw
    target = before[-1]
    changed = snap.copy()
    changed.loc[changed["symbol"] == target, "price"] = 99999.0
    changed["updated_at"] = pd.Timestamp.now(tz="UTC")
    ui_lake.write_snapshot(changed)
    assert view.refresh() is True
    assert view.state.sector == sector and view.w_sector.value == sector and view.state.sort == "price"
    assert view.shown["symbol"].iloc[0] == target
    assert "99,999.00" in view.grid.value


def test_watchlist_and_paging(view, ui_lake, tmp_path):
    snap = ui_lake.snapshot()
    picks = snap["symbol"].iloc[[3, 1, 7]].tolist()
    view.watchlists.create("mine", picks)
    view.set_state(watchlist="mine")
    assert sorted(view.shown["symbol"]) == sorted(picks)
    view.set_state(watchlist=None, page_size=20)
    rows, page, pages = page_of(select(snap, view.state), view.state)
    assert pages == -(-len(snap) // 20) and len(view.shown) == 20
    view.w_next.click()
    assert view.state.page == 1 and view.shown["symbol"].tolist() == select(snap, view.state)["symbol"].iloc[20:40].tolist()


def test_stale_and_empty_lake(tmp_path):
    empty = ScannerView(Source(tmp_path / "none"), live=False)
    assert empty.matched == 0 and "no snapshot" in empty.status.value
    empty.close()


def test_stale_warning_after_the_threshold(ui_lake):
    old = ui_lake.snapshot()
    old["updated_at"] = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=10)
    ui_lake.write_snapshot(old)
    v = ScannerView(ui_lake, live=False, stale_after_s=60)
    assert "STALE" in v.status.value
    fresh = old.assign(updated_at=pd.Timestamp.now(tz="UTC"))
    ui_lake.write_snapshot(fresh)
    v.refresh()
    assert "STALE" not in v.status.value
    v.close()


def test_render_escapes_text_and_colours_signs():
    frame = pd.DataFrame({"symbol": ["<b>X</b>", "Y"], "chg": [1.5, -2.0]})
    html = render(frame, [Column("symbol", "S"), Column("chg", "C", "+.2f", signed=True)])
    assert "<b>X</b>" not in html and "&lt;b&gt;X&lt;/b&gt;" in html
    assert '<td class="up">+1.50</td>' in html and '<td class="down">-2.00</td>' in html
    assert "<td></td>" in render(pd.DataFrame({"symbol": ["Z"], "chg": [np.nan]}), [Column("chg", "C", ".2f")])  # nulls blank
