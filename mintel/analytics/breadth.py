"""Market breadth and sentiment from a snapshot-like frame (one row per symbol).

Input columns (any missing one leaves its figures null): symbol, change_pct, price, sma_50, sma_200,
rsi, volume or day_volume, prev_close, sector, and the 52-week flags ``new_high_52w`` /
``new_low_52w`` (or ``signals`` naming ``high_52w`` / ``low_52w``). Output: a ``Breadth`` with the
market figures, a table per sector, and one sentiment score 0..100 explained by its parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Sentiment parts: name -> weight. Each part's value is a share 0..1 (0.5 neutral).
SENTIMENT_WEIGHTS = {
    "advancing": 20.0,  # advancers / (advancers + decliners)
    "above_sma_50": 15.0,
    "above_sma_200": 15.0,
    "highs_vs_lows": 10.0,  # new highs / (new highs + new lows)
    "up_volume": 15.0,  # up volume / (up + down volume)
    "rsi": 10.0,  # average RSI mapped 30..70 -> 0..1
    "mean_change": 15.0,  # 0.5 + 0.5 tanh(mean change % / 1 %)
}
LABELS = ((20, "strongly bearish"), (40, "bearish"), (60, "neutral"), (80, "bullish"), (101, "strongly bullish"))


@dataclass
class Breadth:
    """Market breadth figures; ``sectors`` one row per sector; ``parts`` explains ``sentiment``."""

    symbols: int = 0
    advancers: int = 0
    decliners: int = 0
    unchanged: int = 0
    ad_ratio: float = math.nan  # advancers / decliners; null without decliners
    pct_above_sma_50: float = math.nan
    pct_above_sma_200: float = math.nan
    new_highs: int = 0
    new_lows: int = 0
    up_volume: float = 0.0
    down_volume: float = 0.0
    avg_rsi: float = math.nan
    mean_change_pct: float = math.nan
    sentiment: float = math.nan
    label: str | None = None
    parts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["part", "value", "weight", "contribution"]))
    sectors: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict:
        """Plain figures (nulls as None), ``parts`` and ``sectors`` as lists of records: JSON-ready."""
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, pd.DataFrame):
                out[k] = [{c: _plain(x) for c, x in row.items()} for row in v.to_dict("records")]
            else:
                out[k] = _plain(v)
        return out


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    return None if v is pd.NA or v is pd.NaT else v


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _flags(frame: pd.DataFrame, column: str, kind: str) -> np.ndarray:
    if column in frame:
        return frame[column].fillna(False).to_numpy(dtype=bool)
    if "signals" in frame:
        sig = frame["signals"].fillna("").astype(str)
        return sig.map(lambda s: kind in s.split(",")).to_numpy(dtype=bool)
    return np.zeros(len(frame), bool)


def _changes(frame: pd.DataFrame) -> np.ndarray:
    change = _col(frame, "change_pct")
    if "change_pct" not in frame and "price" in frame and "prev_close" in frame:
        with np.errstate(invalid="ignore", divide="ignore"):
            change = (_col(frame, "price") / _col(frame, "prev_close") - 1.0) * 100.0
    return change


def _share(a: float, b: float) -> float:
    return a / (a + b) if a + b > 0 else math.nan


def _pct_above(price: np.ndarray, level: np.ndarray) -> float:
    known = np.isfinite(price) & np.isfinite(level)
    return float((price[known] > level[known]).mean() * 100.0) if known.any() else math.nan


def market_breadth(snapshot: pd.DataFrame, *, flat_pct: float = 0.0) -> Breadth:
    """Breadth of the market in ``snapshot``; a symbol is unchanged when ``|change_pct| <= flat_pct``."""
    b = Breadth()
    if snapshot is None or snapshot.empty:
        b.sectors = _sector_table(pd.DataFrame(), flat_pct)
        return b
    change = _changes(snapshot)
    price = _col(snapshot, "price")
    volume = _col(snapshot, "day_volume") if "day_volume" in snapshot and snapshot["day_volume"].notna().any() \
        else _col(snapshot, "volume")
    known = np.isfinite(change)
    up, down = known & (change > flat_pct), known & (change < -flat_pct)
    b.symbols = len(snapshot)
    b.advancers, b.decliners = int(up.sum()), int(down.sum())
    b.unchanged = int((known & ~up & ~down).sum())
    b.ad_ratio = b.advancers / b.decliners if b.decliners else math.nan
    b.pct_above_sma_50 = _pct_above(price, _col(snapshot, "sma_50"))
    b.pct_above_sma_200 = _pct_above(price, _col(snapshot, "sma_200"))
    b.new_highs = int(_flags(snapshot, "new_high_52w", "high_52w").sum())
    b.new_lows = int(_flags(snapshot, "new_low_52w", "low_52w").sum())
    vol = np.nan_to_num(volume)
    b.up_volume, b.down_volume = float(vol[up].sum()), float(vol[down].sum())
    rsi = _col(snapshot, "rsi")
    b.avg_rsi = float(np.nanmean(rsi)) if np.isfinite(rsi).any() else math.nan
    b.mean_change_pct = float(change[known].mean()) if known.any() else math.nan
    b.sentiment, b.label, b.parts = sentiment_score(b)
    b.sectors = _sector_table(snapshot.assign(_change=change, _volume=volume, _up=up, _down=down), flat_pct)
    return b


def sentiment_score(b: Breadth, weights: dict[str, float] | None = None) -> tuple[float, str | None, pd.DataFrame]:
    """(score 0..100, label, parts) from breadth figures. Each part's value is 0..1; unknown parts are left
    out and the weights of the others scaled up, so the contributions always sum to the score."""
    weights = weights or SENTIMENT_WEIGHTS
    values = {
        "advancing": _share(b.advancers, b.decliners),
        "above_sma_50": b.pct_above_sma_50 / 100.0,
        "above_sma_200": b.pct_above_sma_200 / 100.0,
        "highs_vs_lows": _share(b.new_highs, b.new_lows),
        "up_volume": _share(b.up_volume, b.down_volume),
        "rsi": min(max((b.avg_rsi - 30.0) / 40.0, 0.0), 1.0) if np.isfinite(b.avg_rsi) else math.nan,
        "mean_change": 0.5 + 0.5 * math.tanh(b.mean_change_pct) if np.isfinite(b.mean_change_pct) else math.nan,
    }
    known = {k: v for k, v in values.items() if np.isfinite(v) and weights.get(k, 0) > 0}
    total = sum(weights[k] for k in known)
    rows = []
    for k, v in values.items():
        w = 100.0 * weights.get(k, 0.0) / total if k in known else 0.0
        rows.append({"part": k, "value": v, "weight": round(w, 2), "contribution": round(w * v, 2) if k in known else 0.0})
    parts = pd.DataFrame(rows, columns=["part", "value", "weight", "contribution"])
    if not known:
        return math.nan, None, parts
    score = round(float(parts["contribution"].sum()), 2)
    label = next(name for edge, name in LABELS if score < edge)
    return score, label, parts


SECTOR_COLUMNS = ["sector", "symbols", "advancers", "decliners", "unchanged", "pct_advancing", "mean_change_pct",
                  "weighted_change_pct", "turnover", "pct_above_sma_50", "avg_rsi"]


def _sector_table(frame: pd.DataFrame, flat_pct: float) -> pd.DataFrame:
    """Per sector: breadth, mean change and turnover-weighted change (turnover = price x volume)."""
    if frame.empty or "sector" not in frame:
        return pd.DataFrame(columns=SECTOR_COLUMNS)
    price, sma_50 = _col(frame, "price"), _col(frame, "sma_50")
    turnover = price * frame["_volume"].to_numpy(dtype=np.float64)
    change = frame["_change"].to_numpy(dtype=np.float64)
    ok = np.isfinite(change) & np.isfinite(turnover) & (turnover > 0)
    with np.errstate(invalid="ignore"):
        t = pd.DataFrame({
            "sector": frame["sector"].astype(object).where(frame["sector"].notna(), "Unknown").to_numpy(),
            "one": 1, "up": frame["_up"].to_numpy(dtype=int), "down": frame["_down"].to_numpy(dtype=int),
            "known": np.isfinite(change).astype(int), "change": change,
            "wchange": np.where(ok, change * turnover, 0.0), "turnover": np.where(ok, turnover, 0.0),
            "above50": np.where(np.isfinite(price) & np.isfinite(sma_50), price > sma_50, np.nan),
            "rsi": _col(frame, "rsi"),
        })
    g = t.groupby("sector", sort=True)
    s = g.agg(symbols=("one", "sum"), advancers=("up", "sum"), decliners=("down", "sum"), known=("known", "sum"),
              mean_change_pct=("change", "mean"), wsum=("wchange", "sum"), turnover=("turnover", "sum"),
              above=("above50", "mean"), avg_rsi=("rsi", "mean"))
    out = pd.DataFrame({
        "sector": s.index.to_numpy(dtype=object),
        "symbols": s["symbols"].to_numpy(),
        "advancers": s["advancers"].to_numpy(),
        "decliners": s["decliners"].to_numpy(),
        "unchanged": (s["known"] - s["advancers"] - s["decliners"]).to_numpy(),
        "pct_advancing": np.where(s["known"] > 0, s["advancers"] / s["known"].where(s["known"] > 0, 1) * 100.0, np.nan),
        "mean_change_pct": s["mean_change_pct"].to_numpy(),
        "weighted_change_pct": np.where(s["turnover"] > 0, s["wsum"] / s["turnover"].where(s["turnover"] > 0, 1), np.nan),
        "turnover": s["turnover"].to_numpy(),
        "pct_above_sma_50": s["above"].to_numpy() * 100.0,
        "avg_rsi": s["avg_rsi"].to_numpy(),
    })
    return out.sort_values("weighted_change_pct", ascending=False, kind="stable", na_position="last").reset_index(drop=True)
