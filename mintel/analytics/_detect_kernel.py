"""Every detector on each wanted symbol's last bar in one compiled pass over the live window (numba).

``LivePanel`` + the numpy detectors (``detectors.py``) evaluate each detector as a dozen numpy calls
over the universe: at 5000 symbols ~19 detectors x ~15 calls x a few us of dispatch, plus the
per-detector ``Found`` parts, was most of a live update. Here each wanted row is visited once: its
shared values (lags, location, volume z-score, channels, gaps, crosses, swing levels, divergences)
and then every enabled detector in ``KINDS`` order (by name), writing the hits in ``Found``'s order
(row, then kind) with their factor points, score, confidence and their message's numbers and flag in
its template's order (``MESSAGE``): the text is then written from them in one pass, with no per-kind
parts (``live_panel._kernel_text``). Chunks of rows run on separate threads (``_parallel``).

The rules are the numpy detectors' (``detectors.py``, ``LivePanel``), written per row with the same
operations in the same order, so every number is bit for bit the one the numpy path gives; the tests
hold the two paths equal, messages included (``tests/analytics/test_detect_kernel.py``). A change of a
rule, or of what a message shows, is made in both places. Rounding is numpy's: ``rint(x * 10**d) / 10**d``; a row's score sums its rounded points
left to right, as numpy's ``sum(axis=1)`` does for a handful of columns.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mintel.analytics._panel_kernel import listed_row, strongest_row
from mintel.analytics._parallel import JIT, bounds, chunks, kernel

_JIT = {"cache": True, "nogil": True}

# Kinds by rank (``detectors.KINDS``, sorted by name); ``live_panel._kernel_found`` checks they agree.
KIND_ORDER = ("breakdown", "breakout", "death_cross", "gap_down", "gap_up", "golden_cross", "high_52w", "low_52w",
              "macd_cross_down", "macd_cross_up", "resistance_break", "resistance_reject", "rsi_divergence_bear",
              "rsi_divergence_bull", "rsi_overbought", "rsi_oversold", "support_bounce", "support_break",
              "volume_spike")
# Columns of the window the kernel reads, in the order of its ``cols`` argument.
COLUMNS = ("open", "high", "low", "close", "volume_ratio", "atr", "rsi", "sma_20", "sma_50", "macd", "macd_signal",
           "macd_hist", "bb_upper", "bb_lower")
# Params in the order of its ``params`` argument (``DetectorParams`` fields).
PARAMS = ("breakout_window", "year_window", "spike_ratio", "gap_pct", "gap_atr", "rsi_low", "rsi_high", "pivot_k",
          "level_lookback", "level_count", "level_tol_atr", "min_touches", "level_hold", "divergence_min_bars",
          "divergence_max_bars", "volume_window")
NUMBERS = 4  # message numbers per hit, at most
# Each kind's message columns (by rank, as ``KIND_ORDER``): the number columns its template reads, in the
# template's order, which the kernel writes as a hit's numbers, and its flag column, if any. Checked
# against the templates (``detectors.kernel_programs``), so a template and the kernel cannot drift apart.
_CHANNEL, _CROSS, _RSI_TEXT = (("level", "close", "vr"), ()), (("close",), ()), (("rsi",), ("turn",))
_GAP, _LEVEL = (("pct", "atr", "open", "prev"), ("hold",)), (("level", "touches", "close", "vr"), ())
_DIV, _MACD_TEXT = (("price", "price_before", "rsi", "rsi_before"), ()), (("macd",), ("below",))
MESSAGE = (_CHANNEL, _CHANNEL, _CROSS, _GAP, _GAP, _CROSS, _CHANNEL, _CHANNEL, _MACD_TEXT, _MACD_TEXT, _LEVEL, _LEVEL,
           _DIV, _DIV, _RSI_TEXT, _RSI_TEXT, _LEVEL, _LEVEL, (("vr", "move", "dist"), ("above",)))
FACTORS = 5  # factor points per hit, at most

_O, _H, _L, _C, _VR, _ATR, _RSI, _S20, _S50, _MACD, _MSIG, _MHIST, _BBU, _BBL = range(14)
_LONG, _SHORT, _NEUTRAL = 0, 1, 2


@njit(**_JIT)
def _unit(x):
    """``panel._unit``: clip to 0..1, NaN -> 0."""
    return min(x, 1.0) if x > 0.0 else 0.0


@njit(**_JIT)
def _r2(x):
    return np.rint(x * 100.0) / 100.0


@njit(**_JIT)
def _f(flag):
    return 1.0 if flag else 0.0


@njit(**_JIT)
def _conf(a, b, c):
    """``detectors._confidence`` of three conditions, rounded to 3 places as ``Found`` does."""
    total = (_f(a) + _f(b)) + _f(c)
    return np.rint((0.4 + 0.6 * (total / 3.0)) * 1000.0) / 1000.0


@njit(**_JIT)
def _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, kind, direction, nf,
          p0, p1, p2, p3, p4, conf, n0, n1, n2, n3, flag):
    """Write hit ``n``: its row, kind, direction, ``nf`` factor points (rounded) and their sum, confidence, and its
    message's numbers and flag (``MESSAGE[kind]``)."""
    out_row[n], out_kind[n], out_dir[n] = r, kind, direction
    pts = (_r2(p0), _r2(p1), _r2(p2), _r2(p3), _r2(p4))
    total = pts[0]
    for j in range(1, nf):
        total += pts[j]
    for j in range(FACTORS):
        out_pts[n, j] = pts[j] if j < nf else 0.0
    out_score[n] = _r2(total)
    out_conf[n] = conf
    out_num[n, 0], out_num[n, 1], out_num[n, 2], out_num[n, 3] = n0, n1, n2, n3
    out_flag[n] = flag
    return n + 1


