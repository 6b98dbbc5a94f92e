"""Volume analysis: unusual volume, price-volume correlation, accumulation/distribution, spikes.

Pure functions over many symbols laid end to end (sorted by (symbol, ts), see ``momentum.Groups``).
``volume_frame`` adds the per-bar columns; ``volume_spikes`` and ``unusual_volume`` pick the bars
that stand out, with their price context.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mintel.analytics.keys import to_utc_ns
from mintel.analytics.momentum import Groups, arrange

VOLUME_COLUMNS = ("return_pct", "volume_z", "pv_corr", "ad", "adosc", "close_location", "vs_vwap_pct", "vs_sma_20_pct")


def volume_zscore(volume: np.ndarray, groups: Groups, window: int = 20) -> np.ndarray:
    """z-score of log(1 + volume) against the previous ``window`` bars (their mean and sample std).

    Log volume because volume is skewed: a 3x day is as unusual after quiet days as after busy ones.
    NaN in warm-up and where the previous bars' volume did not vary.
    """
    lv = np.log1p(np.clip(np.asarray(volume, dtype=np.float64), 0, None))
    s1 = groups.shift(groups.window_sum(lv, window), 1)  # the previous `window` bars
    s2 = groups.shift(groups.window_sum(lv * lv, window), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / window
        var = np.maximum(s2 - s1 * mean, 0.0) / (window - 1)
        std = np.sqrt(var)
        return np.where(std > 1e-6, (lv - mean) / std, np.nan)


def price_volume_correlation(close: np.ndarray, volume: np.ndarray, groups: Groups, window: int = 20) -> np.ndarray:
    """Rolling correlation of bar returns with volume changes (log volume differences) over ``window`` bars.

    Positive: volume rises on up bars and falls on down bars (buying interest); negative: the reverse.
    """
    close = np.asarray(close, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = close / groups.shift(close, 1) - 1.0
        lv = np.log1p(np.clip(np.asarray(volume, dtype=np.float64), 0, None))
        dv = lv - groups.shift(lv, 1)
    r = pd.Series(ret).rolling(window, min_periods=window).corr(pd.Series(dv)).to_numpy(dtype=np.float64, copy=True)
    r[groups.pos < window] = np.nan  # the first return of a symbol needs a bar before it
    r[~np.isfinite(r)] = np.nan
    return np.clip(r, -1.0, 1.0)


def accumulation_distribution(high, low, close, volume, groups: Groups, fast: int = 3, slow: int = 10
                              ) -> tuple[np.ndarray, np.ndarray]:
    """(AD line, Chaikin A/D oscillator) per symbol with TA-Lib's AD and ADOSC (one call per symbol)."""
    import talib

    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close, volume)]
    n = groups.n
    ad, osc = np.full(n, np.nan), np.full(n, np.nan)
    AD = getattr(talib.AD, "__wrapped__", talib.AD)  # noqa: N806 - skip talib's pandas wrapper
    ADOSC = getattr(talib.ADOSC, "__wrapped__", talib.ADOSC)  # noqa: N806
    h, lo, c, v = arrays
    for s, e in zip(groups.starts.tolist(), groups.ends.tolist()):
        ad[s:e] = AD(h[s:e], lo[s:e], c[s:e], v[s:e])
        if e - s >= slow:
            osc[s:e] = ADOSC(h[s:e], lo[s:e], c[s:e], v[s:e], fast, slow)
    return ad, osc


def volume_frame(enriched: pd.DataFrame, window: int = 20) -> pd.DataFrame:
    """Per-bar volume analysis columns (``VOLUME_COLUMNS``) of an enriched frame (any order), aligned with it.

    return_pct: the bar's close-to-close return; volume_z: see ``volume_zscore``; pv_corr: see
    ``price_volume_correlation``; ad/adosc: TA-Lib AD and ADOSC(3, 10); close_location: where the
    close sits in the bar's range (0 = low, 1 = high); vs_vwap_pct / vs_sma_20_pct: the close's
    distance from the session VWAP (intraday) and from its SMA 20. Bars with a non-finite price or
    volume get nulls and are skipped by the windows, as in the indicators.
    """
    cols = ("high", "low", "close", "volume")
    rows, g, _ = arrange(enriched["symbol"], to_utc_ns(enriched["ts"]) if "ts" in enriched else None)
    raw = {c: enriched[c].to_numpy(dtype=np.float64, na_value=np.nan)[rows] for c in cols}
    # Like the indicators: computed over each symbol's usable bars, as if the others were absent.
    usable = np.ones(len(rows), bool)
    for c in cols:
        usable &= np.isfinite(raw[c])
    take = np.flatnonzero(usable)
    g, keep = g.take(take), rows[take]
    h, lo, c, v = (raw[k][take] for k in cols)
    ad, osc = accumulation_distribution(h, lo, c, v, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "return_pct": (c / g.shift(c, 1) - 1.0) * 100.0,
            "volume_z": volume_zscore(v, g, window),
            "pv_corr": price_volume_correlation(c, v, g, window),
            "ad": ad,
            "adosc": osc,
            "close_location": np.where(h > lo, (c - lo) / (h - lo), np.nan),
            "vs_vwap_pct": _distance_pct(c, enriched, "vwap", keep),
            "vs_sma_20_pct": _distance_pct(c, enriched, "sma_20", keep),
        }
    out = {}
    for name, a in values.items():
        out[name] = np.full(len(enriched), np.nan)
        out[name][keep] = a
    return pd.DataFrame(out, index=enriched.index)


def _distance_pct(close: np.ndarray, frame: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    if column not in frame:
        return np.full(len(close), np.nan)
    ref = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ref > 0, (close / ref - 1.0) * 100.0, np.nan)


def unusual_volume(enriched: pd.DataFrame, *, ratio_min: float = 2.0, z_min: float = 2.0, window: int = 20,
                   analysis: pd.DataFrame | None = None) -> pd.DataFrame:
    """Bars whose volume ratio reaches ``ratio_min`` or whose volume z-score reaches ``z_min``, with context.

    Columns: symbol, ts, close, volume, volume_ratio, then ``VOLUME_COLUMNS``, then direction (long when
    the bar closed up, short when down, else neutral).
    """
    a = volume_frame(enriched, window) if analysis is None else analysis
    vr = _column(enriched, "volume_ratio")
    z = a["volume_z"].to_numpy()
    with np.errstate(invalid="ignore"):
        mask = (vr >= ratio_min) | (z >= z_min)
    return _context_rows(enriched, a, mask)


def volume_spikes(enriched: pd.DataFrame, *, ratio_min: float = 3.0, window: int = 20,
                  analysis: pd.DataFrame | None = None) -> pd.DataFrame:
    """Volume spikes (volume ratio >= ``ratio_min``) with their price context; columns as ``unusual_volume``."""
    a = volume_frame(enriched, window) if analysis is None else analysis
    with np.errstate(invalid="ignore"):
        mask = _column(enriched, "volume_ratio") >= ratio_min
    return _context_rows(enriched, a, mask)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _context_rows(enriched: pd.DataFrame, analysis: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    rows = np.flatnonzero(mask)
    base = enriched.iloc[rows][[c for c in ("symbol", "ts", "close", "volume", "volume_ratio") if c in enriched]]
    out = pd.concat([base.reset_index(drop=True), analysis.iloc[rows].reset_index(drop=True)], axis=1)
    ret = out["return_pct"].to_numpy()
    out["direction"] = np.where(ret > 0, "long", np.where(ret < 0, "short", "neutral"))
    return out
