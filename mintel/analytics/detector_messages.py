"""The text of each detector's hits: one builder per detector family, making its ``Message`` (template and
columns) from the panel, the hits' rows and the per-hit numbers the panel does not hold.

Both detector paths use them: the numpy detectors (``detectors.py``) and the live kernel's hits
(``live_panel._kernel_found``, through each ``Detector.message``). The columns are read only for the
hits that are announced.
"""

from __future__ import annotations

import numpy as np

from mintel.analytics.messages import Message
from mintel.analytics.panel import Panel


def channel_message(p: Panel, r: np.ndarray, side: int, year: bool, *, level: np.ndarray) -> Message:
    window = p.params.year_window if year else p.params.breakout_window
    span = "52-week" if year and window == 252 and p.daily else f"{window}-{p.unit}"
    words = {"verb": "broke its" if side > 0 else "broke below its", "span": span, "word": "high" if side > 0 else "low"}
    vr = p.ind["volume_ratio"]
    return Message("{symbol} {verb} {span} {word} {level:price} at {close:price}[ on {vr:.1f}× volume]",
                   lambda i=slice(None): {**words, "symbol": p.sym[r[i]], "level": level[i], "close": p.c[r[i]],
                                          "vr": vr[r[i]]})


def spike_message(p: Panel, r: np.ndarray) -> Message:
    vr = p.ind["volume_ratio"]
    ref_name, ref = ("VWAP", p.ind.get("vwap")) if not p.daily else ("SMA 20", p.ind.get("sma_20"))

    def columns(i=slice(None)) -> dict:
        ri = r[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            ret = p.c[ri] / p.prev_close[ri] - 1.0
            dist = (p.c[ri] / ref[ri] - 1.0) * 100.0 if ref is not None else np.full(len(ri), np.nan)
        return {"symbol": p.sym[ri], "vr": vr[ri], "move": ret * 100, "unit": p.unit, "dist": np.abs(dist),
                "above": dist >= 0, "ref": ref_name}

    return Message("{symbol} traded {vr:.1f}× its usual volume[, {move:+.1f}% on the {unit}]"
                   "[, closing {dist:.1f}% {above?above|below} {ref}]", columns)


def cross_message(p: Panel, r: np.ndarray, side: int, fast: str, label: str) -> Message:
    words = "above" if side > 0 else "below"
    if fast == "sma_20":
        return Message("{symbol}: SMA 20 crossed {words} SMA 50 ({label}) at {close:price}",
                       lambda i=slice(None): {"symbol": p.sym[r[i]], "close": p.c[r[i]], "words": words, "label": label})
    macd = p.ind["macd"]
    return Message("{symbol}: MACD crossed {words} its signal line, {below?below|above} the zero line (MACD {macd:.2f})",
                   lambda i=slice(None): {"symbol": p.sym[r[i]], "macd": macd[r[i]], "below": macd[r[i]] < 0,
                                          "words": words})


def rsi_message(p: Panel, r: np.ndarray, side: int) -> Message:
    rsi = p.ind["rsi"]
    words = {"state": "oversold", "way": "up"} if side > 0 else {"state": "overbought", "way": "down"}

    def columns(i=slice(None)) -> dict:
        ri = r[i]
        with np.errstate(invalid="ignore"):
            turn = side * (rsi[ri] - p.lag("rsi", 1)[ri]) > 0
        return {**words, "symbol": p.sym[ri], "rsi": rsi[ri], "turn": turn}

    return Message("{symbol} is {state}: RSI {rsi:.0f}{turn?, turning {way}|}", columns)


def divergence_message(p: Panel, r: np.ndarray, side: int, *, price, price_before, rsi, rsi_before) -> Message:
    words = {"kind": "bullish", "price_low": "lower low", "rsi_low": "higher low"} if side > 0 else \
        {"kind": "bearish", "price_low": "higher high", "rsi_low": "lower high"}
    return Message("{symbol}: {kind} RSI divergence, price made a {price_low} {price:price} vs {price_before:price} "
                   "while RSI made a {rsi_low} {rsi:.0f} vs {rsi_before:.0f}",
                   lambda i=slice(None): {**words, "symbol": p.sym[r[i]], "price": price[i], "price_before": price_before[i],
                                          "rsi": rsi[i], "rsi_before": rsi_before[i]})


def level_message(p: Panel, r: np.ndarray, name: str, *, level: np.ndarray, touches: np.ndarray) -> Message:
    what = "support" if name.startswith("support") else "resistance"
    verb = "broke" if name.endswith("break") else "bounced off" if what == "support" else "was rejected at"
    vr = p.ind["volume_ratio"]
    return Message("{symbol} {verb} {what} {level:price} ({touches:.0f} touches), closing at {close:price}"
                   + ("[ on {vr:.1f}× volume]" if name.endswith("break") else ""),
                   lambda i=slice(None): {"symbol": p.sym[r[i]], "verb": verb, "what": what, "level": level[i],
                                          "touches": touches[i], "close": p.c[r[i]], "vr": vr[r[i]]})


def gap_message(p: Panel, r: np.ndarray, side: int) -> Message:
    word = "up" if side > 0 else "down"

    def columns(i=slice(None)) -> dict:
        ri, gp = r[i], p.gaps
        prev = gp["prev_close"][ri]
        with np.errstate(invalid="ignore"):
            hold = side * (p.c[ri] - prev) > 0
        return {"symbol": p.sym[ri], "word": word, "pct": np.abs(gp["gap_pct"][ri]), "atr": gp["gap_atr"][ri],
                "open": p.o[ri], "prev": prev, "hold": hold}

    return Message("{symbol} gapped {word} {pct:.1f}%[ ({atr:.1f} ATR)] to {open:price} from {prev:price}, "
                   "{hold?holding the gap|filling the gap}", columns)
