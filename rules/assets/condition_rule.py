"""Damage reports and verification (核查): the condition a scan reports about its asset.

- A scan reporting anything but ``ok`` opens a component case with the asset's own code
  (``component:0401`` for a tree), or updates the open one: one case per asset at a time.
  The category table sets severity and deadline (古树名木: urgent, 1 working day); a grade
  may route the case higher (一级 trees to the district by default).
- An ``ok`` scan on an asset with an open case is evidence: from a maintainer it is the
  handling feedback (处理反馈), and the case stays open; from a verifying role (an inspector
  by default) it is the verification (核查), and the case closes on our side.
"""

from __future__ import annotations

import sqlite3

from gridsense.model.incident import IncidentChange
from rules.assets.casefile import CONDITION_ZH, ROLE_ZH, asset_label_zh, new_incident, scan_evidence
from rules.assets.config import AssetConfig
from rules.assets.store import AssetIncidents
from rules.assets.verify import VerifiedPing

RULE_ID = "asset_condition"


class ConditionRule:
    """Files and follows the damage case of each asset."""

    rule_id = RULE_ID

    def __init__(self, cfg: AssetConfig) -> None:
        self.cfg = cfg

    def on_ping(self, conn: sqlite3.Connection, vp: VerifiedPing) -> list[IncidentChange]:
        asset, p, m = vp.asset, vp.ping, vp.maintainer
        atype = self.cfg.types[asset.type]
        what = asset_label_zh(asset, atype.name_zh)
        inc = AssetIncidents.open_for(conn, RULE_ID, asset.asset_id)
        note = f"：{p.notes}" if p.notes else ""
        note_en = f": {p.notes}" if p.notes else ""
        who = f"{ROLE_ZH[m.role]}{m.name}（{m.unit}）"
        if p.condition != "ok":
            zh = f"{who}扫码上报{what}{CONDITION_ZH[p.condition]}{note}；责任单位：{asset.owner}"
            en = (
                f"{m.role} {m.maintainer_id} scanned {atype.name_en} {asset.asset_id} and reported it "
                f"{p.condition}{note_en}; responsible unit: {asset.owner}"
            )
            if inc is None:
                inc = new_incident(
                    rule_id=RULE_ID,
                    category_ref=asset.category_ref,
                    subject=asset.asset_id,
                    grid_code=asset.grid_code,
                    opened_at=p.ts,
                    summary_zh=zh,
                    summary_en=en,
                    peak_value=1,
                    unit="reports",
                    location=(asset.lat, asset.lon),
                    routing_level=atype.grade_routing.get(asset.grade or ""),
                )
                AssetIncidents.save(conn, inc)
                return [IncidentChange("opened", inc, p.ts, (scan_evidence(vp, zh, "report"),))]
            inc.peak_value += 1
            inc.updated_at = max(inc.updated_at, p.ts)
            inc.summary_zh, inc.summary_en = f"再次上报：{zh}", f"reported again: {en}"
            AssetIncidents.save(conn, inc)
            return [IncidentChange("updated", inc, p.ts, (scan_evidence(vp, inc.summary_zh, "report"),))]
        if inc is None:
            return []
        inc.updated_at = max(inc.updated_at, p.ts)
        if m.role in self.cfg.verification_roles:
            inc.summary_zh = f"{who}现场扫码核查{what}：状况正常，核查通过{note}"
            inc.summary_en = f"{m.role} {m.maintainer_id} verified {asset.asset_id} on site: condition ok"
            inc.closed_at = max(p.ts, inc.opened_at)
            AssetIncidents.save(conn, inc)
            evidence = scan_evidence(vp, inc.summary_zh, "verification")
            return [IncidentChange("updated", inc, p.ts, (evidence,))]
        inc.summary_zh = f"{who}扫码反馈{what}已处置，状况正常，待监督员核查{note}"
        inc.summary_en = (
            f"{m.role} {m.maintainer_id} reports {asset.asset_id} handled, ok; awaiting verification"
        )
        AssetIncidents.save(conn, inc)
        return [IncidentChange("updated", inc, p.ts, (scan_evidence(vp, inc.summary_zh, "feedback"),))]
