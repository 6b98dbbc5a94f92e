"""mintel: a Jupyter-centric market-intelligence workbench.

The promised surface is re-exported here; everything else is reachable but may change.
"""

from mintel.errors import ConfigError, DataError, LakeError, MintelError, ProviderError
from mintel.lake import Lake

__version__ = "0.1.0"

__all__ = ["Lake", "MintelError", "ConfigError", "DataError", "LakeError", "ProviderError", "__version__"]
