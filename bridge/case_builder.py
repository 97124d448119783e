"""CaseBuilder: turns incident changes into grid cases and case updates.

What was observed (summary, evidence) comes from the rule or detector; codes, severity
and the handling limit from the category table; place names from the grid registry;
the deadline from the working-time calendar.
"""

from __future__ import annotations

import functools
import hashlib
from zoneinfo import ZoneInfo

from gridsense.config import BridgeConfig
from gridsense.model.case import CasePlace, CaseUpdate, GridCase, RoutingLevel, Severity
from gridsense.model.catalog import Catalog
from gridsense.model.geo import from_wgs84
from gridsense.model.incident import IncidentChange
from gridsense.model.registry import GridRegistry
from gridsense.model.worktime import LimitUnit, WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
_SEVERITIES: tuple[Severity, ...] = ("routine", "urgent", "most_urgent")
_SEVERITY_FOR_LEVEL: dict[str, Severity] = {
    "blue": "routine",
    "yellow": "routine",
    "orange": "urgent",
    "red": "most_urgent",
}


@functools.lru_cache(maxsize=1 << 16)
def case_key(incident_id: str) -> str:
    """The idempotency key (external task number) of the case an incident files.

    Memoised: a street or district summary lists its children's cases in every update, so
    in a storm the same few thousand keys are asked for again and again.
    """
    return "gs-" + hashlib.sha256(incident_id.encode()).hexdigest()[:32]


def updates_to_send(changes: list[IncidentChange]) -> list[IncidentChange]:
    """One batch's changes, less each "updated" one that a later "updated" change of the same
    incident in the batch supersedes (unless it carries evidence of its own).

    Cases and updates are built once the whole batch is evaluated, from the incidents' final
    state, so a superseded update would repeat the later one's note and linked cases word for
    word under another key: in a storm, a district summary that twenty grids of one batch
    joined sent the platform twenty identical notes, each listing every grid of the district.
    """
    last = {c.incident.incident_id: i for i, c in enumerate(changes) if c.kind == "updated"}
    return [
        c
        for i, c in enumerate(changes)
        if c.kind != "updated" or c.evidence or last[c.incident.incident_id] == i
    ]


def severity_for(category_severity: Severity, level: str | None) -> Severity:
    """The category's severity, raised by the warning level (orange → urgent, red → most urgent)."""
    by_level = _SEVERITY_FOR_LEVEL.get(level or "", "routine")
    return max(category_severity, by_level, key=_SEVERITIES.index)


def responsible_unit(level: str, street: str, community: str) -> str:
    """Small matters stay in the community, big matters stay in the street."""
    if level == "community":
        # Registry names already end in 社区 (西海社区): do not write 西海社区社区工作站.
        return f"{community.removesuffix('社区')}社区工作站"
    if level == "street":
        return f"{street}城市管理分中心"
    if level == "district":
        return "区城市管理监督指挥中心"
    return "市城市管理监督指挥中心"


