"""Bad input a real fleet of phones produces: each is rejected with its reason, counted, and
never crashes the handler. Photos are real JPEGs of rendered labels, decoded by OpenCV."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import orjson
import pytest

from gridsense.model.geo import CRS
from ingest.contract import InboundMessage
from simulators.patrol import offset, photograph
from tests.assets.harness import Harness

NOW = datetime(2026, 5, 4, 0, 30, tzinfo=UTC)  # 08:30 in Beijing, a Monday
TREE = "1101020401000001"  # 银锭桥古槐, 一级, grid 110102012001002
KIOSK = "1101020121000001"  # 西海北沿报刊亭, grid 110102012001001
ARBORIST = "t-xc-01"
INSPECTOR = "i-xc-01"


def label_png(h: Harness, asset_id: str, qr: str | None = None) -> bytes:
    from rules.assets.labels import LabelRenderer, LabelText, qr_matrix

    a = h.asset(asset_id)
    t = h.cfg.types[a.type]
    return LabelRenderer(h.cfg.labels).png(
        qr_matrix(qr or h.stage.keyring.sign(asset_id)), LabelText.of(a, t.name_zh, t.name_en)
    )


def photo_ping(h: Harness, asset_id: str, jpeg: bytes, maintainer: str = ARBORIST) -> InboundMessage:
    return h.ping(asset_id, maintainer=maintainer, ts=NOW, qr=None, photo_jpeg=jpeg)


def one(h: Harness, msg: InboundMessage) -> str:
    [outcome] = h.run([msg], NOW).outcomes
    return outcome


def test_a_genuine_scan_at_the_asset_is_accepted(harness: Harness) -> None:
    assert one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=NOW, accuracy_m=6)) == "accepted"


def test_a_photo_of_a_rendered_label_is_decoded_for_real_and_accepted(harness: Harness) -> None:
    jpeg = photograph(label_png(harness, TREE), random.Random(3), blur=1.0, tilt=0.12)
    result = harness.run([photo_ping(harness, TREE, jpeg)], NOW)
    assert result.outcomes == ["accepted"]
    row = harness.conn.execute("SELECT key_id, photo_sha256 FROM asset_pings").fetchone()
    assert row[0] == "K2" and len(row[1]) == 64


@pytest.mark.parametrize(
    ("qr", "reason"),
    [
        ("GS1:1101020401000001:K2", "malformed_qr"),
        ("GS1:1101020401000001:K2:SHORT", "malformed_qr"),
        ("GS1:11010204:K2:AAAAAAAAAAAAAAAA", "malformed_qr"),
        ("GS1:1101020401000001:k2:AAAAAAAAAAAAAAAA", "malformed_qr"),
        ("GS9:1101020401000001:K2:AAAAAAAAAAAAAAAA", "unsupported_tag_version"),
        ("https://weixin.qq.com/r/abc123", "foreign_qr"),
        ("WIFI:S:street;T:WPA;P:hunter2;;", "foreign_qr"),
        ("随便一段文字", "foreign_qr"),
        ("GS1:1101020401000001:K2:AAAAAAAAAAAAAAAA", "bad_signature"),
        ("GS1:1101020401000001:K7:AAAAAAAAAAAAAAAA", "unknown_key_id"),
    ],
)
def test_a_qr_that_is_not_a_valid_tag_is_rejected(harness: Harness, qr: str, reason: str) -> None:
    assert one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=NOW, qr=qr)) == reason
    assert harness.handler.counters[f"rejected:{reason}"] == 1


def test_a_tag_with_one_character_changed_never_verifies(harness: Harness) -> None:
    genuine = harness.stage.keyring.sign(TREE)
    head = genuine.rsplit(":", 1)[0]
    mac = genuine.rsplit(":", 1)[1]
    forged = []
    for i in range(len(mac)):
        for c in "A7Q":
            if c != mac[i]:
                forged.append(f"{head}:{mac[:i]}{c}{mac[i + 1 :]}")
    msgs = [
        harness.ping(TREE, maintainer=ARBORIST, ts=NOW - timedelta(seconds=i), qr=q)
        for i, q in enumerate(forged)
    ]
    assert set(harness.run(msgs, NOW).outcomes) == {"bad_signature"}


def test_a_tag_signed_for_one_asset_does_not_verify_for_another(harness: Harness) -> None:
    genuine = harness.stage.keyring.sign(TREE)
    other = genuine.replace(TREE, "1101020401000002")
    assert (
        one(harness, harness.ping("1101020401000002", maintainer=ARBORIST, ts=NOW, qr=other))
        == "bad_signature"
    )


def test_key_rotation_old_key_valid_retired_key_rejected(harness: Harness) -> None:
    ring = harness.stage.keyring
    old = ring.sign(TREE, key_id="K1")
    assert one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=NOW, qr=old)) == "accepted"
    retired = old.replace(":K1:", ":K0:")  # the MAC does not matter: K0 is refused first
    assert (
        one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=NOW - timedelta(1), qr=retired))
        == "retired_key"
    )


def test_unknown_asset_inactive_asset_and_another_assets_tag(harness: Harness) -> None:
    ring = harness.stage.keyring
    ghost = "1101020401009999"
    assert (
        one(harness, harness.ping(ghost, maintainer=ARBORIST, ts=NOW, qr=ring.sign(ghost))) == "unknown_asset"
    )
    retired = "1101020121000004"
    assert one(harness, harness.ping(retired, maintainer=INSPECTOR, ts=NOW)) == "asset_inactive"
    swapped = harness.ping(TREE, maintainer=ARBORIST, ts=NOW, qr=ring.sign("1101020401000002"))
    assert one(harness, swapped) == "asset_mismatch"


def test_photos_with_no_code_two_codes_or_no_jpeg(harness: Harness) -> None:
    rng = np.random.default_rng(1)
    scene = np.clip(rng.normal(120, 30, (720, 1280)), 0, 255).astype(np.uint8)
    no_code = cv2.imencode(".jpg", scene)[1].tobytes()
    assert one(harness, photo_ping(harness, TREE, no_code)) == "no_qr_in_photo"

    def gray(png: bytes) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)

    a, b = gray(label_png(harness, TREE)), gray(label_png(harness, "1101020401000002"))
    canvas = np.full((720, 1600), 200, np.uint8)
    canvas[180 : 180 + a.shape[0], 60 : 60 + a.shape[1]] = a
    canvas[180 : 180 + b.shape[0], 840 : 840 + b.shape[1]] = b
    two = cv2.imencode(".jpg", cv2.GaussianBlur(canvas, (0, 0), 0.8))[1].tobytes()
    assert one(harness, photo_ping(harness, TREE, two)) == "multiple_qr_in_photo"
    assert one(harness, photo_ping(harness, TREE, b"\x89PNG\r\n\x1a\n" + b"0" * 64)) == "bad_photo"


def test_a_photo_of_a_tag_from_another_system_is_rejected_like_its_payload(harness: Harness) -> None:
    jpeg = photograph(label_png(harness, TREE, qr="HTTPS://PAY.EXAMPLE.CN/Q/88"), random.Random(5))
    assert one(harness, photo_ping(harness, TREE, jpeg)) == "foreign_qr"


def test_gps_far_from_the_asset_is_rejected(harness: Harness) -> None:
    a = harness.asset(TREE)
    near = offset(a.lat, a.lon, 20, 10)  # 22 m: inside 25 m + accuracy
    far = offset(a.lat, a.lon, 120, 0)
    assert one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=NOW, at=near, accuracy_m=5)) == "accepted"
    msg = harness.ping(TREE, maintainer=ARBORIST, ts=NOW - timedelta(minutes=1), at=far, accuracy_m=5)
    assert one(harness, msg) == "gps_far"


def test_accuracy_is_credited_only_up_to_the_cap(harness: Harness) -> None:
    a = harness.asset(TREE)
    at = offset(a.lat, a.lon, 70, 0)  # 70 m: 25 m + 50 m cap covers it, 25 m + 30 m does not
    assert one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=NOW, at=at, accuracy_m=30)) == "gps_far"
    ts = NOW - timedelta(minutes=1)
    assert one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=ts, at=at, accuracy_m=500)) == "accepted"


@pytest.mark.parametrize(
    ("ts", "reason"),
    [(NOW + timedelta(minutes=10), "future_timestamp"), (NOW - timedelta(days=4), "stale_ping")],
)
def test_timestamps_in_the_future_or_too_old(harness: Harness, ts: datetime, reason: str) -> None:
    assert one(harness, harness.ping(TREE, maintainer=ARBORIST, ts=ts)) == reason


def test_who_may_scan_what(harness: Harness) -> None:
    assert one(harness, harness.ping(TREE, maintainer="nobody-1", ts=NOW)) == "unknown_maintainer"
    assert one(harness, harness.ping(KIOSK, maintainer="m-old-01", ts=NOW)) == "maintainer_inactive"
    # 新街口's maintainer may not scan trees, nor kiosks of 什刹海
    assert one(harness, harness.ping(TREE, maintainer="m-xjk-01", ts=NOW)) == "not_authorised"
    assert one(harness, harness.ping(KIOSK, maintainer="m-xjk-01", ts=NOW)) == "not_authorised"
    assert one(harness, harness.ping(KIOSK, maintainer="m-sch-01", ts=NOW)) == "accepted"


def test_a_condition_that_does_not_fit_the_type(harness: Harness) -> None:
    msg = harness.ping(TREE, maintainer=ARBORIST, ts=NOW, condition="graffiti")
    assert one(harness, msg) == "condition_not_for_type"


def test_the_grid_in_the_topic_must_be_the_assets(harness: Harness) -> None:
    msg = harness.ping(TREE, maintainer=ARBORIST, ts=NOW)
    moved = InboundMessage(harness.topic(TREE, grid_code="110102012001001"), msg.payload, NOW)
    assert one(harness, moved) == "grid_mismatch"


def _raw(h: Harness, doc: object) -> InboundMessage:
    return InboundMessage(h.topic(TREE), orjson.dumps(doc), NOW)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"qr": "GS1:', "malformed_ping"),
        (b"[1, 2, 3]", "malformed_ping"),
        (b"\xff\xfe not utf-8", "malformed_ping"),
        (b"", "malformed_ping"),
    ],
)
def test_payloads_that_are_not_a_ping(harness: Harness, payload: bytes, reason: str) -> None:
    assert one(harness, InboundMessage(harness.topic(TREE), payload, NOW)) == reason


def test_fields_that_do_not_check_out(harness: Harness) -> None:
    base = {"qr": harness.stage.keyring.sign(TREE), "maintainer": ARBORIST, "ts": NOW.isoformat()}
    pos = {"lat": 39.94, "lon": 116.38}
    cases = [
        ({**base, "ts": "2026-05-04T08:00:00"}, "bad_timestamp"),
        ({**base, "ts": "yesterday"}, "malformed_ping"),
        ({**base, "lat": 39.94}, "malformed_ping"),
        ({**base, **pos, "lat": float("nan")}, "malformed_ping"),
        ({**base, **pos, "crs": "mercator"}, "malformed_ping"),
        ({**base, **pos, "condition": "on_fire"}, "malformed_ping"),
        ({**base, **pos, "extra": 1}, "malformed_ping"),
        ({k: v for k, v in base.items() if k != "qr"} | pos, "no_qr"),
        ({**base, **pos, "qr": None, "photo": "!!not base64!!!!"}, "bad_photo"),
        ({**base, "maintainer": "x" * 65, **pos}, "malformed_ping"),
        (base, "no_position"),
    ]
    got = [one(harness, _raw(harness, doc)) for doc, _ in cases]
    assert got == [reason for _, reason in cases]


def test_oversized_pings_and_photos(harness: Harness) -> None:
    big = harness.ping(TREE, maintainer=ARBORIST, ts=NOW, notes="x" * 2000)
    harness.handler.max_ping_bytes = 1000
    assert one(harness, big) == "too_large"
    harness.handler.max_ping_bytes = 1_000_000
    huge = np.zeros((3000, 4000), np.uint8)
    jpeg = cv2.imencode(".jpg", huge, [cv2.IMWRITE_JPEG_QUALITY, 30])[1].tobytes()
    assert one(harness, photo_ping(harness, TREE, jpeg)) == "photo_too_large"


def test_a_replayed_ping_is_stored_once_and_files_nothing_twice(harness: Harness) -> None:
    msg = harness.ping(TREE, maintainer=ARBORIST, ts=NOW, condition="leaning", accuracy_m=4)
    first = harness.run([msg], NOW)
    again = harness.run([msg, msg], NOW + timedelta(seconds=5))
    assert [c.kind for c in first.changes] == ["opened"]
    assert again.outcomes == ["accepted", "accepted"] and again.changes == []
    assert harness.handler.counters["duplicates"] == 2
    (n,) = harness.conn.execute("SELECT COUNT(*) FROM asset_pings").fetchone()
    assert n == 1


def test_the_same_scan_resent_with_its_ping_id_is_a_replay_even_if_retimed(harness: Harness) -> None:
    a = harness.ping(TREE, maintainer=ARBORIST, ts=NOW, ping_id="scan-0001-aaaa")
    b = harness.ping(TREE, maintainer=ARBORIST, ts=NOW - timedelta(seconds=3), ping_id="scan-0001-aaaa")
    harness.run([a, b], NOW)
    assert harness.handler.counters["duplicates"] == 1


def test_a_gcj02_position_labelled_as_such_is_converted_before_the_distance(harness: Harness) -> None:
    msg = harness.ping(TREE, maintainer=ARBORIST, ts=NOW, crs=CRS.GCJ02, accuracy_m=5)
    assert orjson.loads(msg.payload)["crs"] == "gcj02"
    assert one(harness, msg) == "accepted"


def test_every_rejection_is_counted(harness: Harness) -> None:
    msgs = [
        harness.ping(TREE, maintainer=ARBORIST, ts=NOW, qr="https://x.example"),
        harness.ping(TREE, maintainer=ARBORIST, ts=NOW, qr="GS1:1101020401000001:K2:AAAAAAAAAAAAAAAA"),
        InboundMessage(harness.topic(TREE), b"{", NOW),
        harness.ping(TREE, maintainer=ARBORIST, ts=NOW),
    ]
    result = harness.run(msgs, NOW)
    counted = {k: v for k, v in harness.handler.counters.items() if k.startswith("rejected:")}
    assert sum(counted.values()) == len(result.rejected) == 3
