"""An alert, and the sinks that deliver it: console and JSONL file (inline), webhook, Slack, Discord and
Telegram (network; ``mintel.alerts.engine`` runs each on its own thread). Sinks register by name in ``SINKS``."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
import pandas as pd

from mintel.alerts.settings import WEBHOOK_STYLES, AlertSettings
from mintel.config import Secret
from mintel.errors import ConfigError


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
