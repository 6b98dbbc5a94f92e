"""`mintel up`: ingestion and the dashboards together, URLs printed, both stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_up_serves_the_dashboards_beside_ingestion_and_stops_cleanly(tmp_path):
    lake = tmp_path / "lake"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mintel", "up", "--lake", str(lake), "--universe", "nifty50", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env={**os.environ},
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        urls: dict[str, str] = {}
        while time.monotonic() < deadline and sum(bool(re.match(r"cycle .* rows +[1-9]", ln)) for ln in lines) < 2:
            line = proc.stdout.readline()
            assert line, "mintel up exited early:\n" + "".join(lines)
            lines.append(line)
            m = re.match(r"\s+(\w+)\s+(http://127\.0\.0\.1:\d+/\S*)", line)
            if m:
                urls[m[1]] = m[2]
        assert set(urls) == {"index", "scanner", "opportunities", "overview", "symbol", "health"}, "".join(lines)
        page = httpx.get(urls["scanner"], timeout=90)
        assert page.status_code == 200 and "application/vnd.jupyter.widget-view+json" in page.text  # ran in a kernel
        port = int(urls["index"].rsplit(":", 1)[1].split("/")[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        lines.append(out)
    assert proc.returncode == 0, "".join(lines)
    assert re.search(r"stopped: \d+ cycles", "".join(lines))
    with pytest.raises(OSError):  # Voilà went with it
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert (lake / "snapshot" / "latest.parquet").exists()
