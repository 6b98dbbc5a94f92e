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

from mintel.alerts.engine import AlertEngine
from mintel.alerts.settings import FAILED, OUTAGE, QUEUED, RECOVERED, SENT, SUPPRESSED, WEBHOOK_STYLES, AlertSettings
from mintel.alerts.sinks import (SINKS, Alert, ConsoleSink, FileSink, Sink, SinkError, TelegramSink, WebhookSink, build_sinks,
                                 redact_url)

__all__ = ["Alert", "AlertEngine", "AlertSettings", "ConsoleSink", "FAILED", "FileSink", "OUTAGE", "QUEUED", "RECOVERED",
           "SENT", "SINKS", "SUPPRESSED", "Sink", "SinkError", "TelegramSink", "WEBHOOK_STYLES", "WebhookSink", "build_sinks",
           "redact_url"]
