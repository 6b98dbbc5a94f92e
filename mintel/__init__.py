"""mintel: a Jupyter-centric market-intelligence workbench.

The promised surface is re-exported here; everything else is reachable but may change. Heavy parts
(analytics, the simulator) load on first use, so ``import mintel`` stays fast.
"""

from mintel.config import load_config
from mintel.errors import ConfigError, DataError, LakeError, MintelError, ProviderError
from mintel.lake import Lake

__version__ = "0.1.0"

_LAZY = {
    "scan": "mintel.analytics.scan",
    "opportunities": "mintel.analytics.scan",
    "indicators": "mintel.analytics.scan",
    "volume_analysis": "mintel.analytics.scan",
    "sentiment": "mintel.analytics.scan",
    "load_universe": "mintel.universe",
    "Watchlists": "mintel.universe",
    "health": "mintel.status",
    "backfill_indicators": "mintel.analytics.history",
}

__all__ = ["Lake", "load_config", "MintelError", "ConfigError", "DataError", "LakeError", "ProviderError",
           "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mintel' has no attribute {name!r}")
