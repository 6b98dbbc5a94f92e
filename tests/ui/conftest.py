"""A small real lake for the dashboard tests: the simulator ingested through the real service
(bars, snapshot, opportunities, metrics) plus a year of daily bars backfilled from it."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from mintel.config import Settings
from mintel.ingest.backfill import run_backfill
from mintel.ingest.service import build_service
from mintel.lake import Lake
from mintel.universe import load_universe

UI_UNIVERSE = "nifty50"
UI_CYCLES = 80  # one simulated minute each: enough for SMA 50 and MACD to warm up


def build_ui_lake(root, *, universe: str = UI_UNIVERSE, cycles: int = UI_CYCLES, daily: bool = True, seed: int = 11) -> Lake:
    lake = Lake(root, durable=False)
    u = load_universe(universe)
    settings = Settings(lake=lake.root, universe=universe, interval_s=0, seed=seed)
    asyncio.run(build_service(settings, lake, u).run(cycles=cycles))
    if daily:
        run_backfill(settings, lake, u, providers=["sim"], interval="1d", start="2025-11-01", progress=False)
    return lake


@pytest.fixture(scope="session")
def ui_lake_master(tmp_path_factory) -> Lake:
    return build_ui_lake(tmp_path_factory.mktemp("ui-lake") / "lake")


@pytest.fixture
def ui_lake(ui_lake_master, tmp_path) -> Lake:
    """A private copy of the session's lake (tests may change it)."""
    root = tmp_path / "lake"
    shutil.copytree(ui_lake_master.root, root)
    return Lake(root, durable=False)


# ---------------------------------------------------------------- a real Voilà and a real Chromium

CHROMIUM = "/usr/bin/chromium"  # Debian's; never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--disable-extensions"]


@pytest.fixture(scope="session")
def dashboard_lake(ui_lake_master, tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("dash") / "lake"
    shutil.copytree(ui_lake_master.root, root)
    return Lake(root, durable=False)


@pytest.fixture(scope="session")
def voila_server(dashboard_lake, tmp_path_factory):
    import os

    from mintel.ui.serve import DashboardServer

    os.environ["MINTEL_DASHBOARD_REFRESH_S"] = "1"  # inherited by the kernels: faster live updates in tests
    server = DashboardServer(lake=dashboard_lake.root, port=0)
    log = open(tmp_path_factory.mktemp("voila") / "voila.log", "wb")
    server.start(log=log)
    try:
        server.wait_ready(90)
        yield server
    finally:
        server.stop()
        log.close()
        os.environ.pop("MINTEL_DASHBOARD_REFRESH_S", None)


@pytest.fixture(scope="package")
def chromium(ui_lake_master):
    # Package scope: Playwright's sync API holds an event loop open in this thread while the browser lives,
    # and asyncio.run() elsewhere (ingest, backfill) refuses to start beside it; under pytest-xdist other
    # packages' tests run in this process between ui modules, so the browser closes when ui's tests stop.
    # ui_lake_master is built first for the same reason.
    import os

    if not os.access(CHROMIUM, os.X_OK):  # fail, never skip: CI installs it (.ci/run)
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium chromium-driver (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()
