"""A batch sends a street or district summary's case one update, however many grids joined it.

Cases and updates are built after the batch, from the incidents' final state: an update per
grid that joined would repeat the same note and linked cases under another key. Runs the
real pipeline (demo registry, default rules, SQLite outbox); no broker is needed to hand it
batches.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.case_builder import case_key
from gridsense.app import App
from gridsense.config import GridsenseConfig, StoreConfig
from gridsense.model.envelopes import Kind
from ingest.contract import InboundMessage
from ingest.gauge_codec import Sample, encode_json


def storm(grid: str, ts: datetime) -> InboundMessage:
    """25 mm at once from the grid's first rain gauge: over the 20 mm short-heavy-rain line."""
    dev = f"rg-{grid[6:]}-1"
    payload = encode_json(Sample(dev, Kind.RAIN, ts, "amount", 25.0))
    return InboundMessage(f"city/{grid[:6]}/{grid}/rain/{dev}", payload, ts)


def summary_rows(app: App) -> tuple[str, list[dict[str, Any]]]:
    """The district summary's case key, and the updates queued for it, oldest first."""
    (summary,) = [i for i in app.pipeline._book.open_incidents() if i.routing_level == "district"]
    key = case_key(summary.incident_id)
    rows = app.conn.execute(
        "SELECT body FROM outbox WHERE case_key = ? AND op = 'update' ORDER BY seq", (key,)
    )
    return key, [json.loads(body) for (body,) in rows]


def test_grids_joining_a_district_summary_in_one_batch_send_it_one_update(tmp_path: Path) -> None:
    app = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "s.db")))
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    # Two streets (003 and 012) at once open the district summary; three more grids join it
    # in the same batch, each a change of the summary.
    grids = ["110102003001001", "110102012001001", "110102003001002", "110102012001002", "110102012002001"]
    out = app.pipeline.handle([storm(g, t + timedelta(seconds=i)) for i, g in enumerate(grids)])
    assert out.readings == 5
    key, updates = summary_rows(app)
    assert len(updates) == 1, updates
    assert len(updates[0]["linked_cases"]) == 5  # the batch's final state: every grid
    opened = app.conn.execute("SELECT COUNT(*) FROM outbox WHERE case_key = ? AND op = 'create'", (key,))
    assert opened.fetchone()[0] == 1
    # A later batch is a later state: its grid joining is an update of its own.
    app.pipeline.handle([storm("110102003002001", t + timedelta(minutes=1))])
    _, updates = summary_rows(app)
    assert [len(u["linked_cases"]) for u in updates] == [5, 6]
