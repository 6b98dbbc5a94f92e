"""Settings, read once: defaults < ``mintel.toml`` < ``MINTEL_*`` environment < command-line flags.

Secrets (API keys, webhook URLs with tokens) come from the environment only: a key found in
``mintel.toml`` is refused, and `Secret` never shows its value in a repr, a log line or a report.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mintel.errors import ConfigError

CONFIG_FILE = "mintel.toml"
SECRET_WORDS = ("api_key", "apikey", "token", "secret", "password")


class Secret:
    """A value that is never printed. ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret(None)"

    __str__ = __repr__


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    requests_per_minute: float | None = None
    requests_per_day: float | None = None
    base_url: str | None = None
    weight: float = 1.0
    timeout_s: float = 10.0
    api_key: Secret = field(default_factory=lambda: Secret(None), repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    lake: Path | str = Path("data/lake")  # a directory or an s3:// URL
    universe: str = "nifty500"
    providers: tuple[str, ...] = ("sim",)
    interval: str = "1m"
    interval_s: float = 0.0  # seconds between ingestion cycles; 0 = back to back (sim: one minute per cycle)
    seed: int = 42
    sim_speed: float = 1.0  # simulated minutes per wall minute when interval_s > 0
    compact_every: int = 30  # cycles between compactions of the current partitions
    cooldown: int = 15  # bars before the same (symbol, kind, direction) opportunity is announced again
    source: str = "bars"  # what live cycles poll: "bars", or "quotes" (batched snapshots built into bars)
    always_on: bool = False  # ingest from real providers outside the exchange's sessions too
    retention: Mapping[str, int | None] = field(default_factory=dict)
    provider: Mapping[str, ProviderSettings] = field(default_factory=dict)
    alerts: Mapping[str, Any] = field(default_factory=dict)  # the [alerts] table (mintel.alerts.AlertSettings)
    lab_fees: float | None = None  # signal lab portfolio costs (fraction per trade); None: the lab's default
    lab_slippage: float | None = None
    schedule: tuple[Mapping[str, Any], ...] = ()  # [[schedule]] jobs (mintel.schedule); none: the defaults
    config_file: Path | None = None

    def provider_settings(self, name: str) -> ProviderSettings:
        return self.provider.get(name) or _provider_from_env(name, {}, os.environ)

    def with_overrides(self, **overrides: Any) -> "Settings":
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "lake" in clean:
            clean["lake"] = _lake(clean["lake"])
        if "providers" in clean and isinstance(clean["providers"], str):
            clean["providers"] = _split(clean["providers"])
        return replace(self, **clean)


def load_config(path: str | os.PathLike | None = None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (or ``MINTEL_CONFIG``, or ./mintel.toml when present) and the environment."""
    env = os.environ if env is None else env
    file = Path(path) if path else Path(env["MINTEL_CONFIG"]) if env.get("MINTEL_CONFIG") else Path(CONFIG_FILE)
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read settings ({exc})") from None
        _refuse_secrets(file, data)
    elif path:
        raise ConfigError(f"{file}: no such settings file")
    else:
        file = None

    top = data.get("mintel", data)
    values: dict[str, Any] = {}
    for key, cast in (("lake", _lake), ("universe", str), ("interval", str), ("interval_s", float), ("seed", int),
                      ("sim_speed", float), ("compact_every", int), ("cooldown", int), ("source", str),
                      ("always_on", _bool), ("lab_fees", float), ("lab_slippage", float)):
        if key in top:
            values[key] = _cast(file, key, top[key], cast)
        env_key = f"MINTEL_{key.upper()}"
        if env.get(env_key):
            values[key] = _cast(env_key, key, env[env_key], cast)
    providers = top.get("providers")
    if env.get("MINTEL_PROVIDERS"):
        providers = env["MINTEL_PROVIDERS"]
    if providers:
        values["providers"] = _split(providers) if isinstance(providers, str) else tuple(providers)

    table = data.get("provider", {})
    names = set(table) | set(values.get("providers", ("sim",)))
    values["provider"] = {n: _provider_from_env(n, table.get(n, {}), env) for n in names}
    values["retention"] = dict(data.get("retention", {}))
    values["alerts"] = dict(data.get("alerts", {}))
    schedule = data.get("schedule", [])
    if not isinstance(schedule, list) or not all(isinstance(e, dict) for e in schedule):
        raise ConfigError(f"{file}: [[schedule]] must be tables, one per job")
    values["schedule"] = tuple(schedule)
    return Settings(config_file=file, **values)


def _provider_from_env(name: str, section: Mapping[str, Any], env: Mapping[str, str]) -> ProviderSettings:
    prefix = f"MINTEL_{name.upper()}_"
    known = {"requests_per_minute", "requests_per_day", "base_url", "weight", "timeout_s"}
    values: dict[str, Any] = {k: section[k] for k in known if k in section}
    options = {k: v for k, v in section.items() if k not in known}
    for key, cast in (("requests_per_minute", float), ("requests_per_day", float), ("base_url", str),
                      ("weight", float), ("timeout_s", float)):
        if env.get(prefix + key.upper()):
            values[key] = _cast(prefix + key.upper(), key, env[prefix + key.upper()], cast)
    return ProviderSettings(name=name, api_key=Secret(env.get(prefix + "API_KEY")), options=options, **values)


def _refuse_secrets(file: Path, data: Any, where: str = "") -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            if any(w in k.lower() for w in SECRET_WORDS):
                raise ConfigError(
                    f"{file}: '{where}{k}' looks like a secret; secrets come from the environment only "
                    f"(e.g. MINTEL_<PROVIDER>_API_KEY)"
                )
            _refuse_secrets(file, v, f"{where}{k}.")


def _cast(origin, key: str, value: Any, cast):
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: '{key}' = {value!r} is not a valid {cast.__name__}") from None


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


def _lake(value) -> Path | str:
    """A directory, or an object-store URL kept as text (``Path`` would fold ``s3://`` into ``s3:/``)."""
    from mintel.lake.catalog import lake_location

    return lake_location(str(value))


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())
