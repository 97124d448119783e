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
    slow_s: float = Field(
        default=0.0, ge=0.0, le=60.0, description="delay added before each API response"
    )
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
    seed: int = Field(default=0, description="seed of the fault draws, for replay")


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
    faults: FaultConfig = Field(
        default_factory=FaultConfig, description="faults injected into the HTTP API"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
