"""Opportunity text: each detector's message as a template, and the factor JSON, as Arrow string arrays.

A template reads like the message it writes::

    "{symbol} broke its {span} high {level:price} at {close:price}[ on {vr:.1f}× volume]"

- ``{name}``: a text column (the symbol), or a constant string given for ``name``;
- ``{name:spec}``: a number column in a Python format spec (``.0f``, ``.1f``, ``+.1f``, ``,.2f`` ...) or
  ``price`` (2,950 from 1000, else 812.35);
- ``{name?yes|no}``: ``yes`` where the boolean column ``name`` is set, else ``no``;
- ``[...]``: written only where every number inside it is finite.

``Message`` holds a template and the function giving its columns for some of a detector's hits, so
the text is made only for the rows that are announced. ``render_all`` writes every template's rows in one compiled
pass (``_text_kernel``); ``render_py`` is the same in Python (the reference the tests hold it to, and
the route for numbers too large for the kernel's exact rounding). The kernel module (numba) is
imported on the first render, so importing the detectors stays light.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# A template program: one row of ``ops`` per piece, (op, a, b, c, d, e), run by ``_text_kernel.render``.
LIT = 0  # literal bytes lits[a:a+b]
TEXT = 1  # text column a of the row
NUM = 2  # number column a; b decimals (-1: a price), c flags (PLUS, COMMAS)
FLAG = 3  # flag column a: lits[b:b+c] when set, else lits[d:d+e]
OPT = 4  # the pieces up to op a are written only when their numbers are all finite
PLUS, COMMAS = 1, 2

_FIELD = re.compile(r"\{(\w+)\}")
_SPEC = re.compile(r"^(\+)?(,)?\.(\d)f$")
_KERNEL_LIMIT = 1e13  # the kernel's exact rounding holds below this magnitude


@dataclass(frozen=True, eq=False)  # hashed by identity: one per template (``_compile`` caches them)
class _Program:
    """A parsed template: the kernel's ops and literal bytes, and the columns it reads by kind."""

    ops: np.ndarray
    lits: np.ndarray
    text: tuple[str, ...]
    numbers: tuple[str, ...]
    flags: tuple[str, ...]
    pieces: tuple  # the same program for ``render_py``: (op, ...) tuples
    width: int  # bytes of the longest literal path, for the kernel's buffer


@lru_cache(maxsize=256)
def _compile(template: str) -> _Program:
    lits = bytearray()
    ops: list[list[int]] = []
    pieces: list[tuple] = []
    text, numbers, flags = [], [], []
    opened: list[int] = []

    def lit(s: str) -> tuple[int, int]:
        b = s.encode()
        lits.extend(b)
        return len(lits) - len(b), len(b)

    def index(names: list[str], name: str) -> int:
        if name not in names:
            names.append(name)
        return names.index(name)

    at = 0
    for m in re.finditer(r"\{([^{}]*)\}|\[|\]", template):
        if m.start() > at:
            start, n = lit(template[at:m.start()])
            ops.append([LIT, start, n, 0, 0, 0])
            pieces.append(("lit", template[at:m.start()]))
        at = m.end()
        token = m.group(0)
        if token == "[":
            opened.append(len(ops))
            ops.append([OPT, 0, 0, 0, 0, 0])
            pieces.append(("opt", 0))
        elif token == "]":
            if not opened:
                raise ValueError(f"template {template!r}: ']' without '['")
            i = opened.pop()
            ops[i][1] = len(ops)
            pieces[i] = ("opt", len(pieces))
        else:
            body = m.group(1)
            if "?" in body:
                name, _, choice = body.partition("?")
                yes, sep, no = choice.partition("|")
                if not sep:
                    raise ValueError(f"template {template!r}: {{{body}}} needs 'yes|no'")
                c = index(flags, name)
                ops.append([FLAG, c, *lit(yes), *lit(no)])
                pieces.append(("flag", c, yes, no))
            elif ":" in body:
                name, _, spec = body.partition(":")
                c = index(numbers, name)
                if spec == "price":
                    ops.append([NUM, c, -1, 0, 0, 0])
                else:
                    s = _SPEC.match(spec)
                    if s is None:
                        raise ValueError(f"template {template!r}: format {spec!r} is not price or [+][,].Nf")
                    ops.append([NUM, c, int(s.group(3)), (PLUS if s.group(1) else 0) | (COMMAS if s.group(2) else 0),
                                0, 0])
                pieces.append(("num", c, spec))
            else:
                c = index(text, body)
                ops.append([TEXT, c, 0, 0, 0, 0])
                pieces.append(("text", c))
    if opened:
        raise ValueError(f"template {template!r}: '[' without ']'")
    if at < len(template):
        start, n = lit(template[at:])
        ops.append([LIT, start, n, 0, 0, 0])
        pieces.append(("lit", template[at:]))
    width = sum(o[2] if o[0] == LIT else max(o[3], o[5]) if o[0] == FLAG else 0 for o in ops)
    return _Program(np.array(ops, np.int64).reshape(-1, 6), np.frombuffer(bytes(lits) or b"\0", np.uint8).copy(),
                    tuple(text), tuple(numbers), tuple(flags), tuple(pieces), width)