@njit(**_JIT)
def _lag(m, col, r, k, width, bars):
    """``LivePanel.lag``: column ``col`` ``k`` bars before the last (NaN beyond the symbol's tail)."""
    if k >= width or bars <= k:
        return np.nan
    return m[col, r, width - 1 - k]


@njit(**JIT)
def _channels(m, hcol, lcol, window, width):
    """``LivePanel.channel`` before its tail test: (highest high, lowest low) of the ``window`` slots before the
    last, for every symbol, slot by slot (each slot's symbols are contiguous: one stream per slot, where a
    row at a time reads ``window`` slots a page apart); chunks of symbols on separate threads."""
    n = m.shape[1]
    hi, lo = np.full(n, np.nan), np.full(n, np.nan)
    if window + 1 > width:
        return hi, lo
    first = width - 1 - window
    parts = chunks(n)
    for part in prange(parts):
        a, b = bounds(part, parts, n)
        for r in range(a, b):
            hi[r], lo[r] = m[hcol, r, first], m[lcol, r, first]
        for s in range(first + 1, width - 1):
            for r in range(a, b):
                hi[r] = max(hi[r], m[hcol, r, s])  # the rows that use it: usable slots, finite
                lo[r] = min(lo[r], m[lcol, r, s])
    return hi, lo


@njit(**JIT)
def _volume_z(logv, window, width):
    """``LivePanel.volume_z`` before its tail test, for every symbol, from the window's log volumes: the sums
    taken slot by slot, so each symbol's are left to right as numpy's; chunks of symbols on separate threads."""
    n = logv.shape[0]
    z = np.full(n, np.nan)
    if window + 1 > width:
        return z
    first = width - (window + 1)
    s1, s2 = np.empty(n), np.empty(n)
    parts = chunks(n)
    for part in prange(parts):
        a, b = bounds(part, parts, n)
        for r in range(a, b):
            x = logv[r, first]
            s1[r], s2[r] = x, x * x
        for j in range(1, window):
            for r in range(a, b):
                x = logv[r, first + j]
                s1[r] += x
                s2[r] += x * x
        for r in range(a, b):
            mean = s1[r] / window
            v = s2[r] - s1[r] * mean
            std = np.sqrt((v if not v < 0.0 else 0.0) / (window - 1))  # np.maximum(v, 0): NaN stays NaN
            z[r] = (logv[r, width - 1] - mean) / std if std > 1e-6 else np.nan
    return z


