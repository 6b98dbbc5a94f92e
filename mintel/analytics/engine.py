"""The live engine: one call per ingestion cycle turns the cycle's bars into a scored snapshot and new opportunities.

    bars -> LiveState (day figures, streaming indicators) -> BarWindow (last bars, enriched)
         -> detectors on each updated symbol's last bar -> multi-factor score -> cooldown -> outputs

Pure apart from the clock value passed in: the ingestion service writes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mintel import schema
from mintel.analytics.detectors import DetectorParams, detect
from mintel.analytics.indicators import DEFAULT_TZ, compute_indicators, to_utc_ns
from mintel.analytics.live import LiveState
from mintel.analytics.scoring import ScoreWeights, dedupe, score_symbols

_NAT = np.iinfo(np.int64).min
WINDOW_COLUMNS = ("open", "high", "low", "close", "volume", *schema.INDICATORS, "sma_200")


@dataclass
class CycleOutput:
    snapshot: pd.DataFrame  # SNAPSHOT rows, one per symbol
    opportunities: pd.DataFrame  # new (after cooldown) OPPORTUNITIES rows
    standing: pd.DataFrame  # every detection on this cycle's bars, announced before or not


class LiveEngine:
    """Streaming state + detectors + scoring for a universe, fed one cycle at a time."""

    def __init__(self, universe: pd.DataFrame | None, interval: str = "1m", *, tz: str = DEFAULT_TZ,
                 weights: ScoreWeights | dict | None = None, cooldown: int | str = 15,
                 params: DetectorParams | None = None) -> None:
        self.interval = interval
        self.tz = tz
        self.params = params or DetectorParams()
        self.weights = weights
        self.cooldown = cooldown
        self.universe = universe
        self.sectors = universe.drop_duplicates("symbol").set_index("symbol")["sector"] if universe is not None and "sector" in universe else None
        self.state = LiveState(universe, interval, tz)
        self.window = BarWindow(self.params.history_bars(year=interval == "1d"), WINDOW_COLUMNS)
        self.recent = schema.empty_frame("opportunities")  # announced within the cooldown

    @classmethod
    def from_history(cls, bars: pd.DataFrame, universe: pd.DataFrame | None, interval: str = "1m", *,
                     recent: pd.DataFrame | None = None, **kwargs) -> "LiveEngine":
        """The engine as it was after ``bars`` (from the lake), with ``recent`` announced opportunities."""
        engine = cls(universe, interval, **kwargs)
        if len(bars):
            engine.state = LiveState.from_history(bars, universe, interval, engine.tz)
            bars = bars.sort_values(["symbol", "ts"], kind="stable")
            tail = bars.groupby("symbol", sort=False).tail(engine.window.length + 400)  # indicators need warm-up
            enriched = compute_indicators(tail, interval, engine.tz, extra=("sma_200",))
            engine.window.push(enriched.groupby("symbol", sort=False).tail(engine.window.length))
        if recent is not None and len(recent):
            engine.recent = recent
        return engine

    def _horizon(self, newest: pd.Timestamp) -> pd.Timestamp:
        if isinstance(self.cooldown, str):
            return newest - 2 * pd.Timedelta(self.cooldown)
        step = pd.Timedelta(days=1.5) if self.interval == "1d" else pd.Timedelta(self.interval)
        return newest - 2 * (int(self.cooldown) + 1) * step

    def update(self, bars: pd.DataFrame, now: pd.Timestamp) -> CycleOutput:
        """Fold in a cycle's valid bars; return the snapshot, the new opportunities and all standing ones."""
        enriched = self.state.update(bars)
        self.window.push(enriched)
        snapshot = self.state.snapshot(now).to_pandas()
        standing = schema.empty_frame("opportunities")
        if enriched is None or snapshot.empty:
            return CycleOutput(snapshot, standing, standing)
        window = self.window.frame()
        window["interval"] = self.interval
        updated = set(enriched["symbol"])
        standing = detect(window, last_only=True, interval=self.interval, params=self.params, now=now, tz=self.tz)
        standing = standing[standing["symbol"].isin(updated)]
        if len(standing) and self.sectors is not None:
            standing = standing.assign(sector=standing["symbol"].map(self.sectors))
        scores = score_symbols(window, standing, self.weights, interval=self.interval).set_index("symbol")
        snapshot["score"] = snapshot["symbol"].map(scores["score"])
        kinds = standing.groupby("symbol")["kind"].agg(lambda k: ",".join(sorted(set(k)))) if len(standing) else pd.Series(dtype=object)
        snapshot["signals"] = snapshot["symbol"].map(kinds)
        new = dedupe(standing, self.recent, self.cooldown, interval=self.interval) if len(standing) else standing
        if len(new):
            self.recent = pd.concat([self.recent, new], ignore_index=True)
        if len(self.recent):  # only what the cooldown can still block
            self.recent = self.recent[self.recent["ts"] >= self._horizon(enriched["ts"].max())]
        snapshot = schema.to_pandas(schema.conform("snapshot", snapshot))
        return CycleOutput(snapshot, new.reset_index(drop=True), standing.reset_index(drop=True))


