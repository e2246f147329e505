"""Settings, in one place: defaults < YAML file < ``RXPIPE_*`` environment < explicit overrides.

Nothing reads the environment at import time; :meth:`Settings.load` does, when asked.
Nested settings come from ``RXPIPE_<SECTION>_<FIELD>`` (``RXPIPE_BATCH_MAX_TICKS=8192``);
the common ones have short names too: ``RXPIPE_DATA_DIR``, ``RXPIPE_DATABASE_URL``,
``RXPIPE_HOST``, ``RXPIPE_PORT``, ``RXPIPE_API_TOKEN``, ``RXPIPE_SOURCE``, ``RXPIPE_SYMBOLS``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import platformdirs
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rxpipe.errors import ConfigError

_ALIASES = {
    "RXPIPE_DATABASE_URL": ("storage", "database_url"),
    "RXPIPE_HOST": ("server", "host"),
    "RXPIPE_PORT": ("server", "port"),
    "RXPIPE_API_TOKEN": ("server", "api_token"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchSettings(_Section):
    max_ticks: int = Field(4096, gt=0, description="a batch never holds more ticks")
    max_ms: float = Field(
        50.0,
        gt=0,
        description="when the pipeline is free, a batch closes this long after its first tick",
    )
    close_ticks: int = Field(
        128,
        gt=0,
        description="... or as soon as it holds this many ticks (worth a batch's fixed costs)",
    )


class ValidationSettings(_Section):
    tolerance_ms: float = Field(1000.0, ge=0, description="accepted lateness of a tick per symbol")


class SimulatorSettings(_Section):
    seed: int = 42
    rate: float = Field(1000.0, gt=0, description="ticks per second over all symbols")
    realtime: bool = True
    event_rate_per_hour: float = Field(0.1, ge=0, description="labelled events per symbol per hour")


# The detectors' optional signal groups (``rxpipe.kernels.detect.OPTIONAL``, kept equal by a test).
DetectorMethod = Literal["quantiles", "time_window", "ci", "horizons", "moving_averages"]


class DetectorSettings(_Section):
    enabled: bool = True
    window: int = Field(100, gt=1, description="ticks in the rolling windows")
    min_periods: int = Field(30, gt=1, description="no anomaly before a window has this many ticks")
    z_threshold: float = Field(4.0, gt=0)
    ci_level: float = Field(0.99, gt=0, lt=1)
    ensemble_threshold: float = Field(0.9, gt=0, le=1)
    methods: list[DetectorMethod] = Field(
        default_factory=lambda: list(get_args(DetectorMethod)),
        description="optional signal groups to compute (the core always runs)",
    )

    @field_validator("methods", mode="before")
    @classmethod
    def _split_methods(cls, value: Any) -> Any:
        if isinstance(value, str):  # RXPIPE_DETECTORS_METHODS=quantiles,ci
            return [m.strip() for m in value.split(",") if m.strip()]
        return value


class ChannelSettings(_Section):
    """One notification channel; the fields a type needs: email (host, port, sender,
    recipients, starttls, username, password), slack (url), webhook (url, secret, format), log."""

    type: Literal["email", "slack", "webhook", "log"]
    url: str | None = None
    secret: SecretStr | None = None
    format: Literal["rxpipe", "alertmanager"] = "rxpipe"
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "rxpipe@localhost"
    recipients: list[str] = Field(default_factory=list)
    starttls: bool = False
    username: str = ""
    password: SecretStr | None = None
    ca_file: Path | None = Field(
        None, description="CA bundle to verify the SMTP server's certificate (default: system)"
    )


class RouteSettings(_Section):
    """Alerts whose labels match ``match`` and whose severity is at least ``min_severity`` go
    to ``channels`` (the first route that matches wins; no match: the rule's own channels)."""

    channels: list[str] = Field(min_length=1)
    match: dict[str, str] = Field(default_factory=dict)
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "info"
    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    group_wait_s: float | None = Field(None, ge=0)
    group_interval_s: float | None = Field(None, ge=0)


class NotifySettings(_Section):
    channels: dict[str, ChannelSettings] = Field(
        default_factory=lambda: {"log": ChannelSettings(type="log")}
    )
    routes: list[RouteSettings] = Field(default_factory=list)
    group_wait_s: float = Field(10.0, ge=0)
    group_interval_s: float = Field(60.0, ge=0)
    rate_limit_s: float = Field(
        300.0, ge=0, description="one notification per (rule, channel) per this long"
    )
    channel_per_minute: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _routes_name_channels(self) -> NotifySettings:
        for k, route in enumerate(self.routes):
            unknown = [c for c in route.channels if c not in self.channels]
            if unknown:
                raise ValueError(
                    f"routes[{k}] names channel(s) {', '.join(unknown)} that are not configured "
                    f"(configured: {', '.join(self.channels)})"
                )
        return self


class StorageSettings(_Section):
    enabled: bool = True
    database_url: SecretStr | None = None


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_token: SecretStr | None = Field(
        None, description="bearer token of mutating API calls (generated and printed if unset)"
    )
    rate_limit_per_s: float = Field(
        200.0, ge=0, description="API requests per second per client (0: no limit)"
    )
    rate_limit_burst: float = Field(400.0, ge=1, description="requests a client may burst")
    ws_max_queue: int = Field(
        100, ge=1, description="messages a slow WebSocket client may lag before it is conflated"
    )
    ws_drop_after_s: float = Field(
        10.0, gt=0, description="a WebSocket client that lags this long is disconnected"
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="more host:port origins the dashboard may be opened from (besides the bound "
        "address, localhost and 127.0.0.1), e.g. when bound to 0.0.0.0",
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: comma-separated
            return [s.strip() for s in value.split(",") if s.strip()]
        return value


class Settings(_Section):
    """Everything rxpipe can be told.

    >>> s = Settings.load(env={"RXPIPE_PORT": "9000", "RXPIPE_BATCH_MAX_TICKS": "8192"})
    >>> s.server.port, s.batch.max_ticks, s.server.host
    (9000, 8192, '127.0.0.1')
    """

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("rxpipe")))
    source: str = "simulator"
    replay_speed: str = Field("1", description="replay pace for replay: sources: max, 1 or N")
    symbols: list[str] | None = None
    log_level: str = "INFO"
    batch: BatchSettings = Field(default_factory=BatchSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value != "simulator" and not value.startswith("replay:"):
            raise ValueError("source is 'simulator' or 'replay:PATH[,PATH...]'")
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then the YAML file, then the environment, then non-None ``overrides``."""
        data: dict[str, Any] = {}
        where = "defaults"
        if config_file is not None:
            where = str(config_file)
            data = _read_yaml(Path(config_file))
        environ = os.environ if env is None else env
        from_env = _from_env(environ)
        if from_env:
            where += " + environment"
        _merge(data, from_env)
        _merge(data, _nest({k: v for k, v in overrides.items() if v is not None}))
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"bad settings ({where}): {problems}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of settings, not {type(loaded).__name__}"
        )
    return loaded


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    sections = {"batch", "validation", "simulator", "detectors", "notify", "storage", "server"}
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("RXPIPE_") or key == "RXPIPE_REQUIRE_SERVICES":
            continue
        if key in _ALIASES:
            section, name = _ALIASES[key]
            out.setdefault(section, {})[name] = value
            continue
        rest = key[len("RXPIPE_") :].lower()
        head, _, tail = rest.partition("_")
        if head in sections and tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[rest] = value
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"server.port": 1}`` to ``{"server": {"port": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        head, _, tail = key.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[head] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
