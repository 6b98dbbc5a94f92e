"""The streaming indicators' step, compiled: one pass over the updated symbols, each advanced in place.

``advance`` is ``StreamingIndicators``' update after its checks: for each row, commit the forming
bar when this one is newer, compute the bar's values from the committed state (TA-Lib's
recurrences, operation for operation, as documented in ``streaming``), and keep the result as the
new forming bar. numba compiles it once (cached on disk beside this file); the numpy version it
replaces cost ~40 array operations per update, ~8 ms for 5000 symbols; this ~1.3 ms.

IEEE arithmetic throughout (no fast-math, so no reordering or fused multiply-add): the operations
are those of the numpy recurrences it replaced, except the sums of the Bollinger window and the
volume history, which numpy added pairwise and this adds in order (last-bit differences); the tests
hold it to TA-Lib within 1e-9 relative.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mintel.analytics._parallel import bounds, chunks, kernel

NAT = np.iinfo(np.int64).min

# Columns of the per-symbol scalar state (committed and pending), as in ``streaming``.
PREV_CLOSE, GAIN, LOSS, EMA, SLOW, FAST, SIGNAL, SMA20, SMA50, SMA200, ATR, OBV, PV, V, SESSION = range(15)
K = 15

# ``params`` (int64): the periods, in this order.
P_RSI, P_ATR, P_EMA, P_FAST, P_SLOW, P_SIG, P_BB, P_50, P_200, P_VR = range(10)
# ``cols`` (int64): the output column of each value, -1 where not computed.
(C_RSI, C_EMA, C_MACD, C_MACD_SIGNAL, C_MACD_HIST, C_SMA20, C_BB_MIDDLE, C_SMA50, C_SMA200, C_BB_UPPER, C_BB_LOWER,
 C_ATR, C_OBV, C_VWAP, C_VOLUME_RATIO) = range(15)
OUTPUTS = ("rsi", "ema_20", "macd", "macd_signal", "macd_hist", "sma_20", "bb_middle", "sma_50", "sma_200",
           "bb_upper", "bb_lower", "atr", "obv", "vwap", "volume_ratio")

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_JIT)
def _ema(prev, x, i, start, p):
    """TA-Lib's EMA from bar ``start``: the sum of the first ``p`` values, their mean at bar
    start+p-1, then ``(x - ema) * k + ema`` with k = 2 / (p + 1)."""
    if i < start:
        return 0.0
    seed_end = start + p - 1
    if i < seed_end:
        return prev + x
    if i == seed_end:
        return (prev + x) / p
    return (x - prev) * (2.0 / (p + 1)) + prev


@njit(**_JIT)
def _wilder(prev, x, i, p):
    """TA-Lib's Wilder smoothing as RSI and ATR run it: a sum to bar p, its mean there, then smoothing."""
    if i < p:
        return prev + x
    if i == p:
        return (prev + x) / p
    return (prev * (p - 1) + x) / p


@njit(**_JIT)
def _max(a, b):
    """np.maximum: NaN if either is NaN."""
    if a != a or b != b:
        return np.nan
    return a if a > b else b


@njit(**_JIT)
def _sma(state, r, new, k, p, oldest, c, i):
    """TA-Lib's running SMA: total += close; value = total / p; total -= the window's oldest close."""
    total = state[r, k] + c
    if i >= p - 1:
        new[k] = total - oldest
        return total / p
    new[k] = total
    return np.nan


@kernel
def advance(rows, ts, high, low, close, volume, skey, slot, intraday, params, bb_dev, cols,
            n, state, pend, pend_bar, pend_ok, pend_slot, last_ts, closes, volumes, slot_volume, slot_count,
            latest, out):
    """Advance ``rows`` by one bar each (``out[j]``: the values of row ``rows[j]``'s bar; ``latest``:
    every row's latest values, updated). ``skey``/``slot``: session key and minute slot per bar
    (intraday only). Rows appear at most once, with bars no older than their latest: chunks of them
    run on separate threads."""
    count = chunks(len(rows))
    for c in prange(count):
        lo, hi = bounds(c, count, len(rows))
        _advance(lo, hi, rows, ts, high, low, close, volume, skey, slot, intraday, params, bb_dev, cols,
                 n, state, pend, pend_bar, pend_ok, pend_slot, last_ts, closes, volumes, slot_volume, slot_count,
                 latest, out)


