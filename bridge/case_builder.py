"""CaseBuilder: turns incident changes into grid cases and case updates.

Codes come from the category table, places from the grid registry, the deadline
from the category's handling limit on the working-time calendar.
"""

from __future__ import annotations

import hashlib
from zoneinfo import ZoneInfo

import orjson

from gridsense.config import BridgeConfig
from gridsense.model.case import CasePlace, CaseUpdate, Evidence, GridCase, Severity
from gridsense.model.catalog import Catalog
from gridsense.model.geo import from_wgs84
from gridsense.model.registry import GridRegistry
from gridsense.model.worktime import LimitUnit, WorkCalendar
from rules.contract import IncidentChange

SHANGHAI = ZoneInfo("Asia/Shanghai")
_LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
_SEVERITY_FOR_LEVEL: dict[str, Severity] = {
    "blue": "routine",
    "yellow": "routine",
    "orange": "urgent",
    "red": "most_urgent",
}


def case_key(incident_id: str) -> str:
    """The idempotency key (external task number) of the case an incident files."""
    return "gs-" + hashlib.sha256(incident_id.encode()).hexdigest()[:32]


def readings_evidence(change: IncidentChange) -> Evidence:
    data = [list(p) for p in change.evidence]
    digest = hashlib.sha256(orjson.dumps(data)).hexdigest()
    inc = change.incident
    return Evidence(
        kind="readings",
        description=f"{inc.peak_device}: {inc.window_s // 60} min window, values in {inc.unit}",
        sha256=digest,
        data=data,
    )


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
        lat, lon = from_wgs84(grid.lat, grid.lon, self._cfg.crs)
        level_zh = _LEVEL_ZH.get(inc.level, inc.level)
        window_min = inc.window_s // 60
        place_zh = f"{grid.street_name}{grid.community_name}网格{grid.grid_code[-3:]}"
        title_zh = f"{place_zh}{cat.name_zh}（{level_zh}）"
        desc_zh = (
            f"自动发现：雨量计 {inc.peak_device} 近{window_min}分钟累计降雨 {inc.peak_value:.1f} 毫米，"
            f"达到{level_zh}等级，网格 {grid.grid_code} 可能出现{cat.name_zh}，请派员处置。"
        )
        severity: Severity = _SEVERITY_FOR_LEVEL.get(inc.level, cat.severity)
        if _rank_sev(cat.severity) > _rank_sev(severity):
            severity = cat.severity
        return GridCase(
            case_key=case_key(inc.incident_id),
            incident_id=inc.incident_id,
            source="sensor",
            source_code=self._cfg.source_codes["sensor"],
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
                wgs84_lat=grid.lat,
                wgs84_lon=grid.lon,
                address=grid.address or place_zh,
            ),
            title_zh=title_zh,
            description_zh=desc_zh,
            title_en=(
                f"{cat.name_en.capitalize()} ({inc.level}) in grid {grid.grid_code}"
                if self._cfg.english
                else None
            ),
            description_en=(
                f"Auto-detected: gauge {inc.peak_device} measured {inc.peak_value:.1f} mm in "
                f"{window_min} min, {inc.level} level; possible {cat.name_en} in grid {grid.grid_code}."
                if self._cfg.english
                else None
            ),
            severity=severity,
            warning_level=inc.level,  # type: ignore[arg-type]
            filed_at=filed_at,
            deadline=deadline,
            deadline_basis=f"{cat.limit:g} {cat.limit_unit}",
            routing_level=cat.routing_level,
            responsible_unit=_unit_for(cat.routing_level, grid.street_name, grid.community_name),
            evidence=[readings_evidence(change)],
            subject=inc.subject,
            peak_value=inc.peak_value,
            unit=inc.unit,
        )

    def update(self, change: IncidentChange) -> CaseUpdate:
        inc = change.incident
        key = case_key(inc.incident_id)
        at = change.at.astimezone(SHANGHAI)
        if change.kind == "raised":
            level_zh = _LEVEL_ZH.get(inc.level, inc.level)
            return CaseUpdate(
                update_key=f"{key}:raised:{inc.level}",
                case_key=key,
                kind="level_raised",
                at=at,
                warning_level=inc.level,  # type: ignore[arg-type]
                severity=_SEVERITY_FOR_LEVEL.get(inc.level),
                note_zh=f"等级升至{level_zh}，峰值 {inc.peak_value:.1f} {inc.unit}（{inc.peak_device}）",
                note_en=f"level raised to {inc.level}, peak {inc.peak_value:.1f} {inc.unit}",
                peak_value=inc.peak_value,
                evidence=[readings_evidence(change)],
            )
        return CaseUpdate(
            update_key=f"{key}:cleared",
            case_key=key,
            kind="condition_cleared",
            at=at,
            note_zh=f"传感器显示情况已解除，峰值 {inc.peak_value:.1f} {inc.unit}",
            note_en=f"sensors show the condition cleared; peak {inc.peak_value:.1f} {inc.unit}",
            peak_value=inc.peak_value,
        )


def _rank_sev(s: str) -> int:
    return ("routine", "urgent", "most_urgent").index(s)


def _unit_for(level: str, street: str, community: str) -> str:
    """Small matters stay in the community, big matters stay in the street."""
    if level == "community":
        # Registry names already end in 社区 (西海社区): do not write 西海社区社区工作站.
        return f"{community.removesuffix('社区')}社区工作站"
    if level == "street":
        return f"{street}城市管理分中心"
    return "区城市管理监督指挥中心"
