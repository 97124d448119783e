"""The asset ping wire format, and reading the QR from a ping's photo.

A scanning app publishes one JSON object per scan on
``city/<district>/<grid>/asset/<asset-id>`` (``asset-id`` = the 16-digit component code the
maintainer meant to scan; ``grid`` = that asset's grid):

.. code-block:: json

    {
      "v": 1,
      "qr": "GS1:1101020401000001:K2:MFRGGZDFMZTWQ2LK",
      "photo": "<base64 JPEG>",
      "maintainer": "t-xc-01",
      "ping_id": "7f1c9e0a-3b7d-4c1e-9a51-0d6f1f3c2b11",
      "ts": "2026-05-04T08:15:02+08:00",
      "lat": 39.94395, "lon": 116.38357, "accuracy_m": 6.5, "crs": "wgs84",
      "condition": "leaning",
      "notes": "树干向东倾斜，支撑杆松动"
    }

- ``qr``: the scanned payload, as the phone's scanner read it. Either ``qr`` or ``photo``
  must be present; when ``qr`` is given the photo is evidence only and is not decoded.
- ``photo``: base64 JPEG in which the tag is visible; decoded here when ``qr`` is absent
  (about 25-50 ms a 720p frame, so apps should send ``qr`` when they can).
- ``maintainer``: id from the maintainer registry.
- ``ping_id``: optional client id of the scan (8-64 of A-Z a-z 0-9 ``-``); a resend with the
  same id is the same scan. Without it, asset + maintainer + ts + condition identify it.
- ``ts``: ISO 8601 with a UTC offset.
- ``lat``, ``lon``, ``accuracy_m`` (metres, 68 %), ``crs``: ``wgs84`` (default: phones report
  WGS-84), ``gcj02`` or ``bd09``.
- ``condition``: one of the conditions configured for the asset's type; ``notes``: free text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import threading
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridsense.errors import Rejected
from gridsense.model.envelopes import AssetCondition, AssetPing, FiniteFloat, Position
from gridsense.model.geo import CRS
from ingest.topics import Topic

MAX_PHOTO_B64 = 4_000_000


class PingWire(BaseModel):
    """The JSON object an app publishes per scan (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    v: int = Field(default=1, ge=1, le=1, description="wire format version")
    qr: str | None = Field(default=None, min_length=1, max_length=512)
    photo: str | None = Field(default=None, min_length=16, max_length=MAX_PHOTO_B64)
    maintainer: str = Field(min_length=1, max_length=64)
    ping_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{8,64}$")
    ts: datetime
    lat: FiniteFloat | None = Field(default=None, ge=-90, le=90)
    lon: FiniteFloat | None = Field(default=None, ge=-180, le=180)
    accuracy_m: FiniteFloat | None = Field(default=None, ge=0, le=10000)
    crs: CRS = CRS.WGS84
    condition: AssetCondition = "ok"
    notes: str = Field(default="", max_length=2000)


@dataclass(frozen=True, slots=True)
class DecodedPing:
    """A well-formed ping: the shared envelope plus what only the wire carries."""

    ping: AssetPing
    ping_id: str | None
    photo_sha256: str | None


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'ping'}: {e['msg']}" for e in exc.errors()[:5])