@njit(**_JIT)
def _advance(start, stop, rows, ts, high, low, close, volume, skey, slot, intraday, params, bb_dev, cols,
             n, state, pend, pend_bar, pend_ok, pend_slot, last_ts, closes, volumes, slot_volume, slot_count,
             latest, out):
    """``advance`` of ``rows[start:stop]``."""
    ring = closes.shape[1]
    p_vr = params[P_VR]
    new = np.empty(K)
    for j in range(start, stop):
        r = rows[j]
        t = ts[j]
        # A newer bar commits the forming one.
        forming = last_ts[r]
        if forming != NAT and t > forming:
            last_ts[r] = NAT
            if pend_ok[r]:
                i = n[r]
                for q in range(K):
                    state[r, q] = pend[r, q]
                closes[r, i % ring] = pend_bar[r, 0]
                if intraday:
                    s = pend_slot[r]
                    count = slot_count[s, r]
                    slot_volume[s, r, count % p_vr] = pend_bar[r, 1]
                    slot_count[s, r] = count + 1
                else:
                    volumes[r, i % p_vr] = pend_bar[r, 1]
                n[r] = i + 1

        h, lo, c, v = high[j], low[j], close[j], volume[j]
        ok = np.isfinite(h) and np.isfinite(lo) and np.isfinite(c) and np.isfinite(v) and t != NAT
        i = n[r]
        first = i == 0
        for q in range(K):
            new[q] = state[r, q]
        o = out[j]
        o[:] = np.nan
        pc = state[r, PREV_CLOSE]
        new[PREV_CLOSE] = c

        # RSI (TA_RSI): sums of gains/losses over the first `p` changes, then Wilder's smoothing.
        p = params[P_RSI]
        d = c - pc
        up = 0.0 if d < 0 else d
        dn = -d if d < 0 else 0.0
        g = _wilder(state[r, GAIN], up, i, p)
        l_ = _wilder(state[r, LOSS], dn, i, p)
        new[GAIN] = 0.0 if first else g
        new[LOSS] = 0.0 if first else l_
        if i >= p:
            total = g + l_
            o[cols[C_RSI]] = 0.0 if total == 0 else 100.0 * (g / total)

        # EMA 20 (TA_EMA): seeded with the SMA of the first `p` closes.
        p = params[P_EMA]
        ema = _ema(state[r, EMA], c, i, 0, p)
        new[EMA] = ema
        if i >= p - 1:
            o[cols[C_EMA]] = ema

        # MACD (TA_MACD): the slow EMA from bar 0; the fast EMA seeded on the `fast` bars ending at
        # bar slow-1; the signal EMA on the MACD line from that bar.
        fast_p, slow_p, sig_p = params[P_FAST], params[P_SLOW], params[P_SIG]
        slow = _ema(state[r, SLOW], c, i, 0, slow_p)
        fast = _ema(state[r, FAST], c, i, slow_p - fast_p, fast_p)
        line = fast - slow
        signal = _ema(state[r, SIGNAL], line, i, slow_p - 1, sig_p)
        new[SLOW], new[FAST], new[SIGNAL] = slow, fast, signal
        if i >= slow_p - 1 + sig_p - 1:
            o[cols[C_MACD]] = line
            o[cols[C_MACD_SIGNAL]] = signal
            o[cols[C_MACD_HIST]] = line - signal

        # SMAs (TA_SMA) and the Bollinger Bands on the 20-bar window: the previous pb-1 closes, then this one.
        pb = params[P_BB]
        oldest = closes[r, (i - (pb - 1)) % ring]
        sma20 = _sma(state, r, new, SMA20, pb, oldest, c, i)
        o[cols[C_SMA20]] = sma20
        o[cols[C_BB_MIDDLE]] = sma20
        p = params[P_50]
        o[cols[C_SMA50]] = _sma(state, r, new, SMA50, p, closes[r, (i - (p - 1)) % ring], c, i)
        p = params[P_200]
        if p > 0:
            o[cols[C_SMA200]] = _sma(state, r, new, SMA200, p, closes[r, (i - (p - 1)) % ring], c, i)
        if i >= pb - 1:
            # Population deviation of the window, two passes (TA-Lib's shifted-data variance agrees to rounding).
            # The ring is walked with one modulo per row (an integer division per close cost more than the rest).
            start = (i - (pb - 1)) % ring
            total = 0.0
            at = start
            for _ in range(pb - 1):
                total += closes[r, at]
                at = at + 1 if at + 1 < ring else 0
            mean = (total + c) / pb
            ss = 0.0
            at = start
            for _ in range(pb - 1):
                x = closes[r, at] - mean
                ss += x * x
                at = at + 1 if at + 1 < ring else 0
            x = c - mean
            std = np.sqrt((ss + x * x) / pb) * bb_dev
            o[cols[C_BB_UPPER]] = sma20 + std
            o[cols[C_BB_LOWER]] = sma20 - std

        # ATR (TA_ATR): true range from the 2nd bar, SMA of the first `p`, then Wilder's smoothing.
        p = params[P_ATR]
        tr = _max(_max(h - lo, abs(pc - h)), abs(lo - pc))
        atr = _wilder(state[r, ATR], tr, i, p)
        new[ATR] = 0.0 if first else atr
        if i >= p:
            o[cols[C_ATR]] = atr

        # OBV (TA_OBV): starts at the first bar's volume.
        obv = state[r, OBV]
        if first:
            obv = v
        elif c > pc:
            obv = obv + v
        elif c < pc:
            obv = obv - v
        new[OBV] = obv
        o[cols[C_OBV]] = obv

        if intraday:
            # VWAP: sums restart at the session's first bar (typical price as TA_TYPPRICE).
            key = skey[j]
            tpv = (h + lo + c) / 3.0 * v
            if first or key != state[r, SESSION]:
                pv, vol = tpv, v
            else:
                pv, vol = state[r, PV] + tpv, state[r, V] + v
            new[PV], new[V], new[SESSION] = pv, vol, key
            if vol > 0:
                o[cols[C_VWAP]] = pv / vol
            # Volume ratio against the same minute of the previous up-to-`window` sessions.
            s = slot[j]
            count = min(slot_count[s, r], p_vr)
            if count > 0:
                total = 0.0
                for q in range(p_vr):
                    total += slot_volume[s, r, q]
                mean = total / count
                if mean > 0:
                    o[cols[C_VOLUME_RATIO]] = v / mean
            pend_slot[r] = s
        elif i >= p_vr:
            total = 0.0
            for q in range(p_vr):
                total += volumes[r, q]
            mean = total / p_vr
            if mean > 0:
                o[cols[C_VOLUME_RATIO]] = v / mean

        if not ok:
            o[:] = np.nan
        for q in range(K):
            pend[r, q] = new[q]
        pend_bar[r, 0] = c
        pend_bar[r, 1] = v
        pend_ok[r] = ok
        last_ts[r] = t
        latest[r] = o


