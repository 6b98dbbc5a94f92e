"""The alert engine: rules, de-duplication and cooldown, delivery threads and the lake rows (see ``mintel.alerts``)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mintel import schema
from mintel.alerts.settings import FAILED, OUTAGE, QUEUED, RECOVERED, SENT, SUPPRESSED, AlertSettings
from mintel.alerts.sinks import Alert, Sink, SinkError, build_sinks

log = logging.getLogger(__name__)


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

    def unrecorded(self, opportunities: pd.DataFrame) -> pd.DataFrame:
        """The ``opportunities`` that qualify for an alert (score, kinds) with no alert on record: none for
        their (bar ts, symbol, kind), and none for their (symbol, kind) raised within the cooldown before
        they were detected (that one held them back; the cooldown runs on the alerts' clock, as
        ``detected_at``). On a restart, those of the last cycle are the ones whose alerts the stopped run
        may never have raised, or raised without recording: raising them again makes the alerts at least
        once (a kill between raising and recording repeats some)."""
        if opportunities is None or not len(opportunities):
            return schema.empty_frame("opportunities")
        qualify = opportunities[self._wanted(opportunities)].reset_index(drop=True)
        if qualify.empty:
            return qualify
        cooldown = pd.Timedelta(seconds=self.cfg.cooldown_s)
        when = pd.to_datetime(qualify["detected_at"], utc=True) if "detected_at" in qualify else qualify["ts"]
        when = when.fillna(qualify["ts"])
        records = self.lake.read("alerts", start=min(when.min(), qualify["ts"].min()) - cooldown - pd.Timedelta(days=1))
        records = records[records["symbol"].notna()]
        bars = [_detail(d).get("bar_ts") for d in records["detail"]]
        done = {(pd.Timestamp(bar), sym, kind) for sym, kind, bar in zip(records["symbol"], records["kind"], bars) if bar}
        latest = records.groupby(["symbol", "kind"])["ts"].max().to_dict() if len(records) else {}

        def held(w, s, k) -> bool:
            last = latest.get((s, k))
            return last is not None and last >= w - cooldown

        keep = [(t, s, k) not in done and not held(w, s, k)
                for t, w, s, k in zip(qualify["ts"], when, qualify["symbol"], qualify["kind"])]
        return qualify[keep].reset_index(drop=True)

    def _wanted(self, opps: pd.DataFrame) -> np.ndarray:
        """The opportunities the rules alert on (min score or an always-kind; the kinds asked for)."""
        score = pd.to_numeric(opps["score"], errors="coerce")
        kind = opps["kind"].astype(str)
        want = (score >= self.cfg.min_score) | kind.isin(self.cfg.always_kinds)
        if self.cfg.kinds is not None:
            want &= kind.isin(self.cfg.kinds)
        return want.to_numpy()

    def _from_opportunities(self, opps: pd.DataFrame | None, now: pd.Timestamp) -> tuple[list[Alert], list[Alert]]:
        if opps is None or not len(opps):
            return [], []
        cfg = self.cfg
        want = self._wanted(opps)
        score = pd.to_numeric(opps["score"], errors="coerce")
        chosen = opps[want].assign(_score=score[want].fillna(-math.inf).to_numpy())
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
    score = schema.finite(rec.get("score"))
    detail = {"bar_ts": rec["ts"].isoformat() if isinstance(rec.get("ts"), pd.Timestamp) else rec.get("ts"),
              "interval": rec.get("interval"), "price": schema.finite(rec.get("price")), "sector": rec.get("sector"),
              "confidence": schema.finite(rec.get("confidence"))}
    direction = rec.get("direction") if isinstance(rec.get("direction"), str) else None
    message = rec.get("message") if isinstance(rec.get("message"), str) and rec.get("message") else \
        f"{rec['symbol']} {rec['kind']}"
    return Alert(now, str(rec["symbol"]), str(rec["kind"]), direction, score, message,
                 {k: v for k, v in detail.items() if v is not None and v == v})


def _count(v) -> int:
    f = schema.finite(v)
    return int(f) if f is not None else 0


def _detail(text) -> dict:
    try:
        d = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}