def decode_ping(payload: bytes, topic: Topic) -> DecodedPing:
    """Parse and shape-check one ping; ``Rejected`` names what is wrong."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Rejected("malformed_ping", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Rejected("malformed_ping", "a ping is a JSON object")
    try:
        wire = PingWire.model_validate(doc)
    except ValidationError as exc:
        raise Rejected("malformed_ping", _errors(exc)) from None
    if wire.ts.tzinfo is None:
        raise Rejected("bad_timestamp", "ts must carry a UTC offset")
    if (wire.lat is None) != (wire.lon is None):
        raise Rejected("malformed_ping", "lat and lon come together")
    if wire.qr is None and wire.photo is None:
        raise Rejected("no_qr", "a ping carries the scanned 'qr' payload or a 'photo' of the tag")
    photo = None
    if wire.photo is not None:
        try:
            photo = base64.b64decode(wire.photo, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("bad_photo", "photo is not valid base64") from None
    position = None
    if wire.lat is not None and wire.lon is not None:
        # PingWire checked every field to the envelope's own bounds and the topic parser the ids:
        # building the envelopes unvalidated saves a third of the decode (the 50 µs budget).
        position = Position.model_construct(lat=wire.lat, lon=wire.lon, crs=wire.crs)
    ping = AssetPing.model_construct(
        asset_id=topic.device_id,
        grid_code=topic.grid_code,
        ts=wire.ts,
        maintainer_id=wire.maintainer,
        qr_payload=wire.qr,
        position=position,
        accuracy_m=wire.accuracy_m,
        condition=wire.condition,
        notes=wire.notes,
        photo_jpeg=photo,
    )
    digest = hashlib.sha256(photo).hexdigest() if photo is not None else None
    return DecodedPing(ping, wire.ping_id, digest)


def encode_ping(
    *,
    maintainer: str,
    ts: datetime,
    qr: str | None = None,
    photo_jpeg: bytes | None = None,
    lat: float | None = None,
    lon: float | None = None,
    accuracy_m: float | None = None,
    crs: CRS = CRS.WGS84,
    condition: str = "ok",
    notes: str = "",
    ping_id: str | None = None,
) -> bytes:
    """The wire JSON of one scan, as an app sends it (used by the patrol simulator)."""
    doc: dict[str, object] = {"v": 1, "maintainer": maintainer, "ts": ts.isoformat(), "condition": condition}
    if qr is not None:
        doc["qr"] = qr
    if photo_jpeg is not None:
        doc["photo"] = base64.b64encode(photo_jpeg).decode()
    if lat is not None and lon is not None:
        doc |= {"lat": lat, "lon": lon, "crs": crs.value}
    if accuracy_m is not None:
        doc["accuracy_m"] = accuracy_m
    if notes:
        doc["notes"] = notes
    if ping_id is not None:
        doc["ping_id"] = ping_id
    PingWire.model_validate(doc)  # a simulator must never emit what the server would not read
    return orjson.dumps(doc)


# --- the QR in a photo ------------------------------------------------------------------------

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, read before any pixel is decoded."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


class PhotoQrReader:
    """Finds and reads the one QR code in a photo, or says why it cannot.

    OpenCV's ArUco-based detector finds finder patterns in blur and perspective where the
    classic one misses them; a code it finds but cannot read is cut out, straightened and
    read again. Detectors are per thread: OpenCV's are not safe to share.
    """

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self._local = threading.local()

    def _detectors(self) -> tuple[cv2.QRCodeDetectorAruco, cv2.QRCodeDetector]:
        if not hasattr(self._local, "aruco"):
            self._local.aruco = cv2.QRCodeDetectorAruco()
            self._local.classic = cv2.QRCodeDetector()
        return self._local.aruco, self._local.classic

    def read(self, jpeg: bytes) -> str:
        size = jpeg_size(jpeg)
        if size is None:
            raise Rejected("bad_photo", "photo is not a JPEG")
        if size[0] * size[1] > self.max_pixels:
            raise Rejected("photo_too_large", f"{size[0]}×{size[1]} pixels > limit {self.max_pixels}")
        gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise Rejected("bad_photo", "photo cannot be decoded as a JPEG")
        aruco, classic = self._detectors()
        found, texts, points, _ = aruco.detectAndDecodeMulti(gray)
        if not found or points is None or len(points) == 0:
            text, pts, _ = classic.detectAndDecode(gray)
            if text:
                return str(text)
            if pts is not None:
                raise Rejected("qr_unreadable", "a QR code is in the photo but cannot be read")
            raise Rejected("no_qr_in_photo", "no QR code found in the photo")
        if len(points) > 1:
            raise Rejected("multiple_qr_in_photo", f"{len(points)} QR codes in the photo; frame one tag")
        text = str(texts[0]) or self._straightened(gray, points[0], classic)
        if not text:
            raise Rejected("qr_unreadable", "a QR code is in the photo but cannot be read")
        return text

    @staticmethod
    def _straightened(gray: np.ndarray, corners: np.ndarray, classic: cv2.QRCodeDetector) -> str:
        side = 400
        src = corners.astype(np.float32)
        centre = src.mean(axis=0)
        src = centre + (src - centre) * 1.25  # take the quiet zone along
        dst = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32)
        crop = cv2.warpPerspective(
            gray, cv2.getPerspectiveTransform(src, dst), (side, side), flags=cv2.INTER_CUBIC, borderValue=255
        )
        sharpened = cv2.addWeighted(crop, 2.0, cv2.GaussianBlur(crop, (0, 0), 3), -1.0, 0)
        binary = cv2.adaptiveThreshold(crop, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 51, 5)
        for variant in (crop, sharpened, binary):
            text, _, _ = classic.detectAndDecode(variant)
            if text:
                return str(text)
        return ""