class CaseBuilder:
    """Builds the messages the outbox carries."""

    def __init__(
        self, cfg: BridgeConfig, catalog: Catalog, grids: GridRegistry, calendar: WorkCalendar
    ) -> None:
        self._cfg = cfg
        self._catalog = catalog
        self._grids = grids
        self._calendar = calendar

    def case(self, change: IncidentChange) -> GridCase:
        inc = change.incident
        cat = self._catalog.get(inc.category_ref)
        grid = self._grids.get(inc.grid_code)
        if grid is None:
            raise KeyError(f"grid {inc.grid_code} is not in the registry")
        filed_at = inc.opened_at.astimezone(SHANGHAI)
        deadline = self._calendar.add(filed_at, cat.limit, LimitUnit(cat.limit_unit))
        wlat, wlon = inc.location if inc.location is not None else (grid.lat, grid.lon)
        lat, lon = from_wgs84(wlat, wlon, self._cfg.crs)
        level_zh = f"（{LEVEL_ZH[inc.level]}）" if inc.level else ""
        routing: RoutingLevel = inc.routing_level or cat.routing_level  # type: ignore[assignment]
        if inc.routing_level == "street":  # an escalation summary speaks for the street
            place_zh = f"{grid.street_name}多网格"
        elif inc.routing_level == "district":
            place_zh = f"辖区{grid.district_code}多街道"
        else:
            place_zh = f"{grid.street_name}{grid.community_name}网格{grid.grid_code[-3:]}"
        return GridCase(
            case_key=case_key(inc.incident_id),
            incident_id=inc.incident_id,
            source=inc.source,
            source_code=self._cfg.source_codes[inc.source],
            category=cat.category(),
            place=CasePlace(
                grid_code=grid.grid_code,
                district_code=grid.district_code,
                street_code=grid.street_code,
                street_name=grid.street_name,
                community_code=grid.community_code,
                community_name=grid.community_name,
                lat=lat,
                lon=lon,
                crs=self._cfg.crs,
                wgs84_lat=wlat,
                wgs84_lon=wlon,
                address=grid.address or place_zh,
            ),
            title_zh=f"{place_zh}{cat.name_zh}{level_zh}",
            description_zh=(
                f"自动发现：{inc.summary_zh}。网格 {grid.grid_code} 可能存在{cat.name_zh}，请派员处置。"
            ),
            title_en=(
                f"{cat.name_en.capitalize()}{f' ({inc.level})' if inc.level else ''} in grid {grid.grid_code}"
                if self._cfg.english
                else None
            ),
            description_en=(
                f"Auto-detected: {inc.summary_en}; possible {cat.name_en} in grid {grid.grid_code}."
                if self._cfg.english
                else None
            ),
            severity=severity_for(cat.severity, inc.level),
            warning_level=inc.level,  # type: ignore[arg-type]
            filed_at=filed_at,
            deadline=deadline,
            deadline_basis=f"{cat.limit:g} {cat.limit_unit}",
            routing_level=routing,
            responsible_unit=responsible_unit(routing, grid.street_name, grid.community_name),
            evidence=list(change.evidence),
            linked_cases=[case_key(i) for i in inc.linked],
            subject=inc.subject,
            peak_value=inc.peak_value,
            unit=inc.unit,
        )

    def update(self, change: IncidentChange) -> CaseUpdate:
        inc = change.incident
        key = case_key(inc.incident_id)
        at = change.at.astimezone(SHANGHAI)
        peak = f"{inc.peak_value:.1f} {inc.unit}"
        if change.kind == "raised":
            assert inc.level is not None
            return CaseUpdate(
                update_key=f"{key}:raised:{inc.level}",
                case_key=key,
                kind="level_raised",
                at=at,
                warning_level=inc.level,  # type: ignore[arg-type]
                severity=severity_for(self._catalog.get(inc.category_ref).severity, inc.level),
                note_zh=f"等级升至{LEVEL_ZH[inc.level]}：{inc.summary_zh}",
                note_en=f"level raised to {inc.level}: {inc.summary_en}",
                peak_value=inc.peak_value,
                evidence=list(change.evidence),
            )
        if change.kind == "updated":
            stamp = int(change.at.timestamp() * 1000)
            verification = any(
                isinstance(e.data, dict) and e.data.get("role") == "verification" for e in change.evidence
            )
            return CaseUpdate(
                update_key=f"{key}:updated:{stamp}",
                case_key=key,
                kind="verification" if verification else "evidence",
                at=at,
                note_zh=inc.summary_zh,
                note_en=inc.summary_en,
                peak_value=inc.peak_value,
                evidence=list(change.evidence),
                linked_cases=[case_key(i) for i in inc.linked],
            )
        return CaseUpdate(
            update_key=f"{key}:cleared",
            case_key=key,
            kind="condition_cleared",
            at=at,
            note_zh=f"传感器显示情况已解除，峰值 {peak}"
            if inc.source == "sensor"
            else f"情况已解除：{inc.summary_zh}",
            note_en=(
                f"sensors show the condition cleared; peak {peak}"
                if inc.source == "sensor"
                else f"condition cleared: {inc.summary_en}"
            ),
            peak_value=inc.peak_value,
        )
