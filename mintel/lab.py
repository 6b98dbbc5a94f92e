"""The signal lab: every detector's edge, measured on the lake's history.

A detector is worth what its signals have predicted. ``SignalLab`` runs detectors (the registry's, or
any function of the bars) over a universe's history and scores their signals:

- entry: by default the **open of the bar after the signal bar** (``entry="next_open"``). A detector
  fires on a closed bar, so that bar's close is already gone when the signal exists; the next open is
  the first price a trader can take, and using it keeps look-ahead out. ``entry="close"`` (the
  signal bar's close, as a market-on-close order would get) is there to compare.
- forward return at h bars: the same kind of price h of the symbol's own bars after the entry
  (open -> open h bars later, or close -> close), times the signal's direction (+1 long, -1 short);
  neutral signals are left out. A hit is a direction-adjusted return > 0.
- excess return: direction x (return - the universe's average forward return on the same bar, over
  the same horizon and with the same convention).
- portfolio (``vectorbt.Portfolio.from_signals``): every signal opens a position at its entry, held
  ``hold`` bars; one position per symbol at a time (signals while one is open, or whose holding
  period runs past the history, are not taken). Each symbol of the universe is a sleeve of
  ``init_cash`` and the sleeves form one group without cash sharing, so the portfolio's value is
  their sum. Fees and slippage per order, from Settings (``lab_fees``, ``lab_slippage``) when they
  are set, else 0.05 % each.
- baseline: as many signals as the detector gave, on (symbol, bar) cells drawn uniformly without
  replacement from the same window, carrying the detector's directions and scores shuffled; seeded
  per detector (``seed`` and the detector's name), so a scorecard is reproducible.

vectorbt (and numba behind it) is imported inside the functions that use it: ``import mintel.lab``
and the live path never pay its import or JIT cost.
"""

from __future__ import annotations

import logging
import math
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from mintel.analytics.keys import to_utc_ns
from mintel.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["SignalLab", "scorecard", "DEFAULT_FEES", "DEFAULT_SLIPPAGE", "ENTRIES", "TABLE_COLUMNS",
           "add_parser", "cmd_lab"]

DEFAULT_FEES = 0.0005  # a fraction of each order's value
DEFAULT_SLIPPAGE = 0.0005  # a fraction of the price, against the order
ENTRIES = ("next_open", "close")
HORIZONS = (1, 5, 20)
SESSION_MINUTES = 375  # NSE's session: annualises intraday Sharpe ratios
TABLE_COLUMNS = ["detector", "signals", "hit_rate", "avg_return_1", "avg_return_5", "avg_return_20", "avg_excess_5",
                 "median_excess_5", "trades", "total_return", "sharpe", "max_drawdown", "baseline_hit_rate",
                 "baseline_avg_return_5", "baseline_sharpe"]
TRADE_COLUMNS = {"Column": "symbol", "Direction": "direction", "Entry Timestamp": "entry_ts",
                 "Avg Entry Price": "entry_price", "Exit Timestamp": "exit_ts", "Avg Exit Price": "exit_price",
                 "Size": "size", "Entry Fees": "entry_fees", "Exit Fees": "exit_fees", "PnL": "pnl",
                 "Return": "return", "Status": "status"}

Detectors = str | Callable | Iterable | Mapping | None


def costs(settings=None, fees: float | None = None, slippage: float | None = None) -> tuple[float, float]:
    """(fees, slippage): the arguments, else Settings' ``lab_fees`` / ``lab_slippage``, else the defaults."""
    if fees is None:
        fees = getattr(settings, "lab_fees", None)
    if slippage is None:
        slippage = getattr(settings, "lab_slippage", None)
    fees = DEFAULT_FEES if fees is None else float(fees)
    slippage = DEFAULT_SLIPPAGE if slippage is None else float(slippage)
    if not (0 <= fees < 1 and 0 <= slippage < 1):
        raise DataError(f"fees {fees}, slippage {slippage}: each must be a fraction in [0, 1)")
    return fees, slippage


