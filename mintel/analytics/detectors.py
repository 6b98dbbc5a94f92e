"""Opportunity detectors: a registry of pure functions over an enriched bars frame (bars + indicators).

Each detector finds every bar where its condition holds, across all symbols at once, and explains
itself: a score 0..100 that is the sum of its factors' contributions (points, in ``factors``), a
confidence 0..1 (the share of confirming conditions met) and a message a trader can read.
``detect`` runs many; with ``last_only`` it looks only at each symbol's last bar (the live path)
and gives exactly the rows the full run gives for those bars. Adding a detector is one function
and one ``DETECTORS`` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel import schema
from mintel.analytics import detector_messages as dm
from mintel.analytics.indicators import compute_indicators
from mintel.analytics.keys import DEFAULT_TZ, is_intraday
from mintel.analytics.messages import Message, factor_json_all, label_array, render_all
from mintel.analytics.panel import NEEDED, Panel, _unit
from mintel.errors import DataError


@dataclass(frozen=True)
class DetectorParams:
    """Thresholds and windows of the detectors (bars, %, ATR multiples)."""

    breakout_window: int = 20
    year_window: int = 252
    spike_ratio: float = 3.0
    gap_pct: float = 2.0
    gap_atr: float = 1.0
    rsi_low: float = 30.0
    rsi_high: float = 70.0
    pivot_k: int = 3
    level_lookback: int = 120
    level_count: int = 8
    level_tol_atr: float = 0.5
    min_touches: int = 2
    level_hold: int = 5  # closes before the bar that must have respected a level
    divergence_min_bars: int = 5
    divergence_max_bars: int = 60
    volume_window: int = 20

    def history_bars(self, year: bool = True) -> int:
        """Usable bars a detection on a symbol's last bar can depend on (the live path reads this many);
        ``year=False`` when the 52-week detectors are not run."""
        k = self.pivot_k
        return max(self.year_window + 1 if year else 0, self.breakout_window + 1, self.volume_window + 1,
                   self.level_lookback + 2 * k + 1, self.level_hold + 1, self.divergence_max_bars + 3 * k + 1, 6) + 1


@dataclass
class Hits:
    """What a detector found: rows of the panel, each factor's points (summing to the score), confidence."""

    rows: np.ndarray
    factors: dict[str, np.ndarray]
    confidence: np.ndarray
    message: Message  # the text of each row, made when asked (``messages.render_all``)
    direction: np.ndarray | None = None  # per row, when the detector's direction depends on the bar

    def points(self) -> np.ndarray:
        """(rows x factors): each factor's points, to the cent; a row's score is their sum (``Found``)."""
        return np.round(np.column_stack([self.factors[f] for f in self.factors]).astype(np.float64), 2)


@dataclass(frozen=True)
class Detector:
    """A detector: ``find`` gives its hits on a panel; ``factors`` names its factors in order; ``message``
    makes the message of hits found elsewhere (the live kernel, ``_detect_kernel``) from the panel, their
    rows and their ``numbers`` (per-hit values the text needs that the panel does not hold)."""

    name: str
    direction: str  # long | short | neutral | bar (decided per bar)
    description: str
    find: Callable[[Panel], Hits] = field(repr=False)
    factors: tuple[str, ...] = ()
    message: Callable[..., Message] = field(repr=False, default=None)
    numbers: tuple[str, ...] = ()
    daily_only: bool = False


def _confidence(*conditions: np.ndarray) -> np.ndarray:
    """0.4 for the bare signal, up to 1.0 when every confirming condition holds."""
    total = np.asarray(conditions[0], dtype=np.float64)
    for c in conditions[1:]:  # row by row, as the mean over a stack of them adds
        total = total + np.asarray(c, dtype=np.float64)
    return 0.4 + 0.6 * (total / len(conditions))


# ------------------------------------------------------------------------------------- detectors


