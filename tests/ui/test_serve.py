"""Serving: loopback by default, a token off loopback, a cap on kernels, no secrets in kernels."""

from __future__ import annotations

import httpx
import pytest

from mintel.errors import ConfigError
from mintel.ui.serve import DASHBOARDS, DashboardServer


def test_loopback_needs_no_token_but_any_other_address_gets_one(tmp_path):
    local = DashboardServer(lake=tmp_path / "lake", port=8866)
    assert local.token is None and local.url("scanner") == "http://127.0.0.1:8866/voila/render/scanner.ipynb"
    wide = DashboardServer(lake=tmp_path / "lake", ip="0.0.0.0", port=8866)
    assert wide.token and len(wide.token) >= 24
    assert f"--token={wide.token}" in wide.argv() and wide.url().endswith(f"?token={wide.token}")
    mine = DashboardServer(lake=tmp_path / "lake", ip="0.0.0.0", port=8866, token="s3cret-token")
    assert mine.token == "s3cret-token"


def test_safe_voila_options(tmp_path):
    argv = DashboardServer(lake=tmp_path / "lake", port=8866, max_kernels=3).argv()
    for opt in ("--strip_sources=True", "--show_tracebacks=False", "--Voila.ip=127.0.0.1", "--CappedKernelManager.max_kernels=3",
                "--VoilaConfiguration.multi_kernel_manager_class=mintel.ui.serve.CappedKernelManager", "--no-browser"):
        assert opt in argv
    assert any(a.startswith("--MappingKernelManager.cull_idle_timeout=") for a in argv)
    assert "--preheat_kernel=True" not in argv
    assert {"--preheat_kernel=True", "--pool_size=1"} <= set(DashboardServer(lake=tmp_path / "lake", port=1, preheat=True).argv())


def test_kernels_get_the_lake_but_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("MINTEL_TWELVEDATA_API_KEY", "td-key-123")
    monkeypatch.setenv("MINTEL_WEBHOOK_URL", "https://hooks.example/T0/secret")
    monkeypatch.setenv("MINTEL_ALPHAVANTAGE_API_KEY", "av-key-456")
    monkeypatch.setenv("MINTEL_UNIVERSE", "nifty50")
    env = DashboardServer(lake=tmp_path / "lake", port=8866).env()
    assert env["MINTEL_LAKE"] == str((tmp_path / "lake").resolve())
    assert env["MINTEL_UNIVERSE"] == "nifty50"
    assert not any(v in ("td-key-123", "av-key-456", "https://hooks.example/T0/secret") for v in env.values())


def test_missing_notebooks_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        DashboardServer(lake=tmp_path, notebooks=tmp_path / "nope")


@pytest.mark.slow
def test_real_server_requires_its_token_off_loopback_and_caps_kernels(dashboard_lake, tmp_path):
    server = DashboardServer(lake=dashboard_lake.root, ip="0.0.0.0", port=0, max_kernels=1)
    log = open(tmp_path / "voila.log", "wb")
    server.start(log=log)
    try:
        server.wait_ready(90)
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(timeout=60, follow_redirects=False) as client:
            assert client.get(base + "/voila/render/health.ipynb").status_code in (302, 403)  # no token: no page
            ok = client.get(base + f"/?token={server.token}")
            assert ok.status_code == 200 and all(title in ok.text for title in DASHBOARDS.values())
            first = client.get(base + f"/voila/render/health.ipynb?token={server.token}")
            assert first.status_code == 200  # one kernel: the cap
            second = client.get(base + f"/voila/render/scanner.ipynb?token={server.token}")
            assert second.status_code == 503 and "cap" in second.text
    finally:
        server.stop()
        log.close()
