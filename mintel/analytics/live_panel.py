"""The detectors' panel read straight from the live window's arrays: each symbol's last bar, no DataFrame.

``Panel`` (panel.py) lays every usable bar of a frame end to end and computes its windows over all
of them; on the live path only each symbol's last bar is wanted, so ``LivePanel`` evaluates the same
quantities at that bar alone, from the ``BarWindow``'s (symbols x slots) matrix: a lag is one column,
a channel one max over a few columns, a pivot a handful of shifted comparisons. The sums and extrema
are taken in the ``Panel``'s order, so every value is the one ``Panel(..., last_only=True)`` gives,
bit for bit, and the detectors and the scorer run on it unchanged.

It covers the symbols whose usable bars are the window's last slots without a hole (``run``
consecutive usable slots ending at the newest, and no usable bar before them): the live case. A
symbol that missed a slot is left to the ``Panel`` path by the engine (``dense`` says which).
"""

from __future__ import annotations

import functools
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from mintel.analytics import _panel_kernel as _kernel
from mintel.analytics import momentum as mo
from mintel.analytics.panel import NEEDED, DivergenceHits, Panel

if TYPE_CHECKING:
    from mintel.analytics.detectors import DetectorParams, Found
    from mintel.analytics.engine import BarWindow

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class LivePanel(Panel):
    """Each window symbol's last bar (row i = symbol i of the window), ``wanted`` where ``want`` and dense.

    ``history``: usable bars a detection may read (``DetectorParams.history_bars``), as ``Panel``'s tail;
    ``labels``: each window symbol's name and sector (or None) as Arrow string arrays, for the opportunity
    rows (made once per window symbols by the caller; by default here).
    """

    def __init__(self, window: BarWindow, interval: str, params: DetectorParams, *, want: np.ndarray,
                 history: int, dense: np.ndarray, labels: tuple[pa.Array, pa.Array | None] | None = None):
        self.interval, self.params, self.last_only = interval, params, True
        self.daily = interval.strip().lower() == "1d"
        self.unit = "day" if self.daily else ("week" if interval.strip().lower() in ("1w", "1wk") else "bar")
        self._window = window  # read during the update it was made for
        self._m, slot_ts = window.view()
        self._logv = window.log_volume()
        kept = window.pivot_k is not None and window.pivot_k == params.pivot_k and window.pivot_keep > params.level_count
        self._piv = window.pivots() if kept else None  # else the swings are found from the slots
        self._lists = window.pivot_lists() if kept else None
        self._col = {c: j for j, c in enumerate(window.columns)}
        n, width = self._m.shape[1], self._m.shape[2]
        self.width = width
        self.names = np.asarray(window.names, dtype=object)
        self.code = np.arange(n)
        self.ts = np.full(n, slot_ts[-1] if width else np.iinfo(np.int64).min, np.int64)
        self.run = np.minimum(window.run, width)  # usable bars of each symbol: the last `run` slots
        self.bars = np.minimum(self.run, history)  # the Panel's tail
        self.wanted = want & dense & (self.run > 0)
        self.dense = dense
        self._labels = labels or (pa.array(self.names, pa.string()), None)
        self.o, self.h, self.l, self.c, self.v = (self._last(c) for c in _PRICE_COLUMNS)
        self.ind = {c: self._last(c) for c in (*NEEDED, "sma_200") if c in self._col}

    # -- the detectors

    def found(self, kinds) -> Found:
        """Every hit of the detectors ``kinds`` on the wanted rows, in ``Found``'s order: one compiled pass
        over the window (``_detect_kernel``) when it keeps its swing lists and log volumes, else each
        detector's ``find`` on this panel (the two give the same hits, bit for bit)."""
        from mintel.analytics import _detect_kernel as dk  # numba: loaded with the first live cycle
        from mintel.analytics.detectors import DETECTORS, Found

        if self._lists is None or self._logv is None or not self.width or any(c not in self._col for c in dk.COLUMNS):
            return Found.of([(DETECTORS[k], h) for k in kinds if len((h := DETECTORS[k].find(self)).rows)])
        return _kernel_found(self, kinds)

    # -- the window

    def _last(self, name: str) -> np.ndarray:
        return self._m[self._col[name], :, -1] if self.width else np.full(len(self.names), np.nan)

    def recent(self, name: str, depth: int, bars: np.ndarray | None = None) -> np.ndarray:
        """(symbols, ``depth``): column ``name`` over the last ``depth`` slots, oldest first; NaN before each
        symbol's first usable bar of ``bars`` (default: the tail)."""
        bars = self.bars if bars is None else bars
        if depth > self.width:
            pad = np.full((len(self.names), depth - self.width), np.nan)
            return np.concatenate([pad, self.recent(name, self.width, bars)], axis=1)
        return self._recent(self._m[self._col[name]], depth, bars)

    def _recent(self, matrix: np.ndarray, depth: int, bars: np.ndarray) -> np.ndarray:
        """``recent`` of a (symbols x slots) ``matrix`` (depth <= width)."""
        block = matrix[:, self.width - depth:]
        short = bars < depth
        if short.any():
            block = np.where(np.arange(depth) >= (depth - bars)[:, None], block, np.nan)
        return block

    def lag(self, name: str, k: int) -> np.ndarray:
        if k == 0:
            return self.column(name).copy()
        if k >= self.width:
            return np.full(len(self.names), np.nan)
        a = self._m[self._col[name], :, -1 - k]
        return np.where(self.bars > k, a, np.nan)

    def crosses(self, fast: str, slow: str) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.ind[fast], self.ind[slow]
        pa, pb = self.lag(fast, 1), self.lag(slow, 1)
        with np.errstate(invalid="ignore"):
            return (a > b) & (pa <= pb), (a < b) & (pa >= pb)

    def symbol_array(self, r: np.ndarray) -> pa.Array:
        return self._labels[0].take(pa.array(r, pa.int64()))

    def sector_array(self, r: np.ndarray) -> pa.Array:
        sectors = self._labels[1]
        return pa.nulls(len(r), pa.string()) if sectors is None else sectors.take(pa.array(r, pa.int64()))

    # -- shared derived values, at each symbol's last bar

    @cached_property
    def sym(self) -> np.ndarray:
        return self.names

    @cached_property
    def prev_close(self) -> np.ndarray:
        return self.lag("close", 1)

    @cached_property
    def volume_z(self) -> np.ndarray:
        window = self.params.volume_window
        if self._logv is not None and window + 1 <= self.width:  # the window's, computed once per bar
            lv = self._recent(self._logv, window + 1, self.bars)
        else:
            lv = np.log1p(np.clip(self.recent("volume", window + 1), 0, None))
        s1, s2 = lv[:, 0].copy(), lv[:, 0] * lv[:, 0]  # summed left to right, as Groups.window_sum
        for j in range(1, window):
            s1 += lv[:, j]
            s2 += lv[:, j] * lv[:, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / window
            var = np.maximum(s2 - s1 * mean, 0.0) / (window - 1)
            std = np.sqrt(var)
            z = np.where(std > 1e-6, (lv[:, -1] - mean) / std, np.nan)
        return np.where(self.bars > window, z, np.nan)

    def channel(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        key = f"_channel_{window}"
        if key not in self.__dict__:
            n = len(self.names)
            if window + 1 > self.width:
                self.__dict__[key] = np.full(n, np.nan), np.full(n, np.nan)
            else:
                ok = self.bars > window
                with np.errstate(invalid="ignore"):
                    hi = self._m[self._col["high"], :, -1 - window:-1].max(axis=1)
                    lo = self._m[self._col["low"], :, -1 - window:-1].min(axis=1)
                self.__dict__[key] = np.where(ok, hi, np.nan), np.where(ok, lo, np.nan)
        return self.__dict__[key]

    def range_hilo(self, r: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from mintel.analytics.detectors import DetectorParams

        bars = np.minimum(self.run, min(window, DetectorParams().history_bars()))  # the scorer's panel tail
        depth = min(window, self.width)
        tail = np.minimum(bars[r], depth)
        if len(r) and self.dense[r].all() and (tail >= 1).all() and "high" in self._col and "low" in self._col:
            hi, lo = self._window.tail_extrema(r, tail)  # usable tails: kept from the last cycle
            return hi, lo, bars[r]
        # Reduced over every symbol, then taken at r: gathering rows of the (symbols, slots) view first
        # copies it slot by slot (~4x slower). fmax/fmin skip NaN as nanmax/nanmin do, without their copy.
        hi = np.fmax.reduce(self.recent("high", depth, bars), axis=1)[r]
        lo = np.fmin.reduce(self.recent("low", depth, bars), axis=1)[r]
        return hi, lo, bars[r]

    def _raw(self, name: str, depth: int) -> np.ndarray:
        """``recent`` without the tail's mask: equal to it wherever a swing flag is set (see ``swings``)."""
        if depth > self.width:
            pad = np.full((len(self.names), depth - self.width), np.nan)
            return np.concatenate([pad, self._m[self._col[name], :, :]], axis=1)
        return self._m[self._col[name], :, self.width - depth:]

    @cached_property
    def swings(self) -> tuple[np.ndarray, np.ndarray]:
        """(swing highs, swing lows) over the last ``span`` slots (``mo.pivots``' test, at each slot).

        From the window's flags when it keeps them: a flag on the raw slots equals the flag on ``recent``'s
        masked ones when the ``k`` slots before it are in the span and the symbol's tail (slot ``j`` of the
        span with ``j - k >= max(span - bars, 0)``; the slots after it are newer, so in the tail too), and
        is False otherwise.
        """
        k, span = self.params.pivot_k, self._pivot_span
        if self._piv is None:
            hm, lm = self.recent("high", span), self.recent("low", span)
            return _pivots(hm, k, np.maximum), _pivots(lm, k, np.minimum)
        out = []
        for flags in self._piv:
            f = flags[:, self.width - span:] if span <= self.width else \
                np.concatenate([np.zeros((len(self.names), span - self.width), bool), flags], axis=1)
            f = f.copy()
            f[:, :k] = False  # the span's first k slots lack their left side within it
            short = np.flatnonzero(self.bars < span)  # rows whose tail starts inside the span
            if len(short):
                f[short] &= np.arange(span) - k >= (span - self.bars[short])[:, None]
            out.append(f)
        return out[0], out[1]

    @cached_property
    def _pivot_span(self) -> int:
        p = self.params
        return min(self.width, max(p.level_lookback, p.divergence_max_bars + p.pivot_k) + p.pivot_k + 1)

    @cached_property
    def levels(self) -> dict[str, mo.LevelHits]:
        p, span = self.params, self._pivot_span
        k = p.pivot_k
        is_hi, is_lo = self.swings if self._piv is None else (None, None)
        tol = p.level_tol_atr * self.ind["atr"]
        closes = self.recent("close", p.level_hold + 1)[:, :-1]
        with np.errstate(invalid="ignore"):
            ok = self.bars > p.level_hold
            floor = np.where(ok, closes.min(axis=1), np.nan)
            ceiling = np.where(ok, closes.max(axis=1), np.nan)
        # Known pivots: confirmed before the last bar (slot <= last - k - 1), within the lookback.
        first = max(span - 1 - p.level_lookback, 0)
        known = slice(first, span - k - 1)
        tests = mo.level_tests(self.o, self.h, self.l, self.c, tol, floor, ceiling)
        candidates = {name: np.flatnonzero(maybe & self.wanted) for name, maybe in tests.items()}
        known_levels = {}  # the known levels of the candidate rows only: (rows, levels)
        for side, flags, price in (("support", is_lo, "low"), ("resistance", is_hi, "high")):
            union = np.zeros(len(self.names), bool)
            for name, r in candidates.items():
                union[r] |= name.startswith(side)
            rows = np.flatnonzero(union)
            if self._piv is None:
                levels = _recent_prices(flags[rows, known], self._raw(price, span)[rows, known], p.level_count)
            else:  # straight from the window's flags, with ``swings``' masks as slot bounds (no copies)
                off = self.width - span
                lowest = off + np.maximum(max(first, k), span - self.bars[rows] + k)
                j = 0 if side == "resistance" else 1
                seq, prices, listed, newest = self._lists
                base = newest - (self.width - 1)  # sequence number of view slot 0
                levels = _kernel.recent_listed(seq[j], prices[j], listed[j], rows, base + lowest, base + off + known.stop,
                                               p.level_count)
            known_levels[side] = rows, levels
        out = {}
        for name, rows in candidates.items():
            at, levels = known_levels["support" if name.startswith("support") else "resistance"]
            out[name] = mo.strongest_level(name, levels[np.searchsorted(at, rows)], rows, self.h, self.l, self.c, tol,
                                           floor, ceiling, p.min_touches)
        return out

    @cached_property
    def divergences(self) -> tuple[DivergenceHits, DivergenceHits]:
        p, span = self.params, self._pivot_span
        k = p.pivot_k
        is_hi, is_lo = self.swings if self._piv is None else (None, None)
        # Read at flagged slots only (or for rows not kept), so unmasked: see ``swings``.
        rsi = self._raw("rsi", span)
        atr = self._raw("atr", k + 1)[:, 0]
        close = self._raw("close", k + 1)[:, 0]
        out = []
        cur = span - 1 - k  # the pivot a divergence on the last bar confirms
        if cur - max(cur - p.divergence_max_bars, 0) < max(p.divergence_min_bars, 1):
            none = np.empty(0, np.int64), *(np.empty(0) for _ in range(6))
            return DivergenceHits(*none), DivergenceHits(*none)
        if self._piv is not None:
            return self._divergences_from_flags(rsi, atr, close, cur)
        for mask, price, side in ((is_lo, self._raw("low", span), -1), (is_hi, self._raw("high", span), 1)):
            # the pivot before it: the latest one, when within max_bars (an older one cannot qualify)
            lo = max(cur - p.divergence_max_bars, 0)
            before = mask[:, lo:cur]
            has = before.any(axis=1)
            prev = lo + before.shape[1] - 1 - np.argmax(before[:, ::-1], axis=1)
            i = np.arange(len(self.names))
            rc, rp, pc_, pp = rsi[:, cur], rsi[i, prev], price[:, cur], price[i, prev]
            with np.errstate(invalid="ignore"):
                ok = self.wanted & mask[:, cur] & has & (cur - prev >= p.divergence_min_bars)
                ok &= (side * (pc_ - pp) > 0) & (side * (rc - rp) < 0) & (side * (rc - 50.0) > 0)
            r = np.flatnonzero(ok)
            out.append(DivergenceHits(r, rc[r], rp[r], pc_[r], pp[r], atr[r], close[r]))
        return out[0], out[1]

    def _divergences_from_flags(self, rsi: np.ndarray, atr: np.ndarray, close: np.ndarray, cur: int
                                ) -> tuple[DivergenceHits, DivergenceHits]:
        """``divergences`` read from the window's flags, with ``swings``' masks as slot bounds: only the rows
        with a swing confirmed at ``cur`` look back for the one before it (no (symbols x span) copies)."""
        p, span, k = self.params, self._pivot_span, self.params.pivot_k
        off = self.width - span
        lo = max(cur - p.divergence_max_bars, 0)
        out = []
        for flags, price, side in ((self._piv[1], self._raw("low", span), -1), (self._piv[0], self._raw("high", span), 1)):
            at_cur = self.wanted & flags[:, off + cur] if cur >= k else np.zeros(len(self.names), bool)
            r = np.flatnonzero(at_cur & (cur - k >= span - self.bars))
            first = off + np.maximum(max(lo, k), span - self.bars[r] + k)
            prev = _kernel.latest_flagged(flags, r, first, off + cur)
            r, prev = r[prev >= 0], prev[prev >= 0] - off
            rc, rp, pc_, pp = rsi[r, cur], rsi[r, prev], price[r, cur], price[r, prev]
            with np.errstate(invalid="ignore"):
                ok = (cur - prev >= p.divergence_min_bars) & (side * (pc_ - pp) > 0) & (side * (rc - rp) < 0)
                ok &= side * (rc - 50.0) > 0
            r = r[ok]
            out.append(DivergenceHits(r, rc[ok], rp[ok], pc_[ok], pp[ok], atr[r], close[r]))
        return out[0], out[1]


def _pivots(a: np.ndarray, k: int, f) -> np.ndarray:
    """Pivot flags of (symbols, slots) ``a`` (highs with ``np.maximum``, lows with ``np.minimum``): beyond
    the ``k`` slots before (strictly) and not beyond the ``k`` after; False where either side is missing."""
    n, span = a.shape
    out = np.zeros((n, span), bool)
    if span < 2 * k + 1:
        return out
    m = span - 2 * k
    before = a[:, 0:m].copy()
    after = a[:, k + 1:k + 1 + m].copy()
    for j in range(1, k):
        f(before, a[:, j:j + m], out=before)
        f(after, a[:, k + 1 + j:k + 1 + j + m], out=after)
    mid = a[:, k:k + m]
    with np.errstate(invalid="ignore"):
        if f is np.maximum:
            out[:, k:k + m] = (mid > before) & (mid >= after)
        else:
            out[:, k:k + m] = (mid < before) & (mid <= after)
    return out


def _recent_prices(mask: np.ndarray, price: np.ndarray, count: int) -> np.ndarray:
    """(symbols, count): the prices at the ``count`` most recent True slots of each row, most recent first."""
    n, width = mask.shape
    out = np.full((n, count), np.nan)
    flat = np.flatnonzero(mask)  # row-major: each row's slots in order
    rows, cols = flat // width, flat % width
    if len(rows):
        end = np.cumsum(np.bincount(rows, minlength=n))
        rank = end[rows] - np.arange(len(rows))  # 1 = the row's most recent
        near = rank <= count
        rows, cols = rows[near], cols[near]
        out[rows, rank[near] - 1] = price[rows, cols]
    return out


@functools.lru_cache(maxsize=16)
def _enabled(kinds: tuple[str, ...]) -> np.ndarray:
    from mintel.analytics.detectors import KINDS

    out = np.isin(KINDS, list(kinds))
    out.flags.writeable = False
    return out


def _kernel_found(p: LivePanel, kinds) -> Found:
    """``LivePanel.found`` through ``_detect_kernel.live_detect``: the hits as arrays, without parts; their
    message and factor columns are made from the kernel's numbers, for the hits announced (``_kernel_text``)."""
    from mintel.analytics import _detect_kernel as dk
    from mintel.analytics.detectors import KINDS, Found

    if tuple(KINDS) != dk.KIND_ORDER:  # pragma: no cover - a detector added in one place only
        raise RuntimeError("_detect_kernel: its kinds differ from the detectors'")
    enabled = _enabled(tuple(kinds))
    cols = np.array([p._col[c] for c in dk.COLUMNS], np.int64)
    params = np.array([float(getattr(p.params, f)) for f in dk.PARAMS])
    ref = "sma_20" if p.daily else "vwap"  # what a volume spike's message measures the close from
    seq, prices, listed, newest = p._lists
    n, rows, kind, direction, pts, score, conf, nums, flag = dk.live_detect(
        p._m, cols, p._logv, seq, prices, listed, newest, p.bars, p.wanted, params,
        p._pivot_span, enabled, p._col[ref] if ref in p.ind else -1)
    none = np.empty(0, np.int64)
    return Found([], rows, kind, direction, score, conf, none, none, [],
                 functools.partial(_kernel_text, p, kind, pts, nums, flag))


def _kernel_text(p: LivePanel, kind: np.ndarray, points: np.ndarray, numbers: np.ndarray, flags: np.ndarray,
                 at: np.ndarray, symbols: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(message, factors) of the kernel's hits at positions ``at`` (their ``symbols``): each kind's template
    (``detectors.kernel_programs``) over the hit's numbers and flag, and its factor names over its points."""
    from mintel.analytics.detectors import KINDS, kernel_programs
    from mintel.analytics.messages import factor_json_coded, render_coded

    which = kind[at]
    message = render_coded(kernel_programs(p), which, symbols, numbers[at], flags[at, None])
    return message, factor_json_coded(_factor_names(tuple(KINDS)), which, points[at])


@functools.lru_cache(maxsize=4)
def _factor_names(kinds: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Each kind's factor names, in ``kinds``' order (made once: the JSON writer's keys are cached by them)."""
    from mintel.analytics.detectors import DETECTORS

    return tuple(DETECTORS[k].factors for k in kinds)