class BarWindow:
    """The last ``length`` bar times of the universe, enriched, as numpy arrays.

    Live bars come a minute (a day) at a time for the whole universe, so the window is a ring of
    ``length`` time slots per symbol; a symbol without a bar in a slot holds NaN there (detectors skip
    unusable bars). Every slot is written twice, at ``k`` and ``k + length`` of a doubled ring, so the
    window in time order is always one contiguous slice. Symbols are kept in name order. ``push``
    stores a cycle's bars (the newest slot's ts again replaces in place: the forming bar); ``frame()``
    returns the window as one frame sorted by (symbol, ts).
    """

    def __init__(self, length: int, columns: tuple[str, ...]) -> None:
        self.length = length
        self.columns = tuple(columns)
        self._names = pd.Index([], dtype=object)  # sorted
        self._slot_ts = np.full(2 * length, _NAT, np.int64)
        self._pos = -1  # newest slot, 0 <= pos < length
        self._data = np.full((len(self.columns), 0, 2 * length), np.nan)

    def _rows(self, symbols: np.ndarray) -> np.ndarray:
        rows = self._names.get_indexer(symbols) if len(self._names) else np.full(len(symbols), -1)
        if (rows < 0).any():
            names = self._names.append(pd.Index(pd.unique(symbols[rows < 0]), dtype=object)).sort_values()
            grown = np.full((len(self.columns), len(names), 2 * self.length), np.nan)
            if len(self._names):
                grown[:, names.get_indexer(self._names), :] = self._data
            self._names, self._data = names, grown
            rows = names.get_indexer(symbols)
        return rows.astype(np.int64)

    def push(self, enriched: pd.DataFrame | None) -> None:
        """Store bars, slot by slot in ts order; a ts older than the newest slot is ignored."""
        if enriched is None or enriched.empty:
            return
        ts = to_utc_ns(enriched["ts"])
        rows = self._rows(enriched["symbol"].to_numpy(dtype=object))
        data = np.stack([enriched[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in self.columns])
        w = self.length
        for t in np.unique(ts):
            newest = self._slot_ts[self._pos] if self._pos >= 0 else _NAT
            if t < newest:
                continue
            if t > newest:
                self._pos = (self._pos + 1) % w
                self._slot_ts[[self._pos, self._pos + w]] = t
                self._data[:, :, [self._pos, self._pos + w]] = np.nan
            i = np.flatnonzero(ts == t)
            self._data[:, rows[i], self._pos] = data[:, i]
            self._data[:, rows[i], self._pos + w] = data[:, i]

    def frame(self) -> pd.DataFrame:
        """The window sorted by (symbol, ts): symbol (categorical, sorted), ts, *columns."""
        if self._pos < 0:
            return pd.DataFrame(columns=["symbol", "ts", *self.columns])
        start = self._pos + 1
        slots_ts = self._slot_ts[start : start + self.length]
        have = slots_ts != _NAT
        first = int(np.argmax(have)) if have.any() else self.length
        lo = start + first
        w = self.length - first
        n = len(self._names)
        flat = np.ascontiguousarray(self._data[:, :, lo : lo + w]).reshape(len(self.columns), n * w)
        frame = pd.DataFrame(flat.T, columns=list(self.columns), copy=False)  # one float block, no copy
        frame.insert(0, "ts", pd.DatetimeIndex(np.tile(self._slot_ts[lo : lo + w], n).view("M8[ns]"), tz="UTC"))
        frame.insert(0, "symbol", pd.Categorical.from_codes(np.repeat(np.arange(n), w), categories=self._names))
        return frame
