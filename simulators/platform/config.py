"""Configuration of the reference case platform: workflow pace and injected faults."""

from __future__ import annotations

from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class WorkflowConfig(BaseModel):
    """How fast and along which path each case walks 立案 → 派遣 → 处置 → 核查 → 结案."""

    model_config = ConfigDict(extra="forbid")

    step_delay_s: tuple[float, float] = Field(
        default=(1.0, 3.0),
        description="(min, max) seconds each workflow step takes, drawn uniformly per step",
    )
    void_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="chance a dispatched case is voided (作废)"
    )
    defer_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="chance a dispatched case is deferred (缓办) and stays so",
    )
    reject_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="chance verification (核查) fails once and sends the case back to 处置",
    )
    late_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="chance a case that will close is closed late: after its deadline (in the "
        "working time the deadline was computed in), by one more step",
    )
    seed: int = Field(default=0, description="seed of the workflow's random draws, for replay")

    @model_validator(mode="after")
    def _check(self) -> Self:
        low, high = self.step_delay_s
        if low < 0 or high < low:
            raise ValueError("step_delay_s must be (min, max) with 0 <= min <= max")
        if self.void_rate + self.defer_rate > 1.0:
            raise ValueError("void_rate + defer_rate must not exceed 1")
        return self


class FaultConfig(BaseModel):
    """Faults the platform injects so a client's retries and idempotency can be tested."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="fraction of POST requests answered 503 before anything is stored",
    )
    down: bool = Field(
        default=False,
        description="start in an outage: every request, /healthz included, is answered 503",
    )
    slow_s: float = Field(default=0.0, ge=0.0, le=60.0, description="delay added before each API response")
    lose_response_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="fraction of successful creates (201) whose case is stored but whose "
        "response is lost, as lost_response_style says",
    )
    lost_response_style: Literal["drop", "http_500"] = Field(
        default="drop",
        description="'drop': the connection closes mid-response; 'http_500': a 500 is sent",
    )
    response_delay_s: float = Field(
        default=0.0,
        ge=0.0,
        le=60.0,
        description="delay after a POST was handled (the case is stored) before its answer is "
        "sent: the window in which a client crash leaves the outcome unknown",
    )
    seed: int = Field(default=0, description="seed of the fault draws, for replay")


class Open311ServiceConfig(BaseModel):
    """One Open311 service; its handling limit comes from the category table."""

    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(min_length=1, max_length=64, description="the Open311 service_code")
    service_name: str = Field(min_length=1, description="service_name shown to clients")
    category: str = Field(
        pattern=r"^(component|event):\d{4}$",
        description="the category-table row (kind:code) whose handling limit sets the deadline",
    )
    description: str = Field(default="", description="service description")


class Open311SurfaceConfig(BaseModel):
    """The Open311 GeoReport v2 surface under /open311/v2."""

    model_config = ConfigDict(extra="forbid")

    api_keys: list[str] = Field(
        default_factory=lambda: ["demo-open311-key"],
        description="api_key values accepted on POST /requests.json",
    )
    services: list[Open311ServiceConfig] | None = Field(
        default=None, description="services offered; None = one per row of the shipped category table"
    )
    token_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="fraction of POSTs answered with a token instead of a service_request_id",
    )
    token_delay_s: float = Field(
        default=1.0, ge=0.0, le=3600.0, description="how long until a token resolves to its request"
    )
    jurisdiction_id: str | None = Field(
        default=None, description="if set, every call must carry this jurisdiction_id"
    )


class WebhookPushConfig(BaseModel):
    """Push each case's status changes to a URL, signed as the bridge's receiver checks."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="where status changes are POSTed")
    secret: str = Field(min_length=16, description="shared HMAC-SHA256 secret")
    interval_s: float = Field(
        default=0.2, gt=0.0, le=60.0, description="how often cases are checked for a new status"
    )


class PlatformConfig(BaseModel):
    """The whole reference platform: case ids, local time zone, workflow and faults."""

    model_config = ConfigDict(extra="forbid")

    case_id_prefix: str = Field(
        default="BJ", pattern=r"^[A-Z]{1,8}$", description="prefix of platform case ids"
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="zone that deadlines without an offset are read in",
    )
    workflow: WorkflowConfig = Field(
        default_factory=WorkflowConfig, description="pace and path of the case workflow"
    )
    faults: FaultConfig = Field(default_factory=FaultConfig, description="faults injected into the HTTP API")
    api_token: str | None = Field(
        default=None,
        description="if set, the native API (/api/v1) needs 'Authorization: Bearer <token>'",
    )
    open311: Open311SurfaceConfig = Field(
        default_factory=Open311SurfaceConfig, description="the Open311 GeoReport v2 surface"
    )
    webhook: WebhookPushConfig | None = Field(
        default=None, description="push status changes to the bridge's webhook receiver"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
