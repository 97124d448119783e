"""The auto-generated grid case (案卷) and the updates that follow it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gridsense.model.geo import CRS

Source = Literal["sensor", "camera", "qr"]
Severity = Literal["routine", "urgent", "most_urgent"]  # 一般 / 紧急 / 特急
RoutingLevel = Literal["community", "street", "district", "city"]
WarningLevel = Literal["blue", "yellow", "orange", "red"]
UpdateKind = Literal["level_raised", "condition_cleared", "evidence", "verification"]


class Evidence(BaseModel):
    """What the case rests on; ``sha256`` covers the canonical bytes of ``data`` or the file."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["readings", "snapshot", "ping"]
    description: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    url: str | None = None
    data: Any = None

    @classmethod
    def of_data(cls, kind: Literal["readings", "snapshot", "ping"], description: str, data: Any) -> Evidence:
        """Evidence carried inline; the digest covers its canonical JSON (orjson, sorted keys)."""
        digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return cls(kind=kind, description=description, sha256=digest, data=data)

    @classmethod
    def of_file(
        cls, kind: Literal["readings", "snapshot", "ping"], description: str, content: bytes, url: str
    ) -> Evidence:
        """Evidence stored as a file (a snapshot): the digest covers its bytes."""
        return cls(kind=kind, description=description, sha256=hashlib.sha256(content).hexdigest(), url=url)


class CaseCategory(BaseModel):
    """A row of the category table: component (部件) or event (事件), with its codes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["component", "event"]
    code: str = Field(pattern=r"^\d{4}$", description="major (2 digits) + minor (2 digits)")
    name_zh: str
    name_en: str

    @property
    def major(self) -> str:
        return self.code[:2]

    @property
    def minor(self) -> str:
        return self.code[2:]


class CasePlace(BaseModel):
    """Where the case is: codes from the grid registry and a point in the platform's system."""

    model_config = ConfigDict(extra="forbid")

    grid_code: str = Field(pattern=r"^\d{15}$")
    district_code: str
    street_code: str
    street_name: str
    community_code: str
    community_name: str
    lat: float
    lon: float
    crs: CRS = Field(description="system of lat/lon, as the platform declares")
    wgs84_lat: float
    wgs84_lon: float
    address: str


class GridCase(BaseModel):
    """One case as gridsense files it. ``case_key`` is the idempotency key (external task number)."""

    model_config = ConfigDict(extra="forbid")

    case_key: str = Field(min_length=16, max_length=128)
    incident_id: str
    source: Source
    source_code: int = Field(description="the city's source code, e.g. 41 智能分析, 34 视频上报")
    category: CaseCategory
    place: CasePlace
    title_zh: str
    description_zh: str
    title_en: str | None = None
    description_en: str | None = None
    severity: Severity
    warning_level: WarningLevel | None = None
    filed_at: datetime
    deadline: datetime
    deadline_basis: str = Field(description="how the deadline was computed, e.g. '2 clock_hours'")
    routing_level: RoutingLevel
    responsible_unit: str
    evidence: list[Evidence] = Field(default_factory=list)
    linked_cases: list[str] = Field(default_factory=list)
    subject: str = Field(description="what the case is about: a device, a grid or an asset id")
    peak_value: float | None = None
    unit: str | None = None


class CaseUpdate(BaseModel):
    """A later message about a filed case; ``update_key`` makes its delivery idempotent."""

    model_config = ConfigDict(extra="forbid")

    update_key: str = Field(min_length=16, max_length=160)
    case_key: str
    kind: UpdateKind
    at: datetime
    warning_level: WarningLevel | None = None
    severity: Severity | None = None
    note_zh: str = ""
    note_en: str | None = None
    peak_value: float | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    linked_cases: list[str] = Field(default_factory=list, description="children of an escalation")
