"""With InfluxDB as the long-term store, the local store keeps only what rules can still need
(24 h windows + the lateness watermark + an hour), so it does not grow without end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gridsense.app import App
from gridsense.config import GridsenseConfig, StoreConfig
from gridsense.model.envelopes import Kind
from ingest.contract import InboundMessage
from ingest.gauge_codec import Sample, encode_json
from ingest.influx_sink import InfluxSinkConfig

DEV, GRID = "rg-012001001-1", "110102012001001"


def reading_at(ts: datetime) -> InboundMessage:
    payload = encode_json(Sample(DEV, Kind.RAIN, ts, "amount", 0.2))
    return InboundMessage(f"city/{GRID[:6]}/{GRID}/rain/{DEV}", payload, datetime.now(UTC))


def test_old_readings_are_pruned_only_when_influx_keeps_them(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    # 27 h ago is past 24 h + the 1 h lateness + 1 h; 25 h ago is not.
    old, recent = now - timedelta(hours=27), now - timedelta(hours=25)
    sink = InfluxSinkConfig(url="http://127.0.0.1:9", org="o", bucket="b", token="t")  # type: ignore[arg-type]
    with_influx = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "a.db"), sink=sink))
    sqlite_only = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "b.db")))
    for app in (with_influx, sqlite_only):
        app.pipeline.handle([reading_at(old), reading_at(recent)])
        app.pipeline.tick()
    kept = [
        int(a.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]) for a in (with_influx, sqlite_only)
    ]
    assert kept == [1, 2]  # SQLite as the sink keeps everything
