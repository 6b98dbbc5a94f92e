"""The scanner and the analysis views the CLI and notebooks call: scan, opportunities, indicators,
volume_analysis, sentiment.

Each takes a ``Lake`` (default: ``Lake()``, i.e. ``MINTEL_LAKE``) or a bars DataFrame, reads only the
history the analysis needs and returns a DataFrame (``sentiment``: a dict). The work is the pure
functions of ``mintel.analytics``: indicators -> detectors -> scoring -> filters / breadth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from mintel import schema
from mintel.analytics.breadth import market_breadth
from mintel.analytics.detectors import DetectorParams, Panel, detect
from mintel.analytics.filters import apply_filters, known_columns
from mintel.analytics.indicators import compute_indicators
from mintel.analytics.keys import DEFAULT_TZ, is_intraday, session_and_minute, to_utc_ns
from mintel.analytics.momentum import arrange
from mintel.analytics.scoring import ScoreWeights, score_symbols
from mintel.analytics.volume import VOLUME_COLUMNS, volume_frame
from mintel.errors import DataError
from mintel.lake import Lake
from mintel.schema import INDICATORS, SNAPSHOT

SCAN_EXTRAS = ["direction", "sma_200", "new_high_52w", "new_low_52w", "volume_z", "factors"]
SCAN_COLUMNS = [f.name for f in SNAPSHOT] + [c for c in SCAN_EXTRAS if c not in SNAPSHOT.names]
DEFAULT_LOOKBACK = {"daily": pd.Timedelta(days=420), "intraday": pd.Timedelta(days=10)}  # 420 d: ~285 sessions


def enrich(bars: pd.DataFrame, interval: str = "1d", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Bars with the indicator columns (and sma_200), bb_pct_b and dist_sma_50_pct, in the bars' order."""
    out = compute_indicators(bars, interval, tz, extra=("sma_200",))
    close, upper, lower, sma_50 = (out[c].to_numpy(dtype=np.float64) for c in ("close", "bb_upper", "bb_lower", "sma_50"))
    with np.errstate(invalid="ignore", divide="ignore"):
        width = upper - lower
        pct_b = np.where(width > 0, (close - lower) / width, np.nan)
        dist = np.where(sma_50 > 0, (close / sma_50 - 1.0) * 100.0, np.nan)
    return out.assign(bb_pct_b=pct_b, dist_sma_50_pct=dist)


def in_order(bars: pd.DataFrame) -> pd.DataFrame:
    """``bars`` sorted by (symbol, ts) (as they are when they already are), index reset."""
    if len(bars) and "ts" in bars:
        keep, _, _ = arrange(bars["symbol"], to_utc_ns(bars["ts"]))
        if len(keep) != len(bars) or (np.diff(keep) < 0).any():
            bars = bars.iloc[np.r_[keep, np.setdiff1d(np.arange(len(bars)), keep)]]  # rows without symbol/ts last
    return bars.reset_index(drop=True)


def load_bars(source: Lake | pd.DataFrame | str | None, interval: str = "1d", symbols: Iterable[str] | str | None = None,
              lookback: str | pd.Timedelta | None = None) -> pd.DataFrame:
    """Bars for the analysis, sorted by (symbol, ts): a DataFrame's (symbols selected), or the last
    ``lookback`` of the lake's."""
    if isinstance(source, pd.DataFrame):
        if symbols is not None and "symbol" in source:
            want = [symbols] if isinstance(symbols, str) else list(symbols)
            source = source[source["symbol"].isin(want)]
        return in_order(source)
    lake = source if isinstance(source, Lake) else Lake(source)
    want = None if symbols is None else ([symbols] if isinstance(symbols, str) else list(symbols))
    end = _last_ts(lake, interval, want)
    if end is None:  # no bars of this interval (for these symbols)
        return schema.empty_frame("bars")
    return lake.read_bars(want, interval=interval, start=end - _span(interval, lookback))


def _span(interval: str, lookback) -> pd.Timedelta:
    return DEFAULT_LOOKBACK["intraday" if is_intraday(interval) else "daily"] if lookback is None else pd.Timedelta(lookback)


def _last_ts(lake: Lake, interval: str, symbols: list[str] | None) -> pd.Timestamp | None:
    """The newest bar's ts (of ``symbols``), reading partitions newest first until one has any."""
    for part in reversed(lake.partitions("bars", interval)):
        t = lake.read_arrow("bars", interval=interval, symbols=symbols, partitions=[part], columns=["ts"])
        if t.num_rows:
            return pd.Timestamp(pc.max(t["ts"]).as_py())
    return None


