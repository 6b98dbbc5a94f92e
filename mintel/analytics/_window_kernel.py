"""The live window's push as one compiled pass (numba): a cycle's bars into the newest slot of the ring.

numpy did it in ~15 calls over (columns x symbols) blocks (clear the new slot, write both copies of
it, the log volume, the runs, the swing flags of the slot ``k`` back and the swing-point lists): ~1.3 ms at
5000 symbols, most of it the calls and the temporaries. Here each symbol is visited once.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mintel.analytics._parallel import JIT, bounds, chunks, kernel

from mintel.analytics._stream_kernel import _fmax, _fmin

_JIT = {"cache": True, "nogil": True}


@kernel
def write_slot(data, logv, piv, plist_seq, plist_price, plist_n, run, run_before, rows, values, lv, usable, pos,
               length, fresh, k, hi, lo, seq):
    """Write ``values`` ((columns, n), of window ``rows``) into slot ``pos`` of the doubled ring.

    ``data`` (2 length, columns, symbols), ``logv`` (2 length, symbols), ``piv`` (2 length, 2, symbols)
    as ``BarWindow`` keeps them; ``usable``: the columns a usable bar has
    finite; ``lv``: the bars' log volume (numpy's ``log1p``: libm's differs in the last bit; empty: none); ``fresh``: the slot is new (the other symbols get
    NaN there, every run restarts from ``run_before``); ``k``: pivot_k
    (0: no flags), of columns ``hi`` and ``lo``; ``plist_*``: each symbol's most recent swing points by side
    (see ``_pivot_slot``); ``seq``: the newest slot's sequence number. ``run`` of a written symbol: its run before the slot + 1 when the bar is usable, else 0.
    ``rows`` are distinct; chunks of symbols run on separate threads.
    """
    a, b = pos, pos + length
    ncol, nsym = data.shape[1], data.shape[2]
    if fresh:
        written = np.zeros(nsym, np.bool_)
        for i in range(len(rows)):
            written[rows[i]] = True
        parts = chunks(nsym)
        for part in prange(parts):
            lo_r, hi_r = bounds(part, parts, nsym)
            for r in range(lo_r, hi_r):
                run_before[r] = run[r]
                run[r] = 0
                piv[a, 0, r] = piv[a, 1, r] = piv[b, 0, r] = piv[b, 1, r] = False
                if not written[r]:
                    for c in range(ncol):
                        data[a, c, r] = np.nan
                        data[b, c, r] = np.nan
                    logv[a, r] = logv[b, r] = np.nan
    parts = chunks(len(rows))
    for part in prange(parts):
        lo_i, hi_i = bounds(part, parts, len(rows))
        for i in range(lo_i, hi_i):
            r = rows[i]
            for c in range(ncol):
                x = values[c, i]
                data[a, c, r] = x
                data[b, c, r] = x
            ok = True
            for c in usable:
                if not np.isfinite(values[c, i]):
                    ok = False
            if len(lv):
                logv[a, r] = logv[b, r] = lv[i]
            run[r] = min(run_before[r] + 1, length) if ok else 0
    if k and length >= 2 * k + 1:
        _pivot_slot(data, piv, plist_seq, plist_price, plist_n, pos, length, k, hi, lo, seq - k)


@njit(**JIT)
def _pivot_slot(data, piv, plist_seq, plist_price, plist_n, pos, length, k, hi, lo, at_seq):
    """The swing flags of the slot ``k`` before the newest (its ``k`` slots after it are now complete, or the
    newest was replaced), as ``live_panel._pivots`` tests them: beyond the ``k`` slots before (strictly) and
    not beyond the ``k`` after, NaN anywhere failing the test; side 0 the highs (column ``hi``), side 1 the lows (``lo``)."""
    first = pos + length - 2 * k  # slot newest - 2k, in the doubled ring's time order
    mid = first + k
    at = (pos - k) % length
    nsym = data.shape[2]
    parts = chunks(nsym)
    for part in prange(parts):
        lo_r, hi_r = bounds(part, parts, nsym)
        for side in range(2):
            c = hi if side == 0 else lo
            for r in range(lo_r, hi_r):
                m = data[mid, c, r]
                before = data[first, c, r]
                for j in range(first + 1, mid):
                    x = data[j, c, r]
                    before = np.nan if np.isnan(x) or np.isnan(before) else (max(before, x) if side == 0 else min(before, x))
                after = data[mid + 1, c, r]
                for j in range(mid + 2, mid + k + 1):
                    x = data[j, c, r]
                    after = np.nan if np.isnan(x) or np.isnan(after) else (max(after, x) if side == 0 else min(after, x))
                if side == 0:
                    flag = m > before and m >= after
                else:
                    flag = m < before and m <= after
                piv[at, side, r] = flag
                piv[at + length, side, r] = flag
                keep = plist_seq.shape[2]
                if keep:
                    n = plist_n[side, r]
                    if n > 0 and plist_seq[side, r, 0] == at_seq:  # decided before: undo
                        for q in range(n - 1):
                            plist_seq[side, r, q] = plist_seq[side, r, q + 1]
                            plist_price[side, r, q] = plist_price[side, r, q + 1]
                        n -= 1
                    if flag:
                        for q in range(min(n, keep - 1), 0, -1):
                            plist_seq[side, r, q] = plist_seq[side, r, q - 1]
                            plist_price[side, r, q] = plist_price[side, r, q - 1]
                        plist_seq[side, r, 0] = at_seq
                        plist_price[side, r, 0] = m
                        n = min(n + 1, keep)
                    plist_n[side, r] = n


@kernel
def tail_extrema(high, low, rows, t, newest, c_hi, c_lo, c_first, c_last, gone_hi, gone_lo, gone_seq):
    """(highest high, lowest low) of each ``rows[i]``'s last ``t[i]`` slots of the (symbols, slots) views
    ``high``/``low`` (slot ``j`` has sequence number ``newest - (width - 1) + j``), skipping NaN.

    Each symbol's extrema of its slots before the newest are kept (``c_hi``/``c_lo`` over sequence numbers
    ``c_first..c_last``; ``c_last < 0``: none) and carried from one call to the next: slots only change
    while they are the newest, so a new call adds the slots that became final and drops the ones that
    left the tail, and counts every slot again only when a dropped slot held an extreme (or the tail
    shrank, or a dropped slot left the ring: the last one to leave is ``gone_seq``, its values
    ``gone_hi``/``gone_lo``). Exact: a max of the same values."""
    width = high.shape[1]
    base = newest - (width - 1)
    readable = base - 1 if gone_seq == base - 1 else base  # the oldest slot whose values are at hand
    out_hi, out_lo = np.empty(len(rows)), np.empty(len(rows))
    again = np.zeros(len(rows), np.bool_)  # positions counted again, in a second pass slot by slot
    parts = chunks(len(rows))
    for part in prange(parts):
        lo_i, hi_i = bounds(part, parts, len(rows))
        for i in range(lo_i, hi_i):
            again[i] = _carry(high, low, rows[i], t[i], newest, base, readable, c_hi, c_lo, c_first, c_last,
                              gone_hi, gone_lo)
    n_redo = 0
    for i in range(len(rows)):
        n_redo += again[i]
    # Slot by slot: the rows counted again read each slot's symbols together (a row's slots are a page
    # apart each; a slot's symbols are side by side).
    rr, start = np.empty(n_redo, np.int64), np.empty(n_redo, np.int64)  # each recounted row, its first slot
    q = 0
    for i in range(len(rows)):
        if again[i]:
            rr[q] = rows[i]
            start[q] = c_first[rr[q]] - base
            q += 1
    acc_hi, acc_lo = np.full(n_redo, np.nan), np.full(n_redo, np.nan)
    parts = chunks(n_redo)
    for part in prange(parts):
        lo_q, hi_q = bounds(part, parts, n_redo)
        for j in range(width - 1):
            hrow, lrow = high[:, j], low[:, j]
            for q in range(lo_q, hi_q):
                if start[q] <= j:
                    acc_hi[q] = _fmax(acc_hi[q], hrow[rr[q]])
                    acc_lo[q] = _fmin(acc_lo[q], lrow[rr[q]])
    for q in range(n_redo):
        c_hi[rr[q]], c_lo[rr[q]] = acc_hi[q], acc_lo[q]
    for i in range(len(rows)):
        r = rows[i]
        if t[i] <= 1:
            out_hi[i], out_lo[i] = high[r, width - 1], low[r, width - 1]
        else:
            out_hi[i], out_lo[i] = _fmax(c_hi[r], high[r, width - 1]), _fmin(c_lo[r], low[r, width - 1])
    return out_hi, out_lo


@njit(**_JIT)
def _carry(high, low, r, n, newest, base, readable, c_hi, c_lo, c_first, c_last, gone_hi, gone_lo):
    """``tail_extrema``'s kept extrema of row ``r`` carried to a tail of ``n`` slots: True when they must be
    counted again (then left NaN)."""
    first, last = newest - n + 1, newest - 1  # the tail before its newest slot
    if n <= 1:
        c_last[r] = -1
        return False
    again = c_last[r] < 0 or c_first[r] > first or c_last[r] > last or c_last[r] < first - 1 or \
        c_first[r] < readable
    hi, lo = c_hi[r], c_lo[r]
    if not again:
        for s in range(c_last[r] + 1, last + 1):  # became final since
            hi, lo = _fmax(hi, high[r, s - base]), _fmin(lo, low[r, s - base])
        for s in range(c_first[r], first):  # left the tail
            h, lw = (high[r, s - base], low[r, s - base]) if s >= base else (gone_hi[r], gone_lo[r])
            if h == hi or lw == lo:
                again = True
                break
    c_first[r], c_last[r] = first, last
    if again:
        hi = lo = np.nan
    c_hi[r], c_lo[r] = hi, lo
    return again