def _channel_break(p: Panel, side: int, year: bool) -> Hits:
    window = p.params.year_window if year else p.params.breakout_window
    hi, lo = p.channel(window)
    level = hi if side > 0 else lo
    with np.errstate(invalid="ignore"):
        r = p.rows(side * (p.c - level) > 0)
    excess, vr = side * (p.c[r] - level[r]), p.ind["volume_ratio"][r]
    factors = {"base": np.full(len(r), 50.0 if year else 40.0), "volume": p.volume_pts(r, 20 if year else 25),
               "margin": p.atr_pts(r, excess, 10 if year else 15), "trend": p.trend_pts(r, side, 10),
               "momentum": p.rsi_pts(r, side, 10)}
    loc = p.location[r] if side > 0 else 1 - p.location[r]
    conf = _confidence(vr >= 1.5, loc >= 0.5, factors["trend"] > 0)
    return Hits(r, factors, conf, dm.channel_message(p, r, side, year, level=level[r]))



def _volume_spike(p: Panel) -> Hits:
    vr = p.ind["volume_ratio"]
    with np.errstate(invalid="ignore"):
        r = p.rows(vr >= p.params.spike_ratio)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = p.c[r] / p.prev_close[r] - 1.0
        move_atr = np.abs(p.c[r] - p.prev_close[r]) / p.ind["atr"][r]
    side = np.sign(np.nan_to_num(ret))
    loc = np.where(side > 0, p.location[r], np.where(side < 0, 1 - p.location[r], 0.0))
    z = p.volume_z[r]
    factors = {"base": np.full(len(r), 30.0), "size": 30 * _unit((vr[r] - 3.0) / 5.0),
               "unusual": 10 * _unit((z - 2.0) / 2.0),
               "move": 20 * _unit(move_atr / 2.0), "close": 10 * loc}
    with np.errstate(invalid="ignore"):
        conf = _confidence(z >= 2.0, move_atr >= 0.5, loc >= 0.5)
    direction = np.where(side > 0, "long", np.where(side < 0, "short", "neutral"))
    return Hits(r, factors, conf, dm.spike_message(p, r), direction)



def _cross(p: Panel, side: int, fast: str, slow: str, label: str) -> Hits:
    up, down = p.crosses(fast, slow)
    r = p.rows(up if side > 0 else down)
    sma50_then = p.lag("sma_50", 5)[r]
    with np.errstate(invalid="ignore"):
        slope = side * (p.ind["sma_50"][r] - sma50_then) > 0
        hist = side * p.ind["macd_hist"][r] > 0
        far = side * p.ind["macd"][r] < 0
    if fast == "sma_20":
        factors = {"base": np.full(len(r), 50.0), "slope": 15.0 * slope, "volume": p.volume_pts(r, 15),
                   "trend": p.trend_pts(r, side, 10), "macd": 10.0 * hist}
        conf = _confidence(slope, hist, p.ind["volume_ratio"][r] >= 1.2)
    else:
        factors = {"base": np.full(len(r), 40.0), "trend": p.trend_pts(r, side, 20), "volume": p.volume_pts(r, 15),
                   "momentum": p.rsi_pts(r, side, 15), "position": 10.0 * far}
        conf = _confidence(factors["trend"] > 0, far, p.ind["volume_ratio"][r] >= 1.2)
    return Hits(r, factors, conf, dm.cross_message(p, r, side, fast, label))



def _rsi_extreme(p: Panel, side: int) -> Hits:
    rsi, prm = p.ind["rsi"], p.params
    with np.errstate(invalid="ignore"):
        r = p.rows(rsi < prm.rsi_low if side > 0 else rsi > prm.rsi_high)
        depth = (prm.rsi_low - rsi[r]) if side > 0 else (rsi[r] - prm.rsi_high)
        turn = side * (rsi[r] - p.lag("rsi", 1)[r]) > 0
        band = p.ind["bb_lower"][r] if side > 0 else p.ind["bb_upper"][r]
        stretch = side * (band - p.c[r]) > 0
    factors = {"base": np.full(len(r), 40.0), "depth": 30 * _unit(depth / 15.0), "turn": 15.0 * turn,
               "stretch": 15.0 * stretch}
    conf = _confidence(turn, stretch, depth >= 5)
    return Hits(r, factors, conf, dm.rsi_message(p, r, side))