def _universe(universe, source) -> pd.DataFrame | None:
    if isinstance(universe, pd.DataFrame):
        return universe
    if isinstance(universe, str):
        from mintel.universe import load_universe

        return load_universe(universe)
    if isinstance(source, Lake):
        snap = source.snapshot()
        if len(snap):
            return snap[["symbol", "name", "sector"]]
    # No snapshot (a lake filled by backfill or import): names and sectors from the bundled lists.
    from mintel.universe import bundled_metadata

    return bundled_metadata()[["symbol", "name", "sector"]]


def _symbols_of(uni: pd.DataFrame | None) -> list[str] | None:
    return None if uni is None else list(uni["symbol"])


def analyze(source=None, interval: str = "1d", *, universe=None, tz: str = DEFAULT_TZ, lookback=None,
            weights: ScoreWeights | Mapping[str, float] | None = None, params: DetectorParams | None = None,
            now: pd.Timestamp | None = None, engine=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scan frame, opportunities standing on the last bars) in one pass; see ``scan``. ``engine``: a
    ``mintel.engine`` engine (None: this process)."""
    source = Lake() if source is None else source
    uni = _universe(universe, source)
    want = _symbols_of(uni if universe is not None else None)
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    if getattr(engine, "distributed", False) and not isinstance(source, pd.DataFrame):
        return _analyze_on(engine, source if isinstance(source, Lake) else Lake(source), interval, want, lookback,
                           uni=uni, tz=tz, weights=weights, params=params, now=now)
    return _analyze_bars(load_bars(source, interval, want, lookback), interval, uni, tz, weights, params, now)


def _analyze_bars(bars: pd.DataFrame, interval: str, uni, tz: str, weights, params, now) -> tuple[pd.DataFrame, pd.DataFrame]:
    if bars.empty:
        return pd.DataFrame(columns=SCAN_COLUMNS), schema.empty_frame("opportunities")
    enriched = enrich(_usable(bars), interval, tz)
    signals = _meta(detect(enriched, last_only=True, interval=interval, params=params, now=now), uni, ("sector",))
    scores = score_symbols(enriched, signals, weights, interval=interval)
    return _latest(enriched, interval, tz, signals, scores, uni, now), signals


def _analyze_on(engine, lake: Lake, interval: str, want: list[str] | None, lookback, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``analyze`` on a distributed engine: every figure of the scan is a symbol's own, so each group of
    symbols is analysed on a worker from its own bars (the same window as the local read: the last
    ``lookback`` before the lake's newest bar), and the rows come back in symbol order, as one pass gives them."""
    end = _last_ts(lake, interval, want)
    if end is None:
        return _analyze_bars(schema.empty_frame("bars"), interval, **kw)
    parts = engine.map_symbol_groups(_analyze_bars, lake, interval, end - _span(interval, lookback), None, want,
                                     interval=interval, **kw)
    frames, signals = [f for f, _ in parts if len(f)], [s for _, s in parts if len(s)]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCAN_COLUMNS),
            pd.concat(signals, ignore_index=True) if signals else schema.empty_frame("opportunities"))


def _usable(bars: pd.DataFrame) -> pd.DataFrame:
    """The bars with a symbol, a ts and finite prices and volume (the others say nothing about the latest state)."""
    ok = bars["symbol"].notna().to_numpy().copy()
    if "ts" in bars:
        ok &= bars["ts"].notna().to_numpy()
    for c in ("open", "high", "low", "close", "volume"):
        if c in bars:
            ok &= np.isfinite(bars[c].to_numpy(dtype=np.float64, na_value=np.nan))
    return bars if ok.all() else bars.loc[ok]


def _meta(rows: pd.DataFrame, uni: pd.DataFrame | None, columns=("name", "sector")) -> pd.DataFrame:
    """``rows`` with name/sector from the universe (kept as they are where it has none)."""
    if uni is None or uni.empty or rows.empty:
        return rows
    meta = uni.drop_duplicates("symbol").set_index("symbol")
    rows = rows.copy()
    for c in columns:
        if c in meta:
            mapped = rows["symbol"].map(meta[c])
            rows[c] = mapped.where(mapped.notna(), rows[c]) if c in rows else mapped
    return rows


