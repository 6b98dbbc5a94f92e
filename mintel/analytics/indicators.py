"""Technical indicators: each declared once, computed in batch with TA-Lib.

``INDICATOR_SPECS`` is the single declaration of every indicator: its output columns (the names of
``mintel.schema.INDICATORS``), parameters and warm-up. ``compute_indicators`` (here, TA-Lib per
symbol) and ``mintel.analytics.streaming.StreamingIndicators`` (numpy, one bar at a time across the
universe) both read their periods from it, and the tests check both engines against it.

Conventions shared by both engines:

- Values equal TA-Lib's functions as TA-Lib computes them (its RSI/ATR Wilder seeding, EMA seeded
  with the SMA of the first ``period`` values, MACD's fast EMA seeded on the 12 bars that end where
  the slow EMA starts, so every MACD column starts at bar 33), with TA-Lib's global settings left
  at their defaults (no unstable period, default compatibility).
- A bar is *usable* when its high, low, close and volume are finite and it has a symbol (and a ts,
  when ts is given). Indicators run over each symbol's usable bars only, as if the others were
  absent: unusable bars get nulls (NaN) and do not break the series. Warm-ups count usable bars.
- Warm-up rows are NaN. Too short a history, an empty frame, gaps or NaN bars give NaN, never an
  exception.
- Intraday sessions are calendar days in the exchange's time zone (``tz``) unless keys are given;
  "minute of the day" is minutes since local midnight of the bar open.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mintel.analytics.intraday import session_grid, volume_ratio, volume_ratio_grid, vwap, vwap_grid
from mintel.analytics.keys import DEFAULT_TZ, is_intraday, session_and_minute, to_utc_ns
from mintel.errors import DataError
from mintel.schema import INDICATORS

_NAT = np.iinfo(np.int64).min  # NaT as int64
_NO_TS = np.empty(0, np.int64)



@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator: what it is called, what it outputs, its parameters and its warm-up.

    ``warmup`` is the number of usable bars before the first non-null value. ``daily=False`` means
    the indicator is null on daily (and longer) bars. ``warmup_sessions`` replaces ``warmup`` on
    intraday bars when the warm-up is counted in sessions rather than bars.
    """

    name: str
    outputs: tuple[str, ...]
    params: dict = field(default_factory=dict, hash=False)
    warmup: int = 0
    inputs: tuple[str, ...] = ("close",)
    talib: str | None = None  # the TA-Lib function whose values these are
    daily: bool = True
    warmup_sessions: int | None = None
    extra: bool = False  # computed only when asked for (see compute_indicators' ``extra``)
    description: str = ""


INDICATOR_SPECS: tuple[IndicatorSpec, ...] = (
    IndicatorSpec("rsi", ("rsi",), {"period": 14}, warmup=14, talib="RSI",
                  description="Wilder's RSI; 0 when the average gain and loss are both 0."),
    IndicatorSpec("macd", ("macd", "macd_signal", "macd_hist"), {"fast": 12, "slow": 26, "signal": 9}, warmup=33,
                  talib="MACD", description="TA-Lib MACD: all three columns start at bar slow-1 + signal-1."),
    IndicatorSpec("bbands", ("bb_upper", "bb_middle", "bb_lower"), {"period": 20, "nbdev": 2.0}, warmup=19,
                  talib="BBANDS", description="Bollinger Bands on an SMA, population standard deviation."),
    IndicatorSpec("sma_20", ("sma_20",), {"period": 20}, warmup=19, talib="SMA"),
    IndicatorSpec("sma_50", ("sma_50",), {"period": 50}, warmup=49, talib="SMA"),
    IndicatorSpec("ema_20", ("ema_20",), {"period": 20}, warmup=19, talib="EMA"),
    IndicatorSpec("atr", ("atr",), {"period": 14}, warmup=14, inputs=("high", "low", "close"), talib="ATR"),
    IndicatorSpec("obv", ("obv",), {}, warmup=0, inputs=("close", "volume"), talib="OBV"),
    IndicatorSpec(
        "vwap", ("vwap",), {}, warmup=0, inputs=("high", "low", "close", "volume"), daily=False,
        description="Session VWAP: cumulative typical price x volume / cumulative volume, reset at each "
        "session's first bar; null while the session's volume is 0 and on daily bars.",
    ),
    IndicatorSpec(
        "volume_ratio", ("volume_ratio",), {"window": 20}, warmup=20, inputs=("volume",), warmup_sessions=1,
        description="Daily: volume / mean volume of the previous 20 bars. Intraday: volume / mean volume of "
        "the symbol's bars at the same minute of the day (exchange time) in its previous up-to-20 sessions "
        "that had one. Null in warm-up and when that mean is 0.",
    ),
    IndicatorSpec("sma_200", ("sma_200",), {"period": 200}, warmup=199, talib="SMA", extra=True,
                  description="For breadth (share of symbols above their SMA 200)."),
)

