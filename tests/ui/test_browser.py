"""The dashboards in a real browser: Debian's Chromium (Playwright) on a real Voilà on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from mintel.ui.serve import DASHBOARDS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: MINTEL_SCREENSHOTS if set (kept for people), else the test's tmp dir."""
    out = Path(os.environ.get("MINTEL_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def screenshot(page, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


def grid(page, table_id: str) -> list[dict]:
    """The grid's rows as {header: text}."""
    return page.eval_on_selector(f"#{table_id}", """t => {
        const heads = [...t.querySelectorAll('thead th')].map(th => th.dataset.col);
        return [...t.querySelectorAll('tbody tr')].map(tr =>
            Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.textContent])));
    }""")


def test_index_links_every_dashboard_by_name(page, voila_server, shots):
    page.goto(voila_server.url())
    page.wait_for_selector("#dashboards a")
    links = page.eval_on_selector_all("#dashboards a", "as => as.map(a => [a.dataset.dashboard, a.textContent, a.target])")
    assert links == [[name, title, ""] for name, title in DASHBOARDS.items()]  # in order, same tab
    screenshot(page, shots, "index")
    page.click("text=Live market scanner")
    page.wait_for_selector("#scanner-grid tbody tr")


def test_scanner_shows_the_lake_and_filters_change_the_grid(page, voila_server, dashboard_lake, shots):
    page.goto(voila_server.url("scanner"))
    page.wait_for_selector("#scanner-grid tbody tr")
    snap = dashboard_lake.snapshot()
    rows = grid(page, "scanner-grid")
    want = snap.sort_values("score", ascending=False, na_position="last", kind="stable").head(len(rows))
    assert len(rows) == min(100, len(snap))
    assert [r["symbol"] for r in rows] == want["symbol"].tolist()
    assert [float(r["price"].replace(",", "")) for r in rows] == pytest.approx(want["price"].tolist(), abs=0.006)
    assert [r["rsi"] for r in rows] == [f"{v:.1f}" if pd.notna(v) else "" for v in want["rsi"]]
    screenshot(page, shots, "scanner")

    sector = snap["sector"].value_counts().index[0]
    page.select_option(".m-sector select", label=sector)
    n = int((snap["sector"] == sector).sum())
    page.wait_for_function(f"document.querySelectorAll('#scanner-grid tbody tr').length === {n}")
    assert {r["sector"] for r in grid(page, "scanner-grid")} == {sector}
    assert page.inner_text(".m-matched") == str(n)

    page.select_option(".m-sector select", label="All")
    sym = want["symbol"].iloc[-1]
    page.fill(".m-search input", sym)
    page.wait_for_function(f"""[...document.querySelectorAll('#scanner-grid tbody tr')].every(
        tr => tr.dataset.symbol.includes({sym!r}))""")
    assert sym in [r["symbol"] for r in grid(page, "scanner-grid")]
    screenshot(page, shots, "scanner-filtered")


def test_scanner_refreshes_itself_when_the_snapshot_changes(page, voila_server, dashboard_lake, shots):
    page.goto(voila_server.url("scanner"))
    page.wait_for_selector("#scanner-grid tbody tr")
    snap = dashboard_lake.snapshot()
    sector = snap["sector"].value_counts().index[0]
    page.select_option(".m-sector select", label=sector)  # the user's choice must survive refreshes
    n = int((snap["sector"] == sector).sum())
    page.wait_for_function(f"document.querySelectorAll('#scanner-grid tbody tr').length === {n}")

    target = snap.loc[snap["sector"] == sector, "symbol"].iloc[-1]
    changed = snap.copy()
    changed.loc[changed["symbol"] == target, ["score", "price"]] = [100.0, 4321.5]
    changed["updated_at"] = pd.Timestamp.now(tz="UTC")
    dashboard_lake.write_snapshot(changed)

    page.wait_for_function(f"document.querySelector('#scanner-grid tbody tr').dataset.symbol === {target!r}", timeout=30_000)
    first = grid(page, "scanner-grid")[0]
    assert first["price"] == "4,321.50" and first["score"] == "100"
    assert page.eval_on_selector(".m-sector select", "s => s.value") != ""  # still filtered
    assert len(grid(page, "scanner-grid")) == n
    screenshot(page, shots, "scanner-refreshed")


def plots(page) -> list[dict]:
    """Every plotly graph on the page: its traces as plotly.js holds them (what is drawn)."""
    return page.eval_on_selector_all(".js-plotly-plot", """ds => ds.map(d => ({
        traces: (d.data || []).map(t => ({type: t.type, name: t.name, labels: t.labels, values: t.values,
                                          close: t.close, y: t.y, value: t.value}))}))""")


def wait_for_trace(page, trace_type: str) -> None:
    page.wait_for_function(f"""[...document.querySelectorAll('.js-plotly-plot')].some(d => (d.data || []).some(
        t => t.type === {trace_type!r} && ((t.labels && t.labels.length) || (t.close && t.close.length)
                                             || (t.y && t.y.length))))""", timeout=60_000)


def test_opportunities_shows_the_lake_newest_first_and_filters(page, voila_server, dashboard_lake, shots):
    page.goto(voila_server.url("opportunities"))
    page.wait_for_selector("#opportunities-grid tbody tr")
    opp = dashboard_lake.read("opportunities")
    rows = grid(page, "opportunities-grid")
    newest = opp.sort_values(["detected_at", "ts", "score", "symbol", "kind"],
                             ascending=[False, False, False, True, True], kind="stable")
    assert [(r["symbol"], r["kind"]) for r in rows] == list(zip(newest["symbol"], newest["kind"]))[:len(rows)]
    screenshot(page, shots, "opportunities")
    readout = page.locator(".m-min-score .widget-readout")  # the slider's editable readout
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("80")
    page.keyboard.press("Enter")
    n = int((opp["score"] >= 80).sum())
    page.wait_for_function(f"document.querySelectorAll('#opportunities-grid tbody tr').length === {min(n, len(rows))}")
    assert all(float(r["score"]) >= 80 for r in grid(page, "opportunities-grid"))


def test_overview_heat_map_and_movers_are_the_snapshot(page, voila_server, dashboard_lake, shots):
    page.goto(voila_server.url("overview"))
    page.wait_for_selector("#overview-gainers tbody tr")
    wait_for_trace(page, "treemap")
    snap = dashboard_lake.snapshot()
    treemap = next(t for p in plots(page) for t in p["traces"] if t["type"] == "treemap")
    drawn = dict(zip(treemap["labels"], treemap["values"]))
    for sym, price, vol in zip(snap["symbol"], snap["price"], snap["day_volume"]):
        assert drawn[sym] == pytest.approx(price * vol, rel=1e-9)
    top = snap.sort_values("change_pct", ascending=False, kind="stable")["symbol"].iloc[0]
    assert grid(page, "overview-gainers")[0]["symbol"] == top
    screenshot(page, shots, "overview")


def test_symbol_chart_is_the_lake_bars_of_the_top_symbol(page, voila_server, dashboard_lake, shots):
    page.goto(voila_server.url("symbol"))
    wait_for_trace(page, "candlestick")
    snap = dashboard_lake.snapshot()
    top = snap.sort_values("score", ascending=False, kind="stable")["symbol"].iloc[0]
    assert page.eval_on_selector(".m-symbol input", "i => i.value") == top
    candles = next(t for p in plots(page) for t in p["traces"] if t["type"] == "candlestick")
    bars = dashboard_lake.read_bars([top], interval="1m")
    assert candles["close"] == pytest.approx(bars["close"].tail(len(candles["close"])).tolist(), rel=1e-12)
    screenshot(page, shots, "symbol")


def test_health_shows_cycles_and_lake_size(page, voila_server, dashboard_lake, shots):
    page.goto(voila_server.url("health"))
    page.wait_for_selector("#lake-grid tbody tr")
    wait_for_trace(page, "scatter")
    stats = dashboard_lake.stats()
    lake_rows = {r["label"]: r for r in grid(page, "lake-grid")}
    for table, interval, files in zip(stats["table"], stats["interval"], stats["files"]):
        label = f"{table} {interval}" if isinstance(interval, str) and interval else table
        assert lake_rows[label]["files"] == f"{files:,.0f}"
    metrics = dashboard_lake.read("metrics")
    cycle_ms = next(t for p in plots(page) for t in p["traces"] if t["name"] == "cycle_ms")
    want = metrics[metrics["scope"] == "cycle"].sort_values("ts")["cycle_ms"]
    assert len(cycle_ms["y"]) > 0 and cycle_ms["y"] == pytest.approx(want.tail(len(cycle_ms["y"])).tolist())
    screenshot(page, shots, "health")