def _latest(enriched: pd.DataFrame, interval: str, tz: str, signals: pd.DataFrame, scores: pd.DataFrame,
            uni: pd.DataFrame | None, now: pd.Timestamp) -> pd.DataFrame:
    """One row per symbol from its last bar (``enriched``: usable bars sorted by (symbol, ts)): day
    figures, indicators, score and signals."""
    params = DetectorParams()
    p = Panel(enriched, interval, params, last_only=True, history=params.volume_window + 2)  # prev close, volume z
    r = np.flatnonzero(p.wanted)
    if not len(r):
        return pd.DataFrame(columns=SCAN_COLUMNS)
    src = p.src[r]
    pick = [c for c in ("name", "sector", "source", "bb_pct_b", "dist_sma_50_pct") if c in enriched]
    out = enriched.iloc[src][pick].reset_index(drop=True)
    out["symbol"] = p.sym[r]
    out["interval"] = interval
    out["ts"] = pd.DatetimeIndex(p.ts[r].view("M8[ns]"), tz="UTC")
    out["price"], out["volume"] = p.c[r], p.v[r]
    out["open"], out["high"], out["low"] = p.o[r], p.h[r], p.l[r]
    out["day_volume"], out["prev_close"] = p.v[r], p.prev_close[r]
    if is_intraday(interval):  # the last session's figures; prev_close is the session before's last close
        for col, values in _session_figures(enriched, tz).items():
            out[col] = values
    for col in (*INDICATORS, "sma_200"):
        out[col] = p.ind[col][r] if col in p.ind else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        # As the live snapshot: against the previous close, else (a symbol's first session) the session's open.
        base = np.where(out["prev_close"] > 0, out["prev_close"], out["open"])
        out["change_pct"] = np.where(base > 0, (out["price"] / base - 1.0) * 100.0, np.nan)
    out["volume_z"] = p.volume_z[r]
    kinds = signals.groupby("symbol", sort=False)["kind"].agg(",".join) if len(signals) else pd.Series(dtype=object)
    out["signals"] = out["symbol"].map(kinds).fillna("").to_numpy(dtype=object)
    split = out["signals"].str.split(",")
    out["new_high_52w"] = split.map(lambda k: "high_52w" in k).astype(float)
    out["new_low_52w"] = split.map(lambda k: "low_52w" in k).astype(float)
    sc = scores.set_index("symbol")
    for col in ("score", "direction", "factors"):
        out[col] = out["symbol"].map(sc[col]).to_numpy()
    out["updated_at"] = now
    out = _meta(out, uni)
    for col in SCAN_COLUMNS:
        if col not in out:
            out[col] = None
    return out[SCAN_COLUMNS]


