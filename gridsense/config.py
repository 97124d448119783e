"""The configuration schema. These models are the config reference: every field says what it is.

A file is YAML; any section left out takes the embedded defaults, which run the demo
with no server but the bundled ones.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from bridge.config import (
    BACKLOG_ROWS,
    MqttPlatformConfig,
    Open311Config,
    OutboxConfig,
    SqliteOutboxConfig,
    StatusSyncConfig,
    WebhookConfig,
)
from detectors.config import CameraConfig
from gridsense.model.case import Source
from gridsense.model.geo import CRS
from gridsense.model.tables import load_yaml_model
from gridsense.ops.config import OpsConfig
from ingest.influx_sink import InfluxSinkConfig
from rules.assets.config import AssetConfig


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
    partition: list[str] | None = Field(
        default=None,
        description="this worker's share of the topics, as filters under topic_root (e.g."
        " ['city/110102/#']); None = every device topic. Partition by district so that one"
        " district's state (windows, incidents, escalations) never splits across workers",
    )
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
        default=True,
        description="also publish each dead letter to <topic_root>/deadletter: a live feed at QoS 0,"
        " one write per batch; the store keeps every dead letter (gridsense deadletters)",
    )
    deadletter_feed_per_s: float | None = Field(
        default=100.0,
        gt=0,
        description="at most this many dead letters a second on the live feed, in bursts of as many;"
        " the rest are counted (gridsense_deadletter_feed_suppressed_total) and only stored, so a"
        " flood of bad input is not echoed through the broker in full. null: every one",
    )

    @model_validator(mode="after")
    def _partition_under_root(self) -> MqttConfig:
        for f in self.partition or []:
            plain = f.split("/", 2)[2] if f.startswith("$share/") else f
            if not plain.startswith(self.topic_root + "/"):
                raise ValueError(f"partition filter {f!r} is not under topic_root {self.topic_root!r}")
        return self

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
    settle_s: float = Field(
        default=600.0,
        gt=0,
        description="how often new readings move in bulk to the gauge-keyed table"
        " (until then they sit in a small time-keyed one)",
    )


class SqliteSinkConfig(_Section):
    type: Literal["sqlite"] = Field(
        default="sqlite", description="readings stay in the embedded store (no server needed)"
    )


Sink = Annotated[SqliteSinkConfig | InfluxSinkConfig, Field(discriminator="type")]


class LimitsConfig(_Section):
    max_gauge_bytes: int = Field(default=8192, ge=64, description="largest accepted gauge payload")
    max_ping_bytes: int = Field(default=1_000_000, ge=256, description="largest accepted asset ping")
    max_future_s: float = Field(
        default=86400, ge=0, description="reject readings stamped further than this in the future"
    )
    device_msgs_per_min: float = Field(
        default=600, gt=0, description="a device sending faster is throttled: the excess is dead-lettered"
    )
    device_burst: float = Field(
        default=1200, ge=1, description="messages a device may send at once before throttling applies"
    )


class RulesConfig(_Section):
    file: Path | None = Field(
        default=None,
        description="rule file (YAML); None = the shipped default set (gridsense/data/rules/default.yaml)",
    )
    lateness_s: float = Field(
        default=3600, ge=0, description="readings older than the device's newest by more are dead-lettered"
    )
    tick_s: float = Field(
        default=10, gt=0, le=3600, description="how often silent gauges and quiet incidents are checked"
    )


def _default_source_codes() -> dict[Source, int]:
    return {"sensor": 41, "camera": 34, "qr": 41}


class BridgeConfig(_Section):
    adapter: Literal["native", "open311", "mqtt"] = Field(
        default="native",
        description="how cases reach the platform: native REST, Open311 GeoReport v2, or MQTT",
    )
    concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="messages of different grids in flight while a backlog drains"
        f" (a pass of {BACKLOG_ROWS} rows or more; smaller passes go out one at a time)",
    )
    open311: Open311Config | None = Field(default=None, description="Open311 endpoint (adapter open311)")
    mqtt_platform: MqttPlatformConfig | None = Field(
        default=None, description="the platform's broker (adapter mqtt); not the pipeline's own broker"
    )
    outbox: OutboxConfig = Field(
        default_factory=SqliteOutboxConfig,
        description="the embedded SQLite outbox, or a PostgreSQL one that several workers share",
    )
    status_sync: StatusSyncConfig = Field(default_factory=StatusSyncConfig)
    webhook: WebhookConfig | None = Field(default=None, description="HMAC-signed status webhook")
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

    @model_validator(mode="after")
    def _adapter_section(self) -> BridgeConfig:
        """The adapter's own section is there: delivery builds the adapter in its own process,
        where a missing one would surface only as that process's exit."""
        section = {"open311": self.open311, "mqtt": self.mqtt_platform}.get(self.adapter, True)
        if section is None:
            name = "open311" if self.adapter == "open311" else "mqtt_platform"
            raise ValueError(f"bridge.adapter is {self.adapter} but the bridge.{name} section is missing")
        return self


class GridsenseConfig(_Section):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    sink: Sink = Field(default_factory=SqliteSinkConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    bridge: BridgeConfig = Field(default_factory=BridgeConfig)
    assets: AssetConfig = Field(default_factory=AssetConfig, description="QR-tagged city assets")
    cameras: CameraConfig = Field(default_factory=CameraConfig, description="street camera detectors")
    ops: OpsConfig = Field(default_factory=OpsConfig, description="the operations page, /metrics, /healthz")


def load_config(path: Path) -> GridsenseConfig:
    """Read and validate a YAML config; errors name the file and line."""
    return _resolve_paths(load_yaml_model(path, GridsenseConfig), path.parent)


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
            "rules": cfg.rules.model_copy(
                update={"file": fix(cfg.rules.file) if cfg.rules.file is not None else None}
            ),
            "store": cfg.store.model_copy(update={"path": fix(cfg.store.path)}),
            "assets": cfg.assets.resolved(base),
            "ops": cfg.ops.model_copy(
                update={"evidence_dir": fix(cfg.ops.evidence_dir) if cfg.ops.evidence_dir else None}
            ),
            "cameras": cfg.cameras.model_copy(
                update={"registry": fix(cfg.cameras.registry), "evidence_dir": fix(cfg.cameras.evidence_dir)}
            ),
        }
    )
