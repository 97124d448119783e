"""What the asset rules share: building an asset incident and a scan's evidence."""

from __future__ import annotations

from datetime import datetime

from gridsense.model.case import Evidence
from gridsense.model.incident import Incident, incident_id
from rules.assets.registry import Asset
from rules.assets.verify import VerifiedPing

CONDITION_ZH = {
    "ok": "状况正常",
    "damaged": "损坏",
    "missing_parts": "部件缺失",
    "graffiti": "有涂鸦",
    "leaning": "倾斜",
    "pest": "有病虫害",
    "dirty": "脏污",
    "missing": "丢失",
    "other": "存在其他问题",
}
ROLE_ZH = {"maintainer": "养护人员", "inspector": "监督员"}


def asset_label_zh(asset: Asset, type_zh: str) -> str:
    """``古树名木“银锭桥古槐”（1101020401000001，一级）``."""
    grade = f"，{asset.grade}" if asset.grade else ""
    return f"{type_zh}“{asset.name}”（{asset.asset_id}{grade}）"


def new_incident(
    *,
    rule_id: str,
    category_ref: str,
    subject: str,
    grid_code: str,
    opened_at: datetime,
    summary_zh: str,
    summary_en: str,
    peak_value: float,
    unit: str,
    window_s: int = 0,
    location: tuple[float, float] | None = None,
    routing_level: str | None = None,
) -> Incident:
    """An open QR incident; its id derives from rule, subject and the data time it opened."""
    return Incident(
        incident_id=incident_id(rule_id, subject, opened_at),
        rule_id=rule_id,
        category_ref=category_ref,
        grid_code=grid_code,
        opened_at=opened_at,
        updated_at=opened_at,
        level=None,
        peak_value=peak_value,
        unit=unit,
        window_s=window_s,
        subject=subject,
        source="qr",
        summary_zh=summary_zh,
        summary_en=summary_en,
        location=location,
        routing_level=routing_level,
    )


def scan_evidence(vp: VerifiedPing, description: str, role: str = "scan") -> Evidence:
    """The scan as evidence: who, when, where (WGS-84), what they saw, and how it checked out."""
    p = vp.ping
    data = {
        "role": role,  # "report", "feedback", "verification", "permit", "scan"
        "asset_id": vp.asset.asset_id,
        "asset_name": vp.asset.name,
        "asset_type": vp.asset.type,
        "grade": vp.asset.grade,
        "maintainer_id": vp.maintainer.maintainer_id,
        "maintainer_role": vp.maintainer.role,
        "maintainer_unit": vp.maintainer.unit,
        "ts": p.ts.isoformat(),
        "condition": p.condition,
        "notes": p.notes,
        "lat": vp.lat,
        "lon": vp.lon,
        "crs": "wgs84",
        "accuracy_m": vp.accuracy_m,
        "distance_m": None if vp.distance_m is None else round(vp.distance_m, 1),
        "flags": list(vp.flags),
        "key_id": vp.key_id,
        "read_from": "photo" if vp.from_photo else "qr",
        "photo_sha256": vp.photo_sha256,
        "scan_key": vp.dedupe_key,
    }
    return Evidence.of_data("ping", description, data)