@kernel
def live_detect(m, cols, logv, seq, prices, listed, newest, bars, wanted, params, span, enabled, ref_col):
    """Hits of the ``enabled`` kinds (by rank) on each wanted row's last bar.

    ``m``: (columns, symbols, slots) window view with ``cols`` the positions of ``COLUMNS``; ``logv``:
    (symbols, slots) log volumes; ``seq``/``prices``/``listed``/``newest``: the window's swing-point lists
    (``BarWindow.pivot_lists``: side 0 highs, side 1 lows, newest first); ``bars``: usable bars
    of each symbol's tail; ``params``: ``PARAMS`` values; ``span``: ``LivePanel._pivot_span``.

    ``ref_col``: the column a volume spike's distance is measured from (VWAP; daily: SMA 20; -1: none).

    Returns (count, rows, kind, direction, points (hits x FACTORS), score, confidence, message numbers (hits x
    NUMBERS), message flag) in row then kind order. Chunks of the wanted rows run on separate threads, each writing its
    hits into its own range of the outputs (a row has one hit per enabled kind at most); the ranges are
    then moved together.
    """
    width = m.shape[2]
    n_window, year_w, vwin = int(params[0]), int(params[1]), int(params[15])
    wanted_n = 0
    for r in range(len(wanted)):
        if wanted[r]:
            wanted_n += 1
    rows = np.empty(wanted_n, np.int64)
    wanted_n = 0
    for r in range(len(wanted)):
        if wanted[r]:
            rows[wanted_n] = r
            wanted_n += 1
    per = len(enabled)
    cap = wanted_n * per
    out_row = np.empty(cap, np.int64)
    out_kind = np.empty(cap, np.int64)
    out_dir = np.empty(cap, np.int32)
    out_pts = np.empty((cap, FACTORS))
    out_score = np.empty(cap)
    out_conf = np.empty(cap)
    out_num = np.empty((cap, NUMBERS))
    out_flag = np.empty(cap, np.bool_)
    hi_n_all, lo_n_all = _channels(m, cols[_H], cols[_L], n_window, width)
    if enabled[6] or enabled[7]:
        hi_year, lo_year = _channels(m, cols[_H], cols[_L], year_w, width)
    else:
        hi_year, lo_year = hi_n_all, lo_n_all  # not read
    z_all = _volume_z(logv, vwin, width) if enabled[18] else np.empty(0)
    parts = chunks(wanted_n)
    ends = np.empty(parts, np.int64)
    for part in prange(parts):
        lo, hi = bounds(part, parts, wanted_n)
        ends[part] = _detect_rows(m, cols, seq, prices, listed, newest, bars, rows, lo, hi, params, span, enabled,
                                  ref_col, hi_n_all, lo_n_all, hi_year, lo_year, z_all, out_row, out_kind, out_dir,
                                  out_pts, out_score, out_conf, out_num, out_flag, lo * per)
    n = 0
    for part in range(parts):
        for i in range(bounds(part, parts, wanted_n)[0] * per, ends[part]):
            out_row[n], out_kind[n], out_dir[n], out_score[n], out_conf[n] = \
                out_row[i], out_kind[i], out_dir[i], out_score[i], out_conf[i]
            out_pts[n], out_num[n], out_flag[n] = out_pts[i], out_num[i], out_flag[i]
            n += 1
    return n, out_row[:n], out_kind[:n], out_dir[:n], out_pts[:n], out_score[:n], out_conf[:n], out_num[:n], out_flag[:n]


