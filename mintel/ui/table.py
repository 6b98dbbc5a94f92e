"""A fast, escaped HTML grid for thousands of rows: the kernel formats, the browser only lays out.

``render(frame, columns)`` turns a frame into ``<table class="m-grid">`` with one formatter per
column; numbers are right-aligned, signed columns coloured up/down, and every text cell is
HTML-escaped (symbols and messages come from providers, never trusted as markup). It is a plain
function so tests can check the markup against the data without a browser.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Column:
    name: str  # the frame's column
    label: str  # the header
    fmt: str = "text"  # "text", or a format spec for numbers such as ",.2f" / "+.2f"
    signed: bool = False  # colour > 0 up and < 0 down
    title: str | None = None  # header tooltip

    @property
    def numeric(self) -> bool:
        return self.fmt != "text"


def fmt_number(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return html.escape(str(value))


def _cells(values: np.ndarray, col: Column) -> list[str]:
    if col.numeric:
        nums = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        text = [fmt_number(v, col.fmt) for v in nums.tolist()]
        if col.signed:
            cls = np.where(nums > 0, ' class="up"', np.where(nums < 0, ' class="down"', ""))
            return [f"<td{c}>{t}</td>" for c, t in zip(cls.tolist(), text)]
        return [f"<td>{t}</td>" for t in text]
    return [f'<td class="t">{"" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else html.escape(str(v))}</td>'
            for v in values.tolist()]


def render(frame: pd.DataFrame, columns: Sequence[Column], *, row_class: Callable[[pd.DataFrame], Sequence[str]] | None = None,
           table_id: str | None = None) -> str:
    """``frame`` as an HTML grid of ``columns`` (those missing from the frame are left blank)."""
    head = "".join(
        f'<th class="{"" if c.numeric else "t"}" data-col="{c.name}"'
        f'{f" title={html.escape(c.title, quote=True)!r}" if c.title else ""}>{html.escape(c.label)}</th>'
        for c in columns
    )
    n = len(frame)
    cols = [_cells(frame[c.name].to_numpy(dtype=object), c) if c.name in frame else ["<td></td>"] * n for c in columns]
    classes = list(row_class(frame)) if row_class is not None and n else [""] * n
    rows = "".join(
        f'<tr{f" class={cls!r}" if cls else ""} data-symbol="{html.escape(str(sym), quote=True)}">{"".join(cells)}</tr>'
        for cls, sym, cells in zip(classes, frame["symbol"].tolist() if "symbol" in frame else [""] * n, zip(*cols))
    ) if n else ""
    ident = f' id="{table_id}"' if table_id else ""
    return f'<table class="m-grid"{ident}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
