"""Signed QR tag payloads and the key ring that signs and checks them.

A tag carries ``GS1:<asset id>:<key id>:<mac>``, for example
``GS1:1101020401000017:K2:MFRGGZDFMZTWQ2LK``:

- ``asset id``: the asset's 16-digit component code;
- ``key id``: which key of the ring signed it (A-Z, 0-9, up to 8 characters);
- ``mac``: HMAC-SHA256 over ``gridsense-asset-tag/v1|<asset id>|<key id>``, truncated to
  80 bits and written in RFC 4648 base32 (16 characters, no padding).

Every character is in the QR *alphanumeric* set (0-9, A-Z, ``:``), so the code is encoded at
5.5 bits a character instead of 8.

Why 80 bits. A tag is verified online: the key never leaves the server, so a forger cannot
test guesses offline; each guess is a scan that is rejected and counted towards a tampering
case. One guess succeeds with probability 2⁻⁸⁰; a billion guesses (far beyond what a broker
and the tamper rule let through) still stand at under 1 in 10¹⁵. At error-correction level Q
(25 % of the code may be dirty or scratched, which outdoor tags need) a 64-bit and an 80-bit
MAC both fit QR version 3 (29 × 29 modules): the extra 16 bits cost no density, so the longer
MAC is taken. 128 bits would push the code to version 4 (33 × 33) for no practical gain.

Key rotation: a new key is added in state ``sign`` and the previous one moves to ``verify``,
so tags already on the street stay valid while they are replaced; once they are, the old key
becomes ``retired`` and its tags are rejected (and counted as tampering).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from gridsense.errors import Rejected
from rules.assets.config import TagKey

PREFIX = "GS1"
MAC_BYTES = 10  # 80 bits: see the module docstring
MAC_CHARS = 16  # base32 of 10 bytes, no padding
_DOMAIN = b"gridsense-asset-tag/v1|"
_B32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_KEY_ID = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@dataclass(frozen=True, slots=True)
class TagPayload:
    """A tag whose signature checked out."""

    asset_id: str
    key_id: str


def _is_code(s: str) -> bool:
    return len(s) == 16 and s.isascii() and s.isdigit()


def classify_foreign(payload: str) -> str:
    """A short description of a QR that is not ours, for the dead letter."""
    low = payload[:12].lower()
    if low.startswith(("http://", "https://", "www.")):
        return "a URL"
    if not payload.strip():
        return "empty text"
    return "text of another system"


class KeyRing:
    """Signs tags with the ``sign`` key; verifies with every key not retired."""

    def __init__(self, keys: Sequence[TagKey]) -> None:
        self._macs: dict[str, bytes] = {}
        self._retired: set[str] = set()
        self.signing_key_id: str | None = None
        for k in keys:
            if k.state == "retired":
                self._retired.add(k.id)
                continue
            self._macs[k.id] = k.secret.get_secret_value().encode()
            if k.state == "sign":
                self.signing_key_id = k.id

    def _mac(self, key_id: str, asset_id: str) -> str:
        msg = _DOMAIN + asset_id.encode() + b"|" + key_id.encode()
        return base64.b32encode(hmac.digest(self._macs[key_id], msg, "sha256")[:MAC_BYTES]).decode()

    def sign(self, asset_id: str, key_id: str | None = None) -> str:
        """The QR payload for ``asset_id``, signed with the signing key (or ``key_id``)."""
        if not _is_code(asset_id):
            raise ValueError(f"asset id {asset_id!r} is not a 16-digit component code")
        kid = key_id or self.signing_key_id
        if kid is None or kid not in self._macs:
            raise ValueError(f"no usable key {kid!r} to sign with")
        return f"{PREFIX}:{asset_id}:{kid}:{self._mac(kid, asset_id)}"

    def verify(self, payload: str) -> TagPayload:
        """Check a scanned payload; raise ``Rejected`` with the reason a person can act on."""
        parts = payload.split(":")
        head = parts[0]
        if head != PREFIX:
            if len(head) >= 3 and head[:2] == "GS" and head[2:].isdigit() and len(parts) > 1:
                raise Rejected("unsupported_tag_version", f"tag version {head!r}; this server reads {PREFIX}")
            raise Rejected("foreign_qr", f"the QR holds {classify_foreign(payload)}, not a gridsense tag")
        if len(parts) != 4:
            raise Rejected("malformed_qr", f"expected {PREFIX}:<asset>:<key>:<mac>, got {len(parts)} fields")
        _, asset_id, key_id, mac = parts
        if not _is_code(asset_id):
            raise Rejected("malformed_qr", "the asset id in the tag is not a 16-digit component code")
        if not (1 <= len(key_id) <= 8 and set(key_id) <= _KEY_ID):
            raise Rejected("malformed_qr", "the key id in the tag is not 1-8 of A-Z, 0-9")
        if len(mac) != MAC_CHARS or not set(mac) <= _B32:
            raise Rejected("malformed_qr", f"the signature must be {MAC_CHARS} base32 characters")
        if key_id in self._retired:
            raise Rejected("retired_key", f"key {key_id} is retired; the tag must be replaced")
        if key_id not in self._macs:
            raise Rejected("unknown_key_id", f"key {key_id} is not in the key ring")
        if not hmac.compare_digest(mac, self._mac(key_id, asset_id)):
            raise Rejected("bad_signature", f"the tag of asset {asset_id} does not verify with key {key_id}")
        return TagPayload(asset_id, key_id)
