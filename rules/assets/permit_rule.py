"""Breakfast carts trading outside their permit: a street-order (街面秩序) case.

Outside the permit's places → ``cart_zone_category`` (店外经营, event 0504 by default); outside
its hours, past its end date or with no permit at all → ``cart_licence_category`` (无照经营
游商, 0501): at that moment the cart trades without a licence. One case per cart at a time;
a later scan inside place and hours clears it.
"""

from __future__ import annotations

import sqlite3

from gridsense.model.incident import IncidentChange
from rules.assets.casefile import asset_label_zh, new_incident, scan_evidence
from rules.assets.config import AssetConfig
from rules.assets.permits import SHANGHAI
from rules.assets.store import AssetIncidents
from rules.assets.verify import VerifiedPing

RULE_ID = "cart_permit"
BREACHES = {
    "no_permit": "无经营许可",
    "permit_expired": "许可已过期",
    "outside_permit_hours": "不在许可经营时段",
    "outside_permit_zone": "超出许可经营地点",
}
_LICENCE = frozenset({"no_permit", "permit_expired", "outside_permit_hours"})


class CartPermitRule:
    """Files the permit case of a mobile asset seen trading outside its permit."""

    rule_id = RULE_ID

    def __init__(self, cfg: AssetConfig) -> None:
        self.cfg = cfg

    def on_ping(self, conn: sqlite3.Connection, vp: VerifiedPing) -> list[IncidentChange]:
        asset, p = vp.asset, vp.ping
        if vp.lat is None or vp.lon is None:
            return []  # no position: nothing can be said about place or hours
        breaches = [f for f in vp.flags if f in BREACHES]
        inc = AssetIncidents.open_for(conn, RULE_ID, asset.asset_id)
        if not breaches:
            if inc is None:
                return []
            inc.updated_at = max(inc.updated_at, p.ts)
            inc.closed_at = max(p.ts, inc.opened_at)
            inc.summary_zh = f"扫码核实{asset.name}已在许可地点和时段内经营"
            inc.summary_en = f"cart {asset.asset_id} seen trading within its permit again"
            AssetIncidents.save(conn, inc)
            return [IncidentChange("cleared", inc, p.ts, (scan_evidence(vp, inc.summary_zh, "permit"),))]
        atype = self.cfg.types[asset.type]
        local = p.ts.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        permit = f"许可证 {asset.permit.permit_id}" if asset.permit else "无许可证"
        far = (
            f"，距许可经营点约 {vp.distance_m:.0f} 米"
            if vp.distance_m is not None and "outside_permit_zone" in breaches
            else ""
        )
        zh = (
            f"{asset_label_zh(asset, atype.name_zh)}（{permit}）于 {local} "
            f"{'、'.join(BREACHES[b] for b in breaches)}{far}；责任单位：{asset.owner}"
        )
        en = f"{atype.name_en} {asset.asset_id} seen trading at {local} local time: {', '.join(breaches)}"
        if inc is None:
            category = (
                self.cfg.cart_licence_category if _LICENCE & set(breaches) else self.cfg.cart_zone_category
            )
            inc = new_incident(
                rule_id=RULE_ID,
                category_ref=category,
                subject=asset.asset_id,
                grid_code=asset.grid_code,
                opened_at=p.ts,
                summary_zh=zh,
                summary_en=en,
                peak_value=round(vp.distance_m or 0.0, 1),
                unit="m",
                location=(vp.lat, vp.lon),
            )
            AssetIncidents.save(conn, inc)
            return [IncidentChange("opened", inc, p.ts, (scan_evidence(vp, zh, "permit"),))]
        inc.updated_at = max(inc.updated_at, p.ts)
        inc.peak_value = max(inc.peak_value, round(vp.distance_m or 0.0, 1))
        inc.summary_zh, inc.summary_en = f"再次发现：{zh}", f"seen again: {en}"
        AssetIncidents.save(conn, inc)
        return [IncidentChange("updated", inc, p.ts, (scan_evidence(vp, inc.summary_zh, "permit"),))]
