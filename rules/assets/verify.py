"""Checking a decoded ping against the tag keys and the registries.

Every failure raises ``Rejected`` with a reason (the ping is dead-lettered). A breakfast
cart outside its permit is *not* rejected: the scan is genuine, and the breach is what the
permit rule files, so it comes back as a flag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridsense.errors import Rejected
from gridsense.model.envelopes import AssetPing
from gridsense.model.geo import distance_m, to_wgs84
from gridsense.model.timekeys import epoch_ms
from rules.assets.config import AssetConfig
from rules.assets.maintainers import Maintainer, MaintainerRegistry
from rules.assets.ping_codec import DecodedPing, PhotoQrReader
from rules.assets.registry import Asset, AssetRegistry
from rules.assets.tags import KeyRing


@dataclass(slots=True)  # not frozen: see Asset
class VerifiedPing:
    """A ping that passed every check, with what the rules need to know about it."""

    asset: Asset
    ping: AssetPing
    maintainer: Maintainer
    key_id: str
    lat: float | None  # WGS-84 of the scan
    lon: float | None
    accuracy_m: float | None
    distance_m: float | None  # from the asset (fixed) or outside the permit's places (mobile)
    flags: tuple[str, ...]  # permit breaches of a cart: the permit rule's input
    dedupe_key: str
    ping_id: str | None
    photo_sha256: str | None
    from_photo: bool


def dedupe_key(asset_id: str, maintainer_id: str, ts: datetime, condition: str, ping_id: str | None) -> str:
    """The same scan sent twice (a redelivery, an app's retry) has the same key."""
    raw = (
        f"{asset_id}|{maintainer_id}|id:{ping_id}"
        if ping_id is not None
        else f"{asset_id}|{maintainer_id}|{epoch_ms(ts)}|{condition}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class PingVerifier:
    """Signature, asset, grid, maintainer, condition, place and time checks, in that order."""

    def __init__(
        self,
        cfg: AssetConfig,
        registry: AssetRegistry,
        maintainers: MaintainerRegistry,
        keyring: KeyRing,
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.maintainers = maintainers
        self.keyring = keyring
        self.photos = PhotoQrReader(cfg.max_photo_pixels)
        self._max_future = timedelta(seconds=cfg.max_future_s)
        self._max_age = timedelta(seconds=cfg.max_age_s)

    def verify(self, d: DecodedPing, now: datetime) -> VerifiedPing:
        p = d.ping
        if p.ts > now + self._max_future:
            raise Rejected("future_timestamp", f"ts {p.ts.isoformat()} is ahead of the server clock")
        if p.ts < now - self._max_age:
            raise Rejected("stale_ping", f"ts {p.ts.isoformat()} is older than {self.cfg.max_age_s:g} s")
        from_photo = p.qr_payload is None
        if p.qr_payload is not None:
            payload = p.qr_payload
        else:
            assert p.photo_jpeg is not None  # the codec lets no ping through without one
            payload = self.photos.read(p.photo_jpeg)
        tag = self.keyring.verify(payload)
        if tag.asset_id != p.asset_id:
            raise Rejected(
                "asset_mismatch", f"the tag belongs to asset {tag.asset_id}, the ping is about {p.asset_id}"
            )
        i = self.registry.index_of(tag.asset_id)
        if i < 0:
            raise Rejected("unknown_asset", f"asset {tag.asset_id} is not in the registry")
        asset = self.registry.asset(i)
        if not asset.active:
            raise Rejected("asset_inactive", f"asset {asset.asset_id} is {asset.status}")
        if asset.grid_code != p.grid_code:
            raise Rejected(
                "grid_mismatch", f"asset {asset.asset_id} is in grid {asset.grid_code}, not {p.grid_code}"
            )
        m = self.maintainers.get(p.maintainer_id)
        if m is None:
            raise Rejected("unknown_maintainer", f"maintainer {p.maintainer_id!r} is not registered")
        if not m.active:
            raise Rejected("maintainer_inactive", f"maintainer {m.maintainer_id} is not active")
        if not m.may_scan(asset.type, asset.grid_code):
            raise Rejected(
                "not_authorised", f"{m.maintainer_id} may not scan a {asset.type} in grid {asset.grid_code}"
            )
        atype = self.registry.types[asset.type]
        if p.condition not in atype.conditions:
            raise Rejected("condition_not_for_type", f"{p.condition!r} is not a condition of a {asset.type}")
        lat = lon = dist = None
        flags: tuple[str, ...] = ()
        credit = min(p.accuracy_m or 0.0, self.cfg.accuracy_cap_m)
        if p.position is None:
            if self.cfg.require_position:
                raise Rejected("no_position", "the ping carries no GPS position")
            if atype.mobile:
                flags = ("no_position",)
        else:
            lat, lon = to_wgs84(p.position.lat, p.position.lon, p.position.crs)
            if atype.mobile:
                if asset.permit is None:
                    flags = ("no_permit",)
                else:
                    found, dist = asset.permit.check(lat, lon, credit, p.ts)
                    flags = tuple(found)
            else:
                dist = distance_m(asset.lat, asset.lon, lat, lon)
                allowed = atype.tolerance_m + credit
                if dist > allowed:
                    raise Rejected(
                        "gps_far", f"scanned {dist:.0f} m from {asset.asset_id}, allowed {allowed:.0f} m"
                    )
        return VerifiedPing(
            asset=asset,
            ping=p,
            maintainer=m,
            key_id=tag.key_id,
            lat=lat,
            lon=lon,
            accuracy_m=p.accuracy_m,
            distance_m=dist,
            flags=flags,
            dedupe_key=dedupe_key(asset.asset_id, m.maintainer_id, p.ts, p.condition, d.ping_id),
            ping_id=d.ping_id,
            photo_sha256=d.photo_sha256,
            from_photo=from_photo,
        )
