"""Universes (bundled symbol lists with sector/industry), watchlists, and provider ticker mapping.

A canonical symbol is the exchange's own spelling, upper-case (``RELIANCE``, ``M&M``, ``BAJAJ-AUTO``
on NSE; ``BRK.B`` in the US); each provider's ticker is derived from it here and nowhere else.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mintel.errors import DataError

COLUMNS = ["symbol", "name", "sector", "industry", "exchange"]
UNIVERSES_DIR = Path(__file__).resolve().parent.parent / "data" / "universes"
BUNDLED = {
    "nifty50": "NIFTY 50 constituents (NSE), with NSE's sector classification",
    "nifty500": "NIFTY 500 constituents (NSE), with NSE's sector classification",
    "sp500": "S&P 500 constituents (NYSE/NASDAQ), GICS sector and industry",
    "us1500": "S&P 500 + S&P 600 constituents (NYSE/NASDAQ), GICS sector and industry",
}
US_EXCHANGES = {"US", "NYSE", "NASDAQ", "XNYS", "XNAS", "AMEX", "ARCA", "BATS"}

# Column names a user's CSV may use, lower-case; NSE's own list format is among them.
_ALIASES = {
    "symbol": ["symbol", "ticker", "tradingsymbol", "code"],
    "name": ["name", "company name", "company", "security name"],
    "sector": ["sector"],
    "industry": ["industry"],
    "exchange": ["exchange", "market"],
}


def list_universes() -> pd.DataFrame:
    """The bundled universes: name, symbol count, exchanges and a one-line description."""
    rows = []
    for name, description in BUNDLED.items():
        frame = _load_bundled(name)
        exchanges = ",".join(sorted(frame["exchange"].unique()))
        rows.append({"name": name, "symbols": len(frame), "exchanges": exchanges, "description": description})
    return pd.DataFrame(rows, columns=["name", "symbols", "exchanges", "description"])


def load_universe(name_or_path: str | os.PathLike, default_exchange: str = "NSE") -> pd.DataFrame:
    """A universe as columns symbol,name,sector,industry,exchange, from a bundled name or a user CSV.

    The CSV needs only a ``symbol`` column (any case); NSE's own list format is read as it is.
    """
    text = str(name_or_path).strip()
    if text.lower() in BUNDLED:
        return _load_bundled(text.lower()).copy()
    path = Path(text).expanduser()
    if not path.is_file():
        if path.suffix or os.sep in text or "/" in text:
            raise DataError(f"{text}: no such file")
        raise DataError(f"{text}: unknown universe (known: {', '.join(BUNDLED)}; or give a CSV path)")
    return _read_csv(path, default_exchange)


def bundled_metadata() -> pd.DataFrame:
    """Every bundled universe's symbols with name, sector, industry and exchange (first list wins)."""
    return pd.concat([_load_bundled(n) for n in BUNDLED], ignore_index=True).drop_duplicates("symbol").reset_index(drop=True)


@functools.lru_cache(maxsize=None)
def _load_bundled(name: str) -> pd.DataFrame:
    return _read_csv(UNIVERSES_DIR / f"{name}.csv", default_exchange="")


def _read_csv(path: Path, default_exchange: str) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file, no symbols") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: unreadable ({reason})") from None
    lower = {str(c).strip().lower(): c for c in raw.columns}
    found = {col: next((lower[a] for a in aliases if a in lower), None) for col, aliases in _ALIASES.items()}
    if found["symbol"] is None:
        raise DataError(f"{path}: no symbol column (columns: {', '.join(map(str, raw.columns))})")
    if found["sector"] is None and found["industry"] is not None and "isin code" in lower:
        # NSE's list format: its "Industry" is a sector-level classification.
        found["sector"], found["industry"] = found["industry"], None
    out = pd.DataFrame({col: (raw[src].astype(str).str.strip() if src is not None else "") for col, src in found.items()})
    out["symbol"] = out["symbol"].str.upper()
    out["exchange"] = out["exchange"].str.upper().replace("", default_exchange.upper())
    out = out[out["symbol"] != ""].drop_duplicates("symbol", keep="first").reset_index(drop=True)
    if out.empty:
        raise DataError(f"{path}: no symbols")
    return out[COLUMNS]


# --- provider tickers -------------------------------------------------------------------------