def _session_figures(enriched: pd.DataFrame, tz: str) -> dict[str, np.ndarray]:
    """Per symbol (in order): open, high, low and volume of its last session, and the close before it."""
    rows, g, _ = arrange(enriched["symbol"], to_utc_ns(enriched["ts"]))
    enriched = enriched.iloc[rows] if (len(rows) != len(enriched) or (np.diff(rows) < 0).any()) else enriched
    session, _ = session_and_minute(to_utc_ns(enriched["ts"]), tz)
    gid = g.gid
    run = np.flatnonzero(np.r_[True, (gid[1:] != gid[:-1]) | (session[1:] != session[:-1])])
    first = run[np.searchsorted(run, g.last, side="right") - 1]  # first bar of each symbol's last session
    k = np.searchsorted(run, first)
    col = {c: enriched[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}
    return {
        "open": col["open"][first],
        "high": np.maximum.reduceat(col["high"], run)[k],
        "low": np.minimum.reduceat(col["low"], run)[k],
        "day_volume": np.add.reduceat(col["volume"], run)[k],
        "prev_close": np.where(first > g.starts, col["close"][np.maximum(first - 1, 0)], np.nan),
    }


def scan(bars_or_lake=None, interval: str = "1d", filters=(), sort: str = "score", top: int | None = None,
         universe=None, *, tz: str = DEFAULT_TZ, lookback=None, weights=None, now: pd.Timestamp | None = None,
         engine=None) -> pd.DataFrame:
    """Latest row per symbol (``SCAN_COLUMNS``: the snapshot's columns, then direction, sma_200, 52-week
    flags, volume_z, factors), filtered (``mintel.analytics.filters``), sorted and cut to ``top``.

    ``sort``: a column, descending for numbers and ascending for text; ``+col`` / ``-col`` force the
    order. ``universe``: a name, a DataFrame (symbol, name, sector) restricting the scan, or None.
    ``engine``: where the per-symbol work runs (``mintel.engine``; None: this process); same rows either way.
    """
    frame, _ = analyze(bars_or_lake, interval, universe=universe, tz=tz, lookback=lookback, weights=weights, now=now,
                       engine=engine)
    frame = apply_filters(frame, filters)
    return _top(_sorted(frame, sort), top)


def _sorted(frame: pd.DataFrame, sort: str | None) -> pd.DataFrame:
    if not sort:
        return frame
    sort = sort.strip()
    name = sort.lstrip("+-")
    if name not in frame.columns:
        raise DataError(f"sort {sort!r}: unknown column (known: {', '.join(frame.columns)})")
    text = known_columns().get(name) == "text" or not pd.api.types.is_numeric_dtype(frame[name])
    ascending = sort.startswith("+") or (text and not sort.startswith("-"))
    by, order = ([name], [ascending]) if name == "symbol" else ([name, "symbol"], [ascending, True])
    return frame.sort_values(by, ascending=order, kind="stable", na_position="last").reset_index(drop=True)


def _top(frame: pd.DataFrame, top: int | None) -> pd.DataFrame:
    if top is None:
        return frame
    if int(top) < 0:
        raise DataError(f"top {top}: must be >= 0")
    return frame.head(int(top)).reset_index(drop=True)


def opportunities(bars_or_lake=None, interval: str = "1d", kinds=None, *, last_only: bool = True,
                  min_score: float | None = None, direction: str | None = None, top: int | None = None,
                  universe=None, tz: str = DEFAULT_TZ, lookback=None, params: DetectorParams | None = None,
                  now: pd.Timestamp | None = None) -> pd.DataFrame:
    """Opportunity rows (``schema.OPPORTUNITIES``) by score, best first: those standing on each
    symbol's last bar, or (``last_only=False``) every bar of the history read."""
    source = Lake() if bars_or_lake is None else bars_or_lake
    uni = _universe(universe, source)
    bars = load_bars(source, interval, _symbols_of(uni if universe is not None else None), lookback)
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    if bars.empty:
        return schema.empty_frame("opportunities")
    out = _meta(detect(enrich(bars, interval, tz), kinds, last_only, interval=interval, params=params, now=now), uni,
                ("sector",))
    if min_score is not None:
        out = out[out["score"] >= float(min_score)]
    if direction is not None:
        if direction not in ("long", "short", "neutral"):
            raise DataError(f"direction {direction!r}: expected long, short or neutral")
        out = out[out["direction"] == direction]
    out = out.sort_values(["score", "symbol", "kind"], ascending=[False, True, True], kind="stable")
    return _top(out.reset_index(drop=True), top)


def indicators(symbol: str, bars_or_lake=None, interval: str = "1d", *, tail: int | None = 50, tz: str = DEFAULT_TZ,
               lookback=None) -> pd.DataFrame:
    """One symbol's bars with every indicator, bb_pct_b and dist_sma_50_pct (the last ``tail`` bars)."""
    bars = load_bars(Lake() if bars_or_lake is None else bars_or_lake, interval, [symbol], lookback)
    if bars.empty:
        raise DataError(f"{symbol}: no {interval} bars")
    e = enrich(bars, interval, tz)
    cols = [c for c in ("symbol", "ts", "open", "high", "low", "close", "volume") if c in e]
    e = e[cols + [*INDICATORS, "sma_200", "bb_pct_b", "dist_sma_50_pct"]]
    return (e if tail is None else e.tail(int(tail))).reset_index(drop=True)


def volume_analysis(symbol: str | None = None, bars_or_lake=None, interval: str = "1d", *, tail: int | None = 50,
                    tz: str = DEFAULT_TZ, lookback=None, window: int = 20, unusual_ratio: float = 2.0,
                    unusual_z: float = 2.0) -> pd.DataFrame:
    """Volume analysis: one symbol's last ``tail`` bars, or (no symbol) each symbol's latest bar,
    most unusual first. Columns: symbol, ts, close, volume, volume_ratio, ``VOLUME_COLUMNS``, unusual."""
    source = Lake() if bars_or_lake is None else bars_or_lake
    bars = load_bars(source, interval, None if symbol is None else [symbol], lookback)
    if bars.empty:
        if symbol is not None:
            raise DataError(f"{symbol}: no {interval} bars")
        return pd.DataFrame(columns=["symbol", "ts", "close", "volume", "volume_ratio", *VOLUME_COLUMNS, "unusual"])
    e = enrich(bars, interval, tz)
    v = volume_frame(e, window)
    out = pd.concat([e[["symbol", "ts", "close", "volume", "volume_ratio"]], v], axis=1)
    with np.errstate(invalid="ignore"):
        out["unusual"] = (out["volume_ratio"] >= unusual_ratio) | (out["volume_z"] >= unusual_z)
    if symbol is not None:
        return (out if tail is None else out.tail(int(tail))).reset_index(drop=True)
    rows, g, _ = arrange(out["symbol"], to_utc_ns(out["ts"]))
    out = out.iloc[rows[g.last]]
    return out.sort_values(["volume_ratio", "symbol"], ascending=[False, True], na_position="last").reset_index(drop=True)


def sentiment(bars_or_lake=None, interval: str = "1d", universe=None, *, tz: str = DEFAULT_TZ, lookback=None,
              flat_pct: float = 0.0) -> dict:
    """Market breadth and sentiment (``Breadth.to_dict()``) of the scan's latest rows; a scan frame
    (one row per symbol with price, change_pct, ...) may be given instead of bars or a lake."""
    src = bars_or_lake
    if isinstance(src, pd.DataFrame) and "price" in src and "close" not in src:
        frame = src
    else:
        frame, _ = analyze(src, interval, universe=universe, tz=tz, lookback=lookback)
    return market_breadth(frame, flat_pct=flat_pct).to_dict()