def _divergence(p: Panel, side: int) -> Hits:
    d = p.divergences[0 if side > 0 else 1]
    r = d.rows
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi_gap = side * (d.rsi_pivot - d.rsi_previous)
        price_gap = side * (d.price_previous - d.price_pivot) / d.atr_pivot
        extreme = ((40.0 - d.rsi_previous) if side > 0 else (d.rsi_previous - 60.0)) / 10.0
        confirm = side * (p.c[r] - d.close_pivot) > 0
    factors = {"base": np.full(len(r), 45.0), "rsi_gap": 20 * _unit(rsi_gap / 10.0),
               "price_gap": 10 * _unit(price_gap), "extreme": 15 * _unit(extreme), "confirm": 10.0 * confirm}
    conf = _confidence(rsi_gap >= 5, extreme >= 1.0, confirm)
    return Hits(r, factors, conf, dm.divergence_message(p, r, side, price=d.price_pivot, price_before=d.price_previous,
                                                      rsi=d.rsi_pivot, rsi_before=d.rsi_previous))



def _level(p: Panel, name: str, side: int) -> Hits:
    hit = p.levels[name]
    sel = p.wanted[hit.rows]
    r, lvl, t = hit.rows[sel], hit.level[sel], hit.touches[sel]
    dist = side * (p.c[r] - lvl)
    touch = 25 * _unit((t - 1) / 3.0)
    if name.endswith("break"):
        factors = {"base": np.full(len(r), 40.0), "touches": touch, "margin": p.atr_pts(r, dist, 15),
                   "volume": p.volume_pts(r, 20)}
        conf = _confidence(t >= 3, p.ind["volume_ratio"][r] >= 1.5, factors["margin"] >= 5)
    else:
        turn = "bounce" if side > 0 else "rejection"
        factors = {"base": np.full(len(r), 40.0), "touches": touch, turn: p.atr_pts(r, dist, 15),
                   "volume": p.volume_pts(r, 10), "trend": p.trend_pts(r, side, 10)}
        conf = _confidence(t >= 3, factors["trend"] > 0, factors[turn] >= 5)
    return Hits(r, factors, conf, dm.level_message(p, r, name, level=lvl, touches=t))



def _gap(p: Panel, side: int) -> Hits:
    gp = p.gaps
    r = p.rows(gp["gap_up"] if side > 0 else gp["gap_down"])
    pct, atr_x, prev = (gp[c][r] for c in ("gap_pct", "gap_atr", "prev_close"))
    with np.errstate(invalid="ignore"):
        hold = side * (p.c[r] - prev) > 0
        follow = side * (p.c[r] - p.o[r]) > 0
    size = np.fmax(_unit(np.abs(pct) / 6.0), _unit(np.abs(atr_x) / 3.0))
    factors = {"base": np.full(len(r), 40.0), "size": 25 * size, "hold": 20.0 * hold, "volume": p.volume_pts(r, 15)}
    conf = _confidence(hold, follow, p.ind["volume_ratio"][r] >= 1.5)
    return Hits(r, factors, conf, dm.gap_message(p, r, side))



_SMA = {"fast": "sma_20", "slow": "sma_50"}
_MACD = {"fast": "macd", "slow": "macd_signal", "label": ""}
_CHANNEL = ("base", "volume", "margin", "trend", "momentum")
_SMA_CROSS = ("base", "slope", "volume", "trend", "macd")
_MACD_CROSS = ("base", "trend", "volume", "momentum", "position")
_RSI = ("base", "depth", "turn", "stretch")
_DIVERGENCE = ("base", "rsi_gap", "price_gap", "extreme", "confirm")
_BREAK = ("base", "touches", "margin", "volume")
_GAP = ("base", "size", "hold", "volume")
_DIV_NUMBERS = ("price", "price_before", "rsi", "rsi_before")
_LEVEL_NUMBERS = ("level", "touches")


def _channel_detector(name, direction, description, side, year):
    return Detector(name, direction, description, partial(_channel_break, side=side, year=year), _CHANNEL,
                    partial(dm.channel_message, side=side, year=year), ("level",), daily_only=year)


