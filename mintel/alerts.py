"""Alerts: strong opportunities, volume spikes, breakouts and provider outages, sent to sinks.

    on_cycle(opportunities, provider_metrics, now)
      -> rules: score >= min_score, or a kind always alerted; provider breaker open / error rate high
      -> de-duplication and a cooldown per (symbol, kind) on the caller's clock
      -> local sinks (console, JSONL file) at once; network sinks (webhook, slack, discord, telegram)
         each on its own thread behind a bounded queue (drop-oldest, counted), with retries and a timeout
      -> one lake row per alert with its final status, appended from the caller's thread (the service
         stays the lake's only writer) at the first call after every sink has answered

A slow or dead webhook never delays a cycle. Webhook URLs and bot tokens come from the environment
only and are shown as ``scheme://host/…``: never logged whole, never written to the lake or a file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import httpx
import pandas as pd

from mintel import schema
from mintel.config import Secret
from mintel.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["Alert", "AlertEngine", "AlertSettings", "SINKS", "build_sinks", "redact_url"]

OUTAGE, RECOVERED = "provider_outage", "provider_recovered"
QUEUED, SENT, FAILED, SUPPRESSED = "queued", "sent", "failed", "suppressed"
WEBHOOK_STYLES = ("generic", "slack", "discord")
_URL_KEYS = ("webhook_url", "url", "slack_webhook_url", "discord_webhook_url", "telegram_token")


# ------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class AlertSettings:
    """What is alerted, where it goes and how hard delivery tries. Secrets only from the environment."""

    min_score: float = 70.0  # opportunities scoring at least this are alerted
    always_kinds: tuple[str, ...] = ("volume_spike", "breakout", "breakdown")  # alerted whatever their score
    kinds: tuple[str, ...] | None = None  # only these opportunity kinds (None: all)
    cooldown_s: float = 900.0  # per (symbol, kind); per provider for outages
    max_per_cycle: int = 25  # more symbol alerts in one cycle are recorded as suppressed, best scores sent
    sinks: tuple[str, ...] = ("file",)  # console is opt-in: at 25 alerts a cycle it would drown the cycle lines
    file: Path | None = None  # JSONL sink; default <lake>/../alerts.jsonl
    webhook_style: str = "generic"  # generic | slack | discord, for the "webhook" sink
    timeout_s: float = 5.0  # per HTTP request
    attempts: int = 3  # per alert and network sink, the first included
    backoff_s: float = 0.5  # before the 2nd attempt; doubles after
    queue_size: int = 200  # per network sink; the oldest alert is dropped when full
    close_timeout_s: float = 10.0  # close() waits this long for queued alerts
    outage_error_rate: float = 0.5  # errors / requests since the last cycle that mark a provider down
    outage_min_requests: int = 5  # requests since the last cycle before the error rate counts
    urls: Mapping[str, Secret] = field(default_factory=dict, repr=False)  # sink name -> webhook URL
    telegram_token: Secret = field(default_factory=lambda: Secret(None), repr=False)
    telegram_chat_id: str | None = None
    telegram_base_url: str = "https://api.telegram.org"

    @classmethod
    def from_settings(cls, settings: Any = None, env: Mapping[str, str] | None = None) -> "AlertSettings":
        """From ``settings.alerts`` (the ``[alerts]`` table of mintel.toml), ``settings.alert_*`` attributes
        and the environment (``MINTEL_ALERT_*``, ``MINTEL_WEBHOOK_URL``/``_STYLE``, ``MINTEL_TELEGRAM_*``)."""
        env = os.environ if env is None else env
        table = dict(getattr(settings, "alerts", None) or {})
        for key in _URL_KEYS:
            if key in table:
                raise ConfigError(f"alerts.{key}: webhook URLs and tokens come from the environment only "
                                  f"(MINTEL_WEBHOOK_URL, MINTEL_TELEGRAM_TOKEN)")
        names = {f.name for f in fields(cls)} - {"urls", "telegram_token"}
        values: dict[str, Any] = {}
        for name in sorted(names):
            for origin, raw in ((f"alerts.{name}", table.get(name)), (f"alert_{name}", getattr(settings, f"alert_{name}", None)),
                                (f"MINTEL_ALERT_{name.upper()}", env.get(f"MINTEL_ALERT_{name.upper()}"))):
                if raw is not None and raw != "":
                    values[name] = _cast_field(origin, name, raw)
        if env.get("MINTEL_WEBHOOK_STYLE"):
            values["webhook_style"] = env["MINTEL_WEBHOOK_STYLE"].strip().lower()
        if env.get("MINTEL_TELEGRAM_CHAT_ID"):
            values["telegram_chat_id"] = env["MINTEL_TELEGRAM_CHAT_ID"]
        if env.get("MINTEL_TELEGRAM_BASE_URL"):
            values["telegram_base_url"] = env["MINTEL_TELEGRAM_BASE_URL"]
        urls = {"webhook": Secret(env.get("MINTEL_WEBHOOK_URL")),
                "slack": Secret(env.get("MINTEL_SLACK_WEBHOOK_URL") or env.get("MINTEL_WEBHOOK_URL")),
                "discord": Secret(env.get("MINTEL_DISCORD_WEBHOOK_URL") or env.get("MINTEL_WEBHOOK_URL"))}
        token = Secret(env.get("MINTEL_TELEGRAM_TOKEN"))
        if "sinks" not in values:  # by default: the local sinks, plus whatever the environment configures
            values["sinks"] = cls.sinks + (("webhook",) if urls["webhook"] else ()) + \
                (("telegram",) if token and values.get("telegram_chat_id") else ())
        out = cls(urls=urls, telegram_token=token, **values)
        if out.webhook_style not in WEBHOOK_STYLES:
            raise ConfigError(f"alerts: webhook style {out.webhook_style!r} unknown (known: {', '.join(WEBHOOK_STYLES)})")
        unknown = [s for s in out.sinks if s not in SINKS]
        if unknown:
            raise ConfigError(f"alerts: unknown sink {', '.join(map(repr, unknown))} (known: {', '.join(SINKS)})")
        return out


def _cast_field(origin: str, name: str, raw: Any) -> Any:
    try:
        if name in ("sinks", "always_kinds", "kinds"):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(s.strip() for s in items if str(s).strip())
        if name in ("attempts", "queue_size", "max_per_cycle", "outage_min_requests"):
            return int(raw)
        if name == "file":
            return Path(raw)
        if name in ("webhook_style", "telegram_chat_id", "telegram_base_url"):
            return str(raw).strip()
        return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {raw!r} is not a valid value for {name}") from None


# ------------------------------------------------------------------------------------ alerts


@dataclass
class Alert:
    """One alert as raised; its delivery outcome is added when the row is written."""

    ts: pd.Timestamp  # when raised
    symbol: str | None  # None for market-wide alerts
    kind: str
    direction: str | None
    score: float | None
    message: str
    detail: dict = field(default_factory=dict)  # bar_ts, interval, price, sector, confidence / provider, state
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def record(self) -> dict:
        """The alert as JSON-able fields: what the file and webhooks receive."""
        return {"id": self.id, "ts": self.ts.isoformat(), "symbol": self.symbol, "kind": self.kind,
                "direction": self.direction, "score": self.score, "message": self.message, **self.detail}

    def text(self) -> str:
        """One line for chat sinks and the console."""
        where = self.symbol or "market"
        score = f" score {self.score:.0f}" if self.score is not None else ""
        return f"mintel {where} {self.kind}{' ' + self.direction if self.direction else ''}{score}: {self.message}"


class SinkError(Exception):
    """A sink could not deliver; ``retryable`` when trying again may help (timeouts, 5xx, 429)."""

    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.retryable = retryable


class Sink(Protocol):
    name: str
    target: str  # where it delivers, redacted: safe for logs and the lake
    inline: bool  # local and quick: run in the caller's thread; otherwise on a delivery thread

    def send(self, alert: Alert) -> None: ...  # raises SinkError

    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """``scheme://host:port/…``: a webhook URL fit for a log line (its path and query carry the token)."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid url>"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}/…"


