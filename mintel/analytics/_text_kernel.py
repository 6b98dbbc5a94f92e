"""Compiled text of the opportunity rows (numba): messages from a template program, factor JSON.

Each writes every row's bytes into one buffer and its end into an offsets array: the two buffers of
an Arrow string array, made without a Python string per row. At 5000 symbols the live engine
announces ~1,300 opportunities a minute; their text was the largest step of its update (messages as
f-strings ~2.5 ms, factor JSON through Arrow casts and joins ~2.3 ms).

Numbers are written as Python's format spec writes them (``.2f``, ``+.1f``, ``,.0f`` ...): the
decimal rounding of the exact binary value, ties to even. The value times 10^decimals is split into
an exact sum hi + lo (Dekker's product, no fused multiply-add in numba's default mode), so the
rounding decision is made on the exact product, not on a rounded one. Callers keep |x| < 1e13.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mintel.analytics._parallel import bounds, chunks, kernel
from mintel.analytics.messages import COMMAS, FLAG, LIT, NUM, PLUS, TEXT

_JIT = {"cache": True, "nogil": True}

_NAN = np.frombuffer(b"nan", np.uint8)
_INF = np.frombuffer(b"inf", np.uint8)


@njit(**_JIT)
def _put(out, pos, src, start, length):
    for j in range(length):
        out[pos + j] = src[start + j]
    return pos + length


@njit(**_JIT)
def _digits(out, pos, v, commas):
    """The decimal digits of int ``v`` >= 0, grouped by thousands with ','."""
    n = 1
    t = v
    while t >= 10:
        t //= 10
        n += 1
    width = n + ((n - 1) // 3 if commas else 0)
    at = pos + width - 1
    k = 0
    while True:
        out[at] = 48 + v % 10
        at -= 1
        v //= 10
        k += 1
        if v == 0:
            break
        if commas and k % 3 == 0:
            out[at] = 44
            at -= 1
    return pos + width


@njit(**_JIT)
def _two_product(a, b):
    """a * b as hi + lo exactly (Dekker, with Veltkamp's split)."""
    p = a * b
    t = 134217729.0 * a
    ahi = t - (t - a)
    alo = a - ahi
    t = 134217729.0 * b
    bhi = t - (t - b)
    blo = b - bhi
    return p, ((ahi * bhi - p) + ahi * blo + alo * bhi) + alo * blo


@njit(**_JIT)
def write_fixed(out, pos, x, decimals, flags):
    """``format(x, "[+][,].{decimals}f")``: correctly rounded, ties to even, '-' kept on a negative zero."""
    if x != x:
        if flags & PLUS:
            out[pos] = 43
            pos += 1
        return _put(out, pos, _NAN, 0, 3)
    if x < 0 or (x == 0 and np.signbit(x)):
        out[pos] = 45
        pos += 1
    elif flags & PLUS:
        out[pos] = 43
        pos += 1
    a = abs(x)
    if a == np.inf:
        return _put(out, pos, _INF, 0, 3)
    scale = 1
    for _ in range(decimals):
        scale *= 10
    hi, lo = _two_product(a, float(scale))
    k = np.floor(hi)
    e = (hi - k) - 0.5  # both steps exact: hi - k is hi's fraction, a multiple of its ulp
    s = e if e != 0 else lo  # |lo| < half an ulp of hi <= |e| when e != 0
    q = np.int64(k)
    if s > 0 or (s == 0 and q % 2 == 1):
        q += 1
    pos = _digits(out, pos, q // scale, flags & COMMAS)
    if decimals:
        out[pos] = 46
        f = q % scale
        for j in range(decimals - 1, -1, -1):
            out[pos + 1 + j] = 48 + f % 10
            f //= 10
        pos += decimals + 1
    return pos


@njit(**_JIT)
def write_price(out, pos, x):
    """2,950 / 812.35 / 999.99: ``detectors``' price format (',.0f' from 1000, else '.2f' with ',')."""
    a = abs(x)
    if a >= 1000:
        return write_fixed(out, pos, x, 0, COMMAS)
    return write_fixed(out, pos, x, 2, COMMAS)


@njit(**_JIT)
def _render_row(out, pos, row, ops, starts, which, lits, text, text_at, numbers, flags):
    i = starts[which[row]]
    stop = starts[which[row] + 1]
    while i < stop:
        op = ops[i, 0]
        if op == LIT:
            pos = _put(out, pos, lits, ops[i, 1], ops[i, 2])
        elif op == TEXT:
            c = ops[i, 1]
            pos = _put(out, pos, text, text_at[c, row], text_at[c, row + 1] - text_at[c, row])
        elif op == NUM:
            x = numbers[row, ops[i, 1]]
            if ops[i, 2] < 0:
                pos = write_price(out, pos, x)
            else:
                pos = write_fixed(out, pos, x, ops[i, 2], ops[i, 3])
        elif op == FLAG:
            if flags[row, ops[i, 1]]:
                pos = _put(out, pos, lits, ops[i, 2], ops[i, 3])
            else:
                pos = _put(out, pos, lits, ops[i, 4], ops[i, 5])
        else:  # OPT
            end = ops[i, 1]
            shown = True
            for j in range(i + 1, end):
                if ops[j, 0] == NUM and not np.isfinite(numbers[row, ops[j, 1]]):
                    shown = False
            if not shown:
                i = end
                continue
        i += 1
    return pos


@njit(**_JIT)
def _gather(out, ends, n, width, before):
    """The rows written chunk by chunk (row ``i`` from ``i * width + before[i]`` for the first of its chunk,
    ending at ``ends[i + 1]``) moved together from the front: (offsets, bytes)."""
    offsets = np.zeros(n + 1, np.int32)
    parts = chunks(n)
    pos = 0
    for part in range(parts):
        lo, hi = bounds(part, parts, n)
        src = lo * width + before[lo]
        for j in range(src, ends[hi] if hi > lo else src):  # forward: pos <= src
            out[pos + j - src] = out[j]
        for row in range(lo, hi):
            offsets[row + 1] = pos + ends[row + 1] - src
        if hi > lo:
            pos += ends[hi] - src
    return offsets, out[:pos]


@njit(**_JIT)
def _json_row(out, pos, row, keys, key_at, first, which, points):
    """One row of ``factor_json`` written from ``pos``: its end, or -1 for a point the kernel does not take."""
    k0 = first[which[row]]
    for j in range(first[which[row] + 1] - k0):
        pos = _put(out, pos, keys, key_at[k0 + j], key_at[k0 + j + 1] - key_at[k0 + j])
        x = points[row, j]
        if x != x:
            pos = _put(out, pos, _NAN, 0, 3)
            continue
        if np.signbit(x):
            out[pos] = 45
            pos += 1
        a = abs(x)
        if a == np.inf:
            pos = _put(out, pos, _INF, 0, 3)
            continue
        if a >= 1e6:
            return -1
        q = np.int64(np.rint(a * 100.0))
        if q / 100.0 != a:
            return -1
        pos = _digits(out, pos, q // 100, False)
        f = q % 100
        if f:
            out[pos] = 46
            out[pos + 1] = 48 + f // 10
            pos += 2
            if f % 10:
                out[pos] = 48 + f % 10
                pos += 1
    out[pos] = 125
    return pos + 1


@kernel(signature="Tuple((int32[:], uint8[:]))(int64[:, :], int64[:], int64[:], uint8[:], uint8[:], int64[:, :], "
                  "float64[:, :], boolean[:, :], int64)")
def render(ops, starts, which, lits, text, text_at, numbers, flags, width):
    """Each row in a template program (see the op codes): row i runs ops ``starts[which[i]]`` to
    ``starts[which[i] + 1]``, reading its own row of ``numbers``, ``flags`` and text column c at
    ``text[text_at[c, i]:text_at[c, i + 1]]``; a row takes ``width`` bytes at most besides its text. Returns
    (offsets, bytes) of an Arrow string array. Chunks of rows are written on separate threads, each in its
    own range of the buffer, then moved together."""
    n = len(which)
    ends = np.zeros(n + 1, np.int64)  # each row's end in the buffer
    before = np.zeros(n + 1, np.int64)  # text bytes of the rows before each
    for row in range(n):
        t = 0
        for c in range(text_at.shape[0]):
            t += text_at[c, row + 1] - text_at[c, row]
        before[row + 1] = before[row] + t
    out = np.empty(n * width + before[n] + 1, np.uint8)
    parts = chunks(n)
    for part in prange(parts):
        lo, hi = bounds(part, parts, n)
        pos = lo * width + before[lo]
        for row in range(lo, hi):
            pos = _render_row(out, pos, row, ops, starts, which, lits, text, text_at, numbers, flags)
            ends[row + 1] = pos
    return _gather(out, ends, n, width, before)


@kernel(signature="Tuple((int32[:], uint8[:], boolean))(uint8[:], int64[:], int64[:], int64[:], float64[:, :])")
def factor_json(keys, key_at, first, which, points):
    """``{"base": 40, "volume": 3.5}`` per row: row i has the keys ``first[which[i]]`` to
    ``first[which[i] + 1]`` (key j: ``keys[key_at[j]:key_at[j + 1]]``, its opening bytes, e.g. ``{"base": ``
    or ``, "volume": ``), its points in ``points[i]`` from column 0; each point as Arrow casts a double
    to text (shortest form: 40, 17.08, -0, nan). False when a point is not a multiple of 0.01 below
    1e6 (the caller then takes the Arrow route). Chunks of rows on separate threads, as ``render``."""
    n = len(which)
    widest = 0
    for p in range(len(first) - 1):
        widest = max(widest, key_at[first[p + 1]] - key_at[first[p]])
    width = widest + points.shape[1] * 12 + 1
    out = np.empty(n * width + 1, np.uint8)
    ends = np.zeros(n + 1, np.int64)
    parts = chunks(n)
    ok = np.ones(parts, np.bool_)
    for part in prange(parts):
        lo, hi = bounds(part, parts, n)
        pos = lo * width
        for row in range(lo, hi):
            pos = _json_row(out, pos, row, keys, key_at, first, which, points)
            if pos < 0:
                ok[part] = False
                break
            ends[row + 1] = pos
    if not ok.all():
        return np.zeros(n + 1, np.int32), out[:0], False
    offsets, data = _gather(out, ends, n, width, np.zeros(n + 1, np.int64))
    return offsets, data, True


@njit("Tuple((int32[:], uint8[:]))(uint64[:], uint8[:], int64[:])", **_JIT)
def join_bits(masks, names, name_at):
    """Per mask, the names of its set bits (bit j: ``names[name_at[j]:name_at[j + 1]]``) in bit order, joined by
    ","; an empty string for 0. Returns (offsets, bytes) of an Arrow string array."""
    n = len(masks)
    k = len(name_at) - 1
    offsets = np.zeros(n + 1, np.int32)
    out = np.empty(n * (name_at[k] + k), np.uint8)
    pos = 0
    for i in range(n):
        m = masks[i]
        j = 0
        while m:  # up to the highest bit set
            if m & np.uint64(1):
                if pos > offsets[i]:
                    out[pos] = 44
                    pos += 1
                pos = _put(out, pos, names, name_at[j], name_at[j + 1] - name_at[j])
            m >>= np.uint64(1)
            j += 1
        offsets[i + 1] = pos
    return offsets, out[:pos]


@njit("Tuple((int32[:], uint8[:]))(int64[:], uint8[:], int64[:])", **_JIT)
def take_names(codes, names, name_at):
    """Per code c, the name ``names[name_at[c]:name_at[c + 1]]``: (offsets, bytes) of an Arrow string array."""
    n = len(codes)
    offsets = np.zeros(n + 1, np.int32)
    widest = 0
    for c in range(len(name_at) - 1):
        widest = max(widest, name_at[c + 1] - name_at[c])
    out = np.empty(n * widest + 1, np.uint8)
    pos = 0
    for i in range(n):
        c = codes[i]
        pos = _put(out, pos, names, name_at[c], name_at[c + 1] - name_at[c])
        offsets[i + 1] = pos
    return offsets, out[:pos]
