"""Secrets end-to-end: a real `mintel -vv ingest` against the local providers with API keys and a
webhook URL in the environment leaves neither in any log line, output or lake file.

(Voilà's loopback binding and token, dashboard kernels without secrets, and report outputs are
checked in tests/ui/test_serve.py and tests/reports; webhook URL redaction in tests/test_alerts.py.)
"""

from __future__ import annotations

import socket

import pytest

from tests.conftest import run_mintel
from tests.providers.servers import SYMBOLS, AlphaVantageServer, TwelveDataServer, YahooServer

TD_KEY = "td-fake-key-7f3a9c1e55d2"
AV_KEY = "av-fake-key-0b8d4e2f9a61"
HOOK_TOKEN = "T0HOOK-b4c5d6e7f8a9"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def providers():
    with YahooServer() as y, TwelveDataServer(api_key=TD_KEY) as t, AlphaVantageServer(api_key=AV_KEY) as a:
        yield {"yahoo": y, "twelvedata": t, "alphavantage": a}


def test_keys_and_webhook_url_leak_nowhere_in_a_real_ingest_run(tmp_path, providers):
    universe = tmp_path / "universe.csv"
    universe.write_text("symbol,name,sector,exchange\n" + "".join(f"{s},{s} Ltd,Test,NSE\n" for s in SYMBOLS))
    lake = tmp_path / "lake"
    env = {
        "MINTEL_TWELVEDATA_API_KEY": TD_KEY, "MINTEL_ALPHAVANTAGE_API_KEY": AV_KEY,
        **{f"MINTEL_{n.upper()}_BASE_URL": srv.url for n, srv in providers.items()},
        **{f"MINTEL_{n.upper()}_TIMEOUT_S": "2" for n in providers},
        "MINTEL_ALPHAVANTAGE_REQUESTS_PER_DAY": "1000", "MINTEL_ALPHAVANTAGE_REQUESTS_PER_MINUTE": "600",
        "MINTEL_TWELVEDATA_REQUESTS_PER_MINUTE": "600",
        # alerts on, to a webhook that is down: failures are logged and recorded, the URL never in full
        "MINTEL_ALERT_SINKS": "webhook", "MINTEL_ALERT_MIN_SCORE": "0",
        "MINTEL_WEBHOOK_URL": f"http://127.0.0.1:{_closed_port()}/hooks/{HOOK_TOKEN}?token={HOOK_TOKEN}",
        "MINTEL_CONFIG": str(tmp_path / "none.toml"),
    }
    # One provider fails now and then so error paths (retries, messages with URLs) are logged too.
    providers["twelvedata"].faults.script = ["503", "truncate", "429"]
    providers["alphavantage"].faults.script = ["garbage", "disconnect"]
    (tmp_path / "none.toml").write_text("")
    proc = run_mintel("-vv", "ingest", "--lake", lake, "--universe", universe, "--provider", ",".join(providers),
                      "--cycles", "3", "--always-on", env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "DEBUG" in text  # -vv really logged at debug
    assert "GET /query" in text and "GET /time_series" in text  # request and failure lines name the endpoints
    assert "webhook (http://127.0.0.1:" in text and "/…) failed" in text  # the webhook was tried: shown redacted
    # the keys went to the servers ...
    assert any(r.key_ok and r.key_where for r in providers["twelvedata"].requests)
    assert any(r.key_ok and r.key_where == "query" for r in providers["alphavantage"].requests)
    # ... and the run wrote bars, quarantine or metrics with provider errors in them ...
    files = [p for p in lake.rglob("*") if p.is_file()]
    assert any("bars" in p.parts for p in files) and any("metrics" in p.parts for p in files)
    # ... but no key and no webhook token appear in any output or any lake file (Parquet bytes included).
    for secret in (TD_KEY, AV_KEY, HOOK_TOKEN):
        assert secret not in text, [line for line in text.splitlines() if secret in line][:3]
        for p in files:
            assert secret.encode() not in p.read_bytes(), p