SPECS: dict[str, IndicatorSpec] = {s.name: s for s in INDICATOR_SPECS}
EXTRA_OUTPUTS: tuple[str, ...] = tuple(c for s in INDICATOR_SPECS if s.extra for c in s.outputs)
SPEC_OF_OUTPUT: dict[str, IndicatorSpec] = {c: s for s in INDICATOR_SPECS for c in s.outputs}

if tuple(c for s in INDICATOR_SPECS if not s.extra for c in s.outputs) != INDICATORS:  # pragma: no cover
    raise RuntimeError("mintel.analytics.indicators: declarations and mintel.schema.INDICATORS disagree")


def output_columns(extra=()) -> tuple[str, ...]:
    """The indicator columns computed: ``schema.INDICATORS`` then the requested extras, in order."""
    extra = (extra,) if isinstance(extra, str) else tuple(extra)
    unknown = [e for e in extra if e not in EXTRA_OUTPUTS]
    if unknown:
        raise DataError(f"extra={unknown}: unknown extra indicator (known: {', '.join(EXTRA_OUTPUTS)})")
    return INDICATORS + tuple(e for e in EXTRA_OUTPUTS if e in extra)


# ---------------------------------------------------------------------------------------------------
# batch


def compute_indicators(
    bars: pd.DataFrame,
    interval: str = "1d",
    tz: str = DEFAULT_TZ,
    *,
    session=None,
    extra=(),
) -> pd.DataFrame:
    """``bars`` with the indicator columns added (``schema.INDICATORS``, then ``extra``).

    ``bars``: many symbols, sorted by (symbol, ts) (other orders are sorted here, at a cost), with
    columns symbol, high, low, close, volume and ts (ts may be absent on daily bars). ``session``: a
    column name or an array of session keys for intraday VWAP and volume ratio, default the calendar
    day of ts in ``tz``. ``extra``: optional outputs, e.g. ``("sma_200",)``.
    """
    columns = output_columns(extra)
    intraday = is_intraday(interval)
    missing = [c for c in ("symbol", "high", "low", "close", "volume") if c not in bars.columns]
    if intraday and "ts" not in bars.columns:
        missing.append("ts")
    if missing:
        raise DataError(f"bars: column {', '.join(map(repr, missing))} missing")
    n = len(bars)
    base = bars.drop(columns=[c for c in columns if c in bars.columns])
    if n == 0:
        return base.assign(**{c: pd.Series(np.empty(0), index=bars.index, dtype="float64") for c in columns})

    has_ts = "ts" in bars.columns
    ts_ns = to_utc_ns(bars["ts"]) if has_ts else None
    symbols = _arrow_strings(bars["symbol"])
    change = _symbol_changes(symbols)
    order = None
    if not _is_sorted(symbols, change, ts_ns):
        order = _sort_order(bars, has_ts)
        symbols = symbols.take(pa.array(order))
        change = _symbol_changes(symbols)
        ts_ns = ts_ns[order] if has_ts else None

    def col(name):
        a = bars[name].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.ascontiguousarray(a if order is None else a[order])

    high, low, close, volume = col("high"), col("low"), col("close"), col("volume")
    usable = _fk().usable(high, low, close, volume, np.ascontiguousarray(ts_ns, np.int64) if has_ts else _NO_TS)
    if symbols.null_count:
        usable &= pc.is_valid(symbols).to_numpy(zero_copy_only=False)
    keep = None if usable.all() else np.flatnonzero(usable)
    if keep is None:
        starts = np.flatnonzero(change)
        group = None
    else:
        group = np.cumsum(change)[keep]  # group id of each usable row
        high, low, close, volume = high[keep], low[keep], close[keep], volume[keep]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(keep) else np.empty(0, np.int64)
    m = len(close)
    ends = np.r_[starts[1:], m].astype(np.int64) if len(starts) else starts

    # One row per computed column; sma_20 is not among them (it is bb_middle, see _talib_groups).
    row = {c: i for i, c in enumerate(c for c in columns if c != "sma_20")}
    out = np.empty((len(row), m))
    _talib_groups(out, row, starts, ends, high, low, close, volume, intraday=intraday)

    vr = out[row["volume_ratio"]]
    if intraday and m:
        window = SPECS["volume_ratio"].params["window"]
        ts_used = ts_ns if keep is None else ts_ns[keep]
        grid = session_grid(starts, ends, ts_used, tz) if session is None else None
        if grid is not None:  # every symbol has the same sessions of the same minutes: (symbol, session, minute) arrays
            vwap_grid(out[row["vwap"]], high, low, close, volume, grid, scratch=vr)
            volume_ratio_grid(vr, volume, grid, window)
        else:
            skey, minute = session_and_minute(ts_used, tz)
            if session is not None:
                skey = _session_keys(bars, session, order, n)
                skey = skey if keep is None else skey[keep]
            if group is None:
                group = np.repeat(np.arange(len(starts)), ends - starts)
            out[row["vwap"]] = vwap(high, low, close, volume, group, skey)
            if ((group[1:] == group[:-1]) & (skey[1:] != skey[:-1])).any():
                vr[:] = volume_ratio(volume, group, minute, window)
            else:  # every symbol within its first session: no same-minute history yet
                vr[:] = np.nan
    else:
        out[row["vwap"]] = np.nan
        # vr holds the mean volume of the previous window; turn it into the ratio in place.
        no_mean = ~(vr > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(volume, vr, out=vr)
        vr[no_mean] = np.nan

    if keep is not None or order is not None:
        full = np.full((len(row), n), np.nan)
        rows = np.arange(n) if keep is None else keep
        full[:, rows if order is None else order[rows]] = out
        out = full
    # Views of ``out``, no copy; bb_middle's row serves sma_20 too (copy-on-write keeps them apart).
    values = {c: out[row["bb_middle" if c == "sma_20" else c]] for c in columns}
    frame = pd.DataFrame(values, index=bars.index, copy=False)
    return pd.concat([base, frame], axis=1)


def _warmups(row: dict[str, int]) -> dict[str, int]:
    """Leading null bars of each output row in the batch buffer (vwap is filled separately)."""
    return {c: SPEC_OF_OUTPUT[c].warmup for c in row if c != "vwap"}


def _talib_groups(out, row, starts, ends, high, low, close, volume, *, intraday: bool = False) -> None:
    """TA-Lib per symbol on contiguous slices, written into ``out`` (one row per output column).

    There is no sma_20 row: TA-Lib's BBANDS middle band is its SMA, bit for bit (the same running
    sum; the tests hold both to talib.SMA), so bb_middle serves both. Row ``volume_ratio``
    receives the mean volume of the previous window, which the caller turns into the ratio;
    ``intraday``: that row is left for the caller (the intraday ratio is not an SMA).
    """
    lib = _talib_c()
    if lib is None:
        _talib_groups_wrapped(out, row, starts, ends, high, low, close, volume)
    else:
        _talib_groups_direct(lib, out, row, starts, ends, high, low, close, volume, intraday=intraday)


def _talib_groups_direct(lib, out, row, starts, ends, high, low, close, volume, *, intraday: bool = False) -> None:
    import ctypes

    p = {name: spec.params for name, spec in SPECS.items()}
    warm = _warmups(row)
    if intraday:
        del warm["volume_ratio"]
    m = out.shape[1]
    at = {c: out.ctypes.data + 8 * m * r for c, r in row.items()}  # address of each output row
    C, H, L, V = (a.ctypes.data for a in (close, high, low, volume))
    beg, nb = ctypes.c_int(), ctypes.c_int()
    pb, pn = ctypes.addressof(beg), ctypes.addressof(nb)
    names = ("rsi", "macd", "bb_upper", "sma_50", "ema_20", "atr", "volume_ratio")
    w_rsi, w_macd, w_bb, w_50, w_ema, w_atr, w_vr = (warm.get(c) for c in names)
    w_200 = warm.get("sma_200")
    _fill_warmups(out, row, warm, starts, ends)
    for s, e in zip(starts.tolist(), ends.tolist()):
        k, o = e - s, 8 * s
        last, rc = k - 1, 0
        rc |= lib.OBV(0, last, C + o, V + o, pb, pn, at["obv"] + o)
        if k > w_rsi:
            rc |= lib.RSI(0, last, C + o, p["rsi"]["period"], pb, pn, at["rsi"] + o + 8 * w_rsi)
        if k > w_atr:
            rc |= lib.ATR(0, last, H + o, L + o, C + o, p["atr"]["period"], pb, pn, at["atr"] + o + 8 * w_atr)
        if k > w_bb:
            ob = o + 8 * w_bb
            rc |= lib.BBANDS(0, last, C + o, p["bbands"]["period"], p["bbands"]["nbdev"], p["bbands"]["nbdev"], 0,
                             pb, pn, at["bb_upper"] + ob, at["bb_middle"] + ob, at["bb_lower"] + ob)
            rc |= lib.EMA(0, last, C + o, p["ema_20"]["period"], pb, pn, at["ema_20"] + o + 8 * w_ema)
        if k > w_macd:
            om = o + 8 * w_macd
            rc |= lib.MACD(0, last, C + o, p["macd"]["fast"], p["macd"]["slow"], p["macd"]["signal"],
                           pb, pn, at["macd"] + om, at["macd_signal"] + om, at["macd_hist"] + om)
        if k > w_50:
            rc |= lib.SMA(0, last, C + o, p["sma_50"]["period"], pb, pn, at["sma_50"] + o + 8 * w_50)
        if w_vr is not None and k > w_vr:  # SMA of v[:-1], shifted one bar: the mean of the previous window
            rc |= lib.SMA(0, last - 1, V + o, p["volume_ratio"]["window"], pb, pn, at["volume_ratio"] + o + 8 * w_vr)
        if w_200 is not None and k > w_200:
            rc |= lib.SMA(0, last, C + o, p["sma_200"]["period"], pb, pn, at["sma_200"] + o + 8 * w_200)
        if rc:  # TA-Lib refused this slice: nulls, not an exception
            out[:, s:e] = np.nan


def _fill_warmups(out, row, warm, starts, ends) -> None:
    """NaN in the first ``warm`` bars of every symbol, for each output row (TA-Lib writes the rest)."""
    lengths = ends - starts
    if len(starts) and (lengths == lengths[0]).all() and starts[0] == 0 and out.shape[1] == len(starts) * lengths[0]:
        blocks = out.reshape(out.shape[0], len(starts), int(lengths[0]))  # equal histories: a view per symbol
        for c, w in warm.items():
            blocks[row[c], :, :w] = np.nan
        return
    for w in sorted(set(warm.values()) - {0}):
        rows = [row[c] for c in warm if warm[c] == w]
        steps = np.arange(w)
        cells = (starts[:, None] + steps)[steps < lengths[:, None]]
        out[np.ix_(rows, cells)] = np.nan


def _talib_groups_wrapped(out, row, starts, ends, high, low, close, volume) -> None:
    """The same through talib's Python functions (a new array per call, then copied): the fallback."""
    ta = _talib_functions()
    p = {name: spec.params for name, spec in SPECS.items()}
    bb, vr_w = p["bbands"], p["volume_ratio"]["window"]
    r = row
    for s, e in zip(starts.tolist(), ends.tolist()):
        c, h, lo, v = close[s:e], high[s:e], low[s:e], volume[s:e]
        out[r["rsi"], s:e] = ta.RSI(c, p["rsi"]["period"])
        out[r["macd"], s:e], out[r["macd_signal"], s:e], out[r["macd_hist"], s:e] = ta.MACD(
            c, p["macd"]["fast"], p["macd"]["slow"], p["macd"]["signal"]
        )
        bands = ta.BBANDS(c, bb["period"], bb["nbdev"], bb["nbdev"], 0)
        out[r["bb_upper"], s:e], out[r["bb_middle"], s:e], out[r["bb_lower"], s:e] = bands
        out[r["sma_50"], s:e] = ta.SMA(c, p["sma_50"]["period"])
        out[r["ema_20"], s:e] = ta.EMA(c, p["ema_20"]["period"])
        out[r["atr"], s:e] = ta.ATR(h, lo, c, p["atr"]["period"])
        out[r["obv"], s:e] = ta.OBV(c, v)
        out[r["volume_ratio"], s] = np.nan
        out[r["volume_ratio"], s + 1 : e] = ta.SMA(v[:-1], vr_w) if e - s > vr_w else np.nan
        if "sma_200" in r:
            out[r["sma_200"], s:e] = ta.SMA(c, p["sma_200"]["period"])


def _talib_functions():
    """TA-Lib's functions without the pandas/polars Series wrapper talib puts around each (~1 us a call)."""
    import types

    import talib

    names = ("RSI", "MACD", "BBANDS", "SMA", "EMA", "ATR", "OBV")
    return types.SimpleNamespace(**{n: getattr(getattr(talib, n), "__wrapped__", getattr(talib, n)) for n in names})


@functools.lru_cache(maxsize=1)
def _talib_c():
    """TA-Lib's C functions (ta_func.h signatures) through ctypes, or None where they cannot be found.

    Called this way TA-Lib writes straight into slices of the batch's output buffer; through the
    Python wrapper every call returns a new array that must then be copied, which cost ~40 % of a
    1000 x 1250-bar run. The library is the one talib itself loaded, so the values are the same.
    """
    import ctypes
    import types

    try:
        import talib  # noqa: F401 - initializes TA-Lib (TA_Initialize)
        from talib import _ta_lib

        lib = ctypes.CDLL(_ta_lib.__file__)
        I, D, P = ctypes.c_int, ctypes.c_double, ctypes.c_void_p  # noqa: N806
        signatures = {
            "RSI": [I, I, P, I, P, P, P],
            "SMA": [I, I, P, I, P, P, P],
            "EMA": [I, I, P, I, P, P, P],
            "MACD": [I, I, P, I, I, I, P, P, P, P, P],
            "BBANDS": [I, I, P, I, D, D, I, P, P, P, P, P],
            "ATR": [I, I, P, P, P, I, P, P, P],
            "OBV": [I, I, P, P, P, P, P],
        }
        funcs = {}
        for name, argtypes in signatures.items():
            f = getattr(lib, "TA_" + name)
            f.argtypes, f.restype = argtypes, I
            funcs[name] = f
        lookback = {
            "rsi": lib.TA_RSI_Lookback(14), "macd": lib.TA_MACD_Lookback(12, 26, 9), "ema_20": lib.TA_EMA_Lookback(20),
            "atr": lib.TA_ATR_Lookback(14), "sma_50": lib.TA_SMA_Lookback(50), "obv": lib.TA_OBV_Lookback(),
        }
    except (ImportError, OSError, AttributeError):  # pragma: no cover - platform without the symbols
        return None
    # The direct path places each output at the declared warm-up; it must be TA-Lib's lookback.
    if any(lookback[name] != SPECS[name].warmup for name in lookback):  # pragma: no cover
        return None
    return types.SimpleNamespace(**funcs)


def _arrow_strings(symbol: pd.Series) -> pa.Array:
    arr = pa.array(symbol, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    return arr


def _symbol_changes(symbols: pa.Array) -> np.ndarray:
    """True where a row starts a new run of equal symbols (row 0 included)."""
    n = len(symbols)
    if n <= 1:
        return np.ones(n, bool)
    diff = pc.fill_null(pc.not_equal(symbols.slice(1), symbols.slice(0, n - 1)), True)
    return np.r_[True, diff.to_numpy(zero_copy_only=False)]


def _is_sorted(symbols: pa.Array, change: np.ndarray, ts_ns) -> bool:
    """Sorted by (symbol, ts): the first symbols of the runs increase strictly, ts never decreases in a run."""
    firsts = symbols.take(pa.array(np.flatnonzero(change)))
    if firsts.null_count:
        return False
    if len(firsts) > 1 and not pc.all(pc.less(firsts.slice(0, len(firsts) - 1), firsts.slice(1))).as_py():
        return False
    return ts_ns is None or not _fk().ts_backwards(np.ascontiguousarray(ts_ns, np.int64), change)


def _fk():
    from mintel.analytics import _frame_kernel  # numba: loaded on the first batch, not on import

    return _frame_kernel


def _sort_order(bars: pd.DataFrame, has_ts: bool) -> np.ndarray:
    keys = ["symbol", "ts"] if has_ts else ["symbol"]
    tmp = bars[keys].reset_index(drop=True)
    return tmp.sort_values(keys, kind="stable", na_position="last").index.to_numpy()


def _session_keys(bars: pd.DataFrame, session, order, n: int) -> np.ndarray:
    values = bars[session] if isinstance(session, str) else session
    values = np.asarray(values)
    if len(values) != n:
        raise DataError(f"session: {len(values)} keys for {n} bars")
    codes = pd.factorize(values)[0].astype(np.int64)
    return codes if order is None else codes[order]
