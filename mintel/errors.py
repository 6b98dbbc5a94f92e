"""The one exceptions module of mintel.

    MintelError
    ├── ConfigError          settings that cannot be used
    ├── DataError            bad input; the message names the input and what is wrong
    ├── LakeError            the lake cannot be read or written (not writable, disk full, corrupt file)
    └── ProviderError        a market-data provider failed
        ├── RateLimited      the provider answered 429 (carries retry_after_s when it said so)
        ├── ProviderUnavailable  timeouts, 5xx, connection errors, malformed payloads
        └── SymbolNotFound   the provider does not know the symbol

The CLI turns these into one-line messages and exit codes; nothing else catches broadly.
"""

from __future__ import annotations


class MintelError(Exception):
    """Base of every error mintel raises on purpose."""

    exit_code = 1


class ConfigError(MintelError):
    exit_code = 2


class DataError(MintelError):
    """Bad input. The message starts with the input's name: ``DataError("GOOG.csv: column 'close' missing")``."""

    exit_code = 2


class LakeError(MintelError):
    exit_code = 3


class ProviderError(MintelError):
    exit_code = 4

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class RateLimited(ProviderError):
    def __init__(self, message: str, *, provider: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, provider=provider)
        self.retry_after_s = retry_after_s


class ProviderUnavailable(ProviderError):
    pass


class SymbolNotFound(ProviderError):
    def __init__(self, message: str, *, provider: str | None = None, symbols: list[str] | None = None) -> None:
        super().__init__(message, provider=provider)
        self.symbols = list(symbols or [])
