"""Suspected tampering: counted once per message, per asset or place, and forgotten in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.assets.harness import Harness

NOW = datetime(2026, 5, 12, 2, 0, tzinfo=UTC)
KIOSK = "1101020121000001"
FORGED = "GS1:1101020121000001:K2:AAAAAAAAAAAAAAAA"


def test_a_redelivered_forgery_counts_once(harness: Harness) -> None:
    msgs = [
        harness.ping(KIOSK, maintainer="m-sch-01", ts=NOW - timedelta(minutes=i), qr=FORGED) for i in range(2)
    ]
    harness.run(msgs, NOW)
    again = harness.run(msgs, NOW + timedelta(seconds=30))  # the broker redelivers the batch
    assert again.outcomes == ["bad_signature", "bad_signature"] and again.changes == []
    (n,) = harness.conn.execute("SELECT COUNT(*) FROM asset_suspect_scans").fetchone()
    assert n == 2
    third = harness.ping(KIOSK, maintainer="m-sch-01", ts=NOW - timedelta(minutes=5), qr=FORGED)
    [opened] = harness.run([third], NOW + timedelta(minutes=1)).changes
    assert (opened.kind, opened.incident.category_ref, opened.incident.peak_value) == (
        "opened",
        "event:0601",
        3,
    )


def test_scans_outside_the_window_do_not_add_up(harness: Harness) -> None:
    for day in range(3):
        at = NOW + timedelta(days=day)
        assert harness.run([harness.ping(KIOSK, maintainer="m-sch-01", ts=at, qr=FORGED)], at).changes == []


def test_clumsy_scans_are_not_tampering(harness: Harness) -> None:
    msgs = [harness.ping(KIOSK, maintainer="m-sch-01", ts=NOW + timedelta(minutes=10 + i)) for i in range(5)]
    assert set(harness.run(msgs, NOW).outcomes) == {"future_timestamp"}
    (n,) = harness.conn.execute("SELECT COUNT(*) FROM asset_suspect_scans").fetchone()
    assert n == 0


def test_old_suspect_scans_are_forgotten(harness: Harness) -> None:
    msgs = [
        harness.ping(KIOSK, maintainer="m-sch-01", ts=NOW - timedelta(minutes=i), qr=FORGED) for i in range(3)
    ]
    assert [c.kind for c in harness.run(msgs, NOW).changes] == ["opened"]
    early = [c for c in harness.sweep(NOW + timedelta(days=6)) if c.incident.rule_id == "asset_tamper"]
    assert early == []  # six quiet days: the case stays open
    cleared = [c for c in harness.sweep(NOW + timedelta(days=8)) if c.incident.rule_id == "asset_tamper"]
    assert [c.kind for c in cleared] == ["cleared"]
    (n,) = harness.conn.execute("SELECT COUNT(*) FROM asset_suspect_scans").fetchone()
    assert n == 0