def _cross_detector(name, direction, description, side, spec, label=""):
    spec = {**spec, "label": label or spec.get("label", "")}
    return Detector(name, direction, description, partial(_cross, side=side, **spec),
                    _SMA_CROSS if spec["fast"] == "sma_20" else _MACD_CROSS,
                    partial(dm.cross_message, side=side, fast=spec["fast"], label=spec["label"]))


def _level_detector(name, direction, description, side):
    turn = "bounce" if side > 0 else "rejection"
    factors = _BREAK if name.endswith("break") else ("base", "touches", turn, "volume", "trend")
    return Detector(name, direction, description, partial(_level, name=name, side=side), factors,
                    partial(dm.level_message, name=name), _LEVEL_NUMBERS)


DETECTORS: dict[str, Detector] = {d.name: d for d in (
    _channel_detector("breakout", "long", "close above the previous N bars' highest high", 1, False),
    _channel_detector("breakdown", "short", "close below the previous N bars' lowest low", -1, False),
    _channel_detector("high_52w", "long", "close above the previous 252 daily bars' highest high", 1, True),
    _channel_detector("low_52w", "short", "close below the previous 252 daily bars' lowest low", -1, True),
    Detector("volume_spike", "bar", "volume ratio >= 3; direction of the bar's move", _volume_spike,
             ("base", "size", "unusual", "move", "close"), dm.spike_message),
    _cross_detector("golden_cross", "long", "SMA 20 crosses above SMA 50", 1, _SMA, "golden cross"),
    _cross_detector("death_cross", "short", "SMA 20 crosses below SMA 50", -1, _SMA, "death cross"),
    _cross_detector("macd_cross_up", "long", "MACD crosses above its signal line", 1, _MACD),
    _cross_detector("macd_cross_down", "short", "MACD crosses below its signal line", -1, _MACD),
    Detector("rsi_oversold", "long", "RSI below 30", partial(_rsi_extreme, side=1), _RSI, partial(dm.rsi_message, side=1)),
    Detector("rsi_overbought", "short", "RSI above 70", partial(_rsi_extreme, side=-1), _RSI,
             partial(dm.rsi_message, side=-1)),
    Detector("rsi_divergence_bull", "long", "lower price low, higher RSI low (RSI < 50)", partial(_divergence, side=1),
             _DIVERGENCE, partial(dm.divergence_message, side=1), _DIV_NUMBERS),
    Detector("rsi_divergence_bear", "short", "higher price high, lower RSI high (RSI > 50)", partial(_divergence, side=-1),
             _DIVERGENCE, partial(dm.divergence_message, side=-1), _DIV_NUMBERS),
    _level_detector("support_bounce", "long", "touch of a support (>= 2 touches) closing up, above it", 1),
    _level_detector("support_break", "short", "close below a support (>= 2 touches)", -1),
    _level_detector("resistance_break", "long", "close above a resistance (>= 2 touches)", 1),
    _level_detector("resistance_reject", "short", "touch of a resistance (>= 2 touches) closing down, below it", -1),
    Detector("gap_up", "long", "open above the previous close by > 2 % or > 1 ATR", partial(_gap, side=1), _GAP,
             partial(dm.gap_message, side=1)),
    Detector("gap_down", "short", "open below the previous close by > 2 % or > 1 ATR", partial(_gap, side=-1), _GAP,
             partial(dm.gap_message, side=-1)),
)}


