"""ChildProcess: a pipeline stage in a process of its own, started, watched and stopped by the pipeline.

Two stages leave the pipeline's interpreter this way: the InfluxDB forwarder
(``ingest.forwarder_process``) and case delivery (``bridge.delivery_process``). On the
pipeline's interpreter each competed with ingest for the GIL; in a process of its own each
runs on another core. A stage and the pipeline share only the state store's file (SQLite
WAL, or the PostgreSQL outbox) and a few integers in shared memory (``counts``: one writer
per slot, so no lock).

The process is spawned, not forked: the pipeline already runs threads (MQTT, the operations
page) by the time it starts. It logs like its parent, and ignores SIGINT: Ctrl-C reaches
the whole process group, and the parent stops it in order (``stop``), after ingest has
stopped. If the parent dies without stopping it (SIGKILL, a crash), the stop signal the
stage sees is set at its next look (``StopOrOrphaned``), so a restarted pipeline never
finds a stray stage working on the same store beside its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any, Protocol

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

    def __init__(self, name: str, stage: Stage, args: tuple[Any, ...], counts: int) -> None:
        """``stage(stop, counts, *args)`` runs in the child; it must be a module-level function."""
        self._ctx = multiprocessing.get_context("spawn")
        self._name = name
        self._stage = stage
        self._args = args
        self._stop = self._ctx.Event()
        self.counts: Counts = self._ctx.Array("q", counts, lock=False)
        self._proc: multiprocessing.process.BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def exitcode(self) -> int | None:
        """None while running (or before start); the stage's exit code once it has stopped."""
        return None if self._proc is None else self._proc.exitcode

    def start(self) -> None:
        """Spawn the process; a ``ChildProcess`` starts once."""
        if self._proc is not None:
            raise RuntimeError(f"the {self._name} process was already started")
        root = logging.getLogger()
        fmt = next((h.formatter._fmt for h in root.handlers if h.formatter is not None), None)
        self._proc = self._ctx.Process(
            target=_child_main,
            args=(self._stage, self._stop, self.counts, root.level, fmt, self._args),
            name=self._name,
            daemon=True,
        )
        self._proc.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Let the stage finish what it is doing, then end the process (killed after ``timeout_s``)."""
        self._stop.set()
        if self._proc is None:
            return
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            log.warning("%s did not stop in %.0f s; terminating it", self._name, timeout_s)
            self._proc.terminate()
            self._proc.join(5)


def _child_main(
    stage: Stage, stop: Event, counts: Counts, level: int, fmt: str | None, args: tuple[Any, ...]
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=level, format=fmt or logging.BASIC_FORMAT, stream=sys.stderr)
    code = stage(StopOrOrphaned(stop), counts, *args)
    if code:
        sys.exit(code)


class StopOrOrphaned:
    """``stop``, or set as soon as the parent process is gone (``Stoppable``)."""

    def __init__(self, stop: Event) -> None:
        self._stop = stop
        self._parent = multiprocessing.parent_process()

    def is_set(self) -> bool:
        return self._stop.is_set() or (self._parent is not None and not self._parent.is_alive())

    def set(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for ``stop``, looking in on the parent every second."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            self._stop.wait(left)
        return True
