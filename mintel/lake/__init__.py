"""The partitioned Parquet lake: `Lake` owns the layout, writes atomically and reads de-duplicated."""

from mintel.lake.catalog import Lake, default_root
from mintel.lake.maintenance import DEFAULT_RETENTION, CompactResult

__all__ = ["Lake", "default_root", "DEFAULT_RETENTION", "CompactResult"]
