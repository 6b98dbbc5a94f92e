"""The ``[alerts]`` settings, the alert kinds of outages and the statuses of an alert row."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mintel.config import Secret
from mintel.errors import ConfigError


OUTAGE, RECOVERED = "provider_outage", "provider_recovered"
QUEUED, SENT, FAILED, SUPPRESSED = "queued", "sent", "failed", "suppressed"
WEBHOOK_STYLES = ("generic", "slack", "discord")
_URL_KEYS = ("webhook_url", "url", "slack_webhook_url", "discord_webhook_url", "telegram_token")


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
        from mintel.alerts.sinks import SINKS  # the registry imports these settings

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
