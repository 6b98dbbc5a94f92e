"""Scan filters: the grammar, pandas masks, and refusals that name the filter (never eval)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mintel.analytics.filters import Filter, apply_filters, parse_filter, parse_filters
from mintel.errors import DataError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": ["RELIANCE", "TCS", "INFY", "HDFCBANK", "RELINFRA"],
        "sector": ["Energy", "IT", "IT", "Banks", None],
        "rsi": [25.0, 55.0, np.nan, 72.0, 29.9],
        "volume_ratio": [2.5, 1.0, 3.0, 2.0, 0.5],
        "change_pct": [1.6, -0.4, 2.0, 1.5, -3.0],
    })


def symbols(frame, filters) -> list[str]:
    return apply_filters(frame, filters)["symbol"].tolist()


def test_parse():
    assert parse_filter("rsi<30") == Filter("rsi", "<", 30.0, "rsi<30")
    assert parse_filter(" volume_ratio >= 2 ").op == ">="
    assert parse_filter("sector=IT").value == "IT"
    assert parse_filter("change_pct>-1.5e0").value == -1.5
    assert parse_filter("rsi==30").op == "="
    assert [f.column for f in parse_filters(["rsi<30,volume_ratio>=2", "sector!=Banks"])] == ["rsi", "volume_ratio", "sector"]
    assert parse_filters(None) == [] and parse_filters("") == []


def test_apply(frame):
    assert symbols(frame, "rsi<30") == ["RELIANCE", "RELINFRA"]
    assert symbols(frame, ["rsi<30", "volume_ratio>=2"]) == ["RELIANCE"]
    assert symbols(frame, "volume_ratio>=2,change_pct>1.5") == ["RELIANCE", "INFY"]
    assert symbols(frame, "sector=it") == ["TCS", "INFY"]  # case-insensitive
    assert symbols(frame, "sector=IT|Banks") == ["TCS", "INFY", "HDFCBANK"]
    assert symbols(frame, "sector!=Banks") == ["RELIANCE", "TCS", "INFY"]  # a missing sector never passes
    assert symbols(frame, "symbol~REL") == ["RELIANCE", "RELINFRA"]
    assert symbols(frame, "rsi!=25") == ["TCS", "HDFCBANK", "RELINFRA"]  # NaN RSI never passes
    assert symbols(frame, "rsi<=25,rsi>=25") == ["RELIANCE"]
    assert symbols(frame, []) == frame["symbol"].tolist()


@pytest.mark.parametrize("text,message", [
    ("rsi<<30", "rsi<<30: unknown operator '<<'"),
    ("rsi=>30", "unknown operator '=>'"),
    ("mood<3", "mood<3: unknown column 'mood'"),
    ("rsi<", "rsi<: value missing"),
    ("rsi<abc", "'abc' is not a number"),
    ("rsi<30 or 1", "rsi<30 or 1: '30 or 1' is not a number"),
    ("rsi<30; import os", "is not a number"),
    ("rsi<(30)", "is not a number"),
    ("rsi<nan", "is not a number"),
    ("__import__('os')", "expected COLUMN OP VALUE"),
    ("__import__('os').system('x')<1", "expected COLUMN OP VALUE"),
    ("__class__<1", "unknown column '__class__'"),
    ("rsi", "expected COLUMN OP VALUE"),
    ("<30", "expected COLUMN OP VALUE"),
    ("sector<IT", "operator '<' needs a numeric column"),
    ("rsi~3", "operator '~' needs a text column"),
    ("rsi<30,,sector=IT", "empty filter"),
])
def test_bad_filters_are_refused_with_their_text(text, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_filters(text)


def test_text_values_are_literals_not_code(frame, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("filters must not evaluate text")

    monkeypatch.setattr(pd, "eval", refuse)
    monkeypatch.setattr(pd.DataFrame, "query", refuse)
    monkeypatch.setattr(pd.DataFrame, "eval", refuse)
    assert symbols(frame, "sector=IT' or '1'='1") == []
    assert symbols(frame, "symbol~.*") == []  # a substring, not a regex
    assert symbols(frame, "symbol~__import__('os')") == []
    assert symbols(frame, "rsi<30") == ["RELIANCE", "RELINFRA"]


def test_known_column_missing_from_the_data(frame):
    with pytest.raises(DataError, match="macd>0: column 'macd' is not in the data"):
        apply_filters(frame, "macd>0")


def test_custom_columns():
    cols = {"alpha": "number", "tag": "text"}
    assert parse_filter("alpha>1", cols).value == 1.0
    with pytest.raises(DataError, match="unknown column 'rsi'"):
        parse_filter("rsi<30", cols)
