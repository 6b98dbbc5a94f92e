"""The snapshot: one row per symbol with its latest price, day figures and (later) indicators and score.

Pure functions of DataFrames. `DayState` carries what a snapshot needs beyond the latest bar (the
session's open/high/low/volume and the previous session's close) from cycle to cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mintel import schema

DAY_COLUMNS = ["symbol", "session", "open", "high", "low", "day_volume", "close", "prev_close", "ts", "interval", "source"]


def session_of(ts: pd.Series) -> pd.Series:
    """The session a bar belongs to: its UTC date (NSE and US sessions each fall within one UTC day)."""
    return ts.dt.floor("D")


@dataclass
class DayState:
    """Per symbol: the current session's open/high/low/volume, the last close, the previous session's close."""

    frame: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DAY_COLUMNS))

    def update(self, bars: pd.DataFrame) -> None:
        """Fold new bars (any symbols, any order, possibly several per symbol) into the state."""
        if bars.empty:
            return
        bars = bars.assign(session=session_of(bars["ts"])).sort_values(["session", "symbol", "ts"], kind="stable")
        agg = bars.groupby(["session", "symbol"], sort=True, observed=True).agg(
            open=("open", "first"), high=("high", "max"), low=("low", "min"), day_volume=("volume", "sum"),
            close=("close", "last"), ts=("ts", "last"), interval=("interval", "last"), source=("source", "last"),
        )
        state = self.frame.set_index("symbol")
        for session, rows in agg.groupby(level="session", sort=True):
            rows = rows.droplevel("session")
            old = state.reindex(rows.index)
            old_session = pd.to_datetime(old["session"], utc=True)
            same = (old_session == session).to_numpy()
            earlier = (old_session < session).to_numpy()
            o = old[["open", "high", "low", "day_volume", "close", "prev_close"]].to_numpy(dtype=float)
            r = rows[["open", "high", "low", "day_volume"]].to_numpy(dtype=float)
            merged = pd.DataFrame(
                {
                    "session": session,
                    "open": np.where(same, o[:, 0], r[:, 0]),
                    "high": np.where(same, np.fmax(o[:, 1], r[:, 1]), r[:, 1]),
                    "low": np.where(same, np.fmin(o[:, 2], r[:, 2]), r[:, 2]),
                    "day_volume": np.where(same, o[:, 3] + r[:, 3], r[:, 3]),
                    "close": rows["close"].to_numpy(dtype=float),
                    "prev_close": np.where(same, o[:, 5], np.where(earlier, o[:, 4], np.nan)),
                    "ts": rows["ts"].to_numpy(),
                    "interval": rows["interval"].to_numpy(dtype=object),
                    "source": rows["source"].to_numpy(dtype=object),
                },
                index=rows.index,
            )
            state = pd.concat([state.drop(index=rows.index, errors="ignore"), merged]) if len(state) else merged
        state.index.name = "symbol"
        self.frame = state.reset_index()[DAY_COLUMNS]

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> "DayState":
        state = cls()
        state.update(bars)
        return state


def build_snapshot(day: DayState, universe: pd.DataFrame | None = None, *, now: pd.Timestamp | None = None,
                   latest_volume: pd.Series | None = None) -> pd.DataFrame:
    """Snapshot rows (mintel.schema.SNAPSHOT) from the day state, with names and sectors from the universe."""
    f = day.frame
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    out = pd.DataFrame(
        {
            "symbol": f["symbol"].astype(str),
            "interval": f["interval"],
            "ts": pd.to_datetime(f["ts"], utc=True),
            "price": f["close"].astype(float),
            "open": f["open"].astype(float),
            "high": f["high"].astype(float),
            "low": f["low"].astype(float),
            "prev_close": f["prev_close"].astype(float),
            "day_volume": f["day_volume"].astype(float),
            "source": f["source"],
        }
    )
    base = out["prev_close"].where(out["prev_close"].notna(), out["open"])
    out["change_pct"] = (out["price"] / base - 1.0) * 100.0
    if latest_volume is not None:
        out["volume"] = out["symbol"].map(latest_volume).astype(float)
    if universe is not None and len(universe):
        meta = universe.drop_duplicates("symbol").set_index("symbol")
        out["name"] = out["symbol"].map(meta["name"]) if "name" in meta else None
        out["sector"] = out["symbol"].map(meta["sector"]) if "sector" in meta else None
    out["updated_at"] = now
    out = out.sort_values("symbol", kind="stable").reset_index(drop=True)
    return schema.to_pandas(schema.conform("snapshot", out))
