"""The embedded SQLite state database (WAL): one file, one schema per stage.

Readings, dead letters, incident state and the case outbox live in one file so that a
batch of messages, the incidents it changes and the cases it files commit in **one**
transaction: the transactional outbox. MQTT messages are acknowledged only after it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bridge.outbox import SCHEMA as OUTBOX_SCHEMA
from detectors.handler import SCHEMA as CAMERA_SCHEMA
from ingest.deadletter import SCHEMA as DEADLETTER_SCHEMA
from ingest.deadletter import upgrade as upgrade_dead_letters
from ingest.reading_store import SCHEMA as READING_SCHEMA
from ingest.reading_store import upgrade as upgrade_readings
from ingest.spool import SCHEMA as SPOOL_SCHEMA
from ingest.spool import upgrade as upgrade_spool
from rules.assets.schema import SCHEMA as ASSET_SCHEMA
from rules.incidents import SCHEMA as INCIDENT_SCHEMA

SCHEMAS = (
    READING_SCHEMA,
    DEADLETTER_SCHEMA,
    INCIDENT_SCHEMA,
    OUTBOX_SCHEMA,
    SPOOL_SCHEMA,
    ASSET_SCHEMA,
    CAMERA_SCHEMA,
)


def connect(path: Path | str, *, create: bool = True) -> sqlite3.Connection:
    """Open the state database with the pragmas every connection needs."""
    if create and str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed batch survives power loss, which is what lets us ack after commit.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    if create:
        upgrade_readings(conn)
        upgrade_spool(conn)
        upgrade_dead_letters(conn)
        for schema in SCHEMAS:
            conn.executescript(schema)
    return conn
