"""Frames that can never be used are Rejected with a reason, and the camera's state is untouched."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from detectors.frame_codec import parse_ts
from gridsense.errors import Rejected
from ingest.contract import InboundMessage
from simulators.street_scene import StreetScene
from tests.detectors.conftest import camera_topic, run

CAM, GRID = "cam-012001002-1", "110102012001002"
NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def message(
    payload: bytes, ts: str | None = "2026-01-05T10:30:00+08:00", camera: str = CAM
) -> InboundMessage:
    props = (("ts", ts),) if ts is not None else ()
    return InboundMessage(f"city/110102/{GRID}/camera/{camera}", payload, NOW, user_properties=props)


@pytest.fixture(scope="module")
def good_jpeg() -> bytes:
    return next(iter(StreetScene(frames=1, seed=2))).jpeg


def snapshot(handler) -> tuple:  # type: ignore[no-untyped-def]
    st = handler.states[CAM]
    return (
        st.last_ts,
        st.health.frames,
        st.scene.frames,
        st.health.reference.copy(),
        copy.copy(handler.counters),
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated", "truncated_jpeg"),
        ("not_jpeg", "not_jpeg"),
        ("zero_size", "empty_frame"),
        ("fifty_mb", "too_large"),
        ("png", "not_jpeg"),
        ("no_ts", "bad_timestamp"),
        ("naive_ts", "bad_timestamp"),
        ("future_ts", "future_timestamp"),
        ("unknown_camera", "unknown_camera"),
        ("wrong_size", "frame_size_mismatch"),
    ],
)
def test_bad_frame_is_rejected_and_state_untouched(
    name: str, reason: str, good_jpeg: bytes, make_handler
) -> None:  # type: ignore[no-untyped-def]
    import cv2
    import numpy as np

    handler, conn = make_handler()
    run(handler, conn, CAM, GRID, StreetScene(frames=35, seed=2))  # past learning
    before = snapshot(handler)
    small = cv2.imencode(".jpg", np.zeros((90, 160, 3), np.uint8))[1].tobytes()
    msgs = {
        "truncated": message(good_jpeg[: len(good_jpeg) // 2]),
        "not_jpeg": message(b'{"rain": 1.0}'),
        "zero_size": message(b""),
        "fifty_mb": message(good_jpeg[:2] + b"\0" * 50_000_000),
        "png": message(cv2.imencode(".png", np.zeros((720, 1280, 3), np.uint8))[1].tobytes()),
        "no_ts": message(good_jpeg, ts=None),
        "naive_ts": message(good_jpeg, ts="2026-01-05T10:30:00"),
        "future_ts": message(good_jpeg, ts="2027-01-01T00:00:00Z"),
        "unknown_camera": message(good_jpeg, camera="cam-999"),
        "wrong_size": message(small),
    }
    msg = msgs[name]
    topic = camera_topic(msg.topic.rsplit("/", 1)[1], GRID)
    with pytest.raises(Rejected) as info:
        handler.prepare(msg, topic, NOW)
    assert info.value.reason == reason
    after = snapshot(handler)
    assert after[:3] == before[:3] and after[4] == before[4]
    assert (after[3] == before[3]).all()


def test_timestamps_iso_with_zone_or_unix_seconds() -> None:
    assert parse_ts("2026-01-05T10:30:00+08:00") == datetime(2026, 1, 5, 2, 30, tzinfo=UTC)
    assert parse_ts("1767580200") == datetime(2026, 1, 5, 2, 30, tzinfo=UTC)
    assert parse_ts("1767580200.5").microsecond == 500000
    for bad in ("yesterday", "nan", "-5", "2026-01-05 10:30"):
        with pytest.raises(Rejected):
            parse_ts(bad)
