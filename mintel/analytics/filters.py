"""Structured scan filters: ``rsi<30``, ``volume_ratio>=2``, ``sector=IT``, ``symbol~REL``.

A small grammar parsed here, applied with pandas boolean masks; user text is never evaluated::

    filters := filter ("," filter)*            (and repeated --filter flags: all must hold)
    filter  := COLUMN OP VALUE
    COLUMN  := a known scan column: [A-Za-z_][A-Za-z0-9_]*
    OP      := "<" | "<=" | ">" | ">=" | "=" | "!=" | "~"
    VALUE   := a number (numeric columns) | text (text columns: = and != compare case-insensitively,
               "a|b" means either; ~ is a case-insensitive substring)

A row with a missing value never passes. Errors are ``DataError`` naming the filter and what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel.errors import DataError
from mintel.schema import SNAPSHOT

OPERATORS = ("<", "<=", ">", ">=", "=", "!=", "~")
TEXT_OPERATORS = ("=", "!=", "~")
# Columns scan adds to the snapshot's (see mintel.analytics.scan).
EXTRA_COLUMNS = {"sma_200": "number", "direction": "text", "new_high_52w": "number", "new_low_52w": "number",
                 "volume_z": "number"}
_UNFILTERABLE = ("ts", "updated_at")


def known_columns() -> dict[str, str]:
    """Filterable columns and their kind ("number" or "text")."""
    cols = {f.name: "text" if pa.types.is_string(f.type) else "number"
            for f in SNAPSHOT if f.name not in _UNFILTERABLE}
    return {**cols, **EXTRA_COLUMNS}


_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*([<>=!~]+)\s*(.*?)\s*$", re.DOTALL)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Filter:
    """One parsed filter: ``column op value`` (value a float for numeric columns, a str otherwise)."""

    column: str
    op: str
    value: float | str
    text: str

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows of ``frame`` that pass."""
        if self.column not in frame:
            raise DataError(f"{self.text}: column '{self.column}' is not in the data")
        col = frame[self.column]
        if isinstance(self.value, str):
            text = col.astype("string").str.casefold()
            present = text.notna().to_numpy()
            want = self.value.casefold()
            if self.op == "~":
                hit = text.str.contains(want, regex=False)
            else:
                hit = text.isin([w.strip() for w in want.split("|")])
                if self.op == "!=":
                    hit = ~hit
            return present & hit.fillna(False).to_numpy(dtype=bool)
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            hit = {"<": values < self.value, "<=": values <= self.value, ">": values > self.value,
                   ">=": values >= self.value, "=": values == self.value, "!=": values != self.value}[self.op]
        return hit & np.isfinite(values)


def parse_filter(text: str, columns: Mapping[str, str] | None = None) -> Filter:
    """One filter from ``text``; ``columns``: name -> "number" | "text" (default ``known_columns()``)."""
    columns = known_columns() if columns is None else columns
    raw = str(text)
    shown = raw.strip() or repr(raw)
    m = _FILTER.match(raw)
    if not m:
        raise DataError(f"{shown}: expected COLUMN OP VALUE such as rsi<30 (operators: {' '.join(OPERATORS)})")
    name, op, value = m.group(1), m.group(2), m.group(3)
    if op == "==":
        op = "="
    if op not in OPERATORS:
        raise DataError(f"{shown}: unknown operator '{op}' (operators: {' '.join(OPERATORS)})")
    if name not in columns:
        raise DataError(f"{shown}: unknown column '{name}' (known: {', '.join(sorted(columns))})")
    if value == "":
        raise DataError(f"{shown}: value missing")
    if columns[name] == "text":
        if op not in TEXT_OPERATORS:
            raise DataError(f"{shown}: operator '{op}' needs a numeric column; '{name}' is text (use = != ~)")
        return Filter(name, op, value, shown)
    if op == "~":
        raise DataError(f"{shown}: operator '~' needs a text column; '{name}' is numeric")
    if not _NUMBER.match(value):
        raise DataError(f"{shown}: '{value}' is not a number")
    return Filter(name, op, float(value), shown)


def parse_filters(specs: str | Iterable[str] | None, columns: Mapping[str, str] | None = None) -> list[Filter]:
    """Filters from a comma-separated string, or from several (repeated flags); all must hold."""
    if specs is None:
        return []
    if isinstance(specs, Filter):
        return [specs]
    specs = [specs] if isinstance(specs, str) else list(specs)
    out: list[Filter] = []
    for spec in specs:
        if isinstance(spec, Filter):
            out.append(spec)
            continue
        if not isinstance(spec, str):
            raise DataError(f"filter {spec!r}: expected text such as rsi<30")
        for part in spec.split(","):
            if part.strip():
                out.append(parse_filter(part, columns))
            elif spec.strip():
                raise DataError(f"{spec.strip()}: empty filter between commas")
    return out


def apply_filters(frame: pd.DataFrame, filters: str | Iterable[str | Filter] | None) -> pd.DataFrame:
    """The rows of ``frame`` passing every filter (parsed when given as text)."""
    parsed = parse_filters(filters)
    if not parsed:
        return frame
    mask = np.ones(len(frame), bool)
    for f in parsed:
        mask &= f.mask(frame)
    return frame.loc[mask]