def program(template: str, constants: Mapping[str, str] | None = None) -> _Program:
    """The template with ``constants`` written in (``{name}`` -> its text), parsed (cached)."""
    return _program(template, tuple(sorted(constants.items())) if constants else ())


@lru_cache(maxsize=1024)
def _program(template: str, constants: tuple[tuple[str, str], ...]) -> _Program:
    if constants:
        known = dict(constants)
        template = _FIELD.sub(lambda m: known.get(m.group(1), m.group(0)), template)
    return _compile(template)


def render(template: str, columns: Mapping[str, object]) -> pa.Array:
    """The template over rows of ``columns`` (arrays, one value per row; a str is a constant) as an Arrow
    string array."""
    return render_all([(template, columns)])


def render_all(messages: list[tuple[str, Mapping[str, object]]]) -> pa.Array:
    """Each (template, columns)'s rows, one after the other, in one compiled pass."""
    inputs = [_inputs(t, c) for t, c in messages]
    total = sum(i[1] for i in inputs)
    if total == 0:
        return pa.array([], pa.string())
    joined = _joined(tuple(i[0] for i in inputs))
    which = np.repeat(np.arange(len(inputs)), [i[1] for i in inputs])
    numbers = np.zeros((total, joined.numbers))
    flags = np.zeros((total, joined.flags), bool)
    text = [np.full(total, "", object) for _ in range(joined.text)]
    at = 0
    for prog, n, txt, num, flg in inputs:
        numbers[at:at + n, :num.shape[1]] = num
        flags[at:at + n, :flg.shape[1]] = flg
        for j, values in enumerate(txt):
            text[j][at:at + n] = values
        at += n
    if _too_large(numbers):
        return pa.array([s for t, c in messages for s in render_py(t, c)], pa.string())
    blob, text_at = _text_buffers(text, total)
    from mintel.analytics import _text_kernel as _k  # numba: loaded on the first text, not on import

    offsets, data = _k.render(joined.ops, joined.starts, which, joined.lits, blob, text_at, numbers, flags, joined.width)
    return pa.Array.from_buffers(pa.string(), total, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _too_large(numbers: np.ndarray) -> bool:
    """Is a finite number at or beyond the kernel's exact range? (inf is written by the kernel; NaN skipped.)"""
    with np.errstate(invalid="ignore"):
        big = np.abs(numbers) >= _KERNEL_LIMIT
    return bool(big.any()) and bool(np.isfinite(numbers[big]).any())


@dataclass(frozen=True)
class _Joined:
    """Programs end to end for the kernel: program p is ops ``starts[p]:starts[p + 1]``."""

    ops: np.ndarray
    starts: np.ndarray
    lits: np.ndarray
    text: int  # columns of each kind of the widest program
    numbers: int
    flags: int
    width: int  # bytes a row may take besides its text


@lru_cache(maxsize=1024)
def _joined(programs: tuple[_Program, ...]) -> _Joined:
    ops, lits, starts = [], [], [0]
    base_op = base_lit = 0
    for prog in programs:
        o = prog.ops.copy()
        o[o[:, 0] == LIT, 1] += base_lit
        o[o[:, 0] == FLAG, 2] += base_lit
        o[o[:, 0] == FLAG, 4] += base_lit
        o[o[:, 0] == OPT, 1] += base_op
        ops.append(o)
        lits.append(prog.lits)
        base_op += len(o)
        base_lit += len(prog.lits)
        starts.append(base_op)
    return _Joined(np.concatenate(ops), np.array(starts, np.int64), np.concatenate(lits),
                   max(len(p.text) for p in programs), max(len(p.numbers) for p in programs),
                   max(len(p.flags) for p in programs), max(p.width + 40 * len(p.numbers) for p in programs))


def render_py(template: str, columns: Mapping[str, object]) -> list[str]:
    """``render`` in Python, with ``format``: the reference for the kernel."""
    prog, n, text, numbers, flags = _inputs(template, columns)
    return _run_py(prog, n, text, numbers, flags)


def _run_py(prog: _Program, n: int, text: list, numbers: np.ndarray, flags: np.ndarray) -> list[str]:
    """``prog`` over ``n`` rows of its columns (text: one sequence per text column; numbers, flags: rows x columns)."""
    out = []
    for row in range(n):
        parts, i = [], 0
        while i < len(prog.pieces):
            piece = prog.pieces[i]
            kind = piece[0]
            if kind == "lit":
                parts.append(piece[1])
            elif kind == "text":
                parts.append(text[piece[1]][row])
            elif kind == "num":
                x = float(numbers[row, piece[1]])
                spec = piece[2]
                if spec == "price":
                    spec = ",.0f" if abs(x) >= 1000 else ",.2f"
                parts.append(format(x, spec))
            elif kind == "flag":
                parts.append(piece[2] if flags[row, piece[1]] else piece[3])
            else:
                group = [p for p in prog.pieces[i + 1:piece[1]] if p[0] == "num"]
                if not all(np.isfinite(numbers[row, p[1]]) for p in group):
                    i = piece[1]
                    continue
            i += 1
        out.append("".join(parts))
    return out


def render_coded(programs: tuple[_Program, ...], which: np.ndarray, text: pa.Array, numbers: np.ndarray,
                 flags: np.ndarray) -> pa.Array:
    """Row i in program ``which[i]`` (one compiled pass, as ``render_all``): its one text column from ``text`` (a
    string array, row i), its number columns from ``numbers[i]`` and its flag columns from ``flags[i]``, each
    in the program's order (a program reading fewer ignores the rest)."""
    n = len(which)
    if n == 0:
        return pa.array([], pa.string())
    if any(len(p.text) > 1 for p in programs):
        raise ValueError("render_coded: a program reads more than one text column")
    numbers = np.ascontiguousarray(numbers, np.float64)
    flags = np.ascontiguousarray(flags, np.bool_)
    if _too_large(numbers):
        out = np.empty(n, object)
        values = text.to_numpy(zero_copy_only=False)
        for w in np.unique(which).tolist():
            at = np.flatnonzero(which == w)
            out[at] = _run_py(programs[w], len(at), [values[at]], numbers[at], flags[at])
        return pa.array(out, pa.string())
    joined = _joined(programs)
    blob, text_at = _text_buffers([text], n)
    from mintel.analytics import _text_kernel as _k

    offsets, data = _k.render(joined.ops, joined.starts, np.asarray(which, np.int64), joined.lits, blob, text_at,
                              numbers, flags, joined.width)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _inputs(template: str, columns: Mapping[str, object]):
    constants = {k: v for k, v in columns.items() if isinstance(v, str)}
    prog = program(template, constants)
    arrays = {k: v for k, v in columns.items() if not isinstance(v, str)}
    missing = [c for c in (*prog.text, *prog.numbers, *prog.flags) if c not in arrays]
    if missing:
        raise ValueError(f"template {template!r}: no column {', '.join(map(repr, missing))}")
    n = len(next(iter(arrays.values()))) if arrays else 0
    text = [np.asarray(arrays[c], dtype=object) for c in prog.text]
    numbers = np.empty((n, len(prog.numbers)))
    for j, c in enumerate(prog.numbers):
        numbers[:, j] = arrays[c]
    flags = np.empty((n, len(prog.flags)), bool)
    for j, c in enumerate(prog.flags):
        flags[:, j] = arrays[c]
    return prog, n, text, numbers, flags


def _text_buffers(columns: list[np.ndarray | pa.StringArray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The text columns' UTF-8 bytes end to end, and each one's row bounds in them: (columns, n + 1)."""
    at = np.zeros((len(columns), n + 1), np.int64)
    blobs, base = [], 0
    for j, values in enumerate(columns):
        arr = values if isinstance(values, pa.StringArray) else pa.array(values, pa.string())
        _, off, data = arr.buffers()
        offsets = np.frombuffer(off, np.int32, n + 1, arr.offset * 4)
        at[j] = offsets.astype(np.int64) - offsets[0] + base
        blobs.append(np.frombuffer(data, np.uint8, offsets[-1] - offsets[0], offsets[0]) if data is not None
                     else np.empty(0, np.uint8))
        base += offsets[-1] - offsets[0]
    blob = np.concatenate(blobs) if blobs else np.empty(0, np.uint8)
    return (blob if len(blob) else np.zeros(1, np.uint8)), at


@dataclass
class Message:
    """A detector's message: its template and ``columns(i)``, the columns of its hits at positions ``i``
    (a slice or an index array)."""

    template: str
    columns: Callable[[object], Mapping[str, object]]

    def parts(self, i=slice(None)) -> tuple[str, Mapping[str, object]]:
        """(template, columns) for ``render_all``."""
        return self.template, self.columns(i)

    def take(self, at: np.ndarray) -> Message:
        """The message of the hits at positions ``at``."""
        columns = self.columns
        return Message(self.template, lambda i=slice(None): columns(at[i]))


def factor_json(names: list[str], points: np.ndarray) -> pa.Array:
    """``{"name": points, ...}`` per row of ``points`` (rows x names), each number as Arrow casts it to
    text, as an Arrow string array."""
    return factor_json_all([(names, points)])


def factor_json_all(parts: list[tuple[list[str], np.ndarray]]) -> pa.Array:
    """Each (names, points)'s rows of ``factor_json``, one after the other, in one compiled pass."""
    if not parts:
        return pa.array([], pa.string())
    ns = [len(points) for _, points in parts]
    points = np.zeros((sum(ns), max(len(names) for names, _ in parts)))
    at = 0
    for (names, pts), n in zip(parts, ns):
        points[at:at + n, :len(names)] = pts
        at += n
    return factor_json_coded(tuple(tuple(names) for names, _ in parts), np.repeat(np.arange(len(parts)), ns), points)


def factor_json_coded(names: tuple[tuple[str, ...], ...], which: np.ndarray, points: np.ndarray) -> pa.Array:
    """Row i's ``factor_json`` with the names ``names[which[i]]`` and its points from ``points[i]`` (column 0 on),
    in one compiled pass."""
    n = len(which)
    keys, key_at, first = _keys(names)
    points = np.ascontiguousarray(points, np.float64)
    if n and key_at[-1]:
        from mintel.analytics import _text_kernel as _k

        offsets, data, ok = _k.factor_json(keys, key_at, first, np.asarray(which, np.int64), points)
        if ok:
            return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    out = np.empty(n, object)  # the Arrow route, a kind at a time
    for w in np.unique(which).tolist():
        at = np.flatnonzero(which == w)
        out[at] = _factor_json_arrow(list(names[w]), points[at, :len(names[w])]).to_numpy(zero_copy_only=False)
    return pa.array(out, pa.string())


def label_array(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    """``names[codes]`` as an Arrow string array, written in one compiled pass (codes in range)."""
    blob, name_at = _names_blob(names)
    from mintel.analytics import _text_kernel as _k

    offsets, data = _k.take_names(np.asarray(codes, np.int64), blob, name_at)
    return pa.Array.from_buffers(pa.string(), len(codes), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


@lru_cache(maxsize=64)
def _names_blob(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    raw = [n.encode() for n in names]
    return np.frombuffer(b"".join(raw) or b"\0", np.uint8).copy(), np.cumsum([0] + [len(b) for b in raw]).astype(np.int64)


@lru_cache(maxsize=1024)
def _keys(names: tuple[tuple[str, ...], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every part's key openings ({"name": , then , "name": ) as bytes, their bounds, each part's first key."""
    keys = [("{" if j == 0 else ", ") + f'"{f}": ' for part in names for j, f in enumerate(part)]
    raw = "".join(keys).encode() or b"\0"
    key_at = np.cumsum([0] + [len(k.encode()) for k in keys]).astype(np.int64)
    first = np.cumsum([0] + [len(part) for part in names]).astype(np.int64)
    return np.frombuffer(raw, np.uint8).copy(), key_at, first


def _factor_json_arrow(names: list[str], points: np.ndarray) -> pa.Array:
    """``factor_json`` through Arrow's cast (any double), for points the kernel does not take."""
    n = len(points)
    if not names:
        return pa.array(["{}"] * n, pa.string())
    text = pc.cast(pa.array(points.T.ravel()), pa.string())
    pieces = []
    for j, f in enumerate(names):
        pieces += [pa.scalar(("{" if j == 0 else ", ") + f'"{f}": '), text.slice(j * n, n)]
    return pc.binary_join_element_wise(*pieces, pa.scalar("}"), "")
