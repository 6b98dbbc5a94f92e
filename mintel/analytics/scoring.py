"""The opportunity score of each symbol, explained by its factors, and the re-announcement cooldown.

``score_symbols`` rates each symbol's latest bar 0..100 for a long position (50 is neutral, low scores
are short candidates) from six factors, each a value in 0..1 weighted by ``ScoreWeights`` (scaled
to sum to 100), so the contributions in ``factors`` sum to the score. ``dedupe`` keeps a standing
condition from being announced again every cycle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
import pandas as pd

from mintel.analytics.detectors import DetectorParams, Panel
from mintel.analytics.keys import NS_PER_MINUTE, index_of, is_intraday, object_index, to_utc_ns
from mintel.errors import DataError

FACTORS = ("trend", "momentum", "volume", "breakout", "rsi", "signals")
LONG_AT, SHORT_AT = 60.0, 40.0  # score at or above: long bias; at or below: short bias


@dataclass(frozen=True)
class ScoreWeights:
    """Weight of each factor in the score; scaled to sum to 100 when used.

    trend: close vs SMA 20/50/200 and SMA 20 vs 50; momentum: the 20-bar move in ATR and the MACD
    histogram; volume: volume ratio signed by the bar's move; breakout: where the close sits in its
    52-week (252-bar) range; rsi: RSI position (rising to 70, fading when overextended); signals:
    the detectors standing on the bar, long minus short, by their scores.
    """

    trend: float = 25.0
    momentum: float = 20.0
    volume: float = 15.0
    breakout: float = 15.0
    rsi: float = 10.0
    signals: float = 15.0

    @classmethod
    def from_config(cls, override: ScoreWeights | Mapping[str, float] | None = None) -> ScoreWeights:
        """Defaults with ``override`` (a dict from config, e.g. ``{"volume": 25}``) applied."""
        if override is None:
            return cls()
        if isinstance(override, ScoreWeights):
            return override
        known = {f.name for f in fields(cls)}
        unknown = [k for k in override if k not in known]
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise DataError(f"score weights: unknown factor {names} (known: {', '.join(sorted(known))})")
        values = {}
        for k, v in override.items():
            try:
                values[k] = float(v)
            except (TypeError, ValueError):
                raise DataError(f"score weights: {k}={v!r} is not a number") from None
            if not np.isfinite(values[k]) or values[k] < 0:
                raise DataError(f"score weights: {k}={v!r} must be a finite number >= 0")
        return cls(**{**asdict(cls()), **values})

    def normalized(self) -> dict[str, float]:
        w = asdict(self)
        total = sum(w.values())
        if total <= 0:
            raise DataError("score weights: all zero")
        return {k: 100.0 * v / total for k, v in w.items()}


def factor_values(enriched: pd.DataFrame, signals: pd.DataFrame | None = None, *, interval: str | None = None
                  ) -> pd.DataFrame:
    """Each factor's value (0..1, 0.5 neutral, NaN unknown) at each symbol's latest bar.

    ``signals``: opportunity rows standing on those bars (``detect(..., last_only=True)``).
    Columns: symbol, ts, close, then ``FACTORS``.
    """
    if interval is None:
        interval = str(enriched["interval"].iloc[0]) if "interval" in enriched and len(enriched) else "1d"
    p = Panel(enriched, interval, DetectorParams(), last_only=True)
    r = np.flatnonzero(p.wanted)
    values = panel_factors(p, r, _signal_values(p.sym[r], p.ts[r], signals))
    return pd.DataFrame({"symbol": p.sym[r], "ts": pd.DatetimeIndex(p.ts[r].view("M8[ns]"), tz="UTC"), "close": p.c[r],
                         **values})


def panel_factors(p: Panel, r: np.ndarray, signals: np.ndarray, *, window: int = 252, min_bars: int = 20
                  ) -> dict[str, np.ndarray]:
    """``FACTORS`` at rows ``r`` of a panel (each a symbol's last bar; NaN unknown); ``signals``: their
    signal values (``_signal_values``). Any panel with the ``Panel`` interface, e.g. the live one.

    trend: the mean of close > SMA 20, close > SMA 50, SMA 20 > SMA 50, close > SMA 200 (the known ones);
    momentum: the mean of 0.5 + 0.5 tanh(20-bar move / (ATR sqrt 20)) and 0.5 + 0.5 tanh(MACD hist /
    (0.2 ATR)); volume: 0.5 + 0.5 sign(close - previous close) tanh(max(volume ratio - 1, 0)); breakout:
    the close's place in the last ``window`` bars' range (with at least ``min_bars``); rsi: rising from 0
    at RSI 30 to 1 at 70, fading to 0 at 100. Computed in two compiled passes (``_score_kernel``).
    """
    from mintel.analytics import _score_kernel as _k  # numba: loaded on the first score, not on import

    r = np.asarray(r, np.int64)
    if len(r):
        hi, lo, count = p.range_hilo(r, window)
    else:
        hi = lo = np.empty(0)
        count = np.empty(0, np.int64)
    ind = p.ind
    close = _f64(p.c)
    tanh = np.tanh(_k.tanh_args(r, close, _f64(p.lag("close", 20)[r]), *(_f64(ind[c]) for c in ("atr", "macd_hist", "volume_ratio"))))
    values = _k.factors(r, close, *(_f64(ind[c]) for c in ("sma_20", "sma_50")),
                        _f64(ind["sma_200"]) if "sma_200" in ind else np.empty(0), tanh, _f64(p.prev_close),
                        _f64(ind["rsi"]), _f64(hi), _f64(lo), np.asarray(count, np.int64), _f64(signals), min_bars)
    return dict(zip(FACTORS, values))


def _f64(a) -> np.ndarray:
    """A float64 array the kernels take as it is (any stride: one compiled variant per layout, not per call)."""
    return np.asarray(a, dtype=np.float64)


def _signal_values(symbols: np.ndarray, ts: np.ndarray, signals: pd.DataFrame | None) -> np.ndarray:
    """0.5 + 0.5 tanh(net), net = (sum of long scores - sum of short scores) / 100 of the signals on the bar."""
    out = np.full(len(symbols), 0.5)
    if signals is None or signals.empty:
        return out
    sig_ts = to_utc_ns(signals["ts"])
    signals = signals.loc[np.isin(sig_ts, np.unique(ts))]  # a whole history of signals: keep the last bars'
    if signals.empty:
        return out
    side = signals["direction"].map({"long": 1.0, "short": -1.0}).fillna(0.0).to_numpy()
    key = pd.DataFrame({"symbol": signals["symbol"].to_numpy(dtype=object), "ts": to_utc_ns(signals["ts"]),
                        "net": side * signals["score"].to_numpy(dtype=float) / 100.0})
    net = key.groupby(["symbol", "ts"])["net"].sum()
    here = net.reindex(pd.MultiIndex.from_arrays([symbols, ts])).to_numpy()
    return np.where(np.isfinite(here), 0.5 + 0.5 * np.tanh(np.nan_to_num(here)), 0.5)


def score_symbols(enriched: pd.DataFrame, signals: pd.DataFrame | None = None,
                  weights: ScoreWeights | Mapping[str, float] | None = None, *, interval: str | None = None,
                  min_factors: int = 2) -> pd.DataFrame:
    """Score 0..100 of each symbol's latest bar with its explanation.

    Unknown factors count as neutral (0.5); with fewer than ``min_factors`` known factors besides the
    signals (too little history) the score is null. Columns: symbol, ts, score, direction (long /
    short / neutral by ``LONG_AT``/``SHORT_AT``), factors (JSON: factor -> points, summing to the score).
    """
    values = factor_values(enriched, signals, interval=interval)
    score, points, ok = factor_points({f: values[f].to_numpy(dtype=np.float64) for f in FACTORS}, weights, min_factors)
    direction = np.where(score >= LONG_AT, "long", np.where(score <= SHORT_AT, "short", "neutral"))
    factors = [json.dumps(dict(zip(FACTORS, row))) if good else None for row, good in zip(points.tolist(), ok)]
    return pd.DataFrame({"symbol": values["symbol"], "ts": values["ts"], "score": score,
                         "direction": np.where(ok, direction, None), "factors": factors})


def factor_points(values: Mapping[str, np.ndarray], weights: ScoreWeights | Mapping[str, float] | None = None,
                  min_factors: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, points per factor (rows x ``FACTORS``), scored?) from factor values (NaN: unknown, counts
    as neutral); the score is null where fewer than ``min_factors`` factors besides the signals are known.
    Points are round(weight x value, 2) with the weights scaled to sum to 100; the score is their sum, rounded."""
    from mintel.analytics import _score_kernel as _k

    w = ScoreWeights.from_config(weights).normalized()
    stack = np.array([np.asarray(values[f], dtype=np.float64) for f in FACTORS]).reshape(len(FACTORS), -1)
    return _k.points(stack, np.array([w[f] for f in FACTORS]), _SCORED, min_factors)


_SCORED = np.array([f != "signals" for f in FACTORS])  # the factors min_factors counts


# ----------------------------------------------------------------------------------------- cooldown


def dedupe(new: pd.DataFrame, recent: pd.DataFrame | None = None, cooldown: int | str | pd.Timedelta = 5, *,
           interval: str = "1d", key: tuple[str, ...] = ("symbol", "kind", "direction")) -> pd.DataFrame:
    """``new`` opportunities without those within ``cooldown`` after an announced one with the same key.

    ``recent``: opportunities already announced (the lake's opportunities table). ``cooldown``: an int
    is bars of ``interval`` (business days for daily bars, interval lengths for intraday bars); a
    string or Timedelta ("30min", "2D") is wall time. A row is kept when no kept or recent row with
    its key lies less than ``cooldown`` before it or at its ts; kept rows stay in ``new``'s order.
    """
    if new.empty:
        return new
    for frame, label in ((new, "opportunities"), (recent, "recent opportunities")):
        missing = [c for c in (*key, "ts") if frame is not None and c not in frame]
        if missing:
            raise DataError(f"{label}: column {', '.join(map(repr, missing))} missing")
    position, gap = _clock(interval, cooldown)
    recent = recent if recent is not None and len(recent) else None
    pos_new = position(new["ts"])
    pos_rec = position(recent["ts"]) if recent is not None else np.empty(0)
    origin = min(pos_new.min(), pos_rec.min() if len(pos_rec) else np.inf)
    pos_new, pos_rec = pos_new - origin, pos_rec - origin
    span = max(pos_new.max(), pos_rec.max() if len(pos_rec) else 0.0) + gap + 1.0
    frames = [new[list(key)]] + ([recent[list(key)]] if recent is not None else [])
    codes = pd.MultiIndex.from_frame(pd.concat(frames, ignore_index=True).astype(str)).factorize()[0].astype(np.float64)
    code_new, code_rec = codes[: len(new)], codes[len(new):]

    blocked = np.zeros(len(new), bool)
    if len(pos_rec):  # the latest recent row at or before each new row, same key
        o = np.lexsort((pos_rec, code_rec))
        comp = code_rec[o] * span + pos_rec[o]
        i = np.searchsorted(comp, code_new * span + pos_new, side="right") - 1
        j = np.clip(i, 0, None)
        since = pos_new - pos_rec[o][j]
        blocked = (i >= 0) & (code_rec[o][j] == code_new) & ((since < gap) | (since == 0))

    # Greedy in time within each key: keep a row, skip the rows within the cooldown after it, repeat.
    order = np.lexsort((np.arange(len(new)), pos_new, code_new))
    c, t, m = code_new[order], pos_new[order], len(order)
    comp = c * span + t
    nxt = np.searchsorted(comp, comp + gap, side="left") if gap > 0 else np.searchsorted(comp, comp, side="right")
    free = np.where(blocked[order], m, np.arange(m))
    first_free = np.r_[np.minimum.accumulate(free[::-1])[::-1], m]  # first unblocked row at or after each
    keep = np.zeros(m, bool)
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    frontier, owner = first_free[starts], starts
    while True:
        ok = (frontier < m) & (c[np.minimum(frontier, m - 1)] == c[owner])
        frontier = frontier[ok]
        if not len(frontier):
            break
        keep[frontier] = True
        owner, frontier = frontier, first_free[nxt[frontier]]
    return new.iloc[np.sort(order[keep])]


def _clock(interval: str, cooldown) -> tuple:
    """(ts -> float position, cooldown in positions) for the cooldown's unit."""
    if isinstance(cooldown, (int, np.integer)) and not isinstance(cooldown, bool):
        if cooldown < 0:
            raise DataError(f"cooldown {cooldown}: must be >= 0")
        if not is_intraday(interval):
            def business_days(ts) -> np.ndarray:
                days = (to_utc_ns(ts) // (1440 * NS_PER_MINUTE)).astype("M8[D]")
                return np.busday_count(np.datetime64("1970-01-01", "D"), days).astype(np.float64)

            return business_days, float(cooldown)
        text = interval.strip().lower()
        bar_ns = pd.Timedelta(text[:-1] + "min" if text.endswith("m") else text).value
        return (lambda ts: to_utc_ns(ts) / bar_ns), float(cooldown)
    try:
        gap = pd.Timedelta(cooldown)
    except (TypeError, ValueError):
        raise DataError(f"cooldown {cooldown!r}: not a number of bars or a duration like '30min'") from None
    if pd.isna(gap) or gap < pd.Timedelta(0):
        raise DataError(f"cooldown {cooldown!r}: must be a duration >= 0")
    return (lambda ts: to_utc_ns(ts) / 1e9), gap.value / 1e9


class Cooldown:
    """``dedupe``'s rule as state for a stream: the latest announced position of each (symbol, kind, direction).

    ``admit`` keeps the rows of one bar time that no announcement with their key blocks (within the
    cooldown before, or at the same time) and records them; live bar times only move forward, so the
    latest announcement per key is all the rule needs. The positions live in a (symbol, kind, direction)
    array, each axis coded by the values seen so far: a live cycle's few thousand standing rows are
    decided in a few vectorized steps.
    """

    def __init__(self, cooldown: int | str | pd.Timedelta = 5, interval: str = "1d") -> None:
        self.position, self.gap = _clock(interval, cooldown)
        self._codes = (_Codes(), _Codes(), _Codes())  # symbol, kind, direction
        self._last = np.full((0, 0, 0), np.nan)  # position of the latest announcement; NaN: none

    def seed(self, announced: pd.DataFrame) -> None:
        """Take in announcements made before (the lake's opportunities)."""
        if announced is None or announced.empty:
            return
        at = self._cells(*(announced[c].astype(str).to_numpy(dtype=object) for c in ("symbol", "kind", "direction")))
        pos = np.asarray(self.position(announced["ts"]), dtype=np.float64)
        order = np.argsort(pos, kind="stable")  # the latest of each key is written last
        self._last[tuple(a[order] for a in at)] = np.fmax(self._last[tuple(a[order] for a in at)], pos[order])

    def admit(self, symbols, kinds, directions, ts) -> np.ndarray:
        """Which of these rows (all at bar time ``ts``) to announce; they are recorded as announced. A key
        given twice is announced once (its first row). Each of the three: the values, or ``Coded`` (positions
        in a labels array that is passed again, the same object, cycle after cycle: looked up once)."""
        n = len(symbols.codes if isinstance(symbols, Coded) else symbols)
        if not n:
            return np.zeros(0, bool)
        now = float(self.position(np.array([ts], np.int64) if isinstance(ts, (int, np.integer)) else pd.DatetimeIndex([ts]))[0])
        from mintel.analytics import _score_kernel as _k

        at = self._cells(symbols, kinds, directions)
        return _k.admit(self._last, *(np.asarray(a, np.int64) for a in at), now, float(self.gap))

    def _cells(self, symbols: np.ndarray, kinds: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, ...]:
        """The state cell of each row, growing the state for values not seen before."""
        at = tuple(c(v) for c, v in zip(self._codes, (symbols, kinds, directions)))
        old = self._last.shape
        need = tuple(len(c) for c in self._codes)
        if any(n > o for n, o in zip(need, old)):  # symbols grow by doubling (a universe arrives a few at a time)
            shape = (max(need[0], 2 * old[0]) if need[0] > old[0] else old[0], *map(max, need[1:], old[1:]))
            grown = np.full(shape, np.nan)
            grown[tuple(slice(0, o) for o in old)] = self._last
            self._last = grown
        return at


class Coded(NamedTuple):
    """Values given as positions in ``labels`` (``labels[codes]``)."""

    codes: np.ndarray
    labels: np.ndarray | pd.Index


class _Codes:
    """Dense codes of the values seen so far (a vocabulary that only grows: a code never changes)."""

    def __init__(self) -> None:
        self.index = pd.Index([], dtype=object)
        self._labels: tuple[object, np.ndarray] | None = None  # (the last Coded labels, their codes)

    def __len__(self) -> int:
        return len(self.index)

    def __call__(self, values) -> np.ndarray:
        if isinstance(values, Coded):
            if self._labels is None or self._labels[0] is not values.labels:
                self._labels = values.labels, self(values.labels)
            return self._labels[1][values.codes]
        values = np.asarray(values, dtype=object)
        codes = index_of(self.index, values)
        if (codes < 0).any():
            self.index = object_index(self.index, pd.unique(values[codes < 0]))
            codes = index_of(self.index, values)
        return codes
