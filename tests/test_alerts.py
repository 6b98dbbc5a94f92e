"""Alerts: rules, cooldown, provider outages, and delivery to real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from mintel.alerts import AlertEngine, AlertSettings, ConsoleSink, FileSink, WebhookSink, redact_url
from mintel.config import Settings, load_config
from mintel.errors import ConfigError

T0 = pd.Timestamp("2026-11-24 04:00", tz="UTC")
TOKEN = "s3cr3tTOKENxyz"


class Receiver:
    """A webhook receiver on 127.0.0.1. ``block``: each request waits for ``release``; ``fail_first``:
    that many requests answer ``fail_status`` first."""

    def __init__(self, *, block: bool = False, fail_first: int = 0, fail_status: int = 500) -> None:
        self.block, self.fail_first, self.fail_status = block, fail_first, fail_status
        self.requests: list[tuple[str, dict]] = []  # (path, JSON body)
        self.got = threading.Event()  # a request arrived
        self.answered = threading.Event()  # a request was answered
        self.release = threading.Event()
        self.on_request = None  # callback(path, body), for the benchmark
        self._lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"null")
                with me._lock:
                    me.requests.append((self.path, body))
                    n = len(me.requests)
                if me.on_request:
                    me.on_request(self.path, body)
                me.got.set()
                if me.block:
                    me.release.wait(30)
                status = me.fail_status if n <= me.fail_first else 200
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up (timeout)
                    pass
                me.answered.set()

            def log_message(self, *args):  # the path carries the token
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def bodies(self, prefix: str = "") -> list[dict]:
        with self._lock:
            return [b for p, b in self.requests if p.startswith(prefix)]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def opps(*rows) -> pd.DataFrame:
    """Opportunity rows from (symbol, kind, score[, direction])."""
    recs = []
    for r in rows:
        symbol, kind, score, *rest = r
        recs.append({"ts": T0, "symbol": symbol, "kind": kind, "direction": rest[0] if rest else "long",
                     "score": float(score), "confidence": 0.8, "message": f"{symbol} did {kind}",
                     "interval": "1m", "price": 100.5, "sector": "IT"})
    return pd.DataFrame(recs)


def provider_row(name, state="closed", requests=0, errors=0) -> dict:
    return {"ts": T0, "scope": "provider", "name": name, "state": state, "requests": requests, "errors": errors,
            "error_rate": errors / requests if requests else 0.0}


def cfg(**kw) -> AlertSettings:
    base = dict(sinks=(), timeout_s=5.0, attempts=3, backoff_s=0.01)
    return AlertSettings(**{**base, **kw})


def lake_alerts(lake) -> pd.DataFrame:
    return lake.read("alerts").sort_values(["ts", "symbol", "kind"], na_position="first").reset_index(drop=True)


def details(frame: pd.DataFrame) -> list[dict]:
    return [json.loads(d) for d in frame["detail"]]


# ------------------------------------------------------------------------------------ rules


def test_threshold_and_always_alerted_kinds(lake, tmp_path):
    engine = AlertEngine(cfg(min_score=70, max_per_cycle=10), lake, [FileSink(tmp_path / "a.jsonl")])
    out = engine.on_cycle(opps(("AAA", "rsi_oversold", 65), ("BBB", "golden_cross", 75), ("CCC", "volume_spike", 40, "short"),
                               ("DDD", "breakout", 12), ("EEE", "macd_cross_up", 69.99)), now=T0)
    assert sorted(out["symbol"]) == ["BBB", "CCC", "DDD"]
    assert set(out["status"]) == {"sent"}  # local sinks only: final at once
    engine.close()
    got = lake_alerts(lake)
    assert sorted(got["symbol"]) == ["BBB", "CCC", "DDD"]
    assert got.loc[got["symbol"] == "CCC", "direction"].item() == "short"
    assert (got["sinks"] == "file").all()


def test_kind_filter_and_cap_per_cycle(lake):
    engine = AlertEngine(cfg(min_score=0, kinds=("breakout", "gap_up"), max_per_cycle=2), lake, [ConsoleSink()])
    out = engine.on_cycle(opps(("AAA", "breakout", 90), ("BBB", "breakout", 95), ("CCC", "gap_up", 80),
                               ("DDD", "golden_cross", 99)), now=T0)
    assert sorted(out["symbol"]) == ["AAA", "BBB"]  # the best two of three; golden_cross is not wanted
    engine.close()
    got = lake_alerts(lake)
    assert dict(zip(got["symbol"], got["status"])) == {"AAA": "sent", "BBB": "sent", "CCC": "suppressed"}
    assert "max_per_cycle" in details(got[got["symbol"] == "CCC"])[0]["reason"]


def test_dedup_and_cooldown_on_a_controlled_clock(lake, tmp_path):
    engine = AlertEngine(cfg(min_score=70, cooldown_s=900), lake, [FileSink(tmp_path / "a.jsonl")])
    # the same symbol and kind twice in one cycle: one alert, the better score
    first = engine.on_cycle(opps(("AAA", "breakout", 80), ("AAA", "breakout", 85)), now=T0)
    assert len(first) == 1 and first["score"].item() == 85
    assert engine.on_cycle(opps(("AAA", "breakout", 90)), now=T0 + pd.Timedelta(seconds=60)).empty
    assert engine.on_cycle(opps(("AAA", "breakout", 90)), now=T0 + pd.Timedelta(seconds=899)).empty
    other = engine.on_cycle(opps(("AAA", "gap_up", 90), ("BBB", "breakout", 90)), now=T0 + pd.Timedelta(seconds=899))
    assert sorted(zip(other["symbol"], other["kind"])) == [("AAA", "gap_up"), ("BBB", "breakout")]
    again = engine.on_cycle(opps(("AAA", "breakout", 72)), now=T0 + pd.Timedelta(seconds=900))
    assert len(again) == 1
    engine.close()
    assert len(lake.read("alerts")) == 4


def test_cooldown_survives_a_restart(lake, tmp_path):
    with AlertEngine(cfg(cooldown_s=900), lake, [FileSink(tmp_path / "a.jsonl")]) as engine:
        assert len(engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)) == 1
    with AlertEngine(cfg(cooldown_s=900), lake, [FileSink(tmp_path / "a.jsonl")]) as engine:
        assert engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0 + pd.Timedelta(minutes=5)).empty
        assert len(engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0 + pd.Timedelta(minutes=16))) == 1


def test_unrecorded_opportunities_are_those_whose_alerts_a_stopped_run_never_recorded(lake, tmp_path):
    # the run before: AAA breakout alerted for bar T0; BBB gap_up alerted 10 minutes before the next bar
    # (so the cooldown held BBB's next one back); CCC breakout alerted an hour before
    bar = T0 + pd.Timedelta(minutes=10)
    with AlertEngine(cfg(min_score=70, cooldown_s=900), lake, [FileSink(tmp_path / "a.jsonl")]) as engine:
        engine.on_cycle(opps(("AAA", "breakout", 80), ("BBB", "gap_up", 80), ("CCC", "breakout", 80))
                        .assign(ts=[bar, T0, T0 - pd.Timedelta(hours=1)]),
                        now=T0 - pd.Timedelta(hours=1))
    fresh = AlertEngine(cfg(min_score=70, cooldown_s=900), lake, [FileSink(tmp_path / "a.jsonl")])
    last_cycle = opps(("AAA", "breakout", 80), ("BBB", "gap_up", 80), ("CCC", "breakout", 80), ("DDD", "golden_cross", 60),
                      ("EEE", "macd_cross_up", 75)).assign(ts=bar, detected_at=bar + pd.Timedelta(seconds=5))
    # the alerts above were all raised an hour before; move BBB's to within the cooldown of the new detection
    a = lake.read("alerts")
    lake.append("alerts", a[a["symbol"] == "BBB"].assign(ts=bar - pd.Timedelta(minutes=10)))
    got = fresh.unrecorded(last_cycle)
    # AAA: recorded for this bar; BBB: held back by its cooldown; DDD: below min_score; CCC (an hour ago), EEE: pending
    assert sorted(got["symbol"]) == ["CCC", "EEE"]
    assert fresh.unrecorded(last_cycle.iloc[:0]).empty
    # raised again as their own cycle, they are recorded, and a second restart finds nothing left
    fresh.on_cycle(got, now=bar + pd.Timedelta(minutes=1))
    fresh.close()
    again = AlertEngine(cfg(min_score=70, cooldown_s=900), lake, [FileSink(tmp_path / "a.jsonl")])
    assert again.unrecorded(last_cycle).empty
    again.close()


def test_provider_outage_and_recovery(lake, tmp_path):
    engine = AlertEngine(cfg(cooldown_s=900, outage_min_requests=5, outage_error_rate=0.5), lake,
                         [FileSink(tmp_path / "a.jsonl")])
    t = [T0 + pd.Timedelta(minutes=i) for i in range(12)]
    kinds = lambda out: [(None if pd.isna(s) else s, k) for s, k in zip(out["symbol"], out["kind"])]  # noqa: E731
    assert engine.on_cycle(None, [provider_row("yahoo", "closed", 10, 0)], now=t[0]).empty
    out = engine.on_cycle(None, [provider_row("yahoo", "open", 15, 5)], now=t[1])
    assert kinds(out) == [(None, "provider_outage")]
    assert "yahoo" in out["message"].item() and "open" in out["message"].item()
    assert engine.on_cycle(None, [provider_row("yahoo", "open", 15, 5)], now=t[2]).empty  # still down: once
    assert engine.on_cycle(None, [provider_row("yahoo", "half_open", 16, 5)], now=t[3]).empty
    assert kinds(engine.on_cycle(None, [provider_row("yahoo", "closed", 17, 5)], now=t[4])) == [(None, "provider_recovered")]
    # flapping within the cooldown: neither a second outage nor a second recovery
    assert engine.on_cycle(None, [provider_row("yahoo", "open", 20, 8)], now=t[5]).empty
    assert engine.on_cycle(None, [provider_row("yahoo", "closed", 21, 8)], now=t[6]).empty

    # by error rate since the last cycle (the breaker still closed); a metrics frame works as well as rows
    frame = lambda *rows: pd.DataFrame([provider_row(*r) for r in rows])  # noqa: E731
    assert engine.on_cycle(None, frame(("twelvedata", "closed", 100, 1)), now=t[7]).empty
    assert engine.on_cycle(None, frame(("twelvedata", "closed", 103, 3)), now=t[8]).empty  # too few requests
    out = engine.on_cycle(None, frame(("twelvedata", "closed", 113, 11)), now=t[9])
    assert kinds(out) == [(None, "provider_outage")] and "error rate 80%" in out["message"].item()
    assert engine.on_cycle(None, frame(("twelvedata", "closed", 113, 11)), now=t[10]).empty  # no requests: no news
    assert kinds(engine.on_cycle(None, frame(("twelvedata", "closed", 123, 11)), now=t[11])) == [(None, "provider_recovered")]
    engine.close()
    got = lake_alerts(lake)
    assert got["symbol"].isna().all()
    assert [d["provider"] for d in details(got)] == ["yahoo", "yahoo", "twelvedata", "twelvedata"]


def test_alerts_ignore_cycle_rows_of_the_metrics(lake):
    engine = AlertEngine(cfg(), lake, [])
    rows = [{"ts": T0, "scope": "cycle", "name": "ingest", "state": None, "requests": 10, "errors": 10}]
    assert engine.on_cycle(opps(), rows, now=T0).empty
    engine.close()


# ------------------------------------------------------------------------------------ sinks


def test_jsonl_file_lines_equal_the_lake_rows(lake, tmp_path):
    path = tmp_path / "out" / "alerts.jsonl"
    engine = AlertEngine(cfg(min_score=50), lake, [ConsoleSink(), FileSink(path)])
    engine.on_cycle(opps(("AAA", "breakout", 80), ("BBB", "golden_cross", 60, "long"), ("CCC", "volume_spike", 30, "short")), now=T0)
    engine.on_cycle(None, [provider_row("yahoo", "open", 5, 5)], now=T0 + pd.Timedelta(minutes=1))
    engine.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    rows = lake_alerts(lake)
    assert len(lines) == len(rows) == 4
    cols = ["ts", "symbol", "kind", "direction", "score", "message"]
    from_lake = sorted((d["id"], *[None if pd.isna(r[c]) else r[c] for c in cols])
                       for d, r in zip(details(rows), rows.to_dict("records")))
    from_file = sorted((x["id"], pd.Timestamp(x["ts"]), *[x[c] for c in cols[1:]]) for x in lines)
    assert from_lake == from_file


def test_console_sink_prints_one_line_per_alert(lake, capsys):
    engine = AlertEngine(cfg(), lake, [ConsoleSink()])
    engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)
    engine.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("ALERT 2026-11-24 04:00:00 mintel AAA breakout long score 80")


def test_webhook_payload_styles_from_the_environment(lake, tmp_path, receiver):
    env = {"MINTEL_ALERT_SINKS": "file,webhook,slack,discord,telegram", "MINTEL_ALERT_FILE": str(tmp_path / "a.jsonl"),
           "MINTEL_WEBHOOK_URL": receiver.url(f"/generic/{TOKEN}"),
           "MINTEL_SLACK_WEBHOOK_URL": receiver.url(f"/slack/{TOKEN}"),
           "MINTEL_DISCORD_WEBHOOK_URL": receiver.url(f"/discord/{TOKEN}"),
           "MINTEL_TELEGRAM_TOKEN": f"123:{TOKEN}", "MINTEL_TELEGRAM_CHAT_ID": "-1001",
           "MINTEL_TELEGRAM_BASE_URL": receiver.url("")}
    engine = AlertEngine(Settings(lake=lake.root), lake, env=env)
    out = engine.on_cycle(opps(("AAA", "breakout", 82.5)), now=T0)
    assert out["status"].item() == "queued"
    engine.close()
    generic, = receiver.bodies("/generic/")
    assert {k: generic[k] for k in ("source", "symbol", "kind", "direction", "score", "message", "interval", "price")} == {
        "source": "mintel", "symbol": "AAA", "kind": "breakout", "direction": "long", "score": 82.5,
        "message": "AAA did breakout", "interval": "1m", "price": 100.5}
    assert pd.Timestamp(generic["ts"]) == T0 and generic["bar_ts"] == T0.isoformat()
    slack, = receiver.bodies("/slack/")
    discord, = receiver.bodies("/discord/")
    telegram, = receiver.bodies(f"/bot123:{TOKEN}/sendMessage")
    assert set(slack) == {"text"} and set(discord) == {"content"} and set(telegram) == {"chat_id", "text"}
    assert slack["text"] == discord["content"] == telegram["text"] == "mintel AAA breakout long score 82: AAA did breakout"
    assert telegram["chat_id"] == "-1001"
    row = lake_alerts(lake)
    assert row["status"].item() == "sent" and row["sinks"].item() == "file,webhook,slack,discord,telegram"
    assert details(row)[0]["results"] == {s: "ok" for s in ("file", "webhook", "slack", "discord", "telegram")}


def test_slow_webhook_does_not_delay_the_cycle(lake, tmp_path):
    slow = Receiver(block=True)
    try:
        engine = AlertEngine(cfg(attempts=1), lake, [FileSink(tmp_path / "a.jsonl"), WebhookSink(slow.url("/hook"), timeout_s=30)])
        out = engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)
        # on_cycle is back while the receiver still holds the request unanswered
        assert not slow.answered.is_set()
        assert out["status"].item() == "queued" and lake.read("alerts").empty
        assert (tmp_path / "a.jsonl").read_text().count("\n") == 1  # the local sink did not wait either
        assert slow.got.wait(10)
        slow.release.set()
        assert slow.answered.wait(10)
        engine.close()
        assert lake_alerts(lake)["status"].tolist() == ["sent"]
    finally:
        slow.close()


def test_webhook_past_its_timeout_is_retried_then_failed(lake):
    slow = Receiver(block=True)
    try:
        engine = AlertEngine(cfg(attempts=3), lake, [WebhookSink(slow.url(f"/hook/{TOKEN}"), timeout_s=0.2)])
        assert engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)["status"].item() == "queued"
        engine.close(timeout_s=60)
        row = lake_alerts(lake)
        assert row["status"].item() == "failed"
        d = details(row)[0]
        assert d["attempts"] == {"webhook": 3} and "timeout" in d["reason"] and "after 3 attempts" in d["reason"]
        assert len(slow.requests) == 3
    finally:
        slow.close()


def test_webhook_down_is_retried_then_failed_with_a_reason(lake, caplog):
    url = f"http://127.0.0.1:{closed_port()}/hook/{TOKEN}"
    engine = AlertEngine(cfg(attempts=3), lake, [ConsoleSink(), WebhookSink(url, "slack")])
    with caplog.at_level(logging.DEBUG):
        assert engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)["status"].item() == "queued"
        engine.close()
    row = lake_alerts(lake)
    assert row["status"].item() == "failed"
    d = details(row)[0]
    assert d["results"]["console"] == "ok" and d["results"]["slack"].startswith("failed: ConnectError")
    assert d["attempts"]["slack"] == 3 and d["reason"].startswith("slack: ConnectError") and "after 3 attempts" in d["reason"]
    assert "failed" in caplog.text and TOKEN not in caplog.text


def test_server_error_is_retried_until_it_succeeds(lake):
    flaky = Receiver(fail_first=1)
    try:
        engine = AlertEngine(cfg(attempts=3), lake, [WebhookSink(flaky.url("/hook"), "discord")])
        engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)
        engine.close()
        row = lake_alerts(lake)
        assert row["status"].item() == "sent" and details(row)[0]["attempts"] == {"discord": 2}
        assert len(flaky.requests) == 2
    finally:
        flaky.close()


def test_client_error_is_not_retried(lake):
    gone = Receiver(fail_first=10, fail_status=404)
    try:
        engine = AlertEngine(cfg(attempts=3), lake, [WebhookSink(gone.url("/hook"))])
        engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)
        engine.close()
        d = details(lake_alerts(lake))[0]
        assert d["attempts"] == {"webhook": 1} and d["reason"] == "webhook: HTTP 404 after 1 attempt"
        assert len(gone.requests) == 1
    finally:
        gone.close()


def test_full_queue_drops_the_oldest_and_says_so(lake, caplog):
    slow = Receiver(block=True)
    try:
        engine = AlertEngine(cfg(queue_size=2, attempts=1, max_per_cycle=50), lake, [WebhookSink(slow.url("/hook"), timeout_s=30)])
        engine.on_cycle(opps(("S0", "breakout", 80)), now=T0)
        assert slow.got.wait(10)  # S0 is in flight, held by the receiver
        with caplog.at_level(logging.WARNING, logger="mintel.alerts"):
            engine.on_cycle(opps(*[(f"S{i}", "breakout", 80) for i in range(1, 5)]), now=T0 + pd.Timedelta(minutes=1))
        assert engine.stats()["dropped"] == 2 and engine.stats()["dropped_by_sink"] == {"webhook": 2}
        assert "2 alert(s) dropped" in caplog.text
        dropped = lake_alerts(lake)  # the dropped ones are recorded at once
        assert dropped["status"].tolist() == ["failed", "failed"]
        assert all("dropped: queue of 2 full" in d["reason"] for d in details(dropped))
        slow.release.set()
        engine.close()
        got = lake_alerts(lake)
        assert dict(zip(got["symbol"], got["status"])) == {"S0": "sent", "S1": "failed", "S2": "failed", "S3": "sent", "S4": "sent"}
        assert [b["symbol"] for b in slow.bodies()] == ["S0", "S3", "S4"]
    finally:
        slow.close()


def test_close_deadline_records_undelivered_alerts(lake):
    slow = Receiver(block=True)
    try:
        engine = AlertEngine(cfg(attempts=1), lake, [WebhookSink(slow.url("/hook"), timeout_s=30)])
        engine.on_cycle(opps(("AAA", "breakout", 80), ("BBB", "breakout", 80)), now=T0)
        assert slow.got.wait(10)
        engine.close(timeout_s=0.05)
        got = lake_alerts(lake)
        assert got["status"].tolist() == ["failed", "failed"]
        assert all("undelivered at shutdown" in d["reason"] for d in details(got))
    finally:
        slow.close()


def test_aclose_from_the_event_loop(lake, receiver):
    async def main():
        engine = AlertEngine(cfg(), lake, [WebhookSink(receiver.url("/hook"))])
        engine.on_cycle(opps(("AAA", "breakout", 80)), now=T0)
        await engine.aclose()
        return engine

    engine = asyncio.run(main())
    assert engine.closed and engine.stats()["pending"] == 0
    assert lake_alerts(lake)["status"].tolist() == ["sent"]


def test_no_url_or_token_in_the_lake_the_file_or_the_logs(lake, tmp_path, receiver, caplog):
    down = f"http://127.0.0.1:{closed_port()}/services/T000/{TOKEN}"
    env = {"MINTEL_ALERT_SINKS": "console,file,webhook,slack", "MINTEL_ALERT_FILE": str(tmp_path / "a.jsonl"),
           "MINTEL_WEBHOOK_URL": receiver.url(f"/hooks/{TOKEN}?token={TOKEN}"), "MINTEL_SLACK_WEBHOOK_URL": down,
           "MINTEL_ALERT_ATTEMPTS": "2", "MINTEL_ALERT_BACKOFF_S": "0.01"}
    with caplog.at_level(logging.DEBUG):
        engine = AlertEngine(Settings(lake=lake.root), lake, env=env)
        engine.on_cycle(opps(("AAA", "breakout", 80)), [provider_row("yahoo", "open", 5, 5)], now=T0)
        engine.close()
        repr(engine.cfg)
    assert len(receiver.requests) == 2 and TOKEN in receiver.requests[0][0]  # it did go to the real URL
    rows = lake.read("alerts")
    assert len(rows) == 2 and set(rows["status"]) == {"failed"}  # the slack sink is down
    text = rows.astype(str).to_csv()
    assert TOKEN not in text and "/hooks/" not in text and "T000" not in text
    port = receiver.server.server_port
    assert details(rows)[0]["targets"]["webhook"] == f"http://127.0.0.1:{port}/…"
    assert TOKEN not in (tmp_path / "a.jsonl").read_text()
    assert TOKEN not in caplog.text and "T000" not in caplog.text
    assert f"http://127.0.0.1:{port}/…" in caplog.text
    assert TOKEN not in repr(engine.cfg)
    for path in lake.root.rglob("*.parquet"):
        assert TOKEN.encode() not in path.read_bytes()


def test_redact_url_keeps_scheme_and_host_only():
    assert redact_url("https://hooks.slack.com/services/T0/B0/xyz") == "https://hooks.slack.com/…"
    assert redact_url("http://127.0.0.1:8080/bot123:abc/sendMessage?x=1") == "http://127.0.0.1:8080/…"


# ------------------------------------------------------------------------------------ settings


def test_settings_from_the_environment_and_the_alerts_table(tmp_path):
    toml = tmp_path / "mintel.toml"
    toml.write_text('[alerts]\nmin_score = 80\nsinks = ["console"]\nalways_kinds = ["volume_spike"]\ncooldown_s = 60\n')
    settings = load_config(toml, env={})
    a = AlertSettings.from_settings(settings, env={})
    assert (a.min_score, a.sinks, a.always_kinds, a.cooldown_s) == (80.0, ("console",), ("volume_spike",), 60.0)
    a = AlertSettings.from_settings(settings, env={"MINTEL_ALERT_MIN_SCORE": "65", "MINTEL_ALERT_SINKS": "file, webhook",
                                                   "MINTEL_WEBHOOK_URL": "https://example.com/x", "MINTEL_WEBHOOK_STYLE": "slack"})
    assert (a.min_score, a.sinks, a.webhook_style) == (65.0, ("file", "webhook"), "slack")
    d = AlertSettings.from_settings(Settings(), env={"MINTEL_WEBHOOK_URL": "https://example.com/x"})
    assert d.sinks == ("file", "webhook") and d.min_score == 70 and d.cooldown_s == 900


def test_settings_refuse_urls_and_tokens_outside_the_environment(tmp_path):
    with pytest.raises(ConfigError, match="environment only"):
        AlertSettings.from_settings(Settings(alerts={"webhook_url": "https://example.com/x"}), env={})
    toml = tmp_path / "mintel.toml"
    toml.write_text('[alerts]\ntelegram_token = "123:abc"\n')
    with pytest.raises(ConfigError, match="secret"):
        load_config(toml, env={})


def test_settings_name_what_is_wrong(lake):
    with pytest.raises(ConfigError, match="unknown sink 'pager'"):
        AlertSettings.from_settings(Settings(), env={"MINTEL_ALERT_SINKS": "console,pager"})
    with pytest.raises(ConfigError, match="MINTEL_ALERT_MIN_SCORE"):
        AlertSettings.from_settings(Settings(), env={"MINTEL_ALERT_MIN_SCORE": "high"})
    with pytest.raises(ConfigError, match="MINTEL_WEBHOOK_URL"):
        AlertEngine(Settings(lake=lake.root), lake, env={"MINTEL_ALERT_SINKS": "webhook"})
    with pytest.raises(ConfigError, match="MINTEL_TELEGRAM_TOKEN"):
        AlertEngine(Settings(lake=lake.root), lake, env={"MINTEL_ALERT_SINKS": "telegram"})
