"""OpsFeed: one poller per page server that watches the store and publishes snapshots.

Every ``poll_s`` it asks SQLite whether anything was committed (``PRAGMA data_version``,
free), and only then reads cheap fingerprints (max rowids, open counts) to tell which
panels changed. The map state, which reads the last hour of readings, is rebuilt at most
every ``max(poll_s, 5 × its last build time)`` (capped by ``map_refresh_max_s``) while
data arrives, and once a minute regardless so that grids fall silent on the map. All SSE
clients share the snapshot; nothing is computed per client.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridsense.ops.assets import has_tables
from gridsense.ops.config import OpsConfig
from gridsense.ops.fmt import parse_time
from gridsense.ops.gridmap import GridMap, MapState, map_state
from gridsense.ops.incidents import open_incidents
from gridsense.ops.rain import RecentData, now_ms, recent_data
from gridsense.ops.source import OpsSource, ro_connect
from ingest.reading_store import newest_ms

log = logging.getLogger("gridsense.ops.feed")

#: The map is rebuilt at least this often, even with no new data (grids age into "no data").
MAP_AGEING_S = 60.0


@dataclass(frozen=True)
class Snapshot:
    """What every page sees now. ``versions`` bump when that part of the store changed."""

    version: int
    at_ms: int
    versions: dict[str, int]
    map_version: int
    map: MapState | None
    kpi: dict[str, Any]
    live: dict[str, Any] | None
    recent: RecentData = field(default_factory=lambda: RecentData({}, {}, set()))

    def event(self, with_map: bool) -> str:
        """The SSE ``data:`` payload: JSON; the map string only when the client lacks it."""
        doc: dict[str, Any] = {
            "version": self.version,
            "at_ms": self.at_ms,
            "versions": self.versions,
            "map_version": self.map_version,
            "kpi": self.kpi,
            "live": self.live,
        }
        if with_map and self.map is not None:
            doc["map"] = self.map.chars
            doc["map_counts"] = self.map.counts
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


class OpsFeed:
    """Polls the store in a thread of its own; ``snapshot`` is replaced whole, never mutated."""

    def __init__(self, source: OpsSource, gridmap: GridMap, cfg: OpsConfig) -> None:
        self._source = source
        self._map = gridmap
        self._cfg = cfg
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fp: dict[str, tuple[Any, ...]] = {}
        self._versions = {"cases": 0, "incidents": 0, "readings": 0, "deadletters": 0, "assets": 0}
        self._dead_count = 0
        self._data_version: int | None = None
        self._map_dirty = True
        self._map_built = 0.0
        self._map_cost = 0.0
        self._map_version = 0
        self._map_state: MapState | None = None
        self._recent = RecentData({}, {}, set())
        self._kpi: dict[str, Any] = {}
        self.errors = 0
        self.snapshot = Snapshot(0, now_ms(), dict(self._versions), 0, None, {}, None)
        self.closed = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Poll once now (the first page is then complete), then keep polling in a thread."""
        if self._thread is not None:
            return
        try:
            conn = ro_connect(self._source.store_path)
            try:
                self.poll(conn)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            self.errors += 1
            log.warning("ops feed could not read the store at start: %s", exc)
        self._thread = threading.Thread(target=self._run, name="ops-feed", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.closed.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = ro_connect(self._source.store_path)
                    # data_version counts per connection: a new one compares with nothing.
                    self._data_version = None
                self.poll(conn)
            except sqlite3.Error as exc:
                # The store may be mid-checkpoint or briefly locked: say so, reopen, go on.
                self.errors += 1
                log.warning("ops feed could not read the store: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self._cfg.poll_s)
        if conn is not None:
            conn.close()

    # --- one poll -------------------------------------------------------------------------

    def poll(self, conn: sqlite3.Connection) -> Snapshot:
        """Look for changes once and publish a new snapshot if there were any."""
        at = now_ms()
        changed = False
        (dv,) = conn.execute("PRAGMA data_version").fetchone()
        if dv != self._data_version:
            self._data_version = dv
            self._versions["readings"] += 1
            self._map_dirty = True
            changed = True
            for name, fp in self._fingerprints(conn).items():
                if self._fp.get(name) != fp:
                    self._fp[name] = fp
                    self._versions[name] += 1
                    if name == "deadletters":
                        (self._dead_count,) = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        since = time.monotonic() - self._map_built
        throttle = min(max(self._cfg.poll_s, 5 * self._map_cost), self._cfg.map_refresh_max_s)
        if (self._map_dirty and since >= throttle) or since >= MAP_AGEING_S or self._map_state is None:
            self._rebuild_map(conn, at)
            changed = True
        live = self._source.live()
        live_doc = asdict(live) if live is not None else None
        if live_doc != self.snapshot.live or at - self.snapshot.at_ms >= 5000:
            changed = True  # and a beat every 5 s, so rates on the page fall back to 0 when idle
        if changed:
            self._kpi = self._kpis(conn, at)
            self.snapshot = Snapshot(
                self.snapshot.version + 1,
                at,
                dict(self._versions),
                self._map_version,
                self._map_state,
                self._kpi,
                live_doc,
                self._recent,
            )
        return self.snapshot

    def _rebuild_map(self, conn: sqlite3.Connection, at: int) -> None:
        t0 = time.perf_counter()
        self._recent = recent_data(conn, at)
        new = map_state(conn, self._map, self._recent)
        self._map_cost = time.perf_counter() - t0
        self._map_built = time.monotonic()
        self._map_dirty = False
        if self._map_state is None or new.chars != self._map_state.chars:
            self._map_version += 1
        self._map_state = new

    def _fingerprints(self, conn: sqlite3.Connection) -> dict[str, tuple[Any, ...]]:
        one = conn.execute
        fps: dict[str, tuple[Any, ...]] = {
            "cases": (
                *one("SELECT COUNT(*), MAX(rowid), MAX(status_at_ms) FROM cases").fetchone(),
                *one("SELECT MAX(seq), COUNT(*) FILTER (WHERE status = 'pending') FROM outbox").fetchone(),
            ),
            "incidents": (
                *one("SELECT MAX(rowid) FROM incidents").fetchone(),
                *one("SELECT COUNT(*), MAX(updated_at) FROM incidents WHERE closed_at IS NULL").fetchone(),
            ),
            "deadletters": tuple(one("SELECT MAX(id) FROM dead_letters").fetchone()),
        }
        if has_tables(conn, "camera_tracks"):
            fps["incidents"] += tuple(
                one(
                    "SELECT COUNT(*), SUM(hits), MAX(reported) FROM camera_tracks WHERE state = 'open'"
                ).fetchone()
            )
        if has_tables(conn, "asset_incidents", "asset_pings"):
            fps["assets"] = (
                *one("SELECT MAX(id) FROM asset_pings").fetchone(),
                *one(
                    "SELECT COUNT(*), MAX(updated_at) FROM asset_incidents WHERE closed_at IS NULL"
                ).fetchone(),
            )
        return fps

    def _kpis(self, conn: sqlite3.Connection, at: int) -> dict[str, Any]:
        open_cases = conn.execute(
            "SELECT deadline FROM cases WHERE status NOT IN ('结案', '作废', 'rejected')"
        ).fetchall()
        now = datetime.fromtimestamp(at / 1000, UTC)
        overdue = 0
        for (deadline,) in open_cases:
            ts = parse_time(deadline)
            overdue += ts is not None and ts < now
        incidents = open_incidents(conn)
        silent = sum(i.rule_id.endswith("_silent") for i in incidents)
        (pending,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        (rejected,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'rejected'").fetchone()
        newest = newest_ms(conn)
        ms = self._map_state
        return {
            "open_cases": len(open_cases),
            "overdue_cases": overdue,
            "open_incidents": len(incidents),
            "silent_devices": silent,
            "outbox_pending": pending,
            "outbox_rejected": rejected,
            "dead_letters": self._dead_count,
            "newest_reading_ms": newest,
            "grids": len(self._map.codes),
            "grids_reporting": len(self._recent.reporting),
            "grids_with_open_case": ms.open_case_grids if ms is not None else 0,
            "map_build_ms": round(self._map_cost * 1000, 1),
        }
