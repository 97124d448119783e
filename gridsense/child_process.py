"""ChildProcess: a pipeline stage in a process of its own, started, watched and stopped by the pipeline.

Two stages leave the pipeline's interpreter this way: the InfluxDB forwarder
(``ingest.forwarder_process``) and case delivery (``bridge.delivery_process``). On the
pipeline's interpreter each competed with ingest for the GIL; in a process of its own each
runs on another core. A stage and the pipeline share only the state store's file (SQLite
WAL, or the PostgreSQL outbox), a few integers in shared memory (``counts``: one writer per
slot, so no lock) and a pipe that says stop.

The process is spawned, not forked: the pipeline already runs threads (MQTT, the operations
page) by the time it starts. It logs like its parent, and ignores SIGINT and SIGTERM: Ctrl-C
reaches the whole process group, a service manager may signal every process of the service,
and the parent stops the stage in order (``stop``), after ingest has stopped. If the parent
dies without stopping it (SIGKILL, a crash), the stage sees its stop signal set at its next
look (``StopOrOrphaned``), so a restarted pipeline never finds a stray stage working on the
same store beside its own.

Spawning costs the stage a second or so of CPU, most of it importing its modules. A stage
is ``ready`` once it first asks its stop signal whether to stop: by then it is imported and
set up, in its loop. ``App.start`` can hold ingest back until then (``bench/`` does, so a
drain is not timed against its stages' start-up).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger("gridsense.child")


class Stoppable(Protocol):
    """What a stage's loop needs of its stop signal (an ``Event``, threading's or a process's)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def set(self) -> None: ...


class Counts(Protocol):
    """Where a stage counts (a process-shared array of integers)."""

    def __getitem__(self, i: int, /) -> int: ...

    def __setitem__(self, i: int, v: int, /) -> None: ...


#: A stage's body: runs in the child until ``stop`` is set; its return value is the exit code.
Stage = Callable[..., int]