def provider_ticker(symbol: str, exchange: str, provider: str) -> str:
    """The ticker ``provider`` knows a canonical symbol by (``RELIANCE``/NSE at yahoo: ``RELIANCE.NS``).

    Alpha Vantage lists Indian stocks on BSE only (``RELIANCE.BSE``; its NSE listings were dropped),
    so NSE symbols go there as ``.BSE`` too: BSE's scrip ids match NSE symbols for index stocks.
    twelvedata takes the exchange as a separate parameter, so its ticker is the symbol itself.
    """
    symbol, exchange, provider = symbol.strip().upper(), (exchange or "").strip().upper(), provider.lower()
    if provider == "yahoo":
        if exchange == "NSE":
            return f"{symbol}.NS"
        if exchange == "BSE":
            return f"{symbol}.BO"
        if exchange in US_EXCHANGES:
            return symbol.replace(".", "-")  # share classes: BRK.B -> BRK-B
        return symbol
    if provider == "alphavantage" and exchange in ("NSE", "BSE"):
        return f"{symbol}.BSE"
    return symbol


def canonical_symbol(ticker: str, provider: str) -> tuple[str, str | None]:
    """(symbol, exchange) of a provider's ticker; exchange is None when the ticker does not say."""
    ticker, provider = ticker.strip().upper(), provider.lower()
    if provider == "yahoo":
        base, dot, suffix = ticker.rpartition(".")
        if dot and suffix == "NS":
            return base, "NSE"
        if dot and suffix == "BO":
            return base, "BSE"
        if re.fullmatch(r"[A-Z]+(-[A-Z]{1,2})?", ticker):
            return ticker.replace("-", "."), "US"
        return ticker, None  # indices (^NSEI), currencies, other markets' suffixes
    if provider == "alphavantage":
        base, dot, suffix = ticker.rpartition(".")
        if dot and suffix in ("BSE", "NSE"):
            return base, suffix
        if re.fullmatch(r"[A-Z]+(\.[A-Z]{1,2})?", ticker):
            return ticker, "US"
        return ticker, None
    return ticker, None


# --- watchlists -------------------------------------------------------------------------------

_WATCHLIST_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Watchlists:
    """Named symbol lists, one ``<name>.txt`` per list (one symbol a line), replaced atomically."""

    def __init__(self, root: Path | str | None = None) -> None:
        if root is None:
            root = os.environ.get("MINTEL_WATCHLISTS") or "data/watchlists"
        self.root = Path(root).expanduser()

    def names(self) -> list[str]:
        """Every watchlist's name, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.txt") if _WATCHLIST_NAME.fullmatch(p.stem))

    def get(self, name: str) -> list[str]:
        """The symbols of a watchlist, in the order they were added."""
        path = self._existing(name)
        lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
        return _normalize(line for line in lines if line and not line.startswith("#"))

    def create(self, name: str, symbols: Iterable[str] = ()) -> list[str]:
        """A new watchlist; DataError when one of that name exists."""
        path = self._path(name)
        if path.exists():
            raise DataError(f"watchlist {name!r}: already exists")
        return self._write(path, _normalize(symbols))

    def add(self, name: str, symbols: Iterable[str] | str) -> list[str]:
        """Append symbols not already on the watchlist; returns the new list."""
        current = self.get(name)
        return self._write(self._path(name), _normalize([*current, *_normalize(symbols)]))

    def remove(self, name: str, symbols: Iterable[str] | str) -> list[str]:
        """Drop symbols from the watchlist (absent ones are ignored); returns the new list."""
        drop = set(_normalize(symbols))
        return self._write(self._path(name), [s for s in self.get(name) if s not in drop])

    def delete(self, name: str) -> None:
        """Delete a watchlist."""
        self._existing(name).unlink()

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not _WATCHLIST_NAME.fullmatch(name):
            raise DataError(f"watchlist {name!r}: bad name (use 1-64 letters, digits, '_' or '-')")
        return self.root / f"{name}.txt"

    def _existing(self, name: str) -> Path:
        path = self._path(name)
        if not path.is_file():
            known = ", ".join(self.names()) or "none"
            raise DataError(f"watchlist {name!r}: no such watchlist in {self.root} (known: {known})")
        return path

    def _write(self, path: Path, symbols: list[str]) -> list[str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("".join(f"{s}\n" for s in symbols))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return symbols


def _normalize(symbols: Iterable[str] | str) -> list[str]:
    """Upper-cased, stripped, de-duplicated symbols in their first order; DataError on blanks inside."""
    if isinstance(symbols, str):
        symbols = [symbols]
    out: dict[str, None] = {}
    for raw in symbols:
        symbol = str(raw).strip().upper()
        if not symbol:
            continue
        if re.search(r"\s", symbol):
            raise DataError(f"symbol {raw!r}: contains whitespace")
        out.setdefault(symbol, None)
    return list(out)
