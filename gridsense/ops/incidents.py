"""Open incidents from every stage, read the same way.

The rules keep theirs in ``incidents``; the camera stage in ``camera_tracks`` (state
``open``, the incident as JSON); the asset stage in ``asset_incidents`` (the incident as
JSON, datetimes as ``{"$dt": …}``). Tables a store does not have are left out.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gridsense.ops.assets import has_tables

_COLUMNS = (
    "incident_id, rule_id, subject, grid_code, category_ref, source, level, opened_at,"
    " peak, unit, summary, routing"
)

# The first SELECT of a compound names its columns.
_RULES = (
    "SELECT incident_id, rule_id, subject, grid_code, category_ref, source, level, opened_at,"
    " peak_value AS peak, unit, json_extract(state, '$.summary_zh') AS summary,"
    " json_extract(state, '$.routing_level') AS routing FROM incidents WHERE closed_at IS NULL"
)


def _json_source(table: str, col: str, where: str, opened: str, keys: tuple[str, str, str]) -> str:
    """``keys``: the SQL for incident id, rule id and subject (columns where the table has them)."""

    def j(key: str) -> str:
        return f"json_extract({col}, '$.{key}')"

    return (
        f"SELECT {keys[0]}, {keys[1]}, {keys[2]}, {j('grid_code')}, {j('category_ref')},"
        f" coalesce({j('source')}, 'sensor'), {j('level')}, {opened}, coalesce({j('peak_value')}, 0),"
        f" coalesce({j('unit')}, ''), {j('summary_zh')}, {j('routing_level')} FROM {table} WHERE {where}"
    )


_CAMERA = _json_source(
    "camera_tracks",
    "incident",
    "state = 'open' AND incident IS NOT NULL AND json_extract(incident, '$.closed_at') IS NULL",
    "json_extract(incident, '$.opened_at')",
    ("json_extract(incident, '$.incident_id')", "json_extract(incident, '$.rule_id')", "camera_id"),
)
_ASSETS = _json_source(
    "asset_incidents",
    "body",
    "closed_at IS NULL",
    "json_extract(body, '$.opened_at.\"$dt\"')",
    ("incident_id", "rule_id", "subject"),
)


@dataclass(frozen=True)
class OpenIncident:
    incident_id: str
    rule_id: str
    subject: str
    grid_code: str
    category_ref: str
    source: str
    level: str | None
    opened_at: str
    peak: float
    unit: str
    summary: str | None
    routing: str | None

    @property
    def is_summary(self) -> bool:
        """A street or district summary (escalation), not an incident in its own grid."""
        return self.routing in ("street", "district")


def open_incidents_sql(conn: sqlite3.Connection) -> str:
    """One SELECT over every incident table this store has (columns: see ``OpenIncident``)."""
    parts = [_RULES]
    if has_tables(conn, "camera_tracks"):
        parts.append(_CAMERA)
    if has_tables(conn, "asset_incidents"):
        parts.append(_ASSETS)
    return f"SELECT {_COLUMNS} FROM (" + " UNION ALL ".join(parts) + ")"


def open_incidents(
    conn: sqlite3.Connection, where: str = "", params: tuple[object, ...] = ()
) -> list[OpenIncident]:
    """Open incidents of all stages, oldest first; ``where`` filters on the columns above."""
    sql = open_incidents_sql(conn) + (f" WHERE {where}" if where else "") + " ORDER BY opened_at"
    return [OpenIncident(*row) for row in conn.execute(sql, params)]
