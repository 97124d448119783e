"""AssetHandler: the ``asset`` topic kind inside the pipeline's batches.

``prepare`` (outside the transaction, may run on several threads) decodes and verifies a
ping and raises ``Rejected`` for anything that cannot be used. ``commit`` (inside the batch
transaction) stores each accepted ping once, runs the asset rules on it and records the
suspect scans ``prepare`` saw; it returns the incident changes the pipeline queues as cases.

Suspect scans reach ``commit`` through a queue because their pings are rejected (and so
never appear in ``prepared``). The pipeline should call ``commit`` once per batch that held
an asset message, even when every one was rejected; otherwise they wait for the next batch.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from datetime import datetime

from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind
from gridsense.model.geo import to_wgs84
from gridsense.model.incident import IncidentChange
from ingest.contract import InboundMessage
from ingest.topics import Topic
from rules.assets.condition_rule import ConditionRule
from rules.assets.config import AssetConfig
from rules.assets.overdue import clear_on_scan
from rules.assets.permit_rule import CartPermitRule
from rules.assets.ping_codec import DecodedPing, decode_ping
from rules.assets.registry import AssetRegistry
from rules.assets.store import PingLog
from rules.assets.tamper import SuspectScan, TamperWatch
from rules.assets.verify import PingVerifier, VerifiedPing

log = logging.getLogger("gridsense.assets")

MAX_PENDING_SUSPECTS = 10_000


class AssetHandler:
    """``ingest.contract.KindHandler`` for ``<root>/<district>/<grid>/asset/<asset-id>``."""

    kind = Kind.ASSET

    def __init__(
        self,
        cfg: AssetConfig,
        registry: AssetRegistry,
        verifier: PingVerifier,
        tamper: TamperWatch,
        max_ping_bytes: int,
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.verifier = verifier
        self.tamper = tamper
        self.max_ping_bytes = max_ping_bytes
        self.conditions = ConditionRule(cfg)
        self.permits = CartPermitRule(cfg)
        self._tamper_reasons = frozenset(cfg.tamper_reasons)
        self._lock = threading.Lock()
        self._suspects: list[SuspectScan] = []
        self.counters: Counter[str] = Counter()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def prepare(self, msg: InboundMessage, topic: Topic, now: datetime) -> VerifiedPing:
        """Decode and verify one ping; raise ``Rejected`` (and count it) when it cannot be used."""
        try:
            if len(msg.payload) > self.max_ping_bytes:
                raise Rejected("too_large", f"{len(msg.payload)} bytes > limit {self.max_ping_bytes}")
            decoded = decode_ping(msg.payload, topic)
            try:
                vp = self.verifier.verify(decoded, now)
            except Rejected as exc:
                if exc.reason in self._tamper_reasons:
                    self._suspect(msg, decoded, exc, now)
                raise
        except Rejected as exc:
            self._count(f"rejected:{exc.reason}")
            log.info("asset ping rejected reason=%s topic=%s detail=%s", exc.reason, msg.topic, exc.detail)
            raise
        for flag in vp.flags:
            self._count(f"flagged:{flag}")
        return vp

    def _suspect(self, msg: InboundMessage, d: DecodedPing, exc: Rejected, now: datetime) -> None:
        lat = lon = None
        if d.ping.position is not None:
            pos = d.ping.position
            lat, lon = to_wgs84(pos.lat, pos.lon, pos.crs)
        scan = SuspectScan(
            digest=SuspectScan.digest_of(msg.topic, msg.payload),
            reason=exc.reason,
            detail=exc.detail,
            asset=self.registry.get(d.ping.asset_id),
            grid_code=d.ping.grid_code,
            lat=lat,
            lon=lon,
            at=now,
        )
        with self._lock:
            if len(self._suspects) >= MAX_PENDING_SUSPECTS:  # commit not called: do not grow forever
                self._suspects.pop(0)
                self.counters["suspect_scans_dropped"] += 1
            self._suspects.append(scan)
            self.counters["suspect_scans"] += 1

    def restore(self, conn: sqlite3.Connection) -> None:
        """Forget suspect scans of an uncommitted batch; the rest lives in the stage's tables.

        A rolled-back batch is prepared again, and a suspect scan's digest is unique, so
        nothing is lost or counted twice.
        """
        with self._lock:
            self._suspects.clear()

    def commit(self, conn: sqlite3.Connection, prepared: list[object], now: datetime) -> list[IncidentChange]:
        """Store accepted pings once each and return what the asset rules make of them."""
        changes: list[IncidentChange] = []
        for item in prepared:
            assert isinstance(item, VerifiedPing), f"not a prepared asset ping: {type(item).__name__}"
            if not PingLog.add(conn, item, now):
                self._count("duplicates")
                continue
            self._count("accepted")
            changes.extend(clear_on_scan(conn, item))
            changes.extend(self.conditions.on_ping(conn, item))
            if self.cfg.types[item.asset.type].mobile:
                changes.extend(self.permits.on_ping(conn, item))
        with self._lock:
            suspects, self._suspects = self._suspects, []
        changes.extend(self.tamper.record(conn, suspects))
        for c in changes:
            log.info(
                "asset incident %s rule=%s subject=%s category=%s",
                c.kind,
                c.incident.rule_id,
                c.incident.subject,
                c.incident.category_ref,
            )
        return changes
