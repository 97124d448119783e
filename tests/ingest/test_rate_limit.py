"""A device that floods is throttled and counted; the others are unaffected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense.app import App
from gridsense.config import GridsenseConfig, LimitsConfig, StoreConfig
from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind
from ingest.contract import InboundMessage
from ingest.gauge_codec import Sample, encode_json
from ingest.rate_limit import DeviceRateLimit, FeedBudget

FLOODER, QUIET = ("rg-012001001-1", "110102012001001"), ("rg-012001002-1", "110102012001002")


def msg(device: tuple[str, str], ts: datetime, arrived: datetime) -> InboundMessage:
    dev, grid = device
    payload = encode_json(Sample(dev, Kind.RAIN, ts, "amount", 0.1))
    return InboundMessage(f"city/{grid[:6]}/{grid}/rain/{dev}", payload, arrived)


def test_a_flooding_device_is_throttled_and_the_others_are_not(tmp_path: Path) -> None:
    cfg = GridsenseConfig(
        store=StoreConfig(path=tmp_path / "s.db"),
        limits=LimitsConfig(device_msgs_per_min=60, device_burst=10),
    )
    app = App(cfg)
    now = datetime.now(UTC)
    start = now - timedelta(minutes=30)
    # Within one second of arrival: the flooder sends 100 readings, the quiet gauge 5.
    batch = [msg(FLOODER, start + timedelta(seconds=i), now + timedelta(milliseconds=i)) for i in range(100)]
    batch += [msg(QUIET, start + timedelta(seconds=i), now + timedelta(milliseconds=i)) for i in range(5)]
    out = app.pipeline.handle(batch)
    limited = [d for d in out.dead_letters if d.reason == "rate_limited"]
    assert len(limited) == 90  # a burst of 10 passes
    assert {d.device_id for d in limited} == {FLOODER[0]}
    assert out.readings == 15  # 10 from the flooder, all 5 from the quiet gauge
    stored = app.conn.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason").fetchall()
    assert stored == [("rate_limited", 90)]


def test_tokens_come_back_at_the_configured_rate_and_never_from_a_clock_step() -> None:
    limit = DeviceRateLimit(per_minute=60, burst=2)
    limit.take("d", 100.0)
    limit.take("d", 100.0)
    with pytest.raises(Rejected, match="rate_limited"):
        limit.take("d", 100.5)
    limit.take("d", 101.6)  # a second later: one token back
    with pytest.raises(Rejected):
        limit.take("d", 50.0)  # time going backwards gives nothing back


def test_feed_budget_admits_a_burst_of_its_rate_then_its_rate_a_second() -> None:
    """The live dead-letter feed's budget: a full second's worth at once, then as the clock
    refills it (never beyond one second's worth, however long the feed was quiet)."""
    budget = FeedBudget(per_s=10)
    assert budget.admit(25, now_s=100.0) == 10  # the first batch: the bucket starts full
    assert budget.admit(5, now_s=100.0) == 0
    assert budget.admit(5, now_s=100.3) == 3  # 0.3 s brought 3 back
    assert budget.admit(50, now_s=1000.0) == 10  # a quiet quarter of an hour: still one second's
    assert budget.admit(4, now_s=1000.5) == 4
    assert budget.admit(4, now_s=1000.5) == 1


def test_feed_budget_below_one_a_second_still_lets_one_through_now_and_then() -> None:
    """A budget of one letter every two seconds: one now, then none until two seconds on."""
    budget = FeedBudget(per_s=0.5)
    assert budget.admit(3, now_s=0.0) == 1
    assert budget.admit(3, now_s=1.0) == 0
    assert budget.admit(3, now_s=2.0) == 1
