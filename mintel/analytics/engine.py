"""The live engine: one call per ingestion cycle turns the cycle's bars into a scored snapshot and new opportunities.

    bars -> LiveState (day figures, streaming indicators) -> BarWindow (last bars, enriched)
         -> detectors on each updated symbol's last bar -> multi-factor score -> cooldown -> outputs

The detectors and the scorer read the window in place (``LivePanel``: arrays, no DataFrame); the
detectors run as one compiled pass over it (``_detect_kernel``, held bit for bit to the numpy
detectors by the tests); a symbol with a hole in its window (it missed a bar) takes the general
``Panel`` path, which gives the same answers at a higher cost. Messages and factor JSON are made
only for the opportunities announced (and for ``standing`` when someone reads it). Pure apart from the clock value passed in: the
ingestion service writes what it returns.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from mintel import schema
from mintel.analytics.detectors import DETECTORS, KINDS, SIDES, DetectorParams, detect, opportunity_table
from mintel.analytics.indicators import compute_indicators
from mintel.analytics.keys import DEFAULT_TZ, Positions
from mintel.analytics.live import LiveState
from mintel.analytics.live_panel import LivePanel
from mintel.analytics.scoring import FACTORS, Coded, Cooldown, ScoreWeights, factor_points, factor_values, panel_factors
from mintel.analytics.window import BarWindow

__all__ = ["BarWindow", "CycleOutput", "LiveEngine", "WINDOW_COLUMNS"]

WINDOW_COLUMNS = ("open", "high", "low", "close", "volume", *schema.INDICATORS, "sma_200")


class CycleOutput:
    """What a cycle produced: the snapshot (one row per symbol), the new opportunities (after the
    cooldown) and every detection standing on this cycle's bars (built when first read). The first
    two are Arrow tables (what the lake writes) with pandas views."""

    def __init__(self, snapshot: pa.Table, opportunities: pa.Table, standing=None) -> None:
        self.snapshot_table = snapshot
        self.opportunities_table = opportunities
        self._standing = standing

    @cached_property
    def snapshot(self) -> pd.DataFrame:
        return schema.to_pandas(self.snapshot_table)

    @cached_property
    def opportunities(self) -> pd.DataFrame:
        return schema.to_pandas(self.opportunities_table)

    @cached_property
    def standing(self) -> pd.DataFrame:
        if self._standing is None:
            return schema.empty_frame("opportunities")
        return self._standing() if callable(self._standing) else self._standing


class LiveEngine:
    """Streaming state + detectors + scoring for a universe, fed one cycle at a time."""

    def __init__(self, universe: pd.DataFrame | None, interval: str = "1m", *, tz: str = DEFAULT_TZ,
                 weights: ScoreWeights | dict | None = None, cooldown: int | str = 15,
                 params: DetectorParams | None = None) -> None:
        self.interval = interval
        self.tz = tz
        self.params = params or DetectorParams()
        self.weights = ScoreWeights.from_config(weights)
        self.cooldown = Cooldown(cooldown, interval)
        self.universe = universe
        self.sectors = universe.drop_duplicates("symbol").set_index("symbol")["sector"] if universe is not None and "sector" in universe else None
        self.state = LiveState(universe, interval, tz)
        daily = interval.strip().lower() == "1d"
        self.history = self.params.history_bars(year=daily)
        self.window = BarWindow(self.history, WINDOW_COLUMNS, pivot_k=self.params.pivot_k,
                                pivot_keep=self.params.level_count + 1)
        self.kinds = [k for k, d in DETECTORS.items() if daily or not d.daily_only]
        self._labels_of: tuple[pd.Index, tuple[pa.Array, pa.Array | None]] | None = None
        self._snapshot_rows = Positions()  # window row of each snapshot symbol
        self._to_window: tuple[pd.Index, np.ndarray] | None = None  # (window names, window row of each state row)

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
            engine.cooldown.seed(recent)
        return engine

    def update(self, bars: pd.DataFrame, now: pd.Timestamp) -> CycleOutput:
        """Fold in a cycle's valid bars; return the snapshot, the new opportunities and all standing ones."""
        applied = self.state.apply(bars)
        updated = None if applied is None else self.window.push_arrays(
            applied.symbols, applied.ts, applied.columns, self._window_rows(applied.rows),
            applied.matrix.T if applied.matrix is not None and self.state.matrix_columns == self.window.columns else None)
        symbols, columns = self.state.snapshot_columns(now)
        if applied is None or not len(symbols):
            return CycleOutput(self.state.snapshot_table(symbols, columns), schema.empty("opportunities"))
        names = self.window.names
        want = np.zeros(len(names), bool)
        want[updated] = True
        dense = self.window.dense()
        last = self.window.run > 0  # the newest slot holds a usable bar
        panel = LivePanel(self.window, self.interval, self.params, want=want, history=self.history, dense=dense,
                          labels=self._labels(names))
        found = panel.found(self.kinds)
        rows, kinds, sides, scores = found.rows, found.kind, found.direction, found.score

        score = np.full(len(names), np.nan)
        signals = _join_kinds(len(names), rows, kinds)
        r = np.flatnonzero(dense & last)
        values = panel_factors(panel, r, _signal_values(len(names), rows, sides, scores)[r])
        score[r] = factor_points(values, self.weights)[0]
        keep = self.cooldown.admit(Coded(rows, names), Coded(kinds, KINDS), Coded(sides, SIDES), panel.ts[0])
        new = [opportunity_table(panel, found, True, now, keep)]
        standing = [lambda: opportunity_table(panel, found, True, now)]

        holes = np.flatnonzero(~dense & last)  # a hole in the window: the general path
        if len(holes):
            hole_standing, hole_new = self._general(holes, want, score, signals, now)
            new.append(hole_new)
            standing.append(lambda: schema.conform("opportunities", hole_standing))
        at = self._snapshot_rows(names, symbols)
        columns["score"], columns["signals"] = score[at], signals.array(at)
        snapshot = self.state.snapshot_table(symbols, columns)
        return CycleOutput(snapshot, _by_symbol(new), lambda: schema.to_pandas(_by_symbol([f() for f in standing])))

    def _window_rows(self, state_rows: np.ndarray) -> np.ndarray:
        """Window rows of state rows: the two keep the symbols in different orders (arrival, name); the map
        is rebuilt when either gains a symbol."""
        names, to_window = self.state.symbols, self._to_window
        if to_window is None or len(to_window[1]) != len(names) or to_window[0] is not self.window.names:
            rows = self.window.rows(np.asarray(names, dtype=object))
            to_window = self._to_window = self.window.names, rows
        return to_window[1][state_rows]

    def _general(self, rows: np.ndarray, want: np.ndarray, score: np.ndarray, signals: "_Signals", now
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Detections, scores and kinds of window ``rows`` through ``detect``/``factor_values`` on a frame."""
        names = self.window.names
        frame = self.window.frame(rows)
        frame["interval"] = self.interval
        standing = detect(frame, last_only=True, interval=self.interval, params=self.params, now=now, tz=self.tz)
        standing = standing[want[names.get_indexer(standing["symbol"])]].reset_index(drop=True)
        if len(standing) and self.sectors is not None:
            standing = standing.assign(sector=standing["symbol"].map(self.sectors))
        values = factor_values(frame, standing, interval=self.interval)
        at = names.get_indexer(values["symbol"])
        score[at] = factor_points({f: values[f].to_numpy(dtype=np.float64) for f in FACTORS}, self.weights)[0]
        for s, k in standing.groupby("symbol", sort=False)["kind"]:
            signals.set(names.get_loc(s), k)
        keep = self.cooldown.admit(*(standing[c].astype(str).to_numpy(dtype=object) for c in ("symbol", "kind", "direction")),
                                   standing["ts"].iloc[0] if len(standing) else None)
        return standing, schema.conform("opportunities", standing[keep])

    def _labels(self, names: pd.Index) -> tuple[pa.Array, pa.Array | None]:
        """The window symbols' names and sectors as Arrow arrays, made again only when the symbols change."""
        if self._labels_of is None or self._labels_of[0] is not names:
            sectors = None if self.sectors is None else \
                pa.array(self.sectors.reindex(names).astype(object).to_numpy(), pa.string(), from_pandas=True)
            self._labels_of = names, (pa.array(np.asarray(names, object), pa.string()), sectors)
        return self._labels_of[1]


def _signal_values(n: int, rows: np.ndarray, sides: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``scoring._signal_values`` per window row from the standing arrays (sorted by row): the net is summed
    per symbol in row order with pandas' compensated (Kahan) sum, so it equals the groupby's."""
    from mintel.analytics import _score_kernel as _k

    total, seen = _k.signal_sums(n, rows, sides, scores)
    return np.where(seen & np.isfinite(total), 0.5 + 0.5 * np.tanh(np.nan_to_num(total)), 0.5)


class _Signals:
    """Per window row, the bit mask of its kinds (ranks in ``KINDS``, 64 at most); as text, their names joined
    by "," in ``KINDS`` order (by name), null without any."""

    _NAMES = np.frombuffer("".join(KINDS).encode(), np.uint8).copy()
    _NAME_AT = np.cumsum([0] + [len(k.encode()) for k in KINDS]).astype(np.int64)
    _RANK = {k: i for i, k in enumerate(KINDS)}

    def __init__(self, masks: np.ndarray) -> None:
        self.masks = masks

    def set(self, row: int, kinds) -> None:
        """Row ``row``'s kinds (names)."""
        self.masks[row] = np.uint64(sum(1 << r for r in {self._RANK[k] for k in kinds}))

    def array(self, at: np.ndarray) -> pa.Array:
        """Rows ``at`` as an Arrow string array, written in one compiled pass (no Python string per row)."""
        from mintel.analytics import _text_kernel as _k

        masks = np.ascontiguousarray(self.masks[at])
        offsets, data = _k.join_bits(masks, self._NAMES, self._NAME_AT)
        some = masks != 0
        valid = None if some.all() else pa.py_buffer(np.packbits(some, bitorder="little"))
        return pa.Array.from_buffers(pa.string(), len(masks), [valid, pa.py_buffer(offsets), pa.py_buffer(data)])


def _join_kinds(n: int, rows: np.ndarray, kinds: np.ndarray) -> _Signals:
    """Per window row, its kinds (ranks) as a bit mask."""
    from mintel.analytics import _score_kernel as _k

    return _Signals(_k.row_masks(n, rows, kinds))


def _by_symbol(tables: list[pa.Table]) -> pa.Table:
    """OPPORTUNITIES tables as one, sorted by symbol (each is sorted by (symbol, ts, kind) already)."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return schema.empty("opportunities")
    if len(tables) == 1:
        return tables[0]
    order = np.argsort(pa.concat_tables(tables).column("symbol").to_numpy(zero_copy_only=False).astype(str), kind="stable")
    return pa.concat_tables(tables).take(pa.array(order))
