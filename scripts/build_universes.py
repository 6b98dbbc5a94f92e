"""Regenerate the bundled universes in data/universes/ from offline sources.

NSE lists come from NSE's own CSV files (``Company Name,Industry,Symbol,Series,ISIN Code``);
US lists come from the index constituents shipped inside the ``pytickersymbols`` package.
Nothing here touches the network.

    python scripts/build_universes.py [--source /work/shared/data/universes] [--out data/universes]
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

COLUMNS = ["symbol", "name", "sector", "industry", "exchange"]
DEFAULT_SOURCE = Path("/work/shared/data/universes")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "universes"

# pytickersymbols mixes GICS sectors, Refinitiv sectors and free-text Wikipedia industries in one
# list; these names (and their aliases) are sector-level, everything else is a candidate industry.
# In precedence order: when a stock lists two sectors (REITs list Financials too, utilities Energy),
# the more specific one, which is the GICS sector, comes first.
GICS_SECTORS = [
    "Real Estate", "Health Care", "Utilities", "Consumer Discretionary", "Communication Services",
    "Information Technology", "Financials", "Consumer Staples", "Materials", "Industrials", "Energy",
]
SECTOR_ALIASES = {
    "financial services": "Financials", "healthcare": "Health Care", "health care": "Health Care",
    "technology": "Information Technology", "information technology": "Information Technology",
    "real estate investment trust": "Real Estate", "real estate": "Real Estate",
    "consumer cyclicals": "Consumer Discretionary", "consumer non-cyclicals": "Consumer Staples",
    "basic materials": "Materials", "industrial goods": "Industrials",
}
MAX_INDUSTRY_CHARS = 60  # longer entries are run-on Wikipedia infobox text, not an industry


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def nse_rows(path: Path) -> list[dict]:
    """Rows of an NSE index list; NSE's "Industry" is sector-level, so it goes to ``sector``."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [
            {
                "symbol": r["Symbol"].strip().upper(),
                "name": r["Company Name"].strip(),
                "sector": r["Industry"].strip(),
                "industry": "",
                "exchange": "NSE",
            }
            for r in csv.DictReader(f)
        ]


def _clean(text: str) -> str:
    return re.sub(r"\s+,", ",", re.sub(r"\s+", " ", text)).strip()


def sector_and_industry(industries: list[str]) -> tuple[str, str]:
    """(GICS sector, first finer industry) from pytickersymbols' mixed ``industries`` list."""
    entries = [_clean(e) for e in industries]
    sector = next((s for s in GICS_SECTORS if s in entries), "")
    industry = next(
        (e for e in entries if e not in GICS_SECTORS and e.lower() not in SECTOR_ALIASES and len(e) <= MAX_INDUSTRY_CHARS),
        "",
    )
    if not sector:
        sector = next((SECTOR_ALIASES[e.lower()] for e in entries if e.lower() in SECTOR_ALIASES), "")
    return sector, industry


def us_exchange(stock: dict) -> str:
    """NYSE or NASDAQ from the USD Google ticker or the "traded as" line; else US."""
    for listing in stock.get("symbols", []):
        prefix = listing.get("google", "").partition(":")[0]
        if listing.get("currency") == "USD" and prefix in ("NYSE", "NASDAQ"):
            return prefix
    traded_as = (stock.get("metadata") or {}).get("traded_as", "")
    found = {m.upper() for m in re.findall(r"\b(NYSE|Nasdaq|NASDAQ)\s*:", traded_as)}
    return found.pop() if len(found) == 1 else "US"


def us_rows(index: str) -> list[dict]:
    from pytickersymbols import PyTickerSymbols

    rows = []
    for stock in PyTickerSymbols().get_stocks_by_index(index):
        sector, industry = sector_and_industry(stock.get("industries") or [])
        rows.append(
            {
                "symbol": stock["symbol"].strip().upper().replace("-", "."),  # canonical share class: BRK.B
                "name": _clean(stock.get("name") or ""),
                "sector": sector,
                "industry": industry,
                "exchange": us_exchange(stock),
            }
        )
    return sorted(rows, key=lambda r: r["symbol"])


def dedup(rows: list[dict]) -> list[dict]:
    seen: set[str] = set()
    return [r for r in rows if not (r["symbol"] in seen or seen.add(r["symbol"]))]


def build(source: Path, out: Path) -> dict[str, int]:
    """Write the four bundled universes; returns the row count of each."""
    sp500, sp600 = us_rows("S&P 500"), us_rows("S&P 600")
    universes = {
        "nifty50": dedup(nse_rows(source / "ind_nifty50list.csv")),
        "nifty500": dedup(nse_rows(source / "ind_nifty500list.csv")),
        "sp500": dedup(sp500),
        "us1500": sorted(dedup(sp500 + sp600), key=lambda r: r["symbol"]),
    }
    for name, rows in universes.items():
        write_csv(rows, out / f"{name}.csv")
    return {name: len(rows) for name, rows in universes.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with NSE's ind_nifty*list.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the universe CSVs go")
    args = parser.parse_args(argv)
    for name, count in build(args.source, args.out).items():
        print(f"{name}: {count} symbols")


if __name__ == "__main__":
    main()