class SignalLab:
    """A universe's history, ready to score detectors on.

    ``bars``: symbol, ts, open, high, low, close, volume (any order; rows without finite prices are
    dropped). Signals are kept between ``start`` and ``end`` (inclusive); bars before ``start`` are
    warm-up for the indicators, bars after the signal give its outcome.
    """

    def __init__(self, bars: pd.DataFrame, interval: str = "1d", *, start=None, end=None, entry: str = "next_open",
                 horizons: Sequence[int] = HORIZONS, hold: int = 5, fees: float | None = None,
                 slippage: float | None = None, settings=None, seed: int = 42, params=None,
                 init_cash: float = 100.0, tz: str | None = None) -> None:
        if entry not in ENTRIES:
            raise DataError(f"entry {entry!r}: expected {' or '.join(ENTRIES)}")
        if int(hold) < 1 or any(int(h) < 1 for h in horizons):
            raise DataError(f"hold {hold}, horizons {list(horizons)}: bars must be >= 1")
        missing = [c for c in ("symbol", "ts", "open", "high", "low", "close", "volume") if c not in bars]
        if missing:
            raise DataError(f"bars: column {', '.join(map(repr, missing))} missing")
        self.interval, self.entry, self.hold, self.seed, self.params = interval, entry, int(hold), int(seed), params
        self.horizons = tuple(sorted({int(h) for h in horizons} | {self.hold}))
        self.fees, self.slippage = costs(settings, fees, slippage)
        self.init_cash, self.tz = float(init_cash), tz
        ok = bars["symbol"].notna().to_numpy() & bars["ts"].notna().to_numpy()
        for c in ("open", "high", "low", "close"):
            ok &= np.isfinite(bars[c].to_numpy(dtype=np.float64, na_value=np.nan))
        bars = bars.loc[ok]
        if len(bars) == 0:
            raise DataError("bars: no rows with a symbol, a time and finite prices")
        ns = to_utc_ns(bars["ts"])
        symbol = bars["symbol"].astype(str).to_numpy()
        names, code = np.unique(symbol, return_inverse=True)
        order = np.lexsort((ns, code))
        order = order[np.r_[(np.diff(code[order]) != 0) | (np.diff(ns[order]) != 0), True]]  # last of duplicates
        self.bars = bars.iloc[order].assign(ts=pd.DatetimeIndex(ns[order], tz="UTC")).reset_index(drop=True)
        self.names, self.code, ns = names.astype(object), code[order], ns[order]
        stamps, self.tcode = np.unique(ns, return_inverse=True)
        self.times = pd.DatetimeIndex(stamps, tz="UTC")
        self.open = self.bars["open"].to_numpy(np.float64)
        self.close = self.bars["close"].to_numpy(np.float64)
        self.in_window = np.ones(len(ns), bool)
        if start is not None:
            self.in_window &= ns >= _utc(start, "start").value
        if end is not None:
            self.in_window &= ns <= _utc(end, "end").value
        self._signals: dict[str, pd.DataFrame] = {}
        self._fwd: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._pfs: dict[tuple, Any] = {}

    @classmethod
    def from_lake(cls, source=None, universe=None, interval: str = "1d", start=None, end=None, *, engine=None,
                  detectors: Detectors = None, **kw) -> SignalLab:
        """The history of ``universe`` (a bundled name or CSV, a frame with ``symbol``, a list of symbols,
        or None: every symbol in the lake) between ``start`` and ``end``, with the indicators' warm-up
        read before ``start``. ``source``: a Lake, a lake directory or a bars frame.

        ``engine`` (``mintel.engine``; None: this process): on a distributed one, each group of symbols
        is read and run through the registry ``detectors`` (default: all) on a worker; the bars and the
        signals come back, and the rest (forward returns, universe averages, portfolios) runs here."""
        from mintel.analytics.detectors import DetectorParams
        from mintel.lake import Lake

        symbols = _symbols(universe)
        detections = None
        if isinstance(source, pd.DataFrame):
            bars = source if symbols is None else source[source["symbol"].isin(symbols)]
            bars = bars[bars["ts"] <= _utc(end, "end")] if end is not None else bars
        else:
            lake = source if isinstance(source, Lake) else Lake(source)
            params = kw.get("params") or DetectorParams()
            read_from = None if start is None else _utc(start, "start") - _warmup(interval, params.history_bars())
            if getattr(engine, "distributed", False):
                bars, detections = _read_and_detect(engine, lake, symbols, interval, read_from, end, detectors, kw)
            else:
                bars = lake.read_bars(symbols, interval=interval, start=read_from, end=end)
        if len(bars) == 0:
            raise DataError(f"{universe or 'lake'}: no {interval} bars between {start or 'the first'} and {end or 'the last'}")
        lab = cls(bars, interval, start=start, end=end, **kw)
        if detections is not None:
            named, found = detections
            by_kind = dict(tuple(found.groupby("kind", sort=False))) if len(found) else {}
            for name, kind in named.items():  # what ``signals`` keeps after running them here
                lab._signals[name] = lab._rows(by_kind.get(kind, found.iloc[:0]), name)
        return lab

    # ------------------------------------------------------------------------------- outcomes

    def forward(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(forward return at ``h`` bars, the universe's average of it on the same bar) for every row."""
        if h not in self._fwd:
            price = self.open if self.entry == "next_open" else self.close
            lag = 1 if self.entry == "next_open" else 0
            n = len(price)
            i = np.arange(n)
            a, b = i + lag, i + lag + h
            ok = (b < n) & (self.code[np.minimum(b, n - 1)] == self.code)
            ret = np.full(n, np.nan)
            ret[ok] = price[b[ok]] / price[a[ok]] - 1.0
            fin = np.isfinite(ret)
            total = np.bincount(self.tcode[fin], ret[fin], minlength=len(self.times))
            count = np.bincount(self.tcode[fin], minlength=len(self.times))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
            self._fwd[h] = (ret, mean[self.tcode])
        return self._fwd[h]

    # ------------------------------------------------------------------------------- signals

    @cached_property
    def enriched(self) -> pd.DataFrame:
        """The bars with the detectors' indicators (computed once, on first use)."""
        from mintel.analytics.scan import enrich

        return enrich(self.bars, self.interval, self.tz_name)

    @property
    def tz_name(self) -> str:
        """The exchange time zone sessions are cut in (intraday indicators such as VWAP)."""
        from mintel.analytics.keys import DEFAULT_TZ

        return self.tz or DEFAULT_TZ

    def signals(self, detectors: Detectors = None, min_score: float | None = None) -> pd.DataFrame:
        """Directional signals in the window: kind, symbol, ts, side (+1/-1), score, row (in ``bars``).

        ``detectors``: registry names (a list or comma-separated; None: all), a function of the bars
        frame returning rows with ts, symbol, direction (long/short or +1/-1) and optionally score,
        a list mixing both, or a mapping of names to either. A detector's signals are kept by name: a
        new function under a name already run needs a new lab."""
        named = _named(detectors)
        todo = [k for k, d in named.items() if k not in self._signals]
        registry = [k for k in todo if isinstance(named[k], str)]
        if registry:
            from mintel.analytics.detectors import detect

            found = detect(self.enriched, [named[k] for k in registry], interval=self.interval, params=self.params,
                           explain=False, tz=self.tz_name)
            by_kind = dict(tuple(found.groupby("kind", sort=False))) if len(found) else {}
            for k in registry:
                self._signals[k] = self._rows(by_kind.get(named[k], found.iloc[:0]), k)
        for k in todo:
            if not isinstance(named[k], str):
                self._signals[k] = self._rows(named[k](self.bars), k)
        out = pd.concat([self._signals[k] for k in named], ignore_index=True) if named else self._rows(None, "")
        if min_score is not None:
            out = out[out["score"] >= float(min_score)].reset_index(drop=True)
        return out

    def _rows(self, found: pd.DataFrame | None, kind: str) -> pd.DataFrame:
        """A detector's output as signal rows: located in ``bars``, directional, in the window."""
        cols = {"kind": pd.Series(dtype=object), "symbol": pd.Series(dtype=object),
                "ts": pd.Series(dtype="datetime64[ns, UTC]"), "side": pd.Series(dtype=np.int8),
                "score": pd.Series(dtype=np.float64), "row": pd.Series(dtype=np.int64)}
        if found is None or len(found) == 0:
            return pd.DataFrame(cols)
        missing = [c for c in ("ts", "symbol", "direction") if c not in found]
        if missing:
            raise DataError(f"detector {kind!r}: column {', '.join(map(repr, missing))} missing from its signals")
        d = found["direction"]
        side = (d.map({"long": 1, "short": -1, "neutral": 0}) if d.dtype == object or pd.api.types.is_string_dtype(d)
                else np.sign(d)).fillna(0).to_numpy(np.int8)
        code = pd.Index(self.names).get_indexer(found["symbol"].astype(str))
        tcode = pd.Index(self.times.asi8).get_indexer(to_utc_ns(found["ts"]))
        key = self.code.astype(np.int64) * max(len(self.times), 1) + self.tcode
        want = code.astype(np.int64) * max(len(self.times), 1) + tcode
        pos = np.minimum(np.searchsorted(key, want), len(key) - 1)  # bars are sorted by (symbol, ts): so is key
        ok = (code >= 0) & (tcode >= 0) & (side != 0) & (key[pos] == want)
        row = pos[ok]
        keep = self.in_window[row]
        row = row[keep]
        score = found["score"].to_numpy(np.float64)[ok][keep] if "score" in found else np.full(len(row), np.nan)
        return pd.DataFrame({"kind": kind, "symbol": self.names[self.code[row]], "ts": self.times[self.tcode[row]],
                             "side": side[ok][keep], "score": score, "row": row.astype(np.int64)})

    def baseline(self, signals: pd.DataFrame, kind: str | None = None) -> pd.DataFrame:
        """Random entries: as many as ``signals``, on distinct random (symbol, bar) cells of the window,
        with their directions and scores shuffled; seeded by ``seed`` and ``kind``."""
        kind = kind if kind is not None else (str(signals["kind"].iloc[0]) if len(signals) else "")
        rng = np.random.default_rng([self.seed, zlib.crc32(kind.encode())])
        cells = np.flatnonzero(self.in_window)
        n = min(len(signals), len(cells))
        row = np.sort(rng.choice(cells, size=n, replace=False))
        order = rng.permutation(len(signals))[:n]
        return pd.DataFrame({"kind": f"{kind}:baseline", "symbol": self.names[self.code[row]],
                             "ts": self.times[self.tcode[row]], "side": signals["side"].to_numpy()[order],
                             "score": signals["score"].to_numpy()[order], "row": row.astype(np.int64)})

    # ------------------------------------------------------------------------------- figures

    def outcomes(self, signals: pd.DataFrame, hold: int | None = None) -> pd.DataFrame:
        """``signals`` with, per horizon h (and ``hold``), ``return_h`` (direction-adjusted) and ``excess_h``."""
        out = signals.copy()
        row, side = signals["row"].to_numpy(), signals["side"].to_numpy(np.float64)
        for h in self._horizons(hold):
            ret, mean = self.forward(h)
            out[f"return_{h}"] = side * ret[row]
            out[f"excess_{h}"] = side * (ret[row] - mean[row])
        return out

    def _horizons(self, hold: int | None) -> tuple[int, ...]:
        return self.horizons if hold is None else tuple(sorted(set(self.horizons) | {int(hold)}))

    def edge(self, signals: pd.DataFrame, hold: int | None = None) -> dict[str, float]:
        """Signal count, hit rate (``hit_rate``: at ``hold`` bars; and per horizon), average and median
        return and excess return per horizon."""
        hold = self.hold if hold is None else int(hold)
        o = self.outcomes(signals, hold)
        figures = {"hit_rate": lambda r, x: (r > 0).mean(), "avg_return": lambda r, x: r.mean(),
                   "median_return": lambda r, x: r.median(), "avg_excess": lambda r, x: x.mean(),
                   "median_excess": lambda r, x: x.median()}
        stats: dict[str, float] = {}
        for name, f in figures.items():
            for h in self._horizons(hold):
                r, x = o[f"return_{h}"].dropna(), o[f"excess_{h}"].dropna()
                stats[f"{name}_{h}"] = float(f(r, x)) if len(r) else math.nan
        return {"signals": len(o), "hit_rate": stats[f"hit_rate_{hold}"], **stats}

    # ------------------------------------------------------------------------------- portfolio

    def orders(self, signals: pd.DataFrame, hold: int | None = None) -> pd.DataFrame:
        """The trades the portfolio takes: per symbol, a signal's entry when no position is open and its
        exit ``hold`` bars later (both rows of ``bars``); signals that cannot complete are skipped."""
        hold = self.hold if hold is None else int(hold)
        if hold < 1:
            raise DataError(f"hold {hold}: bars must be >= 1")
        lag = 1 if self.entry == "next_open" else 0
        n = len(self.bars)
        row = signals["row"].to_numpy(np.int64)
        a, b = row + lag, row + lag + hold
        ok = (b < n)
        ok &= self.code[np.minimum(b, n - 1)] == self.code[row]
        s = signals.loc[ok].assign(entry_row=a[ok], exit_row=b[ok], code=self.code[row[ok]])
        s = s.sort_values(["code", "entry_row"], kind="stable")
        keep, last_code, busy = [], -1, -1
        for c, e, x in zip(s["code"].tolist(), s["entry_row"].tolist(), s["exit_row"].tolist()):
            if c != last_code:
                last_code, busy = c, -1
            if e > busy:  # a new position only after the previous one's exit bar
                keep.append(True)
                busy = x
            else:
                keep.append(False)
        return s[np.asarray(keep, bool)].drop(columns="code").reset_index(drop=True)

    def _wide(self, column: np.ndarray) -> np.ndarray:
        w = np.full((len(self.times), len(self.names)), np.nan)
        w[self.tcode, self.code] = column
        return pd.DataFrame(w).ffill().bfill().to_numpy()

    @cached_property
    def prices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(order price, valuation close) as (time x symbol) frames, gaps filled with the last price."""
        close = pd.DataFrame(self._wide(self.close), index=self.times, columns=self.names)
        price = close if self.entry == "close" else pd.DataFrame(self._wide(self.open), index=self.times,
                                                                    columns=self.names)
        return price, close

    def _masks(self, trades: pd.DataFrame) -> tuple[np.ndarray, ...]:
        shape = (len(self.times), len(self.names))
        masks = [np.zeros(shape, bool) for _ in range(4)]  # entries, exits, short entries, short exits
        for i, (side, col) in enumerate(((1, "entry_row"), (1, "exit_row"), (-1, "entry_row"), (-1, "exit_row"))):
            r = trades.loc[trades["side"] == side, col].to_numpy(np.int64)
            masks[i][self.tcode[r], self.code[r]] = True
        return tuple(masks)

    def portfolio(self, signals: pd.DataFrame, hold: int | None = None):
        """The long/short-by-direction ``vectorbt.Portfolio`` of ``signals`` (module doc), one group."""
        import vectorbt as vbt

        price, close = self.prices
        entries, exits, short_entries, short_exits = (pd.DataFrame(m, index=self.times, columns=self.names)
                                                      for m in self._masks(self.orders(signals, hold)))
        return vbt.Portfolio.from_signals(close, entries, exits, short_entries, short_exits, price=price,
                                          fees=self.fees, slippage=self.slippage, init_cash=self.init_cash,
                                          group_by=True, cash_sharing=False, freq=self.freq)

    @property
    def freq(self) -> pd.Timedelta:
        return _bar_length(self.interval)

    @property
    def year_freq(self) -> pd.Timedelta:
        """A trading year: 252 sessions (of ``SESSION_MINUTES`` for intraday bars)."""
        step = self.freq
        per_day = 1 if step >= pd.Timedelta(days=1) else max(1, round(SESSION_MINUTES * 60 / step.total_seconds()))
        return step * 252 * per_day

    def performance(self, pf) -> dict[str, float]:
        """trades, total_return, sharpe, max_drawdown of one grouped portfolio."""
        trades = int(pf.trades.count())
        if trades == 0:
            return {"trades": 0, "total_return": 0.0, "sharpe": math.nan, "max_drawdown": 0.0}
        sharpe = float(pf.sharpe_ratio(year_freq=self.year_freq))
        return {"trades": trades, "total_return": float(pf.total_return()),
                "sharpe": sharpe if math.isfinite(sharpe) else math.nan, "max_drawdown": float(pf.max_drawdown())}

    # ------------------------------------------------------------------------------- the scorecard

    def _run(self, kind: str, detector, min_score: float | None, hold: int | None, baseline: bool):
        """(signals, portfolio) of a detector or its baseline, the portfolio kept for the next call."""
        sig = self.signals({kind: detector}, min_score)
        if baseline:
            sig = self.baseline(sig, kind)
        key = (kind, min_score, self.hold if hold is None else int(hold), baseline)
        if key not in self._pfs:
            self._pfs[key] = self.portfolio(sig, hold)
        return sig, self._pfs[key]

    def scorecard(self, detectors: Detectors = None, min_score: float | None = None,
                  hold: int | None = None) -> pd.DataFrame:
        """One row per detector: its edge (``edge``), its portfolio's performance, and the same for its
        random-entry baseline (``baseline_`` columns)."""
        named = _named(detectors)
        self.signals(named)  # every registry detector in one pass
        rows = []
        for kind in named:
            sig, pf = self._run(kind, named[kind], min_score, hold, False)
            base, base_pf = self._run(kind, named[kind], min_score, hold, True)
            row: dict[str, Any] = {"detector": kind, "direction": _direction(named[kind], sig),
                                   **self.edge(sig, hold), **self.performance(pf)}
            b = {**self.edge(base, hold), **self.performance(base_pf)}
            row.update({f"baseline_{k}": v for k, v in b.items() if k != "signals"})
            rows.append(row)
            log.info("lab %s: %d signals, hit rate %.3f, baseline %.3f", kind, len(sig), row["hit_rate"],
                     row["baseline_hit_rate"])
        return pd.DataFrame(rows)

    def trades(self, detector, min_score: float | None = None, hold: int | None = None) -> pd.DataFrame:
        """The trades of one detector's portfolio: symbol, direction, entry/exit time and price, size,
        fees, pnl, return, status."""
        kind, d = next(iter(_named(detector).items()))
        with warnings.catch_warnings():  # vectorbt's records use a pandas keyword pandas 3 deprecates
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            t = self._run(kind, d, min_score, hold, False)[1].trades.records_readable
        t = t.rename(columns=TRADE_COLUMNS)[list(TRADE_COLUMNS.values())]
        t.insert(0, "detector", kind)
        return t.sort_values(["entry_ts", "symbol"], kind="stable").reset_index(drop=True)

    def equity(self, detectors: Detectors = None, min_score: float | None = None, hold: int | None = None,
               baseline: bool = True) -> pd.DataFrame:
        """Each detector's portfolio value (and its baseline's, as ``<name>:baseline``), starting at 1,
        over the window (the warm-up before it is left out)."""
        first = self.times[self.tcode[self.in_window]].min()
        out = {}
        for kind, d in _named(detectors).items():
            for base in (False, True)[: 2 if baseline else 1]:
                v = self._run(kind, d, min_score, hold, base)[1].value()
                out[f"{kind}:baseline" if base else kind] = v / self.init_cash / len(self.names)
        return pd.DataFrame(out).loc[first:]

    def returns(self, detector, h: int | None = None, min_score: float | None = None) -> pd.DataFrame:
        """The direction-adjusted ``h``-bar returns (default: ``hold``) of one detector's signals and of
        its baseline's: columns detector, ts, symbol, side, score, return, excess, sample (signal/baseline)."""
        kind, d = next(iter(_named(detector).items()))
        h = self.hold if h is None else int(h)
        sig = self.signals({kind: d}, min_score)
        parts = []
        for sample, s in (("signal", sig), ("baseline", self.baseline(sig, kind))):
            o = self.outcomes(s, h)
            parts.append(pd.DataFrame({"detector": kind, "ts": o["ts"], "symbol": o["symbol"], "side": o["side"],
                                       "score": o["score"], "return": o[f"return_{h}"], "excess": o[f"excess_{h}"],
                                       "sample": sample}))
        return pd.concat(parts, ignore_index=True)

    def sweep(self, detector, holds: Sequence[int] = (1, 3, 5, 10, 20),
              min_scores: Sequence[float] = (40, 50, 60, 70, 80), metric: str = "sharpe") -> pd.DataFrame:
        """One detector's portfolio over every (holding period, score threshold), in one vectorbt run
        (the combinations broadcast as column levels): ``metric`` (sharpe, total_return, max_drawdown,
        trades) as a frame indexed by hold with a column per min_score."""
        import vectorbt as vbt

        metrics = {"sharpe": lambda pf: pf.sharpe_ratio(year_freq=self.year_freq), "total_return": lambda pf: pf.total_return(),
                   "max_drawdown": lambda pf: pf.max_drawdown(), "trades": lambda pf: pf.trades.count()}
        if metric not in metrics:
            raise DataError(f"metric {metric!r}: expected {', '.join(metrics)}")
        sig = self.signals(_named(detector))
        combos = [(int(h), float(m)) for h in _numbers(holds) for m in _numbers(min_scores)]
        masks = [self._masks(self.orders(sig[sig["score"] >= m], h)) for h, m in combos]
        cols = pd.MultiIndex.from_tuples([(h, m, s) for h, m in combos for s in self.names],
                                         names=["hold", "min_score", "symbol"])
        price, close = self.prices
        wide = [pd.DataFrame(np.hstack([mk[i] for mk in masks]), index=self.times, columns=cols) for i in range(4)]
        tile = len(combos)
        pf = vbt.Portfolio.from_signals(pd.DataFrame(np.tile(close.to_numpy(), tile), index=self.times, columns=cols),
                                        *wide, price=pd.DataFrame(np.tile(price.to_numpy(), tile), index=self.times,
                                                                  columns=cols),
                                        fees=self.fees, slippage=self.slippage, init_cash=self.init_cash,
                                        group_by=["hold", "min_score"], cash_sharing=False, freq=self.freq)
        return metrics[metric](pf).unstack("min_score")


def scorecard(source=None, universe=None, interval: str = "1d", start=None, end=None, detectors: Detectors = None,
              *, min_score: float | None = None, engine=None, **kw) -> pd.DataFrame:
    """The scorecard of ``detectors`` (default: all) on the history of ``universe`` in ``source`` (a
    Lake, a lake directory or a bars frame); ``engine``: where the detectors run (``from_lake``);
    ``kw``: ``SignalLab``'s options."""
    lab = SignalLab.from_lake(source, universe, interval, start, end, engine=engine, detectors=detectors, **kw)
    return lab.scorecard(detectors, min_score)


def _read_and_detect(engine, lake, symbols, interval: str, start, end, detectors: Detectors, kw: dict):
    """(bars, ({name: registry kind}, detections)) of the lake's history, each group of symbols read and
    run through the detectors on a worker. Detections are per symbol (a symbol's indicators and
    detectors see only its own bars), so the gathered rows are those one pass over the universe gives."""
    named = {k: d for k, d in _named(detectors).items() if isinstance(d, str)}
    kinds = list(dict.fromkeys(named.values()))
    parts = engine.map_symbol_groups(_detect_group, lake, interval, start, _utc(end, "end") if end is not None else None,
                                     symbols, interval=interval, kinds=kinds, params=kw.get("params"), tz=kw.get("tz"))
    bars = [b for b, _ in parts if len(b)]
    found = [f for _, f in parts if len(f)]
    return (pd.concat(bars, ignore_index=True) if bars else pd.DataFrame(),
            (named, pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["kind"])))


