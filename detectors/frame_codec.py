"""The camera frame on the wire, and its checked, reduced-scale decode.

Wire format (MQTT 5), topic ``<root>/<district>/<grid>/camera/<camera-id>``:

- payload: one baseline or progressive JPEG, nothing else;
- user property ``ts`` (required): capture time, ISO-8601 with a zone
  (``2026-01-05T08:00:00+08:00``) or Unix seconds (``1767571200`` or ``1767571200.25``);
- user property ``seq`` (optional): the camera's frame counter, kept for logs.

Every check that can reject a frame runs before any camera state is touched. The JPEG
header is read for the image size first (a few-kB file can declare a gigapixel image), and
the image is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (IMREAD_REDUCED_*):
a full-resolution 720p decode costs about four times as much and the detectors do not
need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from gridsense.errors import Rejected

_REDUCED_COLOR = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# SOF markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True, slots=True)
class FrameMeta:
    """What the user properties say about a frame."""

    ts: datetime
    seq: int | None = None


def parse_ts(raw: str) -> datetime:
    """ISO-8601 with a zone, or Unix seconds; a naive ISO time is rejected (whose local time?)."""
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or not 0 < seconds < 32503680000:  # before year 3000
            raise Rejected("bad_timestamp", f"ts {raw!r} is not a plausible Unix time")
        return datetime.fromtimestamp(seconds, UTC)
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected("bad_timestamp", f"ts {raw!r} is neither ISO-8601 nor Unix seconds") from None
    if ts.tzinfo is None:
        raise Rejected("bad_timestamp", f"ts {raw!r} has no zone (add +08:00 or Z)")
    return ts.astimezone(UTC)


def read_meta(user_properties: tuple[tuple[str, str], ...], now: datetime, max_future_s: float) -> FrameMeta:
    """The frame's metadata from MQTT 5 user properties."""
    props = dict(user_properties)
    if "ts" not in props:
        raise Rejected("bad_timestamp", "no 'ts' user property (ISO-8601 with zone, or Unix seconds)")
    ts = parse_ts(props["ts"])
    if ts - now > timedelta(seconds=max_future_s):
        raise Rejected("future_timestamp", f"ts {ts.isoformat()} is ahead of now {now.isoformat()}")
    seq = None
    if "seq" in props:
        try:
            seq = int(props["seq"])
        except ValueError:
            raise Rejected("bad_metadata", f"seq {props['seq']!r} is not an integer") from None
    return FrameMeta(ts, seq)


def jpeg_size(payload: bytes) -> tuple[int, int]:
    """(width, height) from the JPEG's SOF segment, or ``Rejected`` saying what is wrong."""
    if len(payload) < 4 or payload[:2] != b"\xff\xd8":
        raise Rejected("not_jpeg", "payload does not start with a JPEG SOI marker")
    i, n = 2, len(payload)
    while i + 4 <= n:
        if payload[i] != 0xFF:
            raise Rejected("corrupt_jpeg", f"expected a marker at byte {i}")
        marker = payload[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        length = int.from_bytes(payload[i + 2 : i + 4], "big")
        if length < 2:
            raise Rejected("corrupt_jpeg", f"segment length {length} at byte {i}")
        if marker in _SOF:
            if i + 9 > n:
                break
            height = int.from_bytes(payload[i + 5 : i + 7], "big")
            width = int.from_bytes(payload[i + 7 : i + 9], "big")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            raise Rejected("corrupt_jpeg", "scan data before a frame header")
        i += 2 + length
    raise Rejected("truncated_jpeg", "payload ends before the JPEG frame header")


def check_jpeg(payload: bytes, max_bytes: int, max_pixels: int) -> tuple[int, int]:
    """Size limits, header and end marker; return (width, height). Nothing is decoded yet."""
    if not payload:
        raise Rejected("empty_frame", "zero-byte payload")
    if len(payload) > max_bytes:
        raise Rejected("too_large", f"{len(payload)} bytes > limit {max_bytes}")
    width, height = jpeg_size(payload)
    if width == 0 or height == 0:
        raise Rejected("corrupt_jpeg", f"image size {width}×{height}")
    if width * height > max_pixels:
        raise Rejected("too_large", f"{width}×{height} pixels > limit {max_pixels}")
    # libjpeg pads a truncated image with grey and calls it a success: check the EOI marker.
    if payload.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise Rejected("truncated_jpeg", "no JPEG end-of-image marker: the frame was cut short")
    return width, height


def decode_reduced(payload: bytes, scale: int) -> np.ndarray:
    """BGR image at 1/scale, decoded by libjpeg's DCT scaling."""
    img = cv2.imdecode(np.frombuffer(payload, np.uint8), _REDUCED_COLOR[scale])
    if img is None or img.size == 0:
        raise Rejected("undecodable", "libjpeg could not decode the frame")
    return img


def decode_full(payload: bytes) -> np.ndarray:
    """Full-resolution BGR, for evidence snapshots only (rare)."""
    img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise Rejected("undecodable", "libjpeg could not decode the frame")
    return img