class ChildProcess:
    """Starts, watches and stops one stage's process."""

    def __init__(self, name: str, stage: Stage, args: tuple[Any, ...], counts: int | Counts) -> None:
        """``stage(stop, counts, *args)`` runs in the child; it must be a module-level function.

        ``counts``: how many integers to share, or the array of a predecessor, whose counts
        this process then carries on (``Supervised`` restarts a stage this way).
        """
        self._ctx = multiprocessing.get_context("spawn")
        self.name = name
        self._stage = stage
        self._args = args
        # The stop signal is a pipe, not an Event: an Event's lock, held by a child killed
        # inside ``wait``, would never be released, and the parent's ``set`` would hang.
        # Closing the writing end (``stop``, or the parent's death) is seen as end of file.
        self._stop_reader, self._stop_writer = self._ctx.Pipe(duplex=False)
        # A parent leaving without ``stop`` (an exception) would otherwise hang at exit:
        # multiprocessing waits for its children there, and they ignore its SIGTERM.
        # Finalizers with a priority run before that wait.
        multiprocessing.util.Finalize(self, self._stop_writer.close, exitpriority=10)
        self.counts: Counts = self._ctx.Array("q", counts, lock=False) if isinstance(counts, int) else counts
        self._ready = self._ctx.Value("b", 0, lock=False)  # one writer, the child
        self._proc: multiprocessing.process.BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def ready(self) -> bool:
        """True once the stage is in its loop (it has asked whether to stop), until it ends."""
        return self._proc is not None and bool(self._ready.value) and self._proc.exitcode is None

    @property
    def exitcode(self) -> int | None:
        """None while running (or before start); the stage's exit code once it has stopped."""
        return None if self._proc is None else self._proc.exitcode

    def start(self) -> None:
        """Spawn the process; a ``ChildProcess`` starts once."""
        if self._proc is not None:
            raise RuntimeError(f"the {self.name} process was already started")
        root = logging.getLogger()
        fmt = next((h.formatter._fmt for h in root.handlers if h.formatter is not None), None)
        self._proc = self._ctx.Process(
            target=_child_main,
            args=(self._stage, self._stop_reader, self._ready, self.counts, root.level, fmt, self._args),
            name=self.name,
            daemon=True,
        )
        self._proc.start()
        self._stop_reader.close()  # the child has its own copy
        log.info("%s process started pid=%s", self.name, self._proc.pid)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Let the stage finish what it is doing, then end the process (killed after ``timeout_s``)."""
        self._stop_writer.close()
        if self._proc is None:
            return
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            log.warning("%s did not stop in %.0f s; killing it", self.name, timeout_s)
            self._proc.kill()  # it ignores SIGTERM
            self._proc.join(5)


def _child_main(
    stage: Stage,
    stop: Connection,
    ready: Flag,
    counts: Counts,
    level: int,
    fmt: str | None,
    args: tuple[Any, ...],
) -> None:
    # Ctrl-C reaches the process group, and a service manager's SIGTERM may reach every
    # process of the service: the parent stops the stage in order, after ingest.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=level, format=fmt or logging.BASIC_FORMAT, stream=sys.stderr)
    code = stage(StopOrOrphaned(stop, ready), counts, *args)
    if code:
        sys.exit(code)


class Flag(Protocol):
    """A process-shared byte (``multiprocessing.Value("b")``)."""

    value: int


class StopOrOrphaned:
    """Set once the parent has asked the stage to stop, or has died (``Stoppable``).

    Both close the pipe's writing end, which this side reads as end of file: no lock, and
    no polling of the parent. The stage's first question to it sets ``ready``.
    """

    def __init__(self, reader: Connection, ready: Flag) -> None:
        self._reader = reader
        self._ready = ready
        self._set = False

    def is_set(self) -> bool:
        self._ready.value = 1
        if not self._set and self._reader.poll():
            self._set = True
        return self._set

    def set(self) -> None:
        self._set = True

    def wait(self, timeout: float | None = None) -> bool:
        self._ready.value = 1
        if not self._set and self._reader.poll(timeout):
            self._set = True
        return self._set


P = TypeVar("P", bound=ChildProcess)


class Supervised(Generic[P]):
    """One stage's process, started again when it ends on its own (a crash, the OOM killer).

    ``make(counts)`` builds the process; a successor gets its predecessor's counts, so the
    stage's counters carry on across a restart. An exit code in ``final`` (a stage that
    found its configuration wrong) is left for an operator: a restart would only fail again.
    Restarts wait ``min_s``, doubling up to ``max_s`` while the stage keeps ending within
    ``max_s`` of its start. ``check`` does it; ``gridsense run`` calls it every second.
    """

    def __init__(
        self,
        make: Callable[[Counts | None], P],
        *,
        final: frozenset[int] = frozenset(),
        min_s: float = 1.0,
        max_s: float = 60.0,
    ) -> None:
        self._make = make
        self.process: P = make(None)
        self._final = final
        self._min_s, self._max_s = min_s, max_s
        self._delay = min_s
        self._started_at = 0.0
        self._ended_at: float | None = None
        self._stopped = False
        self.restarts = 0

    def start(self) -> None:
        self.process.start()
        self._started_at = time.monotonic()

    @property
    def ready(self) -> bool:
        """The current process is in its loop (``ChildProcess.ready``)."""
        return self.process.ready

    def check(self, now: float | None = None) -> bool:
        """Restart the process if it ended on its own and its wait is over; True if it did."""
        code = self.process.exitcode
        if self._stopped or code is None or code in self._final:
            return False
        now = time.monotonic() if now is None else now
        if self._ended_at is None:
            self._ended_at = now
            if now - self._started_at >= self._max_s:
                self._delay = self._min_s  # it had run a good while: not a crash loop
            log.error(
                "%s process ended on its own (exit code %s); restarting it in %.0f s",
                self.process.name,
                code,
                self._delay,
            )
        if now - self._ended_at < self._delay:
            return False
        self._delay = min(self._delay * 2, self._max_s)
        try:
            successor = self._make(self.process.counts)
            successor.start()
        except Exception:  # e.g. no memory left to spawn: the old one stays, ended; try again later
            log.exception("%s process could not be started again", self.process.name)
            self._ended_at = now
            return False
        self.process.stop(0)  # already ended: releases what it holds in this process
        self.process = successor
        self._started_at = time.monotonic()
        self.restarts += 1
        self._ended_at = None
        return True

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the process; it is not started again after this."""
        self._stopped = True
        self.process.stop(timeout_s)
