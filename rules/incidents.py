"""The incident book: open incidents per (rule, subject), persisted with the batch that changed them."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from gridsense.model.envelopes import district_of, street_of
from rules.contract import Incident

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    incident_id   TEXT PRIMARY KEY,
    rule_id       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    grid_code     TEXT NOT NULL,
    category_ref  TEXT NOT NULL,
    source        TEXT NOT NULL,
    opened_at     TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    closed_at     TEXT,
    level         TEXT,
    peak_value    REAL NOT NULL,
    unit          TEXT NOT NULL,
    window_s      INTEGER NOT NULL,
    state         TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open
    ON incidents (rule_id, subject) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS incidents_grid ON incidents (grid_code, closed_at);
"""

_STATE_FIELDS = (
    "summary_zh",
    "summary_en",
    "device_levels",
    "peak_device",
    "location",
    "linked",
    "routing_level",
    "quiet_since",
)


def is_grid_incident(inc: Incident) -> bool:
    """An incident about one grid (not a device, nor a street or district summary)."""
    return inc.routing_level is None and inc.subject == inc.grid_code


class IncidentBook:
    """Open incidents in memory; every change is written in the caller's transaction.

    Open grid incidents are also indexed by category and street, and each district's
    streets with one open, so that escalation reviews only the streets and districts a
    change touches: in a citywide storm thousands of grids are in an incident at once.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], Incident] = {}
        self._dirty: dict[str, Incident] = {}
        #: (category, 9-digit street code) → {grid code: its open incident}
        self._in_street: dict[tuple[str, str], dict[str, Incident]] = {}
        #: (category, 6-digit district code) → {street code: None}, the streets with one open
        self._streets: dict[tuple[str, str], dict[str, None]] = {}

    def open_for(self, rule_id: str, subject: str) -> Incident | None:
        return self._open.get((rule_id, subject))

    def add(self, incident: Incident) -> None:
        replaced = self._open.get((incident.rule_id, incident.subject))
        if replaced is not None:
            self._unindex(replaced)
        self._open[(incident.rule_id, incident.subject)] = incident
        self._index(incident)
        self.touch(incident)

    def touch(self, incident: Incident) -> None:
        self._dirty[incident.incident_id] = incident

    def close(self, incident: Incident, at: datetime) -> None:
        incident.closed_at = at
        closed = self._open.pop((incident.rule_id, incident.subject), None)
        if closed is not None:
            self._unindex(closed)
        self.touch(incident)

    def open_incidents(self) -> list[Incident]:
        return list(self._open.values())

    def open_in_street(self, category: str, street: str) -> list[Incident]:
        """The open grid incidents of one category in one street (9-digit code)."""
        return list(self._in_street.get((category, street), {}).values())

    def streets_open(self, category: str, district: str) -> list[str]:
        """The streets of one district (6-digit code) with an open grid incident of the category."""
        return list(self._streets.get((category, district), ()))

    def _index(self, inc: Incident) -> None:
        if not is_grid_incident(inc):
            return
        street = street_of(inc.grid_code)
        self._in_street.setdefault((inc.category_ref, street), {})[inc.grid_code] = inc
        self._streets.setdefault((inc.category_ref, district_of(inc.grid_code)), {})[street] = None

    def _unindex(self, inc: Incident) -> None:
        if not is_grid_incident(inc):
            return
        street = street_of(inc.grid_code)
        grids = self._in_street.get((inc.category_ref, street))
        if grids is None or grids.get(inc.grid_code) is not inc:
            return
        del grids[inc.grid_code]
        if not grids:
            del self._in_street[(inc.category_ref, street)]
            district = (inc.category_ref, district_of(inc.grid_code))
            streets = self._streets[district]
            del streets[street]
            if not streets:
                del self._streets[district]

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write changed incidents (inside the batch transaction)."""
        for inc in self._dirty.values():
            state = json.dumps({k: getattr(inc, k) for k in _STATE_FIELDS}, ensure_ascii=False)
            conn.execute(
                "INSERT INTO incidents (incident_id, rule_id, subject, grid_code, category_ref, source,"
                " opened_at, updated_at, closed_at, level, peak_value, unit, window_s, state)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (incident_id) DO UPDATE SET updated_at=excluded.updated_at,"
                " closed_at=excluded.closed_at, level=excluded.level, peak_value=excluded.peak_value,"
                " state=excluded.state",
                (
                    inc.incident_id,
                    inc.rule_id,
                    inc.subject,
                    inc.grid_code,
                    inc.category_ref,
                    inc.source,
                    inc.opened_at.isoformat(),
                    inc.updated_at.isoformat(),
                    inc.closed_at.isoformat() if inc.closed_at else None,
                    inc.level,
                    inc.peak_value,
                    inc.unit,
                    inc.window_s,
                    state,
                ),
            )
        self._dirty.clear()

    def discard_changes(self) -> None:
        """Forget unflushed changes (the batch was rolled back; state is rebuilt from the store)."""
        self._dirty.clear()

    def load(self, conn: sqlite3.Connection) -> None:
        """Reload the open incidents after a restart."""
        self._open.clear()
        self._in_street.clear()
        self._streets.clear()
        rows = conn.execute(
            "SELECT incident_id, rule_id, subject, grid_code, category_ref, source, opened_at, updated_at,"
            " level, peak_value, unit, window_s, state FROM incidents WHERE closed_at IS NULL"
        )
        for iid, rule, subject, grid, cat, source, opened, updated, level, peak, unit, window_s, st in rows:
            state = json.loads(st)
            if state.get("location") is not None:
                state["location"] = tuple(state["location"])
            inc = Incident(
                incident_id=iid,
                rule_id=rule,
                category_ref=cat,
                grid_code=grid,
                opened_at=datetime.fromisoformat(opened),
                updated_at=datetime.fromisoformat(updated),
                level=level,
                peak_value=peak,
                unit=unit,
                window_s=window_s,
                subject=subject,
                source=source,
                **state,
            )
            self._open[(rule, subject)] = inc
            self._index(inc)
