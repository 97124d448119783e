"""The configuration schema. These models are the config reference: every field says what it is.

A file is YAML; any section left out takes the embedded defaults, which run the demo
with no server but the bundled ones.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gridsense.errors import ConfigError
from gridsense.model.case import Source
from gridsense.model.geo import CRS
from ingest.influx_sink import InfluxSinkConfig


def packaged(*parts: str) -> Path:
    """Path of a data file shipped inside the ``gridsense`` package."""
    return Path(str(resources.files("gridsense").joinpath("data", *parts)))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttConfig(_Section):
    host: str = Field(default="127.0.0.1", description="broker host")
    port: int = Field(default=1883, ge=1, le=65535, description="broker port")
    client_id: str = Field(
        default="gridsense-pipeline",
        min_length=1,
        max_length=64,
        description="fixed client id: with clean start off it names the persistent session",
    )
    topic_root: str = Field(default="city", description="first topic level of every device topic")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT version; 3.1.1 only for brokers without MQTT 5 (no receive maximum then)",
    )
    qos: Literal[0, 1] = Field(default=1, description="subscription QoS; 1 for at-least-once")
    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        description="how long the broker keeps the session while we are away",
    )
    inflight: int = Field(
        default=1000,
        ge=1,
        le=65535,
        description="MQTT 5 receive maximum: unacknowledged messages the broker may send us",
    )
    batch_max: int = Field(default=500, ge=1, le=10000, description="messages handled per transaction")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive")
    reconnect_min_s: float = Field(default=0.5, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="reconnect delay cap (exponential backoff)"
    )
    username: str | None = Field(default=None, description="broker user name")
    password: SecretStr | None = Field(default=None, description="broker password")
    publish_deadletters: bool = Field(
        default=True, description="also publish each dead letter to <topic_root>/deadletter"
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self


class RegistryConfig(_Section):
    grids: Path = Field(default_factory=lambda: packaged("demo", "grids.csv"), description="grid registry")
    devices: Path = Field(
        default_factory=lambda: packaged("demo", "devices.csv"), description="device registry"
    )
    categories: Path = Field(
        default_factory=lambda: packaged("categories.csv"), description="case category table"
    )
    calendar: list[Path] = Field(
        default_factory=list,
        description="working-time calendar files; empty = the shipped Chinese calendar",
    )


class StoreConfig(_Section):
    path: Path = Field(
        default=Path("gridsense.db"),
        description="SQLite file (WAL) holding readings, incidents, the outbox and dead letters",
    )


class SqliteSinkConfig(_Section):
    type: Literal["sqlite"] = Field(
        default="sqlite", description="readings stay in the embedded store (no server needed)"
    )


Sink = Annotated[SqliteSinkConfig | InfluxSinkConfig, Field(discriminator="type")]


class LimitsConfig(_Section):
    max_gauge_bytes: int = Field(default=8192, ge=64, description="largest accepted gauge payload")
    max_frame_bytes: int = Field(default=2_000_000, ge=1024, description="largest accepted camera frame")
    max_ping_bytes: int = Field(default=1_000_000, ge=256, description="largest accepted asset ping")
    max_future_s: float = Field(
        default=86400, ge=0, description="reject readings stamped further than this in the future"
    )


class RainLevel(_Section):
    name: Literal["blue", "yellow", "orange", "red"] = Field(description="warning level")
    trigger_mm: float = Field(gt=0, description="window total at or above which the level is entered")
    clear_mm: float = Field(ge=0, description="window total below which the level is left")

    @model_validator(mode="after")
    def _hysteresis(self) -> RainLevel:
        if self.clear_mm > self.trigger_mm:
            raise ValueError("clear_mm must not exceed trigger_mm")
        return self


class RainAccumulationConfig(_Section):
    id: str = Field(default="rain_1h", pattern=r"^[a-z0-9_]+$", description="rule id")
    window_s: int = Field(default=3600, ge=60, le=86400, description="rolling window length")
    bucket_s: int = Field(default=60, ge=10, le=3600, description="bucket size of the rolling window")
    category: str = Field(default="event:0111", description="case category filed (kind:code)")
    levels: list[RainLevel] = Field(
        default_factory=lambda: [
            RainLevel(name="blue", trigger_mm=30, clear_mm=20),
            RainLevel(name="orange", trigger_mm=70, clear_mm=50),
            RainLevel(name="red", trigger_mm=100, clear_mm=80),
        ],
        description="levels in rising order (Beijing 1 h lines: orange 70 mm, red 100 mm)",
    )

    @model_validator(mode="after")
    def _rising(self) -> RainAccumulationConfig:
        if not self.levels:
            raise ValueError("at least one level is needed")
        triggers = [lv.trigger_mm for lv in self.levels]
        if triggers != sorted(triggers) or len(set(triggers)) != len(triggers):
            raise ValueError("levels must be in strictly rising trigger order (e.g. red above orange)")
        if self.window_s % self.bucket_s:
            raise ValueError("window_s must be a multiple of bucket_s")
        return self


class RulesConfig(_Section):
    rain_accumulation: list[RainAccumulationConfig] = Field(
        default_factory=lambda: [RainAccumulationConfig()],
        description="rolling rain accumulation rules",
    )
    lateness_s: float = Field(
        default=3600,
        ge=0,
        description="readings older than the device's newest by more are dead-lettered",
    )


def _default_source_codes() -> dict[Source, int]:
    return {"sensor": 41, "camera": 34, "qr": 41}


class BridgeConfig(_Section):
    adapter: Literal["native"] = Field(default="native", description="how cases reach the platform")
    url: str = Field(default="http://127.0.0.1:8080", description="case platform base URL")
    token: SecretStr | None = Field(default=None, description="bearer token for the platform")
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout per request")
    backoff_initial_s: float = Field(default=0.5, gt=0, description="first retry delay")
    backoff_max_s: float = Field(default=60.0, gt=0, description="retry delay cap")
    poll_interval_s: float = Field(default=0.5, gt=0, description="outbox poll interval when idle")
    status_poll_s: float = Field(default=5.0, gt=0, description="how often open cases' status is fetched")
    crs: CRS = Field(default=CRS.WGS84, description="coordinate system the platform expects")
    source_codes: dict[Source, int] = Field(
        default_factory=_default_source_codes,
        description="the city's case source codes (41 智能分析, 34 视频上报)",
    )
    english: bool = Field(default=True, description="add English title and description")


class GridsenseConfig(_Section):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    sink: Sink = Field(default_factory=SqliteSinkConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    bridge: BridgeConfig = Field(default_factory=BridgeConfig)


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """Walk a composed YAML node along a pydantic error location to find its line."""
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == key), None)
            if pair is None:
                return line
            # The key's line: an unknown section's value starts on the line below its key.
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_config(path: Path) -> GridsenseConfig:
    """Read and validate a YAML config; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping")
    try:
        cfg = GridsenseConfig.model_validate(doc)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            line = _line_of(node, e["loc"])
            where = f"{path}:{line}" if line else str(path)
            msgs.append(f"{where}: {'.'.join(map(str, e['loc']))}: {e['msg']}")
        raise ConfigError("\n".join(msgs)) from None
    return _resolve_paths(cfg, path.parent)


def _resolve_paths(cfg: GridsenseConfig, base: Path) -> GridsenseConfig:
    """Relative file paths in a config file are relative to the file's folder."""

    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    reg = cfg.registry
    return cfg.model_copy(
        update={
            "registry": reg.model_copy(
                update={
                    "grids": fix(reg.grids),
                    "devices": fix(reg.devices),
                    "categories": fix(reg.categories),
                    "calendar": [fix(p) for p in reg.calendar],
                }
            ),
            "store": cfg.store.model_copy(update={"path": fix(cfg.store.path)}),
        }
    )