def _detect_group(bars: pd.DataFrame, interval: str, kinds: list[str], params, tz):
    """One task of ``_read_and_detect``, on a worker: a group's bars (usable, in order) and what the
    detectors ``kinds`` find on them, the lab's way (no messages)."""
    from mintel.analytics.detectors import detect

    try:
        lab = SignalLab(bars, interval, params=params, tz=tz)
    except DataError:  # no usable bars in this group
        return bars.iloc[:0], pd.DataFrame(columns=["kind"])
    found = detect(lab.enriched, kinds, interval=interval, params=params, explain=False, tz=lab.tz_name) if kinds \
        else pd.DataFrame(columns=["kind"])
    return lab.bars, found[[c for c in ("kind", "symbol", "ts", "direction", "score") if c in found]]


# ----------------------------------------------------------------------------------- helpers


def _utc(value, what: str) -> pd.Timestamp:
    from mintel.schema import utc_timestamp

    return utc_timestamp(value, what)


def _bar_length(interval: str) -> pd.Timedelta:
    text = interval.strip().lower()
    for unit, step in (("wk", "7D"), ("mo", "30D"), ("d", "D"), ("h", "h"), ("m", "min"), ("s", "s")):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * pd.Timedelta(step if step[0].isdigit() else f"1{step}")
    raise DataError(f"interval {interval!r}: expected e.g. 1d, 1h, 5m")


