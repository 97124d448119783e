"""The spool's forwarder in a process of its own (as ``App`` runs it), against a real
VictoriaMetrics: it drains the spool it shares with the pipeline through the store file,
shrugs off the Ctrl-C its process group receives, stops when asked, and exits with
``EXIT_FATAL`` on a sink that refuses every write, leaving the spool untouched."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from gridsense import db
from gridsense.txn import transaction
from ingest.forwarder_process import EXIT_FATAL, ForwarderProcess
from ingest.influx_sink import InfluxSink
from ingest.spool import FAILURES, FORWARDED, InfluxForwarder, InfluxSpool
from tests.faults.harness import wait_for
from tests.fixtures.orphans import assert_orphan_stops
from tests.fixtures.victoria import VictoriaMetrics
from tests.ingest.test_influx_sink import config, rain_series

pytestmark = pytest.mark.integration


def spooled(conn: sqlite3.Connection) -> int:
    return InfluxSpool(conn, 0).depth()


def spool(conn: sqlite3.Connection, n: int, device_id: str) -> None:
    with transaction(conn):
        InfluxSpool(conn, 10_000).add(rain_series(n, device_id))


def test_forwards_the_spool_from_its_own_process_and_stops_when_asked(
    victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    measurement = f"t_forwarder_{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    path = tmp_path / "state.db"
    conn = db.connect(path)
    spool(conn, 50, "rg-0001")
    forwarder = ForwarderProcess(path, config(victoria_metrics.url, measurement=measurement, batch_size=7))
    forwarder.start()
    try:
        wait_for(lambda: forwarder.forwarded == 50, 60, "the spool to be forwarded")
        assert spooled(conn) == 0
        assert forwarder.pid not in (None, os.getpid())
        # Ctrl-C reaches the whole process group; the parent stops the forwarder, in order.
        os.kill(forwarder.pid, signal.SIGINT)  # type: ignore[arg-type]
        spool(conn, 10, "rg-0002")  # the pipeline goes on spooling meanwhile
        wait_for(lambda: forwarder.forwarded == 60, 30, "readings spooled after the SIGINT")
        assert forwarder.exitcode is None and forwarder.failures == 0
    finally:
        forwarder.stop()
    assert forwarder.exitcode == 0
    series = victoria_metrics.wait_for_samples(f"{measurement}_value", count=60)
    values = {s.labels["device_id"]: s.values for s in series}
    assert values == {"rg-0001": [i / 10 for i in range(50)], "rg-0002": [i / 10 for i in range(10)]}


def test_a_sink_refusing_every_write_ends_the_process_and_the_spool_keeps_its_rows(
    victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    path = tmp_path / "state.db"
    conn = db.connect(path)
    spool(conn, 5, "rg-0001")
    # VictoriaMetrics answers a write under an unknown path with 400: a misconfiguration.
    forwarder = ForwarderProcess(path, config(f"{victoria_metrics.url}/no-such-prefix"))
    forwarder.start()
    try:
        wait_for(lambda: forwarder.exitcode is not None, 60, "the forwarder to give up")
    finally:
        forwarder.stop()
    assert forwarder.exitcode == EXIT_FATAL
    assert forwarder.forwarded == 0 and forwarder.failures == 0
    assert spooled(conn) == 5


PARENT = """
import sys, time
from pathlib import Path
from ingest.forwarder_process import ForwarderProcess
from ingest.influx_sink import InfluxSinkConfig

sink = InfluxSinkConfig(url=sys.argv[2], org="o", bucket="b", token="t")
forwarder = ForwarderProcess(Path(sys.argv[1]), sink)
forwarder.start()
print(forwarder.pid, flush=True)
time.sleep(600)
"""


def test_a_forwarder_whose_parent_was_killed_stops_on_its_own(
    victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    """A pipeline SIGKILLed and restarted must not leave a second forwarder on its spool."""
    path = tmp_path / "state.db"
    db.connect(path).close()
    assert_orphan_stops(PARENT, str(path), victoria_metrics.url, what="forwarder")


def test_a_spool_locked_past_its_busy_timeout_is_waited_out_and_nothing_doubles(
    victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    """The forwarder's loop in this process (the child runs the same) with a short busy
    timeout: another writer holds the store while a sent batch is deleted; the loop waits,
    sends the batch again, and the server keeps each point once."""
    measurement = f"t_locked_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "state.db"
    conn = db.connect(path)
    spool(conn, 20, "rg-0001")
    reader = db.connect(path, create=False)
    reader.execute("PRAGMA busy_timeout = 50")  # production waits 30 s; the test need not
    stop, stats = threading.Event(), [0, 0]
    with InfluxSink(config(victoria_metrics.url, measurement=measurement)) as sink:
        forwarder = InfluxForwarder(reader, sink, 100, stop=stop, stats=stats)
        blocker = db.connect(path, create=False)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the store
        thread = threading.Thread(target=forwarder.run)
        thread.start()
        try:
            wait_for(lambda: stats[FAILURES] >= 1, 30, "a pass failing on the locked store")
            blocker.execute("ROLLBACK")
            wait_for(lambda: spooled(conn) == 0, 30, "the spool to drain")
        finally:
            stop.set()
            thread.join(10)
            blocker.close()
    assert stats[FORWARDED] == 20 and forwarder.fatal is None
    [values] = victoria_metrics.wait_for_samples(f"{measurement}_value", count=20)
    assert values.values == [i / 10 for i in range(20)]


def test_a_pass_sends_whole_spool_rows_up_to_the_batch_and_an_oversized_row_alone(
    victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    """Spool rows of 4, 4, 4, 12 and 2 readings with a batch of 10: a pass takes rows while
    they fit (4 + 4), never overshooting; a row larger than the batch goes alone, split
    into writes by the sink; every point arrives once, in order."""
    measurement = f"t_batch_{uuid.uuid4().hex[:8]}"
    conn = db.connect(tmp_path / "state.db")
    readings = rain_series(26, "rg-0001")
    start = 0
    for n in (4, 4, 4, 12, 2):
        with transaction(conn):
            InfluxSpool(conn, 10_000).add(readings[start : start + n])
        start += n
    stats = [0, 0]
    with InfluxSink(config(victoria_metrics.url, measurement=measurement, batch_size=10)) as sink:
        forwarder = InfluxForwarder(conn, sink, 10, stop=threading.Event(), stats=stats)
        passes = [forwarder.forward_once() for _ in range(5)]
    assert passes == [8, 4, 12, 2, 0]
    assert stats[FORWARDED] == 26 and spooled(conn) == 0
    [values] = victoria_metrics.wait_for_samples(f"{measurement}_value", count=26)
    assert values.values == [i / 10 for i in range(26)]