class ConsoleSink:
    name, inline = "console", True

    def __init__(self, stream=None) -> None:
        self.stream = stream  # None: sys.stderr at the time of sending
        self.target = "stderr" if stream is None else getattr(stream, "name", "stream")

    def send(self, alert: Alert) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(f"ALERT {alert.ts:%Y-%m-%d %H:%M:%S} {alert.text()}\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            raise SinkError(f"console: {exc}", retryable=False) from None

    def close(self) -> None:
        pass


class FileSink:
    """One JSON line per alert (``Alert.record()``), appended to ``path``."""

    name, inline = "file", True

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.target = str(self.path)

    def send(self, alert: Alert) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(alert.record(), default=str, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise SinkError(f"{self.path}: {exc.strerror or exc}", retryable=False) from None

    def close(self) -> None:
        pass


class WebhookSink:
    """JSON POST to a webhook: the alert record (generic), ``{"text"}`` (Slack) or ``{"content"}`` (Discord)."""

    inline = False

    def __init__(self, url: str | Secret, style: str = "generic", *, name: str | None = None, timeout_s: float = 5.0) -> None:
        secret = url if isinstance(url, Secret) else Secret(url)
        if not secret:
            raise ConfigError(f"alerts: sink {name or style!r} needs a URL (MINTEL_WEBHOOK_URL)")
        if style not in WEBHOOK_STYLES:
            raise ConfigError(f"alerts: webhook style {style!r} unknown (known: {', '.join(WEBHOOK_STYLES)})")
        self._url = secret
        self.style = style
        self.name = name or ("webhook" if style == "generic" else style)
        self.target = redact_url(secret.reveal())
        self.timeout = httpx.Timeout(timeout_s)
        # The transport, not httpx.Client: the client logs every request URL, and this one is a secret.
        self._transport = httpx.HTTPTransport(retries=0)

    def payload(self, alert: Alert) -> dict:
        if self.style == "slack":
            return {"text": alert.text()}
        if self.style == "discord":
            return {"content": alert.text()[:2000]}  # Discord refuses longer messages
        return {"source": "mintel", **alert.record()}

    def send(self, alert: Alert) -> None:
        self._post(self._url.reveal(), self.payload(alert))

    def _post(self, url: str, body: dict) -> None:
        request = httpx.Request("POST", url, json=body, headers={"user-agent": "mintel-alerts"},
                                extensions={"timeout": self.timeout.as_dict()})
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise SinkError(f"timeout ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # connection refused, reset, protocol errors
            raise SinkError(self._scrub(f"{type(exc).__name__}: {exc}")) from None
        if response.status_code >= 300:
            retryable = response.status_code == 429 or response.status_code >= 500
            raise SinkError(f"HTTP {response.status_code}", retryable=retryable)

    def _scrub(self, text: str) -> str:
        url = self._url.reveal() or ""
        path = httpx.URL(url).raw_path.decode("ascii", "replace") if url else ""
        for s in (url, path):
            if s and len(s) > 1:
                text = text.replace(s, "/…")
        return text

    def close(self) -> None:
        self._transport.close()


class TelegramSink(WebhookSink):
    """``sendMessage`` of the Bot API: ``{base}/bot<token>/sendMessage`` with ``chat_id`` and ``text``."""

    def __init__(self, token: str | Secret, chat_id: str, *, base_url: str = "https://api.telegram.org",
                 timeout_s: float = 5.0) -> None:
        token = token if isinstance(token, Secret) else Secret(token)
        if not token or not chat_id:
            raise ConfigError("alerts: sink 'telegram' needs MINTEL_TELEGRAM_TOKEN and MINTEL_TELEGRAM_CHAT_ID")
        super().__init__(Secret(f"{base_url.rstrip('/')}/bot{token.reveal()}/sendMessage"), "generic",
                         name="telegram", timeout_s=timeout_s)
        self.chat_id = chat_id

    def payload(self, alert: Alert) -> dict:
        return {"chat_id": self.chat_id, "text": alert.text()[:4096]}


def _console(cfg: AlertSettings, lake_root: Path) -> Sink:
    return ConsoleSink()


def _file(cfg: AlertSettings, lake_root: Path) -> Sink:
    # beside the lake (data/alerts.jsonl for data/lake); a lake on an object store keeps it in ./data
    return FileSink(cfg.file or Path(lake_root).parent / "alerts.jsonl")


def _webhook(style: str | None) -> Callable[[AlertSettings, Path], Sink]:
    def make(cfg: AlertSettings, lake_root: Path) -> Sink:
        name = style or "webhook"
        return WebhookSink(cfg.urls.get(name) or Secret(None), style or cfg.webhook_style, name=name, timeout_s=cfg.timeout_s)
    return make


def _telegram(cfg: AlertSettings, lake_root: Path) -> Sink:
    return TelegramSink(cfg.telegram_token, cfg.telegram_chat_id or "", base_url=cfg.telegram_base_url, timeout_s=cfg.timeout_s)


SINKS: dict[str, Callable[[AlertSettings, Path], Sink]] = {
    "console": _console,
    "file": _file,
    "webhook": _webhook(None),
    "slack": _webhook("slack"),
    "discord": _webhook("discord"),
    "telegram": _telegram,
}


def build_sinks(cfg: AlertSettings, lake_root: str | os.PathLike) -> list[Sink]:
    """The sinks named in ``cfg.sinks``, from the registry."""
    return [SINKS[name](cfg, Path(lake_root)) for name in cfg.sinks]


# ------------------------------------------------------------------------------------ delivery


class _Worker:
    """One network sink's delivery thread: a bounded queue (drop-oldest), retries with backoff."""

    def __init__(self, sink: Sink, cfg: AlertSettings, report: Callable[[str, str, bool, str | None, int], None]) -> None:
        self.sink, self.cfg, self.report = sink, cfg, report
        self.queue: deque[Alert] = deque()
        self.cv = threading.Condition()
        self.closing = False
        self.abandon = threading.Event()  # set at the close deadline: stop retrying
        self.in_flight: Alert | None = None
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name=f"mintel-alerts-{sink.name}", daemon=True)
        self.thread.start()

    def put(self, alert: Alert) -> Alert | None:
        """Queue ``alert``; returns the alert dropped to make room, if any."""
        with self.cv:
            old = None
            if len(self.queue) >= max(self.cfg.queue_size, 1):
                old = self.queue.popleft()
                self.dropped += 1
            self.queue.append(alert)
            self.cv.notify()
            return old

    def _run(self) -> None:
        try:
            while True:
                with self.cv:
                    while not self.queue and not self.closing:
                        self.cv.wait()
                    if not self.queue or self.abandon.is_set():
                        return
                    alert = self.in_flight = self.queue.popleft()
                ok, reason, attempts = self._deliver(alert)
                with self.cv:
                    self.in_flight = None
                self.report(alert.id, self.sink.name, ok, reason, attempts)
        finally:
            self.sink.close()

    def _deliver(self, alert: Alert) -> tuple[bool, str | None, int]:
        reason, attempt = None, 0
        for attempt in range(1, max(self.cfg.attempts, 1) + 1):
            try:
                self.sink.send(alert)
                return True, None, attempt
            except SinkError as exc:
                reason = str(exc)
                if not exc.retryable or attempt >= self.cfg.attempts:
                    break
                if self.abandon.wait(self.cfg.backoff_s * 2 ** (attempt - 1)):
                    reason += "; abandoned at shutdown"
                    break
        return False, f"{reason} after {attempt} attempt{'s' if attempt != 1 else ''}", attempt

    def stop(self) -> None:
        with self.cv:
            self.closing = True
            self.cv.notify()


@dataclass
class _Pending:
    alert: Alert
    sinks: list[str]
    results: dict[str, tuple[bool, str | None, int]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ the engine


class AlertEngine:
    """Turns each cycle's opportunities and provider health into alerts, sends them, records them.

    ``settings``: mintel Settings (read through ``AlertSettings.from_settings``) or an AlertSettings.
    ``sinks``: built from the settings when not given. Use ``close()``/``aclose()`` (or ``with``) at the end.
    """

    def __init__(self, settings: Any, lake, sinks: Iterable[Sink] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.cfg = settings if isinstance(settings, AlertSettings) else AlertSettings.from_settings(settings, env)
        self.lake = lake
        self.sinks: list[Sink] = list(sinks) if sinks is not None else build_sinks(self.cfg, lake.root if getattr(lake, "is_local", True) else Path("data/lake"))
        self._workers = {s.name: _Worker(s, self.cfg, self._report) for s in self.sinks if not s.inline}
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._finished: list[dict] = []  # lake rows of alerts every sink has answered for
        self._last: dict[tuple[str, str], pd.Timestamp] = {}  # (symbol or @provider, kind) -> last raised
        self._providers: dict[str, dict] = {}  # name -> {"down": None | "breaker" | "errors", "requests", "errors"}
        self._seeded = False
        self._dropped_reported = 0
        self.closed = False
        self.counts = {"raised": 0, "sent": 0, "failed": 0, "suppressed": 0, "dropped": 0}
        log.info("alerts: sinks %s, min score %g, always %s, cooldown %gs",
                 ", ".join(f"{s.name}({s.target})" for s in self.sinks) or "none", self.cfg.min_score,
                 ",".join(self.cfg.always_kinds) or "-", self.cfg.cooldown_s)

    # ---------------------------------------------------------------- the cycle

    def on_cycle(self, opportunities: pd.DataFrame | None = None, provider_metrics: pd.DataFrame | list[dict] | None = None,
                 now: pd.Timestamp | None = None) -> pd.DataFrame:
        """Raise this cycle's alerts and queue them; append finished ones to the lake.

        Returns the alerts raised now (ALERTS columns; status ``queued`` until the network sinks answer,
        final when every sink is local). Never waits on a network sink."""
        if self.closed:
            raise RuntimeError("AlertEngine is closed")
        now = schema.utc_timestamp(now if now is not None else pd.Timestamp.now(tz="UTC"), "now")
        if not self._seeded:
            self._seed(now)
        raised, suppressed = self._from_opportunities(opportunities, now)
        raised += self._from_providers(provider_metrics, now)
        for alert in raised:
            self._dispatch(alert)
        rows = [self._row(a, SUPPRESSED, {"reason": f"over max_per_cycle ({self.cfg.max_per_cycle})"}) for a in suppressed]
        self.counts["suppressed"] += len(suppressed)
        out = self._frame([self._finished_row(a.id) or self._row(a, QUEUED) for a in raised])
        self._write(rows)
        self._report_drops()
        return out

    def flush(self) -> int:
        """Append the alerts whose delivery finished since the last call; returns rows written."""
        return self._write([])

    def stats(self) -> dict:
        """Counts since start, per sink queue depth and drops, and alerts still being delivered."""
        with self._lock:
            pending = len(self._pending)
        return {**self.counts, "pending": pending,
                "queued": {n: len(w.queue) for n, w in self._workers.items()},
                "dropped_by_sink": {n: w.dropped for n, w in self._workers.items()}}

    def close(self, timeout_s: float | None = None) -> int:
        """Deliver what is queued for up to ``timeout_s`` (default ``close_timeout_s``), record every alert
        (undelivered ones as failed) and stop the delivery threads. Returns rows written."""
        if self.closed:
            return 0
        self.closed = True
        deadline = time.monotonic() + (self.cfg.close_timeout_s if timeout_s is None else timeout_s)
        for w in self._workers.values():
            w.stop()
        for w in self._workers.values():
            w.thread.join(max(0.0, deadline - time.monotonic()))
        late = [w for w in self._workers.values() if w.thread.is_alive()]
        for w in late:
            w.abandon.set()
        with self._lock:
            missing = [(a, s) for a, p in self._pending.items() for s in p.sinks if s not in p.results]
        for alert_id, sink in missing:
            self._report(alert_id, sink, False, "undelivered at shutdown", 0)
        if late:
            log.warning("alerts: %s did not finish by the close deadline; %d delivery(ies) recorded as failed",
                        ", ".join(f"{w.sink.name} ({w.sink.target})" for w in late), len(missing))
        for s in self.sinks:
            if s.inline:
                s.close()
        return self._write([])

    async def aclose(self, timeout_s: float | None = None) -> int:
        return await asyncio.to_thread(self.close, timeout_s)

    def __enter__(self) -> "AlertEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- rules

    def _from_opportunities(self, opps: pd.DataFrame | None, now: pd.Timestamp) -> tuple[list[Alert], list[Alert]]:
        if opps is None or not len(opps):
            return [], []
        cfg = self.cfg
        score = pd.to_numeric(opps["score"], errors="coerce")
        kind = opps["kind"].astype(str)
        want = (score >= cfg.min_score) | kind.isin(cfg.always_kinds)
        if cfg.kinds is not None:
            want &= kind.isin(cfg.kinds)
        chosen = opps[want.to_numpy()].assign(_score=score[want].fillna(-math.inf))
        # One alert per (symbol, kind) and cycle: the best scoring.
        chosen = chosen.sort_values("_score", ascending=False, kind="stable").drop_duplicates(["symbol", "kind"])
        admitted = []
        for rec in chosen.to_dict("records"):
            key = (str(rec["symbol"]), str(rec["kind"]))
            if not self._cool(key, now):
                continue
            self._last[key] = now
            admitted.append(_opportunity_alert(rec, now))
        return admitted[: cfg.max_per_cycle], admitted[cfg.max_per_cycle:]

    def _from_providers(self, metrics: pd.DataFrame | list[dict] | None, now: pd.Timestamp) -> list[Alert]:
        if metrics is None or not len(metrics):
            return []
        frame = pd.DataFrame(metrics) if not isinstance(metrics, pd.DataFrame) else metrics
        if "scope" in frame:
            frame = frame[frame["scope"] == "provider"]
        alerts = []
        for rec in frame.to_dict("records"):
            name = str(rec.get("name"))
            st = self._providers.setdefault(name, {"down": None, "requests": 0, "errors": 0})
            requests, errors = _count(rec.get("requests")), _count(rec.get("errors"))
            if requests < st["requests"] or errors < st["errors"]:  # counters restarted
                st["requests"] = st["errors"] = 0
            d_req, d_err = requests - st["requests"], errors - st["errors"]
            st["requests"], st["errors"] = requests, errors
            state = rec.get("state") if isinstance(rec.get("state"), str) else None
            # The error rate since the last cycle: the metrics' own error_rate is since start.
            rate = d_err / d_req if d_req >= self.cfg.outage_min_requests else None
            high = rate is not None and rate >= self.cfg.outage_error_rate
            info = {"provider": name, "state": state, "error_rate": rate, "requests": d_req}
            if st["down"] is None and (state == "open" or high):
                why = f"breaker {state}" if state == "open" else f"error rate {rate:.0%} over the last {d_req} requests"
                key = (f"@{name}", OUTAGE)
                if self._cool(key, now):  # flapping within the cooldown: neither outage nor recovery
                    self._last[key] = now
                    st["down"] = "breaker" if state == "open" else "errors"
                    alerts.append(Alert(now, None, OUTAGE, None, None, f"provider {name} is down: {why}", info))
            elif st["down"] is not None and not high and (
                    state == "closed" if st["down"] == "breaker" else (rate is not None and state != "open")):
                st["down"] = None
                rate_text = f", error rate {rate:.0%}" if rate is not None else ""
                alerts.append(Alert(now, None, RECOVERED, None, None,
                                    f"provider {name} recovered (breaker {state or '-'}{rate_text})", info))
        return alerts

    def _cool(self, key: tuple[str, str], now: pd.Timestamp) -> bool:
        last = self._last.get(key)
        return last is None or (now - last).total_seconds() >= self.cfg.cooldown_s

    def _seed(self, now: pd.Timestamp) -> None:
        """The cooldowns and announced outages of the alerts already in the lake (a restart)."""
        self._seeded = True
        recent = self.lake.read("alerts", start=now - pd.Timedelta(seconds=self.cfg.cooldown_s), end=now)
        for rec in recent.sort_values("ts", kind="stable").to_dict("records"):
            provider = _detail(rec.get("detail")).get("provider")
            sym = rec["symbol"] if isinstance(rec["symbol"], str) else (f"@{provider}" if provider else None)
            if sym is None:
                continue
            self._last[(sym, rec["kind"])] = max(self._last.get((sym, rec["kind"]), rec["ts"]), rec["ts"])
            if provider and rec["kind"] in (OUTAGE, RECOVERED):
                st = self._providers.setdefault(provider, {"down": None, "requests": 0, "errors": 0})
                st["down"] = "breaker" if rec["kind"] == OUTAGE and rec["status"] != SUPPRESSED else None

    # ---------------------------------------------------------------- delivery and records

    def _dispatch(self, alert: Alert) -> None:
        self.counts["raised"] += 1
        names = [s.name for s in self.sinks]
        log.info("alert %s: %s -> %s", alert.id, alert.text(), ",".join(names) or "no sinks")
        with self._lock:
            self._pending[alert.id] = _Pending(alert, names)
        if not names:
            self._finish(alert.id)
        for sink in self.sinks:
            if sink.inline:
                try:
                    sink.send(alert)
                    self._report(alert.id, sink.name, True, None, 1)
                except SinkError as exc:
                    self._report(alert.id, sink.name, False, str(exc), 1)
            else:
                dropped = self._workers[sink.name].put(alert)
                if dropped is not None:
                    self.counts["dropped"] += 1
                    self._report(dropped.id, sink.name, False,
                                 f"dropped: queue of {self.cfg.queue_size} full (sink slow or down)", 0)

    def _report(self, alert_id: str, sink: str, ok: bool, reason: str | None, attempts: int) -> None:
        """A sink's outcome for an alert (from any thread); the alert is finished when every sink answered."""
        with self._lock:
            p = self._pending.get(alert_id)
            if p is None or sink in p.results:  # already recorded (e.g. abandoned at shutdown)
                return
            p.results[sink] = (ok, reason, attempts)
            done = len(p.results) == len(p.sinks)
        if not ok:
            target = next((s.target for s in self.sinks if s.name == sink), "?")
            log.warning("alert %s to %s (%s) failed: %s", alert_id, sink, target, reason)
        if done:
            self._finish(alert_id)

    def _finish(self, alert_id: str) -> None:
        with self._lock:
            p = self._pending.pop(alert_id, None)
            if p is None:
                return
            failed = {s: r for s, (ok, r, _) in p.results.items() if not ok}
            status = SUPPRESSED if not p.sinks else FAILED if failed else SENT
            extra = {"results": {s: "ok" if ok else f"failed: {r}" for s, (ok, r, _) in p.results.items()},
                     "attempts": {s: n for s, (_, _, n) in p.results.items()}}
            if failed:
                extra["reason"] = "; ".join(f"{s}: {r}" for s, r in failed.items())
            elif not p.sinks:
                extra["reason"] = "no sinks configured"
            self.counts[status] += 1
            self._finished.append(self._row(p.alert, status, extra))

    def _finished_row(self, alert_id: str) -> dict | None:
        with self._lock:
            return next((r for r in self._finished if r["_id"] == alert_id), None)

    def _row(self, alert: Alert, status: str, extra: Mapping[str, Any] | None = None) -> dict:
        targets = {s.name: s.target for s in self.sinks}
        detail = {"id": alert.id, **alert.detail, "targets": targets, **(extra or {})}
        return {"ts": alert.ts, "symbol": alert.symbol, "kind": alert.kind, "direction": alert.direction,
                "score": alert.score, "message": alert.message, "sinks": ",".join(targets), "status": status,
                "detail": json.dumps(detail, default=str, ensure_ascii=False), "_id": alert.id}

    def _write(self, rows: list[dict]) -> int:
        with self._lock:
            rows, self._finished = rows + self._finished, []
        if not rows:
            return 0
        return self.lake.append("alerts", self._frame(rows))

    @staticmethod
    def _frame(rows: list[dict]) -> pd.DataFrame:
        if not rows:
            return schema.empty_frame("alerts")
        return schema.to_pandas(schema.conform("alerts", pd.DataFrame(rows).drop(columns="_id")))

    def _report_drops(self) -> None:
        total = self.counts["dropped"]
        if total > self._dropped_reported:
            by_sink = ", ".join(f"{n} {w.dropped}" for n, w in self._workers.items() if w.dropped)
            log.warning("alerts: %d alert(s) dropped since the last cycle, queues full (%s dropped in total: %s)",
                        total - self._dropped_reported, total, by_sink)
            self._dropped_reported = total


def _opportunity_alert(rec: dict, now: pd.Timestamp) -> Alert:
    score = _float(rec.get("score"))
    detail = {"bar_ts": rec["ts"].isoformat() if isinstance(rec.get("ts"), pd.Timestamp) else rec.get("ts"),
              "interval": rec.get("interval"), "price": _float(rec.get("price")), "sector": rec.get("sector"),
              "confidence": _float(rec.get("confidence"))}
    direction = rec.get("direction") if isinstance(rec.get("direction"), str) else None
    message = rec.get("message") if isinstance(rec.get("message"), str) and rec.get("message") else \
        f"{rec['symbol']} {rec['kind']}"
    return Alert(now, str(rec["symbol"]), str(rec["kind"]), direction, score, message,
                 {k: v for k, v in detail.items() if v is not None and v == v})


def _float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _count(v) -> int:
    f = _float(v)
    return int(f) if f is not None else 0


def _detail(text) -> dict:
    try:
        d = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}