@njit(**_JIT)
def day_figures(rows, ts, open_, high, low, close, volume, intraday, day_ns,
                session, last_ts, s_open, s_high, s_low, s_close, s_prev_close, s_day_volume, s_volume):
    """``LiveState``'s day figures advanced by one bar per row (``rows`` distinct): a bar of a new session
    (the UTC day intraday, the bar itself daily) starts the day's open/high/low/volume and makes the last
    close the previous close (NaN when the state's session is not older); the same session extends them;
    the bar the row already has (the forming bar) replaces its volume rather than adding to it."""
    for j in range(len(rows)):
        r = rows[j]
        t = ts[j]
        if last_ts[r] == t:  # the forming bar again: its volume is counted once
            s_day_volume[r] -= s_volume[r]
        key = t - t % day_ns if intraday else t
        same = session[r] == key
        if not same:
            newer = session[r] != NAT and session[r] < key
            s_prev_close[r] = s_close[r] if newer else np.nan
        o, h, lo, v = open_[j], high[j], low[j], volume[j]
        if same and intraday:
            s_high[r] = _fmax(s_high[r], h)
            s_low[r] = _fmin(s_low[r], lo)
            s_day_volume[r] = s_day_volume[r] + v
        else:  # a new session, or a daily bar: the whole day
            s_open[r], s_high[r], s_low[r], s_day_volume[r] = o, h, lo, v
        session[r] = key
        s_close[r] = close[j]
        s_volume[r] = v
        last_ts[r] = t


@njit(**_JIT)
def _fmax(a, b):
    """np.fmax: the other one where one is NaN."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a > b else b


@njit(**_JIT)
def _fmin(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return a if a < b else b
