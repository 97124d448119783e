"""Config models of the bridge's optional parts: other adapters, the shared outbox, status sync.

The base settings (native adapter URL, token, backoff) stay in ``gridsense.config.BridgeConfig``;
these models hang off it as optional sections; ``bridge.factory`` builds the parts from them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

#: By default, a delivery pass of at least this many rows is a backlog, sent in parallel
#: (``bridge.concurrency``). The half-rate latency run (about 25 cases and updates a second)
#: made passes of 1–19 rows.
BACKLOG_ROWS = 32

# The workflow statuses gridsense records (domain README §1, §6).
OurStatus = Literal["立案", "派遣", "处置", "核查", "结案", "作废", "缓办"]
FINAL_STATUSES: frozenset[str] = frozenset({"结案", "作废"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _default_status_names() -> dict[str, OurStatus]:
    return {
        # Our own names (the reference platform speaks them).
        "立案": "立案",
        "派遣": "派遣",
        "处置": "处置",
        "核查": "核查",
        "结案": "结案",
        "作废": "作废",
        "缓办": "缓办",
        # The most common deployment (codes 1–9).
        "待受理": "立案",
        "立案派遣": "派遣",
        "处理中": "处置",
        "核查结案": "核查",
        "缓办/挂账": "缓办",
        "挂账": "缓办",
        "督查": "处置",
        # Smaller sets seen elsewhere.
        "待处置": "派遣",
        "处置中": "处置",
        "已办结": "结案",
        "已驳回": "作废",
        "新建": "立案",
        "处置结束": "核查",
        "待复核": "核查",
        "已复核": "核查",
        # Open311 GeoReport v2 has only these two.
        "open": "立案",
        "closed": "结案",
    }


def _default_status_codes() -> dict[int, OurStatus]:
    # Domain README §6: 1 待受理, 3 立案派遣, 4 处理中, 5 核查结案, 6 结案, 7 作废, 8 缓办/挂账, 9 督查.
    return {1: "立案", 3: "派遣", 4: "处置", 5: "核查", 6: "结案", 7: "作废", 8: "缓办", 9: "处置"}


class StatusMapConfig(_Model):
    """Platform statuses onto gridsense's workflow; the name is tried first, then the code."""

    names: dict[str, OurStatus] = Field(
        default_factory=_default_status_names,
        description="platform status name → 立案/派遣/处置/核查/结案/作废/缓办",
    )
    codes: dict[int, OurStatus] = Field(
        default_factory=_default_status_codes,
        description="platform status code → workflow status, used when the name is not in `names`",
    )

    def map(self, name: str, code: int | None) -> OurStatus | None:
        """The workflow status for what the platform said, or None if the map does not know it."""
        if name in self.names:
            return self.names[name]
        if code is not None:
            return self.codes.get(code)
        return None


class StatusSyncConfig(_Model):
    """How platform statuses are read and what the bridge does when they disagree with the sensors."""

    status_map: StatusMapConfig = Field(
        default_factory=StatusMapConfig, description="platform statuses onto the workflow"
    )
    on_closed_while_active: Literal["new_linked_case", "log_only"] = Field(
        default="new_linked_case",
        description="a case is closed (结案) while its incident is still open: file a new case "
        "linked to the closed one, or only log it; a closed case is never reopened",
    )
    closed_while_active_grace_s: float = Field(
        default=3600.0,
        ge=0.0,
        le=7 * 86400,
        description="how long after a closure the sensors are asked whether the problem persists; "
        "longer than the slowest rule takes to clear (the 1 h rain window: up to an hour); 0 = at once",
    )
    withdraw_on_clear: bool = Field(
        default=False,
        description="when the condition clears before dispatch, also ask the platform to void "
        "the case (else the case is only annotated with the condition_cleared update)",
    )


class WebhookConfig(_Model):
    """The receiver of signed status pushes from the platform."""

    secret: SecretStr = Field(min_length=16, description="shared HMAC-SHA256 secret; at least 16 characters")
    tolerance_s: int = Field(
        default=300,
        ge=5,
        le=3600,
        description="a push whose timestamp is further from our clock than this is refused (replays)",
    )
    nonce_cache_size: int = Field(
        default=100_000,
        ge=100,
        le=10_000_000,
        description="nonces remembered to refuse a replay inside the tolerance window",
    )


class Open311Config(_Model):
    """A platform speaking Open311 GeoReport v2 (form-encoded POST, JSON answers)."""

    url: str = Field(description="GeoReport v2 endpoint base, e.g. https://city.example/open311/v2")
    api_key: SecretStr = Field(description="the api_key POSTed with each request")
    jurisdiction_id: str | None = Field(
        default=None, description="sent with every call when the endpoint serves several cities"
    )
    service_codes: dict[str, str] = Field(
        default_factory=dict,
        description="category (kind:code, e.g. event:0111) → service_code; overrides GET /services",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="HTTP timeout per request")
    lookup_before_create: Literal["always", "after_unknown_outcome"] = Field(
        default="always",
        description="search for our marker before each POST ('always': safe after a crash "
        "mid-POST), or only after this process lost a POST's answer (one GET less per case)",
    )
    lookup_slack_days: int = Field(
        default=1,
        ge=0,
        le=30,
        description="days added on both sides of the marker search's date range (clock skew)",
    )
    updates: Literal["dead_letter", "drop"] = Field(
        default="dead_letter",
        description="GeoReport v2 cannot add to a filed request: dead-letter updates (visible, "
        "discardable) or drop them with a log line",
    )


class MqttPlatformConfig(_Model):
    """A platform that ingests cases over MQTT: publish at QoS 1, wait for PUBACK."""

    host: str = Field(default="127.0.0.1", description="the platform's broker host")
    port: int = Field(default=1883, ge=1, le=65535, description="broker port")
    client_id: str = Field(
        default="gridsense-bridge", min_length=1, max_length=64, description="fixed client id"
    )
    topic_prefix: str = Field(
        default="platform/intake",
        pattern=r"^[^/#+][^#+]*[^/#+]$",
        description="cases go to <prefix>/case/<grid>, updates to <prefix>/update/<case key>",
    )
    username: str | None = Field(default=None, description="broker user name")
    password: SecretStr | None = Field(default=None, description="broker password")
    puback_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="how long to wait for the broker's PUBACK"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive")


class SqliteOutboxConfig(_Model):
    type: Literal["sqlite"] = Field(
        default="sqlite", description="the outbox lives in the embedded state database"
    )


class PostgresOutboxConfig(_Model):
    """An outbox in PostgreSQL, shared by several delivery workers."""

    type: Literal["postgres"] = Field(default="postgres", description="shared PostgreSQL outbox")
    dsn: SecretStr = Field(description="libpq connection string, e.g. postgresql://gridsense@db/gridsense")
    db_schema: str = Field(
        default="gridsense",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema holding the outbox and cases tables",
    )
    worker_id: str | None = Field(
        default=None,
        max_length=128,
        description="this worker's name in claimed_by; default host:pid",
    )
    lease_s: float = Field(
        default=120.0,
        ge=1.0,
        le=3600.0,
        description="how long a claimed row stays with its worker; a crashed worker's rows "
        "are taken over after it. Must exceed the adapter's timeout",
    )


OutboxConfig = Annotated[SqliteOutboxConfig | PostgresOutboxConfig, Field(discriminator="type")]
