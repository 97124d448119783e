"""The pipeline's dead letters across redeliveries: a copy the broker sends again is stored
once, on the same connection, after a restart, or with other letters in between; the same
bytes much later (beyond the redelivery window) are a new letter.

``tests/ingest/test_deadletter_store.py`` holds the store's window and its rollbacks; this
holds the pipeline to using it (``committed`` after each batch; a new process reads the
window back when it opens the store).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gridsense.app import App
from gridsense.config import GridsenseConfig, MqttConfig, StoreConfig
from ingest.contract import InboundMessage
from ingest.deadletter import redelivery_window

GRID = "110102012001001"


def bad(n: int) -> InboundMessage:
    """A malformed reading from a registered gauge; ``n`` makes its bytes its own."""
    payload = b'{"device_id": "rg-012001001-1", "ts": %d, "rain_mm": ' % n
    return InboundMessage(f"city/{GRID[:6]}/{GRID}/rain/rg-012001001-1", payload, datetime.now(UTC), 1, n + 1)


def letters(app: App) -> list[bytes]:
    return [p for (p,) in app.conn.execute("SELECT payload FROM dead_letters ORDER BY id")]


def config(tmp_path: Path) -> GridsenseConfig:
    return GridsenseConfig(
        store=StoreConfig(path=tmp_path / "s.db"), mqtt=MqttConfig(inflight=1, batch_max=1)
    )


def test_a_redelivered_bad_message_is_stored_once_while_running_and_after_a_restart(tmp_path: Path) -> None:
    app = App(config(tmp_path))
    first = app.pipeline.handle([bad(0)])
    again = app.pipeline.handle([bad(1), bad(0)])  # the broker's copy, after a reconnect
    assert (len(first.dead_letters), len(again.dead_letters)) == (1, 2)  # counted each time
    assert letters(app) == [bad(0).payload, bad(1).payload]  # stored once
    app.conn.close()
    restarted = App(config(tmp_path))
    restarted.pipeline.restore()
    restarted.pipeline.handle([bad(0), bad(1)])  # redelivered after the process died
    assert letters(restarted) == [bad(0).payload, bad(1).payload]


def test_the_same_bytes_beyond_the_window_are_a_new_letter(tmp_path: Path) -> None:
    app = App(config(tmp_path))
    window = redelivery_window(1, 1)
    app.pipeline.handle([bad(0)])
    for n in range(1, window + 1):  # a window's worth of other letters, a batch each
        app.pipeline.handle([bad(n)])
    app.pipeline.handle([bad(0)])
    assert letters(app).count(bad(0).payload) == 2
