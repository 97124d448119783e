"""ForwarderProcess: the spool's ``InfluxForwarder`` in a process of its own.

On the pipeline's interpreter the forwarder competed with ingest for the GIL: building and
posting a batch of lines holds it for tens of milliseconds at a time, and a drain with the
sink configured ran at 0.75–0.80 of one with the forwarder stopped
(``bench/ingest_throughput.py --influx``). In a process of its own it runs on another core.
The two share only the spool, a table of the same SQLite file (WAL: the pipeline appends at
the tail while the forwarder reads and deletes at the head).

The process is spawned, not forked: the pipeline already runs threads (MQTT, delivery) by
the time it starts. It logs like its parent, and ignores SIGINT: Ctrl-C reaches the whole
process group, and the parent stops it in order (``stop``), after ingest has stopped. If
the parent dies without stopping it (SIGKILL, a crash), it stops on its own at its next
pass, so a restarted pipeline never finds a stray forwarder draining the same spool.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from gridsense import db
from ingest.influx_sink import InfluxSink, InfluxSinkConfig
from ingest.spool import FAILURES, FORWARDED, Counts, InfluxForwarder

log = logging.getLogger("gridsense.spool")

#: The exit code of a forwarder stopped by a ``Fatal`` sink error (a misconfiguration).
EXIT_FATAL = 2


class ForwarderProcess:
    """Starts, watches and stops the forwarder process of one pipeline."""

    def __init__(self, db_path: Path, sink: InfluxSinkConfig) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._db_path = db_path
        self._sink = sink
        self._stop = self._ctx.Event()
        # One writer (the child), integer reads here: no lock needed.
        self._stats = self._ctx.Array("q", 2, lock=False)
        self._proc: multiprocessing.process.BaseProcess | None = None

    @property
    def forwarded(self) -> int:
        """Readings the server has accepted since start."""
        return int(self._stats[FORWARDED])

    @property
    def failures(self) -> int:
        """Passes that failed and are being retried (the server away or overloaded, the store locked)."""
        return int(self._stats[FAILURES])

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def exitcode(self) -> int | None:
        """None while running (or before start); ``EXIT_FATAL`` if the sink is misconfigured."""
        return None if self._proc is None else self._proc.exitcode

    def start(self) -> None:
        """Spawn the process; a ``ForwarderProcess`` starts once."""
        if self._proc is not None:
            raise RuntimeError("this forwarder process was already started")
        root = logging.getLogger()
        fmt = next((h.formatter._fmt for h in root.handlers if h.formatter is not None), None)
        self._proc = self._ctx.Process(
            target=_serve,
            args=(self._db_path, self._sink, self._stop, self._stats, root.level, fmt),
            name="influx-forwarder",
            daemon=True,
        )
        self._proc.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Let the current write finish, then end the process (killed after ``timeout_s``)."""
        self._stop.set()
        if self._proc is None:
            return
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            log.warning("influx forwarder did not stop in %.0f s; terminating it", timeout_s)
            self._proc.terminate()
            self._proc.join(5)


def _serve(
    db_path: Path,
    sink: InfluxSinkConfig,
    stop: Event,
    stats: Counts,
    level: int,
    fmt: str | None,
) -> None:
    """The child: forward until ``stop`` is set; exit ``EXIT_FATAL`` on a misconfigured sink."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=level, format=fmt or logging.BASIC_FORMAT, stream=sys.stderr)
    conn = db.connect(db_path, create=False)
    with InfluxSink(sink) as influx:
        forwarder = InfluxForwarder(conn, influx, sink.batch_size, stop=_StopOrOrphaned(stop), stats=stats)
        forwarder.run()
    conn.close()
    if forwarder.fatal is not None:
        sys.exit(EXIT_FATAL)


class _StopOrOrphaned:
    """``stop``, or set as soon as the parent process is gone (``Stoppable``)."""

    def __init__(self, stop: Event) -> None:
        self._stop = stop
        self._parent = multiprocessing.parent_process()

    def is_set(self) -> bool:
        return self._stop.is_set() or (self._parent is not None and not self._parent.is_alive())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for ``stop``, looking in on the parent every second."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            self._stop.wait(left)
        return True