@njit(**_JIT)
def _detect_rows(m, cols, seq, prices, listed, newest, bars, rows, start, stop, params, span, enabled, ref_col,
                 hi_n_all, lo_n_all, hi_year, lo_year, z_all, out_row, out_kind, out_dir, out_pts, out_score, out_conf,
                 out_num, out_flag, n):
    """``live_detect`` of ``rows[start:stop]``, its hits written from ``n`` on; returns where they end."""
    width = m.shape[2]
    n_window, year_w = int(params[0]), int(params[1])
    spike, gap_pct, gap_atr, rsi_low, rsi_high = params[2], params[3], params[4], params[5], params[6]
    k, lookback, count = int(params[7]), int(params[8]), int(params[9])
    tol_atr, min_touches, hold = params[10], int(params[11]), int(params[12])
    div_min, div_max, vwin = int(params[13]), int(params[14]), int(params[15])

    # the divergences' and levels' slot bounds (LivePanel.divergences / .levels)
    cur = span - 1 - k
    div_ok = cur - max(cur - div_max, 0) >= max(div_min, 1)
    off = width - span
    div_lo = max(cur - div_max, 0)
    first_known = max(span - 1 - lookback, 0)
    known_stop = span - k - 1
    base = newest - (width - 1)
    levels = np.empty(count)
    lvl_t, lvl_l = np.zeros(4, np.int64), np.full(4, np.nan)  # each row's four level events: touches, level

    for i in range(start, stop):
        r = rows[i]
        b = bars[r]
        last = width - 1
        o, h, lo_, c = m[cols[_O], r, last], m[cols[_H], r, last], m[cols[_L], r, last], m[cols[_C], r, last]
        vr, atr, rsi = m[cols[_VR], r, last], m[cols[_ATR], r, last], m[cols[_RSI], r, last]
        sma50, macd, mhist = m[cols[_S50], r, last], m[cols[_MACD], r, last], m[cols[_MHIST], r, last]
        location = (c - lo_) / (h - lo_) if h > lo_ else 0.5
        prev_close = _lag(m, cols[_C], r, 1, width, b)
        vol15 = 15 * _unit((vr - 1.0) / (3.0 - 1.0))
        trend_up, trend_dn = c - sma50 > 0, -1 * (c - sma50) > 0

        # -- breakdown / breakout (N bars) and the 52-week pair
        hi_n, lo_n = (hi_n_all[r], lo_n_all[r]) if b > n_window else (np.nan, np.nan)
        if enabled[0] and -1 * (c - lo_n) > 0:
            excess = -1 * (c - lo_n)
            t = 10 * trend_dn
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 0, _SHORT, 5,
                      40.0, 25 * _unit((vr - 1.0) / (3.0 - 1.0)), 15 * _unit(excess / (1.0 * atr)), t,
                      10 * _unit(-1 * (rsi - 50.0) / 20.0), _conf(vr >= 1.5, 1 - location >= 0.5, t > 0),
                      lo_n, c, vr, np.nan, False)
        if enabled[1] and c - hi_n > 0:
            excess = c - hi_n
            t = 10 * trend_up
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 1, _LONG, 5,
                      40.0, 25 * _unit((vr - 1.0) / (3.0 - 1.0)), 15 * _unit(excess / (1.0 * atr)), t,
                      10 * _unit((rsi - 50.0) / 20.0), _conf(vr >= 1.5, location >= 0.5, t > 0),
                      hi_n, c, vr, np.nan, False)

        # -- death / golden cross (SMA 20 vs SMA 50), MACD crosses
        sma50_then = _lag(m, cols[_S50], r, 5, width, b)
        a, bb = m[cols[_S20], r, last], sma50
        pa, pb = _lag(m, cols[_S20], r, 1, width, b), _lag(m, cols[_S50], r, 1, width, b)
        if enabled[2] and a < bb and pa >= pb:
            slope, hist = -1 * (sma50 - sma50_then) > 0, -1 * mhist > 0
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 2, _SHORT, 5,
                      50.0, 15.0 * slope, vol15, 10 * trend_dn, 10.0 * hist, _conf(slope, hist, vr >= 1.2),
                      c, np.nan, np.nan, np.nan, False)

        # -- gaps
        prev_atr = _lag(m, cols[_ATR], r, 1, width, b)
        gap = o - prev_close
        gpct = gap / prev_close * 100.0
        gatr = gap / prev_atr if prev_atr > 0 else np.nan
        if enabled[3] and (gpct < -gap_pct or gatr < -gap_atr):
            hold_ = -1 * (c - prev_close) > 0
            follow = -1 * (c - o) > 0
            size = max(_unit(abs(gpct) / 6.0), _unit(abs(gatr) / 3.0))
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 3, _SHORT, 4,
                      40.0, 25 * size, 20.0 * hold_, vol15, 0.0, _conf(hold_, follow, vr >= 1.5),
                      abs(gpct), gatr, o, prev_close, hold_)
        if enabled[4] and (gpct > gap_pct or gatr > gap_atr):
            hold_ = c - prev_close > 0
            follow = c - o > 0
            size = max(_unit(abs(gpct) / 6.0), _unit(abs(gatr) / 3.0))
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 4, _LONG, 4,
                      40.0, 25 * size, 20.0 * hold_, vol15, 0.0, _conf(hold_, follow, vr >= 1.5),
                      abs(gpct), gatr, o, prev_close, hold_)
        if enabled[5] and a > bb and pa <= pb:
            slope, hist = sma50 - sma50_then > 0, mhist > 0
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 5, _LONG, 5,
                      50.0, 15.0 * slope, vol15, 10 * trend_up, 10.0 * hist, _conf(slope, hist, vr >= 1.2),
                      c, np.nan, np.nan, np.nan, False)
        if enabled[6] or enabled[7]:
            hi_y, lo_y = (hi_year[r], lo_year[r]) if b > year_w else (np.nan, np.nan)
            if enabled[6] and c - hi_y > 0:
                t = 10 * trend_up
                n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 6, _LONG, 5,
                          50.0, 20 * _unit((vr - 1.0) / (3.0 - 1.0)), 10 * _unit((c - hi_y) / (1.0 * atr)), t,
                          10 * _unit((rsi - 50.0) / 20.0), _conf(vr >= 1.5, location >= 0.5, t > 0),
                          hi_y, c, vr, np.nan, False)
            if enabled[7] and -1 * (c - lo_y) > 0:
                t = 10 * trend_dn
                n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 7, _SHORT, 5,
                          50.0, 20 * _unit((vr - 1.0) / (3.0 - 1.0)), 10 * _unit(-1 * (c - lo_y) / (1.0 * atr)), t,
                          10 * _unit(-1 * (rsi - 50.0) / 20.0), _conf(vr >= 1.5, 1 - location >= 0.5, t > 0),
                          lo_y, c, vr, np.nan, False)
        ma, ms = macd, m[cols[_MSIG], r, last]
        pma, pms = _lag(m, cols[_MACD], r, 1, width, b), _lag(m, cols[_MSIG], r, 1, width, b)
        if enabled[8] and ma < ms and pma >= pms:
            t, far = 20 * trend_dn, -1 * macd < 0
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 8, _SHORT, 5,
                      40.0, t, vol15, 15 * _unit(-1 * (rsi - 50.0) / 20.0), 10.0 * far, _conf(t > 0, far, vr >= 1.2),
                      macd, np.nan, np.nan, np.nan, macd < 0)
        if enabled[9] and ma > ms and pma <= pms:
            t, far = 20 * trend_up, macd < 0
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 9, _LONG, 5,
                      40.0, t, vol15, 15 * _unit((rsi - 50.0) / 20.0), 10.0 * far, _conf(t > 0, far, vr >= 1.2),
                      macd, np.nan, np.nan, np.nan, macd < 0)

        # -- levels (LivePanel.levels, then detectors._level): resistance_break, resistance_reject here;
        # support_bounce, support_break after the RSI kinds
        tol = tol_atr * atr
        floor, ceiling = np.nan, np.nan
        if b > hold and hold + 1 <= width:
            floor, ceiling = m[cols[_C], r, width - 1 - hold], m[cols[_C], r, width - 1 - hold]
            for s in range(width - hold, width - 1):
                floor = min(floor, m[cols[_C], r, s])
                ceiling = max(ceiling, m[cols[_C], r, s])
        lowest = off + max(max(first_known, k), span - b + k)
        stop = off + known_stop
        ev = (c > o and lo_ - tol <= floor, c < floor, c > ceiling, c < o and h + tol >= ceiling)
        lvl_t[:] = 0
        lvl_l[:] = np.nan
        for side in range(2):  # 0: support (lists side 1, events 0, 1); 1: resistance (lists side 0, events 2, 3)
            e0 = 2 * side
            if not ((ev[e0] and enabled[16 if side == 0 else 10]) or (ev[e0 + 1] and enabled[17 if side == 0 else 11])):
                continue
            j = 1 if side == 0 else 0
            listed_row(seq[j], prices[j], listed[j], r, base + lowest, base + stop, levels)
            for e in (e0, e0 + 1):
                if ev[e]:
                    lvl_t[e], lvl_l[e] = strongest_row(e, levels, h, lo_, c, tol, floor, ceiling, min_touches)
        for e, kind, side_ in ((2, 10, 1), (3, 11, -1)):
            if enabled[kind] and lvl_t[e] > 0:
                n = _level_hit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, kind, e,
                               side_, lvl_t[e], lvl_l[e], c, vr, atr, sma50)

        # -- divergences (LivePanel._divergences_from_flags, then detectors._divergence), from the window's
        # swing lists: the swing confirmed at ``cur`` is a side's newest, the one before it its next
        if div_ok and cur >= k and cur - k >= span - b and (enabled[12] or enabled[13]):
            first = off + max(max(div_lo, k), span - b + k)
            for kind in (12, 13):  # bear: swing highs (lists side 0), test side 1; bull: lows (side 1), side -1
                if not enabled[kind]:
                    continue
                j = 0 if kind == 12 else 1
                tside = 1 if kind == 12 else -1
                if listed[j, r] < 2 or seq[j, r, 0] != base + off + cur:
                    continue
                at = seq[j, r, 1] - base  # view slot of the swing before
                if at < first:
                    continue
                prev = at - off
                rc, rp = m[cols[_RSI], r, off + cur], m[cols[_RSI], r, at]
                pc_, pp = prices[j, r, 0], prices[j, r, 1]  # the raw high / low of those slots
                if not ((cur - prev >= div_min) and (tside * (pc_ - pp) > 0) and (tside * (rc - rp) < 0)
                        and (tside * (rc - 50.0) > 0)):
                    continue
                atr_p = m[cols[_ATR], r, width - (k + 1)] if k + 1 <= width else np.nan
                close_p = m[cols[_C], r, width - (k + 1)] if k + 1 <= width else np.nan
                side = -tside  # the detector's side: bull long (+1), bear short (-1)
                rsi_gap = side * (rc - rp)
                price_gap = side * (pp - pc_) / atr_p
                extreme = ((40.0 - rp) if side > 0 else (rp - 60.0)) / 10.0
                confirm = side * (c - close_p) > 0
                n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, kind,
                          _LONG if side > 0 else _SHORT, 5,
                          45.0, 20 * _unit(rsi_gap / 10.0), 10 * _unit(price_gap), 15 * _unit(extreme),
                          10.0 * confirm, _conf(rsi_gap >= 5, extreme >= 1.0, confirm),
                          pc_, pp, rc, rp, False)

        # -- RSI overbought / oversold
        prev_rsi = _lag(m, cols[_RSI], r, 1, width, b)
        if enabled[14] and rsi > rsi_high:
            depth = rsi - rsi_high
            turn = -1 * (rsi - prev_rsi) > 0
            stretch = -1 * (m[cols[_BBU], r, last] - c) > 0
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 14, _SHORT, 4,
                      40.0, 30 * _unit(depth / 15.0), 15.0 * turn, 15.0 * stretch, 0.0, _conf(turn, stretch, depth >= 5),
                      rsi, np.nan, np.nan, np.nan, turn)
        if enabled[15] and rsi < rsi_low:
            depth = rsi_low - rsi
            turn = rsi - prev_rsi > 0
            stretch = m[cols[_BBL], r, last] - c > 0
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 15, _LONG, 4,
                      40.0, 30 * _unit(depth / 15.0), 15.0 * turn, 15.0 * stretch, 0.0, _conf(turn, stretch, depth >= 5),
                      rsi, np.nan, np.nan, np.nan, turn)
        for e, kind, side_ in ((0, 16, 1), (1, 17, -1)):
            if enabled[kind] and lvl_t[e] > 0:
                n = _level_hit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, kind, e,
                               side_, lvl_t[e], lvl_l[e], c, vr, atr, sma50)

        # -- volume spike
        if enabled[18] and vr >= spike:
            ret = c / prev_close - 1.0
            move_atr = abs(c - prev_close) / atr
            sgn = 0.0 if np.isnan(ret) else (1.0 if ret > 0 else (-1.0 if ret < 0 else 0.0))
            loc = location if sgn > 0 else (1 - location if sgn < 0 else 0.0)
            z = z_all[r] if b > vwin else np.nan
            dist = (c / m[ref_col, r, last] - 1.0) * 100.0 if ref_col >= 0 else np.nan  # from VWAP (daily: SMA 20)
            n = _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, 18,
                      _LONG if sgn > 0 else (_SHORT if sgn < 0 else _NEUTRAL), 5,
                      30.0, 30 * _unit((vr - 3.0) / 5.0), 10 * _unit((z - 2.0) / 2.0), 20 * _unit(move_atr / 2.0),
                      10 * loc, _conf(z >= 2.0, move_atr >= 0.5, loc >= 0.5),
                      vr, ret * 100, abs(dist), np.nan, dist >= 0)
    return n


@njit(**_JIT)
def _level_hit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, kind, event, side, t, lvl,
               c, vr, atr, sma50):
    """``detectors._level`` for one hit: events 1, 2 are breaks, 0, 3 the bounce / rejection."""
    dist = side * (c - lvl)
    touch = 25 * _unit((t - 1) / 3.0)
    move = 15 * _unit(dist / (1.0 * atr))
    direction = _LONG if side > 0 else _SHORT
    if event == 1 or event == 2:
        vol = 20 * _unit((vr - 1.0) / (3.0 - 1.0))
        return _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, kind, direction, 4,
                     40.0, touch, move, vol, 0.0, _conf(t >= 3, vr >= 1.5, move >= 5), lvl, float(t), c, vr, False)
    trend = 10 * (side * (c - sma50) > 0)
    vol = 10 * _unit((vr - 1.0) / (3.0 - 1.0))
    return _emit(out_row, out_kind, out_dir, out_pts, out_score, out_conf, out_num, out_flag, n, r, kind, direction, 5,
                 40.0, touch, move, vol, trend, _conf(t >= 3, trend > 0, move >= 5), lvl, float(t), c, vr, False)