def detect(enriched: pd.DataFrame, kinds: Iterable[str] | str | None = None, last_only: bool = False, *,
           interval: str | None = None, params: DetectorParams | None = None, explain: bool = True,
           now: pd.Timestamp | None = None, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Opportunity rows (``schema.OPPORTUNITIES``) of the detectors ``kinds`` (default: all) on ``enriched``.

    ``enriched``: bars (symbol, ts, open, high, low, close, volume; optional sector) with the indicator
    columns (computed here when missing), any order. ``last_only``: each symbol's last bar only.
    ``explain=False`` leaves message and factors null (faster, for the signal lab). Rows are sorted by
    (symbol, ts, kind); ``detected_at`` is ``now`` (null when not given: detection is pure).
    """
    names = kinds_of(kinds)
    missing = [c for c in ("symbol", "ts", "open", "high", "low", "close", "volume") if c not in enriched]
    if missing:
        raise DataError(f"bars: column {', '.join(map(repr, missing))} missing")
    if interval is None:
        interval = str(enriched["interval"].iloc[0]) if "interval" in enriched and len(enriched) else "1d"
    is_intraday(interval)  # validates it
    if len(enriched) == 0:
        return schema.empty_frame("opportunities")
    if any(c not in enriched for c in NEEDED):
        enriched = compute_indicators(enriched, interval, tz)
    params = params or DetectorParams()
    year = interval.strip().lower() == "1d" and any(DETECTORS[k].daily_only for k in names)
    p = Panel(enriched, interval, params, last_only=last_only, history=params.history_bars(year))
    parts = []
    for name in names:
        det = DETECTORS[name]
        if det.daily_only and not p.daily or p.g.n == 0:
            continue
        hits = det.find(p)
        if len(hits.rows):
            parts.append((det, hits))
    if not parts:
        return schema.empty_frame("opportunities")
    return opportunity_rows(p, parts, explain, now)


def kinds_of(kinds) -> list[str]:
    """Detector names from a list or a comma-separated string (default: all); DataError on unknown ones."""
    if kinds is None:
        return list(DETECTORS)
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    names = [str(k).strip() for k in kinds if str(k).strip()]
    unknown = [k for k in names if k not in DETECTORS]
    if unknown:
        raise DataError(f"kinds: unknown detector {', '.join(map(repr, unknown))} (known: {', '.join(DETECTORS)})")
    return list(dict.fromkeys(names))


def opportunity_rows(p: Panel, parts: list[tuple[Detector, Hits]], explain: bool, now) -> pd.DataFrame:
    """The hits as one opportunities frame, sorted by (symbol, ts, kind)."""
    return schema.to_pandas(opportunity_table(p, Found.of(parts), explain, now))


KINDS = np.array(sorted(DETECTORS), dtype=object)  # kinds in the opportunity rows' order (by name)
_KIND_RANK = {k: i for i, k in enumerate(KINDS)}
SIDES = np.array(["long", "short", "neutral"], dtype=object)
_KIND_NAMES, _SIDE_NAMES = tuple(KINDS), tuple(SIDES)
_SIDE_CODE = {s: i for i, s in enumerate(SIDES)}


@dataclass
class Found:
    """Every hit of a detection's parts, in the opportunity rows' order (panel row, then kind), as arrays.

    ``kind``: rank in ``KINDS``; ``direction``: position in ``SIDES``; ``part``/``hit``: where the hit came
    from (``parts[part][1]``, its ``hit``-th row); ``points``: each part's (hits x factors) points.
    ``text``: when set (the live kernel's hits, which have no parts), the message and factor columns of the
    hits at some positions, given their symbols (``opportunity_table`` calls it instead of reading the parts).
    """

    parts: list[tuple[Detector, Hits]]
    rows: np.ndarray
    kind: np.ndarray
    direction: np.ndarray
    score: np.ndarray
    confidence: np.ndarray
    part: np.ndarray
    hit: np.ndarray
    points: list[np.ndarray]
    text: Callable[[np.ndarray, pa.Array], tuple[pa.Array, pa.Array]] | None = None

    @classmethod
    def of(cls, parts: list[tuple[Detector, Hits]]) -> Found:
        if not parts:
            i8 = np.empty(0, np.int64)
            return cls(parts, i8, i8, np.empty(0, np.int32), np.empty(0), np.empty(0), i8, i8, [])
        points = [h.points() for _, h in parts]
        rows = np.concatenate([h.rows for _, h in parts])
        kind = np.concatenate([np.full(len(h.rows), _KIND_RANK[d.name], np.int64) for d, h in parts])
        direction = np.concatenate([np.full(len(h.rows), _SIDE_CODE[d.direction], np.int32) if h.direction is None
                                    else _side_codes(np.asarray(h.direction, object)) for d, h in parts])
        score = np.round(np.concatenate([pts.sum(axis=1) for pts in points]), 2)
        confidence = np.round(np.concatenate([h.confidence for _, h in parts]), 3)
        part = np.repeat(np.arange(len(parts)), [len(h.rows) for _, h in parts])
        hit = np.concatenate([np.arange(len(h.rows)) for _, h in parts])
        order = np.lexsort((kind, rows))
        return cls(parts, rows[order], kind[order], direction[order], score[order], confidence[order], part[order],
                   hit[order], points)


_PROGRAMS: dict[tuple, tuple] = {}


def kernel_programs(p: Panel) -> tuple:
    """Each kind's message program (by rank) for the live kernel's hits on panels like ``p``: the detector's
    template with its constant words, from its builder over no rows. Each must read the symbol as its only
    text and the kernel's ``MESSAGE`` columns for its kind (a prefix of them), in order."""
    from mintel.analytics import _detect_kernel as dk
    from mintel.analytics.messages import program

    key = (p.interval, p.params, "vwap" in p.ind)
    if key not in _PROGRAMS:
        out = []
        for k, name in enumerate(KINDS):
            det = DETECTORS[name]
            none = np.empty(0, np.int64)
            template, columns = det.message(p, none, **{c: np.empty(0) for c in det.numbers}).parts()
            prog = program(template, {c: v for c, v in columns.items() if isinstance(v, str)})
            numbers, flags = dk.MESSAGE[k]
            if prog.text != ("symbol",) or prog.numbers != numbers[:len(prog.numbers)] or prog.flags != flags[:len(prog.flags)]:
                raise RuntimeError(f"_detect_kernel.MESSAGE: {name}'s message reads {prog.text + prog.numbers + prog.flags}, "
                                   f"the kernel writes {('symbol',) + numbers + flags}")
            out.append(prog)
        _PROGRAMS[key] = tuple(out)
    return _PROGRAMS[key]


def _side_codes(direction: np.ndarray) -> np.ndarray:
    """Positions of per-bar directions in ``SIDES``."""
    codes = np.where(direction == "long", 0, np.where(direction == "short", 1, 2)).astype(np.int32)
    if not (direction[codes == 2] == "neutral").all():
        raise ValueError(f"direction: {sorted(set(direction[codes == 2]) - {'neutral'})} is not long, short or neutral")
    return codes


def opportunity_table(p: Panel, found: Found, explain: bool, now, keep: np.ndarray | None = None) -> pa.Table:
    """The hits (those where ``keep``, a mask in ``found``'s order, when given) as an OPPORTUNITIES table,
    built column by column in Arrow, sorted by (symbol, ts, kind)."""
    sel = np.flatnonzero(keep) if keep is not None else slice(None)
    r = found.rows[sel]
    n = len(r)
    symbols = p.symbol_array(r)
    if explain and n and found.text is not None:
        message, factor = found.text(np.arange(len(found.rows))[sel], symbols)
    elif explain and n:
        part, hit = found.part[sel], found.hit[sel]
        by_part = np.argsort(part, kind="stable")  # rendered part after part, then put in row order
        bounds = np.searchsorted(part[by_part], np.arange(len(found.parts) + 1))
        messages, factors = [], []
        for i, (_, h) in enumerate(found.parts):
            at = hit[by_part[bounds[i]:bounds[i + 1]]]
            if len(at):
                messages.append(h.message.parts(at))
                factors.append((list(h.factors), found.points[i][at]))
        back = pa.array(np.argsort(by_part))
        message, factor = render_all(messages).take(back), factor_json_all(factors).take(back)
    else:
        message = factor = pa.nulls(n, pa.string())

    def times(ns: np.ndarray) -> pa.Array:
        return pa.Array.from_buffers(schema.TS, len(ns), [None, pa.py_buffer(np.ascontiguousarray(ns, np.int64))])

    return pa.Table.from_arrays([
        times(p.ts[r]),
        symbols,
        label_array(found.kind[sel], _KIND_NAMES),
        label_array(found.direction[sel], _SIDE_NAMES),
        pa.array(found.score[sel]),
        pa.array(found.confidence[sel]),
        message,
        factor,
        label_array(np.zeros(n, np.int64), (p.interval,)),
        pa.array(p.c[r]),
        p.sector_array(r),
        pa.nulls(n, schema.TS) if now is None else times(np.full(n, pd.Timestamp(now).as_unit("ns").value)),
    ], schema=schema.OPPORTUNITIES)
