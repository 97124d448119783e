"""ForwarderProcess: the spool's ``InfluxForwarder`` in a process of its own.

On the pipeline's interpreter the forwarder competed with ingest for the GIL: building and
posting a batch of lines holds it for tens of milliseconds at a time, and a drain with the
sink configured ran at 0.75–0.80 of one with the forwarder stopped
(``bench/ingest_throughput.py --influx``). In a process of its own (``ChildProcess``: spawned,
deaf to Ctrl-C, gone with its parent) it runs on another core. The two share only the spool,
a table of the same SQLite file (WAL: the pipeline appends at the tail while the forwarder
reads and deletes at the head).
"""

from __future__ import annotations

from pathlib import Path

from gridsense import db
from gridsense.child_process import ChildProcess, Counts, Stoppable
from ingest.influx_sink import InfluxSink, InfluxSinkConfig
from ingest.spool import FAILURES, FORWARDED, InfluxForwarder

#: The exit code of a forwarder stopped by a ``Fatal`` sink error (a misconfiguration).
EXIT_FATAL = 2


class ForwarderProcess(ChildProcess):
    """Starts, watches and stops the forwarder process of one pipeline."""

    def __init__(self, db_path: Path, sink: InfluxSinkConfig, counts: Counts | None = None) -> None:
        """``counts``: a predecessor's, to carry its counters on (``Supervised``)."""
        super().__init__("influx-forwarder", _forward, (db_path, sink), counts if counts is not None else 2)

    @property
    def forwarded(self) -> int:
        """Readings the server has accepted since start."""
        return int(self.counts[FORWARDED])

    @property
    def failures(self) -> int:
        """Passes that failed and are being retried (the server away or overloaded, the store locked)."""
        return int(self.counts[FAILURES])


def _forward(stop: Stoppable, counts: Counts, db_path: Path, sink: InfluxSinkConfig) -> int:
    """The child: forward until ``stop`` is set; ``EXIT_FATAL`` on a misconfigured sink."""
    conn = db.connect(db_path, create=False)
    with InfluxSink(sink) as influx:
        forwarder = InfluxForwarder(conn, influx, sink.batch_size, stop=stop, stats=counts)
        forwarder.run()
    conn.close()
    return EXIT_FATAL if forwarder.fatal is not None else 0