def _warmup(interval: str, bars: int) -> pd.Timedelta:
    """Calendar time holding ``bars`` bars: weekends and holidays for daily bars, sessions for intraday."""
    step = _bar_length(interval)
    if step >= pd.Timedelta(days=1):
        return step * math.ceil(bars * 1.5) + pd.Timedelta(days=10)
    per_day = max(1, SESSION_MINUTES * 60 // int(step.total_seconds()))
    return pd.Timedelta(days=math.ceil(bars / per_day * 1.5) + 4)


def _symbols(universe) -> list[str] | None:
    if universe is None:
        return None
    if isinstance(universe, pd.DataFrame):
        return [str(s) for s in universe["symbol"]]
    if isinstance(universe, str):
        from mintel.universe import load_universe

        return [str(s) for s in load_universe(universe)["symbol"]]
    return [str(s) for s in universe]


def _named(detectors: Detectors) -> dict[str, str | Callable]:
    """{name: registry name or function} from the forms ``signals`` takes."""
    from mintel.analytics.detectors import kinds_of

    if detectors is None or isinstance(detectors, str):
        return {k: k for k in kinds_of(detectors)}
    if callable(detectors):
        detectors = [detectors]
    if isinstance(detectors, Mapping):
        items = list(detectors.items())
    else:
        items = [(d if isinstance(d, str) else getattr(d, "__name__", "custom"), d) for d in detectors]
    out: dict[str, str | Callable] = {}
    for name, d in items:
        if isinstance(d, str):
            kinds_of([d])  # DataError on an unknown name
        elif not callable(d):
            raise DataError(f"detector {name!r}: expected a registry name or a function of the bars")
        out[str(name)] = d
    return out


def _numbers(values) -> list[float]:
    """A list of numbers from a list or a comma-separated string (a report parameter)."""
    if isinstance(values, str):
        values = [v for v in values.replace("[", "").replace("]", "").split(",") if v.strip()]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise DataError(f"{values!r}: expected numbers") from None


def _direction(detector, signals: pd.DataFrame) -> str:
    """The registry's direction of a detector (long, short, bar), else what its signals were."""
    if isinstance(detector, str):
        from mintel.analytics.detectors import DETECTORS

        return DETECTORS[detector].direction
    sides = set(signals["side"].tolist())
    return "long" if sides == {1} else "short" if sides == {-1} else "both" if sides else ""


# ----------------------------------------------------------------------------------- command line


def add_parser(sub, command) -> Any:
    """``mintel lab``: ``command`` is ``build_parser``'s helper (adds --lake, --config, --format)."""
    c = command("lab", cmd_lab, "signal lab: score every detector's signals on the lake's history (vectorbt)")
    c.add_argument("action", choices=("scorecard", "trades"),
                   help="scorecard: one row per detector (with --detector and --format table, its trades too); "
                        "trades: one detector's trades")
    c.add_argument("--universe", help="universe name or CSV (default: every symbol in the lake)")
    c.add_argument("--interval", default="1d")
    c.add_argument("--start", help="first signal bar (default: the lake's first; earlier bars warm the indicators up)")
    c.add_argument("--end", help="last bar (default: the lake's last)")
    c.add_argument("--detector", action="append", help="detector name (repeatable or comma-separated; default: all)")
    c.add_argument("--min-score", type=float, dest="min_score", help="only signals scoring at least this")
    c.add_argument("--hold", type=int, default=5, help="bars each position is held; hit_rate is at this horizon (default 5)")
    c.add_argument("--entry", choices=ENTRIES, default="next_open",
                   help="next_open (default: no look-ahead) or close (the signal bar's close)")
    c.add_argument("--fees", type=float, help=f"fraction per order (default: settings lab_fees, else {DEFAULT_FEES})")
    c.add_argument("--slippage", type=float, help=f"fraction of price (default: settings lab_slippage, else {DEFAULT_SLIPPAGE})")
    c.add_argument("--seed", type=int, default=42, help="seed of the random-entry baseline (default 42)")
    from mintel.engine import add_engine_arguments

    add_engine_arguments(c)
    return c


def cmd_lab(args) -> int:
    from mintel.cli import emit
    from mintel.config import load_config

    settings = load_config(getattr(args, "config", None))
    kinds = ",".join(args.detector) if args.detector else None
    if args.action == "trades" and not kinds:
        raise DataError("usage: mintel lab trades --detector NAME")
    from mintel.engine import engine_from_args

    with engine_from_args(args) as engine:  # the detectors run there; the portfolios here
        lab = SignalLab.from_lake(args.lake or settings.lake, args.universe, args.interval, args.start, args.end,
                                  hold=args.hold, entry=args.entry, fees=args.fees, slippage=args.slippage,
                                  settings=settings, seed=args.seed, engine=engine, detectors=kinds)
    fmt = getattr(args, "format", "table")
    if args.action == "trades":
        emit(pd.concat([lab.trades(k, args.min_score) for k in _named(kinds)], ignore_index=True), fmt)
        return 0
    card = lab.scorecard(kinds, args.min_score)
    if fmt != "table":
        emit(card, fmt)
        return 0
    emit(_rounded(card[TABLE_COLUMNS]), "table")
    print(f"entry {lab.entry}, hold {lab.hold} bars, fees {lab.fees:g}, slippage {lab.slippage:g}, "
          f"baseline: random entries (seed {lab.seed}); returns are fractions")
    if args.detector and len(card) == 1:
        print()
        emit(_rounded(lab.trades(card["detector"].iloc[0], args.min_score)), "table")
    return 0


def _rounded(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Floats to ``digits`` decimals, for reading (json and csv keep every digit)."""
    floats = frame.select_dtypes("float").columns
    return frame.assign(**{c: frame[c].round(digits) for c in floats})
