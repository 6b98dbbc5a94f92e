"""The `mintel` command line: thin; every command calls package functions.

Errors become one line on stderr (``mintel: <input>: <what is wrong>``) and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

import pandas as pd

from mintel.errors import DataError, MintelError

log = logging.getLogger("mintel")

FORMATS = ("table", "json", "csv")


# ---------------------------------------------------------------------- output


def emit(data: pd.DataFrame | list[dict] | dict, fmt: str = "table", *, out=None) -> None:
    """Print records as a table, one JSON array of records, or CSV."""
    out = out or sys.stdout
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame([data] if isinstance(data, dict) else data)
    if fmt == "json":
        json.dump(_records(frame), out, default=str)
        out.write("\n")
    elif fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        if frame.empty:
            out.write("(no rows)\n")
        else:
            with pd.option_context("display.max_rows", 500, "display.max_columns", 40, "display.width", 200):
                out.write(frame.to_string(index=False))
                out.write("\n")


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready records: exact floats (repr), ISO 8601 UTC times, null for missing values."""
    frame = frame.copy()
    for c in frame.columns:
        col = frame[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(col):
            frame[c] = col.map(lambda t: None if pd.isna(t) else t.isoformat().replace("+00:00", "Z"))
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


# ---------------------------------------------------------------------- commands


def _lake(args):
    from mintel.lake import Lake

    return Lake(args.lake or _settings(args).lake)


def _settings(args):
    from mintel.config import load_config

    if getattr(args, "_settings", None) is None:
        args._settings = load_config(getattr(args, "config", None))
    return args._settings


def cmd_ingest(args) -> int:
    from mintel.ingest.service import build_service
    from mintel.universe import load_universe

    _long_running_memory_pool()
    settings = _settings(args).with_overrides(
        lake=args.lake, universe=args.universe, providers=args.provider, interval_s=args.interval_s,
        seed=args.seed, sim_speed=args.speed, source=args.source, always_on=True if args.always_on else None,
    )
    if settings.source not in ("bars", "quotes"):
        raise DataError(f"--source {settings.source!r}: expected bars or quotes")
    lake = _lake_writable(settings.lake)
    universe = load_universe(settings.universe)
    service = build_service(settings, lake, universe)
    print(
        f"mintel ingest: {len(universe)} symbols of {settings.universe} from {','.join(settings.providers)} "
        f"into {lake.location} (Ctrl-C to stop)",
        flush=True,
    )
    done = {"cycles": 0, "rows": 0}

    def on_cycle(r) -> None:
        done["cycles"] += 1
        done["rows"] += r.rows_written
        print(r.line(), flush=True)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # systemd/docker stop like Ctrl-C
    try:
        asyncio.run(service.run(cycles=args.cycles, on_cycle=on_cycle,
                                on_idle=lambda t: print(f"market closed: idling until {t} (--always-on to ingest anyway)", flush=True)))
        word = "done"
    except KeyboardInterrupt:
        word = "stopped"  # every acknowledged cycle is in the lake; nothing half-written is visible
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{word}: {done['cycles']} cycles, {done['rows']} rows written to {lake.location}", flush=True)
    return 0


def _long_running_memory_pool() -> None:
    """Arrow's allocations from the C library's allocator in the ingest process, unless
    ARROW_DEFAULT_MEMORY_POOL says otherwise: with pyarrow's default (mimalloc) the process kept
    pages of its per-cycle Arrow buffers (Parquet writes, snapshot tables), ~0.15 MB a cycle without
    bound (bench/bench_memory.py: 300 symbols, +37 MiB over cycles 500-800 with mimalloc, +5 MiB with
    the system allocator; jemalloc was flat too)."""
    import pyarrow as pa

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _lake_writable(root):
    from mintel.lake import Lake

    lake = Lake(root)
    lake.check_writable()
    return lake


UP_INTERVAL_S = 1.0
UP_SIM_SPEED = 60.0  # one simulated minute per wall second: a whole NSE session in about six minutes


def cmd_up(args) -> int:
    """The main job: ingests live until Ctrl-C (by default one cycle a second, one simulated minute
    each) and serves the dashboards beside it (--no-dashboards to skip them)."""
    args.cycles = None
    settings = _settings(args)
    if args.interval_s is None and settings.interval_s <= 0:  # nothing configured: a live pace
        args.interval_s = UP_INTERVAL_S
        if args.speed is None and settings.sim_speed == 1.0:
            args.speed = UP_SIM_SPEED
    lake = _lake_writable(args.lake or settings.lake)
    sched = None
    if not args.no_schedule:
        sched = _scheduler(args, settings.with_overrides(universe=args.universe), lake, on_run=_print_run)
        print("scheduled jobs: " + ", ".join(f"{r.job} (next {r.next_run_utc[:16]} UTC)" for r in sched.table().itertuples()),
              flush=True)
        sched.start()
    server = None
    try:
        if not args.no_dashboards:
            server = _dashboard_server(args, lake.location)
            server.start(log=_dashboard_log(server.lake))
            server.wait_ready()
            _print_urls(server)
        return cmd_ingest(args)
    finally:
        if server is not None:
            server.stop()
        if sched is not None:
            sched.stop()


def cmd_dashboard(args) -> int:
    """Serve the dashboards with Voilà until Ctrl-C."""
    server = _dashboard_server(args, args.lake or _settings(args).lake)
    server.start(log=None if args.quiet else sys.stderr)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.wait_ready()
        _print_urls(server)
        server.process.wait()
        return server.process.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


def _dashboard_server(args, lake):
    from mintel.ui.serve import DashboardServer

    token = args.token or os.environ.get("MINTEL_DASHBOARD_TOKEN") or None
    kw = {"notebooks": args.notebooks} if getattr(args, "notebooks", None) else {}
    return DashboardServer(lake=lake, ip=args.ip, port=args.port, token=token, max_kernels=args.max_kernels,
                           preheat=args.preheat, **kw)


def _dashboard_log(lake):
    from pathlib import Path

    from mintel.lake.store import is_url

    base = Path("data") if is_url(lake) else Path(lake).resolve().parent  # beside a local lake, not in it
    base.mkdir(parents=True, exist_ok=True)
    return open(base / "dashboard.log", "ab")


def _print_urls(server) -> None:
    print(f"dashboards (Voilà) for {server.lake}:", flush=True)
    for name, url in server.urls.items():
        print(f"  {name:<14} {url}", flush=True)
    if server.token:
        print("  (the token is required: this server is not bound to loopback)", flush=True)


def cmd_backfill(args) -> int:
    from mintel.ingest.backfill import run_backfill
    from mintel.universe import load_universe

    settings = _settings(args).with_overrides(lake=args.lake)
    lake = _lake_writable(settings.lake)
    universe = load_universe(args.universe or settings.universe)
    providers = [p.strip() for v in (args.provider or list(settings.providers)) for p in v.split(",") if p.strip()]
    r = run_backfill(settings, lake, universe, providers=providers, interval=args.interval, start=args.start,
                     end=args.end, chunk_symbols=args.chunk, progress=not args.no_progress)
    emit(r.records(), args.format)
    if r.not_found:
        print(f"not found at any provider: {', '.join(r.not_found)}", file=sys.stderr)
    if r.failed:
        print(f"failed (run again to resume): {', '.join(r.failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_import(args) -> int:
    from mintel.ingest.files import import_file

    lake = _lake_writable(args.lake or _settings(args).lake)
    result = import_file(lake, args.path, symbol=args.symbol, interval=args.interval, tz=args.tz)
    emit([vars(result)], args.format)
    return 0


def cmd_bars(args) -> int:
    frame = _lake(args).read_bars(args.symbols or None, args.interval, args.start, args.end)
    if args.tail:
        frame = frame.groupby("symbol", sort=False).tail(args.tail)
    emit(frame, args.format)
    return 0


def cmd_snapshot(args) -> int:
    frame = _lake(args).snapshot(args.symbols or None)
    if args.format == "table":
        frame = frame[["symbol", "sector", "ts", "price", "change_pct", "volume", "day_volume"]]
    emit(frame, args.format)
    return 0


SCAN_TABLE_COLUMNS = ["symbol", "sector", "price", "change_pct", "volume_ratio", "rsi", "macd_hist", "bb_pct_b",
                      "dist_sma_50_pct", "score", "direction", "signals"]


def cmd_scan(args) -> int:
    from mintel.analytics.scan import scan
    from mintel.engine import engine_from_args

    with engine_from_args(args) as engine:
        frame = scan(_lake(args), args.interval, filters=args.filter or (), sort=args.sort, top=args.top,
                     universe=args.universe, engine=engine)
    emit(frame[[c for c in SCAN_TABLE_COLUMNS if c in frame]] if args.format == "table" else frame, args.format)
    return 0


def cmd_opportunities(args) -> int:
    from mintel.analytics.scan import opportunities

    lake = _lake(args)
    if args.from_bars:
        frame = opportunities(lake, args.interval, args.kind, min_score=args.min_score, top=args.top, universe=args.universe)
    else:  # what the ingestion service announced in the last --hours of its market time, newest first
        frame = lake.read("opportunities", start=_latest_ts(lake, "opportunities") - pd.Timedelta(hours=args.hours))
        if args.kind:
            frame = frame[frame["kind"].isin(args.kind)]
        if args.min_score is not None:
            frame = frame[frame["score"] >= args.min_score]
        frame = frame.sort_values(["ts", "score"], ascending=[False, False], kind="stable").reset_index(drop=True)
        if args.top:
            frame = frame.head(args.top)
    if args.format == "table":
        frame = frame[["ts", "symbol", "kind", "direction", "score", "confidence", "message"]]
    emit(frame, args.format)
    return 0


def _latest_ts(lake, kind: str) -> pd.Timestamp:
    """The newest ``ts`` of ``kind`` in the lake (read from its newest partition), else now: on a
    weekend or a holiday the last session's rows are the latest, not nothing."""
    starts = [p.start for p in lake.partitions(kind) if p.start is not None]
    if starts:
        newest = lake.read(kind, start=max(starts), columns=["ts"])["ts"].max()
        if pd.notna(newest):
            return newest
    return pd.Timestamp.now(tz="UTC")


def cmd_indicators(args) -> int:
    from mintel.analytics.scan import indicators

    emit(indicators(args.symbol.upper(), _lake(args), args.interval, tail=args.tail), args.format)
    return 0


def cmd_indicators_backfill(args) -> int:
    from mintel.analytics.history import backfill_indicators
    from mintel.engine import engine_from_args

    symbols = None
    if args.universe:
        from mintel.universe import load_universe

        symbols = list(load_universe(args.universe)["symbol"])
    lake = _lake_writable(args.lake or _settings(args).lake)
    with engine_from_args(args) as engine:
        summary = backfill_indicators(lake, args.interval, args.start, args.end, symbols, engine=engine,
                                      warmup=args.warmup)
    emit(summary.record(), args.format)
    return 0


def cmd_volume(args) -> int:
    from mintel.analytics.scan import volume_analysis

    frame = volume_analysis(args.symbol.upper() if args.symbol else None, _lake(args), args.interval, tail=args.tail)
    emit(frame.head(args.top) if args.top and not args.symbol else frame, args.format)
    return 0


def cmd_sentiment(args) -> int:
    from mintel.analytics.scan import sentiment

    report = sentiment(_lake(args), args.interval, universe=args.universe)
    if args.format == "table":
        parts = report.get("parts") or []
        head = {k: v for k, v in report.items() if not isinstance(v, (list, dict))}
        emit([head], "table")
        if parts:
            print()
            emit(parts, "table")
        if report.get("sectors"):
            print()
            emit(report["sectors"], "table")
    else:
        emit([report], args.format)
    return 0


def cmd_health(args) -> int:
    from mintel.status import health

    h = health(_lake(args), window_minutes=args.minutes)
    if args.format == "table":
        emit([h.summary], "table")
        print()
        emit(h.providers if len(h.providers) else [{"providers": "none reported (the simulator has no limits)"}], "table")
    else:
        emit(h.records(), args.format)
    return 0


def cmd_lake(args) -> int:
    if args.action == "stats":
        emit(_lake(args).stats(), args.format)
    elif args.action == "compact":
        lake = _lake_writable(args.lake or _settings(args).lake)
        r = lake.compact()
        emit(r.details or [{"partition": None, "files": 0, "rows_before": 0, "rows_after": 0}], args.format)
    elif args.action == "retain":
        lake = _lake_writable(args.lake or _settings(args).lake)
        removed = lake.retain(dict(_settings(args).retention))
        emit([{"removed": p} for p in removed], args.format)
    elif args.action == "maintain":  # the nightly job: compact, then apply retention
        lake = _lake_writable(args.lake or _settings(args).lake)
        r = lake.compact()
        removed = lake.retain(dict(_settings(args).retention))
        emit([{"partitions_compacted": len(r.details or []), "partitions_removed": len(removed)}], args.format)
    return 0


def _scheduler(args, settings, lake, on_run=None):
    from mintel.schedule import Scheduler, jobs_from_config
    from mintel.universe import load_universe

    universe = load_universe(settings.universe)
    exchange = str(universe["exchange"].mode().iloc[0]) if "exchange" in universe and len(universe) else "NSE"
    return Scheduler(jobs_from_config(settings.schedule), lake, exchange=exchange, on_run=on_run)


def _print_run(run) -> None:
    took = f" in {(run.ended - run.started).total_seconds():.1f} s" if run.ended is not None else ""
    print(f"job {run.job}: {run.status}{took}  {run.detail or run.output or ''}".rstrip(), flush=True)


def cmd_schedule(args) -> int:
    """Run the scheduled jobs (mintel.toml [[schedule]], else the defaults) until Ctrl-C."""
    settings = _settings(args).with_overrides(lake=args.lake, universe=args.universe)
    lake = _lake_writable(settings.lake)
    sched = _scheduler(args, settings, lake, on_run=_print_run)
    if args.list:
        emit(sched.table(), args.format)
        return 0
    emit(sched.table(), "table")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        asyncio.run(sched.run())
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sched.wait_idle(timeout_s=10)
    return 0


def cmd_universe(args) -> int:
    from mintel.universe import list_universes, load_universe

    if args.action == "list":
        emit(list_universes(), args.format)
    else:
        if not args.name:
            raise_usage("universe show NAME")
        emit(load_universe(args.name), args.format)
    return 0


def cmd_watchlist(args) -> int:
    from mintel.universe import Watchlists

    w = Watchlists()
    a = args.action
    if a == "list":
        emit([{"watchlist": n, "symbols": len(w.get(n))} for n in w.names()], args.format)
        return 0
    if not args.name:
        raise_usage(f"watchlist {a} NAME [SYMBOL ...]")
    if a == "create":
        w.create(args.name, args.symbols)
    elif a == "add":
        w.add(args.name, args.symbols)
    elif a == "remove":
        w.remove(args.name, args.symbols)
    elif a == "delete":
        w.delete(args.name)
        return 0
    emit([{"watchlist": args.name, "symbol": s} for s in w.get(args.name)], args.format)
    return 0


def raise_usage(text: str):
    from mintel.errors import DataError

    raise DataError(f"usage: mintel {text}")


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mintel", description="Market intelligence workbench: ingest, store, analyse, show.")
    p.add_argument("--version", action="version", version=f"mintel {__import__('mintel').__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help_, data=True):
        c = sub.add_parser(name, help=help_, description=help_)
        c.set_defaults(func=func)
        c.add_argument("--lake", help="lake directory (default: MINTEL_LAKE, else data/lake)")
        c.add_argument("--config", help="settings file (default: MINTEL_CONFIG, else ./mintel.toml)")
        if data:
            c.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
        return c

    def ingest_options(c):
        c.add_argument("--provider", help="provider name(s), comma-separated (default: sim)")
        c.add_argument("--universe", help="universe name or CSV path (default: nifty500)")
        c.add_argument("--interval-s", type=float, dest="interval_s", help="seconds between cycles; 0 = back to back, one simulated minute each")
        c.add_argument("--seed", type=int, help="simulator seed (default 42)")
        c.add_argument("--speed", type=float, help="simulated minutes per wall minute when --interval-s > 0")
        c.add_argument("--source", choices=("bars", "quotes"), help="poll bars, or quote snapshots built into bars (default: bars)")
        c.add_argument("--always-on", action="store_true", dest="always_on", help="ingest outside market hours too")

    def dashboard_options(c):
        c.add_argument("--ip", default="127.0.0.1", help="address to bind (default 127.0.0.1; others require a token)")
        c.add_argument("--port", type=int, default=8866, help="port (default 8866; 0 = any free one)")
        c.add_argument("--token", help="access token (default: MINTEL_DASHBOARD_TOKEN; generated when not on loopback)")
        c.add_argument("--max-kernels", type=int, default=12, dest="max_kernels", help="most dashboards open at once")
        c.add_argument("--preheat", action="store_true",
                       help="keep one kernel per dashboard rendered ahead (pages open faster; ~150 MB each)")

    c = command("up", cmd_up, "the main job: ingest live (the simulator by default) and serve the dashboards", data=False)
    ingest_options(c)
    dashboard_options(c)
    c.add_argument("--no-dashboards", action="store_true", dest="no_dashboards", help="no dashboards")
    c.add_argument("--no-schedule", action="store_true", dest="no_schedule", help="no scheduled jobs (reports, maintenance)")
    c = command("schedule", cmd_schedule, "run the scheduled jobs (reports, maintenance) at market times")
    c.add_argument("--list", action="store_true", help="show the jobs and when each runs next, then exit")
    c.add_argument("--universe", help="universe whose exchange calendar applies (default: settings)")
    c = command("dashboard", cmd_dashboard, "serve the dashboards with Voilà", data=False)
    dashboard_options(c)
    c.add_argument("--notebooks", help="directory of dashboard notebooks (default: mintel's notebooks/dashboards)")
    c.add_argument("--quiet", action="store_true", help="hide Voilà's log")
    c = command("ingest", cmd_ingest, "the ingestion service", data=False)
    ingest_options(c)
    c.add_argument("--cycles", type=int, help="stop after N cycles (default: run until interrupted)")

    c = command("backfill", cmd_backfill, "fetch bar history into the lake within the providers' limits (resumable)")
    c.add_argument("--provider", action="append", help="provider name(s), comma-separated or repeated (default: settings)")
    c.add_argument("--interval", choices=("1d", "1m"), default="1d")
    c.add_argument("--start", required=True)
    c.add_argument("--end")
    c.add_argument("--universe", help="universe name or CSV (default: settings)")
    c.add_argument("--chunk", type=int, default=50, help="symbols per chunk")
    c.add_argument("--no-progress", action="store_true", dest="no_progress")

    c = command("import", cmd_import, "import a CSV or Parquet history file as bars")
    c.add_argument("path")
    c.add_argument("--symbol", required=True)
    c.add_argument("--interval", default="1d")
    c.add_argument("--tz", default="UTC", help="time zone of naive times in the file (default UTC)")

    c = command("bars", cmd_bars, "bars from the lake")
    c.add_argument("symbols", nargs="*")
    c.add_argument("--interval", default="1m")
    c.add_argument("--start")
    c.add_argument("--end")
    c.add_argument("--tail", type=int, help="only the last N bars per symbol")

    c = command("snapshot", cmd_snapshot, "the latest snapshot, one row per symbol")
    c.add_argument("symbols", nargs="*")

    from mintel.engine import add_engine_arguments

    c = command("scan", cmd_scan, "the universe's latest indicators, scores and signals, filtered and sorted")
    c.add_argument("--interval", default="1d")
    c.add_argument("--filter", action="append", help="structured filter, e.g. 'rsi<30', 'volume_ratio>=2', 'sector=IT' (repeatable)")
    c.add_argument("--sort", default="score", help="column to sort by; +col ascending, -col descending")
    c.add_argument("--top", type=int)
    c.add_argument("--universe", help="restrict to a universe (name or CSV)")
    add_engine_arguments(c)

    c = command("opportunities", cmd_opportunities, "opportunities announced by ingestion (or --from-bars: detected now)")
    c.add_argument("--interval", default="1d")
    c.add_argument("--min-score", type=float, dest="min_score")
    c.add_argument("--kind", action="append", help="detector name (repeatable): breakout, volume_spike, ...")
    c.add_argument("--top", type=int)
    c.add_argument("--hours", type=float, default=24.0, help="how far back from the newest announced one to read (default 24)")
    c.add_argument("--from-bars", action="store_true", dest="from_bars", help="run the detectors on the lake's bars now")
    c.add_argument("--universe")

    c = command("indicators", cmd_indicators, "one symbol's bars with every indicator")
    c.add_argument("symbol")
    c.add_argument("--interval", default="1d")
    c.add_argument("--tail", type=int, default=20)

    c = command("indicators-backfill", cmd_indicators_backfill,
                "compute every bar's indicators over the history and store them in the lake's indicators table")
    c.add_argument("--interval", default="1d")
    c.add_argument("--start", help="first bar to write (UTC; the warm-up bars before it are read, not written)")
    c.add_argument("--end", help="last bar to write (UTC, as `bars --end`: a date alone is its 00:00; default: the newest)")
    c.add_argument("--universe", help="only this universe's symbols (name or CSV; default: every symbol in the lake)")
    c.add_argument("--warmup", type=int, help="bars read before --start (default: 250 daily, 400 intraday)")
    add_engine_arguments(c)

    c = command("volume", cmd_volume, "volume analysis: one symbol's bars, or every symbol's latest, most unusual first")
    c.add_argument("symbol", nargs="?")
    c.add_argument("--interval", default="1d")
    c.add_argument("--tail", type=int, default=20)
    c.add_argument("--top", type=int, default=25)

    c = command("sentiment", cmd_sentiment, "market breadth, sector returns and one sentiment score with its parts")
    c.add_argument("--interval", default="1d")
    c.add_argument("--universe")

    from mintel import lab, reports

    reports.add_parser(sub, command)
    lab.add_parser(sub, command)

    c = command("health", cmd_health, "providers, rates, errors, latency, cycle times, lake size")
    c.add_argument("--minutes", type=float, default=15.0, help="window of recent metrics (default 15)")

    c = command("lake", cmd_lake, "lake maintenance: stats, compact, retain, maintain (compact + retain)")
    c.add_argument("action", choices=("stats", "compact", "retain", "maintain"))

    c = command("universe", cmd_universe, "bundled universes")
    c.add_argument("action", choices=("list", "show"))
    c.add_argument("name", nargs="?")

    c = command("watchlist", cmd_watchlist, "user watchlists (data/watchlists)")
    c.add_argument("action", choices=("list", "show", "create", "add", "remove", "delete"))
    c.add_argument("name", nargs="?")
    c.add_argument("symbols", nargs="*")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except MintelError as exc:
        print(f"mintel: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mintel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
