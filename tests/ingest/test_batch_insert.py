"""A batch is stored with one statement, yet duplicates and suspect readings are exact.

The pipeline inserts a batch with ``ReadingStore.insert_many`` before the rules see it;
these tests pin what that must not change: a duplicate (stored earlier, or repeated inside
the batch) is counted once and never reaches the windows, and the quality check of a
reading sees the readings before it in the same batch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gridsense.app import App
from gridsense.config import GridsenseConfig, StoreConfig
from gridsense.model.envelopes import Kind
from ingest.contract import InboundMessage
from ingest.gauge_codec import Sample, encode_json

DEV, GRID = "rg-012001001-1", "110102012001001"


def rain(ts: datetime, mm: float) -> InboundMessage:
    payload = encode_json(Sample(DEV, Kind.RAIN, ts, "amount", mm))
    return InboundMessage(f"city/{GRID[:6]}/{GRID}/rain/{DEV}", payload, ts)


def stored(app: App) -> list[tuple[int, float, int]]:
    return app.conn.execute(
        "SELECT ts_ms, value, suspect FROM readings WHERE device_id = ? ORDER BY ts_ms", (DEV,)
    ).fetchall()


def test_duplicates_in_the_store_and_in_the_batch_are_counted_once_and_kept_out_of_the_windows(
    tmp_path: Path,
) -> None:
    app = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "s.db")))
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    first = app.pipeline.handle([rain(t0, 6.5)])
    assert (first.readings, first.duplicates) == (1, 0)
    # 6.5 mm three times is 19.5 mm in the hour, under the 20 mm short-heavy-rain line;
    # counting either duplicate again would cross it.
    t1, t2 = t0 + timedelta(minutes=10), t0 + timedelta(minutes=20)
    out = app.pipeline.handle([rain(t1, 6.5), rain(t0, 6.5), rain(t2, 6.5), rain(t1, 6.5)])
    assert (out.readings, out.duplicates, out.changes) == (2, 2, 0)
    assert [v for _, v, _ in stored(app)] == [6.5, 6.5, 6.5]
    # One more millimetre, new: now the hour holds 20.5 mm and the case opens.
    more = app.pipeline.handle([rain(t2 + timedelta(minutes=5), 1.0)])
    assert (more.readings, more.changes) == (1, 1)


def test_a_reading_the_gauge_cannot_produce_is_stored_flagged_judged_after_the_ones_before_it(
    tmp_path: Path,
) -> None:
    app = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "s.db")))
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    # 30 mm then 25 mm two minutes later: each alone is possible, together they exceed the
    # 50 mm in 5 minutes a gauge can see, so only the second is suspect.
    out = app.pipeline.handle([rain(t0, 30.0), rain(t0 + timedelta(minutes=2), 25.0)])
    assert out.readings == 2
    assert [(v, s) for _, v, s in stored(app)] == [(30.0, 0), (25.0, 1)]
    assert app.pipeline._engine.suspect_count == 1
