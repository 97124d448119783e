"""A batch runner shaped like the pipeline's: prepare each message, commit the batch in one
transaction, dead-letter what was rejected. Tests and golden cases drive the asset stage
through it exactly as the pipeline will."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind
from gridsense.model.geo import CRS, from_wgs84
from gridsense.model.incident import IncidentChange
from gridsense.model.registry import GridRegistry
from gridsense.txn import transaction
from ingest.contract import InboundMessage
from ingest.topics import TopicScheme
from rules.assets.config import AssetConfig, TagKey
from rules.assets.ping_codec import encode_ping
from rules.assets.registry import Asset
from rules.assets.stage import AssetStage, build_asset_stage
from rules.assets.store import SCHEMA

#: Test keys: K0 retired, K1 still verifies (rotated out), K2 signs new tags.
TEST_KEYS = [
    TagKey(id="K0", secret="retired-test-key-000000000000000000000", state="retired"),
    TagKey(id="K1", secret="previous-test-key-11111111111111111111", state="verify"),
    TagKey(id="K2", secret="current-test-key-222222222222222222222", state="sign"),
]


def asset_config(**overrides: object) -> AssetConfig:
    return AssetConfig.model_validate({"enabled": True, "keyring": TEST_KEYS, **overrides})


@dataclass
class BatchResult:
    """What one batch did: per message, 'accepted' or the rejection reason; the changes."""

    outcomes: list[str] = field(default_factory=list)
    changes: list[IncidentChange] = field(default_factory=list)

    @property
    def rejected(self) -> list[str]:
        return [o for o in self.outcomes if o != "accepted"]


class Harness:
    """The asset stage on an in-memory store, fed batch by batch."""

    def __init__(self, cfg: AssetConfig, grids: GridRegistry, stage: AssetStage | None = None) -> None:
        self.cfg = cfg
        self.stage = stage or build_asset_stage(cfg, grids, max_ping_bytes=1_000_000)
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.executescript(SCHEMA)
        self.scheme = TopicScheme("city")

    @property
    def handler(self):  # type: ignore[no-untyped-def]
        return self.stage.handler

    def asset(self, asset_id: str) -> Asset:
        a = self.stage.registry.get(asset_id)
        assert a is not None, asset_id
        return a

    def topic(self, asset_id: str, grid_code: str | None = None) -> str:
        a = self.stage.registry.get(asset_id)
        grid = grid_code or (a.grid_code if a else "110102012001001")
        return self.scheme.topic(grid, Kind.ASSET, asset_id)

    def ping(
        self,
        asset_id: str,
        *,
        maintainer: str,
        ts: datetime,
        qr: str | None = "@tag",
        at: tuple[float, float] | None = None,
        crs: CRS = CRS.WGS84,
        **kw: object,
    ) -> InboundMessage:
        """A ping at the asset (or at ``at``, WGS-84), position sent in ``crs``; ``@tag`` = genuine tag."""
        a = self.stage.registry.get(asset_id)
        if qr == "@tag":
            qr = self.stage.keyring.sign(asset_id)
        lat, lon = at if at is not None else ((a.lat, a.lon) if a else (39.9458, 116.3813))
        send = from_wgs84(lat, lon, crs)
        payload = encode_ping(maintainer=maintainer, ts=ts, qr=qr, lat=send[0], lon=send[1], crs=crs, **kw)  # type: ignore[arg-type]
        return InboundMessage(self.topic(asset_id), payload, ts)

    def run(self, msgs: list[InboundMessage], now: datetime) -> BatchResult:
        out = BatchResult()
        prepared: list[object] = []
        for msg in msgs:
            try:
                prepared.append(self.handler.prepare(msg, self.scheme.parse(msg.topic), now))
                out.outcomes.append("accepted")
            except Rejected as exc:
                out.outcomes.append(exc.reason)
        with transaction(self.conn):
            out.changes = self.handler.commit(self.conn, prepared, now)
        return out

    def sweep(self, now: datetime) -> list[IncidentChange]:
        changes: list[IncidentChange] = []
        with transaction(self.conn):
            for job in self.stage.jobs:
                changes.extend(job.run(self.conn, now))
        return changes
