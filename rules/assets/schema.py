"""The asset stage's tables, for ``gridsense.db`` to create (no imports: cheap to load).

- ``asset_pings``: every accepted ping once (``dedupe_key``); ``id`` only grows, so the
  overdue sweep can read what is new since its last run.
- ``asset_last_scan``: the newest valid scan per asset and the ping id (``seq``) that set it.
- ``asset_suspect_scans``: rejected scans that look like forged or moved tags.
- ``asset_incidents``: the asset rules' incidents, one open per (rule, subject).
- ``asset_sweep_state``: when the first sweep ran (the baseline of never-scanned assets).
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS asset_pings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key    TEXT NOT NULL UNIQUE,
    asset_id      INTEGER NOT NULL,
    maintainer_id TEXT NOT NULL,
    role          TEXT NOT NULL,
    ts_ms         INTEGER NOT NULL,
    received_ms   INTEGER NOT NULL,
    condition     TEXT NOT NULL,
    flags         TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    lat           REAL,
    lon           REAL,
    accuracy_m    REAL,
    distance_m    REAL,
    notes         TEXT NOT NULL,
    photo_sha256  TEXT
);
CREATE INDEX IF NOT EXISTS asset_pings_asset ON asset_pings (asset_id, ts_ms);
CREATE TABLE IF NOT EXISTS asset_last_scan (
    asset_id      INTEGER PRIMARY KEY,
    last_valid_ms INTEGER NOT NULL,
    seq           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS asset_last_scan_seq ON asset_last_scan (seq);
CREATE TABLE IF NOT EXISTS asset_suspect_scans (
    id        INTEGER PRIMARY KEY,
    digest    TEXT NOT NULL UNIQUE,
    subject   TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    lat       REAL,
    lon       REAL
);
CREATE INDEX IF NOT EXISTS asset_suspect_subject ON asset_suspect_scans (subject, at_ms);
CREATE TABLE IF NOT EXISTS asset_incidents (
    incident_id TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    closed_at   TEXT,
    body        TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS asset_incidents_one_open
    ON asset_incidents (rule_id, subject) WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS asset_sweep_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
